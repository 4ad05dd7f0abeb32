//! In-memory fakes of the admin ports, with the adapters' contracts.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use lifeboat_domain::Region;
use lifeboat_domain::approval::ApprovalRequest;
use lifeboat_domain::dr::plan::RestoreSettings;
use lifeboat_domain::restore::RdsStatus;
use lifeboat_domain::restore::RestoreRecord;
use lifeboat_ports::admin::{ApprovalStore, AuditLog, AuditPage, AuditRecord, DbRestorer, RestoreStore};
use lifeboat_ports::{PortError, PortResult};

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

#[derive(Debug, Default)]
pub struct InMemoryApprovalStore {
    requests: Mutex<HashMap<String, ApprovalRequest>>,
}

impl InMemoryApprovalStore {
    pub fn all(&self) -> Vec<ApprovalRequest> {
        lock(&self.requests).values().cloned().collect()
    }
}

#[async_trait]
impl ApprovalStore for InMemoryApprovalStore {
    async fn insert(&self, request: &ApprovalRequest) -> PortResult<()> {
        let mut all = lock(&self.requests);
        if all.contains_key(&request.id) {
            return Err(PortError::Conflict(format!("approval request {} exists", request.id)));
        }
        all.insert(request.id.clone(), request.clone());
        Ok(())
    }

    async fn get(&self, id: &str) -> PortResult<Option<ApprovalRequest>> {
        Ok(lock(&self.requests).get(id).cloned())
    }

    async fn update(&self, request: &ApprovalRequest, expected_version: u64) -> PortResult<()> {
        let mut all = lock(&self.requests);
        match all.get(&request.id) {
            Some(r) if r.version == expected_version => {
                all.insert(request.id.clone(), request.clone());
                Ok(())
            }
            _ => Err(PortError::Conflict(format!(
                "approval request {} changed since version {expected_version}",
                request.id
            ))),
        }
    }

    async fn recent(&self, limit: usize) -> PortResult<Vec<ApprovalRequest>> {
        let mut all: Vec<ApprovalRequest> = lock(&self.requests).values().cloned().collect();
        all.sort_by(|a, b| (b.requested_at, &b.id).cmp(&(a.requested_at, &a.id)));
        all.truncate(limit);
        Ok(all)
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
