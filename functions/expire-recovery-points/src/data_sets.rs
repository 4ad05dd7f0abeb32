//! Expiring the runs of data sets: an S3 backup run and a config bundle are files in the
//! backup bucket, not snapshots.
//!
//! **S3 runs share copies.** An incremental run's manifest names, for an unchanged object,
//! the copy an earlier run made: one copy serves many runs. Expiring a run deletes only the
//! copies no other run of the data set still references (every run not `expiring` or
//! `expired`, read from their manifests), each by the version the manifest (and a tier
//! move's ledger) names, then the run's manifest. Only keys under `lifeboat/` are ever
//! deleted, so a manifest can never point the expiry at the user's data.
//!
//! **Locks hold.** S3 refuses to delete a version under Object Lock retention or legal
//! hold; such a copy is left where it is, the run stays `expiring`, and the next run tries
//! again (the record's own `locked_until` keeps it out of the plan until its copies'
//! retention has lapsed, so this is rare). A copy already gone counts as deleted: a run
//! that crashed half-way resumes where it stopped.
//!
//! A config bundle is one sealed envelope: its current version is deleted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use lifeboat::object_store::runs::{load_manifest, resolve_tiers};
use lifeboat_domain::manifest::Manifest;
use lifeboat_domain::{RecoveryPoint, RecoveryPointId, ResourceKind, Status};
use lifeboat_ports::objects::ObjectStore;
use lifeboat_ports::{Catalog, PortError, PortResult};

/// Every key Lifeboat writes in the backup bucket starts with this.
pub const OWNED_PREFIX: &str = "lifeboat/";

/// Every run of a data set is read when one expires (however many there are): a copy an
/// old run kept by a long retention (a monthly, a yearly) references must never go.
const ALL_RUNS: usize = 1_000_000;

/// The backup region's S3 (where data sets' runs are kept).
#[derive(Clone)]
pub struct BackupStore(pub Arc<dyn ObjectStore>);

impl std::fmt::Debug for BackupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupStore")
    }
}

/// What deleting a data set's run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Copy versions deleted (or found already gone).
    pub copies: u64,
    /// Copies left because a run still kept references them.
    pub shared: u64,
    /// Versions S3 refused to delete (Object Lock retention, legal hold): the run stays
    /// `expiring` until they can go. The first few, as `key (version)`.
    pub locked: Vec<String>,
    pub locked_count: u64,
}

/// The keys each run's manifest references, read once per invocation.
#[derive(Debug, Default)]
pub struct KeyCache(HashMap<RecoveryPointId, Arc<HashSet<String>>>);

impl KeyCache {
    async fn keys(&mut self, store: &dyn ObjectStore, run: &RecoveryPoint) -> PortResult<Arc<HashSet<String>>> {
        if let Some(k) = self.0.get(&run.id) {
            return Ok(Arc::clone(k));
        }
        let Some(mref) = run.manifest() else {
            return Ok(Arc::default());
        };
        let manifest = read(store, mref).await?;
        let keys: Arc<HashSet<String>> = Arc::new(manifest.entries.into_iter().map(|e| e.backup_key).collect());
        self.0.insert(run.id.clone(), Arc::clone(&keys));
        Ok(keys)
    }
}

async fn read(store: &dyn ObjectStore, mref: &lifeboat_domain::manifest::ManifestRef) -> PortResult<Manifest> {
    load_manifest(store, mref).await.map_err(|e| match e {
        lifeboat::object_store::runs::ManifestReadError::Port(p) => p,
        lifeboat::object_store::runs::ManifestReadError::Bad(b) => {
            PortError::Invalid(format!("manifest {} cannot be trusted: {b}", mref.key))
        }
    })
}

/// Deletes what an `expiring` data-set run alone holds. `Ok` with `locked` non-empty
/// means some versions must wait; the caller leaves the run `expiring`.
pub async fn delete_run(
    store: &dyn ObjectStore,
    catalog: &dyn Catalog,
    rp: &RecoveryPoint,
    cache: &mut KeyCache,
) -> PortResult<Deleted> {
    match rp.resource.kind {
        ResourceKind::S3Prefix => delete_s3_run(store, catalog, rp, cache).await,
        ResourceKind::ConfigBundle => {
            let mut done = Deleted::default();
            if let Some(mref) = rp.manifest() {
                delete_current(store, &mref.backup_bucket, &mref.key, &mut done).await?;
            }
            Ok(done)
        }
        ResourceKind::RdsInstance | ResourceKind::AuroraCluster | ResourceKind::DynamoDbTable => Err(
            PortError::Invalid(format!("{} is a snapshot, not a data-set run", rp.id)),
        ),
    }
}

async fn delete_s3_run(
    store: &dyn ObjectStore,
    catalog: &dyn Catalog,
    rp: &RecoveryPoint,
    cache: &mut KeyCache,
) -> PortResult<Deleted> {
    let mut done = Deleted::default();
    let Some(mref) = rp.manifest() else {
        return Ok(done);
    };
    let manifest = match read(store, mref).await {
        Ok(m) => m,
        // Deleted last: a run whose manifest is gone had all its copies deleted already.
        Err(PortError::NotFound(_)) => return Ok(done),
        Err(e) => return Err(e),
    };
    // The versions a tier move made since (the same keys, newer versions).
    let mut current = manifest.entries.clone();
    resolve_tiers(store, catalog, &rp.location, &mref.backup_bucket, &mut current)
        .await
        .map_err(|e| match e {
            lifeboat::object_store::runs::ManifestReadError::Port(p) => p,
            lifeboat::object_store::runs::ManifestReadError::Bad(b) => {
                PortError::Invalid(format!("a tier ledger of {} cannot be trusted: {b}", rp.id))
            }
        })?;

    // Every other run of the data set that is not on its way out keeps its copies.
    let mut kept: Vec<Arc<HashSet<String>>> = Vec::new();
    for other in catalog.by_resource(&rp.resource.arn, ALL_RUNS).await? {
        let leaving = matches!(other.status, Status::Expiring | Status::Expired);
        if other.id == rp.id || leaving || other.manifest().is_none() {
            continue;
        }
        kept.push(cache.keys(store, &other).await?);
    }
    let referenced = |key: &str| kept.iter().any(|k| k.contains(key));

    // What this run alone holds, all checked before anything is deleted.
    let mut doomed: Vec<(&str, BTreeSet<&str>)> = Vec::new();
    for (entry, now) in manifest.entries.iter().zip(&current) {
        if referenced(&entry.backup_key) {
            done.shared += 1;
            continue;
        }
        if !entry.backup_key.starts_with(OWNED_PREFIX) {
            return Err(PortError::Invalid(format!(
                "manifest of {} names {:?}, outside {OWNED_PREFIX}: nothing of this run is deleted",
                rp.id, entry.backup_key
            )));
        }
        let versions: BTreeSet<&str> = [entry.backup_version_id.as_deref(), now.backup_version_id.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if versions.is_empty() {
            // Without a version id, a delete would only add a delete marker.
            done.shared += 1;
            continue;
        }
        doomed.push((entry.backup_key.as_str(), versions));
    }
    for (key, versions) in doomed {
        for v in versions {
            delete_version(store, &mref.backup_bucket, key, v, &mut done).await?;
        }
    }
    if done.locked.is_empty() {
        delete_current(store, &mref.backup_bucket, &mref.key, &mut done).await?;
    }
    Ok(done)
}

async fn delete_version(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    version: &str,
    done: &mut Deleted,
) -> PortResult<()> {
    match store.delete(bucket, key, Some(version)).await {
        Ok(()) | Err(PortError::NotFound(_)) => done.copies += 1,
        Err(PortError::InvalidState(_)) => {
            done.locked_count += 1;
            if done.locked.len() < 5 {
                done.locked.push(format!("{key} ({version})"));
            }
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Deletes the current version of `key` (a manifest, an envelope), if any; it is not
/// counted as a copy.
async fn delete_current(store: &dyn ObjectStore, bucket: &str, key: &str, done: &mut Deleted) -> PortResult<()> {
    if !key.starts_with(OWNED_PREFIX) {
        return Err(PortError::Invalid(format!(
            "{key:?} is outside {OWNED_PREFIX}: not deleted"
        )));
    }
    let Some(version) = store.head(bucket, key, None).await?.and_then(|h| h.version_id) else {
        return Ok(());
    };
    let copies = done.copies;
    delete_version(store, bucket, key, &version, done).await?;
    done.copies = copies;
    Ok(())
}
