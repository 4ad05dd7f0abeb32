//! Backing up one object: unchanged ones dropped unread, changed ones hashed and copied
//! from the very version listed, a copy an earlier crashed invocation made recovered.

use super::{
    CopyRequest, DateTime, Deps, ListedObject, META_CRC64, META_ETAG, META_RUN, META_SHA256, ManifestEntry, Outcome,
    Pass, PortError, PortResult, Utc, backup_key, digest,
};

/// Backs up one listed object: unchanged since the previous run, recovered from an
/// interrupted invocation, or read (`body`, when the caller has it open already) and
/// copied.
pub(crate) async fn back_up_one(
    pass: &Pass<'_>,
    o: ListedObject,
    body: Option<lifeboat_ports::objects::ObjectBody>,
    now: DateTime<Utc>,
) -> PortResult<Outcome> {
    let (deps, run) = (pass.deps, pass.run);
    let s = &deps.settings;
    if let Some(p) = pass.prev.get(o.key.as_str()).filter(|p| p.unchanged(&o)) {
        return Ok(Outcome::Unchanged(ManifestEntry {
            last_modified: o.last_modified.or(p.last_modified),
            ..(*p).clone()
        }));
    }
    let bkey = backup_key(pass.bucket, pass.prefix, run, &o.key);
    if pass.careful
        && let Some(entry) = already_copied(deps, run, &o, &bkey).await?
    {
        return Ok(Outcome::Recovered(entry));
    }
    // Lifeboat computes the checksums itself, from the very version it copies (the copy
    // is conditional on the ETag that was read).
    let body = match body {
        Some(b) => b,
        None => {
            deps.source
                .get(pass.bucket, &o.key, o.version_id.as_deref(), Some(&o.etag))
                .await?
        }
    };
    let d = digest(body).await?;
    if d.bytes != o.size {
        return Err(PortError::Conflict(format!(
            "{}: read {} bytes, listed {}; it changed during the run",
            o.key, d.bytes, o.size
        )));
    }
    let metadata = vec![
        (META_RUN.to_owned(), run.to_owned()),
        (META_ETAG.to_owned(), o.etag.clone()),
        (META_SHA256.to_owned(), d.sha256.clone()),
        (META_CRC64.to_owned(), d.crc64nvme.clone()),
    ];
    let mut options = s.write_options(now, metadata);
    options.storage_class = Some(s.storage_class.clone());
    let written = deps
        .backup
        .copy(&CopyRequest {
            source_bucket: pass.bucket.to_owned(),
            source_key: o.key.clone(),
            source_version_id: o.version_id.clone(),
            if_match: Some(o.etag.clone()),
            size: o.size,
            bucket: s.backup_bucket.clone(),
            key: bkey.clone(),
            options,
        })
        .await?;
    // S3's own claim is compared, never trusted: a disagreement fails the object.
    if written.parts <= 1
        && let Some(claimed) = written.checksum_sha256.as_deref().filter(|c| !c.contains('-'))
        && claimed != d.sha256_base64
    {
        return Err(PortError::Conflict(format!(
            "{}: S3 reports SHA-256 {claimed} for the copy, Lifeboat computed {}",
            o.key, d.sha256_base64
        )));
    }
    Ok(Outcome::Copied(ManifestEntry {
        key: o.key,
        version_id: o.version_id,
        size: o.size,
        etag: o.etag,
        sha256: d.sha256,
        crc64nvme: d.crc64nvme,
        storage_class: s.storage_class.clone(),
        last_modified: o.last_modified,
        backup_key: bkey,
        backup_version_id: written.version_id,
        copied_in: run.to_owned(),
        deleted: false,
    }))
}

/// After an interruption: the copy this run already made of `o`, if any (its metadata
/// names this run and the ETag listed now).
pub(crate) async fn already_copied(
    deps: &Deps,
    run: &str,
    o: &ListedObject,
    bkey: &str,
) -> PortResult<Option<ManifestEntry>> {
    let Some(head) = deps.backup.head(&deps.settings.backup_bucket, bkey, None).await? else {
        return Ok(None);
    };
    let meta = |k: &str| head.metadata.iter().find(|(mk, _)| mk == k).map(|(_, v)| v.clone());
    let (Some(r), Some(etag), Some(sha256), Some(crc)) =
        (meta(META_RUN), meta(META_ETAG), meta(META_SHA256), meta(META_CRC64))
    else {
        return Ok(None);
    };
    if r != run || etag != o.etag || head.size != o.size {
        return Ok(None);
    }
    Ok(Some(ManifestEntry {
        key: o.key.clone(),
        version_id: o.version_id.clone(),
        size: o.size,
        etag: o.etag.clone(),
        sha256,
        crc64nvme: crc,
        storage_class: head.storage_class,
        last_modified: o.last_modified,
        backup_key: bkey.to_owned(),
        backup_version_id: head.version_id,
        copied_in: run.to_owned(),
        deleted: false,
    }))
}
