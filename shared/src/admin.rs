//! What the admin API keeps besides the catalog's own records: the append-only audit trail,
//! restore requests, and the RDS operations a restore needs. Ports here, DynamoDB and RDS
//! adapters in [`crate::aws::admin`], in-memory fakes in [`fake`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{RecoveryPointId, Region};
use crate::ports::PortResult;

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

/// Where a restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreState {
    /// Previewed, a token issued; nothing done yet.
    Previewed,
    /// Overwrite: the pre-restore snapshot of the target is being taken.
    PreRestoreSnapshot,
    /// RDS is restoring the recovery point.
    Restoring,
    /// Rolled back to the pre-restore snapshot.
    RolledBack,
    Failed,
}

/// One restore request, from preview to completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecord {
    pub id: String,
    pub recovery_point: RecoveryPointId,
    /// Region of the recovery point, where the restore runs.
    pub region: Region,
    pub snapshot_name: String,
    /// The DB instance identifier the restore creates (or replaces, when `overwrite`).
    pub target: String,
    pub overwrite: bool,
    /// The principal who asked for the preview (the only one who may confirm it).
    pub requested_by: String,
    /// The digest the confirmation token is bound to.
    pub request_digest: String,
    pub state: RestoreState,
    /// Overwrite only: the snapshot of the target taken before it is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_restore_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub estimated_minutes: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped by every change.
    pub version: u64,
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

/// The state of a DB instance or snapshot as RDS reports it (`available`, `creating`, ...).
pub type RdsStatus = String;

/// The RDS calls a restore makes.
#[async_trait]
pub trait DbRestorer: Send + Sync {
    /// Starts RestoreDBInstanceFromDBSnapshot of `snapshot` into a new instance `target`.
    /// `AlreadyExists` when an instance with that identifier exists.
    async fn restore_instance(&self, region: &Region, snapshot: &str, target: &str) -> PortResult<()>;
    /// Starts a manual snapshot `name` of instance `instance`; `AlreadyExists` if taken.
    async fn snapshot_instance(&self, region: &Region, instance: &str, name: &str) -> PortResult<()>;
    /// The snapshot's status, `None` when it does not exist.
    async fn snapshot_status(&self, region: &Region, name: &str) -> PortResult<Option<RdsStatus>>;
    /// The instance's status, `None` when it does not exist.
    async fn instance_status(&self, region: &Region, instance: &str) -> PortResult<Option<RdsStatus>>;
    /// Deletes the instance without a final snapshot (the caller took one). Idempotent.
    async fn delete_instance(&self, region: &Region, instance: &str) -> PortResult<()>;
}

/// In-memory fakes of the admin ports, with the adapters' contracts.
#[cfg(any(test, feature = "test-util"))]
pub mod fake {
    use std::collections::{BTreeMap, HashMap, VecDeque};
    use std::sync::{Mutex, MutexGuard};

    use async_trait::async_trait;

    use super::{AuditLog, AuditPage, AuditRecord, DbRestorer, RdsStatus, RestoreRecord, RestoreStore};
    use crate::domain::Region;
    use crate::ports::{PortError, PortResult};

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[derive(Debug, Default)]
    pub struct InMemoryAuditLog {
        records: Mutex<BTreeMap<String, AuditRecord>>,
        failures: Mutex<VecDeque<PortError>>,
    }

    impl InMemoryAuditLog {
        pub fn records(&self) -> Vec<AuditRecord> {
            lock(&self.records).values().cloned().collect()
        }

        /// The next call fails with `error`.
        pub fn fail_next(&self, error: PortError) {
            lock(&self.failures).push_back(error);
        }

        fn failure(&self) -> PortResult<()> {
            lock(&self.failures).pop_front().map_or(Ok(()), Err)
        }
    }

    #[async_trait]
    impl AuditLog for InMemoryAuditLog {
        async fn append(&self, record: &AuditRecord) -> PortResult<()> {
            self.failure()?;
            let mut records = lock(&self.records);
            let key = record.sort_key();
            if records.contains_key(&key) {
                return Err(PortError::Conflict(format!("audit record {key} exists")));
            }
            records.insert(key, record.clone());
            Ok(())
        }

        async fn page(&self, limit: usize, after: Option<&str>) -> PortResult<AuditPage> {
            self.failure()?;
            let records = lock(&self.records);
            let mut page: Vec<(String, AuditRecord)> = records
                .iter()
                .rev()
                .filter(|(k, _)| after.is_none_or(|a| k.as_str() < a))
                .take(limit + 1)
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect();
            let more = page.len() > limit;
            page.truncate(limit);
            Ok(AuditPage {
                next_after: if more {
                    page.last().map(|(k, _)| k.clone())
                } else {
                    None
                },
                records: page.into_iter().map(|(_, r)| r).collect(),
            })
        }
    }

    #[derive(Debug, Default)]
    pub struct InMemoryRestoreStore {
        restores: Mutex<HashMap<String, RestoreRecord>>,
    }

    impl InMemoryRestoreStore {
        pub fn all(&self) -> Vec<RestoreRecord> {
            lock(&self.restores).values().cloned().collect()
        }
    }

    #[async_trait]
    impl RestoreStore for InMemoryRestoreStore {
        async fn insert(&self, restore: &RestoreRecord) -> PortResult<()> {
            let mut all = lock(&self.restores);
            if all.contains_key(&restore.id) {
                return Err(PortError::Conflict(format!("restore {} exists", restore.id)));
            }
            all.insert(restore.id.clone(), restore.clone());
            Ok(())
        }

        async fn get(&self, id: &str) -> PortResult<Option<RestoreRecord>> {
            Ok(lock(&self.restores).get(id).cloned())
        }

        async fn update(&self, restore: &RestoreRecord, expected_version: u64) -> PortResult<()> {
            let mut all = lock(&self.restores);
            match all.get(&restore.id) {
                Some(r) if r.version == expected_version => {
                    all.insert(restore.id.clone(), restore.clone());
                    Ok(())
                }
                _ => Err(PortError::Conflict(format!(
                    "restore {} changed since version {expected_version}",
                    restore.id
                ))),
            }
        }
    }

    /// RDS instances and snapshots by (region, identifier). New snapshots get
    /// `new_snapshot_status` (default `available`), like moto.
    #[derive(Debug, Default)]
    pub struct InMemoryDbRestorer {
        state: Mutex<RestorerState>,
    }

    #[derive(Debug, Default)]
    struct RestorerState {
        instances: BTreeMap<(Region, String), RdsStatus>,
        snapshots: BTreeMap<(Region, String), RdsStatus>,
        new_snapshot_status: Option<RdsStatus>,
        /// Which snapshot each instance was restored from.
        restored_from: BTreeMap<(Region, String), String>,
        calls: Vec<String>,
    }

    impl InMemoryDbRestorer {
        pub fn add_instance(&self, region: &Region, id: &str) {
            lock(&self.state)
                .instances
                .insert((region.clone(), id.to_owned()), "available".into());
        }

        pub fn add_snapshot(&self, region: &Region, name: &str) {
            lock(&self.state)
                .snapshots
                .insert((region.clone(), name.to_owned()), "available".into());
        }

        pub fn set_new_snapshot_status(&self, status: &str) {
            lock(&self.state).new_snapshot_status = Some(status.to_owned());
        }

        pub fn set_snapshot_status(&self, region: &Region, name: &str, status: &str) {
            lock(&self.state)
                .snapshots
                .insert((region.clone(), name.to_owned()), status.to_owned());
        }

        pub fn instances(&self) -> Vec<String> {
            lock(&self.state).instances.keys().map(|(_, id)| id.clone()).collect()
        }

        pub fn restored_from(&self, region: &Region, instance: &str) -> Option<String> {
            lock(&self.state)
                .restored_from
                .get(&(region.clone(), instance.to_owned()))
                .cloned()
        }

        /// Every mutating call, in order: `restore:<snap>-><target>`, `snapshot:...`, `delete:...`.
        pub fn calls(&self) -> Vec<String> {
            lock(&self.state).calls.clone()
        }
    }

    #[async_trait]
    impl DbRestorer for InMemoryDbRestorer {
        async fn restore_instance(&self, region: &Region, snapshot: &str, target: &str) -> PortResult<()> {
            let mut s = lock(&self.state);
            s.calls.push(format!("restore:{snapshot}->{target}"));
            if !s.snapshots.contains_key(&(region.clone(), snapshot.to_owned())) {
                return Err(PortError::NotFound(format!("snapshot {snapshot}")));
            }
            let key = (region.clone(), target.to_owned());
            if s.instances.contains_key(&key) {
                return Err(PortError::AlreadyExists(format!("instance {target}")));
            }
            s.instances.insert(key.clone(), "creating".into());
            s.restored_from.insert(key, snapshot.to_owned());
            Ok(())
        }

        async fn snapshot_instance(&self, region: &Region, instance: &str, name: &str) -> PortResult<()> {
            let mut s = lock(&self.state);
            s.calls.push(format!("snapshot:{instance}->{name}"));
            if !s.instances.contains_key(&(region.clone(), instance.to_owned())) {
                return Err(PortError::NotFound(format!("instance {instance}")));
            }
            let key = (region.clone(), name.to_owned());
            if s.snapshots.contains_key(&key) {
                return Err(PortError::AlreadyExists(format!("snapshot {name}")));
            }
            let status = s.new_snapshot_status.clone().unwrap_or_else(|| "available".into());
            s.snapshots.insert(key, status);
            Ok(())
        }

        async fn snapshot_status(&self, region: &Region, name: &str) -> PortResult<Option<RdsStatus>> {
            Ok(lock(&self.state)
                .snapshots
                .get(&(region.clone(), name.to_owned()))
                .cloned())
        }

        async fn instance_status(&self, region: &Region, instance: &str) -> PortResult<Option<RdsStatus>> {
            Ok(lock(&self.state)
                .instances
                .get(&(region.clone(), instance.to_owned()))
                .cloned())
        }

        async fn delete_instance(&self, region: &Region, instance: &str) -> PortResult<()> {
            let mut s = lock(&self.state);
            s.calls.push(format!("delete:{instance}"));
            let key = (region.clone(), instance.to_owned());
            s.instances.remove(&key);
            s.restored_from.remove(&key);
            Ok(())
        }
    }
}
