//! Moving an export's data objects into its storage class: each read and hashed by
//! Lifeboat, copied from that very version, checked, then the export's manifest and record.

use super::{
    Archived, CONCURRENCY, CopyRequest, DateTime, Deps, ErrorType, ExportManifest, ExportObject, ExportRecord,
    ExportStatus, FunctionError, META_SHA256, META_SUPERSEDED, META_TASK, ObjectHead, ObjectStore, PortError,
    PortResult, RecoveryPoint, Report, S3Class, StreamExt, Utc, WriteOptions, digest, is_data_object, manifest_key,
    save_export, stream,
};
use lifeboat_ports::objects::{LockMode, ObjectLock};

/// One data object, moved (or found moved) into the class.
pub(crate) struct Moved {
    entry: ExportObject,
    copied: bool,
    superseded_pending: bool,
}

pub(crate) async fn move_export(
    deps: &Deps,
    rp: &RecoveryPoint,
    stop_at: Option<DateTime<Utc>>,
    budget: &mut u64,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let Some(export) = rp.export().cloned() else {
        return Ok(());
    };
    let s = &deps.settings;
    let objects = list_all(deps.backup.as_ref(), &export.bucket, &export.data_prefix(), s.page_size).await?;
    let data: Vec<_> = objects.into_iter().filter(|o| is_data_object(&o.key)).collect();
    let mut progress = Archived {
        recovery_point: rp.id.clone(),
        task_id: export.task_id.clone(),
        class: export.class,
        objects: data.len() as u64,
        bytes: data.iter().map(|o| o.size).sum(),
        copied: 0,
        recovered: 0,
        remaining: 0,
        manifest_key: None,
        superseded_pending: 0,
    };
    let mut entries = Vec::with_capacity(data.len());
    let mut first_error = None;
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        if *budget == 0 || stop_at.is_some_and(|t| deps.clock.now() >= t) || first_error.is_some() {
            progress.remaining += rest.len() as u64;
            break;
        }
        // At most the budget's worth at once (objects already moved cost nothing, so a
        // resumed export may take a few more).
        let take = rest
            .len()
            .min(CONCURRENCY)
            .min(usize::try_from(*budget).unwrap_or(usize::MAX));
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        let results: Vec<PortResult<Moved>> = stream::iter(chunk)
            .map(|o| move_one(deps, &export, &o.key))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(m) => {
                    if m.copied {
                        progress.copied += 1;
                        *budget = budget.saturating_sub(1);
                        report.objects_copied += 1;
                        report.bytes_copied += m.entry.size;
                    } else {
                        progress.recovered += 1;
                    }
                    progress.superseded_pending += u64::from(m.superseded_pending);
                    entries.push(m.entry);
                }
                Err(e) => {
                    progress.remaining += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    if let Some(e) = first_error {
        return Err(FunctionError::from(e));
    }
    if progress.remaining > 0 {
        tracing::info!(recovery_point = %rp.id, remaining = progress.remaining, "export move continues next run");
        report.moving.push(progress);
        return Ok(());
    }
    // Every data object is in the class: the manifest, then the catalog.
    let key = archive(deps, rp, &export, entries, progress.superseded_pending).await?;
    progress.manifest_key = Some(key);
    report.archived.push(progress);
    Ok(())
}

/// Writes the export's manifest (locked like the backup copies), then records the export
/// archived in the catalog; returns the manifest's key.
pub(crate) async fn archive(
    deps: &Deps,
    rp: &RecoveryPoint,
    export: &ExportRecord,
    entries: Vec<ExportObject>,
    pending: u64,
) -> Result<String, FunctionError> {
    let s = &deps.settings;
    let now = deps.clock.now();
    let manifest = ExportManifest::new(rp, export, now, entries);
    let (bytes, sha) = manifest
        .encode()
        .map_err(|e| FunctionError::new(ErrorType::Internal, format!("cannot encode the export manifest: {e}")))?;
    let key = manifest_key(&rp.resource, &rp.snapshot_name, &export.task_id);
    let options = s.write_options(now, vec![(META_TASK.to_owned(), export.task_id.clone())]);
    deps.backup.put(&export.bucket, &key, bytes, &options).await?;
    save_export(deps, &rp.id, |current| {
        let mut e = current?.clone();
        (e.task_id == export.task_id && e.status == ExportStatus::Moving).then(|| {
            e.status = ExportStatus::Archived;
            e.archived_at = Some(now);
            e.objects = manifest.objects;
            e.bytes = manifest.bytes;
            e.manifest_key = Some(key.clone());
            e.manifest_sha256 = Some(sha.clone());
            e.superseded_pending = pending;
            e
        })
    })
    .await?;
    tracing::info!(recovery_point = %rp.id, task_id = %export.task_id, objects = manifest.objects, bytes = manifest.bytes, class = %export.class, "export archived");
    Ok(key)
}

pub(crate) async fn list_all(
    store: &dyn ObjectStore,
    bucket: &str,
    prefix: &str,
    page_size: u32,
) -> PortResult<Vec<lifeboat_domain::manifest::ListedObject>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.list_page(bucket, prefix, token.as_deref(), page_size).await?;
        out.extend(page.objects);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

pub(crate) fn meta<'a>(m: &'a [(String, String)], k: &str) -> Option<&'a str> {
    m.iter().find(|(mk, _)| mk == k).map(|(_, v)| v.as_str())
}

/// An object already in its class: moved by a crashed invocation (Lifeboat's metadata
/// says so, and names the version it superseded) or archived in place by the lifecycle
/// rule.
pub(crate) async fn already_moved(
    deps: &Deps,
    bucket: &str,
    key: &str,
    head: ObjectHead,
    class: S3Class,
) -> PortResult<Moved> {
    let mut pending = false;
    if let Some(old) = meta(&head.metadata, META_SUPERSEDED) {
        pending = !delete_superseded(deps, bucket, key, old).await?;
    }
    Ok(Moved {
        entry: ExportObject {
            key: key.to_owned(),
            version_id: head.version_id,
            size: head.size,
            sha256: meta(&head.metadata, META_SHA256).map(str::to_owned),
            s3_checksum_sha256: head.checksum_sha256,
            etag: head.etag,
            class,
        },
        copied: false,
        superseded_pending: pending,
    })
}

/// The moved copy's metadata: the object's own, plus Lifeboat's SHA-256 of the bytes, the
/// export task and the version the copy supersedes.
pub(crate) fn copy_metadata(head: &ObjectHead, sha256: &str, task_id: &str) -> Vec<(String, String)> {
    let mut metadata: Vec<(String, String)> = head
        .metadata
        .iter()
        .filter(|(k, _)| ![META_SHA256, META_TASK, META_SUPERSEDED].contains(&k.as_str()))
        .cloned()
        .collect();
    metadata.push((META_SHA256.to_owned(), sha256.to_owned()));
    metadata.push((META_TASK.to_owned(), task_id.to_owned()));
    if let Some(v) = &head.version_id {
        metadata.push((META_SUPERSEDED.to_owned(), v.clone()));
    }
    metadata
}

pub(crate) async fn move_one(deps: &Deps, export: &ExportRecord, key: &str) -> PortResult<Moved> {
    let bucket = &export.bucket;
    let to = export.class;
    let head = deps
        .backup
        .head(bucket, key, None)
        .await?
        .ok_or_else(|| PortError::NotFound(format!("exported object {key} is missing")))?;
    let class = S3Class::parse(&head.storage_class).unwrap_or(S3Class::Standard);
    // Moved already: by a crashed invocation (our metadata), or archived in place by the
    // lifecycle rule (no metadata: S3's checksum is all there is).
    if class >= to || class.archived() {
        return already_moved(deps, bucket, key, head, class).await;
    }
    // Lifeboat's own hash of the bytes, read while they are still readable.
    let body = deps
        .backup
        .get(bucket, key, head.version_id.as_deref(), Some(&head.etag))
        .await?;
    let sums = digest(body).await?;
    if sums.bytes != head.size {
        return Err(PortError::Conflict(format!(
            "{key}: read {} bytes, S3 lists {}",
            sums.bytes, head.size
        )));
    }
    if let Some(claimed) = head.checksum_sha256.as_deref().filter(|c| !c.contains('-'))
        && claimed != sums.sha256_base64
    {
        return Err(PortError::Conflict(format!(
            "{key}: S3 stores SHA-256 {claimed}, the bytes read hash to {}",
            sums.sha256_base64
        )));
    }
    let metadata = copy_metadata(&head, &sums.sha256, &export.task_id);
    let written = deps
        .backup
        .copy(&CopyRequest {
            source_bucket: bucket.clone(),
            source_key: key.to_owned(),
            source_version_id: head.version_id.clone(),
            if_match: Some(head.etag.clone()),
            size: head.size,
            bucket: bucket.clone(),
            key: key.to_owned(),
            // Locked like the backup copies (and never less than the object already was).
            options: {
                let ours = deps.settings.write_options(deps.clock.now(), Vec::new());
                WriteOptions {
                    storage_class: Some(to.as_str().to_owned()),
                    lock: later_lock(head.lock.clone(), ours.lock),
                    legal_hold: head.legal_hold || ours.legal_hold,
                    metadata,
                }
            },
        })
        .await?;
    // S3's claim about the copy must match the bytes Lifeboat read (a multipart copy's
    // checksum is composite: its size and class are checked instead).
    if written.parts <= 1
        && let Some(claimed) = written.checksum_sha256.as_deref().filter(|c| !c.contains('-'))
        && claimed != sums.sha256_base64
    {
        return Err(PortError::Conflict(format!(
            "{key}: S3 reports SHA-256 {claimed} for the {to} copy, Lifeboat read {}",
            sums.sha256_base64
        )));
    }
    let after = deps
        .backup
        .head(bucket, key, written.version_id.as_deref())
        .await?
        .ok_or_else(|| PortError::NotFound(format!("{key}: the {to} copy is missing after the copy")))?;
    let after_class = S3Class::parse(&after.storage_class).unwrap_or(S3Class::Standard);
    if after.size != sums.bytes || after_class != to {
        return Err(PortError::Conflict(format!(
            "{key}: the copy is {} bytes in {after_class}, expected {} bytes in {to}",
            after.size, sums.bytes
        )));
    }
    let mut pending = false;
    if let Some(old) = head.version_id.as_deref()
        && written.version_id.as_deref() != Some(old)
    {
        pending = !delete_superseded(deps, bucket, key, old).await?;
    }
    Ok(Moved {
        entry: ExportObject {
            key: key.to_owned(),
            version_id: written.version_id,
            size: sums.bytes,
            sha256: Some(sums.sha256),
            s3_checksum_sha256: after.checksum_sha256,
            etag: after.etag,
            class: to,
        },
        copied: true,
        superseded_pending: pending,
    })
}

/// The lock that holds longer (COMPLIANCE over GOVERNANCE on the same date).
fn later_lock(a: Option<ObjectLock>, b: Option<ObjectLock>) -> Option<ObjectLock> {
    match (a, b) {
        (Some(a), Some(b)) => Some(
            if (b.retain_until, b.mode == LockMode::Compliance) > (a.retain_until, a.mode == LockMode::Compliance) {
                b
            } else {
                a
            },
        ),
        (a, b) => a.or(b),
    }
}

/// Deletes the STANDARD version a verified copy superseded, after re-checking that no lock
/// or legal hold forbids it. `Ok(false)`: kept (locked or held).
pub(crate) async fn delete_superseded(deps: &Deps, bucket: &str, key: &str, version: &str) -> PortResult<bool> {
    let Some(head) = deps.backup.head(bucket, key, Some(version)).await? else {
        return Ok(true);
    };
    let now = deps.clock.now();
    if head.legal_hold || head.lock.as_ref().is_some_and(|l| l.retain_until > now) {
        tracing::info!(
            key,
            version,
            "superseded export version kept: locked or under legal hold"
        );
        return Ok(false);
    }
    match deps.backup.delete(bucket, key, Some(version)).await {
        Ok(()) => Ok(true),
        Err(PortError::InvalidState(m)) => {
            tracing::info!(key, version, reason = %m, "superseded export version kept");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

// --- expiry --------------------------------------------------------------------------
