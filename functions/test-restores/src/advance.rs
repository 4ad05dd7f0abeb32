//! Moving a restore test in flight one step on: wait, judge, tear down.

use lifeboat::FunctionError;
use lifeboat::alerting::Alerter;
use lifeboat::app::{PointUpdateError, update_point};
use lifeboat_domain::recovery_point::VerificationFailure;
use lifeboat_domain::restore_test::{Phase, RestoreTest, RestoreTestRule, TAG_RESTORE_TEST, TARGET_PREFIX, compare};
use lifeboat_domain::{RecoveryPoint, ResourceKind};
use lifeboat_ports::dr::{DbInfo, DeleteMode, WriterRequest};
use serde_json::{Value, json};

use crate::start::{Requested, network_for, request_restore};
use crate::{Deps, Tested, alert_failure, test_tags};

/// States in which RDS will never make the database available.
fn failed_status(status: &str) -> bool {
    matches!(
        status,
        "failed"
            | "incompatible-restore"
            | "incompatible-parameters"
            | "incompatible-network"
            | "incompatible-option-group"
            | "inaccessible-encryption-credentials"
            | "inaccessible-encryption-credentials-recoverable"
            | "restore-error"
            | "storage-full"
    )
}

fn tested(point: &RecoveryPoint, test: &RestoreTest, outcome: &str) -> Tested {
    Tested {
        recovery_point: point.id.clone(),
        target: test.target.clone(),
        outcome: outcome.to_owned(),
        restore_secs: test.restore_secs(),
        problems: test.problems.clone(),
    }
}

/// One step of the point's test in flight.
pub(crate) async fn advance(
    deps: &Deps,
    point: &RecoveryPoint,
    rule: Option<&RestoreTestRule>,
    alerter: &Alerter,
    run_id: &str,
) -> Result<Tested, FunctionError> {
    let Some(test) = point.restore_test().cloned() else {
        return Err(FunctionError::new(
            lifeboat::ErrorType::Internal,
            format!("{}: no restore test", point.id),
        ));
    };
    let default = RestoreTestRule::default();
    let rule = rule.unwrap_or(&default);
    match test.phase {
        Phase::Restoring => restoring(deps, point, &test, rule, alerter, run_id).await,
        Phase::TearingDown => tear_down(deps, point, &test).await,
        Phase::Done => Ok(tested(point, &test, "done")),
    }
}

async fn restoring(
    deps: &Deps,
    point: &RecoveryPoint,
    test: &RestoreTest,
    rule: &RestoreTestRule,
    alerter: &Alerter,
    run_id: &str,
) -> Result<Tested, FunctionError> {
    let now = deps.clock.now();
    let timed_out = (now - test.started_at)
        .to_std()
        .is_ok_and(|age| age >= deps.settings.timeout);
    let late = || {
        format!(
            "not available {} after the restore began",
            humantime::format_duration(deps.settings.timeout)
        )
    };
    let kind = point.resource.kind;
    let Some(info) = deps.databases.describe(&point.location, kind, &test.target).await? else {
        if timed_out {
            return fail_without_database(
                deps,
                point,
                test,
                format!("the test database {}", late()),
                alerter,
                run_id,
            )
            .await;
        }
        // Recorded, but RDS was not asked (a crash, or "later"): ask now.
        let Some(network) = network_for(deps, rule, &point.location) else {
            let why = format!("no isolated network for restore tests in {}", point.location);
            return fail_without_database(deps, point, test, why, alerter, run_id).await;
        };
        return match request_restore(deps, point, test, rule, network).await? {
            Requested::Yes | Requested::Later(_) => Ok(tested(point, test, "restoring")),
            Requested::Refused(why) => fail_without_database(deps, point, test, why, alerter, run_id).await,
        };
    };
    if info.tag(TAG_RESTORE_TEST) != Some(point.id.as_str()) {
        let why = format!(
            "a database named {} exists in {} that this test did not make; it is left alone",
            test.target, point.location
        );
        return fail_without_database(deps, point, test, why, alerter, run_id).await;
    }
    if failed_status(&info.status) {
        let why = format!("RDS reports the test database {}", info.status);
        return judge(deps, point, test, rule, Err(why), alerter, run_id).await;
    }
    if !info.is_available() {
        if timed_out {
            return judge(deps, point, test, rule, Err(late()), alerter, run_id).await;
        }
        return Ok(tested(point, test, "restoring"));
    }
    let endpoint = if kind == ResourceKind::AuroraCluster {
        match writer(deps, point, test, rule, &info).await? {
            Writer::Ready(endpoint) => endpoint.or(info.endpoint.clone()),
            Writer::Waiting if timed_out => return judge(deps, point, test, rule, Err(late()), alerter, run_id).await,
            Writer::Waiting => return Ok(tested(point, test, "restoring")),
            Writer::Failed(why) => return judge(deps, point, test, rule, Err(why), alerter, run_id).await,
        }
    } else {
        info.endpoint.clone()
    };
    judge(deps, point, test, rule, Ok((info, endpoint)), alerter, run_id).await
}

enum Writer {
    /// Available, with its endpoint.
    Ready(Option<String>),
    Waiting,
    Failed(String),
}

/// The writer instance of an Aurora test cluster: created once the cluster is available
/// (a cluster restored from a snapshot has none, and no endpoint to connect to).
async fn writer(
    deps: &Deps,
    point: &RecoveryPoint,
    test: &RestoreTest,
    rule: &RestoreTestRule,
    cluster: &DbInfo,
) -> Result<Writer, FunctionError> {
    let id = test.writer();
    match deps
        .databases
        .describe(&point.location, ResourceKind::RdsInstance, &id)
        .await?
    {
        Some(w) if failed_status(&w.status) => Ok(Writer::Failed(format!("RDS reports the writer {id} {}", w.status))),
        Some(w) if w.is_available() => Ok(Writer::Ready(w.endpoint)),
        Some(_) => Ok(Writer::Waiting),
        None => {
            let engine = cluster.engine.clone().unwrap_or_else(|| "aurora-postgresql".to_owned());
            let class = rule
                .class
                .clone()
                .unwrap_or_else(|| lifeboat_domain::restore_test::smallest_class(&engine).to_owned());
            let tags = test_tags(point, &[]);
            let req = WriterRequest {
                region: &point.location,
                cluster: &test.target,
                instance: &id,
                class: &class,
                engine: &engine,
                parameter_group: None,
                tags: &tags,
            };
            match deps.databases.create_cluster_instance(&req).await {
                Ok(()) => Ok(Writer::Waiting),
                Err(e) if e.is_transient() => Ok(Writer::Waiting),
                Err(e) => Ok(Writer::Failed(format!("RDS refused the writer instance {id}: {e}"))),
            }
        }
    }
}

/// Judges the test database (`Ok`: available, with its endpoint) against its snapshot and
/// the validation Lambda, records the verdict and its evidence, and moves to tear-down.
async fn judge(
    deps: &Deps,
    point: &RecoveryPoint,
    test: &RestoreTest,
    rule: &RestoreTestRule,
    ready: Result<(DbInfo, Option<String>), String>,
    alerter: &Alerter,
    run_id: &str,
) -> Result<Tested, FunctionError> {
    let now = deps.clock.now();
    let mut next = test.clone();
    next.phase = Phase::TearingDown;
    match ready {
        Err(why) => next.problems.push(why),
        Ok((info, endpoint)) => {
            next.ready_at = Some(now);
            match deps
                .databases
                .snapshot_facts(&point.location, point.resource.kind, &point.snapshot_name)
                .await?
            {
                Some(expected) => {
                    let (ok, bad) = compare(&expected, &info.facts());
                    next.checks.extend(ok);
                    next.problems.extend(bad);
                }
                None => next.problems.push(format!(
                    "snapshot {} vanished from {} during the test",
                    point.snapshot_name, point.location
                )),
            }
            if let Some(arn) = &rule.validation_lambda {
                validate(deps, point, test, &info, endpoint.as_deref(), arn, &mut next).await?;
            }
        }
    }
    let passed = next.passed();
    let recorded = record(deps, point, test, next.clone(), passed).await?;
    if !recorded {
        // Another run judged it first.
        return Ok(tested(point, &next, "restoring"));
    }
    if !passed {
        alert_failure(alerter, point, &next, run_id).await;
    }
    // The tear-down starts at once: the database has served its purpose.
    tear_down(deps, point, &next).await?;
    Ok(tested(point, &next, if passed { "passed" } else { "failed" }))
}

/// The policy's validation Lambda, given the test database's endpoint.
async fn validate(
    deps: &Deps,
    point: &RecoveryPoint,
    test: &RestoreTest,
    info: &DbInfo,
    endpoint: Option<&str>,
    arn: &str,
    next: &mut RestoreTest,
) -> Result<(), FunctionError> {
    let payload = json!({
        "purpose": "restore-test",
        "recoveryPoint": point.id,
        "resource": point.resource.arn,
        "kind": point.resource.kind,
        "region": point.location,
        "database": test.target,
        "engine": info.engine,
        "engineVersion": info.engine_version,
        "endpoint": endpoint,
    });
    match lifeboat_ports::lambda::validate(deps.validator.as_ref(), arn, &payload).await {
        Ok(Ok(v)) if v.get("ok") == Some(&Value::Bool(false)) => next.problems.push(format!(
            "validation Lambda {arn} says not ok: {}",
            v.get("reason").and_then(Value::as_str).unwrap_or("no reason given")
        )),
        Ok(Ok(_)) => next.checks.push(format!("validation Lambda {arn}: ok")),
        Ok(Err(e)) => next.problems.push(format!("validation Lambda {arn} failed: {e}")),
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => next
            .problems
            .push(format!("validation Lambda {arn} could not be invoked: {e}")),
    }
    Ok(())
}

/// Writes `next` over `was` on the point (only if the point still holds `was`: a
/// concurrent or replayed run finds it written), with the verdict: verified when `passed`,
/// unverified with the problems when not. True if this call wrote it.
async fn record(
    deps: &Deps,
    point: &RecoveryPoint,
    was: &RestoreTest,
    next: RestoreTest,
    judged: bool,
) -> Result<bool, FunctionError> {
    let now = deps.clock.now();
    let verdict = next.phase != Phase::Restoring && was.phase == Phase::Restoring;
    let written = update_point(deps.catalog.as_ref(), deps.clock.as_ref(), &point.id, 3, |cur| {
        if cur.restore_test() != Some(was) {
            return None;
        }
        let mut rp = cur.clone();
        rp.snapshot_mut()?.restore_test = Some(next.clone());
        if next.phase == Phase::Done && rp.holds.in_use_by.as_deref() == Some(was.hold().as_str()) {
            rp.holds.in_use_by = None;
        }
        if verdict && judged {
            rp.verified_at = Some(now);
            rp.verification_failed = None;
        } else if verdict {
            rp.verified_at = None;
            rp.verification_failed = Some(VerificationFailure {
                at: now,
                checked: 1,
                problems: next.problems.iter().map(|p| format!("restore test: {p}")).collect(),
            });
        }
        Some(rp)
    })
    .await;
    match written {
        Ok(w) => Ok(w.is_some()),
        Err(PointUpdateError::Missing) => Err(FunctionError::not_found(format!("recovery point {}", point.id))),
        Err(PointUpdateError::KeptChanging) => Err(FunctionError::retryable(format!(
            "recovery point {} kept changing",
            point.id
        ))),
        Err(PointUpdateError::Port(e)) => Err(e.into()),
    }
}

/// Fails a test that has no database to delete (never made, or a name that is not ours).
pub(crate) async fn fail_without_database(
    deps: &Deps,
    point: &RecoveryPoint,
    test: &RestoreTest,
    why: String,
    alerter: &Alerter,
    run_id: &str,
) -> Result<Tested, FunctionError> {
    let now = deps.clock.now();
    let mut next = test.clone();
    next.problems.push(why);
    next.phase = Phase::Done;
    next.finished_at = Some(now);
    if record(deps, point, test, next.clone(), false).await? {
        alert_failure(alerter, point, &next, run_id).await;
    }
    Ok(tested(point, &next, "failed"))
}

/// Deletes the test's databases (an Aurora writer first, then its cluster), each read
/// again just before and only if its name and tag say this test made it; done when none
/// is left.
async fn tear_down(deps: &Deps, point: &RecoveryPoint, test: &RestoreTest) -> Result<Tested, FunctionError> {
    let mut parts = Vec::new();
    if point.resource.kind == ResourceKind::AuroraCluster {
        parts.push((ResourceKind::RdsInstance, test.writer()));
    }
    parts.push((point.resource.kind, test.target.clone()));
    let mut next = test.clone();
    for (kind, id) in parts {
        if !id.starts_with(TARGET_PREFIX) {
            return Err(FunctionError::new(
                lifeboat::ErrorType::Internal,
                format!("{id} is not a restore test's name"),
            ));
        }
        let Some(info) = deps.databases.describe(&point.location, kind, &id).await? else {
            continue;
        };
        if info.tag(TAG_RESTORE_TEST) != Some(point.id.as_str()) {
            tracing::warn!(database = id, region = %point.location, tags = ?info.tags, "not this restore test's: not deleted");
            let note = format!(
                "{kind} {id} in {} left alone: its tags do not name this test",
                point.location
            );
            if !next.checks.contains(&note) {
                next.checks.push(note);
            }
            continue;
        }
        if info.status != "deleting" {
            deps.databases
                .delete(&point.location, kind, &id, DeleteMode::Throwaway)
                .await?;
        }
        return Ok(tested(point, test, "tearing-down"));
    }
    next.phase = Phase::Done;
    next.finished_at = Some(deps.clock.now());
    let passed = test.passed();
    record(deps, point, test, next.clone(), passed).await?;
    Ok(tested(point, &next, "torn-down"))
}
