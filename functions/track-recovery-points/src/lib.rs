//! `track-recovery-points`: advances catalog states from what AWS reports
//! (`pending → available`, `available/copying → copied`, or `failed`), flags work stuck
//! past its deadline, adopts tagged snapshots the catalog lost (a crash between
//! `CreateDBSnapshot` and the catalog write), and checks each resource's RPO in every
//! location its policy names. Every problem is alerted once.
//!
//! Two triggers: the schedule's cycle, and the state changes AWS reports through EventBridge
//! (RDS snapshot events for Lifeboat's snapshots, AWS Backup job state changes). An event
//! is only a hint of which recovery point to look at: its state is read from AWS and
//! written conditionally, so an event arriving late, twice or out of order changes nothing
//! wrong, and the cycle reconciles whatever no event announced.
//!
//! Each invocation emits its metrics once, as CloudWatch EMF lines ([`lifeboat::metrics`]):
//! `BackupsSucceeded`/`BackupsFailed`, per location `CopiesSucceeded`/`CopiesFailed` and
//! `CopyLag` (capture to copy available), `StuckRecoveryPoints`, and per location
//! `RpoChecks`, `RpoBreaches` and `RecoveryPointAge`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::alerting::Alerter;
use lifeboat::app::{ItemFailure, Ports, RunLog, load_policies, settle_source};
use lifeboat::config::Config;
use lifeboat::events::{ChangeSubject, ScheduleTick, ServiceChange};
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat_domain::naming::SNAPSHOT_PREFIX;
use lifeboat_domain::planner::ProtectedResource;
use lifeboat_domain::rpo::RpoStatus;
use lifeboat_domain::{
    Alert, AlertKind, Failure, Policy, PolicyName, RecoveryPoint, RecoveryPointId, Severity, Status, Step,
};
use lifeboat_ports::{BackupJobState, PortError, SnapshotStatus};
use serde::Serialize;
use serde_json::Value;

mod reconcile;
mod rpo;

pub const FUNCTION: &str = "track-recovery-points";
const CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub struct Deps {
    pub ports: Ports,
    pub config: Config,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub run_id: String,
    /// `(recovery point, new status)` for every state change made.
    pub transitions: Vec<(RecoveryPointId, Status)>,
    pub stuck: Vec<RecoveryPointId>,
    pub adopted: Vec<RecoveryPointId>,
    /// Copies shared with the account their copy target names.
    pub shared: Vec<RecoveryPointId>,
    /// Completed recovery points found in a policy's AWS Backup vault without a record
    /// (made by an AWS Backup plan, or by hand): recorded as adopted; the vault's own
    /// lifecycle, not Lifeboat's retention, deletes them.
    pub imported: Vec<RecoveryPointId>,
    pub rpo: Vec<RpoStatus>,
    pub errors: Vec<ItemFailure>,
    /// Why a state change event changed nothing (it names nothing Lifeboat records, or a
    /// recovery point already past `pending`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// What track-recovery-points is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackRequest {
    /// The schedule's cycle: pending work, sources, reconcile, RPO.
    Tick(ScheduleTick),
    /// A state change AWS reported: the one recovery point it names is looked at now.
    Change(ServiceChange),
}

/// track-recovery-points as one invocation: a schedule tick in, a report out; the run records its
/// metrics as it goes.
#[derive(Debug)]
pub struct TrackRecoveryPoints;

impl Function for TrackRecoveryPoints {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = TrackRequest;
    type Output = Report;

    fn now(deps: &Deps) -> DateTime<Utc> {
        deps.ports.clock.now()
    }

    fn parse(deps: &Deps, payload: &Value) -> Result<TrackRequest, FunctionError> {
        if ServiceChange::is_one(payload) {
            return ServiceChange::parse(payload).map(TrackRequest::Change);
        }
        ScheduleTick::parse(payload, deps.ports.clock.now(), deps.config.event_time).map(TrackRequest::Tick)
    }

    async fn run(deps: &Deps, request: TrackRequest, invocation: &mut Invocation) -> Result<Report, FunctionError> {
        let run_id = invocation.run_id().to_owned();
        match request {
            TrackRequest::Tick(tick) => run_measured(deps, &tick, &run_id, &mut invocation.metrics).await,
            TrackRequest::Change(change) => on_change(deps, &change, &run_id, &mut invocation.metrics).await,
        }
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
    invoke::<TrackRecoveryPoints>(deps, event, sink).await
}

pub async fn run(deps: &Deps, tick: &ScheduleTick, run_id: &str) -> Result<Report, FunctionError> {
    let mut metrics = Metrics::new(FUNCTION, run_id, deps.ports.clock.now());
    run_measured(deps, tick, run_id, &mut metrics).await
}

/// Records what one tracked recovery point's new state means for the metrics.
fn measure(metrics: &mut Metrics, next: &RecoveryPoint, now: DateTime<Utc>) {
    match (next.is_copy(), next.status) {
        (false, Status::Available) => metrics.count(Metric::BackupsSucceeded, 1),
        (false, Status::Failed) => metrics.count(Metric::BackupsFailed, 1),
        (true, Status::Available) => {
            metrics.count_in(&next.location, Metric::CopiesSucceeded, 1);
            let lag = (now - next.created_at).num_seconds().max(0);
            metrics.sample_in(&next.location, Metric::CopyLag, u64::try_from(lag).unwrap_or(0));
        }
        (true, Status::Failed) => metrics.count_in(&next.location, Metric::CopiesFailed, 1),
        _ => {}
    }
}

/// Copies for another account are shared with it once they are available.
async fn share_copies(
    deps: &Deps,
    alerter: &Alerter,
    policies: &BTreeMap<PolicyName, Policy>,
    sources: &[RecoveryPoint],
    report: &mut Report,
    log: &mut RunLog,
    run_id: &str,
) {
    for copy in sources.iter().filter(|c| c.is_copy() && c.status == Status::Available) {
        let account = policies
            .get(&copy.policy)
            .and_then(|p| {
                p.copies_for(copy.resource.kind)
                    .iter()
                    .find(|t| t.region == copy.location)
            })
            .and_then(|t| t.account.clone());
        let Some(account) = account.filter(|a| !copy.shared_with.contains(a)) else {
            continue;
        };
        match share(deps, alerter, copy, &account, run_id).await {
            Ok(true) => {
                log.action("shared", copy.id.as_str(), format!("with account {account}"));
                report.shared.push(copy.id.clone());
            }
            Ok(false) => {}
            Err(e) => report.errors.push(ItemFailure::new(copy.id.as_str(), &e)),
        }
    }
}

/// [`run`], recording into `metrics`.
pub async fn run_measured(
    deps: &Deps,
    tick: &ScheduleTick,
    run_id: &str,
    metrics: &mut Metrics,
) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let alerter = ports.alerter();
    let now = ports.clock.now();
    // Deadlines and RPO are judged at the tick's scheduled time, so a late or replayed
    // delivery judges the same instant.
    let at = tick.scheduled_time;
    let mut log = RunLog::start(FUNCTION, run_id, now);
    let mut report = Report {
        run_id: run_id.to_owned(),
        ..Report::default()
    };
    let policies = load_policies(ports.catalog.as_ref(), &alerter, run_id, now).await?;

    // 1. Pending snapshots and copies: ask AWS how they are doing.
    let pending = ports.catalog.by_status(Status::Pending).await?;
    let results: Vec<_> = stream::iter(pending)
        .map(|rp| track_pending(deps, &alerter, rp, at, run_id))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    metrics.count(Metric::BackupsSucceeded, 0);
    metrics.count(Metric::BackupsFailed, 0);
    metrics.count(Metric::StuckRecoveryPoints, 0);
    for r in results {
        r.record(metrics, &mut log, &mut report, now);
    }

    // 2. Sources with copies: move them along available → copying → copied.
    let mut sources = ports.catalog.by_status(Status::Available).await?;
    sources.extend(ports.catalog.by_status(Status::Copying).await?);
    for source in sources.iter().filter(|s| !s.is_copy()) {
        let Some(policy) = policies.get(&source.policy) else {
            continue;
        };
        match settle_source(ports.catalog.as_ref(), source, policy, now).await {
            Ok(Some(status)) => {
                log.action("transition", source.id.as_str(), status.as_str());
                report.transitions.push((source.id.clone(), status));
            }
            Ok(None) => {}
            Err(e) => report.errors.push(ItemFailure::new(source.id.as_str(), &e)),
        }
    }

    // 2b. Copies for another account: shared with it once they are available.
    share_copies(deps, &alerter, &policies, &sources, &mut report, &mut log, run_id).await;

    // 3. Reconcile: tagged snapshots without a record are adopted.
    let resources = lifeboat::app::discover(ports, &deps.config, &policies).await?.protected;
    reconcile::reconcile(deps, &policies, &resources, &mut report, &mut log, now).await;

    // 4. RPO per resource and location (one time-ordered read per location; see rpo.rs).
    let (judged, failures) = rpo::judge(ports, &policies, &resources, at).await;
    report.errors.extend(failures);
    for rpo::Judged {
        protected: d,
        policy,
        statuses,
    } in judged
    {
        for status in statuses {
            metrics.count_in(&status.location, Metric::RpoChecks, 1);
            metrics.count_in(&status.location, Metric::RpoBreaches, u64::from(status.breached));
            if let Some(age) = status.age_secs {
                metrics.sample_in(&status.location, Metric::RecoveryPointAge, age);
            }
            if status.breached {
                rpo_alert(&alerter, d, policy, &status, run_id, now).await;
                log.action("rpo-breach", &d.resource.arn, status.location.to_string());
            }
            report.rpo.push(status);
        }
    }
    report.transitions.sort();
    log.finish(ports.catalog.as_ref(), ports.clock.now()).await;
    if report
        .errors
        .iter()
        .any(|e| e.code == "throttled" || e.code == "unavailable")
    {
        return Err(FunctionError::retryable(format!(
            "{} item(s) could not be tracked; safe to retry",
            report.errors.len()
        )));
    }
    Ok(report)
}

enum Tracked {
    Moved(Box<RecoveryPoint>),
    Stuck(RecoveryPointId),
    Unchanged,
    Error(ItemFailure),
}

impl Tracked {
    /// Into the run's metrics, log and report.
    fn record(self, metrics: &mut Metrics, log: &mut RunLog, report: &mut Report, now: DateTime<Utc>) {
        match self {
            Self::Moved(next) => {
                measure(metrics, &next, now);
                log.action("transition", next.id.as_str(), next.status.as_str());
                report.transitions.push((next.id, next.status));
            }
            Self::Stuck(id) => {
                metrics.count(Metric::StuckRecoveryPoints, 1);
                log.action("stuck", id.as_str(), "pending past its deadline");
                report.stuck.push(id);
            }
            Self::Unchanged => {}
            Self::Error(f) => report.errors.push(f),
        }
    }
}

/// A state change AWS reported: the recovery point it names, if Lifeboat records it and
/// it is still pending, is tracked now as the cycle would track it (its state read from
/// AWS, written conditionally). Anything else is left to the cycle and said in `ignored`.
pub async fn on_change(
    deps: &Deps,
    change: &ServiceChange,
    run_id: &str,
    metrics: &mut Metrics,
) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let now = ports.clock.now();
    let mut log = RunLog::start(FUNCTION, run_id, now);
    let mut report = Report {
        run_id: run_id.to_owned(),
        ..Report::default()
    };
    let point = match &change.subject {
        ChangeSubject::Snapshot { kind, name } if name.starts_with(&format!("{SNAPSHOT_PREFIX}-")) => {
            ports
                .catalog
                .get(&RecoveryPointId::new(&change.region, *kind, name))
                .await?
        }
        ChangeSubject::Snapshot { .. } => None,
        ChangeSubject::BackupJob { job_id } => ports
            .catalog
            .by_status(Status::Pending)
            .await?
            .into_iter()
            .find(|rp| rp.backup_job_id() == Some(job_id.as_str())),
    };
    match point {
        Some(rp) if rp.status == Status::Pending => {
            log.action("event", rp.id.as_str(), &change.what);
            track_pending(deps, &ports.alerter(), rp, now, run_id)
                .await
                .record(metrics, &mut log, &mut report, now);
        }
        Some(rp) => {
            report.ignored = Some(format!("{} is {} already", rp.id, rp.status.as_str()));
        }
        None => {
            // A Lifeboat snapshot without a record is adopted by the cycle's reconcile.
            report.ignored = Some(format!(
                "{:?} in {} names no pending recovery point",
                change.subject, change.region
            ));
        }
    }
    log.finish(ports.catalog.as_ref(), ports.clock.now()).await;
    if report
        .errors
        .iter()
        .any(|e| e.code == "throttled" || e.code == "unavailable")
    {
        return Err(FunctionError::retryable(
            "the recovery point could not be tracked; safe to retry",
        ));
    }
    Ok(report)
}

fn error(rp: &RecoveryPoint, e: &PortError) -> Tracked {
    Tracked::Error(ItemFailure::new(rp.id.as_str(), e))
}

async fn track_pending(deps: &Deps, alerter: &Alerter, rp: RecoveryPoint, at: DateTime<Utc>, run_id: &str) -> Tracked {
    let ports = &deps.ports;
    let now = ports.clock.now();
    let step = if rp.is_copy() { Step::Copy } else { Step::Create };
    let observed = match observe(deps, &rp).await {
        Ok(o) => o,
        Err(e) => return error(&rp, &e),
    };
    let next = match observed {
        Some(Observed::Done(arn, size)) => rp.transition(Status::Available, now).map(|mut next| {
            if arn.is_some() {
                next.snapshot_arn = arn;
            }
            next.size_bytes = size.or(next.size_bytes);
            next
        }),
        Some(Observed::Failed(code, message)) => rp.fail(
            Failure {
                step,
                code: code.into(),
                message,
            },
            now,
        ),
        None => rp.fail(
            Failure {
                step,
                code: "vanished".into(),
                message: "the snapshot no longer exists in AWS".into(),
            },
            now,
        ),
        Some(Observed::InProgress) => {
            let deadline = if rp.is_copy() {
                deps.config.copy_deadline
            } else {
                deps.config.snapshot_deadline
            };
            let age = (at - rp.updated_at).to_std().unwrap_or_default();
            if age <= deadline {
                return Tracked::Unchanged;
            }
            let what = if rp.is_copy() { "copy" } else { "snapshot" };
            let alert = Alert::new(
                AlertKind::Stuck,
                Severity::High,
                format!(
                    "{what} {} pending for {}",
                    rp.snapshot_name,
                    humantime::format_duration(std::time::Duration::from_secs(age.as_secs()))
                ),
                rp.id.as_str(),
                now,
            )
            .resource(&rp.resource.arn)
            .recovery_point(&rp.id)
            .location(&rp.location)
            .detail("deadline", humantime::format_duration(deadline).to_string());
            alerter.raise_or_log(alert, run_id).await;
            return Tracked::Stuck(rp.id);
        }
    };
    let Ok(next) = next else {
        return Tracked::Unchanged;
    };
    match ports.catalog.update(&next, rp.version).await {
        Ok(()) => {}
        Err(PortError::Conflict(_)) => return Tracked::Unchanged,
        Err(e) => return error(&rp, &e),
    }
    if let Some(f) = &next.failure {
        let (kind, what) = if rp.is_copy() {
            (AlertKind::CopyFailed, "copy")
        } else {
            (AlertKind::BackupFailed, "snapshot")
        };
        let alert = Alert::new(
            kind,
            Severity::High,
            format!(
                "{what} {} of {} failed: {}",
                rp.snapshot_name, rp.resource.id, f.message
            ),
            rp.id.as_str(),
            now,
        )
        .resource(&rp.resource.arn)
        .recovery_point(&rp.id)
        .location(&rp.location);
        alerter.raise_or_log(alert, run_id).await;
    }
    Tracked::Moved(Box::new(next))
}

/// Shares an available copy with `account` and records it (`false`: another run did).
/// A refusal that retrying will not cure is alerted; the next run tries again.
async fn share(
    deps: &Deps,
    alerter: &Alerter,
    copy: &RecoveryPoint,
    account: &str,
    run_id: &str,
) -> Result<bool, PortError> {
    let ports = &deps.ports;
    if let Err(e) = ports
        .snapshots
        .share_snapshot(&copy.location, copy.resource.kind, &copy.snapshot_name, account)
        .await
    {
        if !e.is_transient() {
            let now = ports.clock.now();
            let alert = Alert::new(
                AlertKind::CopyFailed,
                Severity::High,
                format!(
                    "copy {} cannot be shared with account {account}: {}",
                    copy.snapshot_name,
                    e.code()
                ),
                format!("{}#share#{account}#{}", copy.id, now.format("%Y-%m-%d")),
                now,
            )
            .resource(&copy.resource.arn)
            .recovery_point(&copy.id)
            .location(&copy.location)
            .detail("error", e.to_string());
            alerter.raise_or_log(alert, run_id).await;
        }
        return Err(e);
    }
    let mut next = copy.clone();
    next.shared_with.push(account.to_owned());
    next.version += 1;
    next.updated_at = ports.clock.now();
    match ports.catalog.update(&next, copy.version).await {
        Ok(()) => Ok(true),
        Err(PortError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What AWS says of a pending recovery point.
enum Observed {
    /// Usable; for an AWS Backup job, the vault's recovery point ARN; the size AWS reports.
    Done(Option<String>, Option<u64>),
    /// Failed: a code and AWS's words.
    Failed(&'static str, String),
    InProgress,
}

/// Asks the snapshot store, or AWS Backup for a delegated backup; `None` when AWS does not
/// know it (any more).
async fn observe(deps: &Deps, rp: &RecoveryPoint) -> Result<Option<Observed>, PortError> {
    let ports = &deps.ports;
    if let Some(job_id) = rp.backup_job_id() {
        return Ok(ports
            .backup
            .describe_backup_job(job_id)
            .await?
            .map(|job| match job.state {
                BackupJobState::Completed => Observed::Done(job.recovery_point_arn, job.size_bytes),
                s if s.is_final() => Observed::Failed(
                    "backup-job-failed",
                    format!(
                        "AWS Backup job {} ended {s:?}: {}",
                        job.job_id,
                        job.status_message.as_deref().unwrap_or("no reason given")
                    ),
                ),
                _ => Observed::InProgress,
            }));
    }
    Ok(ports
        .snapshots
        .describe_snapshot(&rp.location, rp.resource.kind, &rp.snapshot_name)
        .await?
        .map(|s| match s.status {
            SnapshotStatus::Available => Observed::Done(None, s.size_bytes),
            SnapshotStatus::Failed => Observed::Failed("snapshot-failed", "AWS reports the snapshot as failed".into()),
            SnapshotStatus::Creating | SnapshotStatus::Other(_) => Observed::InProgress,
        }))
}

async fn rpo_alert(
    alerter: &Alerter,
    d: &ProtectedResource,
    policy: &Policy,
    s: &RpoStatus,
    run_id: &str,
    now: DateTime<Utc>,
) {
    let primary = s.location == d.resource.region;
    let severity = if primary { Severity::Critical } else { Severity::High };
    let age = s.age_secs.map_or_else(
        || "no recovery point at all".to_owned(),
        |a| {
            format!(
                "newest good recovery point is {} old",
                humantime::format_duration(std::time::Duration::from_secs(a))
            )
        },
    );
    let newest = s.newest.as_ref().map_or("none", RecoveryPointId::as_str);
    // One alert per breach episode: a new recovery point ends the episode.
    let key = format!("{}#{}#{newest}", d.resource.arn, s.location);
    let alert = Alert::new(
        AlertKind::RpoBreach,
        severity,
        format!(
            "RPO breach for {} in {}: {age} (RPO {})",
            d.resource.id,
            s.location,
            humantime::format_duration(std::time::Duration::from_secs(s.target_secs))
        ),
        key,
        now,
    )
    .resource(&d.resource.arn)
    .location(&s.location)
    .detail("policy", policy.name.as_str())
    .detail("rpo_secs", s.target_secs.to_string())
    .detail("newest", newest);
    let alert = match &s.newest {
        Some(id) => alert.recovery_point(id),
        None => alert,
    };
    alerter.raise_or_log(alert, run_id).await;
}
