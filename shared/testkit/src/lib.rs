//! In-memory fakes of the ports, for tests. They keep the same contracts as the AWS
//! adapters: conditional writes conflict, names collide, failures can be scripted, and
//! every call is counted.

pub mod admin;
pub mod changes;
pub mod dr;
pub mod dr_store;
pub mod invocation;
pub mod keys;
pub mod objects;
pub mod vault;

pub use invocation::{event, event_for, event_json, event_json_for, event_with, sample, sample_event};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use lifeboat_domain::naming::tags;
use lifeboat_domain::{
    Alert, Policy, PolicyProblems, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Status,
};
use lifeboat_ports::{
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

#[derive(Debug, Default)]
struct CatalogState {
    points: BTreeMap<RecoveryPointId, RecoveryPoint>,
    policies: BTreeMap<String, String>,
    leases: BTreeMap<String, (String, DateTime<Utc>)>,
    markers: BTreeMap<String, (bool, DateTime<Utc>)>,
    runs: Vec<RunRecord>,
    alerts: Vec<(DateTime<Utc>, Alert)>,
}

#[derive(Debug, Default)]
pub struct InMemoryCatalog {
    state: Mutex<CatalogState>,
    calls: AtomicUsize,
    failures: Mutex<VecDeque<PortError>>,
    marker_failures: Mutex<VecDeque<PortError>>,
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

    /// The next [`Catalog::claim_marker`] call fails with `error` (other calls go through).
    pub fn fail_next_marker_claim(&self, error: PortError) {
        lock(&self.marker_failures).push_back(error);
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
            .iter()
            .map(|(key, json)| {
                Policy::from_json(json).map_err(|p| PolicyProblems {
                    policy: key.clone(),
                    ..p
                })
            })
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
        if let Some(e) = lock(&self.marker_failures).pop_front() {
            return Err(e);
        }
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

    async fn log_alert(&self, alert: &Alert, sent_at: DateTime<Utc>) -> PortResult<()> {
        self.enter()?.alerts.push((sent_at, alert.clone()));
        Ok(())
    }

    async fn recent_alerts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<(DateTime<Utc>, Alert)>> {
        let mut out: Vec<_> = self
            .enter()?
            .alerts
            .iter()
            .filter(|(at, _)| *at >= since && *at <= until)
            .cloned()
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.dedupe_key.cmp(&b.1.dedupe_key)));
        out.truncate(limit);
        Ok(out)
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
    pub backup: std::sync::Arc<InMemoryBackupService>,
}

impl Fakes {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            snapshots: std::sync::Arc::new(InMemorySnapshotStore::new()),
            catalog: std::sync::Arc::new(InMemoryCatalog::new()),
            notifier: std::sync::Arc::new(RecordingNotifier::new()),
            clock: std::sync::Arc::new(ManualClock::new(now)),
            backup: std::sync::Arc::new(InMemoryBackupService::new()),
        }
    }

    pub fn ports(&self) -> lifeboat::app::Ports {
        lifeboat::app::Ports {
            snapshots: self.snapshots.clone(),
            catalog: self.catalog.clone(),
            notifier: self.notifier.clone(),
            clock: self.clock.clone(),
            backup: self.backup.clone(),
            alert_window: None,
        }
    }

    /// A configuration with primary region us-east-1 and a DR key for us-west-2.
    pub fn config() -> lifeboat::config::Config {
        lifeboat::config::Config::from_lookup(|k| match k {
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
        let arn = match kind {
            ResourceKind::RdsInstance => format!("arn:aws:rds:us-east-1:123456789012:db:{id}"),
            ResourceKind::AuroraCluster | ResourceKind::S3Prefix | ResourceKind::ConfigBundle => {
                format!("arn:aws:rds:us-east-1:123456789012:cluster:{id}")
            }
            ResourceKind::DynamoDbTable => format!("arn:aws:dynamodb:us-east-1:123456789012:table/{id}"),
        };
        let resource = ResourceRef {
            kind,
            id: id.to_owned(),
            arn,
            region,
        };
        self.snapshots.add_resource(
            resource.clone(),
            vec![Tag::new(lifeboat::config::DEFAULT_POLICY_TAG_KEY, policy)],
        );
        resource
    }
}

// --- Table backups and AWS Backup ---

use lifeboat_ports::{
    BackupJob, BackupJobState, BackupService, TableBackup, TableBackups, VaultLock, VaultRecoveryPoint,
};

const FAKE_ACCOUNT: &str = "123456789012";

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

/// Operations of [`InMemoryBackupService`], for scripting failures and counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackupServiceOp {
    StartJob,
    DescribeJob,
    RecoveryPoints,
    VaultLock,
    DeleteRecoveryPoint,
}

/// One `start_backup_job` request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupJobRequest {
    pub vault: String,
    pub resource_arn: String,
    pub iam_role_arn: String,
    pub idempotency_token: String,
    pub delete_after_days: Option<i64>,
}

#[derive(Debug, Default)]
struct BackupServiceState {
    vaults: BTreeMap<String, (VaultLock, Vec<VaultRecoveryPoint>)>,
    jobs: BTreeMap<String, (BackupJob, BackupJobRequest)>,
    /// Idempotency token → job id.
    tokens: HashMap<String, String>,
    requests: Vec<BackupJobRequest>,
}

/// AWS Backup in one region. Same contract as `AwsBackupService`: a repeated idempotency
/// token returns the job it started first; unknown vaults are `NotFound`; unknown jobs are
/// `None`. Jobs stay `Created` until a test moves them (`complete_job`, `fail_job`,
/// `set_job_state`); completing one stores its recovery point in the vault.
#[derive(Debug)]
pub struct InMemoryBackupService {
    region: String,
    state: Mutex<BackupServiceState>,
    next_id: AtomicUsize,
    failures: Mutex<VecDeque<(BackupServiceOp, PortError)>>,
    calls: Mutex<HashMap<BackupServiceOp, usize>>,
}

impl Default for InMemoryBackupService {
    fn default() -> Self {
        Self::in_region("us-east-1")
    }
}

impl InMemoryBackupService {
    /// AWS Backup in us-east-1.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn in_region(region: &str) -> Self {
        Self {
            region: region.to_owned(),
            state: Mutex::default(),
            next_id: AtomicUsize::new(0),
            failures: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    /// Adds (or replaces the lock of) a vault.
    pub fn add_vault(&self, vault: &str, lock_state: VaultLock) {
        let mut state = lock(&self.state);
        match state.vaults.get_mut(vault) {
            Some((current, _)) => *current = lock_state,
            None => {
                state.vaults.insert(vault.to_owned(), (lock_state, Vec::new()));
            }
        }
    }

    /// An unlocked vault.
    pub fn add_unlocked_vault(&self, vault: &str) {
        self.add_vault(
            vault,
            VaultLock {
                locked: false,
                min_retention_days: None,
                max_retention_days: None,
                lock_date: None,
            },
        );
    }

    /// Stores a recovery point in an existing vault (`false` if there is no such vault).
    pub fn add_recovery_point(&self, vault: &str, rp: VaultRecoveryPoint) -> bool {
        match lock(&self.state).vaults.get_mut(vault) {
            Some((_, points)) => {
                points.push(rp);
                true
            }
            None => false,
        }
    }

    /// The recovery points a vault holds now.
    pub fn recovery_points_in(&self, vault: &str) -> Vec<VaultRecoveryPoint> {
        lock(&self.state)
            .vaults
            .get(vault)
            .map(|(_, points)| points.clone())
            .unwrap_or_default()
    }

    pub fn set_job_state(&self, job_id: &str, state: BackupJobState, status_message: Option<&str>) {
        if let Some((job, _)) = lock(&self.state).jobs.get_mut(job_id) {
            job.state = state;
            job.status_message = status_message.map(str::to_owned);
        }
    }

    /// Completes a job: its recovery point appears in its vault, `COMPLETED`, encrypted,
    /// deleted after the requested days.
    pub fn complete_job(&self, job_id: &str) {
        let mut state = lock(&self.state);
        let Some((job, request)) = state.jobs.get_mut(job_id) else {
            return;
        };
        job.state = BackupJobState::Completed;
        let now = Utc::now();
        let rp = VaultRecoveryPoint {
            recovery_point_arn: job.recovery_point_arn.clone().unwrap_or_default(),
            resource_arn: job.resource_arn.clone(),
            resource_type: fake_resource_type(&job.resource_arn).to_owned(),
            status: "COMPLETED".to_owned(),
            created_at: Some(now),
            completed_at: Some(now),
            delete_at: request.delete_after_days.map(|d| now + chrono::Duration::days(d)),
            encryption_key_arn: Some(format!("arn:aws:kms:{}:{FAKE_ACCOUNT}:key/backup-vault", self.region)),
            is_encrypted: true,
        };
        let vault = request.vault.clone();
        if let Some((_, points)) = state.vaults.get_mut(&vault) {
            points.push(rp);
        }
    }

    /// Fails a job with AWS Backup's `status_message`.
    pub fn fail_job(&self, job_id: &str, status_message: &str) {
        self.set_job_state(job_id, BackupJobState::Failed, Some(status_message));
    }

    pub fn jobs(&self) -> Vec<BackupJob> {
        lock(&self.state).jobs.values().map(|(j, _)| j.clone()).collect()
    }

    /// Every `start_backup_job` request received, in order (repeats included).
    pub fn requests(&self) -> Vec<BackupJobRequest> {
        lock(&self.state).requests.clone()
    }

    /// The next call of `op` fails with `error` (queued in order).
    pub fn fail_next(&self, op: BackupServiceOp, error: PortError) {
        lock(&self.failures).push_back((op, error));
    }

    pub fn calls(&self, op: BackupServiceOp) -> usize {
        lock(&self.calls).get(&op).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> usize {
        lock(&self.calls).values().sum()
    }

    fn enter(&self, op: BackupServiceOp) -> PortResult<()> {
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

/// AWS Backup's resource type for an ARN, roughly as AWS Backup reports it.
fn fake_resource_type(resource_arn: &str) -> &'static str {
    let service = resource_arn.split(':').nth(2).unwrap_or_default();
    match service {
        "rds" if resource_arn.contains(":cluster:") => "Aurora",
        "rds" => "RDS",
        "dynamodb" => "DynamoDB",
        "s3" => "S3",
        "ec2" => "EC2",
        "elasticfilesystem" => "EFS",
        _ => "Other",
    }
}

#[async_trait]
impl BackupService for InMemoryBackupService {
    async fn start_backup_job(
        &self,
        vault: &str,
        resource_arn: &str,
        iam_role_arn: &str,
        idempotency_token: &str,
        delete_after_days: Option<i64>,
    ) -> PortResult<BackupJob> {
        self.enter(BackupServiceOp::StartJob)?;
        let request = BackupJobRequest {
            vault: vault.to_owned(),
            resource_arn: resource_arn.to_owned(),
            iam_role_arn: iam_role_arn.to_owned(),
            idempotency_token: idempotency_token.to_owned(),
            delete_after_days,
        };
        let mut state = lock(&self.state);
        state.requests.push(request.clone());
        if !state.vaults.contains_key(vault) {
            return Err(PortError::NotFound(format!("backup vault {vault}")));
        }
        if let Some(job_id) = state.tokens.get(idempotency_token)
            && let Some((job, _)) = state.jobs.get(job_id)
        {
            return Ok(job.clone());
        }
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let job = BackupJob {
            job_id: format!("job-{n:08}"),
            resource_arn: resource_arn.to_owned(),
            state: BackupJobState::Created,
            recovery_point_arn: Some(format!(
                "arn:aws:backup:{}:{FAKE_ACCOUNT}:recovery-point:rp-{n:08}",
                self.region
            )),
            status_message: None,
        };
        state.tokens.insert(idempotency_token.to_owned(), job.job_id.clone());
        state.jobs.insert(job.job_id.clone(), (job.clone(), request));
        Ok(job)
    }

    async fn describe_backup_job(&self, job_id: &str) -> PortResult<Option<BackupJob>> {
        self.enter(BackupServiceOp::DescribeJob)?;
        Ok(lock(&self.state).jobs.get(job_id).map(|(j, _)| j.clone()))
    }

    async fn recovery_points(&self, vault: &str, resource_arn: Option<&str>) -> PortResult<Vec<VaultRecoveryPoint>> {
        self.enter(BackupServiceOp::RecoveryPoints)?;
        let state = lock(&self.state);
        let (_, points) = state
            .vaults
            .get(vault)
            .ok_or_else(|| PortError::NotFound(format!("backup vault {vault}")))?;
        Ok(points
            .iter()
            .filter(|rp| resource_arn.is_none_or(|arn| rp.resource_arn == arn))
            .cloned()
            .collect())
    }

    async fn delete_recovery_point(&self, vault: &str, recovery_point_arn: &str) -> PortResult<()> {
        self.enter(BackupServiceOp::DeleteRecoveryPoint)?;
        let mut state = lock(&self.state);
        let (lock_state, points) = state
            .vaults
            .get_mut(vault)
            .ok_or_else(|| PortError::NotFound(format!("backup vault {vault}")))?;
        let Some(i) = points.iter().position(|p| p.recovery_point_arn == recovery_point_arn) else {
            return Ok(());
        };
        let min_days = lock_state.min_retention_days.unwrap_or(0);
        let young = points[i]
            .created_at
            .is_some_and(|c| Utc::now() - c < chrono::Duration::days(min_days));
        if lock_state.locked && young {
            return Err(PortError::InvalidState(format!(
                "vault {vault} is locked: {recovery_point_arn} is younger than its {min_days}-day minimum retention"
            )));
        }
        points.remove(i);
        Ok(())
    }

    async fn vault_lock(&self, vault: &str) -> PortResult<VaultLock> {
        self.enter(BackupServiceOp::VaultLock)?;
        lock(&self.state)
            .vaults
            .get(vault)
            .map(|(l, _)| l.clone())
            .ok_or_else(|| PortError::NotFound(format!("backup vault {vault}")))
    }
}

#[cfg(test)]
mod table_backup_and_backup_service_fakes {
    #![allow(clippy::unwrap_used)] // test code: a panic is a test failure

    use super::*;

    #[tokio::test]
    async fn table_backups_keep_the_adapter_contract() {
        let fake = InMemoryTableBackups::new();
        let table_arn = fake.add_table("orders");

        let err = fake.create_backup("missing", "lb-x").await.unwrap_err();
        assert!(matches!(err, PortError::NotFound(_)), "{err:?}");

        let first = fake.create_backup("orders", "lb-gold-orders-1800").await.unwrap();
        let again = fake.create_backup("orders", "lb-gold-orders-1800").await.unwrap();
        assert_eq!(again, first);
        assert_eq!(first.table_arn, table_arn);
        assert!(first.backup_arn.starts_with(&format!("{table_arn}/backup/")));
        fake.create_backup("orders", "manual").await.unwrap();
        assert_eq!(
            fake.list_backups("orders", "lb-").await.unwrap(),
            std::slice::from_ref(&first)
        );
        assert_eq!(fake.list_backups("missing", "").await.unwrap(), []);
        assert_eq!(
            fake.describe_backup(&first.backup_arn).await.unwrap(),
            Some(first.clone())
        );

        fake.set_new_status(SnapshotStatus::Creating);
        let creating = fake.create_backup("orders", "lb-gold-orders-1900").await.unwrap();
        let err = fake.delete_backup(&creating.backup_arn).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");

        fake.delete_backup(&first.backup_arn).await.unwrap();
        fake.delete_backup(&first.backup_arn).await.unwrap();
        assert_eq!(fake.describe_backup(&first.backup_arn).await.unwrap(), None);

        fake.fail_next(TableBackupOp::Create, PortError::Throttled("scripted".into()));
        assert!(fake.create_backup("orders", "lb-gold-orders-2000").await.is_err());
        assert!(fake.create_backup("orders", "lb-gold-orders-2000").await.is_ok());
        assert_eq!(fake.calls(TableBackupOp::Create), 7);
        assert_eq!(fake.calls(TableBackupOp::Delete), 3);
    }

    #[tokio::test]
    async fn backup_service_keeps_the_adapter_contract() {
        let fake = InMemoryBackupService::new();
        let db = "arn:aws:rds:us-east-1:123456789012:db:db1";
        let role = "arn:aws:iam::123456789012:role/backup";

        let err = fake
            .start_backup_job("vault", db, role, "t1", Some(35))
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::NotFound(_)), "{err:?}");
        assert!(matches!(fake.vault_lock("vault").await, Err(PortError::NotFound(_))));

        fake.add_unlocked_vault("vault");
        let job = fake.start_backup_job("vault", db, role, "t1", Some(35)).await.unwrap();
        assert_eq!(job.state, BackupJobState::Created);
        assert_eq!(
            fake.start_backup_job("vault", db, role, "t1", Some(35)).await.unwrap(),
            job
        );
        assert_eq!(fake.jobs().len(), 1, "one job per idempotency token");
        assert_eq!(fake.requests().len(), 3);

        fake.complete_job(&job.job_id);
        let done = fake.describe_backup_job(&job.job_id).await.unwrap().unwrap();
        assert_eq!(done.state, BackupJobState::Completed);
        let points = fake.recovery_points("vault", Some(db)).await.unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(Some(&points[0].recovery_point_arn), job.recovery_point_arn.as_ref());
        assert_eq!(points[0].resource_type, "RDS");
        assert!(points[0].delete_at.is_some());
        assert!(
            fake.recovery_points("vault", Some("arn:other"))
                .await
                .unwrap()
                .is_empty()
        );

        let other = fake.start_backup_job("vault", db, role, "t2", None).await.unwrap();
        fake.fail_job(&other.job_id, "Access denied");
        let failed = fake.describe_backup_job(&other.job_id).await.unwrap().unwrap();
        assert_eq!(
            (failed.state, failed.status_message.as_deref()),
            (BackupJobState::Failed, Some("Access denied"))
        );
        assert_eq!(fake.describe_backup_job("nope").await.unwrap(), None);

        let locked = VaultLock {
            locked: true,
            min_retention_days: Some(7),
            max_retention_days: Some(365),
            lock_date: None,
        };
        fake.add_vault("vault", locked.clone());
        assert_eq!(fake.vault_lock("vault").await.unwrap(), locked);
        assert_eq!(
            fake.recovery_points("vault", None).await.unwrap().len(),
            1,
            "the lock keeps the points"
        );

        fake.fail_next(BackupServiceOp::VaultLock, PortError::Unavailable("scripted".into()));
        assert!(fake.vault_lock("vault").await.is_err());
        assert_eq!(fake.calls(BackupServiceOp::VaultLock), 3);
    }
}

// --- Snapshot exports ---

use lifeboat_ports::{ExportRequest, ExportTask, ExportTaskState, SnapshotExporter};

/// Operations of [`InMemorySnapshotExporter`], for scripting failures and counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportOp {
    Start,
    Describe,
}

/// RDS snapshot exports of one region. Same contract as `RdsSnapshotExporter`: a task id
/// already used is `AlreadyExists` (whatever its state), a source snapshot in another
/// region is refused as invalid (RDS exports only into a bucket of the snapshot's region),
/// an unknown task is `None`. New tasks start in `new_state` (default `STARTING`); tests
/// move them with [`InMemorySnapshotExporter::set_state`]. The fake writes no files: tests
/// put the exported objects into the bucket themselves.
#[derive(Debug)]
pub struct InMemorySnapshotExporter {
    region: String,
    tasks: Mutex<BTreeMap<String, ExportTask>>,
    requests: Mutex<Vec<ExportRequest>>,
    new_state: Mutex<ExportTaskState>,
    failures: Mutex<VecDeque<(ExportOp, PortError)>>,
    calls: Mutex<HashMap<ExportOp, usize>>,
}

impl InMemorySnapshotExporter {
    pub fn in_region(region: &str) -> Self {
        Self {
            region: region.to_owned(),
            tasks: Mutex::default(),
            requests: Mutex::default(),
            new_state: Mutex::new(ExportTaskState::Starting),
            failures: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    /// The state new tasks start in.
    pub fn set_new_state(&self, state: ExportTaskState) {
        *lock(&self.new_state) = state;
    }

    /// Moves a task to `state` (with RDS's `failure_cause` for a failed one).
    pub fn set_state(&self, task_id: &str, state: ExportTaskState, failure_cause: Option<&str>) {
        if let Some(t) = lock(&self.tasks).get_mut(task_id) {
            t.percent_progress = Some(if state == ExportTaskState::Complete { 100 } else { 50 });
            t.state = state;
            t.failure_cause = failure_cause.map(str::to_owned);
        }
    }

    pub fn tasks(&self) -> Vec<ExportTask> {
        lock(&self.tasks).values().cloned().collect()
    }

    /// Every StartExportTask request accepted, in order.
    pub fn requests(&self) -> Vec<ExportRequest> {
        lock(&self.requests).clone()
    }

    pub fn fail_next(&self, op: ExportOp, error: PortError) {
        lock(&self.failures).push_back((op, error));
    }

    pub fn calls(&self, op: ExportOp) -> usize {
        lock(&self.calls).get(&op).copied().unwrap_or(0)
    }

    fn enter(&self, op: ExportOp) -> PortResult<()> {
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

#[async_trait]
impl SnapshotExporter for InMemorySnapshotExporter {
    async fn start_export(&self, r: &ExportRequest) -> PortResult<ExportTask> {
        self.enter(ExportOp::Start)?;
        let parts: Vec<&str> = r.source_arn.splitn(7, ':').collect();
        if parts.len() != 7 || parts[2] != "rds" || !matches!(parts[5], "snapshot" | "cluster-snapshot") {
            return Err(PortError::Invalid(format!(
                "StartExportTask: {} is not a DB snapshot or DB cluster snapshot ARN",
                r.source_arn
            )));
        }
        if parts[3] != self.region {
            return Err(PortError::Invalid(format!(
                "StartExportTask: the snapshot is in {}, the export runs in {}",
                parts[3], self.region
            )));
        }
        let mut tasks = lock(&self.tasks);
        if tasks.contains_key(&r.task_id) {
            return Err(PortError::AlreadyExists(format!(
                "StartExportTask: ExportTaskAlreadyExists: {}",
                r.task_id
            )));
        }
        let task = ExportTask {
            task_id: r.task_id.clone(),
            source_arn: r.source_arn.clone(),
            bucket: r.bucket.clone(),
            prefix: r.prefix.clone(),
            state: lock(&self.new_state).clone(),
            percent_progress: Some(0),
            failure_cause: None,
            warning: None,
        };
        tasks.insert(r.task_id.clone(), task.clone());
        lock(&self.requests).push(r.clone());
        Ok(task)
    }

    async fn describe_export(&self, task_id: &str) -> PortResult<Option<ExportTask>> {
        self.enter(ExportOp::Describe)?;
        Ok(lock(&self.tasks).get(task_id).cloned())
    }
}
