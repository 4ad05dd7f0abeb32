//! Building blocks the functions share: the run log, policy loading, copy settling.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alerting::Alerter;
use crate::calls::CallCounter;
use crate::config::Config;
use lifeboat_domain::{
    Alert, AlertKind, CopyProgress, Failure, Policy, PolicyName, RecoveryPoint, RecoveryPointId, Severity, Status,
    Step, copy_progress,
};
use lifeboat_ports::{Catalog, Clock, Notifier, PortError, PortResult, RunRecord, SnapshotStore};

/// Everything the backup functions talk to. Each function's IAM policy in template.yaml
/// grants exactly the calls its handler makes through these ports.
#[derive(Clone)]
pub struct Ports {
    pub snapshots: Arc<dyn SnapshotStore>,
    pub catalog: Arc<dyn Catalog>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// AWS Backup in the primary region, for policies that delegate to it.
    pub backup: Arc<dyn lifeboat_ports::BackupService>,
    /// The alert deduplication window (`ALERT_DEDUPE_WINDOW`), if any.
    pub alert_window: Option<chrono::Duration>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

impl Ports {
    pub fn alerter(&self) -> Alerter {
        Alerter::new(self.catalog.clone(), self.notifier.clone(), self.clock.clone()).with_window(self.alert_window)
    }
}

/// What one run did, written to the catalog at the end (and logged).
#[derive(Debug, Clone)]
pub struct RunLog {
    pub run_id: String,
    pub function: &'static str,
    pub started_at: DateTime<Utc>,
    counts: BTreeMap<String, u64>,
    actions: Vec<(String, String)>,
    calls: CallCounter,
    calls_before: BTreeMap<String, u64>,
}

impl RunLog {
    /// A run log counting the process's AWS calls ([`CallCounter::process`]).
    pub fn start(function: &'static str, run_id: &str, now: DateTime<Utc>) -> Self {
        Self::counting(function, run_id, now, CallCounter::process())
    }

    /// A run log that reports the calls `calls` counts from now on.
    pub fn counting(function: &'static str, run_id: &str, now: DateTime<Utc>, calls: CallCounter) -> Self {
        let calls_before = calls.so_far();
        Self {
            run_id: run_id.to_owned(),
            function,
            started_at: now,
            counts: BTreeMap::new(),
            actions: Vec::new(),
            calls,
            calls_before,
        }
    }

    /// Counts `what` and records `(subject, outcome)`.
    pub fn action(&mut self, what: &str, subject: impl Into<String>, outcome: impl Into<String>) {
        *self.counts.entry(what.to_owned()).or_insert(0) += 1;
        self.actions.push((subject.into(), outcome.into()));
    }

    pub fn count(&mut self, what: &str) {
        *self.counts.entry(what.to_owned()).or_insert(0) += 1;
    }

    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// Writes the run record. A failure to write it is logged, never fatal: the work is done.
    /// Also records the AWS calls the run made (`aws:<service>:<operation>` and
    /// `aws_calls` in total; the run record's own write comes after and is not counted).
    pub async fn finish(mut self, catalog: &dyn Catalog, now: DateTime<Utc>) {
        let calls = self.calls.since(&self.calls_before);
        let total: u64 = calls.values().sum();
        tracing::info!(function = self.function, run_id = %self.run_id, counts = ?self.counts, aws_calls = total, calls = ?calls, "run finished");
        if total > 0 {
            self.counts.insert("aws_calls".into(), total);
            self.counts
                .extend(calls.into_iter().map(|(op, n)| (format!("aws:{op}"), n)));
        }
        let record = RunRecord {
            run_id: self.run_id,
            function: self.function.to_owned(),
            started_at: self.started_at,
            finished_at: now,
            summary: self.counts,
            actions: self.actions,
        };
        if let Err(e) = catalog.record_run(&record).await {
            tracing::warn!(error = %e, "could not write the run record");
        }
    }
}

/// A problem with one item that did not stop the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    pub subject: String,
    pub code: String,
    pub message: String,
}

impl ItemFailure {
    /// The failure of `subject` with a port error.
    pub fn new(subject: impl Into<String>, e: &PortError) -> Self {
        Self {
            subject: subject.into(),
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

/// Loads every stored policy. Invalid ones are skipped and alerted, each under the key it
/// is stored under with its problems (a parse error included), once per policy per day
/// (the alert's dedupe key is `invalid-policy#<key>#<day>`): one bad policy never stops, nor hides,
/// the others.
pub async fn load_policies(
    catalog: &dyn Catalog,
    alerter: &Alerter,
    run_id: &str,
    now: DateTime<Utc>,
) -> PortResult<BTreeMap<PolicyName, Policy>> {
    let mut valid = BTreeMap::new();
    for loaded in catalog.policies().await? {
        match loaded {
            Ok(p) => {
                valid.insert(p.name.clone(), p);
            }
            Err(problems) => {
                tracing::error!(policy = %problems.policy, problems = ?problems.problems, "invalid policy skipped");
                let alert = Alert::new(
                    AlertKind::InvalidPolicy,
                    Severity::High,
                    format!("policy {:?} is invalid and not applied", problems.policy),
                    format!("{}#{}", problems.policy, now.format("%Y-%m-%d")),
                    now,
                )
                .detail("policy", problems.policy.clone())
                .detail("problems", problems.problems.join("; "));
                if let Err(e) = alerter.raise(alert, run_id).await {
                    tracing::warn!(error = %e, "could not raise invalid-policy alert");
                }
            }
        }
    }
    Ok(valid)
}

/// The KMS key for copies of `policy` into `region`: the policy's own, else configuration's.
pub fn kms_key_for<'a>(policy: &'a Policy, config: &'a Config, region: &lifeboat_domain::Region) -> Option<&'a str> {
    policy
        .copies
        .iter()
        .find(|c| &c.region == region)
        .and_then(|c| c.kms_key_id.as_deref())
        .or_else(|| config.dr_kms_keys.get(region).map(String::as_str))
}

/// What makes a valid policy unusable in this deployment: a copy target in the primary
/// region itself, or one with no KMS key in the policy nor in `DR_KMS_KEYS` (its copies
/// would be blocked). Checked where policies are written; a stored policy with such a
/// target still backs up, and its copies are blocked with an alert.
pub fn deployment_problems(policy: &Policy, config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, c) in policy.copies.iter().enumerate() {
        if c.region == config.primary_region {
            problems.push(format!(
                "copies[{i}].region: {} is the primary region; copies go to other regions",
                c.region
            ));
        } else if kms_key_for(policy, config, &c.region).is_none() {
            problems.push(format!(
                "copies[{i}].kms_key_id: no KMS key for {} in the policy nor in the deployment's DR_KMS_KEYS; copies there would be blocked",
                c.region
            ));
        }
    }
    problems
}

/// The ids the copies of `source` have (or will have) in each destination of `policy`.
pub fn copy_ids(source: &RecoveryPoint, policy: &Policy) -> Vec<RecoveryPointId> {
    policy
        .copies_for(source.resource.kind)
        .iter()
        .map(|c| RecoveryPointId::new(&c.region, source.resource.kind, &source.snapshot_name))
        .collect()
}

/// Which of `ids` the catalog records, in one batched read.
pub async fn recorded(
    catalog: &dyn Catalog,
    ids: &[RecoveryPointId],
) -> PortResult<std::collections::HashSet<RecoveryPointId>> {
    Ok(catalog.get_many(ids).await?.into_iter().map(|rp| rp.id).collect())
}

/// Moves a source recovery point along `available → copying → copied` (or `failed`)
/// according to its copies. Returns the new status if it changed. A lost race is not an
/// error: whoever won made the same decision from newer data.
pub async fn settle_source(
    catalog: &dyn Catalog,
    source: &RecoveryPoint,
    policy: &Policy,
    now: DateTime<Utc>,
) -> PortResult<Option<Status>> {
    let copies = catalog.get_many(&copy_ids(source, policy)).await?;
    settle_with(catalog, source, policy, &copies, now).await
}

/// [`settle_source`] when the caller already holds the source's copy records (it just
/// wrote them): one conditional write, no read.
pub async fn settle_with(
    catalog: &dyn Catalog,
    source: &RecoveryPoint,
    policy: &Policy,
    copies: &[RecoveryPoint],
    now: DateTime<Utc>,
) -> PortResult<Option<Status>> {
    let destinations: Vec<_> = policy
        .copies_for(source.resource.kind)
        .iter()
        .map(|c| c.region.clone())
        .collect();
    let next = match copy_progress(&destinations, copies) {
        CopyProgress::InFlight if source.status == Status::Available => source.transition(Status::Copying, now),
        CopyProgress::Waiting | CopyProgress::InFlight => return Ok(None),
        CopyProgress::Done => source.transition(Status::Copied, now),
        CopyProgress::Failed(failed) => source.fail(
            Failure {
                step: Step::Copy,
                code: "copy-failed".into(),
                message: failed
                    .iter()
                    .map(|(r, m)| format!("copy to {r}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            now,
        ),
    };
    let Ok(next) = next else { return Ok(None) };
    match catalog.update(&next, source.version).await {
        Ok(()) => Ok(Some(next.status)),
        Err(PortError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Tag naming a one-off criticality window on a resource: `<from>/<to>` (RFC 3339).
pub const CRITICAL_WINDOW_TAG: &str = "lifeboat:critical-window";
/// Recovery points read per resource when planning.
pub const PLAN_POINTS_PER_RESOURCE: usize = 5_000;

/// A one-off window from a resource's `lifeboat:critical-window` tag, if well-formed.
pub fn tag_window(tags: &[lifeboat_ports::Tag]) -> Result<Option<lifeboat_domain::window::Window>, String> {
    let Some(raw) = lifeboat_ports::tag_value(tags, CRITICAL_WINDOW_TAG) else {
        return Ok(None);
    };
    let (from, to) = raw
        .split_once('/')
        .ok_or_else(|| format!("{CRITICAL_WINDOW_TAG}: {raw:.80?} is not <from>/<to>"))?;
    let doc = lifeboat_domain::window::WindowDocument {
        name: "tagged".into(),
        from: from.into(),
        to: to.into(),
        days: None,
    };
    lifeboat_domain::window::Window::from_document(&doc).map(Some)
}

/// Everything the planner needs from AWS and the catalog: the protected resources (with
/// the windows their tags add) and their recovery points. Resources tagged with an unknown
/// policy are left out (create-snapshots alerts about them); a malformed window tag is
/// reported in `problems` and ignored.
pub async fn gather_plan_input(
    ports: &Ports,
    config: &Config,
    policies: &BTreeMap<PolicyName, Policy>,
) -> PortResult<(
    Vec<lifeboat_domain::planner::ProtectedResource>,
    Vec<RecoveryPoint>,
    Vec<ItemFailure>,
)> {
    // Chunks of concurrent reads joined with `try_join_all` (as in `plan_by_resource`), so
    // the future stays `Send` for callers like the admin API's service.
    const READS_IN_FLIGHT: usize = 8;
    let (resources, problems) = protected_resources(ports, config, policies).await?;
    let mut points = Vec::new();
    for chunk in resources.chunks(READS_IN_FLIGHT) {
        let histories = futures::future::try_join_all(
            chunk
                .iter()
                .map(|r| ports.catalog.by_resource(&r.resource.arn, PLAN_POINTS_PER_RESOURCE)),
        )
        .await?;
        points.extend(histories.into_iter().flatten());
    }
    Ok((resources, points, problems))
}

/// The protected resources, with the windows their tags add. Resources tagged with an
/// unknown policy are left out (create-snapshots alerts about them); a malformed window
/// tag is reported in the problems and ignored.
pub async fn protected_resources(
    ports: &Ports,
    config: &Config,
    policies: &BTreeMap<PolicyName, Policy>,
) -> PortResult<(Vec<lifeboat_domain::planner::ProtectedResource>, Vec<ItemFailure>)> {
    let found = discover(ports, config, policies).await?;
    Ok((found.protected, found.problems))
}

/// The resources of the primary region, sorted by which policy protects them.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Protected by a valid policy (its tag's, or the most critical one selecting it), with
    /// the windows their tags add.
    pub protected: Vec<lifeboat_domain::planner::ProtectedResource>,
    /// Malformed window tags (the window is ignored; the resource is still protected), and
    /// resources that several policies select (protected by the most critical one).
    pub problems: Vec<ItemFailure>,
    /// Tagged with a policy that does not exist or is invalid: the resource and its tag.
    pub unknown_policy: Vec<(lifeboat_domain::ResourceRef, String)>,
}

/// Lists the primary region's resources once and sorts them into [`Discovered`]: a
/// resource's policy tag decides; untagged resources go to the policies that select them
/// (see [`lifeboat_domain::selection`]).
pub async fn discover(
    ports: &Ports,
    config: &Config,
    policies: &BTreeMap<PolicyName, Policy>,
) -> PortResult<Discovered> {
    use lifeboat_domain::selection::{Claim, claim};

    let discovered = ports.snapshots.resources(&config.primary_region).await?;
    let mut found = Discovered::default();
    for d in discovered {
        let lookup = |key: &str| lifeboat_ports::tag_value(&d.tags, key);
        // A restore test's throwaway database carries its snapshot's tags (a policy tag or
        // selected tags among them) but is never protected: it is deleted within hours.
        if lookup(lifeboat_domain::restore_test::TAG_RESTORE_TEST).is_some() {
            continue;
        }
        let policy = match claim(policies, &d.resource, &lookup, lookup(&config.policy_tag_key)) {
            Claim::Tagged(policy) => policy,
            Claim::Selected { policy, also } => {
                if !also.is_empty() {
                    found.problems.push(ItemFailure {
                        subject: d.resource.arn.clone(),
                        code: "several-policies".into(),
                        message: format!(
                            "selected by policies {policy} and {}: protected by {policy}, the most critical; tag it with {}=<policy> to choose",
                            also.iter().map(PolicyName::as_str).collect::<Vec<_>>().join(", "),
                            config.policy_tag_key
                        ),
                    });
                }
                policy
            }
            Claim::UnknownPolicy(tag) => {
                found.unknown_policy.push((d.resource, tag));
                continue;
            }
            Claim::Unprotected => continue,
        };
        let windows = match tag_window(&d.tags) {
            Ok(w) => w.into_iter().collect(),
            Err(e) => {
                found.problems.push(ItemFailure {
                    subject: d.resource.arn.clone(),
                    code: "bad-window-tag".into(),
                    message: e,
                });
                Vec::new()
            }
        };
        found.protected.push(lifeboat_domain::planner::ProtectedResource {
            resource: d.resource,
            policy,
            windows,
        });
    }
    let (data_sets, overlaps) =
        lifeboat_domain::data_set::data_resources(policies, &config.primary_region, &config.backup_region);
    for o in overlaps {
        found.problems.push(ItemFailure {
            subject: o.arn,
            code: "several-policies".into(),
            message: format!(
                "named by policies {} and {}: protected by {}, the most critical",
                o.chosen,
                o.others.iter().map(PolicyName::as_str).collect::<Vec<_>>().join(", "),
                o.chosen
            ),
        });
    }
    found.protected.extend(data_sets.into_iter().map(|d| d.protected));
    Ok(found)
}

/// The data sets the `policies` name (S3 prefixes, config bundles), each with the policy
/// that protects it, placed in the backup region (see [`lifeboat_domain::data_set`]).
pub fn data_sets(
    config: &Config,
    policies: &BTreeMap<PolicyName, Policy>,
) -> Vec<lifeboat_domain::data_set::ProtectedDataSet> {
    lifeboat_domain::data_set::data_resources(policies, &config.primary_region, &config.backup_region).0
}

/// Plans `resources` resource by resource: each one's history is read from the catalog
/// (a few reads in flight), planned, and dropped, so memory holds a few histories plus
/// the plan, never the whole catalog. `settings` gives everything but resources and points.
pub async fn plan_by_resource(
    ports: &Ports,
    resources: &[lifeboat_domain::planner::ProtectedResource],
    settings: &lifeboat_domain::planner::PlanInput<'_>,
) -> PortResult<lifeboat_domain::planner::Plan> {
    // Chunks of concurrent reads joined with `try_join_all` rather than a buffered stream
    // of async closures: the future stays `Send` for callers like the admin API's service.
    const READS_IN_FLIGHT: usize = 8;
    let mut planner = lifeboat_domain::planner::Planner::new(settings);
    for chunk in resources.chunks(READS_IN_FLIGHT) {
        let histories = futures::future::try_join_all(
            chunk
                .iter()
                .map(|r| ports.catalog.by_resource(&r.resource.arn, PLAN_POINTS_PER_RESOURCE)),
        )
        .await?;
        for (r, points) in chunk.iter().zip(&histories) {
            let refs: Vec<&RecoveryPoint> = points.iter().collect();
            planner.add(Some(r), &refs);
        }
    }
    Ok(planner.finish())
}

/// The instant an invocation should stop taking on new work: `margin` before the Lambda
/// deadline (`Context::deadline`, milliseconds since the epoch), or a quarter of the time
/// left when that is less, so a short invocation still does three quarters of its work.
/// `None` when the deadline is unknown (0) or unrepresentable.
pub fn stop_taking_work_at(deadline_ms: u64, margin: std::time::Duration) -> Option<DateTime<Utc>> {
    let deadline =
        DateTime::<Utc>::from_timestamp_millis(i64::try_from(deadline_ms).ok()?).filter(|_| deadline_ms != 0)?;
    Some(stop_before(deadline, Utc::now(), margin))
}

/// [`stop_taking_work_at`] for a given `now`.
pub fn stop_before(deadline: DateTime<Utc>, now: DateTime<Utc>, margin: std::time::Duration) -> DateTime<Utc> {
    let left = (deadline - now).max(chrono::Duration::zero());
    let margin = chrono::Duration::from_std(margin)
        .unwrap_or(chrono::Duration::MAX)
        .min(left / 4);
    deadline - margin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_stops_a_margin_or_a_quarter_of_the_time_left_before_the_deadline() {
        let now: DateTime<Utc> = "2026-11-24T00:00:00Z".parse().unwrap_or_default();
        let m = std::time::Duration::from_mins(1);
        // 15 minutes left: a minute before.
        let d = now + chrono::Duration::minutes(15);
        assert_eq!(stop_before(d, now, m), d - chrono::Duration::minutes(1));
        // 30 seconds left: 7.5 s before, not in the past.
        let d = now + chrono::Duration::seconds(30);
        assert_eq!(stop_before(d, now, m), d - chrono::Duration::milliseconds(7500));
        // Already past: the deadline itself.
        let d = now - chrono::Duration::seconds(5);
        assert_eq!(stop_before(d, now, m), d);
    }
}

/// Why [`update_point`] wrote nothing.
#[derive(Debug)]
pub enum PointUpdateError {
    /// The recovery point is not in the catalog.
    Missing,
    /// Every attempt lost to another writer.
    KeptChanging,
    Port(PortError),
}

impl From<PortError> for PointUpdateError {
    fn from(e: PortError) -> Self {
        Self::Port(e)
    }
}

/// Writes `change(current)` to the catalog by a version-checked update, reading the
/// record again (up to `attempts` times) when another writer changed it meanwhile.
/// `change` returns `None` when there is nothing (more) to do; version and `updated_at`
/// are set here. Returns the point written, or `None`.
pub async fn update_point(
    catalog: &dyn Catalog,
    clock: &dyn Clock,
    id: &RecoveryPointId,
    attempts: usize,
    mut change: impl FnMut(&RecoveryPoint) -> Option<RecoveryPoint>,
) -> Result<Option<RecoveryPoint>, PointUpdateError> {
    for _ in 0..attempts {
        let current = catalog.get(id).await?.ok_or(PointUpdateError::Missing)?;
        let Some(mut next) = change(&current) else {
            return Ok(None);
        };
        next.version = current.version + 1;
        next.updated_at = clock.now();
        match catalog.update(&next, current.version).await {
            Ok(()) => return Ok(Some(next)),
            Err(PortError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(PointUpdateError::KeptChanging)
}

/// Holds the point `id` for `by` (`holds.in_use_by`), so retention never deletes it while
/// `by` reads it; a hold someone else set stays theirs. `Missing` when the point is gone.
pub async fn hold_point(
    catalog: &dyn Catalog,
    clock: &dyn Clock,
    id: &RecoveryPointId,
    by: &str,
) -> Result<(), PointUpdateError> {
    update_point(catalog, clock, id, 3, |cur| {
        cur.holds.in_use_by.is_none().then(|| {
            let mut rp = cur.clone();
            rp.holds.in_use_by = Some(by.to_owned());
            rp
        })
    })
    .await
    .map(drop)
}

/// Releases `by`'s hold on the point `id` (another holder's hold stays).
pub async fn release_point(
    catalog: &dyn Catalog,
    clock: &dyn Clock,
    id: &RecoveryPointId,
    by: &str,
) -> Result<(), PointUpdateError> {
    update_point(catalog, clock, id, 3, |cur| {
        (cur.holds.in_use_by.as_deref() == Some(by)).then(|| {
            let mut rp = cur.clone();
            rp.holds.in_use_by = None;
            rp
        })
    })
    .await
    .map(drop)
}
