//! Moving a run's copies to a colder class: each copied from the version the ledger
//! knows, the ledger written first, then the catalog, and only then the superseded
//! versions deleted.

use super::*;

/// The run's previous ledger: where each copy an earlier move moved is now (a copy it
/// does not list is still at the manifest's version).
pub(crate) async fn previous_ledger(deps: &Deps, rp: &RecoveryPoint) -> Result<Vec<LedgerEntry>, FunctionError> {
    let Some(t) = rp.tiering().cloned() else {
        return Ok(Vec::new());
    };
    let bytes = read_all(
        deps.backup.as_ref(),
        &deps.settings.backup_bucket,
        &t.ledger_key,
        MAX_LEDGER_BYTES,
    )
    .await?;
    let bad = |why: String| FunctionError::new(ErrorType::Conflict, format!("ledger of {}: {why}", rp.id));
    if sha256_hex(&bytes) != t.ledger_sha256 {
        return Err(bad("SHA-256 differs from the catalog's".into()));
    }
    let ledger = Ledger::decode(&bytes).map_err(|e| bad(e.to_string()))?;
    Ok(ledger.entries)
}

pub(crate) fn ledger_id(key: &str, version: Option<&str>) -> String {
    format!("{key}\u{0}{}", version.unwrap_or(""))
}

/// A copy's ledger entry, and the version it superseded (to delete), if any.
pub(crate) enum Moved {
    Copied(LedgerEntry, Option<String>),
    Recovered(LedgerEntry, Option<String>),
}

pub(crate) async fn move_run(
    deps: &Deps,
    rp: &RecoveryPoint,
    m: &DueMove,
    set: &MoveSet,
    r: &mut MoveReport,
) -> Result<(), FunctionError> {
    let mut earlier: HashMap<String, LedgerEntry> = previous_ledger(deps, rp)
        .await?
        .into_iter()
        .map(|l| (ledger_id(&l.backup_key, l.original_version.as_deref()), l))
        .collect();
    let previous: HashMap<String, Option<String>> =
        earlier.iter().map(|(id, l)| (id.clone(), l.version.clone())).collect();
    let results: Vec<PortResult<Moved>> = stream::iter(set.entries.iter())
        .map(|e| {
            let current = previous
                .get(&ledger_id(&e.backup_key, e.backup_version_id.as_deref()))
                .cloned()
                .unwrap_or_else(|| e.backup_version_id.clone());
            move_one(deps, e, current, m.to)
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut entries = Vec::with_capacity(set.entries.len());
    let mut superseded = Vec::new();
    for (result, e) in results.into_iter().zip(&set.entries) {
        match result? {
            Moved::Copied(l, old) => {
                if let Some(old) = old {
                    superseded.push((l.backup_key.clone(), old));
                }
                entries.push(l);
            }
            Moved::Recovered(l, old) => {
                r.recovered += 1;
                r.recovered_bytes += e.size;
                if let Some(old) = old {
                    superseded.push((l.backup_key.clone(), old));
                }
                entries.push(l);
            }
        }
    }
    // Copies an earlier move moved and this one leaves (not worth moving again) keep
    // their earlier entries: the new ledger replaces the old one.
    for e in &set.entries {
        earlier.remove(&ledger_id(&e.backup_key, e.backup_version_id.as_deref()));
    }
    let mut kept: Vec<LedgerEntry> = earlier.into_values().collect();
    kept.sort_by(|a, b| a.backup_key.cmp(&b.backup_key));
    entries.extend(kept);
    // The ledger first, then the catalog, and only then the superseded versions go.
    let now = deps.clock.now();
    let Some(mref) = rp.manifest() else { return Ok(()) };
    let (key, sha) = write_ledger(deps, mref, m, entries, now).await?;
    let mut fresh = deps.catalog.get(&rp.id).await?.ok_or_else(|| {
        FunctionError::new(
            ErrorType::Conflict,
            format!("{} left the catalog during its move", rp.id),
        )
    })?;
    let expected = fresh.version;
    let Some(objects) = fresh.objects_mut() else {
        return Err(FunctionError::invalid(format!("{} holds no objects to move", rp.id)));
    };
    objects.tiering = Some(TierRecord {
        class: m.to,
        moved_at: now,
        ledger_key: key,
        ledger_sha256: sha,
        objects: set.objects,
        bytes: set.bytes,
        small_kept: set.small_kept,
        superseded_pending: 0,
    });
    fresh.updated_at = now;
    fresh.version += 1;
    deps.catalog.update(&fresh, expected).await?;

    drop_superseded(deps, rp, superseded, r).await
}

/// Writes the run's ledger for this move (locked like the backup copies); returns its key
/// and SHA-256.
pub(crate) async fn write_ledger(
    deps: &Deps,
    mref: &ManifestRef,
    m: &DueMove,
    entries: Vec<LedgerEntry>,
    now: DateTime<Utc>,
) -> Result<(String, String), FunctionError> {
    let s = &deps.settings;
    let ledger = Ledger {
        run: m.run.clone(),
        class: m.to,
        moved_at: now,
        entries,
    };
    let bytes = ledger
        .encode()
        .map_err(|e| FunctionError::new(ErrorType::Internal, format!("cannot encode the ledger: {e}")))?;
    let sha = sha256_hex(&bytes);
    let key = ledger_key(&mref.source_bucket, &mref.prefix, &m.run, m.to);
    let options = s.write_options(now, Vec::new());
    deps.backup.put(&s.backup_bucket, &key, bytes, &options).await?;
    Ok((key, sha))
}

/// Deletes the versions the move superseded, now that ledger and catalog point past them;
/// one that cannot go is counted on the run's record (a later sweep retries it).
pub(crate) async fn drop_superseded(
    deps: &Deps,
    rp: &RecoveryPoint,
    superseded: Vec<(String, String)>,
    r: &mut MoveReport,
) -> Result<(), FunctionError> {
    for (key, version) in superseded {
        if let Err(e) = delete_superseded(deps, &key, &version).await {
            tracing::warn!(error = %e, key = %key, version = %version, "superseded version kept");
            r.superseded_pending += 1;
        }
    }
    if r.superseded_pending > 0
        && let Some(mut again) = deps.catalog.get(&rp.id).await?
        && let Some(t) = again.objects_mut().and_then(|o| o.tiering.as_mut())
    {
        t.superseded_pending = r.superseded_pending;
        let expected = again.version;
        again.version += 1;
        deps.catalog.update(&again, expected).await?;
    }
    Ok(())
}

/// Deletes the superseded versions an earlier move of `rp` could not (its record counts
/// them), after the same checks. The candidates are the manifest's versions and those of
/// the run's earlier ledgers; a version the current ledger points at is never one. Records
/// what is still pending and returns how many went.
pub(crate) async fn sweep(deps: &Deps, id: &lifeboat_domain::RecoveryPointId) -> Result<u64, FunctionError> {
    // Fresh: this invocation may have moved the run again.
    let Some(rp) = deps.catalog.get(id).await? else {
        return Ok(0);
    };
    let (Some(t), Some(mref)) = (rp.tiering(), rp.manifest()) else {
        return Ok(0);
    };
    let current = previous_ledger(deps, &rp).await?;
    let mut candidates: Vec<(String, String)> = Vec::new();
    for l in &current {
        if let Some(v) = &l.original_version
            && Some(v) != l.version.as_ref()
        {
            candidates.push((l.backup_key.clone(), v.clone()));
        }
    }
    let now_at: HashMap<&str, Option<&str>> = current
        .iter()
        .map(|l| (l.backup_key.as_str(), l.version.as_deref()))
        .collect();
    for class in S3Class::ALL.into_iter().filter(|c| *c < t.class) {
        let key = ledger_key(&mref.source_bucket, &mref.prefix, &rp.snapshot_name, class);
        let bytes = match read_all(
            deps.backup.as_ref(),
            &deps.settings.backup_bucket,
            &key,
            MAX_LEDGER_BYTES,
        )
        .await
        {
            Ok(b) => b,
            Err(PortError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let Ok(earlier) = Ledger::decode(&bytes) else {
            tracing::warn!(key = %key, "an earlier ledger is unreadable: its versions are left");
            continue;
        };
        for l in earlier.entries {
            if let (Some(v), Some(now)) = (l.version, now_at.get(l.backup_key.as_str()))
                && Some(v.as_str()) != *now
            {
                candidates.push((l.backup_key, v));
            }
        }
    }
    candidates.sort();
    candidates.dedup();
    let (mut swept, mut pending) = (0u64, 0u64);
    for (key, version) in &candidates {
        match deps.backup.head(&deps.settings.backup_bucket, key, Some(version)).await {
            Ok(None) => continue,
            Ok(Some(_)) => {}
            Err(e) => return Err(e.into()),
        }
        match delete_superseded(deps, key, version).await {
            Ok(()) => swept += 1,
            Err(e) => {
                tracing::warn!(error = %e, key = %key, version = %version, "superseded version kept");
                pending += 1;
            }
        }
    }
    if let Some(mut again) = deps.catalog.get(&rp.id).await?
        && again.version == rp.version
        && let Some(t) = again.objects_mut().and_then(|o| o.tiering.as_mut())
        && t.superseded_pending != pending
    {
        t.superseded_pending = pending;
        let expected = again.version;
        again.version += 1;
        again.updated_at = deps.clock.now();
        deps.catalog.update(&again, expected).await?;
    }
    Ok(swept)
}

/// Deletes a version this move replaced, after re-checking that nothing forbids it.
pub(crate) async fn delete_superseded(deps: &Deps, key: &str, version: &str) -> PortResult<()> {
    let bucket = &deps.settings.backup_bucket;
    let Some(head) = deps.backup.head(bucket, key, Some(version)).await? else {
        return Ok(());
    };
    let now = deps.clock.now();
    if head.legal_hold || head.lock.as_ref().is_some_and(|l| l.retain_until > now) {
        return Err(PortError::InvalidState(format!(
            "{key} version {version} is locked or held"
        )));
    }
    deps.backup.delete(bucket, key, Some(version)).await
}

pub(crate) async fn move_one(
    deps: &Deps,
    e: &ManifestEntry,
    current: Option<String>,
    to: S3Class,
) -> PortResult<Moved> {
    let bucket = &deps.settings.backup_bucket;
    let entry = |version: Option<String>, class: S3Class| LedgerEntry {
        backup_key: e.backup_key.clone(),
        original_version: e.backup_version_id.clone(),
        version,
        class,
    };
    // Moved already (a crashed invocation, or the lifecycle rule in place)?
    let latest = deps
        .backup
        .head(bucket, &e.backup_key, None)
        .await?
        .ok_or_else(|| PortError::NotFound(format!("the backup copy {} is missing", e.backup_key)))?;
    let meta = |k: &str| latest.metadata.iter().find(|(mk, _)| mk == k).map(|(_, v)| v.as_str());
    let latest_class = S3Class::parse(&latest.storage_class).unwrap_or(S3Class::Standard);
    if latest_class >= to
        && meta(META_RUN) == Some(e.copied_in.as_str())
        && meta(META_SHA256) == Some(e.sha256.as_str())
    {
        // Moved by a copy (a new version; the old one may still be there) or in place.
        let superseded = current.filter(|c| latest.version_id.as_deref() != Some(c.as_str()));
        return Ok(Moved::Recovered(entry(latest.version_id, latest_class), superseded));
    }
    let head = if latest.version_id == current {
        latest
    } else {
        deps.backup
            .head(bucket, &e.backup_key, current.as_deref())
            .await?
            .ok_or_else(|| PortError::NotFound(format!("{} version {current:?} is missing", e.backup_key)))?
    };
    let written = deps
        .backup
        .copy(&CopyRequest {
            source_bucket: bucket.clone(),
            source_key: e.backup_key.clone(),
            source_version_id: current.clone(),
            if_match: Some(head.etag.clone()),
            size: e.size,
            bucket: bucket.clone(),
            key: e.backup_key.clone(),
            options: WriteOptions {
                storage_class: Some(to.as_str().to_owned()),
                lock: head.lock.clone(),
                legal_hold: head.legal_hold,
                metadata: head.metadata.clone(),
            },
        })
        .await?;
    // S3's claim about the new version must match the bytes the manifest recorded.
    if written.parts <= 1
        && let Some(claimed) = written.checksum_sha256.as_deref().filter(|c| !c.contains('-'))
        && base64::engine::general_purpose::STANDARD
            .decode(claimed)
            .map(|b| hex(&b))
            .ok()
            .as_deref()
            != Some(e.sha256.as_str())
    {
        return Err(PortError::Conflict(format!(
            "{}: S3 reports SHA-256 {claimed} for the {to} copy, the manifest records {}",
            e.backup_key, e.sha256
        )));
    }
    let superseded = if written.version_id.is_some() && written.version_id != current {
        current
    } else {
        None
    };
    Ok(Moved::Copied(entry(written.version_id, to), superseded))
}
