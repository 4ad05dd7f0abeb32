//! `expire-recovery-points`: deletes the recovery points retention no longer keeps.
//!
//! What to expire comes from the planner ([`planner::plan`], judged at the tick's
//! *scheduled* time, so a replayed tick judges the same instant), behind its safety floor.
//! The tick's time is believed only within `MAX_EVENT_SKEW` ahead of the clock and
//! `MAX_EVENT_AGE` behind it ([`lifeboat_domain::event_time`]): a tick dated in the future
//! would expire everything but the floor, so it is refused before anything is read.
//! Each expiry is then carried out in two conditional writes around the delete:
//!
//! ```text
//! re-read → re-check holds → available|copied|failed ─▶ expiring ─ delete ─▶ expired
//! ```
//!
//! - **Re-checked before destroying.** Between planning and applying, a hold can be placed
//!   or another run can move the point: the record is read again and must still be in a
//!   deletable state with no hold; the move to `expiring` is a version-checked write, so a
//!   lost race skips the point.
//! - **Floor judged again.** Right before a point is marked `expiring`, and before a point
//!   an earlier run left `expiring` is deleted, its resource's history is read again and
//!   the point is kept if it is now the newest restorable or newest verified one in its
//!   location ([`floor_at_apply`]).
//! - **Only Lifeboat's snapshots.** A snapshot not tagged `lifeboat:created-by=lifeboat` is
//!   never deleted. The lifecycle has no way back from `expiring`, so such a point stays
//!   `expiring`, is reported as refused on every run and alerted once
//!   ([`AlertKind::ExpiryFailed`]); an operator removes or re-tags the snapshot.
//! - **Crash-safe.** A crash between the two writes leaves the point `expiring`; the next
//!   run finishes those first. Deleting is idempotent (a snapshot already gone is fine), so
//!   replays and retries never do harm. A failed record whose snapshot never existed goes
//!   straight to `expired` without a delete.
//! - **Bounded.** At most [`MAX_EXPIRIES_PER_RUN`] points per run (resumed ones first); the
//!   rest waits for the next run and is reported as `remaining`.
//! - **Errors.** Throttling or an unavailable service leaves the point where it is and makes
//!   the run end `Retryable` (after doing everything else); a refusal (e.g. AWS says the
//!   snapshot is in use) is reported and alerted once per point.
//! - **Data sets.** An S3 run or a config bundle is files in the backup bucket: expiring
//!   one deletes what it alone holds ([`data_sets`]: the copies no other kept run
//!   references, never a locked or held version) and then its manifest; a run with copies
//!   still locked stays `expiring` for a later run.
//! - **Metrics.** Each invocation emits, once, CloudWatch EMF lines ([`lifeboat::metrics`])
//!   with `RecoveryPointsExpired` (expired and resumed) and `ExpiryFailures` (failed and
//!   refused), also when the run ends `Retryable`.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::alerting::Alerter;
use lifeboat::app::{
    ItemFailure, PLAN_POINTS_PER_RESOURCE, Ports, RunLog, copy_ids, load_policies, plan_by_resource,
    protected_resources,
};
use lifeboat::config::Config;
use lifeboat::events::ScheduleTick;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat_domain::naming::tags;
use lifeboat_domain::planner::{PlanInput, floor_at_apply};
use lifeboat_domain::recovery_point::Holds;
use lifeboat_domain::{Alert, AlertKind, Policy, PolicyName, RecoveryPoint, RecoveryPointId, Severity, Status};
use lifeboat_ports::{PortError, tag_value};
use serde::Serialize;
use serde_json::Value;

pub const FUNCTION: &str = "expire-recovery-points";

/// Points expired per run at most, resumed ones included. Each costs a handful of calls
/// (a catalog read, two conditional writes, a describe and a delete), so a full run stays
/// far below the Lambda time limit; the rest waits for the next run.
pub const MAX_EXPIRIES_PER_RUN: usize = 200;

pub mod data_sets;

pub use data_sets::BackupStore;

#[derive(Debug, Clone)]
pub struct Deps {
    pub ports: Ports,
    pub config: Config,
    /// S3 in the backup region, where data sets' runs are kept (`None`: their expiries are
    /// skipped and reported).
    pub backups: Option<BackupStore>,
}

/// A recovery point expired by this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub id: RecoveryPointId,
    /// Why retention let it go (the planner's reason), or that an earlier run chose it.
    pub reason: String,
    /// False when its snapshot was already gone (or never existed).
    pub snapshot_deleted: bool,
    /// A data set's run: backup copies deleted (those no kept run references) and those
    /// left for the runs that still reference them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copies_deleted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copies_shared: Option<u64>,
}

/// A point the plan named but that is left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub run_id: String,
    /// The instant retention was judged at: the tick's scheduled time.
    pub judged_at: DateTime<Utc>,
    /// Expired by this run's plan, with the planner's reasons.
    pub expired: Vec<Expired>,
    /// Left `expiring` by an earlier run (a crash, a transient error) and finished now.
    pub resumed: Vec<Expired>,
    /// Planned, but no longer expirable when re-read (a hold, another run moved it, ...).
    pub skipped: Vec<Skipped>,
    /// Snapshots Lifeboat will not delete (not created by Lifeboat): left `expiring`, alerted.
    pub refused: Vec<ItemFailure>,
    /// Expiries that failed this time; transient ones are retried by the next run.
    pub failed: Vec<ItemFailure>,
    /// Expiries left for later runs because of the per-run cap.
    pub remaining: usize,
    /// Points retention alone would expire but the safety floor keeps.
    pub protected: usize,
    /// Points retention keeps.
    pub kept: usize,
}

/// expire-recovery-points as one invocation: a schedule tick in, a report out; the run records its
/// metrics as it goes.
#[derive(Debug)]
pub struct ExpireRecoveryPoints;

impl Function for ExpireRecoveryPoints {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = ScheduleTick;
    type Output = Report;

    fn now(deps: &Deps) -> DateTime<Utc> {
        deps.ports.clock.now()
    }

    fn parse(deps: &Deps, payload: &Value) -> Result<ScheduleTick, FunctionError> {
        ScheduleTick::parse(payload, deps.ports.clock.now(), deps.config.event_time)
    }

    async fn run(deps: &Deps, tick: ScheduleTick, invocation: &mut Invocation) -> Result<Report, FunctionError> {
        let run_id = invocation.run_id().to_owned();
        run_measured(deps, &tick, &run_id, &mut invocation.metrics).await
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the invocation's metrics to `sink` (once, also when the run fails).
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<Report, FunctionError> {
    invoke::<ExpireRecoveryPoints>(deps, event, sink).await
}

pub async fn run(deps: &Deps, tick: &ScheduleTick, run_id: &str) -> Result<Report, FunctionError> {
    let mut metrics = Metrics::new(FUNCTION, run_id, deps.ports.clock.now());
    run_measured(deps, tick, run_id, &mut metrics).await
}

/// [`run`], recording into `metrics`.
/// A run's metrics: `RecoveryPointsExpired` (expired and resumed) and `ExpiryFailures`
/// (failed and refused).
fn record_metrics(report: &Report, metrics: &mut Metrics) {
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    metrics.count(
        Metric::RecoveryPointsExpired,
        count(report.expired.len() + report.resumed.len()),
    );
    metrics.count(
        Metric::ExpiryFailures,
        count(report.failed.len() + report.refused.len()),
    );
}

pub async fn run_measured(
    deps: &Deps,
    tick: &ScheduleTick,
    run_id: &str,
    metrics: &mut Metrics,
) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let alerter = ports.alerter();
    let started = ports.clock.now();
    let mut log = RunLog::start(FUNCTION, run_id, started);
    let mut report = Report {
        run_id: run_id.to_owned(),
        judged_at: tick.scheduled_time,
        ..Report::default()
    };
    let policies = load_policies(ports.catalog.as_ref(), &alerter, run_id, started).await?;
    if let Some(p) = &tick.policy
        && !policies.contains_key(p)
    {
        return Err(FunctionError::not_found(format!(
            "policy {p} does not exist or is invalid"
        )));
    }
    let in_scope = |p: &PolicyName| tick.policy.as_ref().is_none_or(|t| t == p);
    // Holds are judged at the earlier of the scheduled time and now: a lock that ends
    // between the two still counts, whichever instant a replay arrives at.
    let hold_time = tick.scheduled_time.min(started);
    let mut work = Work {
        deps,
        alerter: &alerter,
        policies: &policies,
        run_id,
        hold_time,
        transient: 0,
        keys: data_sets::KeyCache::default(),
    };

    // 1. Finish what earlier runs started.
    let budget = work.resume(&in_scope, &mut report, &mut log).await?;

    // 2. Plan at the scheduled time; expire what retention lets go.
    let (mut resources, problems) = protected_resources(ports, &deps.config, &policies).await?;
    resources.retain(|r| in_scope(&r.policy));
    // A malformed window tag leaves a criticality window unknown: expire nothing there.
    let unsure: HashSet<&str> = problems.iter().map(|p| p.subject.as_str()).collect();
    let settings = PlanInput {
        policies: &policies,
        resources: &[],
        points: &[],
        emergencies: &[],
        copy_budget_per_region: deps.config.copy_budget_per_region,
        dr_kms_keys: &deps.config.dr_kms_keys,
        now: tick.scheduled_time,
        force: false,
    };
    let plan = plan_by_resource(ports, &resources, &settings).await?;
    report.protected = plan.protected.len();
    report.kept = plan.kept;
    for p in &problems {
        log.action("skipped", &p.subject, format!("{}: {}", p.code, p.message));
        report.skipped.push(Skipped {
            id: p.subject.clone(),
            reason: format!("{}; nothing of this resource is expired until it is fixed", p.message),
        });
    }
    let expiries: Vec<_> = plan
        .expiries
        .iter()
        .filter(|e| !unsure.contains(e.resource_arn.as_str()))
        .collect();
    report.remaining += expiries.len().saturating_sub(budget);
    for action in expiries.into_iter().take(budget) {
        work.expire(&action.id, &action.reason, &mut report, &mut log).await;
    }

    let transient = work.transient;
    record_metrics(&report, metrics);
    log.finish(ports.catalog.as_ref(), ports.clock.now()).await;
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "expiry run");
    if transient > 0 {
        let first = report
            .failed
            .iter()
            .find(|f| matches!(f.code.as_str(), "throttled" | "unavailable"))
            .map(|f| format!("{}: {}", f.subject, f.message))
            .unwrap_or_default();
        return Err(FunctionError::retryable(format!(
            "{transient} expiries hit transient errors and stay for the next run (first: {first}); \
             this run expired {}, resumed {}, {} remaining",
            report.expired.len(),
            report.resumed.len(),
            report.remaining
        )));
    }
    Ok(report)
}

/// The hold that forbids deleting now, if any (the planner's floor, checked again on the
/// freshly read record).
fn hold(holds: &Holds, at: DateTime<Utc>) -> Option<String> {
    if holds.legal_hold {
        return Some("legal hold".into());
    }
    if let Some(until) = holds.locked_until.filter(|u| *u > at) {
        return Some(format!("locked until {until}"));
    }
    if let Some(by) = &holds.in_use_by {
        return Some(format!("in use by {by}"));
    }
    if let Some(until) = holds.min_storage_until.filter(|u| *u > at) {
        return Some(format!("minimum storage duration until {until}"));
    }
    None
}

/// One run's expiry work and what it shares.
struct Work<'a> {
    deps: &'a Deps,
    alerter: &'a Alerter,
    policies: &'a BTreeMap<PolicyName, Policy>,
    run_id: &'a str,
    hold_time: DateTime<Utc>,
    /// Failures worth retrying (throttling, unavailable).
    transient: usize,
    /// The keys each data-set run references, read once per invocation.
    keys: data_sets::KeyCache,
}

impl Work<'_> {
    /// Finishes what earlier runs chose for expiry (oldest first), within the run's
    /// budget; returns the budget left.
    async fn resume(
        &mut self,
        in_scope: &impl Fn(&PolicyName) -> bool,
        report: &mut Report,
        log: &mut RunLog,
    ) -> Result<usize, FunctionError> {
        let mut expiring: Vec<RecoveryPoint> = self
            .deps
            .ports
            .catalog
            .by_status(Status::Expiring)
            .await?
            .into_iter()
            .filter(|p| in_scope(&p.policy))
            .collect();
        expiring.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        let mut budget = MAX_EXPIRIES_PER_RUN;
        let resumable = expiring.len();
        for rp in expiring.into_iter().take(budget) {
            budget -= 1;
            let reason = "chosen for expiry by an earlier run".to_owned();
            self.finish(&rp, reason, report, log, true).await;
        }
        report.remaining += resumable.saturating_sub(MAX_EXPIRIES_PER_RUN);
        Ok(budget)
    }

    fn skip(report: &mut Report, log: &mut RunLog, id: &RecoveryPointId, reason: String) {
        log.action("skipped", id.as_str(), reason.clone());
        report.skipped.push(Skipped {
            id: id.to_string(),
            reason,
        });
    }

    /// A failed step: counted as transient, or alerted once per point and problem.
    async fn fail(&mut self, report: &mut Report, log: &mut RunLog, rp: &RecoveryPoint, step: &str, e: &PortError) {
        let failure = ItemFailure {
            subject: rp.id.to_string(),
            code: e.code().into(),
            message: format!("{step}: {e}"),
        };
        log.action("failed", rp.id.as_str(), failure.message.clone());
        if e.is_transient() {
            self.transient += 1;
        } else {
            let now = self.deps.ports.clock.now();
            let alert = Alert::new(
                AlertKind::ExpiryFailed,
                Severity::High,
                format!("expiry of {} failed at {step}: {}", rp.snapshot_name, e.code()),
                format!("{}#{}", rp.id, e.code()),
                now,
            )
            .resource(&rp.resource.arn)
            .recovery_point(&rp.id)
            .location(&rp.location)
            .detail("policy", rp.policy.as_str())
            .detail("error", e.to_string());
            self.alerter.raise_or_log(alert, self.run_id).await;
        }
        report.failed.push(failure);
    }

    /// Re-reads a planned expiry, re-checks it, marks it `expiring` and finishes it.
    async fn expire(&mut self, id: &RecoveryPointId, reason: &str, report: &mut Report, log: &mut RunLog) {
        let ports = &self.deps.ports;
        let rp = match ports.catalog.get(id).await {
            Ok(Some(rp)) => rp,
            Ok(None) => return Self::skip(report, log, id, "no longer recorded".into()),
            Err(e) => {
                if e.is_transient() {
                    self.transient += 1;
                }
                log.action("failed", id.as_str(), format!("catalog read: {e}"));
                report.failed.push(ItemFailure::new(id.as_str(), &e));
                return;
            }
        };
        if !matches!(rp.status, Status::Available | Status::Copied | Status::Failed) {
            return Self::skip(report, log, id, format!("now {}, not expirable", rp.status));
        }
        if let Some(why) = hold(&rp.holds, self.hold_time) {
            return Self::skip(report, log, id, format!("{why} (placed since planning)"));
        }
        match self.copy_in_flight(&rp).await {
            Ok(Some(copy)) => return Self::skip(report, log, id, format!("source of copy {copy} in flight")),
            Ok(None) => {}
            Err(e) => return self.fail(report, log, &rp, "reading its copies", &e).await,
        }
        match self.floor(&rp).await {
            Ok(Some(why)) => return Self::skip(report, log, id, why),
            Ok(None) => {}
            Err(e) => return self.fail(report, log, &rp, "reading its resource's history", &e).await,
        }
        let Ok(next) = rp.transition(Status::Expiring, ports.clock.now()) else {
            return Self::skip(report, log, id, format!("cannot expire from {}", rp.status));
        };
        match ports.catalog.update(&next, rp.version).await {
            Ok(()) => {}
            Err(PortError::Conflict(_)) => {
                return Self::skip(report, log, id, "changed since it was read (another run?)".into());
            }
            Err(e) => return self.fail(report, log, &rp, "marking it expiring", &e).await,
        }
        self.finish(&next, reason.to_owned(), report, log, false).await;
    }

    /// The safety floor judged again from a fresh read of the resource's history: why
    /// `rp` must not be deleted now, if it must not.
    async fn floor(&self, rp: &RecoveryPoint) -> Result<Option<String>, PortError> {
        let history = self
            .deps
            .ports
            .catalog
            .by_resource(&rp.resource.arn, PLAN_POINTS_PER_RESOURCE)
            .await?;
        Ok(floor_at_apply(rp, &history))
    }

    /// The `copies` of a source still being made (deleting the source would break them).
    async fn copy_in_flight(&self, rp: &RecoveryPoint) -> Result<Option<RecoveryPointId>, PortError> {
        let Some(policy) = self
            .policies
            .get(&rp.policy)
            .filter(|p| !rp.is_copy() && !p.copies_for(rp.resource.kind).is_empty())
        else {
            return Ok(None);
        };
        let copies = self.deps.ports.catalog.get_many(&copy_ids(rp, policy)).await?;
        Ok(copies.into_iter().find(|c| c.status == Status::Pending).map(|c| c.id))
    }

    /// Deletes the snapshot of an `expiring` point (if it is Lifeboat's and still there)
    /// and marks the point `expired`.
    async fn finish(
        &mut self,
        rp: &RecoveryPoint,
        reason: String,
        report: &mut Report,
        log: &mut RunLog,
        resumed: bool,
    ) {
        let ports = &self.deps.ports;
        if resumed && let Some(why) = hold(&rp.holds, self.hold_time) {
            return Self::skip(report, log, &rp.id, format!("{why}, placed while it was expiring"));
        }
        // A point left `expiring` by an earlier run may have become the floor since (newer
        // points expired or failed): kept, and left `expiring` until it no longer is.
        if resumed {
            match self.floor(rp).await {
                Ok(Some(why)) => return Self::skip(report, log, &rp.id, format!("{why}; left expiring")),
                Ok(None) => {}
                Err(e) => return self.fail(report, log, rp, "reading its resource's history", &e).await,
            }
        }
        let mut deleted = false;
        let mut copies = None;
        if rp.resource.kind.is_data_set() {
            let Some(done) = self.delete_data_set(rp, report, log).await else {
                return;
            };
            deleted = true;
            copies = Some(done);
        } else if let Some(vault) = rp.backup_vault() {
            // Delegated to AWS Backup: Lifeboat deletes only what its own jobs made.
            if rp.backup_job_id().is_none() {
                return self.refuse(rp, report, log).await;
            }
            if let Some(arn) = &rp.snapshot_arn {
                if let Err(e) = ports.backup.delete_recovery_point(vault, arn).await {
                    return self
                        .fail(report, log, rp, "deleting its vault recovery point", &e)
                        .await;
                }
                deleted = true;
            }
        } else if let Some(snapshot) = match ports
            .snapshots
            .describe_snapshot(&rp.location, rp.resource.kind, &rp.snapshot_name)
            .await
        {
            Ok(s) => s,
            Err(e) => return self.fail(report, log, rp, "describing its snapshot", &e).await,
        } {
            if tag_value(&snapshot.tags, tags::CREATED_BY) != Some(tags::CREATED_BY_VALUE) {
                return self.refuse(rp, report, log).await;
            }
            if let Err(e) = ports
                .snapshots
                .delete_snapshot(&rp.location, rp.resource.kind, &rp.snapshot_name)
                .await
            {
                return self.fail(report, log, rp, "deleting its snapshot", &e).await;
            }
            deleted = true;
        }
        let Ok(done) = rp.transition(Status::Expired, ports.clock.now()) else {
            return Self::skip(report, log, &rp.id, format!("cannot expire from {}", rp.status));
        };
        match ports.catalog.update(&done, rp.version).await {
            Ok(()) => {}
            // Another run finished it (the delete is idempotent): nothing left to do.
            Err(PortError::Conflict(_)) => {
                return Self::skip(report, log, &rp.id, "finished by another run".into());
            }
            Err(e) => return self.fail(report, log, rp, "marking it expired", &e).await,
        }
        let what = if resumed { "resumed" } else { "expired" };
        let outcome = if let Some((n, shared)) = copies {
            format!("{n} backup copies deleted, {shared} kept for other runs: {reason}")
        } else if deleted {
            format!("snapshot deleted: {reason}")
        } else {
            format!("no snapshot left to delete: {reason}")
        };
        log.action(what, rp.id.as_str(), outcome);
        let expired = Expired {
            id: rp.id.clone(),
            reason,
            snapshot_deleted: deleted && copies.is_none(),
            copies_deleted: copies.map(|c| c.0),
            copies_shared: copies.map(|c| c.1),
        };
        if resumed {
            report.resumed.push(expired);
        } else {
            report.expired.push(expired);
        }
    }

    /// Deletes what a data set's `expiring` run alone holds: `Some((copies deleted, copies
    /// left for other runs))` when nothing is left, else `None` (reported: the run stays
    /// `expiring`).
    async fn delete_data_set(
        &mut self,
        rp: &RecoveryPoint,
        report: &mut Report,
        log: &mut RunLog,
    ) -> Option<(u64, u64)> {
        let Some(store) = &self.deps.backups else {
            Self::skip(
                report,
                log,
                &rp.id,
                "no backup store configured (BACKUP_REGION): left expiring".into(),
            );
            return None;
        };
        let catalog = self.deps.ports.catalog.as_ref();
        match data_sets::delete_run(store.0.as_ref(), catalog, rp, &mut self.keys).await {
            Ok(d) if d.locked_count > 0 => {
                let why = format!(
                    "{} version(s) still under Object Lock retention or legal hold, or refused by S3 (first: {}); {} deleted so far: left expiring for a later run",
                    d.locked_count,
                    d.locked.join(", "),
                    d.copies
                );
                Self::skip(report, log, &rp.id, why);
                None
            }
            Ok(d) => Some((d.copies, d.shared)),
            Err(e) => {
                self.fail(report, log, rp, "deleting its backup copies", &e).await;
                None
            }
        }
    }

    /// A snapshot Lifeboat did not create: never deleted; the point stays `expiring`.
    async fn refuse(&self, rp: &RecoveryPoint, report: &mut Report, log: &mut RunLog) {
        let message = format!(
            "snapshot {} in {} is not tagged {}={}: Lifeboat deletes only its own snapshots",
            rp.snapshot_name,
            rp.location,
            tags::CREATED_BY,
            tags::CREATED_BY_VALUE
        );
        log.action("refused", rp.id.as_str(), message.clone());
        let now = self.deps.ports.clock.now();
        let alert = Alert::new(
            AlertKind::ExpiryFailed,
            Severity::High,
            format!("refused to delete {}: not created by Lifeboat", rp.snapshot_name),
            format!("{}#not-lifeboat", rp.id),
            now,
        )
        .resource(&rp.resource.arn)
        .recovery_point(&rp.id)
        .location(&rp.location)
        .detail("policy", rp.policy.as_str())
        .detail(
            "action",
            "the record stays expiring: delete or re-tag the snapshot by hand; the next run finishes it",
        );
        self.alerter.raise_or_log(alert, self.run_id).await;
        report.refused.push(ItemFailure {
            subject: rp.id.to_string(),
            code: "not-created-by-lifeboat".into(),
            message,
        });
    }
}
