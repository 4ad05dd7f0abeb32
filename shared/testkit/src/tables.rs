//! DynamoDB native on-demand backups in memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::Utc;
use lifeboat_ports::{PortError, PortResult, SnapshotStatus, TableBackup, TableBackups};

use crate::{FAKE_ACCOUNT, lock};

/// Operations of [`InMemoryTableBackups`], for scripting failures and counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableBackupOp {
    Create,
    Describe,
    List,
    Delete,
}

/// DynamoDB on-demand backups of one region's tables. Same contract as
/// `DynamoDbTableBackups`: creating a backup whose name the table already has returns the
/// existing backup; a missing table is `NotFound`; deleting a missing backup is `Ok`;
/// deleting a backup still being created is refused like DynamoDB's
/// `BackupInUseException` (`Throttled`).
#[derive(Debug)]
pub struct InMemoryTableBackups {
    region: String,
    tables: Mutex<BTreeMap<String, String>>,
    backups: Mutex<BTreeMap<String, TableBackup>>,
    next_id: AtomicUsize,
    new_status: Mutex<Option<SnapshotStatus>>,
    failures: Mutex<VecDeque<(TableBackupOp, PortError)>>,
    calls: Mutex<HashMap<TableBackupOp, usize>>,
}

impl Default for InMemoryTableBackups {
    fn default() -> Self {
        Self::in_region("us-east-1")
    }
}

impl InMemoryTableBackups {
    /// Backups in us-east-1.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn in_region(region: &str) -> Self {
        Self {
            region: region.to_owned(),
            tables: Mutex::default(),
            backups: Mutex::default(),
            next_id: AtomicUsize::new(0),
            new_status: Mutex::default(),
            failures: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    /// Adds a table that can be backed up; returns its ARN.
    pub fn add_table(&self, table_name: &str) -> String {
        let arn = format!("arn:aws:dynamodb:{}:{FAKE_ACCOUNT}:table/{table_name}", self.region);
        lock(&self.tables).insert(table_name.to_owned(), arn.clone());
        arn
    }

    /// Stores a backup as given, e.g. a duplicate left by a race, or a foreign one.
    pub fn insert(&self, backup: TableBackup) {
        lock(&self.backups).insert(backup.backup_arn.clone(), backup);
    }

    /// The next call of `op` fails with `error` (queued in order).
    pub fn fail_next(&self, op: TableBackupOp, error: PortError) {
        lock(&self.failures).push_back((op, error));
    }

    /// Status given to backups created from now on (default: available).
    pub fn set_new_status(&self, status: SnapshotStatus) {
        *lock(&self.new_status) = Some(status);
    }

    pub fn set_status(&self, backup_arn: &str, status: SnapshotStatus) {
        if let Some(b) = lock(&self.backups).get_mut(backup_arn) {
            b.status = status;
        }
    }

    pub fn backups(&self) -> Vec<TableBackup> {
        lock(&self.backups).values().cloned().collect()
    }

    pub fn calls(&self, op: TableBackupOp) -> usize {
        lock(&self.calls).get(&op).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> usize {
        lock(&self.calls).values().sum()
    }

    fn enter(&self, op: TableBackupOp) -> PortResult<()> {
        *lock(&self.calls).entry(op).or_insert(0) += 1;
        let mut failures = lock(&self.failures);
        if let Some(i) = failures.iter().position(|(o, _)| *o == op)
            && let Some((_, e)) = failures.remove(i)
        {
            return Err(e);
        }
        Ok(())
    }
}

fn table_backup_deleted(status: &SnapshotStatus) -> bool {
    matches!(status, SnapshotStatus::Other(s) if s == "deleted")
}

#[async_trait]
impl TableBackups for InMemoryTableBackups {
    async fn create_backup(&self, table_name: &str, backup_name: &str) -> PortResult<TableBackup> {
        self.enter(TableBackupOp::Create)?;
        let table_arn = lock(&self.tables)
            .get(table_name)
            .cloned()
            .ok_or_else(|| PortError::NotFound(format!("table {table_name}")))?;
        let mut backups = lock(&self.backups);
        if let Some(existing) = backups
            .values()
            .filter(|b| b.table_arn == table_arn && b.name == backup_name && !table_backup_deleted(&b.status))
            .min_by(|a, b| (a.created_at, &a.backup_arn).cmp(&(b.created_at, &b.backup_arn)))
        {
            return Ok(existing.clone());
        }
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let backup = TableBackup {
            backup_arn: format!("{table_arn}/backup/{n:017}-{:08x}", n * 7919),
            table_arn,
            name: backup_name.to_owned(),
            status: lock(&self.new_status).clone().unwrap_or(SnapshotStatus::Available),
            created_at: Some(Utc::now()),
            size_bytes: None,
        };
        backups.insert(backup.backup_arn.clone(), backup.clone());
        Ok(backup)
    }

    async fn describe_backup(&self, backup_arn: &str) -> PortResult<Option<TableBackup>> {
        self.enter(TableBackupOp::Describe)?;
        Ok(lock(&self.backups).get(backup_arn).cloned())
    }

    async fn list_backups(&self, table_name: &str, prefix: &str) -> PortResult<Vec<TableBackup>> {
        self.enter(TableBackupOp::List)?;
        let Some(table_arn) = lock(&self.tables).get(table_name).cloned() else {
            return Ok(Vec::new());
        };
        Ok(lock(&self.backups)
            .values()
            .filter(|b| b.table_arn == table_arn && b.name.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn delete_backup(&self, backup_arn: &str) -> PortResult<()> {
        self.enter(TableBackupOp::Delete)?;
        let mut backups = lock(&self.backups);
        match backups.get(backup_arn) {
            Some(b) if b.status == SnapshotStatus::Creating => Err(PortError::Throttled(format!(
                "backup {backup_arn} is being created (BackupInUseException)"
            ))),
            Some(_) => {
                backups.remove(backup_arn);
                Ok(())
            }
            None => Ok(()),
        }
    }
}
