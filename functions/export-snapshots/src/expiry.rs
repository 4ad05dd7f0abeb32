//! Expiring exports whose recovery point is gone: only Lifeboat's own objects, only
//! versions nothing holds.

use super::{
    BTreeMap, DateTime, Deps, Expired, ExportManifest, ExportRecord, ExportRule, ExportStatus, FunctionError,
    MAX_MANIFEST_BYTES, META_SUPERSEDED, PolicyName, PortError, RecoveryPoint, Report, Utc, Waiting, is_data_object,
    list_all, meta, save_export,
};

/// Deletes the objects of archived exports kept their policy's `keep` (a policy without
/// `keep` keeps them), after re-checking the age, the recovery point's holds and every
/// object's lock and legal hold: one object that may not go keeps the whole export.
pub(crate) async fn expire(
    deps: &Deps,
    points: &[RecoveryPoint],
    rules: &BTreeMap<PolicyName, ExportRule>,
    dry_run: bool,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let now = deps.clock.now();
    for rp in points {
        let (Some(e), Some(keep)) = (rp.export(), rules.get(&rp.policy).and_then(|r| r.keep)) else {
            continue;
        };
        let Some(due) = e.expires_at(keep).filter(|at| *at <= now) else {
            continue;
        };
        let kept = |reason: String| Waiting {
            resource: rp.resource.arn.clone(),
            reason: format!(
                "export {} of {} (kept until {}): {reason}",
                e.task_id,
                rp.id,
                due.format("%Y-%m-%d")
            ),
        };
        if rp.holds.legal_hold {
            report.kept.push(kept("the recovery point is under legal hold".into()));
            continue;
        }
        if let Some(until) = rp.holds.locked_until.filter(|u| *u > now) {
            report.kept.push(kept(format!(
                "the recovery point is locked until {}",
                until.format("%Y-%m-%d")
            )));
            continue;
        }
        if let Some(by) = &rp.holds.in_use_by {
            report.kept.push(kept(format!("the recovery point is in use by {by}")));
            continue;
        }
        let versions = match deletable_versions(deps, e, now).await? {
            Ok(v) => v,
            Err(reason) => {
                report.kept.push(kept(reason));
                continue;
            }
        };
        let mut expired = Expired {
            recovery_point: rp.id.clone(),
            task_id: e.task_id.clone(),
            archived_at: e.archived_at,
            deleted: versions.len() as u64,
        };
        if dry_run {
            report.expired.push(expired);
            continue;
        }
        let mut deleted = 0;
        for (key, version) in &versions {
            match deps.backup.delete(&e.bucket, key, version.as_deref()).await {
                Ok(()) => deleted += 1,
                // Locked since the check: the export stays archived; a later run retries.
                Err(PortError::InvalidState(m)) => {
                    report.kept.push(kept(format!("{key}: {m}")));
                }
                Err(other) => return Err(other.into()),
            }
        }
        expired.deleted = deleted;
        if deleted < versions.len() as u64 {
            continue;
        }
        let task = e.task_id.clone();
        save_export(deps, &rp.id, |current| {
            let mut x = current?.clone();
            (x.task_id == task && x.status == ExportStatus::Archived).then(|| {
                x.status = ExportStatus::Expired;
                x.expired_at = Some(now);
                x
            })
        })
        .await?;
        tracing::info!(recovery_point = %rp.id, task_id = %e.task_id, deleted, "export expired");
        report.expired.push(expired);
    }
    Ok(())
}

/// Every object version of an export that expiry deletes (the manifest's data versions,
/// the versions they superseded, RDS's JSON descriptions), or why none may go now.
pub(crate) async fn deletable_versions(
    deps: &Deps,
    e: &ExportRecord,
    now: DateTime<Utc>,
) -> Result<Result<Vec<(String, Option<String>)>, String>, FunctionError> {
    let (Some(key), Some(sha)) = (&e.manifest_key, &e.manifest_sha256) else {
        return Ok(Err("no manifest is recorded; nothing is deleted without one".into()));
    };
    let bytes = lifeboat::object_store::read_all(deps.backup.as_ref(), &e.bucket, key, MAX_MANIFEST_BYTES).await?;
    let manifest = match ExportManifest::decode(&bytes, sha) {
        Ok(m) => m,
        Err(why) => return Ok(Err(format!("its manifest {key} failed its check ({why})"))),
    };
    let blocked =
        |h: &lifeboat_ports::objects::ObjectHead| h.legal_hold || h.lock.as_ref().is_some_and(|l| l.retain_until > now);
    let mut out = Vec::new();
    for m in &manifest.entries {
        let Some(head) = deps.backup.head(&e.bucket, &m.key, m.version_id.as_deref()).await? else {
            continue;
        };
        if blocked(&head) {
            return Ok(Err(format!("{} is locked or under legal hold", m.key)));
        }
        if let Some(old) = meta(&head.metadata, META_SUPERSEDED)
            && let Some(h) = deps.backup.head(&e.bucket, &m.key, Some(old)).await?
        {
            if blocked(&h) {
                return Ok(Err(format!(
                    "{} (superseded version {old}) is locked or under legal hold",
                    m.key
                )));
            }
            out.push((m.key.clone(), Some(old.to_owned())));
        }
        out.push((m.key.clone(), head.version_id.or_else(|| m.version_id.clone())));
    }
    let listed = list_all(
        deps.backup.as_ref(),
        &e.bucket,
        &e.data_prefix(),
        deps.settings.page_size,
    )
    .await?;
    for o in listed.iter().filter(|o| !is_data_object(&o.key)) {
        let Some(head) = deps.backup.head(&e.bucket, &o.key, None).await? else {
            continue;
        };
        if blocked(&head) {
            return Ok(Err(format!("{} is locked or under legal hold", o.key)));
        }
        out.push((o.key.clone(), head.version_id));
    }
    Ok(Ok(out))
}

// --- catalog ---------------------------------------------------------------------------
