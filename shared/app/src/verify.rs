//! Reading backup objects back: each entry of a run streamed, hashed and compared with its
//! manifest entry and with S3's own claim. Used by verify-backups and by DR validation.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use lifeboat_domain::manifest::{ManifestEntry, sha256_hex};
use lifeboat_ports::PortError;
use lifeboat_ports::objects::{ObjectHead, ObjectStore};
use serde::{Deserialize, Serialize};

use crate::object_store::StreamHasher;

/// Objects read back at once.
pub const CONCURRENCY: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// The object (or its backup version) is gone.
    Missing,
    /// Fewer bytes than the manifest records.
    Truncated,
    /// Other bytes than the manifest records (hash or size).
    Corrupted,
    /// A later version was written over the key behind Lifeboat's back. The version the
    /// manifest names (what a restore reads) is checked on its own; this is a warning that
    /// someone writes into the backup bucket, not damage to the run.
    Replaced,
    /// S3's stored checksum disagrees with the bytes Lifeboat read.
    StoreChecksum,
    /// The manifest is missing, unreadable or not the one the catalog records.
    Manifest,
}

impl Problem {
    /// The run cannot be restored as recorded (everything but [`Problem::Replaced`]).
    pub fn damages_the_run(self) -> bool {
        self != Self::Replaced
    }

    /// The problem `name` (as [`Problem::as_str`] writes it), if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Missing,
            Self::Truncated,
            Self::Corrupted,
            Self::Replaced,
            Self::StoreChecksum,
            Self::Manifest,
        ]
        .into_iter()
        .find(|p| p.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Truncated => "truncated",
            Self::Corrupted => "corrupted",
            Self::Replaced => "replaced",
            Self::StoreChecksum => "store-checksum",
            Self::Manifest => "manifest",
        }
    }
}

/// What reading some entries of a run back found (see [`check_entries`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryChecks {
    pub objects: u64,
    pub bytes: u64,
    /// Archived objects, checked by their metadata only.
    pub metadata_only: u64,
    /// `(key, problem)`, sorted by key.
    pub problems: Vec<(String, Problem)>,
}

impl EntryChecks {
    /// The totals of single checks.
    pub fn of(checks: &[EntryCheck]) -> Self {
        let mut out = Self::default();
        for c in checks {
            out.objects += 1;
            out.bytes += c.bytes;
            out.metadata_only += u64::from(c.metadata_only);
            out.problems.extend(c.problems.iter().map(|p| (c.key.clone(), *p)));
        }
        out.problems.sort();
        out
    }
}

/// Reads a sample of a run back from `bucket` and compares each entry with its manifest
/// entry (DR validation). Transient failures are returned.
pub async fn check_entries(
    store: &Arc<dyn ObjectStore>,
    bucket: &str,
    entries: Vec<&ManifestEntry>,
) -> Result<EntryChecks, PortError> {
    Ok(EntryChecks::of(&check_each(store, bucket, entries).await?))
}

/// Reads `entries` back from `bucket`, [`CONCURRENCY`] at a time, and compares each with
/// its manifest entry, one GET per object in the common case (see [`check_one`]). Each
/// object is read and hashed in a task of its own, so hashing runs on every core the
/// runtime has while other objects are being read. Transient failures are returned (the
/// run is retried); everything else is a finding.
pub async fn check_each(
    store: &Arc<dyn ObjectStore>,
    bucket: &str,
    entries: Vec<&ManifestEntry>,
) -> Result<Vec<EntryCheck>, PortError> {
    stream::iter(entries.into_iter().cloned())
        .map(|e| {
            let (store, bucket) = (store.clone(), bucket.to_owned());
            tokio::spawn(async move { check_one(store.as_ref(), &bucket, &e).await })
        })
        .buffer_unordered(CONCURRENCY)
        .map(|joined| joined.map_err(|e| PortError::Unavailable(format!("an object check stopped: {e}")))?)
        .try_collect()
        .await
}

/// Chooses `n` entries by the SHA-256 of seed+key: deterministic, spread over the keys.
pub fn sample<'a>(entries: Vec<&'a ManifestEntry>, n: usize, seed: &str) -> Vec<&'a ManifestEntry> {
    let mut ranked: Vec<(String, &ManifestEntry)> = entries
        .into_iter()
        .map(|e| (sha256_hex(format!("{seed}\n{}", e.key).as_bytes()), e))
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    ranked.into_iter().take(n).map(|(_, e)| e).collect()
}

/// What reading one object back found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryCheck {
    pub key: String,
    pub bytes: u64,
    pub metadata_only: bool,
    pub problems: Vec<Problem>,
}

/// An S3 storage class whose objects must be restored before they can be read.
pub fn archived(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

/// A restore S3 finished (`ongoing-request="false"`): the archived copy is readable.
fn restored(restore: Option<&str>) -> bool {
    restore.is_some_and(|r| r.contains("ongoing-request=\"false\""))
}

/// Checks one object as a restore would read it: the version the manifest names, streamed
/// and hashed, compared with the manifest and with S3's stored checksum. A later version
/// written over the key is reported as [`Problem::Replaced`].
///
/// One GET in the common case: the key's *current* version is asked for, and when it is the
/// version the manifest names, those are the bytes to check and nothing was written over
/// it. Only when another version is current (its body is dropped unread) or the current
/// one is a delete marker is the named version asked for by id. An archived copy S3 will
/// not serve is checked by its metadata (HEAD). Transient failures are returned (the run
/// is retried); everything else is a finding.
pub async fn check_one(store: &dyn ObjectStore, bucket: &str, e: &ManifestEntry) -> Result<EntryCheck, PortError> {
    let mut c = EntryCheck {
        key: e.key.clone(),
        bytes: 0,
        metadata_only: false,
        problems: Vec::new(),
    };
    let wanted = e.backup_version_id.as_deref();
    let read = match (wanted, store.get(bucket, &e.backup_key, None, None).await) {
        (None, current) => current,
        (Some(v), Ok(current)) if current.version_id.as_deref() == Some(v) => Ok(current),
        (Some(v), Ok(_other)) => {
            c.problems.push(Problem::Replaced);
            store.get(bucket, &e.backup_key, Some(v), None).await
        }
        // The current version is a delete marker (or the key is gone): the named version
        // may still be there.
        (Some(v), Err(PortError::NotFound(_))) => store.get(bucket, &e.backup_key, Some(v), None).await,
        // S3 will not serve the current version (archived): is it the named one?
        (Some(v), Err(PortError::InvalidState(refused))) => match store.head(bucket, &e.backup_key, None).await? {
            Some(current) if current.version_id.as_deref() == Some(v) => {
                return archived_check(store, bucket, e, c, refused, Some(current)).await;
            }
            Some(_) => {
                c.problems.push(Problem::Replaced);
                store.get(bucket, &e.backup_key, Some(v), None).await
            }
            None => store.get(bucket, &e.backup_key, Some(v), None).await,
        },
        (Some(_), Err(other)) => return Err(other),
    };
    let body = match read {
        Ok(body) => body,
        Err(PortError::NotFound(_)) => {
            c.problems.push(Problem::Missing);
            return Ok(c);
        }
        // A version id the bucket does not know is a version that is gone.
        Err(PortError::Invalid(_)) if wanted.is_some() => {
            c.problems.push(Problem::Missing);
            return Ok(c);
        }
        Err(PortError::InvalidState(refused)) => return archived_check(store, bucket, e, c, refused, None).await,
        Err(other) => return Err(other),
    };
    let claimed = body.checksum_sha256.clone();
    let mut chunks = body.chunks;
    let mut h = StreamHasher::default();
    // The SDK ends the stream with `Corrupt` after the last chunk when the bytes disagree
    // with S3's stored checksum: every byte has been hashed by then.
    let mut store_disagrees = false;
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(chunk) => h.update(&chunk),
            Err(PortError::Corrupt(_)) => {
                store_disagrees = true;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let d = h.finish();
    c.bytes = d.bytes;
    if d.bytes < e.size {
        c.problems.push(Problem::Truncated);
    } else if d.bytes != e.size || d.sha256 != e.sha256 || d.crc64nvme != e.crc64nvme {
        c.problems.push(Problem::Corrupted);
    }
    if store_disagrees
        || claimed
            .as_deref()
            .is_some_and(|claimed| !claimed.contains('-') && claimed != d.sha256_base64)
    {
        c.problems.push(Problem::StoreChecksum);
    }
    c.problems.sort();
    Ok(c)
}

/// S3 refused to serve the version the manifest names: archived and not restored, checked
/// by its metadata (`known`, or a HEAD); anything else is a failure to report, not a finding.
async fn archived_check(
    store: &dyn ObjectStore,
    bucket: &str,
    e: &ManifestEntry,
    mut c: EntryCheck,
    refused: String,
    known: Option<ObjectHead>,
) -> Result<EntryCheck, PortError> {
    let wanted = e.backup_version_id.as_deref();
    let head = match known {
        Some(head) => Some(head),
        None => match store.head(bucket, &e.backup_key, wanted).await {
            Ok(h) => h,
            Err(PortError::NotFound(_) | PortError::Invalid(_)) if wanted.is_some() => None,
            Err(other) => return Err(other),
        },
    };
    let Some(head) = head else {
        c.problems.push(Problem::Missing);
        c.problems.sort();
        return Ok(c);
    };
    if !archived(&head.storage_class) || restored(head.restore.as_deref()) {
        return Err(PortError::InvalidState(refused));
    }
    c.metadata_only = true;
    if head.size < e.size {
        c.problems.push(Problem::Truncated);
    } else if head.size != e.size {
        c.problems.push(Problem::Corrupted);
    }
    c.problems.sort();
    Ok(c)
}
