//! What the admin API keeps besides the catalog's own records: the append-only audit trail,
//! restore requests, approval requests, and the RDS operations a restore needs. Ports here, DynamoDB and RDS
//! adapters in `lifeboat_aws::admin`, in-memory fakes in `lifeboat_testkit::admin`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::PortResult;
use lifeboat_domain::Region;
use lifeboat_domain::approval::ApprovalRequest;
pub use lifeboat_domain::dr::plan::RestoreSettings;
use lifeboat_domain::restore::RdsStatus;
use lifeboat_domain::restore::RestoreRecord;

/// One line of the audit trail. Written with a conditional put and never changed.
///
/// A mutating request writes two: `phase = "requested"` before anything is done (a request
/// whose audit record cannot be written is refused), and `phase = "answered"` with the
/// HTTP status before the answer leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub request_id: String,
    pub phase: String,
    pub at: DateTime<Utc>,
    /// The caller's IAM principal (ARN).
    pub principal: String,
    /// The role the principal had: viewer, operator or admin.
    pub role: String,
    pub method: String,
    /// The route pattern, e.g. `/restores/{id}/confirm`.
    pub route: String,
    /// The concrete path, e.g. `/restores/7c0e.../confirm`.
    pub path: String,
    /// SHA-256 (hex) of the request body; the body itself is never stored.
    pub body_sha256: String,
    /// HTTP status of the answer (absent in the `requested` record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Short outcome: `ok`, or the problem's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

impl AuditRecord {
    /// The sort key: time first (millisecond precision), then request id and phase.
    pub fn sort_key(&self) -> String {
        format!(
            "{}#{}#{}",
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.request_id,
            self.phase
        )
    }
}

/// A page of audit records, newest first, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// The sort key of the last record returned, when more may follow.
    pub next_after: Option<String>,
}

/// The append-only audit trail. There is no update and no delete.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends a record; `Conflict` when a record with the same key already exists.
    async fn append(&self, record: &AuditRecord) -> PortResult<()>;
    /// Up to `limit` records, newest first, strictly older than the sort key `after`.
    async fn page(&self, limit: usize, after: Option<&str>) -> PortResult<AuditPage>;
}

/// Restore requests, each changed only by a conditional write on its version.
#[async_trait]
pub trait RestoreStore: Send + Sync {
    /// `Conflict` when the id exists.
    async fn insert(&self, restore: &RestoreRecord) -> PortResult<()>;
    async fn get(&self, id: &str) -> PortResult<Option<RestoreRecord>>;
    /// Writes `restore` if the stored version is still `expected_version`; else `Conflict`.
    async fn update(&self, restore: &RestoreRecord, expected_version: u64) -> PortResult<()>;
}

/// Requests waiting for a second person's approval, each changed only by a conditional
/// write on its version.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// `Conflict` when the id exists.
    async fn insert(&self, request: &ApprovalRequest) -> PortResult<()>;
    async fn get(&self, id: &str) -> PortResult<Option<ApprovalRequest>>;
    /// Writes `request` if the stored version is still `expected_version`; else `Conflict`.
    async fn update(&self, request: &ApprovalRequest, expected_version: u64) -> PortResult<()>;
    /// Up to `limit` requests, newest first.
    async fn recent(&self, limit: usize) -> PortResult<Vec<ApprovalRequest>>;
}

/// The RDS calls a restore makes. There is no delete without a final snapshot.
#[async_trait]
pub trait DbRestorer: Send + Sync {
    /// Starts RestoreDBInstanceFromDBSnapshot of `snapshot` into a new instance `target`,
    /// placed and configured by `settings`, never publicly accessible. `AlreadyExists`
    /// when an instance with that identifier exists.
    async fn restore_instance(
        &self,
        region: &Region,
        snapshot: &str,
        target: &str,
        settings: &RestoreSettings,
    ) -> PortResult<()>;
    /// The instance's placement and groups as RDS describes it (its DB subnet group, VPC
    /// security groups, first parameter group and option group); `None` when it does not
    /// exist.
    async fn placement(&self, region: &Region, instance: &str) -> PortResult<Option<RestoreSettings>>;
    /// Starts RestoreDBClusterFromSnapshot of the cluster snapshot `snapshot` into a new
    /// cluster `target` (its engine read from the snapshot), placed by `settings`.
    /// `AlreadyExists` when a cluster with that identifier exists.
    async fn restore_cluster(
        &self,
        region: &Region,
        snapshot: &str,
        target: &str,
        settings: &RestoreSettings,
    ) -> PortResult<()>;
    /// Creates the writer instance `instance` of class `class` in the restored cluster
    /// `cluster` (never publicly accessible). An existing instance of that name is fine.
    async fn create_writer(&self, region: &Region, cluster: &str, instance: &str, class: &str) -> PortResult<()>;
    /// The cluster's status, `None` when it does not exist.
    async fn cluster_status(&self, region: &Region, cluster: &str) -> PortResult<Option<RdsStatus>>;
    /// The cluster's placement as RDS describes it (DB subnet group, VPC security groups,
    /// cluster parameter group) and the class of its writer, if it has one; `None` when
    /// the cluster does not exist.
    async fn cluster_placement(
        &self,
        region: &Region,
        cluster: &str,
    ) -> PortResult<Option<(RestoreSettings, Option<String>)>>;
    /// The snapshot's status, `None` when it does not exist.
    async fn snapshot_status(&self, region: &Region, name: &str) -> PortResult<Option<RdsStatus>>;
    /// The instance's status, `None` when it does not exist.
    async fn instance_status(&self, region: &Region, instance: &str) -> PortResult<Option<RdsStatus>>;
    /// Renames `from` to `to` (ModifyDBInstance NewDBInstanceIdentifier, ApplyImmediately).
    /// The instance keeps its data and automated backups; the old identifier is free only
    /// once the rename is applied. `AlreadyExists` when `to` is taken, `NotFound` when
    /// `from` is gone, `InvalidState` when the instance cannot be modified now.
    async fn rename_instance(&self, region: &Region, from: &str, to: &str) -> PortResult<()>;
    /// Deletes the instance with the final snapshot `final_snapshot` and
    /// DeleteAutomatedBackups=false: its data and its point-in-time history remain.
    async fn delete_instance_keeping_data(
        &self,
        region: &Region,
        instance: &str,
        final_snapshot: &str,
    ) -> PortResult<()>;
}
