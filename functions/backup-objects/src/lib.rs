//! `backup-objects`: incremental backup of one protected bucket/prefix (one shard) into
//! the versioned, Object-Lock-enabled backup bucket of the DR region.
//!
//! The source is listed page by page and compared with the previous run's manifest:
//! unchanged objects (same version, size and ETag) cost no call beyond the listing; new
//! and changed objects are read once to compute their SHA-256 and CRC64/NVME, then copied
//! server-side (conditional on the ETag that was hashed; multipart UploadPartCopy above
//! the threshold) under the run's own key, with the retention and legal hold configured.
//! A copy the previous run's verification found damaged (missing, truncated, corrupted or
//! replaced) is never carried over: the next run (full listing, change queue or sharded)
//! reads it from the source and copies it again, reporting it `healed` when the source
//! still has the content the damaged copy recorded (same SHA-256) and `unrecoverable` when
//! it does not (changed or deleted since).
//! A checkpoint is saved in the backup bucket at most every [`CHECKPOINT_EVERY`] of listing
//! and whenever an invocation stops early: one that runs out of time (or pages) answers
//! `in_progress` and the next one resumes there; one that crashed resumes from the last
//! checkpoint and, for that whole invocation, checks the backup bucket before copying a
//! changed object, so that nothing is copied twice. (A checkpoint holds every entry so
//! far: saving it after every page would write O(pages²) bytes.) The manifest is written, and the run recorded in the catalog
//! as a recovery point, only when the listing is complete. A Step Functions Map fans
//! shards (prefixes) out, each looping on `in_progress`.
//!
//! Run names. A scheduled request names its run by the minute of its `scheduledTime`
//! (`lb-<policy>-<bucket>-<prefix tag>-<yyyymmdd>-<hhmm>`): the same event delivered twice,
//! or a second request for the same minute, is the same run, resumed while it is under
//! way and a no-op once it is complete. An on-demand request (a "back up now" from an
//! operator or a tool) carries its own `requestId` and gets a run of its own,
//! `…-<yyyymmdd>-<hhmm>-od-<request tag>` (the tag is a hash of the id), so a second
//! request within the same minute is backed up again, while that same request retried
//! stays one run. An answer that did nothing says so: `replay` is true and `note` names
//! the run that was already complete (and, without a `requestId`, how to get a new one).
//! Sharded runs are scheduled runs: their steps refuse a `requestId`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::app::RunLog;
use lifeboat::error::ErrorType;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat::object_store::runs::{completed_runs, load_manifest};
use lifeboat::object_store::settings::S3Settings;
use lifeboat::object_store::{digest, read_all};
use lifeboat::verify::Problem;
use lifeboat_domain::Region;
use lifeboat_domain::manifest::{
    Checkpoint, ListedObject, Listing, Manifest, ManifestEntry, ManifestRef, backup_key, checkpoint_key, manifest_key,
    sha256_hex,
};
use lifeboat_domain::shards::Shard;
use lifeboat_domain::{RecoveryPoint, RecoveryPointId, Status};
use lifeboat_ports::changes::ChangeFeed;
use lifeboat_ports::objects::{CopyRequest, ObjectStore, WriteOptions};
use lifeboat_ports::{Catalog, Clock, Notifier, PortError, PortResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod changes;
mod copying;
mod healing;
mod request;
mod sharded;

use copying::back_up_one;
pub(crate) use healing::{alert_unrecoverable, healing};
use healing::{previous_entries, report_unrecoverable};
pub(crate) use request::{Asker, RunId, already_complete, on_demand_run_id, run_id};
pub use request::{BackupRequest, MAX_REQUEST_ID, Request, run_id_of};
pub use sharded::{Mode, ShardedRequest, finish, plan_shards, run_shard, run_sharded};

pub const FUNCTION: &str = "backup-objects";
/// The longest stretch of listing an invocation does without saving its checkpoint.
pub const CHECKPOINT_EVERY: chrono::Duration = chrono::Duration::seconds(20);
/// Stop taking new pages when less than this is left before the Lambda deadline.
const DEADLINE_MARGIN: Duration = Duration::from_secs(90);
const MAX_CHECKPOINT_BYTES: u64 = 256 * 1024 * 1024;

pub const META_RUN: &str = "lifeboat-run";
pub const META_ETAG: &str = "lifeboat-source-etag";
pub const META_SHA256: &str = "lifeboat-sha256";
pub const META_CRC64: &str = "lifeboat-crc64nvme";

#[derive(Clone)]
pub struct Deps {
    pub catalog: Arc<dyn Catalog>,
    /// Alerts: a damaged copy the source can no longer repair.
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// The source region's S3.
    pub source: Arc<dyn ObjectStore>,
    /// The backup region's S3.
    pub backup: Arc<dyn ObjectStore>,
    pub settings: S3Settings,
    /// The source region's change queues (SQS).
    pub changes: Arc<dyn ChangeFeed>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every object is backed up; the manifest is written and the run cataloged.
    Complete,
    /// Stopped at a page boundary (time or page budget); invoke again to resume.
    InProgress,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub status: RunStatus,
    pub run: String,
    pub recovery_point: RecoveryPointId,
    /// Objects listed by this invocation.
    pub listed: u64,
    /// Objects copied by this invocation, and their bytes.
    pub copied: u64,
    pub bytes_copied: u64,
    /// Objects found unchanged (no call beyond the listing).
    pub unchanged: u64,
    /// Copies found already made by an interrupted invocation of this run.
    pub recovered: u64,
    /// Tombstones: objects deleted from the source since the previous run.
    pub deleted: u64,
    /// The run was already complete: nothing was done (`note` says which run it was).
    pub replay: bool,
    /// The on-demand request's id, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Why nothing was done, for a request that found its run already complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// How this run found what changed: `full` (listed the source) or `changes` (the
    /// change feed's keys on top of the previous manifest).
    pub listing: Listing,
    /// Why a run with a change queue listed the whole source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listing_reason: Option<String>,
    /// Change-queue messages this run took care of (deleted once the run was recorded),
    /// and those it left for another reader (other buckets or prefixes, unreadable).
    #[serde(skip_serializing_if = "is_zero")]
    pub changes_received: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub changes_left: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestRef>,
    /// `shards` mode: the key ranges the run is split into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<Shard>>,
    /// `shard` mode: the index of the shard worked on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// Keys whose copy in the previous run verification found damaged (missing, truncated,
    /// corrupted, replaced), copied again from a source that still has the same content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub healed: Vec<String>,
    /// Damaged keys whose content the source no longer has (changed or deleted since): the
    /// earlier runs' copy of them cannot be repaired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unrecoverable: Vec<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// backup-objects as one invocation: a whole or sharded backup request in, a report out.
#[derive(Debug)]
pub struct BackupObjects;

impl Function for BackupObjects {
    const NAME: &'static str = FUNCTION;
    const DEADLINE_MARGIN: Duration = DEADLINE_MARGIN;
    type Deps = Deps;
    type Request = Request;
    type Output = BackupReport;

    fn now(deps: &Deps) -> DateTime<Utc> {
        deps.clock.now()
    }

    fn parse(deps: &Deps, payload: &Value) -> Result<Request, FunctionError> {
        Request::parse(payload).and_then(|r| trusted_time(deps, r))
    }

    async fn run(deps: &Deps, req: Request, invocation: &mut Invocation) -> Result<BackupReport, FunctionError> {
        let (request_id, deadline) = (invocation.run_id(), invocation.stop_at());
        match req {
            Request::Whole(req) => run(deps, &req, request_id, deadline).await,
            Request::Sharded(req) => match req.mode {
                Mode::Shards => plan_shards(deps, &req).await,
                Mode::Shard => run_shard(deps, &req, request_id, deadline).await,
                Mode::Finish => finish(deps, &req, request_id).await,
            },
        }
    }

    fn record_metrics(deps: &Deps, result: &Result<BackupReport, FunctionError>, _: Duration, metrics: &mut Metrics) {
        record_metrics(result, &deps.settings.backup_region, metrics);
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<BackupReport, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the invocation's metrics to `sink` (once, also when the run fails).
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<BackupReport, FunctionError> {
    invoke::<BackupObjects>(deps, event, sink).await
}

/// Refuses a request whose `scheduledTime` lies outside `MAX_EVENT_SKEW` / `MAX_EVENT_AGE`
/// of the clock: the run's slot, its name and its recovery point are the event's time,
/// so a replayed or forged tick would back up for the wrong slot. Nothing is read or
/// written before this check.
fn trusted_time(deps: &Deps, request: Request) -> Result<Request, FunctionError> {
    let at = match &request {
        Request::Whole(r) => r.scheduled_time,
        Request::Sharded(r) => r.scheduled_time,
    };
    lifeboat::events::check_time("scheduledTime", at, deps.clock.now(), deps.settings.event_time)?;
    Ok(request)
}

/// An invocation's metrics, in the backup region: `ObjectsCopied` and `BytesCopied` by
/// this invocation; `BackupsSucceeded` when it completed the run: a whole run or the
/// finish of a sharded one (a replay, a finished shard or a split count nothing);
/// `BackupsFailed` when
/// it failed for another reason than its input.
pub fn record_metrics(result: &Result<BackupReport, FunctionError>, region: &Region, metrics: &mut Metrics) {
    match result {
        Ok(r) => {
            metrics.count_in(region, Metric::ObjectsCopied, r.copied);
            metrics.count_in(region, Metric::BytesCopied, r.bytes_copied);
            let step_of_run = r.shard.is_some() || r.shards.is_some();
            let completed = r.status == RunStatus::Complete && !r.replay && !step_of_run;
            metrics.count_in(region, Metric::BackupsSucceeded, u64::from(completed));
            metrics.count_in(region, Metric::BackupsFailed, 0);
        }
        Err(e) if e.kind == ErrorType::Invalid => {}
        Err(_) => metrics.count_in(region, Metric::BackupsFailed, 1),
    }
}

#[derive(Default)]
struct Counts {
    listed: u64,
    copied: u64,
    bytes: u64,
    unchanged: u64,
    recovered: u64,
}

enum Outcome {
    Unchanged(ManifestEntry),
    Copied(ManifestEntry),
    Recovered(ManifestEntry),
}

impl BackupReport {
    fn start(id: &RunId, status: RunStatus) -> Self {
        Self {
            status,
            run: id.run.clone(),
            recovery_point: id.rp_id.clone(),
            listed: 0,
            copied: 0,
            bytes_copied: 0,
            unchanged: 0,
            recovered: 0,
            deleted: 0,
            replay: false,
            request_id: None,
            note: None,
            listing: Listing::Full,
            listing_reason: None,
            changes_received: 0,
            changes_left: 0,
            manifest: None,
            shards: None,
            shard: None,
            healed: Vec::new(),
            unrecoverable: Vec::new(),
        }
    }

    fn add(&mut self, c: &Counts) {
        self.listed += c.listed;
        self.copied += c.copied;
        self.bytes_copied += c.bytes;
        self.unchanged += c.unchanged;
        self.recovered += c.recovered;
    }
}

/// One listing pass over a key range of a run: what every page needs.
struct Pass<'a> {
    deps: &'a Deps,
    bucket: &'a str,
    prefix: &'a str,
    run: &'a str,
    /// The previous run's live entries (of the range), by key.
    prev: &'a HashMap<&'a str, &'a ManifestEntry>,
    /// After an interruption: check the backup bucket before copying.
    careful: bool,
}

/// Reads a run's (or shard's) checkpoint, or starts one; counts this invocation. Returns
/// whether this invocation must be careful (an earlier one may have copied objects
/// since the last checkpoint).
async fn open_checkpoint(deps: &Deps, run: &str, ckey: &str) -> Result<(Checkpoint, bool), FunctionError> {
    let s = &deps.settings;
    let mut cp = match read_all(deps.backup.as_ref(), &s.backup_bucket, ckey, MAX_CHECKPOINT_BYTES).await {
        Ok(bytes) => Checkpoint::decode(&bytes).map_err(|e| {
            FunctionError::new(
                lifeboat::ErrorType::Internal,
                format!("checkpoint {ckey} is unreadable: {e}"),
            )
        })?,
        Err(PortError::NotFound(_)) => Checkpoint::start(run),
        Err(e) => return Err(e.into()),
    };
    // After an interruption, anything listed since the last checkpoint may be copied
    // already: this invocation checks before copying (a HEAD per changed object only).
    let careful = cp.invocations > 0;
    cp.invocations += 1;
    cp.started_at.get_or_insert_with(|| deps.clock.now());
    if !careful {
        // The first checkpoint, before any copy: a crash before the next one still
        // leaves the resumed invocation careful.
        save_checkpoint(deps, ckey, &cp).await?;
    }
    Ok((cp, careful))
}

/// Lists `shard`'s keys page by page from the checkpoint, backing each object up, until
/// the range is done (`Complete`) or the page or time budget is spent (`InProgress`,
/// checkpoint saved).
async fn advance(
    pass: &Pass<'_>,
    ckey: &str,
    cp: &mut Checkpoint,
    shard: &Shard,
    max_pages: Option<u32>,
    deadline: Option<DateTime<Utc>>,
) -> Result<(Counts, RunStatus), FunctionError> {
    let deps = pass.deps;
    let s = &deps.settings;
    let mut saved_at = deps.clock.now();
    let mut counts = Counts::default();
    let mut pages = 0u32;
    while !cp.listing_done {
        let out_of_pages = max_pages.is_some_and(|m| pages >= m);
        // At least one page per invocation: one that starts late (queued past its
        // deadline) still moves the run forward instead of answering in_progress forever.
        let out_of_time = pages > 0 && deadline.is_some_and(|d| deps.clock.now() >= d);
        if out_of_pages || out_of_time {
            save_checkpoint(deps, ckey, cp).await?;
            return Ok((counts, RunStatus::InProgress));
        }
        // Only the first page starts from the range's start; a token continues.
        let start_after = cp.next_token.is_none().then(|| shard.start_after()).flatten();
        let page = deps
            .source
            .list_page_after(
                pass.bucket,
                pass.prefix,
                start_after.as_deref(),
                cp.next_token.as_deref(),
                s.page_size,
            )
            .await?;
        let mut past_end = false;
        let mut objects = Vec::with_capacity(page.objects.len());
        for o in page.objects {
            if shard.is_past(&o.key) {
                past_end = true;
                break;
            }
            if shard.contains(&o.key) {
                objects.push(o);
            }
        }
        counts.listed += objects.len() as u64;
        let now = deps.clock.now();
        let outcomes: Vec<Outcome> = stream::iter(objects)
            .map(|o| back_up_one(pass, o, None, now))
            .buffered(s.concurrency)
            .try_collect()
            .await?;
        for o in outcomes {
            let entry = match o {
                Outcome::Unchanged(e) => {
                    counts.unchanged += 1;
                    e
                }
                Outcome::Copied(e) => {
                    counts.copied += 1;
                    counts.bytes += e.size;
                    e
                }
                Outcome::Recovered(e) => {
                    counts.recovered += 1;
                    e
                }
            };
            cp.entries.push(entry);
        }
        cp.listing_done = past_end || page.next_token.is_none();
        cp.next_token = if cp.listing_done { None } else { page.next_token };
        let now = deps.clock.now();
        if !cp.listing_done && now - saved_at >= CHECKPOINT_EVERY {
            save_checkpoint(deps, ckey, cp).await?;
            saved_at = now;
        }
        pages += 1;
    }
    Ok((counts, RunStatus::Complete))
}

/// Backs up one shard, for at most `deadline` (or `maxPages` pages).
pub async fn run(
    deps: &Deps,
    req: &BackupRequest,
    run_id_: &str,
    deadline: Option<DateTime<Utc>>,
) -> Result<BackupReport, FunctionError> {
    let s = &deps.settings;
    let request_id = req.request_id.as_deref();
    let id = on_demand_run_id(s, &req.bucket, &req.prefix, &req.policy, req.scheduled_time, request_id)?;
    let mut report = BackupReport::start(&id, RunStatus::Complete);
    report.request_id = req.request_id.clone();
    // A replayed trigger of a finished run does nothing, and says so.
    if let Some(done) = deps.catalog.get(&id.rp_id).await? {
        let asker = request_id.map_or(Asker::Scheduled, Asker::Request);
        let note = already_complete(&id.run, done.created_at, asker);
        tracing::info!(run = %id.run, request_id = ?request_id, "{note}");
        report.replay = true;
        report.note = Some(note);
        report.manifest = done.manifest().cloned();
        return Ok(report);
    }
    // One invocation at a time works on a run: a scheduled start that arrives while an
    // earlier one is still listing (a slow run, a retried or late delivery) does nothing.
    // The lease outlives the invocation's hard deadline, so a crashed holder frees it.
    let lease = format!("s3-run#{}", id.rp_id);
    let now = deps.clock.now();
    let until = deadline.unwrap_or(now + chrono::Duration::minutes(15))
        + chrono::Duration::from_std(DEADLINE_MARGIN).unwrap_or_default()
        + chrono::Duration::minutes(1);
    if !deps.catalog.acquire_lease(&lease, run_id_, until, now).await? {
        let note = format!(
            "another invocation is backing up run {} (lease {lease}): this one did nothing",
            id.run
        );
        tracing::info!(run = %id.run, "{note}");
        report.status = RunStatus::InProgress;
        report.note = Some(note);
        return Ok(report);
    }
    let result = run_leased(deps, req, run_id_, deadline, &id, report).await;
    if let Err(e) = deps.catalog.release_lease(&lease, run_id_).await {
        tracing::warn!(error = %e, lease, "could not release the run's lease; it lapses by itself");
    }
    result
}

/// [`run`] once the run's lease is held.
async fn run_leased(
    deps: &Deps,
    req: &BackupRequest,
    run_id_: &str,
    deadline: Option<DateTime<Utc>>,
    id: &RunId,
    mut report: BackupReport,
) -> Result<BackupReport, FunctionError> {
    let s = &deps.settings;
    let run = id.run.as_str();
    let mut log = RunLog::start(FUNCTION, run_id_, deps.clock.now());
    let ckey = checkpoint_key(&req.bucket, &req.prefix, run);
    let (mut cp, careful) = open_checkpoint(deps, run, &ckey).await?;
    // Copies the last verification found damaged are not carried over: they are read
    // from the source and copied again, like changed objects.
    let (previous, damaged) = previous_run(deps, &id.resource.arn, &id.rp_id).await?;
    let mut reason = None;
    if let Some(queue) = &req.change_queue {
        match changes::choose(deps, req, queue, previous.as_ref(), &cp).await? {
            changes::Choice::Full(why) => reason = Some(why),
            changes::Choice::Feed { waiting } => {
                // `choose` asks for a full listing when there is no previous manifest.
                if let Some(previous) = &previous {
                    let feed = changes::FeedRun {
                        deps,
                        id,
                        req,
                        queue,
                        ckey: &ckey,
                        careful,
                        waiting,
                        deadline,
                        damaged: &damaged,
                    };
                    return feed.run(previous, cp, log).await;
                }
                reason = Some("no previous manifest to build on".into());
            }
        }
    }
    let prev_all = previous_entries(previous.as_ref(), |_| true);
    let prev = previous_entries(previous.as_ref(), |k| !damaged.contains(k));
    let pass = Pass {
        deps,
        bucket: &req.bucket,
        prefix: &req.prefix,
        run,
        prev: &prev,
        careful,
    };
    let (counts, status) = advance(&pass, &ckey, &mut cp, &Shard::whole(), req.max_pages, deadline).await?;
    report.status = status;
    report.add(&counts);
    log.action("listed", run, counts.listed.to_string());
    log.action("copied", run, counts.copied.to_string());
    if report.status == RunStatus::InProgress {
        tracing::info!(run = %run, entries = cp.entries.len(), "run continues in the next invocation");
        log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
        return Ok(report);
    }
    let entries = std::mem::take(&mut cp.entries);
    (report.healed, report.unrecoverable) = healing(&damaged, &prev_all, &entries);
    report_unrecoverable(deps, id, req, &report.unrecoverable, &mut log).await;
    let (mref, deleted) = complete(deps, id, &req.bucket, &req.prefix, entries, &prev_all, None).await?;
    report.deleted = deleted;
    report.listing_reason = reason;
    if let Some(queue) = &req.change_queue {
        let listed_from = cp.started_at.unwrap_or(req.scheduled_time).min(req.scheduled_time);
        let (settled, left) = changes::settle(deps, queue, listed_from, deadline).await;
        report.changes_received = settled;
        report.changes_left = left;
    }
    if let Err(e) = deps.backup.delete(&s.backup_bucket, &ckey, None).await {
        tracing::warn!(error = %e, key = %ckey, "could not delete the finished run's checkpoint");
    }
    log.action("manifest", run, format!("{} objects", mref.objects));
    log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
    report.manifest = Some(mref);
    Ok(report)
}

/// Completes a run whose listing is done: tombstones for the previous run's objects that
/// are gone, the manifest, then the catalog record. Returns the manifest's reference and
/// the tombstones written.
async fn complete(
    deps: &Deps,
    id: &RunId,
    bucket: &str,
    prefix: &str,
    mut entries: Vec<ManifestEntry>,
    prev: &HashMap<&str, &ManifestEntry>,
    from_changes_since: Option<DateTime<Utc>>,
) -> Result<(ManifestRef, u64), FunctionError> {
    let s = &deps.settings;
    let run = id.run.as_str();
    let now = deps.clock.now();
    let live: std::collections::HashSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let mut tombstones: Vec<ManifestEntry> = prev
        .values()
        .filter(|e| !live.contains(e.key.as_str()))
        .map(|e| ManifestEntry {
            deleted: true,
            ..(*e).clone()
        })
        .collect();
    entries.append(&mut tombstones);
    // Tombstones: those added here, and those a run from the change queue wrote itself.
    let deleted = entries.iter().filter(|e| e.deleted).count() as u64;
    let mut manifest = Manifest::new(run, bucket, prefix, now, entries);
    if let Some(full_at) = from_changes_since {
        manifest = manifest.from_changes(full_at);
    }
    let bytes = manifest
        .encode()
        .map_err(|e| FunctionError::new(lifeboat::ErrorType::Internal, e.to_string()))?;
    let sha256 = sha256_hex(&bytes);
    let mkey = manifest_key(bucket, prefix, run);
    deps.backup
        .put(&s.backup_bucket, &mkey, bytes, &s.write_options(now, Vec::new()))
        .await?;
    let copied_total = manifest.live().filter(|e| e.copied_in == run).count() as u64;
    // The storage this run added: its own copies (the others are earlier runs').
    let copied_bytes: u64 = manifest.live().filter(|e| e.copied_in == run).map(|e| e.size).sum();
    let mref = ManifestRef {
        source_bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        backup_bucket: s.backup_bucket.clone(),
        key: mkey,
        sha256,
        objects: manifest.header.objects,
        bytes: manifest.header.bytes,
        copied: copied_total,
        deleted,
    };
    let mut rp = RecoveryPoint::new(
        &id.resource,
        &id.policy,
        id.slot,
        &s.backup_region,
        run,
        Status::Available,
        now,
    )
    .with_manifest(mref.clone());
    rp.size_bytes = Some(copied_bytes);
    rp.holds.legal_hold = s.legal_hold;
    rp.holds.locked_until = s.lock.map(|(_, span)| now + span);
    match deps.catalog.insert(&rp).await {
        Ok(()) | Err(PortError::Conflict(_) | PortError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok((mref, deleted))
}

async fn save_checkpoint(deps: &Deps, key: &str, cp: &Checkpoint) -> PortResult<()> {
    let bytes = cp
        .encode()
        .map_err(|e| PortError::Invalid(format!("cannot encode checkpoint: {e}")))?;
    // Checkpoints are scratch state: no retention, no hold.
    deps.backup
        .put(&deps.settings.backup_bucket, key, bytes, &WriteOptions::default())
        .await
        .map(drop)
}

/// The newest completed run before `current`: its manifest (none when it is unreadable:
/// this run then copies everything, never a wrong incremental run) and the keys whose backup copy its latest verification found damaged (as
/// `verification_failed` lists them, `<problem>: <key>`, at most the first 100: a later
/// run repairs the rest). One catalog query.
async fn previous_run(
    deps: &Deps,
    arn: &str,
    current: &RecoveryPointId,
) -> PortResult<(Option<Manifest>, BTreeSet<String>)> {
    let runs = completed_runs(deps.catalog.as_ref(), arn).await?;
    let Some(previous) = runs.iter().find(|p| &p.id != current) else {
        return Ok((None, BTreeSet::new()));
    };
    let damaged = previous
        .verification_failed
        .iter()
        .flat_map(|f| &f.problems)
        .filter_map(|line| line.split_once(": "))
        .filter(|(problem, _)| Problem::from_name(problem).is_some_and(|p| p != Problem::Manifest))
        .map(|(_, key)| key.to_owned())
        .collect();
    let Some(mref) = previous.manifest() else {
        return Ok((None, damaged));
    };
    match load_manifest(deps.backup.as_ref(), mref).await {
        Ok(m) => Ok((Some(m), damaged)),
        Err(lifeboat::object_store::runs::ManifestReadError::Port(e)) if e.is_transient() => Err(e),
        Err(e) => {
            tracing::error!(error = %e, manifest = %mref.key, "previous manifest unusable: copying everything");
            Ok((None, damaged))
        }
    }
}
