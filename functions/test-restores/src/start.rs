//! Starting restore tests: which are due, within which bounds, and the restore request.

use std::collections::BTreeMap;

use lifeboat::FunctionError;
use lifeboat::alerting::Alerter;
use lifeboat::app::{PointUpdateError, update_point};
use lifeboat_domain::dr::plan::RestoreSettings;
use lifeboat_domain::restore_test::{MIN_BILLED, RestoreTest, RestoreTestRule, due, smallest_class, used_today};
use lifeboat_domain::{
    Alert, AlertKind, Policy, PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, Severity,
};
use lifeboat_ports::PortError;
use lifeboat_ports::dr::RestoreRequest;

use crate::{Deps, FUNCTION, Report, Tested, test_tags};

/// The isolated network of test databases in `region`: the policy's, else the deployment's.
pub(crate) fn network_for<'a>(
    deps: &'a Deps,
    rule: &'a RestoreTestRule,
    region: &Region,
) -> Option<&'a RestoreSettings> {
    rule.networks.get(region).or_else(|| deps.settings.networks.get(region))
}

/// What asking RDS for the test database came to.
pub(crate) enum Requested {
    /// RDS is restoring it (or was already).
    Yes,
    /// Not now (throttled, a quota, the name still held by a deleted database): the next
    /// run asks again, until the test's timeout.
    Later(String),
    /// Refused for good: the test fails with this problem.
    Refused(String),
}

/// Asks RDS to restore the point's snapshot into the test's database, on `network`, in
/// the rule's class or the smallest its engine allows, tagged as this test's. Asking again
/// for a database that this test already made is fine.
pub(crate) async fn request_restore(
    deps: &Deps,
    point: &RecoveryPoint,
    test: &RestoreTest,
    rule: &RestoreTestRule,
    network: &RestoreSettings,
) -> Result<Requested, FunctionError> {
    let kind = point.resource.kind;
    let facts = match deps
        .databases
        .snapshot_facts(&point.location, kind, &point.snapshot_name)
        .await
    {
        Ok(Some(f)) => f,
        Ok(None) => {
            return Ok(Requested::Refused(format!(
                "snapshot {} is not in {}",
                point.snapshot_name, point.location
            )));
        }
        Err(e) if e.is_transient() => return Ok(Requested::Later(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let class = rule
        .class
        .clone()
        .unwrap_or_else(|| smallest_class(facts.engine.as_deref().unwrap_or_default()).to_owned());
    let tags = test_tags(point, &facts.tags);
    let req = RestoreRequest {
        region: &point.location,
        kind,
        target: &test.target,
        class: (kind == ResourceKind::RdsInstance).then_some(class.as_str()),
        settings: network,
        tags: &tags,
    };
    Ok(
        match deps.databases.restore_from_snapshot(&req, &point.snapshot_name).await {
            Ok(()) => Requested::Yes,
            Err(
                e @ (PortError::Throttled(_)
                | PortError::Unavailable(_)
                | PortError::QuotaExceeded(_)
                | PortError::InvalidState(_)),
            ) => Requested::Later(e.to_string()),
            Err(e) => Requested::Refused(format!("RDS refused the restore: {e}")),
        },
    )
}

/// The points to test now: the one asked for, or every due one (most critical policy
/// first, then oldest untested first).
async fn candidates(
    deps: &Deps,
    points: &[RecoveryPoint],
    policies: &BTreeMap<PolicyName, Policy>,
    one: Option<&RecoveryPointId>,
) -> Result<Vec<RecoveryPoint>, FunctionError> {
    let now = deps.clock.now();
    if let Some(id) = one {
        let p = deps
            .catalog
            .get(id)
            .await?
            .ok_or_else(|| FunctionError::not_found(format!("recovery point {id}")))?;
        if !lifeboat_domain::restore_test::is_tested(p.resource.kind) {
            return Err(FunctionError::invalid(format!(
                "{id} is a {} recovery point: restore tests are for RDS instances and Aurora clusters",
                p.resource.kind
            )));
        }
        if !p.is_restorable() {
            return Err(FunctionError::invalid(format!(
                "{id} is {}: nothing to restore",
                p.status
            )));
        }
        return Ok(vec![p]);
    }
    let mut chosen: Vec<(u8, RecoveryPoint)> = Vec::new();
    for policy in policies.values() {
        let mine: Vec<RecoveryPoint> = points.iter().filter(|p| p.policy == policy.name).cloned().collect();
        chosen.extend(
            due(&mine, &policy.restore_tests, now)
                .into_iter()
                .map(|p| (policy.priority, p.clone())),
        );
    }
    chosen.sort_by(|(a, p), (b, q)| a.cmp(b).then(p.created_at.cmp(&q.created_at)));
    Ok(chosen.into_iter().map(|(_, p)| p).collect())
}

/// Starts the due tests (or the one asked for) within the concurrency bound and the daily
/// budget, recording each in `report`.
pub(crate) async fn start_due(
    deps: &Deps,
    points: &[RecoveryPoint],
    policies: &BTreeMap<PolicyName, Policy>,
    one: Option<&RecoveryPointId>,
    alerter: &Alerter,
    run_id: &str,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let now = deps.clock.now();
    let mut used = used_today(points, now);
    report.used_secs = used.as_secs();
    let mut in_flight = points
        .iter()
        .filter(|p| p.restore_test().is_some_and(RestoreTest::in_flight))
        .count();
    for p in candidates(deps, points, policies, one).await? {
        if p.restore_test().is_some_and(RestoreTest::in_flight) {
            report
                .deferred
                .push(format!("{}: a restore test of it is in flight", p.id));
            continue;
        }
        if in_flight >= deps.settings.max_concurrent {
            report.deferred.push(format!(
                "{}: {in_flight} restore test(s) in flight, the most allowed at once (RESTORE_TEST_MAX_CONCURRENT)",
                p.id
            ));
            continue;
        }
        if used >= deps.settings.daily_budget {
            report.deferred.push(format!(
                "{}: restore tests used {}s of instance time in 24 hours, the daily budget (RESTORE_TEST_DAILY_INSTANCE_HOURS)",
                p.id,
                used.as_secs()
            ));
            continue;
        }
        let default_rule = RestoreTestRule::default();
        let rule = policies.get(&p.policy).map_or(&default_rule, |pol| &pol.restore_tests);
        let Some(network) = network_for(deps, rule, &p.location) else {
            report.deferred.push(format!(
                "{}: no isolated network for restore tests in {} (the policy's restore_tests.networks or RESTORE_TEST_NETWORKS)",
                p.id, p.location
            ));
            alert_no_network(alerter, &p, run_id, now).await;
            continue;
        };
        let tested = match begin(deps, &p, rule, network, alerter, run_id).await {
            Ok(t) => t,
            Err(e) => {
                report.errors.push(format!("{}: {}", p.id, e.message));
                continue;
            }
        };
        if tested.outcome == "restoring" {
            in_flight += 1;
            used += MIN_BILLED;
        }
        report.started.push(tested);
    }
    Ok(())
}

/// Records the test on the point (only if none is in flight: a replayed event or a
/// concurrent run finds it recorded and does nothing), then asks RDS for the database.
async fn begin(
    deps: &Deps,
    point: &RecoveryPoint,
    rule: &RestoreTestRule,
    network: &RestoreSettings,
    alerter: &Alerter,
    run_id: &str,
) -> Result<Tested, FunctionError> {
    let test = RestoreTest::start(point, &format!("{FUNCTION}/{run_id}"), deps.clock.now());
    let written = update_point(deps.catalog.as_ref(), deps.clock.as_ref(), &point.id, 3, |cur| {
        (cur.is_restorable() && !cur.restore_test().is_some_and(RestoreTest::in_flight)).then(|| {
            let mut rp = cur.clone();
            if let Some(d) = rp.snapshot_mut() {
                d.restore_test = Some(test.clone());
            }
            // Held while it is read: retention never deletes a snapshot under a restore.
            // (Another holder's hold stays; it is theirs to release.)
            if rp.holds.in_use_by.is_none() {
                rp.holds.in_use_by = Some(test.hold());
            }
            rp
        })
    })
    .await;
    let tested = |outcome: &str, problems: Vec<String>| Tested {
        recovery_point: point.id.clone(),
        target: test.target.clone(),
        outcome: outcome.to_owned(),
        restore_secs: None,
        problems,
    };
    match written {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(tested("already-in-flight", Vec::new())),
        Err(PointUpdateError::Missing) => return Err(FunctionError::not_found(format!("recovery point {}", point.id))),
        Err(PointUpdateError::KeptChanging) => {
            return Err(FunctionError::retryable(format!(
                "recovery point {} kept changing",
                point.id
            )));
        }
        Err(PointUpdateError::Port(e)) => return Err(e.into()),
    }
    Ok(match request_restore(deps, point, &test, rule, network).await? {
        Requested::Yes => tested("restoring", Vec::new()),
        Requested::Later(why) => tested("restoring", vec![format!("RDS asked again later: {why}")]),
        // Nothing was made, so nothing to delete: failed at once, and alerted.
        Requested::Refused(why) => {
            crate::advance::fail_without_database(deps, point, &test, why, alerter, run_id).await?
        }
    })
}

/// One alert per region and day: restore tests there cannot run.
async fn alert_no_network(alerter: &Alerter, point: &RecoveryPoint, run_id: &str, now: chrono::DateTime<chrono::Utc>) {
    let alert = Alert::new(
        AlertKind::RestoreTestFailed,
        Severity::Warning,
        format!(
            "restore tests cannot run in {}: no isolated network is named for it",
            point.location
        ),
        format!("restore-test-network/{}/{}", point.location, now.format("%Y-%m-%d")),
        now,
    )
    .location(&point.location)
    .detail(
        "fix",
        "name a subnet group with no route out and a security group with no ingress in the policy's restore_tests.networks or in RESTORE_TEST_NETWORKS",
    );
    alerter.raise_or_log(alert, run_id).await;
}
