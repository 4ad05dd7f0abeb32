//! DynamoDB native on-demand backups.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{PortResult, SnapshotStatus};

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
