//! `export-snapshots`: the database long-term tier. RDS instance and Aurora cluster
//! snapshots are exported to S3 (StartExportTask) into the backup bucket, their objects
//! moved to the policy's Glacier class (DEEP_ARCHIVE by default), and the catalog links
//! the snapshot's recovery point with its export.
//!
//! One event, three modes (`{"mode": "start" | "poll" | "run", "dryRun"?: bool,
//! "maxObjects"?: n}`; the daily schedule sends `run`, which starts and then polls):
//!
//! - **start**: for each RDS instance or Aurora cluster whose policy has an `export` rule
//!   and whose last export (not failed) started `every` ago or longer, the newest
//!   restorable snapshot recovery point in the backup bucket's region (RDS exports only
//!   into a bucket of the snapshot's region: the DR copy) is exported under
//!   `lifeboat/exports/data/<resource>/<snapshot>/`, with an ExportTaskIdentifier derived
//!   from the recovery point and the attempt number. A replay, or a rerun after a crash,
//!   names the same task: RDS answers "already exists" and the task is adopted, never
//!   started twice. The export is recorded on the snapshot's recovery point by a
//!   version-checked write.
//! - **poll**: every export in flight is looked up. A COMPLETE one has its data objects
//!   (the Parquet files; RDS's JSON descriptions stay readable) moved to the class: each
//!   read and hashed by Lifeboat, copied onto its own key in the class (multipart above the
//!   store's threshold), the copy's size, class and S3-reported SHA-256 checked, and the
//!   superseded STANDARD version deleted after re-checking its lock and legal hold. Then a
//!   manifest (keys, versions, sizes, SHA-256s, class) is written beside the export and the
//!   record becomes `archived` with the manifest's key and SHA-256. A FAILED or CANCELED
//!   export is alerted once (before it is recorded, so a crash in between still alerts
//!   once) and recorded `failed` with RDS's reason; the next start exports anew under a new
//!   task id. An object already in the class (moved by a crashed invocation, or by the
//!   lifecycle rule) is recorded, not copied again.
//!   An export RDS reports COMPLETE with nothing under its prefix is failed, not archived.
//! - **expiry** (with poll): an archived export kept its policy's `keep` (counted from
//!   when it reached the class) has its objects deleted, after re-checking the age, the
//!   recovery point's legal hold, lock and use, and every object version's lock and legal
//!   hold (one that may not go keeps the whole export). The manifest stays as history and
//!   the record becomes `expired`; that snapshot is not exported again.
//! - Every invocation except a dry run writes the backup bucket's lifecycle rules for the
//!   exported resources (their data moves to the class at day 0 on AWS), keeping every
//!   rule Lifeboat's export-snapshots does not own.
//!
//! One invocation at a time (a catalog lease). A dry run reports the starts it would make,
//! the state of the exports in flight and the expiries due, changing nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::alerting::Alerter;
use lifeboat::app::{PointUpdateError, RunLog};
use lifeboat::error::ErrorType;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat::object_store::digest;
use lifeboat::object_store::runs::points_in;
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::export::{
    ExportManifest, ExportObject, ExportRecord, ExportRule, ExportStatus, RULE_ID_PREFIX, export_prefix,
    is_data_object, lifecycle_rule, manifest_key, task_id,
};
use lifeboat_domain::tiering::{LifecycleRule, S3Class};
use lifeboat_domain::{
    Alert, AlertKind, PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, Severity, Status,
};
use lifeboat_ports::objects::{CopyRequest, ObjectLock, ObjectStore, WriteOptions};
use lifeboat_ports::{
    Catalog, Clock, ExportRequest, ExportTask, ExportTaskState, Notifier, PortError, PortResult, SnapshotExporter,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const FUNCTION: &str = "export-snapshots";
const LEASE: &str = "export-snapshots";
const LEASE_FOR: chrono::Duration = chrono::Duration::minutes(16);
/// Stop taking new objects this long before the Lambda deadline.
const DEADLINE_MARGIN: Duration = Duration::from_mins(2);
/// Objects moved at once.
const CONCURRENCY: usize = 8;
/// Attempts at recording a change when other functions update the same recovery point.
const WRITE_ATTEMPTS: usize = 4;
/// Copies made per invocation by default; the rest waits for the next one.
pub const DEFAULT_MAX_OBJECTS: u64 = 10_000;
/// Metadata on a moved object: Lifeboat's SHA-256 of its bytes, the export task, and the
/// version it superseded (deleted once the copy is verified; kept when locked or held).
pub const META_SHA256: &str = "lifeboat-sha256";
pub const META_TASK: &str = "lifeboat-export-task";
pub const META_SUPERSEDED: &str = "lifeboat-superseded";
/// Recovery points whose exports are looked after: an export outlives its snapshot (the
/// point may be expired while its export is in flight or kept).
const WATCHED: [Status; 5] = [
    Status::Available,
    Status::Copying,
    Status::Copied,
    Status::Expiring,
    Status::Expired,
];
const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Clone)]
pub struct Deps {
    pub catalog: Arc<dyn Catalog>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// S3 in the backup region.
    pub backup: Arc<dyn ObjectStore>,
    /// RDS exports in the backup region.
    pub exporter: Arc<dyn SnapshotExporter>,
    pub settings: S3Settings,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Start the exports that are due.
    Start,
    /// Follow the exports in flight: archive the complete ones, record the failed ones.
    Poll,
    /// Start, then poll (the daily schedule).
    Run,
}

impl Mode {
    fn starts(self) -> bool {
        matches!(self, Self::Start | Self::Run)
    }

    fn polls(self) -> bool {
        matches!(self, Self::Poll | Self::Run)
    }
}

/// `{"mode": "run"}`; `dryRun` only reports; `maxObjects` caps the copies of one
/// invocation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    pub mode: Mode,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub max_objects: Option<u64>,
}

impl Request {
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        if !event.is_object() {
            return Err(FunctionError::invalid(
                "expected an export request object, e.g. {\"mode\": \"run\"} (modes: start, poll, run)",
            ));
        }
        let req: Self = serde_json::from_value(event.clone()).map_err(|e| {
            FunctionError::invalid(format!(
                "malformed export request (expected {{\"mode\": \"start\" | \"poll\" | \"run\", \"dryRun\"?: bool, \"maxObjects\"?: n}}): {e}"
            ))
        })?;
        if req.max_objects == Some(0) {
            return Err(FunctionError::invalid("maxObjects must be at least 1"));
        }
        Ok(req)
    }
}

/// An export started (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub recovery_point: RecoveryPointId,
    pub task_id: String,
    pub prefix: String,
    pub attempt: u32,
    /// RDS already had the task (a replay or a rerun after a crash): adopted, not started.
    pub adopted: bool,
    pub reason: String,
}

/// A resource whose export waits, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub resource: String,
    pub reason: String,
}

/// An export RDS is still running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Running {
    pub recovery_point: RecoveryPointId,
    pub task_id: String,
    pub state: String,
    pub percent_progress: Option<i32>,
}

/// An export whose objects are (or, partly moved, are being) moved to the class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archived {
    pub recovery_point: RecoveryPointId,
    pub task_id: String,
    pub class: S3Class,
    pub objects: u64,
    pub bytes: u64,
    /// Objects copied into the class by this invocation.
    pub copied: u64,
    /// Objects found already in the class (a crashed invocation or the lifecycle rule
    /// moved them): recorded, not copied again.
    pub recovered: u64,
    /// Objects left for the next invocation (budget or deadline).
    pub remaining: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
    pub superseded_pending: u64,
}

/// An export that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub recovery_point: RecoveryPointId,
    pub task_id: String,
    pub reason: String,
    pub alerted: bool,
}

/// An export whose objects were deleted after its policy's `keep`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub recovery_point: RecoveryPointId,
    pub task_id: String,
    pub archived_at: Option<DateTime<Utc>>,
    /// Object versions deleted (data, RDS's JSON descriptions, superseded versions).
    pub deleted: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    /// Another invocation held the lease: nothing was done.
    pub busy: bool,
    /// Lifecycle rules export-snapshots owns on the backup bucket (or would write).
    pub lifecycle_rules: Vec<LifecycleRule>,
    pub started: Vec<Started>,
    pub waiting: Vec<Waiting>,
    pub running: Vec<Running>,
    /// Exports archived by this invocation.
    pub archived: Vec<Archived>,
    /// Exports whose move continues in the next invocation.
    pub moving: Vec<Archived>,
    pub failed: Vec<Failed>,
    /// Exports kept their policy's `keep` whose objects were deleted (or, in a dry run,
    /// would be).
    pub expired: Vec<Expired>,
    /// Exports past their `keep` that a hold or lock keeps, and why.
    pub kept: Vec<Waiting>,
    pub objects_copied: u64,
    pub bytes_copied: u64,
    pub alerts: usize,
}

/// export-snapshots as one invocation: a start, poll or dry-run request in, a report out.
#[derive(Debug)]
pub struct ExportSnapshots;

impl Function for ExportSnapshots {
    const NAME: &'static str = FUNCTION;
    const DEADLINE_MARGIN: Duration = DEADLINE_MARGIN;
    type Deps = Deps;
    type Request = Request;
    type Output = Report;

    fn now(deps: &Deps) -> DateTime<Utc> {
        deps.clock.now()
    }

    fn parse(_: &Deps, payload: &Value) -> Result<Request, FunctionError> {
        Request::parse(payload)
    }

    async fn run(deps: &Deps, req: Request, invocation: &mut Invocation) -> Result<Report, FunctionError> {
        run(deps, &req, invocation.run_id(), invocation.stop_at()).await
    }

    fn record_metrics(deps: &Deps, result: &Result<Report, FunctionError>, _: Duration, metrics: &mut Metrics) {
        if let Ok(r) = result {
            record_metrics(r, &deps.settings.backup_region, metrics);
        }
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the invocation's metrics to `sink` (once, also when it fails).
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<Report, FunctionError> {
    invoke::<ExportSnapshots>(deps, event, sink).await
}

/// A run's metrics, in the backup region (a dry run records none): `ExportsStarted` (new
/// exports, not adopted ones), `ExportsArchived`, `BytesExported` and `ExportFailures`.
pub fn record_metrics(r: &Report, region: &Region, metrics: &mut Metrics) {
    if r.dry_run {
        return;
    }
    let new = r.started.iter().filter(|s| !s.adopted).count() as u64;
    metrics.count_in(region, Metric::ExportsStarted, new);
    metrics.count_in(region, Metric::ExportsArchived, r.archived.len() as u64);
    metrics.count_in(region, Metric::BytesExported, r.archived.iter().map(|a| a.bytes).sum());
    metrics.count_in(region, Metric::ExportFailures, r.failed.len() as u64);
}

fn exportable(kind: ResourceKind) -> bool {
    matches!(kind, ResourceKind::RdsInstance | ResourceKind::AuroraCluster)
}

pub async fn run(
    deps: &Deps,
    req: &Request,
    run_id: &str,
    stop_at: Option<DateTime<Utc>>,
) -> Result<Report, FunctionError> {
    let s = &deps.settings;
    let rules: BTreeMap<PolicyName, ExportRule> = deps
        .catalog
        .policies()
        .await?
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|p| p.export.map(|e| (p.name, e)))
        .collect();
    let mut points: Vec<RecoveryPoint> = points_in(deps.catalog.as_ref(), &WATCHED)
        .await?
        .into_iter()
        .filter(|p| p.location == s.backup_region && exportable(p.resource.kind))
        .collect();
    points.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    let mut report = Report {
        dry_run: req.dry_run,
        lifecycle_rules: desired_rules(&points, &rules),
        ..Report::default()
    };
    if req.dry_run {
        if req.mode.starts() {
            start(deps, &points, &rules, true, run_id, &mut report).await?;
        }
        if req.mode.polls() {
            for rp in points
                .iter()
                .filter(|p| p.export.as_ref().is_some_and(|e| e.status.in_flight()))
            {
                if let Some(e) = &rp.export {
                    let task = deps.exporter.describe_export(&e.task_id).await?;
                    report.running.push(Running {
                        recovery_point: rp.id.clone(),
                        task_id: e.task_id.clone(),
                        state: task.map_or_else(|| "UNKNOWN".to_owned(), |t| t.state.as_str().to_owned()),
                        percent_progress: None,
                    });
                }
            }
            expire(deps, &points, &rules, true, &mut report).await?;
        }
        return Ok(report);
    }
    let now = deps.clock.now();
    let holder = format!("{FUNCTION}/{run_id}");
    if !deps.catalog.acquire_lease(LEASE, &holder, now + LEASE_FOR, now).await? {
        report.busy = true;
        return Ok(report);
    }
    let result = apply(deps, req, run_id, stop_at, &points, &rules, &mut report).await;
    if let Err(e) = deps.catalog.release_lease(LEASE, &holder).await {
        tracing::warn!(error = %e, "could not release the export-snapshots lease (it expires)");
    }
    result.map(|()| report)
}

async fn apply(
    deps: &Deps,
    req: &Request,
    run_id: &str,
    stop_at: Option<DateTime<Utc>>,
    points: &[RecoveryPoint],
    rules: &BTreeMap<PolicyName, ExportRule>,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let s = &deps.settings;
    let mut log = RunLog::start(FUNCTION, run_id, deps.clock.now());
    let count = lifeboat::object_store::replace_owned_rules_leased(
        deps.backup.as_ref(),
        deps.catalog.as_ref(),
        deps.clock.as_ref(),
        &s.backup_bucket,
        RULE_ID_PREFIX,
        &report.lifecycle_rules,
        &format!("{FUNCTION}/{run_id}"),
    )
    .await?;
    log.action("lifecycle", &s.backup_bucket, format!("{count} rules"));
    if req.mode.starts() {
        start(deps, points, rules, false, run_id, report).await?;
        for st in &report.started {
            log.action(
                if st.adopted { "adopted" } else { "started" },
                st.recovery_point.as_str(),
                st.task_id.clone(),
            );
        }
    }
    if req.mode.polls() {
        let mut budget = req.max_objects.unwrap_or(DEFAULT_MAX_OBJECTS);
        let mut errors = Vec::new();
        // Re-read: a start above may have added exports in flight.
        let ids: Vec<RecoveryPointId> = points
            .iter()
            .filter(|p| p.export.as_ref().is_some_and(|e| e.status.in_flight()))
            .map(|p| p.id.clone())
            .chain(report.started.iter().map(|s| s.recovery_point.clone()))
            .collect();
        let fresh = deps.catalog.get_many(&ids).await?;
        for rp in fresh
            .iter()
            .filter(|p| p.export.as_ref().is_some_and(|e| e.status.in_flight()))
        {
            if let Err(e) = poll_one(deps, rp, run_id, stop_at, &mut budget, report).await {
                tracing::error!(recovery_point = %rp.id, error = %e, "export not followed up");
                errors.push(e);
            }
        }
        if errors.is_empty() {
            let watched: Vec<RecoveryPointId> = points.iter().map(|p| p.id.clone()).collect();
            let now_points = deps.catalog.get_many(&watched).await?;
            if let Err(e) = expire(deps, &now_points, rules, false, report).await {
                errors.push(e);
            }
        }
        for a in &report.archived {
            log.action("archived", a.recovery_point.as_str(), format!("{} objects", a.objects));
        }
        for x in &report.expired {
            log.action(
                "expired",
                x.recovery_point.as_str(),
                format!("{} versions deleted", x.deleted),
            );
        }
        for f in &report.failed {
            log.action("failed", f.recovery_point.as_str(), f.reason.clone());
        }
        if let Some(first) = errors.first() {
            log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(FunctionError::new(first.kind, all.join("; ")));
        }
    }
    log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
    Ok(())
}

/// One rule per exported resource (its newest point's policy decides the class).
fn desired_rules(points: &[RecoveryPoint], rules: &BTreeMap<PolicyName, ExportRule>) -> Vec<LifecycleRule> {
    let mut by_resource: BTreeMap<&str, S3Class> = BTreeMap::new();
    for p in points {
        // Sorted oldest first: the newest wins.
        if let Some(rule) = rules.get(&p.policy) {
            by_resource.insert(p.resource.id.as_str(), rule.class);
        } else if let Some(e) = &p.export {
            by_resource.entry(p.resource.id.as_str()).or_insert(e.class);
        }
    }
    by_resource
        .into_iter()
        .map(|(id, class)| lifecycle_rule(id, class))
        .collect()
}

// --- start -----------------------------------------------------------------------------

async fn start(
    deps: &Deps,
    points: &[RecoveryPoint],
    rules: &BTreeMap<PolicyName, ExportRule>,
    dry_run: bool,
    run_id: &str,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let now = deps.clock.now();
    let mut by_resource: BTreeMap<&str, Vec<&RecoveryPoint>> = BTreeMap::new();
    for p in points {
        by_resource.entry(p.resource.arn.as_str()).or_default().push(p);
    }
    for (arn, pts) in by_resource {
        // Oldest first: the last is the newest.
        let Some(newest) = pts.last() else { continue };
        let Some(rule) = rules.get(&newest.policy) else {
            continue;
        };
        let wait = |reason: String| Waiting {
            resource: arn.to_owned(),
            reason,
        };
        if let Some(busy) = pts
            .iter()
            .find(|p| p.export.as_ref().is_some_and(|e| e.status.in_flight()))
        {
            let e = busy.export.as_ref().map_or("", |e| e.task_id.as_str());
            report
                .waiting
                .push(wait(format!("export {e} of {} is still in flight", busy.id)));
            continue;
        }
        let last = pts
            .iter()
            .filter_map(|p| p.export.as_ref())
            .filter(|e| e.status != ExportStatus::Failed)
            .map(|e| e.started_at)
            .max();
        if !rule.due(last, now) {
            let next = last.map_or(now, |l| {
                l + chrono::Duration::from_std(rule.every).unwrap_or(chrono::Duration::MAX)
            });
            report.waiting.push(wait(format!(
                "last export started {}; the next is due {}",
                last.map_or_else(String::new, |l| l.format("%Y-%m-%d %H:%M").to_string()),
                next.format("%Y-%m-%d %H:%M")
            )));
            continue;
        }
        let Some(candidate) = pts
            .iter()
            .rev()
            .find(|p| p.is_restorable() && p.snapshot_arn.is_some() && p.backup_vault.is_none())
        else {
            report.waiting.push(wait(format!(
                "no available snapshot in {} (the backup bucket's region) to export",
                deps.settings.backup_region
            )));
            continue;
        };
        if candidate
            .export
            .as_ref()
            .is_some_and(|e| matches!(e.status, ExportStatus::Archived | ExportStatus::Expired))
        {
            report.waiting.push(wait(format!(
                "the newest snapshot {} is already exported; waiting for a newer one",
                candidate.snapshot_name
            )));
            continue;
        }
        let attempt = candidate.export.as_ref().map_or(1, |e| e.attempt.saturating_add(1));
        let reason = match last {
            None => format!(
                "never exported; policy {} exports every {}",
                newest.policy,
                humantime::format_duration(rule.every)
            ),
            Some(l) => format!(
                "last export started {}; policy {} exports every {}",
                l.format("%Y-%m-%d"),
                newest.policy,
                humantime::format_duration(rule.every)
            ),
        };
        if dry_run {
            report.started.push(Started {
                recovery_point: candidate.id.clone(),
                task_id: task_id(&candidate.id, &candidate.snapshot_name, attempt),
                prefix: export_prefix(&candidate.resource, &candidate.snapshot_name),
                attempt,
                adopted: false,
                reason,
            });
            continue;
        }
        start_one(deps, candidate, rule, attempt, reason, run_id, report).await?;
    }
    Ok(())
}

async fn start_one(
    deps: &Deps,
    rp: &RecoveryPoint,
    rule: &ExportRule,
    attempt: u32,
    reason: String,
    run_id: &str,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let s = &deps.settings;
    let now = deps.clock.now();
    let request = ExportRequest {
        task_id: task_id(&rp.id, &rp.snapshot_name, attempt),
        source_arn: rp.snapshot_arn.clone().unwrap_or_default(),
        bucket: s.backup_bucket.clone(),
        prefix: export_prefix(&rp.resource, &rp.snapshot_name),
        role_arn: rule.role_arn.clone(),
        kms_key_id: rule.kms_key_id.clone(),
    };
    let mut record = ExportRecord {
        task_id: request.task_id.clone(),
        attempt,
        bucket: request.bucket.clone(),
        prefix: request.prefix.clone(),
        status: ExportStatus::Started,
        class: rule.class,
        started_at: now,
        completed_at: None,
        archived_at: None,
        objects: 0,
        bytes: 0,
        manifest_key: None,
        manifest_sha256: None,
        superseded_pending: 0,
        failure: None,
        expired_at: None,
    };
    let adopted = match deps.exporter.start_export(&request).await {
        Ok(_) => false,
        Err(PortError::AlreadyExists(_)) => {
            let task = deps.exporter.describe_export(&request.task_id).await?.ok_or_else(|| {
                FunctionError::retryable(format!(
                    "export task {} exists but cannot be described yet; try again",
                    request.task_id
                ))
            })?;
            if task.source_arn != request.source_arn {
                return Err(FunctionError::new(
                    ErrorType::Conflict,
                    format!(
                        "export task {} exists for {}, not for {}; it is not adopted",
                        request.task_id, task.source_arn, request.source_arn
                    ),
                ));
            }
            true
        }
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            // Refused for good (role, key, bucket, snapshot state): one alert, recorded
            // failed; the next start tries again under a new task id.
            let why = e.to_string();
            let alerted = raise(deps, failure_alert(rp, &request.task_id, &why, now), run_id).await?;
            report.alerts += usize::from(alerted);
            record.status = ExportStatus::Failed;
            record.failure = Some(why.clone());
            save_export(deps, &rp.id, |_| Some(record.clone())).await?;
            report.failed.push(Failed {
                recovery_point: rp.id.clone(),
                task_id: request.task_id,
                reason: why,
                alerted,
            });
            return Ok(());
        }
    };
    save_export(deps, &rp.id, |current| {
        // A replay that finds the record already written keeps it (and its start time).
        match current {
            Some(e) if e.task_id == record.task_id => None,
            _ => Some(record.clone()),
        }
    })
    .await?;
    tracing::info!(recovery_point = %rp.id, task_id = %request.task_id, adopted, "export started");
    report.started.push(Started {
        recovery_point: rp.id.clone(),
        task_id: request.task_id,
        prefix: request.prefix,
        attempt,
        adopted,
        reason,
    });
    Ok(())
}

fn failure_alert(rp: &RecoveryPoint, task_id: &str, why: &str, at: DateTime<Utc>) -> Alert {
    Alert::new(
        AlertKind::BackupFailed,
        Severity::High,
        format!("{}: snapshot export {task_id} failed: {why}", rp.id),
        format!("export-failed#{task_id}"),
        at,
    )
    .resource(&rp.resource.arn)
    .recovery_point(&rp.id)
    .location(&rp.location)
    .detail("step", "export")
    .detail("task_id", task_id)
    .detail("reason", why)
}

// --- poll ------------------------------------------------------------------------------

async fn poll_one(
    deps: &Deps,
    rp: &RecoveryPoint,
    run_id: &str,
    stop_at: Option<DateTime<Utc>>,
    budget: &mut u64,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let Some(export) = rp.export.clone() else {
        return Ok(());
    };
    let mut rp = rp.clone();
    if export.status == ExportStatus::Started {
        let task = deps.exporter.describe_export(&export.task_id).await?;
        match task.as_ref().map(|t| &t.state) {
            None => {
                return fail(
                    deps,
                    &rp,
                    &export,
                    "RDS no longer knows the export task",
                    run_id,
                    report,
                )
                .await;
            }
            Some(ExportTaskState::Failed | ExportTaskState::Canceled) => {
                let why = task.as_ref().map_or_else(String::new, failure_reason);
                return fail(deps, &rp, &export, &why, run_id, report).await;
            }
            Some(ExportTaskState::Complete) => {
                let now = deps.clock.now();
                let Some(next) = save_export(deps, &rp.id, |current| {
                    let mut e = current?.clone();
                    (e.task_id == export.task_id && e.status == ExportStatus::Started).then(|| {
                        e.status = ExportStatus::Moving;
                        e.completed_at = Some(now);
                        e
                    })
                })
                .await?
                else {
                    return Ok(());
                };
                rp = next;
            }
            Some(other) => {
                report.running.push(Running {
                    recovery_point: rp.id.clone(),
                    task_id: export.task_id.clone(),
                    state: other.as_str().to_owned(),
                    percent_progress: task.as_ref().and_then(|t| t.percent_progress),
                });
                return Ok(());
            }
        }
    }
    // RDS writes at least its export_info JSON under the task's prefix: nothing there
    // means the export went elsewhere or was removed, and is not recorded as archived.
    let first = deps
        .backup
        .list_page(&export.bucket, &export.data_prefix(), None, 1)
        .await?;
    if first.objects.is_empty() {
        let why = format!(
            "RDS reports the export COMPLETE but nothing is under s3://{}/{}",
            export.bucket,
            export.data_prefix()
        );
        return fail(deps, &rp, &export, &why, run_id, report).await;
    }
    move_export(deps, &rp, stop_at, budget, report).await
}

fn failure_reason(t: &ExportTask) -> String {
    match &t.failure_cause {
        Some(cause) => format!("{}: {cause}", t.state.as_str()),
        None => t.state.as_str().to_owned(),
    }
}

/// Alert once, then record the export failed (a crash in between: the rerun finds the
/// alert sent and records).
async fn fail(
    deps: &Deps,
    rp: &RecoveryPoint,
    export: &ExportRecord,
    why: &str,
    run_id: &str,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let alerted = raise(deps, failure_alert(rp, &export.task_id, why, deps.clock.now()), run_id).await?;
    report.alerts += usize::from(alerted);
    save_export(deps, &rp.id, |current| {
        let mut e = current?.clone();
        (e.task_id == export.task_id && e.status.in_flight()).then(|| {
            e.status = ExportStatus::Failed;
            e.failure = Some(why.to_owned());
            e
        })
    })
    .await?;
    report.failed.push(Failed {
        recovery_point: rp.id.clone(),
        task_id: export.task_id.clone(),
        reason: why.to_owned(),
        alerted,
    });
    Ok(())
}

/// One data object, moved (or found moved) into the class.
struct Moved {
    entry: ExportObject,
    copied: bool,
    superseded_pending: bool,
}

async fn move_export(
    deps: &Deps,
    rp: &RecoveryPoint,
    stop_at: Option<DateTime<Utc>>,
    budget: &mut u64,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let Some(export) = rp.export.clone() else {
        return Ok(());
    };
    let s = &deps.settings;
    let objects = list_all(deps.backup.as_ref(), &export.bucket, &export.data_prefix(), s.page_size).await?;
    let data: Vec<_> = objects.into_iter().filter(|o| is_data_object(&o.key)).collect();
    let mut progress = Archived {
        recovery_point: rp.id.clone(),
        task_id: export.task_id.clone(),
        class: export.class,
        objects: data.len() as u64,
        bytes: data.iter().map(|o| o.size).sum(),
        copied: 0,
        recovered: 0,
        remaining: 0,
        manifest_key: None,
        superseded_pending: 0,
    };
    let mut entries = Vec::with_capacity(data.len());
    let mut first_error = None;
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        if *budget == 0 || stop_at.is_some_and(|t| deps.clock.now() >= t) || first_error.is_some() {
            progress.remaining += rest.len() as u64;
            break;
        }
        // At most the budget's worth at once (objects already moved cost nothing, so a
        // resumed export may take a few more).
        let take = rest
            .len()
            .min(CONCURRENCY)
            .min(usize::try_from(*budget).unwrap_or(usize::MAX));
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        let results: Vec<PortResult<Moved>> = stream::iter(chunk)
            .map(|o| move_one(deps, &export, &o.key))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(m) => {
                    if m.copied {
                        progress.copied += 1;
                        *budget = budget.saturating_sub(1);
                        report.objects_copied += 1;
                        report.bytes_copied += m.entry.size;
                    } else {
                        progress.recovered += 1;
                    }
                    progress.superseded_pending += u64::from(m.superseded_pending);
                    entries.push(m.entry);
                }
                Err(e) => {
                    progress.remaining += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    if let Some(e) = first_error {
        return Err(FunctionError::from(e));
    }
    if progress.remaining > 0 {
        tracing::info!(recovery_point = %rp.id, remaining = progress.remaining, "export move continues next run");
        report.moving.push(progress);
        return Ok(());
    }
    // Every data object is in the class: the manifest, then the catalog.
    let now = deps.clock.now();
    let manifest = ExportManifest::new(rp, &export, now, entries);
    let (bytes, sha) = manifest
        .encode()
        .map_err(|e| FunctionError::new(ErrorType::Internal, format!("cannot encode the export manifest: {e}")))?;
    let key = manifest_key(&rp.resource, &rp.snapshot_name, &export.task_id);
    let options = WriteOptions {
        storage_class: None,
        lock: s.lock.map(|(mode, days)| ObjectLock {
            mode,
            retain_until: now + chrono::Duration::days(i64::from(days)),
        }),
        legal_hold: s.legal_hold,
        metadata: vec![(META_TASK.to_owned(), export.task_id.clone())],
    };
    deps.backup.put(&export.bucket, &key, bytes, &options).await?;
    let pending = progress.superseded_pending;
    save_export(deps, &rp.id, |current| {
        let mut e = current?.clone();
        (e.task_id == export.task_id && e.status == ExportStatus::Moving).then(|| {
            e.status = ExportStatus::Archived;
            e.archived_at = Some(now);
            e.objects = manifest.objects;
            e.bytes = manifest.bytes;
            e.manifest_key = Some(key.clone());
            e.manifest_sha256 = Some(sha.clone());
            e.superseded_pending = pending;
            e
        })
    })
    .await?;
    tracing::info!(recovery_point = %rp.id, task_id = %export.task_id, objects = manifest.objects, bytes = manifest.bytes, class = %export.class, "export archived");
    progress.manifest_key = Some(key);
    report.archived.push(progress);
    Ok(())
}

async fn list_all(
    store: &dyn ObjectStore,
    bucket: &str,
    prefix: &str,
    page_size: u32,
) -> PortResult<Vec<lifeboat_domain::manifest::ListedObject>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.list_page(bucket, prefix, token.as_deref(), page_size).await?;
        out.extend(page.objects);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

fn meta<'a>(m: &'a [(String, String)], k: &str) -> Option<&'a str> {
    m.iter().find(|(mk, _)| mk == k).map(|(_, v)| v.as_str())
}

async fn move_one(deps: &Deps, export: &ExportRecord, key: &str) -> PortResult<Moved> {
    let bucket = &export.bucket;
    let to = export.class;
    let head = deps
        .backup
        .head(bucket, key, None)
        .await?
        .ok_or_else(|| PortError::NotFound(format!("exported object {key} is missing")))?;
    let class = S3Class::parse(&head.storage_class).unwrap_or(S3Class::Standard);
    // Moved already: by a crashed invocation (our metadata), or archived in place by the
    // lifecycle rule (no metadata: S3's checksum is all there is).
    if class >= to || class.archived() {
        let mut pending = false;
        if let Some(old) = meta(&head.metadata, META_SUPERSEDED) {
            pending = !delete_superseded(deps, bucket, key, old).await?;
        }
        return Ok(Moved {
            entry: ExportObject {
                key: key.to_owned(),
                version_id: head.version_id,
                size: head.size,
                sha256: meta(&head.metadata, META_SHA256).map(str::to_owned),
                s3_checksum_sha256: head.checksum_sha256,
                etag: head.etag,
                class,
            },
            copied: false,
            superseded_pending: pending,
        });
    }
    // Lifeboat's own hash of the bytes, read while they are still readable.
    let body = deps
        .backup
        .get(bucket, key, head.version_id.as_deref(), Some(&head.etag))
        .await?;
    let sums = digest(body).await?;
    if sums.bytes != head.size {
        return Err(PortError::Conflict(format!(
            "{key}: read {} bytes, S3 lists {}",
            sums.bytes, head.size
        )));
    }
    if let Some(claimed) = head.checksum_sha256.as_deref().filter(|c| !c.contains('-'))
        && claimed != sums.sha256_base64
    {
        return Err(PortError::Conflict(format!(
            "{key}: S3 stores SHA-256 {claimed}, the bytes read hash to {}",
            sums.sha256_base64
        )));
    }
    let mut metadata: Vec<(String, String)> = head
        .metadata
        .iter()
        .filter(|(k, _)| ![META_SHA256, META_TASK, META_SUPERSEDED].contains(&k.as_str()))
        .cloned()
        .collect();
    metadata.push((META_SHA256.to_owned(), sums.sha256.clone()));
    metadata.push((META_TASK.to_owned(), export.task_id.clone()));
    if let Some(v) = &head.version_id {
        metadata.push((META_SUPERSEDED.to_owned(), v.clone()));
    }
    let written = deps
        .backup
        .copy(&CopyRequest {
            source_bucket: bucket.clone(),
            source_key: key.to_owned(),
            source_version_id: head.version_id.clone(),
            if_match: Some(head.etag.clone()),
            size: head.size,
            bucket: bucket.clone(),
            key: key.to_owned(),
            options: WriteOptions {
                storage_class: Some(to.as_str().to_owned()),
                lock: head.lock.clone(),
                legal_hold: head.legal_hold,
                metadata,
            },
        })
        .await?;
    // S3's claim about the copy must match the bytes Lifeboat read (a multipart copy's
    // checksum is composite: its size and class are checked instead).
    if written.parts <= 1
        && let Some(claimed) = written.checksum_sha256.as_deref().filter(|c| !c.contains('-'))
        && claimed != sums.sha256_base64
    {
        return Err(PortError::Conflict(format!(
            "{key}: S3 reports SHA-256 {claimed} for the {to} copy, Lifeboat read {}",
            sums.sha256_base64
        )));
    }
    let after = deps
        .backup
        .head(bucket, key, written.version_id.as_deref())
        .await?
        .ok_or_else(|| PortError::NotFound(format!("{key}: the {to} copy is missing after the copy")))?;
    let after_class = S3Class::parse(&after.storage_class).unwrap_or(S3Class::Standard);
    if after.size != sums.bytes || after_class != to {
        return Err(PortError::Conflict(format!(
            "{key}: the copy is {} bytes in {after_class}, expected {} bytes in {to}",
            after.size, sums.bytes
        )));
    }
    let mut pending = false;
    if let Some(old) = head.version_id.as_deref()
        && written.version_id.as_deref() != Some(old)
    {
        pending = !delete_superseded(deps, bucket, key, old).await?;
    }
    Ok(Moved {
        entry: ExportObject {
            key: key.to_owned(),
            version_id: written.version_id,
            size: sums.bytes,
            sha256: Some(sums.sha256),
            s3_checksum_sha256: after.checksum_sha256,
            etag: after.etag,
            class: to,
        },
        copied: true,
        superseded_pending: pending,
    })
}

/// Deletes the STANDARD version a verified copy superseded, after re-checking that no lock
/// or legal hold forbids it. `Ok(false)`: kept (locked or held).
async fn delete_superseded(deps: &Deps, bucket: &str, key: &str, version: &str) -> PortResult<bool> {
    let Some(head) = deps.backup.head(bucket, key, Some(version)).await? else {
        return Ok(true);
    };
    let now = deps.clock.now();
    if head.legal_hold || head.lock.as_ref().is_some_and(|l| l.retain_until > now) {
        tracing::info!(
            key,
            version,
            "superseded export version kept: locked or under legal hold"
        );
        return Ok(false);
    }
    match deps.backup.delete(bucket, key, Some(version)).await {
        Ok(()) => Ok(true),
        Err(PortError::InvalidState(m)) => {
            tracing::info!(key, version, reason = %m, "superseded export version kept");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

// --- expiry --------------------------------------------------------------------------

/// Deletes the objects of archived exports kept their policy's `keep` (a policy without
/// `keep` keeps them), after re-checking the age, the recovery point's holds and every
/// object's lock and legal hold: one object that may not go keeps the whole export.
async fn expire(
    deps: &Deps,
    points: &[RecoveryPoint],
    rules: &BTreeMap<PolicyName, ExportRule>,
    dry_run: bool,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let now = deps.clock.now();
    for rp in points {
        let (Some(e), Some(keep)) = (&rp.export, rules.get(&rp.policy).and_then(|r| r.keep)) else {
            continue;
        };
        let Some(due) = e.expires_at(keep).filter(|at| *at <= now) else {
            continue;
        };
        let kept = |reason: String| Waiting {
            resource: rp.resource.arn.clone(),
            reason: format!(
                "export {} of {} (kept until {}): {reason}",
                e.task_id,
                rp.id,
                due.format("%Y-%m-%d")
            ),
        };
        if rp.holds.legal_hold {
            report.kept.push(kept("the recovery point is under legal hold".into()));
            continue;
        }
        if let Some(until) = rp.holds.locked_until.filter(|u| *u > now) {
            report.kept.push(kept(format!(
                "the recovery point is locked until {}",
                until.format("%Y-%m-%d")
            )));
            continue;
        }
        if let Some(by) = &rp.holds.in_use_by {
            report.kept.push(kept(format!("the recovery point is in use by {by}")));
            continue;
        }
        let versions = match deletable_versions(deps, e, now).await? {
            Ok(v) => v,
            Err(reason) => {
                report.kept.push(kept(reason));
                continue;
            }
        };
        let mut expired = Expired {
            recovery_point: rp.id.clone(),
            task_id: e.task_id.clone(),
            archived_at: e.archived_at,
            deleted: versions.len() as u64,
        };
        if dry_run {
            report.expired.push(expired);
            continue;
        }
        let mut deleted = 0;
        for (key, version) in &versions {
            match deps.backup.delete(&e.bucket, key, version.as_deref()).await {
                Ok(()) => deleted += 1,
                // Locked since the check: the export stays archived; a later run retries.
                Err(PortError::InvalidState(m)) => {
                    report.kept.push(kept(format!("{key}: {m}")));
                }
                Err(other) => return Err(other.into()),
            }
        }
        expired.deleted = deleted;
        if deleted < versions.len() as u64 {
            continue;
        }
        let task = e.task_id.clone();
        save_export(deps, &rp.id, |current| {
            let mut x = current?.clone();
            (x.task_id == task && x.status == ExportStatus::Archived).then(|| {
                x.status = ExportStatus::Expired;
                x.expired_at = Some(now);
                x
            })
        })
        .await?;
        tracing::info!(recovery_point = %rp.id, task_id = %e.task_id, deleted, "export expired");
        report.expired.push(expired);
    }
    Ok(())
}

/// Every object version of an export that expiry deletes (the manifest's data versions,
/// the versions they superseded, RDS's JSON descriptions), or why none may go now.
async fn deletable_versions(
    deps: &Deps,
    e: &ExportRecord,
    now: DateTime<Utc>,
) -> Result<Result<Vec<(String, Option<String>)>, String>, FunctionError> {
    let (Some(key), Some(sha)) = (&e.manifest_key, &e.manifest_sha256) else {
        return Ok(Err("no manifest is recorded; nothing is deleted without one".into()));
    };
    let bytes = lifeboat::object_store::read_all(deps.backup.as_ref(), &e.bucket, key, MAX_MANIFEST_BYTES).await?;
    let manifest = match ExportManifest::decode(&bytes, sha) {
        Ok(m) => m,
        Err(why) => return Ok(Err(format!("its manifest {key} failed its check ({why})"))),
    };
    let blocked =
        |h: &lifeboat_ports::objects::ObjectHead| h.legal_hold || h.lock.as_ref().is_some_and(|l| l.retain_until > now);
    let mut out = Vec::new();
    for m in &manifest.entries {
        let Some(head) = deps.backup.head(&e.bucket, &m.key, m.version_id.as_deref()).await? else {
            continue;
        };
        if blocked(&head) {
            return Ok(Err(format!("{} is locked or under legal hold", m.key)));
        }
        if let Some(old) = meta(&head.metadata, META_SUPERSEDED)
            && let Some(h) = deps.backup.head(&e.bucket, &m.key, Some(old)).await?
        {
            if blocked(&h) {
                return Ok(Err(format!(
                    "{} (superseded version {old}) is locked or under legal hold",
                    m.key
                )));
            }
            out.push((m.key.clone(), Some(old.to_owned())));
        }
        out.push((m.key.clone(), head.version_id.or_else(|| m.version_id.clone())));
    }
    let listed = list_all(
        deps.backup.as_ref(),
        &e.bucket,
        &e.data_prefix(),
        deps.settings.page_size,
    )
    .await?;
    for o in listed.iter().filter(|o| !is_data_object(&o.key)) {
        let Some(head) = deps.backup.head(&e.bucket, &o.key, None).await? else {
            continue;
        };
        if blocked(&head) {
            return Ok(Err(format!("{} is locked or under legal hold", o.key)));
        }
        out.push((o.key.clone(), head.version_id));
    }
    Ok(Ok(out))
}

// --- catalog ---------------------------------------------------------------------------

/// Sets the recovery point's export to what `change` makes of the current one (`None`:
/// nothing to change), by a version-checked write retried when another function updated
/// the point meanwhile. Returns the written point.
async fn save_export(
    deps: &Deps,
    id: &RecoveryPointId,
    change: impl Fn(Option<&ExportRecord>) -> Option<ExportRecord>,
) -> Result<Option<RecoveryPoint>, FunctionError> {
    let written = lifeboat::app::update_point(
        deps.catalog.as_ref(),
        deps.clock.as_ref(),
        id,
        WRITE_ATTEMPTS,
        |current| {
            change(current.export.as_ref()).map(|export| RecoveryPoint {
                export: Some(export),
                ..current.clone()
            })
        },
    )
    .await;
    match written {
        Ok(point) => Ok(point),
        Err(PointUpdateError::Missing) => Err(FunctionError::new(
            ErrorType::Conflict,
            format!("{id} left the catalog"),
        )),
        Err(PointUpdateError::KeptChanging) => Err(FunctionError::retryable(format!(
            "{id}: the catalog record kept changing; try again"
        ))),
        Err(PointUpdateError::Port(e)) => Err(e.into()),
    }
}

async fn raise(deps: &Deps, alert: Alert, run_id: &str) -> Result<bool, FunctionError> {
    let alerter = Alerter::new(deps.catalog.clone(), deps.notifier.clone(), deps.clock.clone());
    alerter.raise(alert, run_id).await.map_err(|e| {
        FunctionError::retryable(format!(
            "could not publish the alert ({e}); the run stops here so that a rerun sends it"
        ))
    })
}
