//! [`DrTables`] in memory: tables with items and backups that hold a copy of their
//! table, with DynamoDB's contracts (restore into an existing name refused, deleting a
//! missing table fine, a restore in progress until [`InMemoryDrTables::finish_restores`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use lifeboat_domain::Region;
use lifeboat_domain::dr::table_digest::TableContent;
use lifeboat_domain::dr::table_digest::{Item, TableDigest};
use lifeboat_ports::PortError;
use lifeboat_ports::PortResult;
use lifeboat_ports::dr::{BackupInfo, DrTables, ImportInfo, TableInfo};

#[derive(Debug, Clone)]
struct FakeTable {
    info: TableInfo,
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
struct FakeBackup {
    info: BackupInfo,
    table: FakeTable,
}

#[derive(Debug, Default)]
struct State {
    tables: BTreeMap<(Region, String), FakeTable>,
    backups: BTreeMap<String, (Region, FakeBackup)>,
    /// Table copies (exports) by (region of the export bucket, copy name).
    copies: BTreeMap<(Region, String), FakeTable>,
    /// Imports by ARN: (region, description, the copy and target it was started with).
    imports: BTreeMap<String, (Region, ImportInfo, String)>,
    /// Regions whose DynamoDB cannot be reached (an outage).
    down: std::collections::BTreeSet<Region>,
    restores: usize,
    deletes: Vec<String>,
    scans: usize,
}

#[derive(Debug, Default)]
pub struct InMemoryDrTables {
    state: Mutex<State>,
    /// Restores start `CREATING` with a restore in progress, until finished.
    slow_restores: bool,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl InMemoryDrTables {
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores stay `CREATING` until [`Self::finish_restores`], as on AWS.
    pub fn with_slow_restores() -> Self {
        Self {
            slow_restores: true,
            ..Self::default()
        }
    }

    /// A source table with a hash key `pk` and the named global secondary indexes.
    pub fn put_table(&self, region: &Region, name: &str, indexes: &[&str], items: Vec<Item>) {
        let mut indexes: Vec<String> = indexes.iter().map(|s| (*s).to_owned()).collect();
        indexes.sort();
        lock(&self.state).tables.insert(
            (region.clone(), name.to_owned()),
            FakeTable {
                info: TableInfo {
                    name: name.to_owned(),
                    arn: Some(format!("arn:aws:dynamodb:{region}:123456789012:table/{name}")),
                    status: "ACTIVE".into(),
                    key_schema: vec![("pk".into(), "HASH".into())],
                    indexes,
                    restored_from: None,
                    restore_in_progress: false,
                },
                items,
            },
        );
    }

    /// Replaces a table's items (what a backup taken afterwards holds).
    pub fn set_items(&self, region: &Region, name: &str, items: Vec<Item>) {
        if let Some(t) = lock(&self.state).tables.get_mut(&(region.clone(), name.to_owned())) {
            t.items = items;
        }
    }

    /// A backup of the table as it is now; returns its ARN.
    pub fn backup(&self, region: &Region, table: &str, id: &str, at: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let mut s = lock(&self.state);
        let t = s.tables.get(&(region.clone(), table.to_owned()))?.clone();
        let arn = format!("arn:aws:dynamodb:{region}:123456789012:table/{table}/backup/{id}");
        let info = BackupInfo {
            backup_arn: arn.clone(),
            status: "AVAILABLE".into(),
            created_at: Some(at),
            item_count: Some(t.items.len() as u64),
            key_schema: t.info.key_schema.clone(),
        };
        s.backups
            .insert(arn.clone(), (region.clone(), FakeBackup { info, table: t }));
        Some(arn)
    }

    /// Changes what a backup holds behind Lifeboat's back (a corrupted backup).
    pub fn tamper_backup(&self, backup_arn: &str, items: Vec<Item>) {
        if let Some((_, b)) = lock(&self.state).backups.get_mut(backup_arn) {
            b.table.items = items;
        }
    }

    /// Every restore and import in progress completes.
    pub fn finish_restores(&self) {
        let mut s = lock(&self.state);
        for t in s.tables.values_mut() {
            if t.info.restore_in_progress || t.info.status == "CREATING" {
                t.info.restore_in_progress = false;
                t.info.status = "ACTIVE".into();
            }
        }
        for (_, info, _) in s.imports.values_mut() {
            if info.status == "IN_PROGRESS" {
                "COMPLETED".clone_into(&mut info.status);
            }
        }
    }

    /// The table's copy in `destination` as the table is now (what an export at the
    /// backup's time holds when nothing was written since); `false` without the table.
    pub fn export(&self, region: &Region, table: &str, destination: &Region, copy: &str) -> bool {
        let mut s = lock(&self.state);
        let Some(t) = s.tables.get(&(region.clone(), table.to_owned())).cloned() else {
            return false;
        };
        s.copies.insert((destination.clone(), copy.to_owned()), t);
        true
    }

    /// DynamoDB in `region` cannot be reached (`Unavailable`) until [`Self::recover`].
    pub fn outage(&self, region: &Region) {
        lock(&self.state).down.insert(region.clone());
    }

    pub fn recover(&self, region: &Region) {
        lock(&self.state).down.remove(region);
    }

    /// ImportTable calls that started an import.
    pub fn imports(&self) -> usize {
        lock(&self.state).imports.len()
    }

    pub fn table_names(&self, region: &Region) -> Vec<String> {
        lock(&self.state)
            .tables
            .keys()
            .filter(|(r, _)| r == region)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// RestoreTableFromBackup calls that created a table.
    pub fn restores(&self) -> usize {
        lock(&self.state).restores
    }

    pub fn scans(&self) -> usize {
        lock(&self.state).scans
    }

    /// ARNs of every backup held (taken by the test or by Lifeboat).
    pub fn backup_arns(&self) -> Vec<String> {
        lock(&self.state).backups.keys().cloned().collect()
    }

    /// Names of the tables deleted, in order.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.state).deletes.clone()
    }
}

fn reachable(s: &State, region: &Region) -> PortResult<()> {
    if s.down.contains(region) {
        Err(PortError::Unavailable(format!(
            "DynamoDB in {region}: could not connect (outage)"
        )))
    } else {
        Ok(())
    }
}

#[async_trait]
impl DrTables for InMemoryDrTables {
    async fn describe_table(&self, region: &Region, name: &str) -> PortResult<Option<TableInfo>> {
        reachable(&lock(&self.state), region)?;
        Ok(lock(&self.state)
            .tables
            .get(&(region.clone(), name.to_owned()))
            .map(|t| t.info.clone()))
    }

    async fn describe_backup(&self, region: &Region, backup_arn: &str) -> PortResult<Option<BackupInfo>> {
        reachable(&lock(&self.state), region)?;
        Ok(lock(&self.state)
            .backups
            .get(backup_arn)
            .filter(|(r, _)| r == region)
            .map(|(_, b)| b.info.clone()))
    }

    async fn restore_from_backup(&self, region: &Region, backup_arn: &str, target: &str) -> PortResult<()> {
        let mut s = lock(&self.state);
        reachable(&s, region)?;
        let Some((_, backup)) = s.backups.get(backup_arn).filter(|(r, _)| r == region).cloned() else {
            return Err(PortError::NotFound(format!("backup {backup_arn} in {region}")));
        };
        let key = (region.clone(), target.to_owned());
        if s.tables.contains_key(&key) {
            return Err(PortError::AlreadyExists(format!("table {target} exists")));
        }
        let mut table = backup.table;
        target.clone_into(&mut table.info.name);
        table.info.arn = Some(format!("arn:aws:dynamodb:{region}:123456789012:table/{target}"));
        table.info.restored_from = Some(backup_arn.to_owned());
        table.info.restore_in_progress = self.slow_restores;
        table.info.status = if self.slow_restores { "CREATING" } else { "ACTIVE" }.into();
        s.tables.insert(key, table);
        s.restores += 1;
        Ok(())
    }

    async fn scan_content(&self, region: &Region, name: &str) -> PortResult<TableContent> {
        let mut s = lock(&self.state);
        reachable(&s, region)?;
        s.scans += 1;
        let t = s
            .tables
            .get(&(region.clone(), name.to_owned()))
            .ok_or_else(|| PortError::NotFound(format!("table {name} in {region}")))?;
        let mut digest = TableDigest::new();
        for item in &t.items {
            digest.add(item);
        }
        Ok(digest.content())
    }

    async fn create_backup(&self, region: &Region, table: &str, name: &str) -> PortResult<BackupInfo> {
        reachable(&lock(&self.state), region)?;
        let id = format!("named-{name}");
        let arn = format!("arn:aws:dynamodb:{region}:123456789012:table/{table}/backup/{id}");
        if let Some((_, b)) = lock(&self.state).backups.get(&arn) {
            return Ok(b.info.clone());
        }
        self.backup(region, table, &id, chrono::Utc::now())
            .ok_or_else(|| PortError::NotFound(format!("table {table} in {region}")))?;
        lock(&self.state)
            .backups
            .get(&arn)
            .map(|(_, b)| b.info.clone())
            .ok_or_else(|| PortError::NotFound(format!("backup {name}")))
    }

    async fn import_copy(&self, region: &Region, copy: &str, target: &str) -> PortResult<String> {
        let mut s = lock(&self.state);
        reachable(&s, region)?;
        // The same start again is the same import (ImportTable's client token).
        let request = format!("{copy}>{target}");
        if let Some((arn, _)) = s.imports.iter().find(|(_, (r, _, req))| r == region && *req == request) {
            return Ok(arn.clone());
        }
        let key = (region.clone(), target.to_owned());
        if s.tables.contains_key(&key) {
            return Err(PortError::AlreadyExists(format!("table {target} exists")));
        }
        let Some(mut table) = s.copies.get(&(region.clone(), copy.to_owned())).cloned() else {
            return Err(PortError::NotFound(format!("table copy {copy} in {region}")));
        };
        let arn = format!(
            "arn:aws:dynamodb:{region}:123456789012:table/{target}/import/{}",
            s.imports.len() + 1
        );
        target.clone_into(&mut table.info.name);
        table.info.arn = Some(format!("arn:aws:dynamodb:{region}:123456789012:table/{target}"));
        table.info.restored_from = None;
        table.info.restore_in_progress = false;
        table.info.status = if self.slow_restores { "CREATING" } else { "ACTIVE" }.into();
        let info = ImportInfo {
            import_arn: arn.clone(),
            status: if self.slow_restores { "IN_PROGRESS" } else { "COMPLETED" }.into(),
            table_name: Some(target.to_owned()),
            imported_items: Some(table.items.len() as u64),
            failure: None,
        };
        s.tables.insert(key, table);
        s.imports.insert(arn.clone(), (region.clone(), info, request));
        Ok(arn)
    }

    async fn describe_import(&self, region: &Region, import_arn: &str) -> PortResult<Option<ImportInfo>> {
        let s = lock(&self.state);
        reachable(&s, region)?;
        Ok(s.imports
            .get(import_arn)
            .filter(|(r, _, _)| r == region)
            .map(|(_, info, _)| info.clone()))
    }

    async fn delete_table(&self, region: &Region, name: &str) -> PortResult<()> {
        let mut s = lock(&self.state);
        reachable(&s, region)?;
        let key = (region.clone(), name.to_owned());
        match s.tables.get(&key) {
            None => Ok(()),
            Some(t) if t.info.restore_in_progress || t.info.status == "CREATING" => {
                Err(PortError::Throttled(format!("table {name} is still being restored")))
            }
            Some(_) => {
                s.tables.remove(&key);
                s.deletes.push(name.to_owned());
                Ok(())
            }
        }
    }
}

/// [`lifeboat_ports::dr::DrDatabases`] in memory: DB instances and clusters with their tags and
/// status; restores create them `available` at once (or `creating` until
/// [`InMemoryDrDatabases::finish_restores`]); every delete is recorded.
#[derive(Debug, Default)]
pub struct InMemoryDrDatabases {
    dbs: Mutex<BTreeMap<(Region, String), lifeboat_ports::dr::DbInfo>>,
    deletes: Mutex<Vec<Deleted>>,
    restores: Mutex<usize>,
    /// Writer instances created: (instance, class).
    writers: Mutex<Vec<(String, String)>>,
    /// Where final snapshots are taken (as RDS does when it deletes with one).
    snapshots: Option<std::sync::Arc<crate::InMemorySnapshotStore>>,
    /// What each snapshot records of its database; a restore from it gets the same.
    facts: Mutex<BTreeMap<(Region, String), lifeboat_domain::restore_test::Facts>>,
    /// Restores stay `creating` until [`InMemoryDrDatabases::finish_restores`].
    slow_restores: std::sync::atomic::AtomicBool,
    /// The next restore request fails with this.
    fail_next_restore: Mutex<Option<lifeboat_ports::PortError>>,
}

/// One delete: what and with which final snapshot (`None`: a throwaway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub region: Region,
    pub id: String,
    pub final_snapshot: Option<String>,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl InMemoryDrDatabases {
    pub fn new() -> Self {
        Self::default()
    }

    /// Final snapshots of deleted databases land in `snapshots`.
    pub fn with_snapshots(snapshots: std::sync::Arc<crate::InMemorySnapshotStore>) -> Self {
        Self {
            snapshots: Some(snapshots),
            ..Self::default()
        }
    }

    /// A database that exists (a source, a replica, or one that is not Lifeboat's).
    pub fn put(&self, region: &Region, kind: lifeboat_domain::ResourceKind, id: &str, tags: Vec<lifeboat_ports::Tag>) {
        guard(&self.dbs).insert(
            (region.clone(), id.to_owned()),
            lifeboat_ports::dr::DbInfo {
                kind,
                id: id.to_owned(),
                arn: Some(format!("arn:aws:rds:{region}:123456789012:db:{id}")),
                status: "available".into(),
                engine: Some("postgres".into()),
                engine_version: None,
                class: Some("db.t3.micro".into()),
                endpoint: Some(format!("{id}.{region}.rds.example")),
                tags,
                latest_restorable: None,
                backup_retention_days: None,
                placement: lifeboat_domain::dr::plan::DbPlacement::default(),
                storage_gb: None,
                encrypted: None,
                kms_key_id: None,
            },
        );
    }

    pub fn exists(&self, region: &Region, id: &str) -> bool {
        guard(&self.dbs).contains_key(&(region.clone(), id.to_owned()))
    }

    pub fn ids(&self, region: &Region) -> Vec<String> {
        guard(&self.dbs)
            .keys()
            .filter(|(r, _)| r == region)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The databases deleted, in order.
    pub fn deleted(&self) -> Vec<Deleted> {
        guard(&self.deletes).clone()
    }

    pub fn restores(&self) -> usize {
        *guard(&self.restores)
    }

    /// The writer instances created in restored clusters: (instance, class).
    pub fn writers(&self) -> Vec<(String, String)> {
        guard(&self.writers).clone()
    }

    /// Snapshot `name` in `region` records these facts of its database.
    pub fn put_snapshot_facts(&self, region: &Region, name: &str, facts: lifeboat_domain::restore_test::Facts) {
        guard(&self.facts).insert((region.clone(), name.to_owned()), facts);
    }

    /// The next restore request fails with `error` (and makes nothing).
    pub fn fail_next_restore(&self, error: lifeboat_ports::PortError) {
        *guard(&self.fail_next_restore) = Some(error);
    }

    /// Restores stay `creating` until [`Self::finish_restores`] from now on.
    pub fn slow_restores(&self) {
        self.slow_restores.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every database still `creating` becomes `available`.
    pub fn finish_restores(&self) {
        for db in guard(&self.dbs).values_mut() {
            if db.status == "creating" {
                db.status = "available".into();
            }
        }
    }

    /// Changes a database as AWS might have (a status, a fact).
    pub fn edit(&self, region: &Region, id: &str, change: impl FnOnce(&mut lifeboat_ports::dr::DbInfo)) {
        if let Some(db) = guard(&self.dbs).get_mut(&(region.clone(), id.to_owned())) {
            change(db);
        }
    }

    fn restore(&self, req: &lifeboat_ports::dr::RestoreRequest<'_>, snapshot: Option<&str>) {
        *guard(&self.restores) += 1;
        let key = (req.region.clone(), req.target.to_owned());
        if guard(&self.dbs).contains_key(&key) {
            return;
        }
        self.put(req.region, req.kind, req.target, req.tags.to_vec());
        let facts = snapshot.and_then(|name| guard(&self.facts).get(&(req.region.clone(), name.to_owned())).cloned());
        let slow = self.slow_restores.load(std::sync::atomic::Ordering::SeqCst);
        self.edit(req.region, req.target, |db| {
            if let Some(f) = facts {
                db.engine = f.engine;
                db.engine_version = f.engine_version;
                db.storage_gb = f.storage_gb;
                db.encrypted = f.encrypted;
                db.kms_key_id = f.kms_key_id;
            }
            db.class = req.class.map(str::to_owned).or(db.class.take());
            if slow {
                db.status = "creating".into();
            }
        });
    }
}

#[async_trait]
impl lifeboat_ports::dr::DrDatabases for InMemoryDrDatabases {
    async fn describe(
        &self,
        region: &Region,
        _: lifeboat_domain::ResourceKind,
        id: &str,
    ) -> PortResult<Option<lifeboat_ports::dr::DbInfo>> {
        Ok(guard(&self.dbs).get(&(region.clone(), id.to_owned())).cloned())
    }

    async fn restore_from_snapshot(
        &self,
        req: &lifeboat_ports::dr::RestoreRequest<'_>,
        snapshot: &str,
    ) -> PortResult<()> {
        if let Some(e) = guard(&self.fail_next_restore).take() {
            return Err(e);
        }
        self.restore(req, Some(snapshot));
        Ok(())
    }

    async fn restore_to_time(
        &self,
        req: &lifeboat_ports::dr::RestoreRequest<'_>,
        _: &str,
        _: chrono::DateTime<chrono::Utc>,
    ) -> PortResult<()> {
        self.restore(req, None);
        Ok(())
    }

    async fn create_cluster_instance(&self, req: &lifeboat_ports::dr::WriterRequest<'_>) -> PortResult<()> {
        let key = (req.region.clone(), req.instance.to_owned());
        if !guard(&self.dbs).contains_key(&key) {
            guard(&self.writers).push((req.instance.to_owned(), req.class.to_owned()));
            self.put(
                req.region,
                lifeboat_domain::ResourceKind::RdsInstance,
                req.instance,
                req.tags.to_vec(),
            );
        }
        Ok(())
    }

    async fn promote_replica(&self, _: &Region, _: &str) -> PortResult<()> {
        Ok(())
    }

    async fn failover_global_cluster(&self, _: &Region, _: &str, _: &str) -> PortResult<()> {
        Ok(())
    }

    async fn switchover_global_cluster(&self, _: &Region, _: &str, _: &str) -> PortResult<()> {
        Ok(())
    }

    async fn delete(
        &self,
        region: &Region,
        kind: lifeboat_domain::ResourceKind,
        id: &str,
        mode: lifeboat_ports::dr::DeleteMode<'_>,
    ) -> PortResult<()> {
        let Some(info) = guard(&self.dbs).remove(&(region.clone(), id.to_owned())) else {
            return Ok(());
        };
        let final_snapshot = match mode {
            lifeboat_ports::dr::DeleteMode::Throwaway => None,
            lifeboat_ports::dr::DeleteMode::KeepData { final_snapshot } => Some(final_snapshot.to_owned()),
        };
        if let (Some(store), Some(name)) = (&self.snapshots, &final_snapshot) {
            use lifeboat_ports::SnapshotStore as _;
            let resource = lifeboat_domain::ResourceRef {
                kind,
                id: id.to_owned(),
                arn: info.arn.clone().unwrap_or_default(),
                region: region.clone(),
            };
            store.create_snapshot(&resource, name, &info.tags).await?;
        }
        guard(&self.deletes).push(Deleted {
            region: region.clone(),
            id: id.to_owned(),
            final_snapshot,
        });
        Ok(())
    }

    async fn subnet_group_exists(&self, _: &Region, _: &str) -> PortResult<bool> {
        Ok(true)
    }

    async fn snapshot_facts(
        &self,
        region: &Region,
        _: lifeboat_domain::ResourceKind,
        name: &str,
    ) -> PortResult<Option<lifeboat_domain::restore_test::Facts>> {
        Ok(guard(&self.facts).get(&(region.clone(), name.to_owned())).cloned())
    }

    async fn quotas(&self, _: &Region) -> PortResult<Vec<lifeboat_ports::dr::Quota>> {
        Ok(Vec::new())
    }
}

/// [`lifeboat_ports::dr::Parameters`] in memory (one namespace for every region).
#[derive(Debug, Default)]
pub struct InMemoryParameters(Mutex<BTreeMap<String, String>>);

impl InMemoryParameters {
    pub fn value(&self, name: &str) -> Option<String> {
        guard(&self.0).get(name).cloned()
    }
}

#[async_trait]
impl lifeboat_ports::dr::Parameters for InMemoryParameters {
    async fn get(&self, _: &Region, name: &str) -> PortResult<Option<String>> {
        Ok(guard(&self.0).get(name).cloned())
    }
    async fn put(&self, _: &Region, name: &str, value: &str) -> PortResult<()> {
        guard(&self.0).insert(name.into(), value.into());
        Ok(())
    }
    async fn delete(&self, _: &Region, name: &str) -> PortResult<()> {
        guard(&self.0).remove(name);
        Ok(())
    }
}

/// [`lifeboat_ports::dr::DnsRecords`] in memory (one namespace for every zone), or failing every
/// change (Route 53 unavailable).
#[derive(Debug, Default)]
pub struct InMemoryDns {
    records: Mutex<BTreeMap<String, String>>,
    failing: std::sync::atomic::AtomicBool,
}

impl InMemoryDns {
    pub fn value(&self, name: &str) -> Option<String> {
        guard(&self.records).get(name).cloned()
    }

    /// Every later change fails until turned off again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl lifeboat_ports::dr::DnsRecords for InMemoryDns {
    async fn cname(&self, _: &str, name: &str) -> PortResult<Option<String>> {
        Ok(guard(&self.records).get(name).cloned())
    }
    async fn upsert_cname(&self, _: &str, name: &str, value: &str, _: i64) -> PortResult<()> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Throttled("Route 53: PriorRequestNotComplete".into()));
        }
        guard(&self.records).insert(name.into(), value.into());
        Ok(())
    }
    async fn delete_cname(&self, _: &str, name: &str, _: &str, _: i64) -> PortResult<()> {
        guard(&self.records).remove(name);
        Ok(())
    }
}

/// [`lifeboat_ports::dr::Reports`] in memory, or failing every write (a missing bucket).
#[derive(Debug, Default)]
pub struct InMemoryReports {
    reports: Mutex<BTreeMap<String, serde_json::Value>>,
    failing: std::sync::atomic::AtomicBool,
}

impl InMemoryReports {
    pub fn get(&self, key: &str) -> Option<serde_json::Value> {
        guard(&self.reports).get(key).cloned()
    }

    /// Every later write fails (the bucket is gone) until turned off again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl lifeboat_ports::dr::Reports for InMemoryReports {
    async fn put(&self, key: &str, body: &[u8]) -> PortResult<String> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::NotFound("bucket reports: NoSuchBucket".into()));
        }
        let value = serde_json::from_slice(body).map_err(|e| PortError::Invalid(e.to_string()))?;
        guard(&self.reports).insert(key.into(), value);
        Ok(format!("s3://reports/{key}"))
    }
}

/// A validation function in memory ([`lifeboat_ports::lambda::Invoker`]): answers
/// `answer` (a function error when `Err`) and records every payload.
#[derive(Debug)]
pub struct RecordingValidationLambda {
    answer: Mutex<Result<serde_json::Value, String>>,
    calls: Mutex<Vec<(String, serde_json::Value)>>,
}

impl Default for RecordingValidationLambda {
    fn default() -> Self {
        Self {
            answer: Mutex::new(Ok(serde_json::json!({"ok": true}))),
            calls: Mutex::new(Vec::new()),
        }
    }
}

impl RecordingValidationLambda {
    /// Every later invocation answers `answer`.
    pub fn answer(&self, answer: Result<serde_json::Value, String>) {
        *guard(&self.answer) = answer;
    }

    /// (function ARN, payload) of every invocation, in order.
    pub fn calls(&self) -> Vec<(String, serde_json::Value)> {
        guard(&self.calls).clone()
    }
}

#[async_trait]
impl lifeboat_ports::lambda::Invoker for RecordingValidationLambda {
    async fn invoke(&self, function_arn: &str, payload: &[u8]) -> PortResult<lifeboat_ports::lambda::Invocation> {
        let payload = serde_json::from_slice(payload)
            .map_err(|e| lifeboat_ports::PortError::Invalid(format!("payload is not JSON: {e}")))?;
        guard(&self.calls).push((function_arn.to_owned(), payload));
        Ok(match guard(&self.answer).clone() {
            Ok(v) => lifeboat_ports::lambda::Invocation {
                function_error: None,
                payload: v.to_string().into_bytes(),
            },
            Err(text) => lifeboat_ports::lambda::Invocation {
                function_error: Some("Unhandled".into()),
                payload: text.into_bytes(),
            },
        })
    }

    async fn invoke_async(&self, function_arn: &str, _: &[u8]) -> PortResult<()> {
        Err(lifeboat_ports::PortError::Invalid(format!(
            "{function_arn} is a validation function: it is invoked and waited for"
        )))
    }
}
