//! `archive-bundles`: bundles (S3 run manifests, config bundles) archived in a Glacier
//! vault, retrieved on request, and proved intact by reading the retrieval back.
//!
//! Four modes, one event each:
//! - `{"mode": "archive", "recoveryPoint"?: "<id>", "limit"?: 25}`: one recovery point, or
//!   every available one in the backup region with a bundle and no archive yet (oldest
//!   first, at most `limit`, stopping early before the Lambda deadline). Each bundle is read
//!   from the backup bucket and its SHA-256 checked against the catalog first: a bundle
//!   that is missing or does not match is never archived (the point is marked unverified
//!   and one alert raised). The upload carries the tree hash Lifeboat computed (per part
//!   above the multipart threshold); the archive id, tree hash and size go into the
//!   recovery point's `archive`. A lease per recovery point keeps two runs from archiving
//!   the same bundle; an archived one is skipped.
//! - `{"mode": "retrieve", "recoveryPoint": "<id>", "tier"?: "Expedited" | "Standard" |
//!   "Bulk"}` (default `Standard`): starts an archive-retrieval job and records it. While a
//!   retrieval is running, or completed less than a day ago (Glacier keeps the output 24
//!   hours), the request is answered with that one and nothing is started.
//! - `{"mode": "poll"}`: every running retrieval is looked up; a succeeded one's output is
//!   streamed and hashed (tree hash and SHA-256) and compared with the archive's record and
//!   with the tree hash Glacier claims: `verified` or `mismatch`. A failed (or forgotten)
//!   job is `failed`. Each mismatch and failure raises one alert, before it is recorded, so
//!   a rerun after a crash finds it again and the alert is still sent once.
//! - `{"mode": "reconcile"}`: squares the vault with the catalog from a vault inventory
//!   after crashes between an upload and its record (see `reconcile.rs`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::alerting::Alerter;
use lifeboat::app::{PointUpdateError, RunLog};
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat::object_store::read_all;
use lifeboat::object_store::runs::{KEPT, points_in};
use lifeboat_domain::archive::{ArchiveRef, Retrieval, RetrievalStatus, RetrievalTier};
use lifeboat_domain::manifest::sha256_hex;
use lifeboat_domain::recovery_point::VerificationFailure;
use lifeboat_domain::tree_hash::{MIB, PartSize};
use lifeboat_domain::{Alert, AlertKind, RecoveryPoint, RecoveryPointId, Region, ResourceKind, Severity, Status};
use lifeboat_ports::objects::ObjectStore;
use lifeboat_ports::vault::ArchiveTuning;
use lifeboat_ports::vault::{ArchiveVault, JobStatus, read_back};
use lifeboat_ports::{Catalog, Clock, Notifier, PortError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod archiving;
mod reconcile;
mod retrieval;

use archiving::archive;
use retrieval::{poll, retrieve};

pub const FUNCTION: &str = "archive-bundles";
/// Stop taking new bundles this long before the Lambda deadline.
const DEADLINE_MARGIN: Duration = Duration::from_mins(1);
/// How long one invocation holds a bundle's archive lease (the Lambda maximum).
const LEASE: chrono::Duration = chrono::Duration::minutes(15);
/// Attempts at recording a change when other functions update the same recovery point.
const WRITE_ATTEMPTS: usize = 4;
/// Statuses whose recovery points may have an archive to look after.
const LIVE: [Status; 4] = [Status::Available, Status::Copying, Status::Copied, Status::Expiring];

/// Configuration of the function, parsed once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSettings {
    /// `ARCHIVE_VAULT_NAME`: the Glacier vault, in the backup region.
    pub vault: String,
    /// `BACKUP_REGION` (or `AWS_REGION`): where the backup bucket and the vault are.
    pub region: Region,
    /// `ARCHIVE_BATCH` (default 25, 1-500): bundles archived per invocation at most.
    pub batch: usize,
    /// `ARCHIVE_MAX_BYTES` (default 256 MiB): the largest bundle read and archived.
    pub max_bytes: u64,
    /// `ARCHIVE_MULTIPART_THRESHOLD_BYTES` (default 64 MiB) and `ARCHIVE_PART_SIZE_BYTES`
    /// (default 16 MiB, a power-of-two number of MiB).
    pub tuning: ArchiveTuning,
}

impl ArchiveSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, lifeboat::config::ConfigError> {
        let mut problems = Vec::new();
        let vault = get("ARCHIVE_VAULT_NAME")
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        if vault.is_empty() {
            problems.push("ARCHIVE_VAULT_NAME is not set".to_owned());
        } else if vault.len() > 255
            || !vault
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            problems.push(format!(
                "ARCHIVE_VAULT_NAME: {vault:.80?} is not a vault name (1-255 of a-z, A-Z, 0-9, _ - .)"
            ));
        }
        let raw_region = get("BACKUP_REGION")
            .filter(|v| !v.trim().is_empty())
            .or_else(|| get("AWS_REGION"))
            .unwrap_or_default();
        let region = Region::parse(raw_region.trim())
            .map_err(|e| problems.push(format!("BACKUP_REGION (or AWS_REGION): {e}")))
            .ok();
        let mut number = |key: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> u64 {
            match get(key).filter(|v| !v.trim().is_empty()) {
                None => default,
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if range.contains(&n) => n,
                    _ => {
                        problems.push(format!(
                            "{key}: {v:.20?} is not a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ));
                        default
                    }
                },
            }
        };
        let batch = number("ARCHIVE_BATCH", 25, 1..=500);
        let max_bytes = number("ARCHIVE_MAX_BYTES", 256 * MIB, 1..=4096 * MIB);
        let threshold = number("ARCHIVE_MULTIPART_THRESHOLD_BYTES", 64 * MIB, MIB..=4096 * MIB);
        let part = number("ARCHIVE_PART_SIZE_BYTES", 16 * MIB, MIB..=4096 * MIB);
        let part_size = PartSize::new(part)
            .map_err(|e| problems.push(format!("ARCHIVE_PART_SIZE_BYTES: {e}")))
            .unwrap_or(PartSize::MIN);
        match region {
            Some(region) if problems.is_empty() => Ok(Self {
                vault,
                region,
                batch: usize::try_from(batch).unwrap_or(25),
                max_bytes,
                tuning: ArchiveTuning {
                    multipart_threshold: threshold,
                    part_size,
                },
            }),
            _ => Err(lifeboat::config::ConfigError::new("archive", problems)),
        }
    }
}

#[derive(Clone)]
pub struct Deps {
    pub catalog: Arc<dyn Catalog>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// S3 in the backup region (the bundles are read from the backup bucket).
    pub backup: Arc<dyn ObjectStore>,
    /// Glacier in the backup region.
    pub vault: Arc<dyn ArchiveVault>,
    pub settings: ArchiveSettings,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The four modes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    #[serde(rename_all = "camelCase")]
    Archive {
        #[serde(default)]
        recovery_point: Option<String>,
        #[serde(default)]
        limit: Option<usize>,
    },
    #[serde(rename_all = "camelCase")]
    Retrieve {
        recovery_point: String,
        #[serde(default)]
        tier: Option<RetrievalTier>,
    },
    #[serde(rename_all = "camelCase")]
    Poll {},
    #[serde(rename_all = "camelCase")]
    Reconcile {},
}

impl Request {
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        let req: Self = serde_json::from_value(event.clone()).map_err(|e| {
            FunctionError::invalid(format!(
                "expected {{\"mode\": \"archive\" | \"retrieve\" | \"poll\" | \"reconcile\", …}}: {e}"
            ))
        })?;
        let mut problems = Vec::new();
        match &req {
            Self::Archive { recovery_point, limit } => {
                if let Some(id) = recovery_point
                    && let Err(e) = RecoveryPointId::parse(id)
                {
                    problems.push(format!("recoveryPoint: {e}"));
                }
                if limit.is_some_and(|n| !(1..=500).contains(&n)) {
                    problems.push("limit: a number of bundles from 1 to 500".to_owned());
                }
                if recovery_point.is_some() && limit.is_some() {
                    problems.push("limit applies only without recoveryPoint".to_owned());
                }
            }
            Self::Retrieve { recovery_point, .. } => {
                if let Err(e) = RecoveryPointId::parse(recovery_point) {
                    problems.push(format!("recoveryPoint: {e}"));
                }
            }
            Self::Poll {} | Self::Reconcile {} => {}
        }
        if problems.is_empty() {
            Ok(req)
        } else {
            Err(FunctionError::invalid(problems.join("; ")))
        }
    }
}

/// A bundle archived by this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchivedView {
    pub recovery_point: RecoveryPointId,
    pub archive_id: String,
    pub tree_hash: String,
    pub size: u64,
    pub parts: u32,
}

/// A bundle this run would not archive, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub recovery_point: RecoveryPointId,
    pub reason: String,
}

/// A retrieval as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetrievalView {
    pub recovery_point: RecoveryPointId,
    pub job_id: String,
    pub tier: RetrievalTier,
    pub status: RetrievalStatus,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl RetrievalView {
    fn of(id: &RecoveryPointId, r: &Retrieval) -> Self {
        Self {
            recovery_point: id.clone(),
            job_id: r.job_id.clone(),
            tier: r.tier,
            status: r.status,
            started_at: r.started_at,
            problems: r.problems.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub run_id: String,
    /// archive: bundles uploaded by this run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub archived: Vec<ArchivedView>,
    /// archive: already archived, nothing done (a replay, or an earlier run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub already_archived: Vec<RecoveryPointId>,
    /// archive: another invocation is archiving it right now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub busy: Vec<RecoveryPointId>,
    /// archive: bundles refused (missing, or not matching their catalog SHA-256).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
    /// archive: bundles left for the next run (limit or deadline reached).
    #[serde(skip_serializing_if = "is_zero")]
    pub remaining: usize,
    /// retrieve: the retrieval started, or the current one when `replay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalView>,
    /// retrieve: a retrieval was already under way (or just done); nothing was started.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
    /// poll: retrievals that completed in this run (verified, mismatch or failed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub completed: Vec<RetrievalView>,
    /// poll: retrievals still running.
    #[serde(skip_serializing_if = "is_zero")]
    pub pending: usize,
    /// Alerts sent by this run.
    #[serde(skip_serializing_if = "is_zero")]
    pub alerts: usize,
    /// reconcile: the inventory job used (or waited for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_job: Option<String>,
    /// reconcile: the inventory is not ready yet; call again later.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
    /// reconcile: duplicate archives of recorded bundles, deleted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicates_deleted: Vec<String>,
    /// reconcile: archives of unrecorded bundles, recorded without a new upload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<ArchivedView>,
    /// reconcile: archives described as a bundle but holding other bytes, left alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Report {
    fn new(mode: &'static str, run_id: &str) -> Self {
        Self {
            mode,
            run_id: run_id.to_owned(),
            ..Self::default()
        }
    }

    fn count(&self, status: RetrievalStatus) -> u64 {
        self.completed.iter().filter(|r| r.status == status).count() as u64
    }
}

/// archive-bundles as one invocation: an archive, retrieve, poll or reconcile request in,
/// a report out.
#[derive(Debug)]
pub struct ArchiveBundles;

impl Function for ArchiveBundles {
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
        if let Ok(report) = result {
            record_metrics(report, &deps.settings.region, metrics);
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
    invoke::<ArchiveBundles>(deps, event, sink).await
}

/// A run's metrics, in the vault's region: `ArchivesUploaded` and `BytesArchived`
/// (archive), `RetrievalsStarted` (retrieve), `VerificationsPassed` and
/// `VerificationMismatches` (poll: retrievals read back), and `ArchiveFailures` (refused
/// bundles, failed retrievals). Each mode's counters are emitted also when zero, so alarms
/// see data.
pub fn record_metrics(report: &Report, region: &Region, metrics: &mut Metrics) {
    match report.mode {
        "archive" => {
            metrics.count_in(region, Metric::ArchivesUploaded, report.archived.len() as u64);
            metrics.count_in(
                region,
                Metric::BytesArchived,
                report.archived.iter().map(|a| a.size).sum(),
            );
            metrics.count_in(region, Metric::ArchiveFailures, report.refused.len() as u64);
        }
        "reconcile" => {}
        "retrieve" => {
            let started = u64::from(!report.replay && report.retrieval.is_some());
            metrics.count_in(region, Metric::RetrievalsStarted, started);
        }
        _ => {
            metrics.count_in(
                region,
                Metric::VerificationsPassed,
                report.count(RetrievalStatus::Verified),
            );
            metrics.count_in(
                region,
                Metric::VerificationMismatches,
                report.count(RetrievalStatus::Mismatch),
            );
            metrics.count_in(region, Metric::ArchiveFailures, report.count(RetrievalStatus::Failed));
        }
    }
}

pub async fn run(
    deps: &Deps,
    req: &Request,
    run_id: &str,
    stop_at: Option<DateTime<Utc>>,
) -> Result<Report, FunctionError> {
    let mut log = RunLog::start(FUNCTION, run_id, deps.clock.now());
    let result = match req {
        Request::Archive { recovery_point, limit } => {
            archive(deps, recovery_point.as_deref(), *limit, run_id, stop_at, &mut log).await
        }
        Request::Retrieve { recovery_point, tier } => {
            retrieve(
                deps,
                recovery_point,
                tier.unwrap_or(RetrievalTier::Standard),
                run_id,
                &mut log,
            )
            .await
        }
        Request::Poll {} => poll(deps, run_id, &mut log).await,
        Request::Reconcile {} => reconcile::reconcile(deps, run_id, &mut log).await,
    };
    log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
    result
}

fn parse_id(id: &str) -> Result<RecoveryPointId, FunctionError> {
    RecoveryPointId::parse(id).map_err(|e| FunctionError::invalid(format!("recoveryPoint: {e}")))
}

async fn load(deps: &Deps, id: &RecoveryPointId) -> Result<RecoveryPoint, FunctionError> {
    deps.catalog
        .get(id)
        .await?
        .ok_or_else(|| FunctionError::not_found(format!("recovery point {id}")))
}

/// A recovery point whose bundle this function archives: an S3 run manifest or a config
/// bundle, in the backup region.
/// The archive description of a recovery point's bundle: how a vault inventory tells
/// Lifeboat's archives apart (see `reconcile`).
fn bundle_description(id: &RecoveryPointId, sha256: &str) -> String {
    lifeboat_ports::vault::archive_description(&format!("lifeboat {id} sha256 {sha256}"))
}

fn has_bundle(rp: &RecoveryPoint, region: &Region) -> bool {
    matches!(rp.resource.kind, ResourceKind::S3Prefix | ResourceKind::ConfigBundle)
        && rp.manifest().is_some()
        && &rp.location == region
}

/// Writes `change(current)` to the catalog, re-reading the record when another function
/// changed it meanwhile. `change` returns `None` when there is nothing (more) to do.
async fn record(
    deps: &Deps,
    id: &RecoveryPointId,
    change: impl Fn(&RecoveryPoint) -> Option<RecoveryPoint>,
) -> Result<Option<RecoveryPoint>, FunctionError> {
    match lifeboat::app::update_point(deps.catalog.as_ref(), deps.clock.as_ref(), id, WRITE_ATTEMPTS, change).await {
        Ok(point) => Ok(point),
        Err(PointUpdateError::Missing) => Err(FunctionError::not_found(format!("recovery point {id}"))),
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

// --- archive ---------------------------------------------------------------------------
