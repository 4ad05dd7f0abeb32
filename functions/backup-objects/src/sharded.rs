//! A run split into shards for large prefixes (`infra/state-machines/backup-objects.asl.json`):
//!
//! - `shards`: lists the prefix delimited by `/` to find its first-level sub-prefixes and
//!   groups them into at most `maxShards` contiguous key ranges (see
//!   [`lifeboat_domain::shards`]), which together hold every key exactly once.
//! - `shard`: backs up the keys of one range exactly like a whole run (same per-object
//!   code, own checkpoint, `in_progress` when its time or page budget is spent), then
//!   writes the range's live entries as a shard part (zstd JSON lines, its SHA-256 in the
//!   part's metadata).
//! - `finish`: once every part exists and verifies, merges them in key order into the
//!   run's manifest and catalog record, exactly as a whole run writes them (tombstones
//!   included), then removes the parts and leftover checkpoints.
//!
//! Every step is idempotent: a replay after the run is cataloged does nothing, a shard
//! whose part exists does nothing, and a crashed shard resumes from its checkpoint
//! carefully (nothing copied twice).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use lifeboat::FunctionError;
use lifeboat::app::RunLog;
use lifeboat::error::ErrorType;
use lifeboat::object_store::read_all;
use lifeboat_domain::manifest::{
    ManifestEntry, ShardPart, sha256_hex, shard_checkpoint_key, shard_part_key, shard_parts_dir, shard_plan_key,
};
use lifeboat_domain::s3::{check_bucket, check_prefix};
use lifeboat_domain::shards::{self, DEFAULT_MAX_SHARDS, MAX_SHARDS, Shard};
use lifeboat_ports::PortError;
use lifeboat_ports::objects::WriteOptions;
use serde::Deserialize;
use serde_json::Value;

use super::{
    Asker, BackupReport, Counts, Deps, FUNCTION, META_SHA256, Pass, RunStatus, advance, alert_unrecoverable,
    already_complete, complete, healing, open_checkpoint, previous_entries, previous_run, run_id,
};
use lifeboat_domain::PolicyName;

/// The largest shard part read back (compressed).
const MAX_PART_BYTES: u64 = 512 * 1024 * 1024;
/// The largest shard list read back.
const MAX_PLAN_BYTES: u64 = 1024 * 1024;

/// The step of a sharded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Shards,
    Shard,
    Finish,
}

/// One step of a sharded run: `{"mode": "shards" | "shard" | "finish", "bucket",
/// "prefix", "policy", "scheduledTime"}` plus `maxShards` (shards), `shard` and
/// `maxPages` (shard), or `shards`, the list `shards` answered (finish).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShardedRequest {
    pub mode: Mode,
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    pub policy: String,
    pub scheduled_time: DateTime<Utc>,
    #[serde(default)]
    pub max_shards: Option<u32>,
    #[serde(default)]
    pub max_pages: Option<u32>,
    #[serde(default)]
    pub shard: Option<Shard>,
    #[serde(default)]
    pub shards: Option<Vec<Shard>>,
}

impl ShardedRequest {
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        let req: Self = serde_json::from_value(event.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed sharded backup request: {e}")))?;
        check_bucket(&req.bucket).map_err(FunctionError::invalid)?;
        check_prefix(&req.prefix).map_err(FunctionError::invalid)?;
        PolicyName::parse(&req.policy).map_err(|e| FunctionError::invalid(e.to_string()))?;
        let only = |allowed: bool, field: &str| {
            if allowed {
                Ok(())
            } else {
                Err(FunctionError::invalid(format!(
                    "{field} does not belong in a {:?} request",
                    req.mode
                )))
            }
        };
        only(req.max_shards.is_none() || req.mode == Mode::Shards, "maxShards")?;
        only(req.max_pages.is_none() || req.mode == Mode::Shard, "maxPages")?;
        only(req.shard.is_none() || req.mode == Mode::Shard, "shard")?;
        only(req.shards.is_none() || req.mode == Mode::Finish, "shards")?;
        if let Some(n) = req.max_shards
            && !(1..=MAX_SHARDS).contains(&n)
        {
            return Err(FunctionError::invalid(format!(
                "maxShards must be between 1 and {MAX_SHARDS}, not {n}"
            )));
        }
        if req.max_pages == Some(0) {
            return Err(FunctionError::invalid("maxPages must be at least 1"));
        }
        match req.mode {
            Mode::Shards => {}
            Mode::Shard => {
                let shard = req
                    .shard
                    .as_ref()
                    .ok_or_else(|| FunctionError::invalid("a shard request needs its shard {index, from, to}"))?;
                if shard.to.as_deref().is_some_and(|to| to <= shard.from.as_str()) {
                    return Err(FunctionError::invalid(format!(
                        "shard {} is empty: to {:?} is not after from {:?}",
                        shard.index, shard.to, shard.from
                    )));
                }
            }
            Mode::Finish => {
                // An empty list is what `shards` answers for a run already complete:
                // finish then replays the recorded run. Otherwise the list must cover.
                let list = req
                    .shards
                    .as_deref()
                    .ok_or_else(|| FunctionError::invalid("a finish request needs the run's shards"))?;
                if !list.is_empty() {
                    shards::check_cover(list).map_err(|e| FunctionError::invalid(format!("bad shard list: {e}")))?;
                }
            }
        }
        Ok(req)
    }

    fn shard(&self) -> Result<&Shard, FunctionError> {
        self.shard
            .as_ref()
            .ok_or_else(|| FunctionError::invalid("a shard request needs its shard {index, from, to}"))
    }

    fn shard_list(&self) -> Result<&[Shard], FunctionError> {
        let list = self
            .shards
            .as_deref()
            .ok_or_else(|| FunctionError::invalid("a finish request needs the run's shards"))?;
        shards::check_cover(list).map_err(|e| FunctionError::invalid(format!("bad shard list: {e}")))?;
        Ok(list)
    }
}

/// `shards`: the run's key ranges (none when the run is already complete). The split is
/// kept with the run's checkpoints: a run started again gets the same shards.
pub async fn plan_shards(deps: &Deps, req: &ShardedRequest) -> Result<BackupReport, FunctionError> {
    let s = &deps.settings;
    let id = run_id(s, &req.bucket, &req.prefix, &req.policy, req.scheduled_time)?;
    let mut report = BackupReport::start(&id, RunStatus::InProgress);
    if let Some(done) = deps.catalog.get(&id.rp_id).await? {
        report.status = RunStatus::Complete;
        report.replay = true;
        report.note = Some(already_complete(&id.run, done.created_at, Asker::Step));
        report.manifest = done.manifest().cloned();
        report.shards = Some(Vec::new());
        return Ok(report);
    }
    // A run split before (a restarted execution) keeps its split.
    let plan_key = shard_plan_key(&req.bucket, &req.prefix, &id.run);
    match read_all(deps.backup.as_ref(), &s.backup_bucket, &plan_key, MAX_PLAN_BYTES).await {
        Ok(bytes) => {
            let kept: Vec<Shard> = serde_json::from_slice(&bytes).map_err(|e| {
                FunctionError::new(ErrorType::Internal, format!("shard list {plan_key} is unreadable: {e}"))
            })?;
            shards::check_cover(&kept).map_err(|e| {
                FunctionError::new(
                    ErrorType::Internal,
                    format!("shard list {plan_key} is not a split: {e}"),
                )
            })?;
            tracing::info!(run = %id.run, shards = kept.len(), "run already split: same shards");
            report.shards = Some(kept);
            return Ok(report);
        }
        Err(PortError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut prefixes = Vec::new();
    let mut loose = 0u64;
    let mut token: Option<String> = None;
    loop {
        let page = deps
            .source
            .list_sub_prefixes(&req.bucket, &req.prefix, token.as_deref(), s.page_size)
            .await?;
        prefixes.extend(page.prefixes);
        loose += page.loose_objects;
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    // Listings come sorted; sorting again keeps the plan right whatever the store.
    prefixes.sort();
    prefixes.dedup();
    let plan = shards::plan(&prefixes, req.max_shards.unwrap_or(DEFAULT_MAX_SHARDS));
    tracing::info!(
        run = %id.run,
        sub_prefixes = prefixes.len(),
        loose_objects = loose,
        shards = plan.len(),
        "run split into shards"
    );
    let bytes = serde_json::to_vec(&plan).map_err(|e| FunctionError::new(ErrorType::Internal, e.to_string()))?;
    // Scratch state like checkpoints: no retention, no hold.
    deps.backup
        .put(&s.backup_bucket, &plan_key, bytes, &WriteOptions::default())
        .await?;
    report.shards = Some(plan);
    Ok(report)
}

/// `shard`: backs up one key range for at most `deadline` (or `maxPages` pages); when the
/// range is done, writes its part.
pub async fn run_shard(
    deps: &Deps,
    req: &ShardedRequest,
    request_id: &str,
    deadline: Option<DateTime<Utc>>,
) -> Result<BackupReport, FunctionError> {
    let s = &deps.settings;
    let shard = req.shard()?;
    let id = run_id(s, &req.bucket, &req.prefix, &req.policy, req.scheduled_time)?;
    let run = id.run.as_str();
    let mut report = BackupReport::start(&id, RunStatus::Complete);
    report.shard = Some(shard.index);
    if let Some(done) = deps.catalog.get(&id.rp_id).await? {
        report.replay = true;
        report.note = Some(already_complete(&id.run, done.created_at, Asker::Step));
        report.manifest = done.manifest().cloned();
        return Ok(report);
    }
    let part_key = shard_part_key(&req.bucket, &req.prefix, run, shard.index);
    if deps.backup.head(&s.backup_bucket, &part_key, None).await?.is_some() {
        report.replay = true;
        return Ok(report);
    }
    let mut log = RunLog::start(FUNCTION, request_id, deps.clock.now());
    let ckey = shard_checkpoint_key(&req.bucket, &req.prefix, run, shard.index);
    let (mut cp, careful) = open_checkpoint(deps, run, &ckey).await?;
    // Copies the last verification found damaged are not carried over: read from the
    // source and copied again, like changed objects (`finish` reports them).
    let (previous, damaged) = previous_run(deps, &id.resource.arn, &id.rp_id).await?;
    let prev = previous_entries(previous.as_ref(), |k| shard.contains(k) && !damaged.contains(k));
    let pass = Pass {
        deps,
        bucket: &req.bucket,
        prefix: &req.prefix,
        run,
        prev: &prev,
        careful,
    };
    let (counts, status) = advance(&pass, &ckey, &mut cp, shard, req.max_pages, deadline).await?;
    report.status = status;
    report.add(&counts);
    let subject = format!("{run} shard {}", shard.index);
    log.action("listed", &subject, counts.listed.to_string());
    log.action("copied", &subject, counts.copied.to_string());
    if status == RunStatus::InProgress {
        tracing::info!(run = %run, shard = shard.index, entries = cp.entries.len(), "shard continues in the next invocation");
        log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
        return Ok(report);
    }
    let part = ShardPart::new(
        run,
        shard.index,
        &shard.from,
        shard.to.as_deref(),
        std::mem::take(&mut cp.entries),
    );
    let bytes = part
        .encode()
        .map_err(|e| FunctionError::new(ErrorType::Internal, e.to_string()))?;
    let options = WriteOptions {
        metadata: vec![(META_SHA256.to_owned(), sha256_hex(&bytes))],
        ..WriteOptions::default()
    };
    // Parts are scratch state like checkpoints: no retention, no hold.
    deps.backup.put(&s.backup_bucket, &part_key, bytes, &options).await?;
    if let Err(e) = deps.backup.delete(&s.backup_bucket, &ckey, None).await {
        tracing::warn!(error = %e, key = %ckey, "could not delete the finished shard's checkpoint");
    }
    log.action("part", &subject, format!("{} objects", part.header.objects));
    log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
    Ok(report)
}

/// `finish`: merges the verified parts of every shard into the run's manifest and catalog
/// record. A missing part is `Retryable` (its shard is not done); a part that disagrees
/// with the shard list is `Invalid`; a corrupt one is `Internal`.
pub async fn finish(deps: &Deps, req: &ShardedRequest, request_id: &str) -> Result<BackupReport, FunctionError> {
    let s = &deps.settings;
    let id = run_id(s, &req.bucket, &req.prefix, &req.policy, req.scheduled_time)?;
    let run = id.run.as_str();
    let mut report = BackupReport::start(&id, RunStatus::Complete);
    if let Some(done) = deps.catalog.get(&id.rp_id).await? {
        report.replay = true;
        report.note = Some(already_complete(&id.run, done.created_at, Asker::Step));
        report.manifest = done.manifest().cloned();
        return Ok(report);
    }
    let list = req.shard_list()?;
    let mut entries: Vec<ManifestEntry> = Vec::new();
    let mut part_keys = Vec::with_capacity(list.len());
    for shard in list {
        let key = shard_part_key(&req.bucket, &req.prefix, run, shard.index);
        let part = read_part(deps, &key, shard).await?;
        if part.header.run != run
            || part.header.index != shard.index
            || part.header.from != shard.from
            || part.header.to != shard.to
        {
            return Err(FunctionError::invalid(format!(
                "the shard list does not match the parts: part {key} covers [{:?}, {:?}) of run {}, shard {} is [{:?}, {:?})",
                part.header.from, part.header.to, part.header.run, shard.index, shard.from, shard.to
            )));
        }
        if let Some(stray) = part.entries.iter().find(|e| !shard.contains(&e.key)) {
            return Err(FunctionError::new(
                ErrorType::Internal,
                format!("part {key} holds {:?}, outside its shard", stray.key),
            ));
        }
        entries.extend(part.entries);
        part_keys.push(key);
    }
    // A part of no listed shard means the list is not the one the run was split into.
    let expected: HashSet<&str> = part_keys.iter().map(String::as_str).collect();
    let dir = shard_parts_dir(&req.bucket, &req.prefix, run);
    let mut token: Option<String> = None;
    loop {
        let page = deps
            .backup
            .list_page(&s.backup_bucket, &dir, token.as_deref(), 1000)
            .await?;
        if let Some(stray) = page.objects.iter().find(|o| !expected.contains(o.key.as_str())) {
            return Err(FunctionError::invalid(format!(
                "the shard list does not match the parts: {} belongs to no shard of the list",
                stray.key
            )));
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let mut log = RunLog::start(FUNCTION, request_id, deps.clock.now());
    let (previous, damaged) = previous_run(deps, &id.resource.arn, &id.rp_id).await?;
    let prev = previous_entries(previous.as_ref(), |_| true);
    (report.healed, report.unrecoverable) = healing(&damaged, &prev, &entries);
    for key in &report.unrecoverable {
        log.action(
            "unrecoverable",
            key.clone(),
            "the source no longer has the damaged copy's content",
        );
    }
    if !report.unrecoverable.is_empty() {
        alert_unrecoverable(deps, &id, &req.bucket, &req.prefix, &report.unrecoverable, &id.run).await;
    }
    let (mref, deleted) = complete(deps, &id, &req.bucket, &req.prefix, entries, &prev, None).await?;
    report.deleted = deleted;
    // Scratch state of the shards: parts, and checkpoints a crash left behind.
    for (shard, key) in list.iter().zip(&part_keys) {
        if let Err(e) = deps.backup.delete(&s.backup_bucket, key, None).await {
            tracing::warn!(error = %e, key = %key, "could not delete a merged shard part");
        }
        let ckey = shard_checkpoint_key(&req.bucket, &req.prefix, run, shard.index);
        match deps.backup.head(&s.backup_bucket, &ckey, None).await {
            Ok(Some(_)) => {
                if let Err(e) = deps.backup.delete(&s.backup_bucket, &ckey, None).await {
                    tracing::warn!(error = %e, key = %ckey, "could not delete a shard checkpoint");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, key = %ckey, "could not look for a shard checkpoint"),
        }
    }
    let plan_key = shard_plan_key(&req.bucket, &req.prefix, run);
    if let Err(e) = deps.backup.delete(&s.backup_bucket, &plan_key, None).await {
        tracing::warn!(error = %e, key = %plan_key, "could not delete the run's shard list");
    }
    log.action(
        "manifest",
        run,
        format!("{} objects from {} shards", mref.objects, list.len()),
    );
    log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
    report.manifest = Some(mref);
    Ok(report)
}

/// Reads and verifies one shard's part (its bytes against the SHA-256 it was written with).
async fn read_part(deps: &Deps, key: &str, shard: &Shard) -> Result<ShardPart, FunctionError> {
    let s = &deps.settings;
    let Some(head) = deps.backup.head(&s.backup_bucket, key, None).await? else {
        return Err(FunctionError::retryable(format!(
            "shard {} has no part yet ({key}): its backup is not finished",
            shard.index
        )));
    };
    let Some(sha) = head
        .metadata
        .iter()
        .find(|(k, _)| k == META_SHA256)
        .map(|(_, v)| v.clone())
    else {
        return Err(FunctionError::new(
            ErrorType::Internal,
            format!("shard part {key} has no recorded SHA-256"),
        ));
    };
    let bytes = match read_all(deps.backup.as_ref(), &s.backup_bucket, key, MAX_PART_BYTES).await {
        Ok(b) => b,
        Err(PortError::NotFound(_)) => {
            return Err(FunctionError::retryable(format!(
                "shard {} has no part yet ({key})",
                shard.index
            )));
        }
        Err(e) => return Err(e.into()),
    };
    ShardPart::decode_verified(&bytes, &sha)
        .map_err(|e| FunctionError::new(ErrorType::Internal, format!("shard part {key} does not verify: {e}")))
}

/// The whole sharded flow in one process: `shards`, then every shard (at most
/// `concurrency` at once, each invoked again until complete), then `finish`. Counts are
/// summed over the shards; the manifest and tombstones are the finish's.
pub async fn run_sharded(
    deps: &Deps,
    req: &ShardedRequest,
    request_id: &str,
    concurrency: usize,
) -> Result<BackupReport, FunctionError> {
    let planned = plan_shards(
        deps,
        &ShardedRequest {
            mode: Mode::Shards,
            max_pages: None,
            shard: None,
            shards: None,
            ..req.clone()
        },
    )
    .await?;
    if planned.replay {
        return Ok(planned);
    }
    let list = planned.shards.clone().unwrap_or_default();
    let shard_counts: Vec<Counts> = stream::iter(list.iter().cloned())
        .map(|shard| {
            let step = ShardedRequest {
                mode: Mode::Shard,
                max_shards: None,
                shard: Some(shard),
                shards: None,
                ..req.clone()
            };
            async move {
                let mut total = Counts::default();
                loop {
                    let r = run_shard(deps, &step, request_id, None).await?;
                    total.listed += r.listed;
                    total.copied += r.copied;
                    total.bytes += r.bytes_copied;
                    total.unchanged += r.unchanged;
                    total.recovered += r.recovered;
                    if r.status == RunStatus::Complete {
                        return Ok::<_, FunctionError>(total);
                    }
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut report = finish(
        deps,
        &ShardedRequest {
            mode: Mode::Finish,
            max_shards: None,
            max_pages: None,
            shard: None,
            shards: Some(list.clone()),
            ..req.clone()
        },
        request_id,
    )
    .await?;
    for c in &shard_counts {
        report.add(c);
    }
    report.shards = Some(list);
    Ok(report)
}
