//! What the admin API keeps besides the catalog's own records: the append-only audit trail,
//! restore requests, and the RDS operations a restore needs. Ports here, DynamoDB and RDS
//! adapters in [`crate::aws::admin`], in-memory fakes in [`fake`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{RecoveryPointId, Region};
pub use crate::dr::plan::RestoreSettings;
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

/// Where a restore stands. A restore over an existing instance never deletes it: the
/// original is renamed aside (`preserved_as`), the recovery point restored under the
/// original identifier, and the original kept until the operator finishes the restore
/// (then deleted with a final snapshot, its automated backups kept) or rolls it back (the
/// restored instance renamed aside, the original renamed back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreState {
    /// Previewed, a token issued; nothing done yet.
    Previewed,
    /// Overwrite: the target is being renamed to `preserved_as`; the restore starts once
    /// its identifier is free.
    PreservingOriginal,
    /// RDS is restoring the recovery point.
    Restoring,
    /// The restored instance is available. Overwrite: the original is still kept under
    /// `preserved_as` until the restore is finished or rolled back.
    Restored,
    /// Overwrite, finishing: the kept original is being deleted with a final snapshot.
    Finishing,
    /// Done; for an overwrite, the original's final snapshot is `final_snapshot`.
    Finished,
    /// Rolling back: the restored instance is renamed to `set_aside_as`, then the original
    /// back to its identifier.
    RollingBack,
    /// The original is back under its identifier; the restored instance (if any) is kept
    /// under `set_aside_as`.
    RolledBack,
    /// A rollback step failed (`failure` says which); nothing was deleted and the rollback
    /// can be asked for again.
    RollbackFailed,
    /// The restore could not go on (`failure` says why); nothing was deleted. An overwrite
    /// can be rolled back from here.
    Failed,
}

impl RestoreState {
    /// Nothing more happens to the restore.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Finished | Self::RolledBack)
    }
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
    /// Overwrite only: the identifier the original instance is kept under
    /// (`<target>-lbpre-<short restore id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserved_as: Option<String>,
    /// Rollback only: the identifier the restored instance is kept under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_aside_as: Option<String>,
    /// Finish only: the final snapshot of the original, taken as it is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Where the restored instance goes and with which groups: the subnet group, VPC
    /// security groups, parameter and option groups (never publicly accessible).
    #[serde(default)]
    pub settings: RestoreSettings,
    /// An Aurora cluster restore (into a new cluster): the writer instance the restored
    /// cluster gets, which it needs to serve. `None` for a DB instance restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<WriterSpec>,
    pub estimated_minutes: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped by every change.
    pub version: u64,
}

/// The writer instance of an Aurora cluster restored through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterSpec {
    /// `<cluster>-w1`.
    pub instance: String,
    /// The DB instance class: the request's, else as recorded with the snapshot, else
    /// the source writer's.
    pub class: String,
}

impl RestoreRecord {
    /// The restore makes an Aurora cluster (and its writer), not a DB instance.
    pub fn is_cluster(&self) -> bool {
        self.writer.is_some()
    }
}

/// The short form of a restore id used in identifiers: its first 8 characters.
pub fn short_id(restore_id: &str) -> &str {
    restore_id.get(..8).unwrap_or(restore_id)
}

/// `<target>-lbpre-<short id>`: where an overwrite keeps the original. RDS identifiers
/// are at most 63 characters: a long target is cut (and a trailing hyphen dropped) to fit.
pub fn preserved_name(target: &str, restore_id: &str) -> String {
    suffixed(target, "lbpre", restore_id)
}

/// `<target>-lbrb-<short id>`: where a rollback keeps the restored instance.
pub fn set_aside_name(target: &str, restore_id: &str) -> String {
    suffixed(target, "lbrb", restore_id)
}

fn suffixed(target: &str, tag: &str, restore_id: &str) -> String {
    let suffix = format!("-{tag}-{}", short_id(restore_id));
    let room = 63usize.saturating_sub(suffix.len());
    let base: String = target.chars().take(room).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// What RDS shows under the three identifiers an overwrite touches (`None`: absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwapObserved {
    pub target: Option<RdsStatus>,
    pub preserved: Option<RdsStatus>,
    pub set_aside: Option<RdsStatus>,
    /// An Aurora cluster restore: its writer instance.
    pub writer: Option<RdsStatus>,
}

/// The one next step of a restore, decided from its state and what RDS shows. Every step
/// re-checks its preconditions here, so a replayed request does nothing twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreStep {
    /// Nothing to do now; why (and what is awaited).
    Wait(String),
    /// ModifyDBInstance `from` → `to` (ApplyImmediately).
    Rename { from: String, to: String },
    /// Restore the recovery point under the target identifier.
    Restore,
    /// An Aurora cluster restore: create the restored cluster's writer instance.
    CreateWriter,
    /// Delete the kept original with a final snapshot, keeping its automated backups.
    DeletePreserved,
    /// Record the new state; nothing to call.
    Become(RestoreState),
}

fn show(status: Option<&RdsStatus>) -> &str {
    status.map_or("absent", String::as_str)
}

/// Decides the next step of `r` given what RDS shows. Pure: no I/O.
pub fn next_restore_step(r: &RestoreRecord, seen: &SwapObserved) -> RestoreStep {
    let target = &r.target;
    let preserved = r.preserved_as.clone().unwrap_or_default();
    let (t, p) = (seen.target.as_ref(), seen.preserved.as_ref());
    match r.state {
        RestoreState::Previewed => RestoreStep::Wait("not confirmed yet".into()),
        RestoreState::PreservingOriginal => match (t, p) {
            (None, Some(_)) => RestoreStep::Restore,
            (Some(s), None) if s == "available" => RestoreStep::Rename {
                from: target.clone(),
                to: preserved,
            },
            _ => RestoreStep::Wait(format!(
                "renaming {target} ({}) to {preserved} ({}); the restore starts once {target} is free",
                show(t),
                show(p)
            )),
        },
        RestoreState::Restoring => match (t, &r.writer) {
            (None, _) => RestoreStep::Restore,
            (Some(s), None) if s == "available" => RestoreStep::Become(RestoreState::Restored),
            // A restored Aurora cluster serves only through an instance: its writer.
            (Some(s), Some(writer)) if s == "available" => match seen.writer.as_ref() {
                None => RestoreStep::CreateWriter,
                Some(ws) if ws == "available" => RestoreStep::Become(RestoreState::Restored),
                Some(ws) => RestoreStep::Wait(format!("{target} is available; its writer {} is {ws}", writer.instance)),
            },
            (Some(s), _) => RestoreStep::Wait(format!("{target} is {s}")),
        },
        RestoreState::Restored => RestoreStep::Wait(if r.overwrite {
            format!("restored; the original is kept as {preserved}: finish or roll back")
        } else {
            "restored".into()
        }),
        RestoreState::Finishing => match p {
            None => RestoreStep::Become(RestoreState::Finished),
            Some(s) if s == "deleting" => RestoreStep::Become(RestoreState::Finished),
            Some(s) if s == "available" => RestoreStep::DeletePreserved,
            Some(s) => RestoreStep::Wait(format!("{preserved} is {s}; it is deleted once available")),
        },
        RestoreState::RollingBack => {
            let aside = r.set_aside_as.clone().unwrap_or_else(|| set_aside_name(target, &r.id));
            match (t, p) {
                // The restored instance still holds the name: move it aside first.
                (Some(s), Some(_)) if s == "available" => RestoreStep::Rename {
                    from: target.clone(),
                    to: aside,
                },
                (Some(s), Some(_)) => {
                    RestoreStep::Wait(format!("{target} is {s}; it is renamed to {aside} once available"))
                }
                (None, Some(s)) if s == "available" => RestoreStep::Rename {
                    from: preserved,
                    to: target.clone(),
                },
                (Some(s), None) if s == "available" => RestoreStep::Become(RestoreState::RolledBack),
                _ => RestoreStep::Wait(format!(
                    "renaming: {target} is {}, {preserved} is {}, {aside} is {}",
                    show(t),
                    show(p),
                    show(seen.set_aside.as_ref())
                )),
            }
        }
        RestoreState::RollbackFailed => RestoreStep::Wait(format!(
            "the rollback failed ({}); ask for the rollback again, or act on {target} and {preserved} by hand",
            r.failure.as_deref().unwrap_or("no detail")
        )),
        RestoreState::Failed => RestoreStep::Wait(format!(
            "failed ({}); nothing was deleted{}",
            r.failure.as_deref().unwrap_or("no detail"),
            if r.overwrite {
                "; roll back to put the original back"
            } else {
                ""
            }
        )),
        RestoreState::Finished | RestoreState::RolledBack => RestoreStep::Wait("done".into()),
    }
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

/// In-memory fakes of the admin ports, with the adapters' contracts.
#[cfg(any(test, feature = "test-util"))]
pub mod fake {
    use std::collections::{BTreeMap, HashMap, VecDeque};
    use std::sync::{Mutex, MutexGuard};

    use async_trait::async_trait;

    use super::{
        AuditLog, AuditPage, AuditRecord, DbRestorer, RdsStatus, RestoreRecord, RestoreSettings, RestoreStore,
    };
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

    /// RDS instances and snapshots by (region, identifier), with AWS's timing: a restore
    /// stays `creating`, a rename keeps the old identifier (`renaming`) and a delete keeps
    /// it (`deleting`) until [`InMemoryDbRestorer::settle`].
    #[derive(Debug, Default)]
    pub struct InMemoryDbRestorer {
        state: Mutex<RestorerState>,
    }

    #[derive(Debug, Clone)]
    struct FakeInstance {
        status: RdsStatus,
        /// What the instance's data came from: `original` or the snapshot it was restored from.
        data: String,
        renaming_to: Option<String>,
        settings: RestoreSettings,
    }

    /// Where [`InMemoryDbRestorer::add_instance`] places an instance: a private subnet
    /// group and one security group, as a production database is.
    pub fn test_placement() -> RestoreSettings {
        RestoreSettings {
            subnet_group: Some("private-db".into()),
            security_groups: vec!["sg-0123456789abcdef0".into()],
            parameter_group: Some("orders-pg16".into()),
            cluster_parameter_group: None,
            option_group: None,
        }
    }

    #[derive(Debug, Clone)]
    struct FakeCluster {
        status: RdsStatus,
        data: String,
        settings: RestoreSettings,
        writer_class: Option<String>,
    }

    #[derive(Debug, Default)]
    struct RestorerState {
        instances: BTreeMap<(Region, String), FakeInstance>,
        clusters: BTreeMap<(Region, String), FakeCluster>,
        /// Writer instances created: (cluster, instance, class).
        writers: Vec<(String, String, String)>,
        snapshots: BTreeMap<(Region, String), (RdsStatus, String)>,
        /// The next calls of each operation fail with these errors.
        failures: HashMap<&'static str, VecDeque<PortError>>,
        calls: Vec<String>,
    }

    impl RestorerState {
        fn fail(&mut self, op: &'static str) -> PortResult<()> {
            self.failures
                .get_mut(op)
                .and_then(VecDeque::pop_front)
                .map_or(Ok(()), Err)
        }
    }

    impl InMemoryDbRestorer {
        /// An available instance holding its `original` data, with automated backups.
        pub fn add_instance(&self, region: &Region, id: &str) {
            self.add_instance_with(region, id, test_placement());
        }

        /// An available instance placed and configured by `settings`.
        pub fn add_instance_with(&self, region: &Region, id: &str, settings: RestoreSettings) {
            lock(&self.state).instances.insert(
                (region.clone(), id.to_owned()),
                FakeInstance {
                    status: "available".into(),
                    data: format!("original:{id}"),
                    renaming_to: None,
                    settings,
                },
            );
        }

        /// An available Aurora cluster placed by `settings`, whose writer has `writer_class`.
        pub fn add_cluster(&self, region: &Region, id: &str, settings: RestoreSettings, writer_class: Option<&str>) {
            lock(&self.state).clusters.insert(
                (region.clone(), id.to_owned()),
                FakeCluster {
                    status: "available".into(),
                    data: format!("original:{id}"),
                    settings,
                    writer_class: writer_class.map(str::to_owned),
                },
            );
        }

        /// The cluster a restore made: the snapshot it holds and its placement.
        pub fn cluster(&self, region: &Region, id: &str) -> Option<(String, RestoreSettings)> {
            lock(&self.state)
                .clusters
                .get(&(region.clone(), id.to_owned()))
                .map(|c| (c.data.clone(), c.settings.clone()))
        }

        /// The writer instances created: (cluster, instance, class).
        pub fn writers(&self) -> Vec<(String, String, String)> {
            lock(&self.state).writers.clone()
        }

        /// The placement and groups the instance has (a restored one: those it was
        /// restored with).
        pub fn settings_of(&self, region: &Region, instance: &str) -> Option<RestoreSettings> {
            lock(&self.state)
                .instances
                .get(&(region.clone(), instance.to_owned()))
                .map(|i| i.settings.clone())
        }

        pub fn add_snapshot(&self, region: &Region, name: &str) {
            lock(&self.state)
                .snapshots
                .insert((region.clone(), name.to_owned()), ("available".into(), String::new()));
        }

        /// The next call of `operation` (`rename`, `restore`, `delete`) fails with `error`.
        pub fn fail_next(&self, operation: &'static str, error: PortError) {
            lock(&self.state)
                .failures
                .entry(operation)
                .or_default()
                .push_back(error);
        }

        /// Everything in progress completes: restores become available, renames and
        /// deletes are applied (the old identifier is free).
        pub fn settle(&self) {
            let mut s = lock(&self.state);
            for c in s.clusters.values_mut() {
                if c.status == "creating" {
                    c.status = "available".into();
                }
            }
            let keys: Vec<_> = s.instances.keys().cloned().collect();
            for key in keys {
                let Some(mut i) = s.instances.remove(&key) else {
                    continue;
                };
                if i.status == "deleting" {
                    continue;
                }
                if let Some(to) = i.renaming_to.take() {
                    i.status = "available".into();
                    s.instances.insert((key.0.clone(), to), i);
                    continue;
                }
                if i.status == "creating" {
                    i.status = "available".into();
                }
                s.instances.insert(key, i);
            }
        }

        pub fn instances(&self) -> Vec<String> {
            lock(&self.state).instances.keys().map(|(_, id)| id.clone()).collect()
        }

        /// What the instance's data is: `original:<id>` for an instance added by the test,
        /// else the snapshot it was restored from.
        pub fn data_of(&self, region: &Region, instance: &str) -> Option<String> {
            lock(&self.state)
                .instances
                .get(&(region.clone(), instance.to_owned()))
                .map(|i| i.data.clone())
        }

        /// Which snapshot each instance was restored from.
        pub fn restored_from(&self, region: &Region, instance: &str) -> Option<String> {
            self.data_of(region, instance).filter(|d| !d.starts_with("original:"))
        }

        /// The data each snapshot holds.
        pub fn snapshot_data(&self, region: &Region, name: &str) -> Option<String> {
            lock(&self.state)
                .snapshots
                .get(&(region.clone(), name.to_owned()))
                .map(|(_, d)| d.clone())
        }

        /// Every mutating call, in order: `restore:<snap>-><target>`,
        /// `rename:<from>-><to>`, `delete:<id> final=<snapshot>`.
        pub fn calls(&self) -> Vec<String> {
            lock(&self.state).calls.clone()
        }
    }

    #[async_trait]
    impl DbRestorer for InMemoryDbRestorer {
        async fn restore_instance(
            &self,
            region: &Region,
            snapshot: &str,
            target: &str,
            settings: &RestoreSettings,
        ) -> PortResult<()> {
            let mut s = lock(&self.state);
            s.calls.push(format!("restore:{snapshot}->{target}"));
            s.fail("restore")?;
            if !s.snapshots.contains_key(&(region.clone(), snapshot.to_owned())) {
                return Err(PortError::NotFound(format!("snapshot {snapshot}")));
            }
            let key = (region.clone(), target.to_owned());
            if s.instances.contains_key(&key) {
                return Err(PortError::AlreadyExists(format!("instance {target}")));
            }
            s.instances.insert(
                key,
                FakeInstance {
                    status: "creating".into(),
                    data: snapshot.to_owned(),
                    renaming_to: None,
                    settings: settings.clone(),
                },
            );
            Ok(())
        }

        async fn placement(&self, region: &Region, instance: &str) -> PortResult<Option<RestoreSettings>> {
            Ok(self.settings_of(region, instance))
        }

        async fn restore_cluster(
            &self,
            region: &Region,
            snapshot: &str,
            target: &str,
            settings: &RestoreSettings,
        ) -> PortResult<()> {
            let mut s = lock(&self.state);
            s.calls.push(format!("restore-cluster:{snapshot}->{target}"));
            s.fail("restore")?;
            if !s.snapshots.contains_key(&(region.clone(), snapshot.to_owned())) {
                return Err(PortError::NotFound(format!("cluster snapshot {snapshot}")));
            }
            let key = (region.clone(), target.to_owned());
            if s.clusters.contains_key(&key) {
                return Err(PortError::AlreadyExists(format!("cluster {target}")));
            }
            s.clusters.insert(
                key,
                FakeCluster {
                    status: "creating".into(),
                    data: snapshot.to_owned(),
                    settings: settings.clone(),
                    writer_class: None,
                },
            );
            Ok(())
        }

        async fn create_writer(&self, region: &Region, cluster: &str, instance: &str, class: &str) -> PortResult<()> {
            let mut s = lock(&self.state);
            s.calls.push(format!("create-writer:{instance} in {cluster}"));
            let key = (region.clone(), instance.to_owned());
            if s.instances.contains_key(&key) {
                return Ok(());
            }
            let c = s
                .clusters
                .get_mut(&(region.clone(), cluster.to_owned()))
                .ok_or_else(|| PortError::NotFound(format!("cluster {cluster}")))?;
            c.writer_class = Some(class.to_owned());
            s.instances.insert(
                key,
                FakeInstance {
                    status: "creating".into(),
                    data: format!("writer:{cluster}"),
                    renaming_to: None,
                    settings: RestoreSettings::default(),
                },
            );
            s.writers
                .push((cluster.to_owned(), instance.to_owned(), class.to_owned()));
            Ok(())
        }

        async fn cluster_status(&self, region: &Region, cluster: &str) -> PortResult<Option<RdsStatus>> {
            Ok(lock(&self.state)
                .clusters
                .get(&(region.clone(), cluster.to_owned()))
                .map(|c| c.status.clone()))
        }

        async fn cluster_placement(
            &self,
            region: &Region,
            cluster: &str,
        ) -> PortResult<Option<(RestoreSettings, Option<String>)>> {
            Ok(lock(&self.state)
                .clusters
                .get(&(region.clone(), cluster.to_owned()))
                .map(|c| (c.settings.clone(), c.writer_class.clone())))
        }

        async fn snapshot_status(&self, region: &Region, name: &str) -> PortResult<Option<RdsStatus>> {
            Ok(lock(&self.state)
                .snapshots
                .get(&(region.clone(), name.to_owned()))
                .map(|(st, _)| st.clone()))
        }

        async fn instance_status(&self, region: &Region, instance: &str) -> PortResult<Option<RdsStatus>> {
            Ok(lock(&self.state)
                .instances
                .get(&(region.clone(), instance.to_owned()))
                .map(|i| i.status.clone()))
        }

        async fn rename_instance(&self, region: &Region, from: &str, to: &str) -> PortResult<()> {
            let mut s = lock(&self.state);
            s.calls.push(format!("rename:{from}->{to}"));
            s.fail("rename")?;
            if s.instances.contains_key(&(region.clone(), to.to_owned()))
                || s.instances.values().any(|i| i.renaming_to.as_deref() == Some(to))
            {
                return Err(PortError::AlreadyExists(format!("instance {to}")));
            }
            let i = s
                .instances
                .get_mut(&(region.clone(), from.to_owned()))
                .ok_or_else(|| PortError::NotFound(format!("instance {from}")))?;
            if i.status != "available" {
                return Err(PortError::InvalidState(format!("instance {from} is {}", i.status)));
            }
            i.status = "renaming".into();
            i.renaming_to = Some(to.to_owned());
            Ok(())
        }

        async fn delete_instance_keeping_data(
            &self,
            region: &Region,
            instance: &str,
            final_snapshot: &str,
        ) -> PortResult<()> {
            let mut s = lock(&self.state);
            s.calls.push(format!("delete:{instance} final={final_snapshot}"));
            s.fail("delete")?;
            let key = (region.clone(), instance.to_owned());
            let i = s
                .instances
                .get_mut(&key)
                .ok_or_else(|| PortError::NotFound(format!("instance {instance}")))?;
            if i.status != "available" {
                return Err(PortError::InvalidState(format!("instance {instance} is {}", i.status)));
            }
            i.status = "deleting".into();
            let data = i.data.clone();
            s.snapshots
                .insert((region.clone(), final_snapshot.to_owned()), ("available".into(), data));
            Ok(())
        }
    }
}
