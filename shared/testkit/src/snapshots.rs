//! Snapshots of protected resources in memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::Utc;
use lifeboat_domain::naming::tags;
use lifeboat_domain::{Region, ResourceKind, ResourceRef};
use lifeboat_ports::{
    DiscoveredResource, PortError, PortResult, Snapshot, SnapshotStatus, SnapshotStore, Tag, tag_value,
};

use crate::lock;

/// Operations of [`InMemorySnapshotStore`], for scripting failures and counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotOp {
    List,
    Create,
    Describe,
    ListLifeboat,
    Copy,
    Delete,
    Share,
}

type SnapshotKey = (Region, ResourceKind, String);

#[derive(Debug, Default)]
pub struct InMemorySnapshotStore {
    resources: Mutex<Vec<DiscoveredResource>>,
    snapshots: Mutex<BTreeMap<SnapshotKey, (Snapshot, String)>>,
    failures: Mutex<VecDeque<(SnapshotOp, PortError)>>,
    new_status: Mutex<Option<SnapshotStatus>>,
    /// Size given to snapshots created or copied from now on (default: unknown).
    new_size: Mutex<Option<u64>>,
    calls: Mutex<HashMap<SnapshotOp, usize>>,
    shares: Mutex<BTreeMap<SnapshotKey, std::collections::BTreeSet<String>>>,
}

impl InMemorySnapshotStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The accounts a snapshot is shared with.
    pub fn shared_with(&self, region: &Region, kind: ResourceKind, name: &str) -> Vec<String> {
        lock(&self.shares)
            .get(&(region.clone(), kind, name.to_owned()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn add_resource(&self, resource: ResourceRef, tags: Vec<Tag>) {
        lock(&self.resources).push(DiscoveredResource { resource, tags });
    }

    /// The next call of `op` fails with `error` (queued in order).
    pub fn fail_next(&self, op: SnapshotOp, error: PortError) {
        lock(&self.failures).push_back((op, error));
    }

    /// Status given to snapshots created or copied from now on (default: available).
    pub fn set_new_status(&self, status: SnapshotStatus) {
        *lock(&self.new_status) = Some(status);
    }

    /// Size (bytes) RDS reports for snapshots created or copied from now on.
    pub fn set_new_size(&self, bytes: u64) {
        *lock(&self.new_size) = Some(bytes);
    }

    pub fn set_status(&self, region: &Region, kind: ResourceKind, name: &str, status: SnapshotStatus) {
        if let Some((s, _)) = lock(&self.snapshots).get_mut(&(region.clone(), kind, name.to_owned())) {
            s.status = status;
        }
    }

    pub fn remove(&self, region: &Region, kind: ResourceKind, name: &str) {
        lock(&self.snapshots).remove(&(region.clone(), kind, name.to_owned()));
    }

    pub fn snapshots(&self) -> Vec<Snapshot> {
        lock(&self.snapshots).values().map(|(s, _)| s.clone()).collect()
    }

    pub fn calls(&self, op: SnapshotOp) -> usize {
        lock(&self.calls).get(&op).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> usize {
        lock(&self.calls).values().sum()
    }

    fn enter(&self, op: SnapshotOp) -> PortResult<()> {
        *lock(&self.calls).entry(op).or_insert(0) += 1;
        let mut failures = lock(&self.failures);
        if let Some(i) = failures.iter().position(|(o, _)| *o == op)
            && let Some((_, e)) = failures.remove(i)
        {
            return Err(e);
        }
        Ok(())
    }

    fn new_snapshot(
        &self,
        kind: ResourceKind,
        region: &Region,
        name: &str,
        kms: Option<String>,
        tags: &[Tag],
    ) -> Snapshot {
        let arn_kind = match kind {
            ResourceKind::RdsInstance => "snapshot",
            ResourceKind::AuroraCluster | ResourceKind::S3Prefix | ResourceKind::ConfigBundle => "cluster-snapshot",
            ResourceKind::DynamoDbTable => "backup",
        };
        Snapshot {
            kind,
            region: region.clone(),
            name: name.to_owned(),
            arn: Some(format!("arn:aws:rds:{region}:123456789012:{arn_kind}:{name}")),
            status: lock(&self.new_status).clone().unwrap_or(SnapshotStatus::Available),
            created_at: Some(Utc::now()),
            kms_key_id: kms,
            tags: tags.to_vec(),
            size_bytes: *lock(&self.new_size),
        }
    }
}

#[async_trait]
impl SnapshotStore for InMemorySnapshotStore {
    async fn resources(&self, region: &Region) -> PortResult<Vec<DiscoveredResource>> {
        self.enter(SnapshotOp::List)?;
        Ok(lock(&self.resources)
            .iter()
            .filter(|r| &r.resource.region == region)
            .cloned()
            .collect())
    }

    async fn create_snapshot(&self, resource: &ResourceRef, name: &str, tags: &[Tag]) -> PortResult<Snapshot> {
        self.enter(SnapshotOp::Create)?;
        let key = (resource.region.clone(), resource.kind, name.to_owned());
        let snap = self.new_snapshot(resource.kind, &resource.region, name, None, tags);
        let mut all = lock(&self.snapshots);
        if all.contains_key(&key) {
            return Err(PortError::AlreadyExists(name.to_owned()));
        }
        all.insert(key, (snap.clone(), resource.id.clone()));
        Ok(snap)
    }

    async fn describe_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<Option<Snapshot>> {
        self.enter(SnapshotOp::Describe)?;
        Ok(lock(&self.snapshots)
            .get(&(region.clone(), kind, name.to_owned()))
            .map(|(s, _)| s.clone()))
    }

    async fn share_snapshot(&self, region: &Region, kind: ResourceKind, name: &str, account: &str) -> PortResult<()> {
        self.enter(SnapshotOp::Share)?;
        let key = (region.clone(), kind, name.to_owned());
        match lock(&self.snapshots).get(&key).map(|(s, _)| s.status.clone()) {
            None => return Err(PortError::NotFound(format!("snapshot {name} in {region}"))),
            Some(SnapshotStatus::Available) => {}
            Some(other) => {
                return Err(PortError::InvalidState(format!(
                    "snapshot {name} is {other:?}: only an available snapshot can be shared"
                )));
            }
        }
        lock(&self.shares).entry(key).or_default().insert(account.to_owned());
        Ok(())
    }

    async fn lifeboat_snapshots(
        &self,
        region: &Region,
        kind: ResourceKind,
        resources: &[ResourceRef],
    ) -> PortResult<Vec<(usize, Snapshot)>> {
        self.enter(SnapshotOp::ListLifeboat)?;
        let by_id = lifeboat_ports::snapshots::index_by_id(resources, region, kind);
        Ok(lock(&self.snapshots)
            .iter()
            .filter(|((r, k, _), (s, _))| {
                r == region && *k == kind && tag_value(&s.tags, tags::CREATED_BY) == Some(tags::CREATED_BY_VALUE)
            })
            .filter_map(|(_, (s, source))| Some((*by_id.get(source.as_str())?, s.clone())))
            .collect())
    }

    async fn copy_snapshot(
        &self,
        source: &Snapshot,
        destination: &Region,
        name: &str,
        kms_key_id: &str,
        tags: &[Tag],
    ) -> PortResult<Snapshot> {
        self.enter(SnapshotOp::Copy)?;
        let mut all = lock(&self.snapshots);
        let origin = all
            .get(&(source.region.clone(), source.kind, source.name.clone()))
            .map(|(_, origin)| origin.clone())
            .ok_or_else(|| PortError::NotFound(source.name.clone()))?;
        let key = (destination.clone(), source.kind, name.to_owned());
        if all.contains_key(&key) {
            return Err(PortError::AlreadyExists(name.to_owned()));
        }
        let snap = self.new_snapshot(source.kind, destination, name, Some(kms_key_id.to_owned()), tags);
        all.insert(key, (snap.clone(), origin));
        Ok(snap)
    }

    /// Like RDS: a snapshot still being created or copied cannot be deleted
    /// (`InvalidState`); one that is already gone is `Ok`.
    async fn delete_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<()> {
        self.enter(SnapshotOp::Delete)?;
        let mut all = lock(&self.snapshots);
        let key = (region.clone(), kind, name.to_owned());
        match all.get(&key) {
            Some((s, _)) if s.status == SnapshotStatus::Creating => Err(PortError::InvalidState(format!(
                "snapshot {name} in {region} is not in the available state"
            ))),
            Some(_) => {
                all.remove(&key);
                Ok(())
            }
            None => Ok(()),
        }
    }
}
