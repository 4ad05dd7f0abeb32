//! In-memory fakes of the ports, for tests (feature `test-util`). They keep the same
//! contracts as the AWS adapters: conditional writes conflict, names collide, failures
//! can be scripted, and every call is counted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::naming::tags;
use crate::domain::{
    Alert, Policy, PolicyProblems, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Status,
};
use crate::ports::{
    Catalog, Clock, DiscoveredResource, Notifier, PortError, PortResult, RunRecord, Snapshot, SnapshotStatus,
    SnapshotStore, Tag, tag_value,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the state from the others.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Operations of [`InMemorySnapshotStore`], for scripting failures and counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotOp {
    List,
    Create,
    Describe,
    ListLifeboat,
    Copy,
}

type SnapshotKey = (Region, ResourceKind, String);

#[derive(Debug, Default)]
pub struct InMemorySnapshotStore {
    resources: Mutex<Vec<DiscoveredResource>>,
    snapshots: Mutex<BTreeMap<SnapshotKey, (Snapshot, String)>>,
    failures: Mutex<VecDeque<(SnapshotOp, PortError)>>,
    new_status: Mutex<Option<SnapshotStatus>>,
    calls: Mutex<HashMap<SnapshotOp, usize>>,
}

impl InMemorySnapshotStore {
    pub fn new() -> Self {
        Self::default()
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
            ResourceKind::AuroraCluster => "cluster-snapshot",
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
        }
    }
}

#[async_trait]
impl SnapshotStore for InMemorySnapshotStore {
    async fn protected_resources(&self, region: &Region, tag_key: &str) -> PortResult<Vec<DiscoveredResource>> {
        self.enter(SnapshotOp::List)?;
        Ok(lock(&self.resources)
            .iter()
            .filter(|r| &r.resource.region == region && tag_value(&r.tags, tag_key).is_some())
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

    async fn lifeboat_snapshots(&self, resource: &ResourceRef) -> PortResult<Vec<Snapshot>> {
        self.enter(SnapshotOp::ListLifeboat)?;
        Ok(lock(&self.snapshots)
            .iter()
            .filter(|((region, kind, _), (s, source))| {
                region == &resource.region
                    && *kind == resource.kind
                    && source == &resource.id
                    && tag_value(&s.tags, tags::CREATED_BY) == Some(tags::CREATED_BY_VALUE)
            })
            .map(|(_, (s, _))| s.clone())
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
}

#[derive(Debug, Default)]
struct CatalogState {
    points: BTreeMap<RecoveryPointId, RecoveryPoint>,
    policies: BTreeMap<String, String>,
    leases: BTreeMap<String, (String, DateTime<Utc>)>,
    markers: BTreeMap<String, (bool, DateTime<Utc>)>,
    runs: Vec<RunRecord>,
}

#[derive(Debug, Default)]
pub struct InMemoryCatalog {
    state: Mutex<CatalogState>,
    calls: AtomicUsize,
    failures: Mutex<VecDeque<PortError>>,
}

impl InMemoryCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a policy document as given, valid or not.
    pub fn put_policy_json(&self, name: &str, json: &str) {
        lock(&self.state).policies.insert(name.to_owned(), json.to_owned());
    }

    pub fn points(&self) -> Vec<RecoveryPoint> {
        lock(&self.state).points.values().cloned().collect()
    }

    pub fn runs(&self) -> Vec<RunRecord> {
        lock(&self.state).runs.clone()
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The next catalog call fails with `error`.
    pub fn fail_next(&self, error: PortError) {
        lock(&self.failures).push_back(error);
    }

    fn enter(&self) -> PortResult<MutexGuard<'_, CatalogState>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = lock(&self.failures).pop_front() {
            return Err(e);
        }
        Ok(lock(&self.state))
    }
}

#[async_trait]
impl Catalog for InMemoryCatalog {
    async fn policies(&self) -> PortResult<Vec<Result<Policy, PolicyProblems>>> {
        Ok(self
            .enter()?
            .policies
            .values()
            .map(|json| Policy::from_json(json))
            .collect())
    }

    async fn put_policy(&self, policy: &Policy) -> PortResult<()> {
        let json = serde_json::to_string(&policy.to_document()).map_err(|e| PortError::Invalid(e.to_string()))?;
        self.enter()?.policies.insert(policy.name.to_string(), json);
        Ok(())
    }

    async fn get(&self, id: &RecoveryPointId) -> PortResult<Option<RecoveryPoint>> {
        Ok(self.enter()?.points.get(id).cloned())
    }

    async fn get_many(&self, ids: &[RecoveryPointId]) -> PortResult<Vec<RecoveryPoint>> {
        let state = self.enter()?;
        Ok(ids.iter().filter_map(|id| state.points.get(id).cloned()).collect())
    }

    async fn insert(&self, rp: &RecoveryPoint) -> PortResult<()> {
        let mut state = self.enter()?;
        if state.points.contains_key(&rp.id) {
            return Err(PortError::Conflict(format!("{} is already recorded", rp.id)));
        }
        state.points.insert(rp.id.clone(), rp.clone());
        Ok(())
    }

    async fn update(&self, rp: &RecoveryPoint, expected_version: u64) -> PortResult<()> {
        let mut state = self.enter()?;
        match state.points.get(&rp.id) {
            Some(stored) if stored.version == expected_version => {
                state.points.insert(rp.id.clone(), rp.clone());
                Ok(())
            }
            Some(stored) => Err(PortError::Conflict(format!(
                "{} is at version {}, not {expected_version}",
                rp.id, stored.version
            ))),
            None => Err(PortError::Conflict(format!("{} is not recorded", rp.id))),
        }
    }

    async fn by_status(&self, status: Status) -> PortResult<Vec<RecoveryPoint>> {
        Ok(self
            .enter()?
            .points
            .values()
            .filter(|p| p.status == status)
            .cloned()
            .collect())
    }

    async fn by_resource(&self, resource_arn: &str, limit: usize) -> PortResult<Vec<RecoveryPoint>> {
        let mut points: Vec<_> = self
            .enter()?
            .points
            .values()
            .filter(|p| p.resource.arn == resource_arn)
            .cloned()
            .collect();
        points.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        points.truncate(limit);
        Ok(points)
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let mut state = self.enter()?;
        match state.leases.get(name) {
            Some((h, exp)) if h != holder && *exp > now => Ok(false),
            _ => {
                state.leases.insert(name.to_owned(), (holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        let mut state = self.enter()?;
        if state.leases.get(name).is_some_and(|(h, _)| h == holder) {
            state.leases.remove(name);
        }
        Ok(())
    }

    async fn claim_marker(&self, key: &str, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> PortResult<bool> {
        let mut state = self.enter()?;
        match state.markers.get(key) {
            Some((true, _)) => Ok(false),
            Some((false, claimed)) if *claimed >= stale_before => Ok(false),
            _ => {
                state.markers.insert(key.to_owned(), (false, now));
                Ok(true)
            }
        }
    }

    async fn confirm_marker(&self, key: &str) -> PortResult<()> {
        if let Some(m) = self.enter()?.markers.get_mut(key) {
            m.0 = true;
        }
        Ok(())
    }

    async fn release_marker(&self, key: &str) -> PortResult<()> {
        let mut state = self.enter()?;
        if state.markers.get(key).is_some_and(|m| !m.0) {
            state.markers.remove(key);
        }
        Ok(())
    }

    async fn record_run(&self, run: &RunRecord) -> PortResult<()> {
        self.enter()?.runs.push(run.clone());
        Ok(())
    }
}

/// Records published alerts; can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    alerts: Mutex<Vec<Alert>>,
    failures: Mutex<VecDeque<PortError>>,
}

impl RecordingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        lock(&self.alerts).clone()
    }

    pub fn fail_next(&self, error: PortError) {
        lock(&self.failures).push_back(error);
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn publish(&self, alert: &Alert) -> PortResult<()> {
        if let Some(e) = lock(&self.failures).pop_front() {
            return Err(e);
        }
        lock(&self.alerts).push(alert.clone());
        Ok(())
    }
}

/// A clock tests can set and move.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *lock(&self.0) = now;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = lock(&self.0);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

/// All fakes together, plus a configuration, for handler tests.
#[derive(Debug, Clone)]
pub struct Fakes {
    pub snapshots: std::sync::Arc<InMemorySnapshotStore>,
    pub catalog: std::sync::Arc<InMemoryCatalog>,
    pub notifier: std::sync::Arc<RecordingNotifier>,
    pub clock: std::sync::Arc<ManualClock>,
}

impl Fakes {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            snapshots: std::sync::Arc::new(InMemorySnapshotStore::new()),
            catalog: std::sync::Arc::new(InMemoryCatalog::new()),
            notifier: std::sync::Arc::new(RecordingNotifier::new()),
            clock: std::sync::Arc::new(ManualClock::new(now)),
        }
    }

    pub fn ports(&self) -> crate::app::Ports {
        crate::app::Ports {
            snapshots: self.snapshots.clone(),
            catalog: self.catalog.clone(),
            notifier: self.notifier.clone(),
            clock: self.clock.clone(),
        }
    }

    /// A configuration with primary region us-east-1 and a DR key for us-west-2.
    pub fn config() -> crate::config::Config {
        crate::config::Config::from_lookup(|k| match k {
            "CATALOG_TABLE_NAME" => Some("catalog".into()),
            "ALERTS_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:alerts".into()),
            "PRIMARY_REGION" => Some("us-east-1".into()),
            "DR_KMS_KEYS" => Some("us-west-2=arn:aws:kms:us-west-2:123456789012:key/dr-key".into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("test configuration: {e}"))
    }

    /// Adds a resource in us-east-1 tagged with `policy`, returning it.
    pub fn add_db(&self, kind: ResourceKind, id: &str, policy: &str) -> ResourceRef {
        let region = Region::parse("us-east-1").unwrap_or_else(|e| panic!("{e}"));
        let kind_part = match kind {
            ResourceKind::RdsInstance => "db",
            ResourceKind::AuroraCluster => "cluster",
        };
        let resource = ResourceRef {
            kind,
            id: id.to_owned(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:{kind_part}:{id}"),
            region,
        };
        self.snapshots.add_resource(
            resource.clone(),
            vec![Tag::new(crate::config::DEFAULT_POLICY_TAG_KEY, policy)],
        );
        resource
    }
}
