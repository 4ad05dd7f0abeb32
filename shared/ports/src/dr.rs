//! What a DR execution talks to, by role, and where DR plans, executions and the active
//! site are kept ([`DrStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{PortResult, Tag};
use lifeboat_domain::dr::execution::DrExecution;
use lifeboat_domain::dr::plan::{DbPlacement, RestoreSettings};
use lifeboat_domain::dr::plan::{DrPlan, DrPlanProblems};
use lifeboat_domain::{Region, ResourceKind};

use lifeboat_domain::dr::table_digest::TableContent;
use lifeboat_domain::restore_test::Facts;

/// A DB instance or cluster as RDS describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbInfo {
    pub kind: ResourceKind,
    pub id: String,
    pub arn: Option<String>,
    pub status: String,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    /// Instances only.
    pub class: Option<String>,
    pub endpoint: Option<String>,
    pub tags: Vec<Tag>,
    pub latest_restorable: Option<DateTime<Utc>>,
    pub backup_retention_days: Option<i32>,
    /// Its DB subnet group, VPC security groups, parameter groups and option group.
    pub placement: DbPlacement,
    /// Allocated storage, GiB.
    pub storage_gb: Option<i32>,
    pub encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
}

impl DbInfo {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    /// What a restore test compares with the snapshot (Lifeboat's own tags left out).
    pub fn facts(&self) -> Facts {
        Facts {
            engine: self.engine.clone(),
            engine_version: self.engine_version.clone(),
            storage_gb: self.storage_gb,
            encrypted: self.encrypted,
            kms_key_id: self.kms_key_id.clone(),
            tags: user_tags(&self.tags),
        }
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }
}

/// Tags as `(key, value)`, Lifeboat's own (`lifeboat:`) and AWS's (`aws:`) left out.
pub fn user_tags(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .filter(|t| !t.key.starts_with("lifeboat:") && !t.key.starts_with("aws:"))
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

/// One RDS quota: (name, used, max).
pub type Quota = (String, i64, i64);

/// How a database is deleted, so that no caller can forget what must survive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode<'a> {
    /// A drill's throwaway copy that never served traffic: no final snapshot, and its
    /// automated backups go with it.
    Throwaway,
    /// Anything that may hold data of its own: RDS takes the final snapshot
    /// `final_snapshot` as part of the delete, and the automated backups are kept
    /// (`DeleteAutomatedBackups=false`).
    KeepData { final_snapshot: &'a str },
}

/// A restore request: everything RDS needs, in the domain's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest<'a> {
    pub region: &'a Region,
    pub kind: ResourceKind,
    pub target: &'a str,
    /// Instances only (default: the snapshot's).
    pub class: Option<&'a str>,
    /// Subnet group, security groups, parameter and option groups (never publicly
    /// accessible: the adapter always sets `PubliclyAccessible=false`).
    pub settings: &'a RestoreSettings,
    pub tags: &'a [Tag],
}

/// The writer instance of a restored Aurora cluster: a cluster restored from a snapshot
/// has no instance, and so no endpoint anyone can connect to, until one is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterRequest<'a> {
    pub region: &'a Region,
    pub cluster: &'a str,
    pub instance: &'a str,
    pub class: &'a str,
    /// The cluster's engine (`aurora-postgresql`, `aurora-mysql`).
    pub engine: &'a str,
    pub parameter_group: Option<&'a str>,
    pub tags: &'a [Tag],
}

#[async_trait]
pub trait DrDatabases: Send + Sync + std::fmt::Debug {
    /// `None` when it does not exist.
    async fn describe(&self, region: &Region, kind: ResourceKind, id: &str) -> PortResult<Option<DbInfo>>;
    /// Restores a DB instance or cluster from a snapshot held in `req.region`.
    async fn restore_from_snapshot(&self, req: &RestoreRequest<'_>, snapshot: &str) -> PortResult<()>;
    /// RDS point-in-time restore of instance `source` (same region) to `time`.
    async fn restore_to_time(&self, req: &RestoreRequest<'_>, source: &str, time: DateTime<Utc>) -> PortResult<()>;
    /// Creates the writer instance of an Aurora cluster (never publicly accessible). An
    /// instance of that identifier existing already is fine (a retried step).
    async fn create_cluster_instance(&self, req: &WriterRequest<'_>) -> PortResult<()>;
    async fn promote_replica(&self, region: &Region, id: &str) -> PortResult<()>;
    /// Fails the global database over to the member cluster `target_cluster_arn`, allowing
    /// data loss: the outage path, when the primary region is impaired.
    async fn failover_global_cluster(&self, region: &Region, global: &str, target_cluster_arn: &str) -> PortResult<()>;
    /// Switches the global database over to `target_cluster_arn` without data loss: the
    /// planned path, which needs a healthy primary.
    async fn switchover_global_cluster(
        &self,
        region: &Region,
        global: &str,
        target_cluster_arn: &str,
    ) -> PortResult<()>;
    /// Deletes the instance or cluster as `mode` says (with a final snapshot and keeping
    /// its automated backups, or as a throwaway); a missing resource, or one already being
    /// deleted, is fine. Callers check ownership first (a fresh describe).
    async fn delete(&self, region: &Region, kind: ResourceKind, id: &str, mode: DeleteMode<'_>) -> PortResult<()>;
    async fn subnet_group_exists(&self, region: &Region, name: &str) -> PortResult<bool>;
    /// What the DB snapshot (`RdsInstance`) or cluster snapshot (`AuroraCluster`) `name`
    /// in `region` records of its database; `None` when there is no such snapshot.
    async fn snapshot_facts(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<Option<Facts>>;
    async fn quotas(&self, region: &Region) -> PortResult<Vec<Quota>>;
}

/// The endpoint switch: SSM parameters.
#[async_trait]
pub trait Parameters: Send + Sync + std::fmt::Debug {
    async fn get(&self, region: &Region, name: &str) -> PortResult<Option<String>>;
    async fn put(&self, region: &Region, name: &str, value: &str) -> PortResult<()>;
    /// A missing parameter is fine.
    async fn delete(&self, region: &Region, name: &str) -> PortResult<()>;
}

/// The DNS side of the endpoint switch: CNAME records in a hosted zone.
#[async_trait]
pub trait DnsRecords: Send + Sync + std::fmt::Debug {
    /// The value of the CNAME `name` in `zone`, if there is one.
    async fn cname(&self, zone: &str, name: &str) -> PortResult<Option<String>>;
    /// Creates or replaces the CNAME `name` → `value` (UPSERT).
    async fn upsert_cname(&self, zone: &str, name: &str, value: &str, ttl: i64) -> PortResult<()>;
    /// Deletes the CNAME `name` if it has `value`; a missing record is fine.
    async fn delete_cname(&self, zone: &str, name: &str, value: &str, ttl: i64) -> PortResult<()>;
}

/// Where execution reports go (an S3 bucket).
#[async_trait]
pub trait Reports: Send + Sync + std::fmt::Debug {
    /// Writes `body` (JSON) under `key`; returns the location (`s3://bucket/key`).
    async fn put(&self, key: &str, body: &[u8]) -> PortResult<String>;
}

/// A DynamoDB table as DescribeTable reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    pub name: String,
    pub arn: Option<String>,
    /// `CREATING`, `ACTIVE`, `DELETING`, …
    pub status: String,
    /// (attribute, `HASH` or `RANGE`), in the table's order.
    pub key_schema: Vec<(String, String)>,
    /// Names of the global secondary indexes, sorted.
    pub indexes: Vec<String>,
    /// The backup it was restored from (`RestoreSummary.SourceBackupArn`), if any.
    pub restored_from: Option<String>,
    pub restore_in_progress: bool,
}

impl TableInfo {
    /// Active and no restore still filling it.
    pub fn is_ready(&self) -> bool {
        self.status == "ACTIVE" && !self.restore_in_progress
    }
}

/// A native backup as DescribeBackup reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    pub backup_arn: String,
    /// `CREATING`, `AVAILABLE`, `DELETED`.
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    /// `SourceTableDetails.ItemCount`: the source table's item count as DynamoDB last
    /// refreshed it (about every 6 hours on AWS), so approximate.
    pub item_count: Option<u64>,
    pub key_schema: Vec<(String, String)>,
}

/// An `ImportTable` as DescribeImport reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportInfo {
    pub import_arn: String,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`, `CANCELLING`, `CANCELLED`.
    pub status: String,
    /// The table the import creates.
    pub table_name: Option<String>,
    pub imported_items: Option<u64>,
    pub failure: Option<String>,
}

/// DynamoDB tables for DR: restore from a native backup or import a table's copy (an
/// export in the region's export bucket), describe, scan to a checksum, delete.
#[async_trait]
pub trait DrTables: Send + Sync + std::fmt::Debug {
    /// `None` when the table does not exist.
    async fn describe_table(&self, region: &Region, name: &str) -> PortResult<Option<TableInfo>>;
    /// `None` when the backup does not exist (or was deleted).
    async fn describe_backup(&self, region: &Region, backup_arn: &str) -> PortResult<Option<BackupInfo>>;
    /// Starts restoring `backup_arn` into the new table `target` (same region). A target
    /// that exists already is `AlreadyExists`.
    async fn restore_from_backup(&self, region: &Region, backup_arn: &str, target: &str) -> PortResult<()>;
    /// Scans the whole table (strongly consistent, page by page) into its item count and
    /// content checksum.
    async fn scan_content(&self, region: &Region, name: &str) -> PortResult<TableContent>;
    /// Deletes the table; a missing table is fine. A table still being created or
    /// restored cannot be deleted yet (`Throttled`: try again later).
    async fn delete_table(&self, region: &Region, name: &str) -> PortResult<()>;
    /// A native backup of `table` named `name`: the existing one of that name, else a new
    /// one (a retried step makes no second backup).
    async fn create_backup(&self, region: &Region, table: &str, name: &str) -> PortResult<BackupInfo>;
    /// Starts importing the table copy `copy` (held in `region`'s export bucket) into the
    /// new table `target` of `region`, with the source table's recorded key schema and
    /// indexes: nothing of the source region is needed. The same start made again is the
    /// same import; a `target` that exists already (not from that import) is
    /// `AlreadyExists`. Returns the import's ARN.
    async fn import_copy(&self, region: &Region, copy: &str, target: &str) -> PortResult<String>;
    /// `None` when there is no such import.
    async fn describe_import(&self, region: &Region, import_arn: &str) -> PortResult<Option<ImportInfo>>;
}

/// Which side serves production, and what the last failover created there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub active: ActiveSide,
    pub since: DateTime<Utc>,
    /// The execution that made this side active.
    pub execution: String,
    /// The databases serving on this side: (plan database id, kind, region, identifier).
    pub databases: Vec<SiteDb>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActiveSide {
    Source,
    Dr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDb {
    pub db: String,
    pub kind: ResourceKind,
    pub region: Region,
    pub id: String,
    /// A table's: the backup it was restored from or the import that made it (ARN), what
    /// proves it Lifeboat's when a failback tears it down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_from: Option<String>,
}

#[async_trait]
pub trait DrStore: Send + Sync + std::fmt::Debug {
    async fn put_plan(&self, plan: &DrPlan) -> PortResult<()>;
    /// The document stored under `name`, as stored (valid or not).
    async fn plan_document(&self, name: &str) -> PortResult<Option<String>>;
    /// Stores `plan` only if the stored document is still `expected` (`None`: only if none
    /// is stored); `Conflict` otherwise. The check and the write are one atomic step.
    async fn replace_plan(&self, plan: &DrPlan, expected: Option<&str>) -> PortResult<()>;
    /// The stored plan, or the problems that make it unusable.
    async fn get_plan(&self, name: &str) -> PortResult<Option<Result<DrPlan, DrPlanProblems>>>;
    /// The names of every stored plan, sorted.
    async fn plan_names(&self) -> PortResult<Vec<String>>;
    async fn get_execution(&self, plan: &str, execution: &str) -> PortResult<Option<DrExecution>>;
    /// Stores a new execution; `Conflict` if one with that name exists.
    async fn insert_execution(&self, exec: &DrExecution) -> PortResult<()>;
    /// Stores `exec` if the stored version is `expected_version` (`Conflict` otherwise).
    async fn update_execution(&self, exec: &DrExecution, expected_version: u64) -> PortResult<()>;
    async fn executions(&self, plan: &str) -> PortResult<Vec<DrExecution>>;
    async fn site(&self, plan: &str) -> PortResult<Option<Site>>;
    async fn put_site(&self, plan: &str, site: &Site) -> PortResult<()>;
}
