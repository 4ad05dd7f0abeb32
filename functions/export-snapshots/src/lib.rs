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
use lifeboat_ports::objects::{CopyRequest, ObjectHead, ObjectStore, WriteOptions};
use lifeboat_ports::{
    Catalog, Clock, ExportRequest, ExportTask, ExportTaskState, Notifier, PortError, PortResult, SnapshotExporter,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const FUNCTION: &str = "export-snapshots";
mod expiry;
mod moving;
mod starting;

use expiry::expire;
use moving::{list_all, meta, move_export};
use starting::{poll_one, start};

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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
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
                .filter(|p| p.export().is_some_and(|e| e.status.in_flight()))
            {
                if let Some(e) = rp.export() {
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
            .filter(|p| p.export().is_some_and(|e| e.status.in_flight()))
            .map(|p| p.id.clone())
            .chain(report.started.iter().map(|s| s.recovery_point.clone()))
            .collect();
        let fresh = deps.catalog.get_many(&ids).await?;
        for rp in fresh
            .iter()
            .filter(|p| p.export().is_some_and(|e| e.status.in_flight()))
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
        } else if let Some(e) = p.export() {
            by_resource.entry(p.resource.id.as_str()).or_insert(e.class);
        }
    }
    by_resource
        .into_iter()
        .map(|(id, class)| lifecycle_rule(id, class))
        .collect()
}

// --- start -----------------------------------------------------------------------------

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
            let export = change(current.export())?;
            let mut next = current.clone();
            next.snapshot_mut()?.export = Some(export);
            Some(next)
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
