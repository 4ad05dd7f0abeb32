//! Runs from the change feed: instead of listing the whole source, a run reads the keys
//! named by the bucket's change queue since the previous run (one GET each: the event is
//! only a hint, the key's current version decides; an unchanged one is dropped unread),
//! backs up those that changed, and carries every other entry over from the previous
//! manifest.
//!
//! Safety rests on three rules. A queue message is deleted only after the run's manifest
//! and catalog record are written, so a crash loses no change (the message comes back
//! after its visibility timeout, and a key already backed up is then found unchanged).
//! The keys received are saved in the run's checkpoint before any copy, so a resumed
//! invocation still knows them while their messages are hidden. And a full listing is
//! made whenever the feed cannot be trusted to be complete: no previous manifest, the
//! last full listing older than `FULL_LISTING_EVERY_HOURS` (a missed or late event is
//! caught there), more messages waiting than `MAX_CHANGES_PER_RUN`, or a listing of this
//! run already under way. After a full listing, the messages sent before it started are
//! deleted (the listing saw their changes); later ones are left for the next run.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use lifeboat::FunctionError;
use lifeboat::app::RunLog;
use lifeboat_domain::changes::parse_message;
use lifeboat_domain::manifest::{Checkpoint, ListedObject, Listing, Manifest, ManifestEntry};
use lifeboat_ports::changes::{BATCH, FeedMessage};
use lifeboat_ports::{PortError, PortResult};

use super::{
    BackupReport, BackupRequest, Deps, Outcome, Pass, RunId, RunStatus, back_up_one, complete, save_checkpoint,
};

/// How long received messages stay hidden: longer than an invocation can run (15 minutes),
/// so no other invocation takes them while this one works.
const HIDE_FOR: Duration = Duration::from_mins(16);
/// Batch deletes and releases in flight at once.
const BATCHES_IN_FLIGHT: usize = 4;

/// How a run whose request names a change queue finds what changed.
pub(crate) enum Choice {
    /// From the feed; `waiting` messages were in the queue as the run began (unknown
    /// when a resumed invocation carries on).
    Feed { waiting: Option<u64> },
    /// A full listing, for this reason.
    Full(String),
}

/// Whether this run (whose request names a change queue) may work from the change feed,
/// or must list the whole source, and why.
pub(crate) async fn choose(
    deps: &Deps,
    req: &BackupRequest,
    queue: &str,
    previous: Option<&Manifest>,
    cp: &Checkpoint,
) -> Result<Choice, FunctionError> {
    let s = &deps.settings;
    if cp.changes.is_some() {
        return Ok(Choice::Feed { waiting: None });
    }
    if cp.invocations > 1 {
        return Ok(Choice::Full("a full listing of this run is under way".into()));
    }
    if req.full_listing {
        return Ok(Choice::Full("asked for by the request (fullListing)".into()));
    }
    let Some(previous) = previous else {
        return Ok(Choice::Full("no previous manifest to build on".into()));
    };
    let age = deps.clock.now() - previous.full_listing_at();
    if age >= s.full_listing_every {
        return Ok(Choice::Full(format!(
            "the last full listing is {} h old (FULL_LISTING_EVERY_HOURS {})",
            age.num_hours(),
            s.full_listing_every.num_hours()
        )));
    }
    let waiting = deps.changes.backlog(queue).await?;
    if waiting > s.max_changes {
        return Ok(Choice::Full(format!(
            "{waiting} change messages waiting (MAX_CHANGES_PER_RUN {})",
            s.max_changes
        )));
    }
    Ok(Choice::Feed { waiting: Some(waiting) })
}

/// What a drain of the queue found.
#[derive(Default)]
struct Drained {
    /// Keys of this bucket/prefix named by the messages.
    keys: BTreeSet<String>,
    /// Receipts of the messages this run takes care of.
    mine: Vec<String>,
    /// Receipts of messages about other buckets or prefixes, or unreadable.
    others: Vec<String>,
}

pub(crate) struct FeedRun<'a> {
    pub deps: &'a Deps,
    pub id: &'a RunId,
    pub req: &'a BackupRequest,
    pub queue: &'a str,
    pub ckey: &'a str,
    pub careful: bool,
    /// Messages waiting as the run began, when known.
    pub waiting: Option<u64>,
    /// Stop taking new keys after this (the Lambda deadline less a margin).
    pub deadline: Option<DateTime<Utc>>,
    /// Keys whose copy the previous run's verification found damaged: read and copied
    /// again like changed ones.
    pub damaged: &'a BTreeSet<String>,
}

impl FeedRun<'_> {
    /// Receives every waiting message: short polls while batches come full. A short batch
    /// ends the drain once as many messages are in hand as were waiting when the run
    /// began (later ones are the next run's); otherwise a long poll of
    /// `CHANGE_WAIT_SECONDS` confirms the queue is empty (a short poll on SQS samples only
    /// some of its servers). Stops at `MAX_CHANGES_PER_RUN` messages (the rest waits for
    /// the next run).
    async fn drain(&self) -> PortResult<Drained> {
        let s = &self.deps.settings;
        let mut d = Drained::default();
        let mut wait = Duration::ZERO;
        loop {
            if (d.mine.len() + d.others.len()) as u64 >= s.max_changes {
                tracing::warn!(queue = %self.queue, "change queue not drained: MAX_CHANGES_PER_RUN reached, the rest is for the next run");
                break;
            }
            let batch = self.deps.changes.receive(self.queue, HIDE_FOR, wait).await?;
            let n = batch.len();
            for m in batch {
                self.sort(m, &mut d);
            }
            if n >= BATCH {
                wait = Duration::ZERO;
                continue;
            }
            let in_hand = (d.mine.len() + d.others.len()) as u64;
            if self.waiting.is_some_and(|w| in_hand >= w) {
                break;
            }
            if (n == 0 && !wait.is_zero()) || s.change_wait.is_zero() {
                break;
            }
            wait = s.change_wait;
        }
        Ok(d)
    }

    fn sort(&self, m: FeedMessage, d: &mut Drained) {
        let (bucket, prefix) = (self.req.bucket.as_str(), self.req.prefix.as_str());
        match parse_message(&m.body) {
            Ok(changes) => {
                let (ours, theirs): (Vec<_>, Vec<_>) = changes
                    .into_iter()
                    .partition(|c| c.bucket == bucket && c.key.starts_with(prefix));
                if !theirs.is_empty() && ours.is_empty() {
                    tracing::warn!(queue = %self.queue, bucket = %theirs[0].bucket, key = %theirs[0].key,
                        "change event for another bucket or prefix: left in the queue");
                    d.others.push(m.receipt);
                    return;
                }
                d.keys.extend(ours.into_iter().map(|c| c.key));
                d.mine.push(m.receipt);
            }
            Err(e) => {
                tracing::warn!(queue = %self.queue, error = %e, "unreadable change message: left in the queue (its redrive policy moves it aside)");
                d.others.push(m.receipt);
            }
        }
    }

    /// The run: drain, back up the named keys, write the manifest and the catalog record,
    /// then delete the messages.
    pub(crate) async fn run(
        &self,
        previous: &Manifest,
        mut cp: Checkpoint,
        mut log: RunLog,
    ) -> Result<BackupReport, FunctionError> {
        let (deps, id, req) = (self.deps, self.id, self.req);
        let s = &deps.settings;
        let run = id.run.as_str();
        // Only the run's first invocation drains the queue: a resumed one works on the keys
        // saved then (their messages stay hidden a while, and come back later to be found
        // unchanged); anything newer waits for the next run, so no key already backed up
        // by this run can have changed again unseen.
        let (keys, drained) = if let Some(saved) = cp.changes.take() {
            (saved.into_iter().collect::<BTreeSet<String>>(), Drained::default())
        } else {
            let mut d = self.drain().await?;
            let mut keys = std::mem::take(&mut d.keys);
            keys.extend(self.damaged.iter().cloned());
            (keys, d)
        };
        // Before any copy: a crash from here on resumes with these keys.
        cp.changes = Some(keys.iter().cloned().collect());
        save_checkpoint(deps, self.ckey, &cp).await?;
        release(deps, self.queue, &drained.others).await;

        let prev: HashMap<&str, &ManifestEntry> = previous.live().map(|e| (e.key.as_str(), e)).collect();
        // A damaged copy is never found "unchanged": it is read and copied again.
        let readable: HashMap<&str, &ManifestEntry> = prev
            .iter()
            .filter(|(k, _)| !self.damaged.contains(**k))
            .map(|(k, e)| (*k, *e))
            .collect();
        let pass = Pass {
            deps,
            bucket: &req.bucket,
            prefix: &req.prefix,
            run,
            prev: &readable,
            careful: self.careful,
        };
        let pass = &pass;
        let mut report = BackupReport::start(id, RunStatus::Complete);
        report.listing = Listing::Changes;
        // Keys an earlier invocation of this run finished: their entries (tombstones for
        // deleted ones) are in the checkpoint.
        let done: HashSet<String> = cp.entries.iter().map(|e| e.key.clone()).collect();
        let todo: Vec<&String> = keys.iter().filter(|k| !done.contains(*k)).collect();
        let step = usize::try_from(s.page_size).unwrap_or(1000).max(1);
        for (i, chunk) in todo.chunks(step).enumerate() {
            // At least one step per invocation, then stop at the deadline: the next
            // invocation resumes from the checkpoint.
            if i > 0 && self.deadline.is_some_and(|d| deps.clock.now() >= d) {
                save_checkpoint(deps, self.ckey, &cp).await?;
                report.status = RunStatus::InProgress;
                tracing::info!(run = %run, left = todo.len() - i * step, "run from the change queue continues in the next invocation");
                log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
                return Ok(report);
            }
            let now = deps.clock.now();
            // One GET per key: its headers say what the current version is; an unchanged
            // one is dropped unread, a changed one is hashed and copied from that very
            // version.
            let outcomes: Vec<Option<Outcome>> = stream::iter(chunk.iter().copied())
                .map(|key| back_up_key(pass, &req.bucket, key, now))
                .buffered(s.concurrency)
                .try_collect()
                .await?;
            report.listed += chunk.len() as u64;
            for (key, o) in chunk.iter().zip(outcomes) {
                if let Some(entry) = tally(&mut report, &prev, key, o) {
                    cp.entries.push(entry);
                }
            }
        }
        let carried: Vec<ManifestEntry> = prev
            .iter()
            .filter(|(k, _)| !keys.contains(**k))
            .map(|(_, e)| (*e).clone())
            .collect();
        report.unchanged += carried.len() as u64;
        let mut entries = std::mem::take(&mut cp.entries);
        entries.extend(carried);
        (report.healed, report.unrecoverable) = crate::healing(self.damaged, &prev, &entries);
        crate::report_unrecoverable(deps, id, req, &report.unrecoverable, &mut log).await;
        let full_at = previous.full_listing_at();
        let (mref, deleted) = complete(deps, id, &req.bucket, &req.prefix, entries, &prev, Some(full_at)).await?;
        report.deleted = deleted;
        report.changes_received = drained.mine.len() as u64;
        report.changes_left = drained.others.len() as u64;
        // The run is recorded: its messages are done with. A delete that fails only means
        // the message comes back and its key is found unchanged.
        delete(deps, self.queue, &drained.mine).await;
        if let Err(e) = deps.backup.delete(&s.backup_bucket, self.ckey, None).await {
            tracing::warn!(error = %e, key = %self.ckey, "could not delete the finished run's checkpoint");
        }
        log.action(
            "changes",
            run,
            format!("{} keys from {} messages", report.listed, drained.mine.len()),
        );
        log.action("copied", run, report.copied.to_string());
        log.action("manifest", run, format!("{} objects", mref.objects));
        log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
        report.manifest = Some(mref);
        Ok(report)
    }
}

/// After a full listing that started at `listed_from`: deletes the queue's messages sent
/// before it (the listing saw their changes) and leaves the others. Returns (deleted,
/// left). Best effort: a failure only leaves messages for the next run.
pub(crate) async fn settle(
    deps: &Deps,
    queue: &str,
    listed_from: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
) -> (u64, u64) {
    let (mut done, mut left) = (Vec::new(), Vec::new());
    loop {
        if deadline.is_some_and(|d| deps.clock.now() >= d)
            || (done.len() + left.len()) as u64 >= deps.settings.max_changes
        {
            break;
        }
        let batch = match deps.changes.receive(queue, HIDE_FOR, Duration::ZERO).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(queue, error = %e, "could not read the change queue after the full listing");
                break;
            }
        };
        let full = batch.len() >= BATCH;
        for m in batch {
            if m.sent_at.is_some_and(|t| t < listed_from) {
                done.push(m.receipt);
            } else {
                left.push(m.receipt);
            }
        }
        if !full {
            break;
        }
    }
    delete(deps, queue, &done).await;
    release(deps, queue, &left).await;
    (done.len() as u64, left.len() as u64)
}

/// Deletes received messages, in batches; a failure only means they come back and their
/// keys are found unchanged.
async fn delete(deps: &Deps, queue: &str, receipts: &[String]) {
    in_batches(receipts, |chunk| deps.changes.delete(queue, chunk), queue, "delete").await;
}

/// Makes received messages visible again at once; a failure only means they come back
/// after their visibility timeout.
async fn release(deps: &Deps, queue: &str, receipts: &[String]) {
    in_batches(receipts, |chunk| deps.changes.release(queue, chunk), queue, "release").await;
}

async fn in_batches<'a, F, Fut>(receipts: &'a [String], call: F, queue: &str, what: &str)
where
    F: Fn(&'a [String]) -> Fut,
    Fut: std::future::Future<Output = PortResult<()>>,
{
    let failed = stream::iter(receipts.chunks(BATCH))
        .map(call)
        .buffer_unordered(BATCHES_IN_FLIGHT)
        .filter_map(|r| async move { r.err() })
        .collect::<Vec<_>>()
        .await;
    if let Some(e) = failed.first() {
        tracing::warn!(queue, error = %e, batches = failed.len(), "could not {what} change messages");
    }
}

/// Backs up `key` as the source has it now: one GET, whose headers say what the current
/// version is; an unchanged one is dropped unread, a changed one is hashed and copied from
/// that very version. `None`: the key is gone from the source.
async fn back_up_key(
    pass: &Pass<'_>,
    bucket: &str,
    key: &String,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, PortError> {
    let body = match pass.deps.source.get(bucket, key, None, None).await {
        Ok(b) => b,
        Err(PortError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let etag = body
        .etag
        .clone()
        .ok_or_else(|| PortError::Invalid(format!("{key}: the store announced no ETag")))?;
    let listed = ListedObject {
        key: key.clone(),
        version_id: body.version_id.clone(),
        size: body.size,
        etag,
        storage_class: body.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
        last_modified: body.last_modified,
    };
    back_up_one(pass, listed, Some(body), now).await.map(Some)
}

/// Counts one key's outcome in the report and returns its manifest entry: a tombstone for
/// a key gone from the source that the previous run had, nothing for one it did not.
fn tally(
    report: &mut BackupReport,
    prev: &HashMap<&str, &ManifestEntry>,
    key: &str,
    outcome: Option<Outcome>,
) -> Option<ManifestEntry> {
    match outcome {
        None => prev.get(key).map(|p| ManifestEntry {
            deleted: true,
            ..(*p).clone()
        }),
        Some(Outcome::Unchanged(e)) => {
            report.unchanged += 1;
            Some(e)
        }
        Some(Outcome::Copied(e)) => {
            report.copied += 1;
            report.bytes_copied += e.size;
            Some(e)
        }
        Some(Outcome::Recovered(e)) => {
            report.recovered += 1;
            Some(e)
        }
    }
}
