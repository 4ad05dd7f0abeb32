//! `restore-objects`: point-in-time restore of a protected bucket/prefix (or a list of
//! keys in it) as of an instant, from the newest backup run completed by then.
//!
//! By default objects go to a new prefix (`lifeboat-restore/<run>/` in the source
//! bucket) or to the bucket/prefix named; writing over the original keys needs
//! `"overwrite": true`, and is refused where the overwritten bytes would not stay
//! recoverable (an unversioned target). A dry run lists what would be restored, from
//! which storage class, and how long that class takes to become readable. Restoring
//! twice writes nothing twice: a target already holding the backup's bytes is skipped.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat::object_store::runs::{ManifestReadError, completed_runs, load_current_manifest};
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::RecoveryPoint;
use lifeboat_domain::manifest::{Manifest, ManifestEntry};
use lifeboat_domain::s3::{check_bucket, check_prefix, s3_resource};
use lifeboat_ports::objects::{CopyRequest, ObjectHead, ObjectStore, RestoreTier, WriteOptions};
use lifeboat_ports::{Catalog, PortError, PortResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const FUNCTION: &str = "restore-objects";
const CONCURRENCY: usize = 16;
const META_SHA256: &str = "lifeboat-sha256";
/// Days a restored archive copy stays readable.
const ARCHIVE_RESTORE_DAYS: u32 = 7;

#[derive(Clone)]
pub struct Deps {
    pub catalog: Arc<dyn Catalog>,
    /// S3 in the source region (where restores are written).
    pub target: Arc<dyn ObjectStore>,
    /// S3 in the backup region.
    pub backup: Arc<dyn ObjectStore>,
    pub settings: S3Settings,
    /// Writing over the original keys needs a token the admin API issued; it is spent and
    /// put on the audit trail here.
    pub confirmations: lifeboat::confirm::Confirmations,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    pub as_of: DateTime<Utc>,
    /// Only these keys (all keys of the run otherwise).
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    #[serde(default)]
    pub target: Option<Target>,
    #[serde(default)]
    pub overwrite: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Retrieval tier for archived objects (default Standard).
    #[serde(default)]
    pub tier: Option<RestoreTier>,
    /// Writing over the original keys: the token the admin API issued for this exact
    /// request (`POST /confirmations`), single use.
    #[serde(default)]
    pub confirmation: Option<String>,
    /// The request as it came, which the confirmation token is bound to.
    #[serde(skip)]
    pub payload: Value,
}

impl RestoreRequest {
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        if !event.is_object() {
            return Err(FunctionError::invalid("expected a restore request object"));
        }
        let mut req: Self = serde_json::from_value(event.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed restore request: {e}")))?;
        req.payload = event.clone();
        check_bucket(&req.bucket).map_err(FunctionError::invalid)?;
        check_prefix(&req.prefix).map_err(FunctionError::invalid)?;
        if let Some(t) = &req.target {
            check_bucket(&t.bucket).map_err(FunctionError::invalid)?;
            check_prefix(&t.prefix).map_err(FunctionError::invalid)?;
        }
        Ok(req)
    }
}

/// How soon an object in `class` can be read, with `tier`.
pub fn readiness(class: &str, tier: RestoreTier) -> Result<&'static str, String> {
    match (class, tier) {
        ("GLACIER", RestoreTier::Expedited) => Ok("restore needed: 1-5 minutes (Expedited)"),
        ("GLACIER", RestoreTier::Standard) => Ok("restore needed: 3-5 hours (Standard)"),
        ("GLACIER", RestoreTier::Bulk) => Ok("restore needed: 5-12 hours (Bulk)"),
        ("DEEP_ARCHIVE", RestoreTier::Standard) => Ok("restore needed: within 12 hours (Standard)"),
        ("DEEP_ARCHIVE", RestoreTier::Bulk) => Ok("restore needed: within 48 hours (Bulk)"),
        ("DEEP_ARCHIVE", RestoreTier::Expedited) => {
            Err("DEEP_ARCHIVE does not offer Expedited retrieval: use Standard or Bulk".into())
        }
        _ => Ok("immediate"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub key: String,
    pub target_key: String,
    pub size: u64,
    pub storage_class: String,
    pub readiness: String,
    /// `planned` (dry run), `restored`, `unchanged` (already there), or for an archived
    /// copy `archive-restore-started` / `archive-restore-in-progress` (call again later).
    pub outcome: String,
    /// The version that was current at the target before an overwrite (still recoverable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overwritten_version: Option<String>,
}

/// Whether every object is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreStatus {
    /// Every object is at the target (or this was a dry run).
    Complete,
    /// Archived copies are being restored by S3: call again (same request) later.
    InProgress,
}

/// How many objects are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub restored: u64,
    pub unchanged: u64,
    pub archive_restores_started: u64,
    pub archive_restores_in_progress: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub status: RestoreStatus,
    pub progress: Progress,
    pub run: String,
    pub run_completed_at: DateTime<Utc>,
    pub target: Target,
    pub dry_run: bool,
    pub items: Vec<Item>,
    pub bytes: u64,
    /// Keys asked for that the run does not hold.
    pub not_in_backup: Vec<String>,
}

/// restore-objects as one invocation: a restore request in, a report out.
#[derive(Debug)]
pub struct RestoreObjects;

impl Function for RestoreObjects {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = RestoreRequest;
    type Output = RestoreReport;

    /// The wall clock: restore-objects has no clock port.
    fn now(_: &Deps) -> DateTime<Utc> {
        Utc::now()
    }

    fn parse(_: &Deps, payload: &Value) -> Result<RestoreRequest, FunctionError> {
        RestoreRequest::parse(payload)
    }

    async fn run(
        deps: &Deps,
        req: RestoreRequest,
        invocation: &mut Invocation,
    ) -> Result<RestoreReport, FunctionError> {
        run_as(deps, &req, invocation.run_id()).await
    }

    fn record_metrics(
        _: &Deps,
        result: &Result<RestoreReport, FunctionError>,
        took: std::time::Duration,
        metrics: &mut Metrics,
    ) {
        if let Ok(report) = result {
            record_metrics(report, took, metrics);
        }
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<RestoreReport, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the invocation's metrics to `sink` (once, also when it fails).
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<RestoreReport, FunctionError> {
    invoke::<RestoreObjects>(deps, event, sink).await
}

/// A restore's metrics (a dry run records none): `Restores`, its `RestoreDuration`, and
/// the objects and bytes written back (objects whose archive restore was only started are
/// counted when a later call copies them back).
pub fn record_metrics(report: &RestoreReport, took: std::time::Duration, metrics: &mut Metrics) {
    if report.dry_run {
        return;
    }
    let written: Vec<&Item> = report.items.iter().filter(|i| i.outcome == "restored").collect();
    metrics.count(Metric::Restores, 1);
    metrics.sample(Metric::RestoreDuration, took.as_secs());
    metrics.count(Metric::ObjectsRestored, written.len() as u64);
    metrics.count(Metric::BytesRestored, written.iter().map(|i| i.size).sum());
}

fn refuse_unflagged_overwrite(req: &RestoreRequest, target: &Target) -> Result<(), FunctionError> {
    let in_place = target.bucket == req.bucket && target.prefix.is_empty();
    if in_place && !req.overwrite {
        return Err(FunctionError::invalid(
            "the target is the original bucket and keys: set \"overwrite\": true to write over them",
        ));
    }
    Ok(())
}

pub async fn run(deps: &Deps, req: &RestoreRequest) -> Result<RestoreReport, FunctionError> {
    run_as(deps, req, &uuid::Uuid::new_v4().to_string()).await
}

/// [`run`] as the invocation `run_id` (the audit trail names it).
pub async fn run_as(deps: &Deps, req: &RestoreRequest, run_id: &str) -> Result<RestoreReport, FunctionError> {
    // A request to write over the original keys without saying so is refused before anything
    // is read, whatever backups exist.
    if let Some(target) = &req.target {
        refuse_unflagged_overwrite(req, target)?;
    }
    let (rp, manifest) = run_as_of(deps, req).await?;
    let Some(mref) = rp.manifest() else {
        return Err(FunctionError::not_found(format!("{} has no manifest", rp.id)));
    };
    let run = manifest.header.run.clone();
    let target = req.target.clone().unwrap_or_else(|| Target {
        bucket: req.bucket.clone(),
        prefix: format!("lifeboat-restore/{run}/"),
    });
    refuse_unflagged_overwrite(req, &target)?;
    let in_place = target.bucket == req.bucket && target.prefix.is_empty();
    if in_place && !req.dry_run {
        // Before the first write: the admin API's token for this exact request, spent and
        // audited.
        let what = format!("overwriting s3://{}/{} as of {}", req.bucket, req.prefix, req.as_of);
        deps.confirmations
            .spend(FUNCTION, &req.payload, &what, run_id, Utc::now())
            .await?;
    }
    let tier = req.tier.unwrap_or(RestoreTier::Standard);
    let mut chosen: Vec<&ManifestEntry> = manifest.live().collect();
    let mut not_in_backup = Vec::new();
    if let Some(keys) = &req.keys {
        let wanted: std::collections::BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        chosen.retain(|e| wanted.contains(e.key.as_str()));
        let have: std::collections::BTreeSet<&str> = chosen.iter().map(|e| e.key.as_str()).collect();
        not_in_backup = wanted.difference(&have).map(|k| (*k).to_owned()).collect();
    }
    let heads = backup_heads(deps, &mref.backup_bucket, &chosen).await?;
    let mut items = Vec::with_capacity(chosen.len());
    for (e, h) in chosen.iter().zip(&heads) {
        let class = if h.storage_class.is_empty() {
            "STANDARD"
        } else {
            h.storage_class.as_str()
        };
        let readiness = readiness(class, tier).map_err(|m| FunctionError::invalid(format!("{}: {m}", e.key)))?;
        items.push(Item {
            key: e.key.clone(),
            target_key: target_key(&target, &e.key),
            size: e.size,
            storage_class: class.to_owned(),
            readiness: readiness.to_owned(),
            outcome: "planned".into(),
            overwritten_version: None,
        });
    }
    let bytes = items.iter().map(|i| i.size).sum();
    if !req.dry_run {
        let results: Vec<PortResult<Item>> = stream::iter(chosen.into_iter().zip(heads).zip(items))
            .map(|((e, h), item)| restore_one(deps, &mref.backup_bucket, &target, e, h, item, in_place, tier))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        items = results.into_iter().collect::<PortResult<Vec<_>>>()?;
    }
    let progress = Progress::of(&items);
    let waiting = progress.archive_restores_started + progress.archive_restores_in_progress;
    Ok(RestoreReport {
        status: if waiting == 0 {
            RestoreStatus::Complete
        } else {
            RestoreStatus::InProgress
        },
        progress,
        run,
        run_completed_at: rp.created_at,
        target,
        dry_run: req.dry_run,
        items,
        bytes,
        not_in_backup,
    })
}

/// The newest completed backup run of the request's bucket/prefix as of `as_of`, and its
/// manifest (checked against the catalog: a manifest that fails its check refuses the
/// restore).
async fn run_as_of(deps: &Deps, req: &RestoreRequest) -> Result<(RecoveryPoint, Manifest), FunctionError> {
    let resource = s3_resource(&deps.settings.source_region, &req.bucket, &req.prefix);
    let runs = completed_runs(deps.catalog.as_ref(), &resource.arn).await?;
    let rp = runs
        .into_iter()
        .find(|p| p.created_at <= req.as_of)
        .ok_or_else(|| FunctionError::not_found(format!("no backup of {} completed by {}", resource.id, req.as_of)))?;
    let Some(mref) = rp.manifest() else {
        return Err(FunctionError::not_found(format!("{} has no manifest", rp.id)));
    };
    let manifest = load_current_manifest(deps.backup.as_ref(), deps.catalog.as_ref(), &rp.location, mref)
        .await
        .map_err(|e| match e {
            ManifestReadError::Port(p) => FunctionError::from(p),
            ManifestReadError::Bad(b) => FunctionError::new(
                lifeboat::ErrorType::Conflict,
                format!("the manifest of {} failed its check ({b}); restore refused", rp.id),
            ),
        })?;
    Ok((rp, manifest))
}

/// The backup copies as S3 has them now (a lifecycle rule may have moved them in place);
/// a missing copy fails the restore.
async fn backup_heads(deps: &Deps, bucket: &str, chosen: &[&ManifestEntry]) -> PortResult<Vec<ObjectHead>> {
    let heads: Vec<PortResult<ObjectHead>> = stream::iter(chosen.iter())
        .map(|e| async {
            deps.backup
                .head(bucket, &e.backup_key, e.backup_version_id.as_deref())
                .await?
                .ok_or_else(|| {
                    PortError::NotFound(format!("the backup copy of {} ({}) is missing", e.key, e.backup_key))
                })
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    heads.into_iter().collect()
}

impl Progress {
    /// Counts the items' outcomes.
    fn of(items: &[Item]) -> Self {
        let mut progress = Self::default();
        for i in items {
            match i.outcome.as_str() {
                "restored" => progress.restored += 1,
                "unchanged" => progress.unchanged += 1,
                "archive-restore-started" => progress.archive_restores_started += 1,
                "archive-restore-in-progress" => progress.archive_restores_in_progress += 1,
                _ => {}
            }
        }
        progress
    }
}

enum ArchiveState {
    NotRequested,
    InProgress,
    /// A temporary copy is readable (until its expiry date).
    Readable,
}

/// Reads S3's `x-amz-restore` (`ongoing-request="true"`, or `ongoing-request="false",
/// expiry-date="…"` once the temporary copy is readable).
fn archive_state(restore: Option<&str>) -> ArchiveState {
    match restore {
        None => ArchiveState::NotRequested,
        Some(r) if r.contains("ongoing-request=\"false\"") => ArchiveState::Readable,
        Some(_) => ArchiveState::InProgress,
    }
}

fn target_key(target: &Target, key: &str) -> String {
    format!("{}{key}", target.prefix)
}

#[allow(clippy::too_many_arguments)] // one object's restore: all of it is needed
async fn restore_one(
    deps: &Deps,
    backup_bucket: &str,
    target: &Target,
    e: &ManifestEntry,
    copy: ObjectHead,
    mut item: Item,
    in_place: bool,
    tier: RestoreTier,
) -> PortResult<Item> {
    // Already there with the backup's bytes (a replayed request): nothing to do.
    let current = deps.target.head(&target.bucket, &item.target_key, None).await?;
    if let Some(h) = &current {
        let same = h.metadata.iter().any(|(k, v)| k == META_SHA256 && *v == e.sha256) && h.size == e.size;
        if same {
            item.outcome = "unchanged".into();
            return Ok(item);
        }
        if in_place {
            // Overwriting is allowed only where the overwritten version stays recoverable.
            let Some(v) = h.version_id.clone().filter(|v| v != "null") else {
                return Err(PortError::InvalidState(format!(
                    "{}/{} exists and the bucket keeps no versions: overwriting would lose it",
                    target.bucket, item.target_key
                )));
            };
            item.overwritten_version = Some(v);
        }
    }
    if matches!(copy.storage_class.as_str(), "GLACIER" | "DEEP_ARCHIVE") {
        match archive_state(copy.restore.as_deref()) {
            ArchiveState::Readable => {}
            ArchiveState::InProgress => {
                item.outcome = "archive-restore-in-progress".into();
                return Ok(item);
            }
            ArchiveState::NotRequested => {
                deps.backup
                    .restore(
                        backup_bucket,
                        &e.backup_key,
                        e.backup_version_id.as_deref(),
                        ARCHIVE_RESTORE_DAYS,
                        tier,
                    )
                    .await?;
                item.outcome = "archive-restore-started".into();
                return Ok(item);
            }
        }
    }
    deps.target
        .copy(&CopyRequest {
            source_bucket: backup_bucket.to_owned(),
            source_key: e.backup_key.clone(),
            source_version_id: e.backup_version_id.clone(),
            if_match: None,
            size: e.size,
            bucket: target.bucket.clone(),
            key: item.target_key.clone(),
            options: WriteOptions {
                storage_class: None,
                lock: None,
                legal_hold: false,
                metadata: vec![(META_SHA256.to_owned(), e.sha256.clone())],
            },
        })
        .await?;
    item.outcome = "restored".into();
    Ok(item)
}
