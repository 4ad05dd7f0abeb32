//! Narrow interfaces by role. Adapters in [`lifeboat_aws`] implement them against AWS; the
//! fakes in `memory` (feature `test-util`) implement them in memory for tests.

use std::collections::BTreeMap;
use std::fmt;

pub mod admin;
pub mod changes;
pub mod config;
pub mod dr;
pub mod keys;
pub mod lambda;
pub mod objects;
pub mod vault;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use lifeboat_domain::{
    Alert, Policy, PolicyProblems, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Status,
};

/// What can go wrong behind a port, in the domain's words. Adapters map SDK errors here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// A conditional write lost: someone else changed or created the item first.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Throttled even after the SDK's retries.
    #[error("throttled: {0}")]
    Throttled(String),
    /// A service quota or limit refused the request.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The KMS key cannot be used (missing, disabled, wrong region, no grant).
    #[error("KMS key unusable: {0}")]
    KmsKey(String),
    /// The resource is in a state that does not allow the operation.
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The request itself was rejected as invalid.
    #[error("rejected as invalid: {0}")]
    Invalid(String),
    /// Network, timeout or 5xx after retries.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

impl PortError {
    /// Worth retrying later without any change of configuration.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Unavailable(_))
    }

    /// A stable short code for catalog records and alerts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Conflict(_) => "conflict",
            Self::AlreadyExists(_) => "already-exists",
            Self::NotFound(_) => "not-found",
            Self::Throttled(_) => "throttled",
            Self::QuotaExceeded(_) => "quota",
            Self::KmsKey(_) => "kms-key",
            Self::InvalidState(_) => "invalid-state",
            Self::Invalid(_) => "invalid",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Looks a tag up by key.
pub fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

/// A resource found in AWS with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredResource {
    pub resource: ResourceRef,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    Creating,
    Available,
    Failed,
    /// Anything else AWS reports (e.g. `copying`, `deleting`), kept verbatim.
    Other(String),
}

impl SnapshotStatus {
    pub fn from_aws(s: &str) -> Self {
        match s {
            "creating" | "pending" | "copying" => Self::Creating,
            "available" => Self::Available,
            "failed" | "error" | "incompatible-restore" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The catalog state of a recovery point whose snapshot AWS reports in this state.
    pub fn recovery_status(&self) -> Status {
        match self {
            Self::Available => Status::Available,
            Self::Failed => Status::Failed,
            Self::Creating | Self::Other(_) => Status::Pending,
        }
    }
}

/// A snapshot as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub kind: ResourceKind,
    pub region: Region,
    pub name: String,
    pub arn: Option<String>,
    pub status: SnapshotStatus,
    pub created_at: Option<DateTime<Utc>>,
    pub kms_key_id: Option<String>,
    pub tags: Vec<Tag>,
}

/// Snapshots of protected resources, in any region: RDS DB instance and Aurora cluster
/// snapshots, DynamoDB table backups ([`lifeboat::routing::RoutedSnapshots`] sends each kind to
/// its adapter).
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Every resource of the kinds this store handles in `region`, with its tags (for RDS:
    /// every DB instance that is not an Aurora member, and every DB cluster). Which of them
    /// a policy protects is decided by [`lifeboat::app::discover`].
    async fn resources(&self, region: &Region) -> PortResult<Vec<DiscoveredResource>>;
    /// Starts a manual snapshot named `name`. `AlreadyExists` when that name is taken.
    async fn create_snapshot(&self, resource: &ResourceRef, name: &str, tags: &[Tag]) -> PortResult<Snapshot>;
    /// The snapshot called `name` in `region`, if any.
    async fn describe_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<Option<Snapshot>>;
    /// Shares a snapshot with another account (RDS: the `restore` attribute). Idempotent:
    /// sharing again with the same account is `Ok`.
    async fn share_snapshot(&self, region: &Region, kind: ResourceKind, name: &str, account: &str) -> PortResult<()>;
    /// Manual snapshots of `resource` (in its own region) that Lifeboat created.
    async fn lifeboat_snapshots(&self, resource: &ResourceRef) -> PortResult<Vec<Snapshot>>;
    /// Starts a copy of `source` into `destination`, encrypted with `kms_key_id`.
    async fn copy_snapshot(
        &self,
        source: &Snapshot,
        destination: &Region,
        name: &str,
        kms_key_id: &str,
        tags: &[Tag],
    ) -> PortResult<Snapshot>;
    /// Deletes the manual snapshot called `name` in `region`. Idempotent: a snapshot that
    /// is already gone is `Ok`. `InvalidState` when AWS refuses (e.g. still being created,
    /// or in use by a copy or an export).
    async fn delete_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<()>;
}

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

/// The catalog of recovery points, policies, runs, leases and alert markers.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Every stored policy, each parsed and validated on its own.
    async fn policies(&self) -> PortResult<Vec<Result<Policy, PolicyProblems>>>;
    async fn put_policy(&self, policy: &Policy) -> PortResult<()>;

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

/// Publishes alerts.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, alert: &Alert) -> PortResult<()>;
}

/// The current time; injected so tests can move it.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

// --- Table backups and AWS Backup ---

/// A DynamoDB on-demand backup as DynamoDB reports it. Its ARN is its identity: DynamoDB
/// does not keep names unique (two backups of one table may share a name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableBackup {
    pub table_arn: String,
    pub backup_arn: String,
    pub name: String,
    /// `CREATING` → `Creating`, `AVAILABLE` → `Available`, `DELETED` → `Other("deleted")`.
    pub status: SnapshotStatus,
    pub created_at: Option<DateTime<Utc>>,
    pub size_bytes: Option<u64>,
}

/// DynamoDB native on-demand backups of the tables of one region.
#[async_trait]
pub trait TableBackups: Send + Sync {
    /// Starts an on-demand backup of `table_name` called `backup_name`, unless a backup of
    /// that table with exactly that name already exists (and is not deleted): then that
    /// one is returned and nothing is created. `NotFound` when the table does not exist.
    async fn create_backup(&self, table_name: &str, backup_name: &str) -> PortResult<TableBackup>;
    /// The backup with this ARN, if any.
    async fn describe_backup(&self, backup_arn: &str) -> PortResult<Option<TableBackup>>;
    /// Backups of one table whose name starts with `prefix` (Lifeboat names them `lb-...`), all pages.
    async fn list_backups(&self, table_name: &str, prefix: &str) -> PortResult<Vec<TableBackup>>;
    /// Deletes a backup. Idempotent: a backup that is already gone is `Ok`.
    async fn delete_backup(&self, backup_arn: &str) -> PortResult<()>;
}

/// The state of an AWS Backup job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupJobState {
    Created,
    Pending,
    Running,
    Completed,
    Aborted,
    Failed,
    Expired,
    /// Anything else AWS reports (e.g. `ABORTING`, `PARTIAL`), kept verbatim.
    Other(String),
}

impl BackupJobState {
    pub fn from_aws(s: &str) -> Self {
        match s {
            "CREATED" => Self::Created,
            "PENDING" => Self::Pending,
            "RUNNING" => Self::Running,
            "COMPLETED" => Self::Completed,
            "ABORTED" => Self::Aborted,
            "FAILED" => Self::Failed,
            "EXPIRED" => Self::Expired,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The job will not change state any more (`PARTIAL` is final too: some child jobs
    /// of a composite job failed).
    pub fn is_final(&self) -> bool {
        match self {
            Self::Completed | Self::Aborted | Self::Failed | Self::Expired => true,
            Self::Other(s) => s == "PARTIAL",
            Self::Created | Self::Pending | Self::Running => false,
        }
    }
}

/// An AWS Backup job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupJob {
    pub job_id: String,
    pub resource_arn: String,
    pub state: BackupJobState,
    pub recovery_point_arn: Option<String>,
    /// Why a job failed or was aborted, as AWS Backup words it.
    pub status_message: Option<String>,
}

/// A recovery point stored in an AWS Backup vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRecoveryPoint {
    pub recovery_point_arn: String,
    pub resource_arn: String,
    /// AWS Backup's resource type, verbatim (`RDS`, `Aurora`, `DynamoDB`, `S3`, ...).
    pub resource_type: String,
    /// AWS Backup's status, verbatim (`COMPLETED`, `PARTIAL`, `DELETING`, `EXPIRED`, ...).
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// When the vault's lifecycle deletes it (computed by AWS Backup), if ever.
    pub delete_at: Option<DateTime<Utc>>,
    pub encryption_key_arn: Option<String>,
    pub is_encrypted: bool,
}

/// The Vault Lock state of a backup vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultLock {
    /// Vault Lock protects the vault's recovery points from deletion and from lifecycle
    /// changes outside the retention bounds (governance mode, or compliance mode in or
    /// after its grace time).
    pub locked: bool,
    pub min_retention_days: Option<i64>,
    pub max_retention_days: Option<i64>,
    /// When a compliance-mode lock became (or becomes) immutable; absent in governance mode.
    pub lock_date: Option<DateTime<Utc>>,
}

/// AWS Backup jobs and vaults, in one region.
#[async_trait]
pub trait BackupService: Send + Sync {
    /// Starts an on-demand backup job of `resource_arn` into `vault`, run as `iam_role_arn`.
    /// Idempotent: `idempotency_token` is passed as StartBackupJob's IdempotencyToken
    /// (Lifeboat derives it from resource+policy+slot). `delete_after_days` becomes the
    /// recovery point's lifecycle.
    async fn start_backup_job(
        &self,
        vault: &str,
        resource_arn: &str,
        iam_role_arn: &str,
        idempotency_token: &str,
        delete_after_days: Option<i64>,
    ) -> PortResult<BackupJob>;
    /// The job, if AWS Backup knows it.
    async fn describe_backup_job(&self, job_id: &str) -> PortResult<Option<BackupJob>>;
    /// All recovery points in a vault (all pages), optionally only those of one resource.
    async fn recovery_points(&self, vault: &str, resource_arn: Option<&str>) -> PortResult<Vec<VaultRecoveryPoint>>;
    /// Vault lock state (DescribeBackupVault: Locked, MinRetentionDays, MaxRetentionDays, LockDate).
    /// `NotFound` when the vault does not exist.
    async fn vault_lock(&self, vault: &str) -> PortResult<VaultLock>;
    /// Deletes a recovery point from a vault. Idempotent: one already gone is `Ok`;
    /// `InvalidState` when Vault Lock (or a running job) forbids it.
    async fn delete_recovery_point(&self, vault: &str, recovery_point_arn: &str) -> PortResult<()>;
}

// --- Snapshot exports to S3 ---

/// The state of an RDS export task, as StartExportTask/DescribeExportTasks report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportTaskState {
    Starting,
    InProgress,
    Complete,
    Canceling,
    Canceled,
    Failed,
    /// Anything else AWS reports, kept verbatim.
    Other(String),
}

impl ExportTaskState {
    /// AWS spells these in capitals (`IN_PROGRESS`); some emulators in lower case.
    pub fn from_aws(s: &str) -> Self {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "STARTING" => Self::Starting,
            "IN_PROGRESS" => Self::InProgress,
            "COMPLETE" | "COMPLETED" => Self::Complete,
            "CANCELING" | "CANCELLING" => Self::Canceling,
            "CANCELED" | "CANCELLED" => Self::Canceled,
            "FAILED" => Self::Failed,
            _ => Self::Other(s.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Starting => "STARTING",
            Self::InProgress => "IN_PROGRESS",
            Self::Complete => "COMPLETE",
            Self::Canceling => "CANCELING",
            Self::Canceled => "CANCELED",
            Self::Failed => "FAILED",
            Self::Other(s) => s,
        }
    }
}

/// An export task as RDS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTask {
    pub task_id: String,
    pub source_arn: String,
    pub bucket: String,
    pub prefix: String,
    pub state: ExportTaskState,
    pub percent_progress: Option<i32>,
    /// Why it failed, in RDS's words.
    pub failure_cause: Option<String>,
    pub warning: Option<String>,
}

/// What StartExportTask is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    /// ExportTaskIdentifier: deterministic, so a replay finds the task it started.
    pub task_id: String,
    /// The snapshot (or cluster snapshot) ARN, in the region of the bucket.
    pub source_arn: String,
    pub bucket: String,
    pub prefix: String,
    pub role_arn: String,
    pub kms_key_id: String,
}

/// RDS snapshot exports to S3, in one region (the backup bucket's).
#[async_trait]
pub trait SnapshotExporter: Send + Sync {
    /// Starts the export. `AlreadyExists` when a task with this identifier exists (started
    /// earlier: look it up and adopt it); `InvalidState` when the snapshot cannot be
    /// exported now; `KmsKey` when the key is unusable.
    async fn start_export(&self, request: &ExportRequest) -> PortResult<ExportTask>;
    /// The task, if RDS knows it.
    async fn describe_export(&self, task_id: &str) -> PortResult<Option<ExportTask>>;
}
