//! What the S3 functions share about backup runs: reading a run's manifest back (checked
//! against the catalog) and the runs of a resource.

use std::collections::BTreeSet;

use crate::object_store::read_all;
use lifeboat_domain::manifest::{Manifest, ManifestEntry, ManifestError, ManifestRef, sha256_hex};
use lifeboat_domain::tiering::Ledger;
use lifeboat_domain::{RecoveryPoint, RecoveryPointId, Region, ResourceKind, Status};
use lifeboat_ports::objects::ObjectStore;
use lifeboat_ports::{Catalog, PortError, PortResult};

/// The largest manifest read back (compressed).
pub const MAX_MANIFEST_BYTES: u64 = 512 * 1024 * 1024;
/// How many recent runs of a resource are considered.
pub const RUN_WINDOW: usize = 500;

/// Why a manifest could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestReadError {
    #[error(transparent)]
    Port(#[from] PortError),
    /// The stored manifest is not what the catalog recorded, or not a manifest at all.
    #[error(transparent)]
    Bad(#[from] ManifestError),
}

/// Reads and checks the manifest a catalog record points at.
pub async fn load_manifest(store: &dyn ObjectStore, mref: &ManifestRef) -> Result<Manifest, ManifestReadError> {
    let bytes = match read_all(store, &mref.backup_bucket, &mref.key, MAX_MANIFEST_BYTES).await {
        Ok(bytes) => bytes,
        // Damaged at rest: a bad manifest like one failing its SHA-256, not a failed read.
        Err(PortError::Corrupt(m)) => return Err(ManifestError::StoreChecksum(m).into()),
        Err(e) => return Err(e.into()),
    };
    Ok(Manifest::decode_verified(&bytes, &mref.sha256)?)
}

/// Reads a run's manifest and points each copy that has changed storage class since at
/// its current version and class (through the moving run's tier ledger, checked against
/// the catalog). `location` is the backup region the runs are cataloged in.
pub async fn load_current_manifest(
    store: &dyn ObjectStore,
    catalog: &dyn Catalog,
    location: &Region,
    mref: &ManifestRef,
) -> Result<Manifest, ManifestReadError> {
    let mut manifest = load_manifest(store, mref).await?;
    resolve_tiers(store, catalog, location, &mref.backup_bucket, &mut manifest.entries).await?;
    Ok(manifest)
}

/// Applies the tier ledgers of the runs that made `entries`' copies.
pub async fn resolve_tiers(
    store: &dyn ObjectStore,
    catalog: &dyn Catalog,
    location: &Region,
    backup_bucket: &str,
    entries: &mut [ManifestEntry],
) -> Result<(), ManifestReadError> {
    let runs: BTreeSet<&str> = entries.iter().map(|e| e.copied_in.as_str()).collect();
    let ids: Vec<RecoveryPointId> = runs
        .into_iter()
        .map(|r| RecoveryPointId::new(location, ResourceKind::S3Prefix, r))
        .collect();
    let mut ledgers = Vec::new();
    for rp in catalog.get_many(&ids).await? {
        let Some(t) = rp.tiering().cloned() else { continue };
        let bytes = read_all(store, backup_bucket, &t.ledger_key, MAX_MANIFEST_BYTES).await?;
        let actual = sha256_hex(&bytes);
        if actual != t.ledger_sha256 {
            return Err(ManifestError::Checksum {
                expected: t.ledger_sha256,
                actual,
            }
            .into());
        }
        ledgers.push(Ledger::decode(&bytes)?);
    }
    for l in &ledgers {
        l.apply(entries);
    }
    Ok(())
}

/// Statuses whose recovery points still hold their data.
pub const KEPT: [Status; 3] = [Status::Available, Status::Copying, Status::Copied];

/// Every recovery point in one of `statuses`, of every resource and location.
pub async fn points_in(catalog: &dyn Catalog, statuses: &[Status]) -> PortResult<Vec<RecoveryPoint>> {
    let mut all = Vec::new();
    for status in statuses {
        all.extend(catalog.by_status(*status).await?);
    }
    Ok(all)
}

/// Every S3 backup run the catalog keeps, of every protected bucket/prefix and location.
pub async fn kept_runs(catalog: &dyn Catalog) -> PortResult<Vec<RecoveryPoint>> {
    let mut runs = points_in(catalog, &KEPT).await?;
    runs.retain(|p| p.resource.kind == ResourceKind::S3Prefix && p.manifest().is_some());
    Ok(runs)
}

/// The completed backup runs of a resource, newest first.
pub async fn completed_runs(catalog: &dyn Catalog, resource_arn: &str) -> PortResult<Vec<RecoveryPoint>> {
    let mut points: Vec<RecoveryPoint> = catalog
        .by_resource(resource_arn, RUN_WINDOW)
        .await?
        .into_iter()
        .filter(|p| p.manifest().is_some() && p.is_restorable())
        .collect();
    points.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok(points)
}
