//! The catalog: recovery points, policies, runs, leases and alert markers.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeboat_domain::{Alert, Policy, PolicyProblems, RecoveryPoint, RecoveryPointId, Region, Status};
use serde::{Deserialize, Serialize};

use crate::PortResult;

/// One record of a function run: what it did, for the audit of unattended work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub function: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub summary: BTreeMap<String, u64>,
    /// One line per action: `(subject, outcome)`.
    pub actions: Vec<(String, String)>,
}

/// A replaced version of a policy, as it was stored before the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// When it was replaced.
    pub replaced_at: DateTime<Utc>,
    /// Who replaced it (the admin API's caller).
    pub replaced_by: String,
    /// The document as it was stored.
    pub document: String,
}

/// The catalog of recovery points, policies, runs, leases and alert markers.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Every stored policy, each parsed and validated on its own. A broken one's problems
    /// are named by the key it is stored under ([`Policy::from_stored`]), never by what its
    /// document says.
    async fn policies(&self) -> PortResult<Vec<Result<Policy, PolicyProblems>>>;
    async fn put_policy(&self, policy: &Policy) -> PortResult<()>;
    /// The document stored under `name`, as stored (valid or not).
    async fn policy_document(&self, name: &str) -> PortResult<Option<String>>;
    /// Stores `policy` only if the stored document is still `expected` (`None`: only if
    /// none is stored); `Conflict` otherwise. The check and the write are one atomic step.
    async fn replace_policy(&self, policy: &Policy, expected: Option<&str>) -> PortResult<()>;
    /// Keeps a policy's replaced version: `document`, replaced at `at` by `by`.
    async fn keep_policy_version(&self, name: &str, version: &PolicyVersion) -> PortResult<()>;
    /// A policy's replaced versions, newest first (at most `limit`).
    async fn policy_versions(&self, name: &str, limit: usize) -> PortResult<Vec<PolicyVersion>>;

    async fn get(&self, id: &RecoveryPointId) -> PortResult<Option<RecoveryPoint>>;
    /// Batch read; missing ids are simply absent from the result.
    async fn get_many(&self, ids: &[RecoveryPointId]) -> PortResult<Vec<RecoveryPoint>>;
    /// Creates a record; `Conflict` when the id is already recorded.
    async fn insert(&self, rp: &RecoveryPoint) -> PortResult<()>;
    /// Writes `rp` if the stored version is still `expected_version`; else `Conflict`.
    async fn update(&self, rp: &RecoveryPoint, expected_version: u64) -> PortResult<()>;
    /// All recovery points in `status` (paged internally).
    async fn by_status(&self, status: Status) -> PortResult<Vec<RecoveryPoint>>;
    /// The newest `limit` recovery points of a resource, newest first, all locations.
    async fn by_resource(&self, resource_arn: &str, limit: usize) -> PortResult<Vec<RecoveryPoint>>;
    /// Every recovery point in `location` created at or after `since`, oldest first, all
    /// resources (paged internally): one time-ordered read of a region instead of a read
    /// per resource.
    async fn created_since(&self, location: &Region, since: DateTime<Utc>) -> PortResult<Vec<RecoveryPoint>>;

    /// Takes the named lease for `holder` until `until`, if free or expired.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool>;
    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()>;

    /// Claims a one-time marker (alert dedupe). True if this caller claimed it: the key
    /// was never claimed, or an earlier claim was never confirmed and is older than
    /// `stale_before` (its sender crashed).
    async fn claim_marker(&self, key: &str, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> PortResult<bool>;
    /// Confirms a claimed marker (the alert was sent).
    async fn confirm_marker(&self, key: &str) -> PortResult<()>;
    /// Drops an unconfirmed claim so a later run can try again.
    async fn release_marker(&self, key: &str) -> PortResult<()>;

    /// Appends a run record (batch write).
    async fn record_run(&self, run: &RunRecord) -> PortResult<()>;

    /// Appends an alert that was sent at `sent_at` to the alert log (kept 35 days).
    async fn log_alert(&self, alert: &Alert, sent_at: DateTime<Utc>) -> PortResult<()>;
    /// Alerts sent from `since` to `until`, newest first, at most `limit`, with when each
    /// was sent.
    async fn recent_alerts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<(DateTime<Utc>, Alert)>>;
}
