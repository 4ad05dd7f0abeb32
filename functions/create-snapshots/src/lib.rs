//! `create-snapshots`: on each schedule tick, one manual snapshot (a DynamoDB table's:
//! a native on-demand backup) per protected resource per schedule slot; on an admin request, an on-demand or emergency snapshot of the named
//! resources. Both are recorded in the catalog.
//!
//! What to create comes from the planner (`planner::requested_creates` and
//! `planner::scheduled_creates`): the rule in force for each resource (a criticality
//! window's stricter rule while one is open, from the policy or the resource's tag),
//! requests first. This function applies that list.
//!
//! Data sets a policy names (S3 prefixes, config bundles) are due by the same slots: the
//! tick starts their runs ([`data_runs`]) and their recovery points appear when the runs
//! complete.
//!
//! Idempotent by construction: the snapshot name is derived from resource + policy + slot
//! (or the request's time), so a replayed trigger finds the snapshot (or the record) it
//! already made; a request id already carried out is not carried out again. A crash
//! between `CreateDBSnapshot` and the catalog write is healed by the next trigger of the
//! same slot (`AlreadyExists` → adopt) or, for an older slot, by `track-recovery-points`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::app::{ItemFailure, Ports, RunLog, discover, load_policies};
use lifeboat::config::Config;
use lifeboat::events::{BackupRequest, ScheduleTick};
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat_domain::planner::{self, CreateAction, EmergencyRequest};
use lifeboat_domain::{Policy, PolicyName, RecoveryPointId};
use serde::Serialize;
use serde_json::Value;

pub const FUNCTION: &str = "create-snapshots";
/// Snapshots started concurrently within one run.
const CONCURRENCY: usize = 8;
/// Snapshots started between two looks at the clock.
const CHUNK: usize = 4 * CONCURRENCY;
/// Stop starting backups when less than this is left before the Lambda deadline.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_mins(1);
/// A request whose run crashed may be taken up again after this long.
const REQUEST_STALE_AFTER: chrono::Duration = chrono::Duration::minutes(15);

pub mod data_runs;
mod starting;

pub use data_runs::{DataRuns, RunTargets};
pub use starting::snapshot_tags;
use starting::{start_chunk, unknown_policy};

#[derive(Debug, Clone)]
pub struct Deps {
    pub ports: Ports,
    pub config: Config,
    /// What starts the runs of data sets (S3 prefixes, config bundles).
    pub runs: DataRuns,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub run_id: String,
    /// The slot each policy's tick fell into.
    pub slots: BTreeMap<String, String>,
    pub created: Vec<RecoveryPointId>,
    /// Data sets' runs started (queued or running): their recovery points are recorded
    /// when the runs complete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub started: Vec<RecoveryPointId>,
    /// Snapshots found in AWS that the catalog did not know (after a crash).
    pub adopted: Vec<RecoveryPointId>,
    /// Already recorded for this slot: nothing done.
    pub already_recorded: usize,
    pub failed: Vec<ItemFailure>,
    /// Resources not backed up this time, and why.
    pub skipped: Vec<ItemFailure>,
    /// Backups not started because the invocation's time ran short: the run ends
    /// `Retryable` and the retry (idempotent) starts them.
    pub remaining: usize,
    /// For a backup request: its id, and whether it had already been carried out (or is
    /// being carried out by another run), in which case nothing was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// What started this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Tick(ScheduleTick),
    Request(BackupRequest),
}

impl Trigger {
    /// Parses the event and checks its time against `now` (the clock): a tick or a request
    /// dated outside `bounds` is refused before anything is read or written.
    pub fn parse(
        event: &Value,
        now: chrono::DateTime<chrono::Utc>,
        bounds: lifeboat_domain::event_time::EventTimeBounds,
    ) -> Result<Self, FunctionError> {
        if BackupRequest::is_one(event) {
            let request = BackupRequest::parse(event)?;
            if let Some(at) = request.requested_at {
                lifeboat::events::check_time("request time", at, now, bounds)?;
            }
            Ok(Self::Request(request))
        } else {
            ScheduleTick::parse(event, now, bounds).map(Self::Tick)
        }
    }
}

/// create-snapshots as one invocation: a schedule tick or a backup request in, a report out.
#[derive(Debug)]
pub struct CreateSnapshots;

impl Function for CreateSnapshots {
    const NAME: &'static str = FUNCTION;
    const DEADLINE_MARGIN: std::time::Duration = DEADLINE_MARGIN;
    type Deps = Deps;
    type Request = Trigger;
    type Output = Report;

    fn now(deps: &Deps) -> DateTime<Utc> {
        deps.ports.clock.now()
    }

    fn parse(deps: &Deps, payload: &Value) -> Result<Trigger, FunctionError> {
        Trigger::parse(payload, deps.ports.clock.now(), deps.config.event_time)
    }

    async fn run(deps: &Deps, trigger: Trigger, invocation: &mut Invocation) -> Result<Report, FunctionError> {
        let (run_id, stop_at) = (invocation.run_id(), invocation.stop_at());
        match trigger {
            Trigger::Tick(tick) => run_until(deps, &tick, run_id, stop_at).await,
            Trigger::Request(request) => run_request_until(deps, &request, run_id, stop_at).await,
        }
    }

    fn record_metrics(_: &Deps, result: &Result<Report, FunctionError>, _: std::time::Duration, metrics: &mut Metrics) {
        if let Ok(report) = result {
            record_metrics(report, metrics);
        }
    }
}

/// The Lambda entry point.
pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the invocation's metrics to `sink` (once, also when the run fails):
/// `BackupsStarted`, and `BackupsFailed` for backups AWS refused to start.
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<Report, FunctionError> {
    invoke::<CreateSnapshots>(deps, event, sink).await
}

/// A run's metrics.
pub fn record_metrics(report: &Report, metrics: &mut Metrics) {
    metrics.count(Metric::BackupsStarted, report.created.len() as u64);
    metrics.count(Metric::BackupsFailed, report.failed.len() as u64);
}

enum Outcome {
    Created(RecoveryPointId),
    Started(RecoveryPointId, data_runs::Started),
    Adopted(RecoveryPointId),
    AlreadyRecorded,
    Failed(ItemFailure, bool),
}

pub async fn run(deps: &Deps, tick: &ScheduleTick, run_id: &str) -> Result<Report, FunctionError> {
    run_until(deps, tick, run_id, None).await
}

/// [`run`], starting no backup at or after `stop_at` (what is left is reported and the
/// run ends `Retryable`: a retry of the same tick starts only what is missing).
pub async fn run_until(
    deps: &Deps,
    tick: &ScheduleTick,
    run_id: &str,
    stop_at: Option<DateTime<Utc>>,
) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let alerter = ports.alerter();
    let now = ports.clock.now();
    let mut log = RunLog::start(FUNCTION, run_id, now);
    let mut report = Report {
        run_id: run_id.to_owned(),
        ..Report::default()
    };

    let policies = load_policies(ports.catalog.as_ref(), &alerter, run_id, now).await?;
    if let Some(p) = &tick.policy
        && !policies.contains_key(p)
    {
        return Err(FunctionError::not_found(format!(
            "policy {p} does not exist or is invalid"
        )));
    }
    let found = discover(ports, &deps.config, &policies).await?;
    for (resource, tag) in &found.unknown_policy {
        report
            .skipped
            .push(unknown_policy(&alerter, resource, tag, run_id, now).await);
        log.action("skipped", &resource.arn, "unknown policy");
    }
    report.skipped.extend(found.problems.into_iter().map(|p| {
        if p.code == "bad-window-tag" {
            ItemFailure {
                message: format!("{}; backed up under the policy's own rule", p.message),
                ..p
            }
        } else {
            p
        }
    }));
    // A tick for one policy touches only that policy's resources.
    let mut resources = found.protected;
    resources.retain(|r| tick.policy.as_ref().is_none_or(|p| p == &r.policy));
    // The rule in force at the scheduled time: the window rule while a window is open.
    let due = planner::scheduled_creates(&policies, &resources, tick.scheduled_time);
    let has_slot: HashSet<&str> = due.iter().map(|c| c.resource.arn.as_str()).collect();
    for r in &resources {
        if !has_slot.contains(r.resource.arn.as_str()) {
            report.skipped.push(ItemFailure {
                subject: r.resource.arn.clone(),
                code: "no-slot".into(),
                message: format!("the schedule of policy {} has not fired yet", r.policy),
            });
        }
    }
    for c in &due {
        report.slots.insert(c.policy.to_string(), c.slot.to_string());
    }
    apply(deps, &policies, due, report, log, run_id, stop_at).await
}

/// An on-demand or emergency backup of the named resources. Resources no policy protects
/// are refused (the request names which); a replayed request does nothing.
pub async fn run_request(deps: &Deps, request: &BackupRequest, run_id: &str) -> Result<Report, FunctionError> {
    run_request_until(deps, request, run_id, None).await
}

/// [`run_request`] with a time limit, as [`run_until`].
pub async fn run_request_until(
    deps: &Deps,
    request: &BackupRequest,
    run_id: &str,
    stop_at: Option<DateTime<Utc>>,
) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let alerter = ports.alerter();
    let now = ports.clock.now();
    let mut log = RunLog::start(FUNCTION, run_id, now);
    let mut report = Report {
        run_id: run_id.to_owned(),
        request_id: Some(request.request_id.clone()),
        ..Report::default()
    };
    let policies = load_policies(ports.catalog.as_ref(), &alerter, run_id, now).await?;
    // Unknown-policy alerts belong to the scheduled runs; a request only names its own.
    let resources = discover(ports, &deps.config, &policies).await?.protected;
    // A data set's on-demand run is a request of its own function (backup-objects with a
    // requestId, backup-config): not a snapshot.
    let data_sets: BTreeSet<&str> = resources
        .iter()
        .filter(|r| r.resource.kind.is_data_set())
        .map(|r| r.resource.arn.as_str())
        .collect();
    let known: BTreeSet<&str> = resources
        .iter()
        .filter(|r| !r.resource.kind.is_data_set())
        .map(|r| r.resource.arn.as_str())
        .collect();
    let (wanted, unprotected): (Vec<&String>, Vec<&String>) =
        request.resources.iter().partition(|arn| known.contains(arn.as_str()));
    let (data_set_asked, unprotected): (Vec<&String>, Vec<&String>) = unprotected
        .into_iter()
        .partition(|arn| data_sets.contains(arn.as_str()));
    for arn in data_set_asked {
        report.skipped.push(ItemFailure {
            subject: arn.clone(),
            code: "data-set".into(),
            message: "a data set's on-demand run is asked of backup-objects (with a requestId) or backup-config, not create-snapshots".into(),
        });
    }
    if wanted.is_empty() {
        let why: Vec<String> = report
            .skipped
            .iter()
            .map(|f| format!("{}: {}", f.subject, f.message))
            .chain(unprotected.iter().map(|a| (*a).clone()))
            .collect();
        return Err(FunctionError::not_found(format!(
            "none of the requested resources is a database or table protected by a valid policy (tag it with {}): {}",
            deps.config.policy_tag_key,
            why.join(", ")
        )));
    }
    for arn in unprotected {
        report.skipped.push(ItemFailure {
            subject: arn.clone(),
            code: "not-protected".into(),
            message: format!(
                "not found, or not tagged with a valid policy ({})",
                deps.config.policy_tag_key
            ),
        });
    }

    let marker = format!("backup-request#{}", request.request_id);
    if !ports
        .catalog
        .claim_marker(&marker, now, now - REQUEST_STALE_AFTER)
        .await?
    {
        tracing::info!(request = %request.request_id, "backup request already carried out or under way");
        report.replayed = true;
        log.action("replayed", &request.request_id, "nothing done");
        log.finish(ports.catalog.as_ref(), ports.clock.now()).await;
        return Ok(report);
    }
    let requested_at = request.requested_at.unwrap_or(now);
    let requests: Vec<EmergencyRequest> = wanted
        .into_iter()
        .map(|arn| EmergencyRequest {
            resource_arn: arn.clone(),
            requested_at,
            reason: request.reason.clone(),
            emergency: request.emergency,
        })
        .collect();
    let due = planner::requested_creates(&resources, &requests);
    tracing::info!(
        request = %request.request_id,
        requested_by = request.requested_by.as_deref().unwrap_or("-"),
        emergency = request.emergency,
        resources = due.len(),
        "backup request"
    );
    match apply(deps, &policies, due, report, log, run_id, stop_at).await {
        Ok(report) => {
            ports.catalog.confirm_marker(&marker).await?;
            Ok(report)
        }
        Err(e) => {
            // Let a retry of this request carry out what is left.
            if let Err(release) = ports.catalog.release_marker(&marker).await {
                tracing::warn!(error = %release, "could not release the request marker; it goes stale by itself");
            }
            Err(e)
        }
    }
}

/// Carries out the creates that the catalog does not record yet.
async fn apply(
    deps: &Deps,
    policies: &BTreeMap<PolicyName, Policy>,
    due: Vec<CreateAction>,
    mut report: Report,
    mut log: RunLog,
    run_id: &str,
    stop_at: Option<DateTime<Utc>>,
) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let alerter = ports.alerter();
    let ids: Vec<_> = due.iter().map(|c| c.id.clone()).collect();
    let recorded = lifeboat::app::recorded(ports.catalog.as_ref(), &ids).await?;
    report.already_recorded = due.iter().filter(|c| recorded.contains(&c.id)).count();
    let mut todo: Vec<_> = due.into_iter().filter(|c| !recorded.contains(&c.id)).collect();

    // Started a chunk at a time, so a run that nears the Lambda deadline stops cleanly
    // between chunks and leaves the rest to the retry. The first chunk always starts, so
    // every run (and every retry) makes progress.
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(todo.len());
    while !todo.is_empty() {
        if !outcomes.is_empty() && stop_at.is_some_and(|t| ports.clock.now() >= t) {
            report.remaining = todo.len();
            break;
        }
        let rest = todo.split_off(todo.len().min(CHUNK));
        let chunk = std::mem::replace(&mut todo, rest);
        outcomes.extend(start_chunk(deps, policies, &alerter, chunk, run_id).await);
    }
    let mut transient = 0usize;
    for outcome in outcomes {
        match outcome {
            Outcome::Created(id) => {
                log.action("created", id.as_str(), "snapshot started and recorded");
                report.created.push(id);
            }
            Outcome::Adopted(id) => {
                log.action("adopted", id.as_str(), "existing snapshot recorded");
                report.adopted.push(id);
            }
            Outcome::Started(id, how) => {
                let what = match how {
                    data_runs::Started::Queued { function } => format!("run queued: {function} invoked"),
                    data_runs::Started::Execution { arn } => format!("run under way: execution {arn}"),
                    data_runs::Started::AlreadyRan => {
                        "its execution already ran (one per run name): not started again".to_owned()
                    }
                };
                log.action("started", id.as_str(), what);
                report.started.push(id);
            }
            Outcome::AlreadyRecorded => report.already_recorded += 1,
            Outcome::Failed(f, is_transient) => {
                transient += usize::from(is_transient);
                log.action("failed", &f.subject, format!("{}: {}", f.code, f.message));
                report.failed.push(f);
            }
        }
    }
    report.created.sort();
    report.started.sort();
    report.adopted.sort();
    log.finish(ports.catalog.as_ref(), ports.clock.now()).await;
    if report.remaining > 0 {
        tracing::warn!(
            remaining = report.remaining,
            created = report.created.len(),
            "stopped before the Lambda deadline"
        );
        return Err(FunctionError::retryable(format!(
            "{} backup(s) not started before the invocation's deadline ({} started); the trigger is safe to retry and starts only those",
            report.remaining,
            report.created.len() + report.adopted.len()
        )));
    }
    if transient > 0 {
        // Everything else is done; a retry of this trigger redoes only what failed.
        return Err(FunctionError::retryable(format!(
            "{transient} snapshot(s) hit throttling or service errors after retries; the trigger is safe to retry"
        )));
    }
    Ok(report)
}
