//! Reading backup objects back: each entry of a run streamed, hashed and compared with its
//! manifest entry and with S3's own claim. Used by verify-backups and by DR validation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use lifeboat_domain::manifest::{ManifestEntry, sha256_hex};
use lifeboat_ports::PortError;
use lifeboat_ports::objects::{ObjectStore, VersionMarker};
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

/// How the [`Problem::Replaced`] warning learns which version of each key is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentVersions {
    /// A HEAD per object: for samples, a few keys among many.
    PerObject,
    /// One paged ListObjectVersions over the checked keys' common prefix: for whole runs,
    /// one call per 1,000 versions instead of one per object.
    Listed,
}

/// Reads a sample of a run back from `bucket` and compares each entry with its manifest
/// entry (DR validation). Transient failures are returned.
pub async fn check_entries(
    store: &Arc<dyn ObjectStore>,
    bucket: &str,
    entries: Vec<&ManifestEntry>,
) -> Result<EntryChecks, PortError> {
    Ok(EntryChecks::of(
        &check_each(store, bucket, entries, CurrentVersions::PerObject).await?,
    ))
}

/// Reads `entries` back from `bucket`, [`CONCURRENCY`] at a time, one GET each (a HEAD
/// only for archived copies S3 will not serve), and compares each with its manifest entry.
/// Each object is read and hashed in a task of its own, so hashing runs on every core the
/// runtime has while other objects are being read. Transient failures are returned (the
/// run is retried); everything else is a finding.
pub async fn check_each(
    store: &Arc<dyn ObjectStore>,
    bucket: &str,
    entries: Vec<&ManifestEntry>,
    current: CurrentVersions,
) -> Result<Vec<EntryCheck>, PortError> {
    let per_object = current == CurrentVersions::PerObject;
    let reads = stream::iter(entries.iter().map(|e| (*e).clone()))
        .map(|e| {
            let (store, bucket) = (store.clone(), bucket.to_owned());
            tokio::spawn(async move { check_against(store.as_ref(), &bucket, &e, per_object).await })
        })
        .buffer_unordered(CONCURRENCY)
        .map(|joined| joined.map_err(|e| PortError::Unavailable(format!("an object check stopped: {e}")))?)
        .try_collect::<Vec<EntryCheck>>();
    let mut checks = if per_object {
        reads.await?
    } else {
        // The listing runs beside the reads.
        let (mut checks, listed) = futures::try_join!(reads, current_versions(store.as_ref(), bucket, &entries))?;
        let by_key: HashMap<&str, &ManifestEntry> = entries.iter().map(|e| (e.key.as_str(), *e)).collect();
        for c in &mut checks {
            let Some(e) = by_key.get(c.key.as_str()) else { continue };
            let wanted = e.backup_version_id.as_deref();
            if wanted.is_some()
                && !c.problems.contains(&Problem::Missing)
                && listed
                    .get(&e.backup_key)
                    .is_some_and(|latest| Some(latest.as_str()) != wanted)
            {
                c.problems.push(Problem::Replaced);
            }
        }
        checks
    };
    for c in &mut checks {
        c.problems.sort();
    }
    Ok(checks)
}

/// The current version of every key the entries name (keys whose current version is a
/// delete marker are left out), from one paged listing of their common prefix.
async fn current_versions(
    store: &dyn ObjectStore,
    bucket: &str,
    entries: &[&ManifestEntry],
) -> Result<HashMap<String, String>, PortError> {
    let wanted: HashSet<&str> = entries
        .iter()
        .filter(|e| e.backup_version_id.is_some())
        .map(|e| e.backup_key.as_str())
        .collect();
    let mut current = HashMap::new();
    let Some(prefix) = common_prefix(wanted.iter().copied()) else {
        return Ok(current);
    };
    let mut after: Option<VersionMarker> = None;
    loop {
        let page = store.list_versions_page(bucket, prefix, after.as_ref(), 1000).await?;
        for v in page.versions {
            if let (true, false, Some(id)) = (v.latest, v.delete_marker, v.version_id)
                && wanted.contains(v.key.as_str())
            {
                current.insert(v.key, id);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(current),
        }
    }
}

/// The longest prefix every key starts with (on a character boundary); `None` without keys.
fn common_prefix<'a>(mut keys: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let first = keys.next()?;
    let mut len = first.len();
    for k in keys {
        len = first
            .char_indices()
            .zip(k.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(len);
    }
    first.get(..len)
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

/// Checks one object as a restore would read it: the version the manifest names (through
/// the manifest's record of what was written), streamed and hashed, compared with the
/// manifest and with S3's claim; a later version over the key is reported as
/// [`Problem::Replaced`]. Transient failures are returned (the run is retried); everything
/// else is a finding.
pub async fn check_one(store: &dyn ObjectStore, bucket: &str, e: &ManifestEntry) -> Result<EntryCheck, PortError> {
    let mut c = check_against(store, bucket, e, true).await?;
    c.problems.sort();
    Ok(c)
}

/// [`check_one`]; the key's current version is asked with a HEAD when `ask_current`
/// (else the caller learns it from a listing).
async fn check_against(
    store: &dyn ObjectStore,
    bucket: &str,
    e: &ManifestEntry,
    ask_current: bool,
) -> Result<EntryCheck, PortError> {
    let mut c = EntryCheck {
        key: e.key.clone(),
        bytes: 0,
        metadata_only: false,
        problems: Vec::new(),
    };
    let wanted = e.backup_version_id.as_deref();
    let body = match store.get(bucket, &e.backup_key, wanted, None).await {
        Ok(b) => Some(b),
        // A version id the bucket does not know is a version that is gone.
        Err(PortError::NotFound(_)) => None,
        Err(PortError::Invalid(_)) if wanted.is_some() => None,
        // Archived and not restored (or a delete marker): what S3 says about the version.
        Err(PortError::InvalidState(refused)) => match store.head(bucket, &e.backup_key, wanted).await {
            Ok(None) | Err(PortError::NotFound(_)) => None,
            Err(PortError::Invalid(_)) if wanted.is_some() => None,
            Ok(Some(head)) if archived(&head.storage_class) && !restored(head.restore.as_deref()) => {
                if ask_current && wanted.is_some() && replaced(store, bucket, e, wanted).await? {
                    c.problems.push(Problem::Replaced);
                }
                c.metadata_only = true;
                if head.size < e.size {
                    c.problems.push(Problem::Truncated);
                } else if head.size != e.size {
                    c.problems.push(Problem::Corrupted);
                }
                return Ok(c);
            }
            Ok(Some(_)) => return Err(PortError::InvalidState(refused)),
            Err(e) => return Err(e),
        },
        Err(e) => return Err(e),
    };
    let Some(body) = body else {
        c.problems.push(Problem::Missing);
        return Ok(c);
    };
    if ask_current && wanted.is_some() && replaced(store, bucket, e, wanted).await? {
        c.problems.push(Problem::Replaced);
    }
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
    Ok(c)
}

/// True when the key's current version is not the one the manifest names.
async fn replaced(
    store: &dyn ObjectStore,
    bucket: &str,
    e: &ManifestEntry,
    wanted: Option<&str>,
) -> Result<bool, PortError> {
    Ok(store
        .head(bucket, &e.backup_key, None)
        .await?
        .is_some_and(|latest| latest.version_id.is_some() && latest.version_id.as_deref() != wanted))
}
