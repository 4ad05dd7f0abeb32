//! Archiving a bundle in the vault: uploaded with Lifeboat's tree hash, recorded, or
//! refused (and alerted) when the bundle fails its check.

use super::{
    Alert, AlertKind, ArchiveRef, ArchivedView, DateTime, Deps, FunctionError, KEPT, LEASE, PortError, RecoveryPoint,
    RecoveryPointId, Refusal, Report, RunLog, Severity, Status, Utc, VerificationFailure, bundle_description,
    has_bundle, load, parse_id, points_in, raise, read_all, record, sha256_hex,
};

pub(crate) enum Outcome {
    Archived(ArchivedView),
    Already,
    Busy,
    Refused { reason: String, alerted: bool },
}

pub(crate) async fn archive(
    deps: &Deps,
    one: Option<&str>,
    limit: Option<usize>,
    run_id: &str,
    stop_at: Option<DateTime<Utc>>,
    log: &mut RunLog,
) -> Result<Report, FunctionError> {
    let mut report = Report::new("archive", run_id);
    let region = &deps.settings.region;
    let candidates = if let Some(id) = one {
        let rp = load(deps, &parse_id(id)?).await?;
        if !has_bundle(&rp, region) {
            return Err(FunctionError::invalid(format!(
                "{} has no bundle to archive here: only S3 run manifests and config bundles in {region} are archived",
                rp.id
            )));
        }
        if rp.archive().is_none() && !matches!(rp.status, Status::Available | Status::Copying | Status::Copied) {
            return Err(FunctionError::new(
                lifeboat::ErrorType::Conflict,
                format!(
                    "{} is {}; only available recovery points are archived",
                    rp.id, rp.status
                ),
            ));
        }
        vec![rp]
    } else {
        let mut all = points_in(deps.catalog.as_ref(), &KEPT).await?;
        all.retain(|p| has_bundle(p, region) && p.archive().is_none() && p.verification_failed.is_none());
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    };
    let limit = limit.unwrap_or(deps.settings.batch);
    let total = candidates.len();
    for (i, rp) in candidates.into_iter().enumerate() {
        if i >= limit || stop_at.is_some_and(|t| deps.clock.now() >= t) {
            report.remaining = total - i;
            break;
        }
        let id = rp.id.clone();
        match archive_one(deps, rp, run_id).await? {
            Outcome::Archived(view) => {
                log.action(
                    "archived",
                    id.as_str(),
                    format!("{} bytes as {}", view.size, view.archive_id),
                );
                report.archived.push(view);
            }
            Outcome::Already => {
                log.action("already-archived", id.as_str(), "skipped");
                report.already_archived.push(id);
            }
            Outcome::Busy => {
                log.action("busy", id.as_str(), "another run holds its lease");
                report.busy.push(id);
            }
            Outcome::Refused { reason, alerted } => {
                report.alerts += usize::from(alerted);
                if one.is_some() {
                    return Err(FunctionError::new(lifeboat::ErrorType::Conflict, reason));
                }
                log.action("refused", id.as_str(), reason.clone());
                report.refused.push(Refusal {
                    recovery_point: id,
                    reason,
                });
            }
        }
    }
    Ok(report)
}

/// Archives one bundle under its lease (released at the end, whatever happened).
pub(crate) async fn archive_one(deps: &Deps, rp: RecoveryPoint, run_id: &str) -> Result<Outcome, FunctionError> {
    if rp.archive().is_some() {
        return Ok(Outcome::Already);
    }
    let lease = format!("archive#{}", rp.id);
    let now = deps.clock.now();
    if !deps.catalog.acquire_lease(&lease, run_id, now + LEASE, now).await? {
        return Ok(Outcome::Busy);
    }
    let result = archive_leased(deps, &rp.id, run_id).await;
    if let Err(e) = deps.catalog.release_lease(&lease, run_id).await {
        tracing::warn!(error = %e, lease, "could not release the archive lease; it expires by itself");
    }
    result
}

pub(crate) async fn archive_leased(deps: &Deps, id: &RecoveryPointId, run_id: &str) -> Result<Outcome, FunctionError> {
    // Read again under the lease: an earlier holder may have finished meanwhile.
    let rp = load(deps, id).await?;
    let Some(mref) = rp.manifest().cloned() else {
        return Ok(Outcome::Refused {
            reason: format!("{id} has no bundle"),
            alerted: false,
        });
    };
    if rp.archive().is_some() {
        return Ok(Outcome::Already);
    }
    let bytes = match read_all(
        deps.backup.as_ref(),
        &mref.backup_bucket,
        &mref.key,
        deps.settings.max_bytes,
    )
    .await
    {
        Ok(b) => Some(b),
        Err(PortError::NotFound(_)) => None,
        Err(PortError::Invalid(m)) => {
            // Too large for this function's memory: not archived, not corrupt.
            return Ok(Outcome::Refused {
                reason: format!("{id}: {m} (ARCHIVE_MAX_BYTES); not archived"),
                alerted: false,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let problem = match &bytes {
        None => Some(format!(
            "the bundle {} is missing from {}",
            mref.key, mref.backup_bucket
        )),
        Some(b) if !sha256_hex(b).eq_ignore_ascii_case(&mref.sha256) => {
            Some(format!("the bundle {} does not match its recorded SHA-256", mref.key))
        }
        Some(_) => None,
    };
    let (Some(bytes), None) = (bytes, &problem) else {
        let problem = problem.unwrap_or_default();
        let alerted = refuse(deps, &rp, &problem, run_id).await?;
        return Ok(Outcome::Refused {
            reason: format!("{id}: {problem}; not archived"),
            alerted,
        });
    };

    let settings = &deps.settings;
    let description = bundle_description(id, &mref.sha256);
    let archived = deps.vault.upload(&settings.vault, &description, bytes).await?;
    let now = deps.clock.now();
    let archive = ArchiveRef {
        vault: settings.vault.clone(),
        region: settings.region.clone(),
        archive_id: archived.archive_id.clone(),
        tree_hash: archived.tree_hash.to_hex(),
        sha256: mref.sha256.to_lowercase(),
        size: archived.size,
        parts: archived.parts,
        archived_at: now,
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
    .await;
    match recorded {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::warn!(recovery_point = %id, archive_id = %archived.archive_id, "recovery point archived by another run meanwhile; this archive is not recorded");
            return Ok(Outcome::Already);
        }
        Err(e) => {
            tracing::error!(recovery_point = %id, archive_id = %archived.archive_id, vault = %settings.vault, error = %e, "archive uploaded but not recorded; a rerun archives the bundle again");
            return Err(e);
        }
    }
    tracing::info!(recovery_point = %id, archive_id = %archived.archive_id, bytes = archived.size, parts = archived.parts, "bundle archived");
    Ok(Outcome::Archived(ArchivedView {
        recovery_point: id.clone(),
        archive_id: archived.archive_id,
        tree_hash: archive.tree_hash,
        size: archived.size,
        parts: archived.parts,
    }))
}

/// A bundle that is missing or corrupt: one alert, then the point is marked unverified
/// (so verification and later archive runs see it). Returns whether this call alerted.
pub(crate) async fn refuse(
    deps: &Deps,
    rp: &RecoveryPoint,
    problem: &str,
    run_id: &str,
) -> Result<bool, FunctionError> {
    let now = deps.clock.now();
    let alert = Alert::new(
        AlertKind::VerificationFailed,
        Severity::Critical,
        format!("{}: bundle not archived: {problem}", rp.id),
        format!(
            "archive-refused#{}#{}",
            rp.id,
            rp.manifest().map_or("", |m| m.sha256.as_str())
        ),
        now,
    )
    .resource(&rp.resource.arn)
    .recovery_point(&rp.id)
    .location(&rp.location)
    .detail("problem", problem);
    let alerted = raise(deps, alert, run_id).await?;
    let key = rp.manifest().map_or_else(String::new, |m| m.key.clone());
    record(deps, &rp.id, |current| {
        Some(RecoveryPoint {
            verified_at: None,
            verification_failed: Some(VerificationFailure {
                at: now,
                checked: 1,
                problems: vec![format!("manifest: {key}")],
            }),
            ..current.clone()
        })
    })
    .await?;
    Ok(alerted)
}

// --- retrieve --------------------------------------------------------------------------
