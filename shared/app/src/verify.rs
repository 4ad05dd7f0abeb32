//! Reading backup objects back: each entry of a run streamed, hashed and compared with its
//! manifest entry and with S3's own claim. Used by verify-backups and by DR validation.

use futures::{StreamExt, stream};
use lifeboat_domain::manifest::{ManifestEntry, sha256_hex};
use lifeboat_ports::PortError;
use lifeboat_ports::objects::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::object_store::digest;

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

/// Reads `entries` of a run back from `bucket` and compares each with its manifest entry
/// (as a verification run does; used by DR validation). Transient failures are returned.
pub async fn check_entries(
    store: &dyn ObjectStore,
    bucket: &str,
    entries: Vec<&ManifestEntry>,
) -> Result<EntryChecks, PortError> {
    let results: Vec<Result<EntryCheck, PortError>> = stream::iter(entries)
        .map(|e| check_one(store, bucket, e))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut out = EntryChecks::default();
    for r in results {
        let c = r?;
        out.objects += 1;
        out.bytes += c.bytes;
        out.metadata_only += u64::from(c.metadata_only);
        out.problems.extend(c.problems.into_iter().map(|p| (c.key.clone(), p)));
    }
    out.problems.sort();
    Ok(out)
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
    let mut c = EntryCheck {
        key: e.key.clone(),
        bytes: 0,
        metadata_only: false,
        problems: Vec::new(),
    };
    let wanted = e.backup_version_id.as_deref();
    let head = match store.head(bucket, &e.backup_key, wanted).await {
        Ok(h) => h,
        // A version id the bucket does not know is a version that is gone.
        Err(PortError::NotFound(_) | PortError::Invalid(_)) if wanted.is_some() => None,
        Err(e) => return Err(e),
    };
    let Some(head) = head else {
        c.problems.push(Problem::Missing);
        return Ok(c);
    };
    if wanted.is_some() && replaced(store, bucket, e, wanted).await? {
        c.problems.push(Problem::Replaced);
    }
    if archived(&head.storage_class) && !restored(head.restore.as_deref()) {
        c.metadata_only = true;
        if head.size < e.size {
            c.problems.push(Problem::Truncated);
        } else if head.size != e.size {
            c.problems.push(Problem::Corrupted);
        }
        return Ok(c);
    }
    let version = wanted.or(head.version_id.as_deref());
    let body = match store.get(bucket, &e.backup_key, version, None).await {
        Ok(b) => b,
        Err(PortError::NotFound(_)) => {
            c.problems.push(Problem::Missing);
            return Ok(c);
        }
        Err(e) => return Err(e),
    };
    let d = digest(body).await?;
    c.bytes = d.bytes;
    if d.bytes < e.size {
        c.problems.push(Problem::Truncated);
    } else if d.bytes != e.size || d.sha256 != e.sha256 || d.crc64nvme != e.crc64nvme {
        c.problems.push(Problem::Corrupted);
    }
    if head
        .checksum_sha256
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
