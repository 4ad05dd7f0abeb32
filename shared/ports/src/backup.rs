//! AWS Backup jobs and vaults.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::PortResult;

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
    /// The backup's size once the job completed (`BackupSizeInBytes`).
    pub size_bytes: Option<u64>,
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
