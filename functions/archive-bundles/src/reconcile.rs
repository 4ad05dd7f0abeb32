//! `{"mode": "reconcile"}`: squares the vault with the catalog after crashes.
//!
//! An archive run that crashes (or loses its catalog write) between Glacier's answer and
//! the recovery point's record leaves an archive nobody knows; the next run uploads the
//! bundle again. Every archive Lifeboat uploads is described by its recovery point and
//! the bundle's SHA-256, so a vault inventory tells them apart. Reconciliation uses the
//! newest inventory Glacier still holds (any inventory-retrieval job of the vault, whoever
//! started it; one is started when there is none, and the call answers `in_progress`
//! until it is ready, about four hours on AWS). Then, for each kept recovery point with a
//! bundle in this region:
//! - archived: another archive with its description and the recorded tree hash and size
//!   is a duplicate and is deleted; one with the description but other bytes is left and
//!   reported (`unmatched`), never deleted;
//! - not archived: under the point's archive lease, the bundle is read, its SHA-256 checked
//!   against the catalog and its tree hash computed; an archive with that tree hash and
//!   size is adopted into the record (no upload), further identical ones are deleted.
//!
//! Archives uploaded after the inventory was taken are not in it and are left alone; a
//! later reconciliation sees them.

use std::collections::HashMap;

use lifeboat::FunctionError;
use lifeboat::app::RunLog;
use lifeboat::object_store::read_all;
use lifeboat::object_store::runs::{KEPT, points_in};
use lifeboat_domain::archive::ArchiveRef;
use lifeboat_domain::manifest::sha256_hex;
use lifeboat_domain::tree_hash::tree_hash;
use lifeboat_domain::{RecoveryPoint, RecoveryPointId};
use lifeboat_ports::PortError;
use lifeboat_ports::vault::{InventoryEntry, InventoryJob, JobStatus};

use super::{ArchivedView, Deps, LEASE, Report, bundle_description, has_bundle, load, record};

/// Glacier keeps a job's output for about 24 hours after it completes: one older than
/// this is not used.
const OUTPUT_KEPT_FOR: chrono::Duration = chrono::Duration::hours(20);

pub(crate) async fn reconcile(deps: &Deps, run_id: &str, log: &mut RunLog) -> Result<Report, FunctionError> {
    let mut report = Report::new("reconcile", run_id);
    let vault = deps.settings.vault.as_str();
    let now = deps.clock.now();
    let jobs = deps.vault.inventory_jobs(vault).await?;
    let usable = |j: &&InventoryJob| j.completed_at.is_none_or(|t| now - t < OUTPUT_KEPT_FOR);
    let ready = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Succeeded)
        .filter(usable)
        .max_by_key(|j| j.completed_at);
    let Some(ready) = ready else {
        let job_id = if let Some(j) = jobs.iter().find(|j| j.status == JobStatus::InProgress) {
            j.job_id.clone()
        } else {
            let id = deps.vault.start_inventory(vault).await?;
            log.action("inventory", vault, format!("started job {id}"));
            id
        };
        report.inventory_job = Some(job_id);
        report.in_progress = true;
        return Ok(report);
    };
    report.inventory_job = Some(ready.job_id.clone());
    let entries = deps.vault.inventory(vault, &ready.job_id).await?;
    let mut by_description: HashMap<&str, Vec<&InventoryEntry>> = HashMap::new();
    for e in &entries {
        by_description.entry(e.description.as_str()).or_default().push(e);
    }
    let region = &deps.settings.region;
    let mut points = points_in(deps.catalog.as_ref(), &KEPT).await?;
    points.retain(|p| has_bundle(p, region));
    points.sort_by(|a, b| a.id.cmp(&b.id));
    for rp in points {
        let Some(mref) = rp.manifest().cloned() else { continue };
        let Some(found) = by_description.get(bundle_description(&rp.id, &mref.sha256).as_str()) else {
            continue;
        };
        match rp.archive() {
            Some(a) if a.vault == vault => {
                for e in found.iter().filter(|e| e.archive_id != a.archive_id) {
                    if e.tree_hash.eq_ignore_ascii_case(&a.tree_hash) && e.size == a.size {
                        if deps.vault.delete_archive(vault, &e.archive_id).await? {
                            log.action("duplicate-deleted", rp.id.as_str(), e.archive_id.clone());
                            report.duplicates_deleted.push(e.archive_id.clone());
                        }
                    } else {
                        tracing::warn!(recovery_point = %rp.id, archive_id = %e.archive_id, "an archive described as this bundle holds other bytes: left in the vault");
                        report.unmatched.push(e.archive_id.clone());
                    }
                }
            }
            Some(_) => {}
            None => adopt(deps, &rp.id, found, run_id, log, &mut report).await?,
        }
    }
    Ok(report)
}

/// Adopts an archive of `id`'s bundle found in the inventory, under the point's archive
/// lease (an archive run of the same point waits, and then finds it archived).
async fn adopt(
    deps: &Deps,
    id: &RecoveryPointId,
    found: &[&InventoryEntry],
    run_id: &str,
    log: &mut RunLog,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let lease = format!("archive#{id}");
    let now = deps.clock.now();
    if !deps.catalog.acquire_lease(&lease, run_id, now + LEASE, now).await? {
        report.busy.push(id.clone());
        return Ok(());
    }
    let result = adopt_leased(deps, id, found, log, report).await;
    if let Err(e) = deps.catalog.release_lease(&lease, run_id).await {
        tracing::warn!(error = %e, lease, "could not release the archive lease; it expires by itself");
    }
    result
}

async fn adopt_leased(
    deps: &Deps,
    id: &RecoveryPointId,
    found: &[&InventoryEntry],
    log: &mut RunLog,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let rp: RecoveryPoint = load(deps, id).await?;
    let (Some(mref), None) = (rp.manifest(), rp.archive()) else {
        return Ok(());
    };
    let bytes = match read_all(
        deps.backup.as_ref(),
        &mref.backup_bucket,
        &mref.key,
        deps.settings.max_bytes,
    )
    .await
    {
        Ok(b) => b,
        // Missing, or too large to read here: the archive run reports it.
        Err(PortError::NotFound(_) | PortError::Invalid(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !sha256_hex(&bytes).eq_ignore_ascii_case(&mref.sha256) {
        return Ok(());
    }
    let tree = tree_hash(&bytes).to_hex();
    let size = bytes.len() as u64;
    let same: Vec<&InventoryEntry> = found
        .iter()
        .copied()
        .filter(|e| e.tree_hash.eq_ignore_ascii_case(&tree) && e.size == size)
        .collect();
    let Some((keep, others)) = same.split_first() else {
        report.unmatched.extend(found.iter().map(|e| e.archive_id.clone()));
        return Ok(());
    };
    let vault = deps.settings.vault.clone();
    let archive = ArchiveRef {
        vault: vault.clone(),
        region: deps.settings.region.clone(),
        archive_id: keep.archive_id.clone(),
        tree_hash: tree.clone(),
        sha256: mref.sha256.to_lowercase(),
        size,
        // The inventory does not say how the archive was uploaded.
        parts: 1,
        archived_at: keep.created_at.unwrap_or_else(|| deps.clock.now()),
        retrieval: None,
    };
    let recorded = record(deps, id, |current| {
        if current.archive().is_some() {
            return None;
        }
        let mut next = current.clone();
        next.objects_mut()?.archive = Some(archive.clone());
        Some(next)
    })
    .await?;
    if recorded.is_none() {
        return Ok(());
    }
    log.action("adopted", id.as_str(), keep.archive_id.clone());
    report.adopted.push(ArchivedView {
        recovery_point: id.clone(),
        archive_id: keep.archive_id.clone(),
        tree_hash: tree,
        size,
        parts: 1,
    });
    for e in others {
        if deps.vault.delete_archive(&vault, &e.archive_id).await? {
            log.action("duplicate-deleted", id.as_str(), e.archive_id.clone());
            report.duplicates_deleted.push(e.archive_id.clone());
        }
    }
    Ok(())
}
