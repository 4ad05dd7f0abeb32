//! What backup-objects is asked, and the run a request names.

use chrono::{DateTime, Utc};
use lifeboat::FunctionError;
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::manifest::{run_name, sha256_hex};
use lifeboat_domain::s3::{check_bucket, check_prefix, s3_resource};
use lifeboat_domain::{PolicyName, RecoveryPointId, ResourceKind, ResourceRef, Slot};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

use crate::{Deps, ShardedRequest};

/// One shard to back up: `{"bucket": "photos", "prefix": "2026/", "policy": "gold",
/// "scheduledTime": "2026-11-23T18:00:00Z"}`; `maxPages` caps the pages of one invocation;
/// `requestId` makes it an on-demand request with a run of its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupRequest {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    pub policy: String,
    pub scheduled_time: DateTime<Utc>,
    /// An on-demand request's own id (1 to [`MAX_REQUEST_ID`] printable ASCII characters):
    /// the run is named by it as well as by the minute, so a distinct request in the same
    /// minute is a new run and the same request retried is the same run.
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub max_pages: Option<u32>,
    /// The SQS queue that receives this bucket/prefix's S3 change events: runs then read
    /// only the keys it names and carry the rest over from the previous manifest, with
    /// a full listing every `FULL_LISTING_EVERY_HOURS`.
    #[serde(default)]
    pub change_queue: Option<String>,
    /// List the whole source this time, even with a change queue.
    #[serde(default)]
    pub full_listing: bool,
}

impl BackupRequest {
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        if !event.is_object() {
            return Err(FunctionError::invalid("expected a backup request object"));
        }
        let req: Self = serde_json::from_value(event.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed backup request: {e}")))?;
        check_bucket(&req.bucket).map_err(FunctionError::invalid)?;
        check_prefix(&req.prefix).map_err(FunctionError::invalid)?;
        PolicyName::parse(&req.policy).map_err(|e| FunctionError::invalid(e.to_string()))?;
        if req.max_pages == Some(0) {
            return Err(FunctionError::invalid("maxPages must be at least 1"));
        }
        if let Some(id) = &req.request_id {
            check_request_id(id)?;
        }
        if let Some(q) = &req.change_queue {
            lifeboat_ports::changes::check_queue_url(q).map_err(FunctionError::invalid)?;
        }
        Ok(req)
    }
}

/// The longest `requestId` accepted.
pub const MAX_REQUEST_ID: usize = 128;

fn check_request_id(id: &str) -> Result<(), FunctionError> {
    if id.is_empty() || id.len() > MAX_REQUEST_ID || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FunctionError::invalid(format!(
            "requestId must be 1 to {MAX_REQUEST_ID} printable ASCII characters without spaces, not {id:.40?}"
        )));
    }
    Ok(())
}

/// What an invocation is asked: a whole run (no `mode`), or one step of a sharded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Whole(BackupRequest),
    Sharded(ShardedRequest),
}

impl Request {
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        if event.get("mode").is_some() {
            ShardedRequest::parse(event).map(Self::Sharded)
        } else {
            BackupRequest::parse(event).map(Self::Whole)
        }
    }
}

/// The run a request names: deterministic from bucket, prefix, policy, slot and (for an
/// on-demand request) its `requestId`, so that every invocation of a run (single or
/// sharded) agrees on it.
pub(crate) struct RunId {
    pub(crate) policy: PolicyName,
    pub(crate) slot: Slot,
    pub(crate) run: String,
    pub(crate) rp_id: RecoveryPointId,
    pub(crate) resource: ResourceRef,
}

pub(crate) fn run_id(
    s: &S3Settings,
    bucket: &str,
    prefix: &str,
    policy: &str,
    at: DateTime<Utc>,
) -> Result<RunId, FunctionError> {
    on_demand_run_id(s, bucket, prefix, policy, at, None)
}

/// [`run_id`], for an on-demand request when `request_id` is given: the minute's slot
/// followed by `-od-` and the first 12 hex digits of the id's SHA-256.
pub(crate) fn on_demand_run_id(
    s: &S3Settings,
    bucket: &str,
    prefix: &str,
    policy: &str,
    at: DateTime<Utc>,
    request_id: Option<&str>,
) -> Result<RunId, FunctionError> {
    let policy = PolicyName::parse(policy).map_err(|e| FunctionError::invalid(e.to_string()))?;
    let slot = Slot::containing(at, Duration::from_mins(1));
    let when = match request_id {
        Some(id) => format!("{}-od-{}", slot.compact(), &sha256_hex(id.as_bytes())[..12]),
        None => slot.compact(),
    };
    let run = run_name(policy.as_str(), bucket, prefix, &when);
    let rp_id = RecoveryPointId::new(&s.backup_region, ResourceKind::S3Prefix, &run);
    let resource = s3_resource(&s.source_region, bucket, prefix);
    Ok(RunId {
        policy,
        slot,
        run,
        rp_id,
        resource,
    })
}

/// The recovery point a request's run records (whether or not it has run).
pub fn run_id_of(deps: &Deps, req: &BackupRequest) -> Result<RecoveryPointId, FunctionError> {
    on_demand_run_id(
        &deps.settings,
        &req.bucket,
        &req.prefix,
        &req.policy,
        req.scheduled_time,
        req.request_id.as_deref(),
    )
    .map(|id| id.rp_id)
}

/// Who found a run already complete.
#[derive(Clone, Copy)]
pub(crate) enum Asker<'a> {
    /// An on-demand request, by its id.
    Request(&'a str),
    /// A whole run's scheduled request (no `requestId`).
    Scheduled,
    /// A step of a sharded run.
    Step,
}

/// What a request that found its run already complete is told.
pub(crate) fn already_complete(run: &str, at: DateTime<Utc>, asker: Asker<'_>) -> String {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match asker {
        Asker::Request(id) => {
            format!("run {run} of request {id:?} was already complete (recorded {at}): nothing was done again")
        }
        Asker::Scheduled => format!(
            "run {run} of this minute was already complete (recorded {at}): nothing was done; \
             a request with a requestId of its own gets a run of its own"
        ),
        Asker::Step => format!("run {run} was already complete (recorded {at}): nothing was done"),
    }
}
