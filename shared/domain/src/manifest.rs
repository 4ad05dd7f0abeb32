//! S3 backup manifests: every object of a protected bucket/prefix as of one backup run,
//! with the checksums Lifeboat computed itself, and the diff that makes the next run
//! incremental. Stored as zstd-compressed JSON lines (a header line, then one line per
//! object); the manifest's own SHA-256 (of the compressed bytes) goes into the catalog.
//!
//! Also the checkpoint of a run in progress, and the names of runs and backup keys.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The format tag of the header line; readers refuse any other.
pub const FORMAT: &str = "lifeboat-manifest/1";
/// The longest S3 key.
pub const MAX_KEY_LEN: usize = 1024;
const ZSTD_LEVEL: i32 = 9;

/// One object as of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The source key.
    pub key: String,
    /// The source version id (absent when the source bucket is not versioned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub size: u64,
    /// The source ETag, quotes stripped.
    pub etag: String,
    /// SHA-256 of the bytes, lowercase hex, computed by Lifeboat.
    pub sha256: String,
    /// CRC64/NVME of the bytes, lowercase hex, computed by Lifeboat.
    pub crc64nvme: String,
    /// The storage class of the backup copy (`STANDARD`, `GLACIER_IR`, …).
    pub storage_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<DateTime<Utc>>,
    /// Where the copy is in the backup bucket, and which version of that key.
    pub backup_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_version_id: Option<String>,
    /// The run that made the copy (an unchanged object keeps the copy of an earlier run).
    pub copied_in: String,
    /// A tombstone: the object was deleted from the source since the previous run. It is
    /// listed once, so the deletion is visible; its copy stays restorable from older runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl ManifestEntry {
    /// The source object is unchanged since this entry was recorded: same version (when
    /// versioned), size and ETag. No call beyond the listing is needed to know it.
    pub fn unchanged(&self, listed: &ListedObject) -> bool {
        !self.deleted
            && self.size == listed.size
            && self.etag == listed.etag
            && (self.version_id.is_none() || listed.version_id.is_none() || self.version_id == listed.version_id)
    }
}

/// An object as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedObject {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub size: u64,
    pub etag: String,
    pub storage_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<DateTime<Utc>>,
}

/// The header line of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHeader {
    pub format: String,
    pub run: String,
    pub source_bucket: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// Live objects (tombstones not counted) and their total size.
    pub objects: u64,
    pub bytes: u64,
    /// How the run found what changed: a full listing of the source (absent) or the
    /// change feed on top of the previous manifest.
    #[serde(default, skip_serializing_if = "Listing::is_full")]
    pub listing: Listing,
    /// For a run from the change feed: when the full listing it builds on was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_listing_at: Option<DateTime<Utc>>,
}

/// How a run found what changed in the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    /// Listed every object of the source.
    #[default]
    Full,
    /// Read the keys named by the change feed since the previous run, and carried every
    /// other entry over from the previous manifest.
    Changes,
}

impl Listing {
    pub fn is_full(&self) -> bool {
        *self == Self::Full
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Changes => "changes",
        }
    }
}

/// Every object of a bucket/prefix as of one run, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub header: ManifestHeader,
    pub entries: Vec<ManifestEntry>,
}

/// Where a run's manifest is stored, and what it holds: recorded in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    pub source_bucket: String,
    pub prefix: String,
    pub backup_bucket: String,
    pub key: String,
    /// SHA-256 (hex) of the stored, compressed manifest.
    pub sha256: String,
    pub objects: u64,
    pub bytes: u64,
    /// Objects copied by this run (new or changed), and tombstones written.
    #[serde(default)]
    pub copied: u64,
    #[serde(default)]
    pub deleted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid zstd: {0}")]
    Compression(String),
    #[error("manifest line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("manifest has no header")]
    NoHeader,
    #[error("unsupported manifest format {0:?}")]
    Format(String),
    #[error("manifest SHA-256 is {actual}, the catalog records {expected}")]
    Checksum { expected: String, actual: String },
    /// The stored bytes disagree with the checksum the store keeps for them.
    #[error("manifest bytes disagree with the store's checksum: {0}")]
    StoreChecksum(String),
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

impl Manifest {
    /// A manifest of `entries` (sorted here by key); header counts computed.
    pub fn new(
        run: &str,
        source_bucket: &str,
        prefix: &str,
        created_at: DateTime<Utc>,
        mut entries: Vec<ManifestEntry>,
    ) -> Self {
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let live = entries.iter().filter(|e| !e.deleted);
        let (objects, bytes) = live.fold((0u64, 0u64), |(n, b), e| (n + 1, b.saturating_add(e.size)));
        Self {
            header: ManifestHeader {
                format: FORMAT.to_owned(),
                run: run.to_owned(),
                source_bucket: source_bucket.to_owned(),
                prefix: prefix.to_owned(),
                created_at,
                objects,
                bytes,
                listing: Listing::Full,
                full_listing_at: None,
            },
            entries,
        }
    }

    /// The manifest of a run from the change feed, built on the full listing of
    /// `full_listing_at`.
    #[must_use]
    pub fn from_changes(mut self, full_listing_at: DateTime<Utc>) -> Self {
        self.header.listing = Listing::Changes;
        self.header.full_listing_at = Some(full_listing_at);
        self
    }

    /// When the full listing this manifest rests on was made: its own run's time for a
    /// full listing.
    pub fn full_listing_at(&self) -> DateTime<Utc> {
        self.header.full_listing_at.unwrap_or(self.header.created_at)
    }

    /// Live entries (no tombstones).
    pub fn live(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(|e| !e.deleted)
    }

    /// Uncompressed JSON lines.
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 256);
        // Serializing plain structs of strings and numbers cannot fail.
        if let Ok(line) = serde_json::to_vec(&self.header) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        for e in &self.entries {
            if let Ok(line) = serde_json::to_vec(e) {
                out.extend_from_slice(&line);
                out.push(b'\n');
            }
        }
        out
    }

    /// The stored form: zstd-compressed JSON lines.
    pub fn encode(&self) -> Result<Vec<u8>, ManifestError> {
        let raw = self.to_jsonl();
        let mut enc = zstd::Encoder::new(Vec::with_capacity(raw.len() / 4), ZSTD_LEVEL)
            .map_err(|e| ManifestError::Compression(e.to_string()))?;
        enc.write_all(&raw)
            .map_err(|e| ManifestError::Compression(e.to_string()))?;
        enc.finish().map_err(|e| ManifestError::Compression(e.to_string()))
    }

    /// Reads the stored form back, streaming (never holds the uncompressed text).
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let dec = zstd::Decoder::new(bytes).map_err(|e| ManifestError::Compression(e.to_string()))?;
        let mut header: Option<ManifestHeader> = None;
        let mut entries = Vec::new();
        for (i, line) in BufReader::new(dec).lines().enumerate() {
            let line = line.map_err(|e| ManifestError::Compression(e.to_string()))?;
            if line.is_empty() {
                continue;
            }
            let bad = |e: serde_json::Error| ManifestError::Line {
                line: i + 1,
                reason: e.to_string(),
            };
            if header.is_none() {
                let h: ManifestHeader = serde_json::from_str(&line).map_err(bad)?;
                if h.format != FORMAT {
                    return Err(ManifestError::Format(h.format.chars().take(40).collect()));
                }
                header = Some(h);
            } else {
                entries.push(serde_json::from_str(&line).map_err(bad)?);
            }
        }
        let header = header.ok_or(ManifestError::NoHeader)?;
        Ok(Self { header, entries })
    }

    /// [`Manifest::decode`] after checking the stored bytes against the catalog's SHA-256.
    pub fn decode_verified(bytes: &[u8], expected_sha256: &str) -> Result<Self, ManifestError> {
        let actual = sha256_hex(bytes);
        if !actual.eq_ignore_ascii_case(expected_sha256) {
            return Err(ManifestError::Checksum {
                expected: expected_sha256.to_owned(),
                actual,
            });
        }
        Self::decode(bytes)
    }
}

/// What changed between two manifests, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestDiff {
    pub new: Vec<String>,
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Compares `current` with `previous` (tombstones count as absent).
pub fn diff(previous: &Manifest, current: &Manifest) -> ManifestDiff {
    let before: BTreeMap<&str, &ManifestEntry> = previous.live().map(|e| (e.key.as_str(), e)).collect();
    let after: BTreeMap<&str, &ManifestEntry> = current.live().map(|e| (e.key.as_str(), e)).collect();
    let mut d = ManifestDiff::default();
    for (k, e) in &after {
        match before.get(k) {
            None => d.new.push((*k).to_owned()),
            Some(p) if p.size == e.size && p.etag == e.etag && p.sha256 == e.sha256 && p.version_id == e.version_id => {
                d.unchanged.push((*k).to_owned());
            }
            Some(_) => d.changed.push((*k).to_owned()),
        }
    }
    d.deleted = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .map(|k| (*k).to_owned())
        .collect();
    d
}

/// The state of a run in progress, saved after every listing page so that an interrupted
/// run resumes where it stopped instead of copying again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub run: String,
    /// The listing continuation token for the next page; `None` with `listing_done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub listing_done: bool,
    /// Entries recorded so far, in listing (key) order.
    pub entries: Vec<ManifestEntry>,
    /// How many invocations have worked on the run.
    pub invocations: u32,
    /// A run from the change feed: the keys the feed named (received before a crash, their
    /// messages hidden for a while, so they are kept here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<String>>,
    /// When the run's first invocation started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

impl Checkpoint {
    pub fn start(run: &str) -> Self {
        Self {
            run: run.to_owned(),
            next_token: None,
            listing_done: false,
            entries: Vec::new(),
            invocations: 0,
            changes: None,
            started_at: None,
        }
    }

    /// zstd-compressed JSON.
    pub fn encode(&self) -> Result<Vec<u8>, ManifestError> {
        let raw = serde_json::to_vec(self).map_err(|e| ManifestError::Line {
            line: 0,
            reason: e.to_string(),
        })?;
        zstd::encode_all(raw.as_slice(), 3).map_err(|e| ManifestError::Compression(e.to_string()))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let raw = zstd::decode_all(bytes).map_err(|e| ManifestError::Compression(e.to_string()))?;
        serde_json::from_slice(&raw).map_err(|e| ManifestError::Line {
            line: 0,
            reason: e.to_string(),
        })
    }
}

/// The format tag of a shard part's header line.
pub const PART_FORMAT: &str = "lifeboat-shard-part/1";

/// The header line of a shard part: which run and which key range it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPartHeader {
    pub format: String,
    pub run: String,
    pub index: u32,
    pub from: String,
    pub to: Option<String>,
    pub objects: u64,
}

/// One shard's share of a run's manifest: the live entries of its key range, in key
/// order. Stored like a manifest (zstd JSON lines); its SHA-256 goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPart {
    pub header: ShardPartHeader,
    pub entries: Vec<ManifestEntry>,
}

impl ShardPart {
    pub fn new(run: &str, index: u32, from: &str, to: Option<&str>, mut entries: Vec<ManifestEntry>) -> Self {
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Self {
            header: ShardPartHeader {
                format: PART_FORMAT.to_owned(),
                run: run.to_owned(),
                index,
                from: from.to_owned(),
                to: to.map(str::to_owned),
                objects: entries.len() as u64,
            },
            entries,
        }
    }

    /// zstd-compressed JSON lines: the header, then one line per entry.
    pub fn encode(&self) -> Result<Vec<u8>, ManifestError> {
        let mut raw = Vec::with_capacity(128 + self.entries.len() * 256);
        let line = |v: Result<Vec<u8>, serde_json::Error>| {
            v.map_err(|e| ManifestError::Line {
                line: 0,
                reason: e.to_string(),
            })
        };
        raw.extend_from_slice(&line(serde_json::to_vec(&self.header))?);
        raw.push(b'\n');
        for e in &self.entries {
            raw.extend_from_slice(&line(serde_json::to_vec(e))?);
            raw.push(b'\n');
        }
        zstd::encode_all(raw.as_slice(), 3).map_err(|e| ManifestError::Compression(e.to_string()))
    }

    /// Reads a part back after checking its bytes against `expected_sha256`; the header
    /// count must match the entries.
    pub fn decode_verified(bytes: &[u8], expected_sha256: &str) -> Result<Self, ManifestError> {
        let actual = sha256_hex(bytes);
        if !actual.eq_ignore_ascii_case(expected_sha256) {
            return Err(ManifestError::Checksum {
                expected: expected_sha256.to_owned(),
                actual,
            });
        }
        let dec = zstd::Decoder::new(bytes).map_err(|e| ManifestError::Compression(e.to_string()))?;
        let mut header: Option<ShardPartHeader> = None;
        let mut entries = Vec::new();
        for (i, line) in BufReader::new(dec).lines().enumerate() {
            let line = line.map_err(|e| ManifestError::Compression(e.to_string()))?;
            if line.is_empty() {
                continue;
            }
            let bad = |e: serde_json::Error| ManifestError::Line {
                line: i + 1,
                reason: e.to_string(),
            };
            if header.is_none() {
                let h: ShardPartHeader = serde_json::from_str(&line).map_err(bad)?;
                if h.format != PART_FORMAT {
                    return Err(ManifestError::Format(h.format.chars().take(40).collect()));
                }
                header = Some(h);
            } else {
                entries.push(serde_json::from_str(&line).map_err(bad)?);
            }
        }
        let header = header.ok_or(ManifestError::NoHeader)?;
        if header.objects != entries.len() as u64 {
            return Err(ManifestError::Line {
                line: 1,
                reason: format!(
                    "header counts {} entries, the part has {}",
                    header.objects,
                    entries.len()
                ),
            });
        }
        Ok(Self { header, entries })
    }
}

/// A short stable tag of a prefix (8 hex digits of its SHA-256), for names.
pub fn prefix_tag(prefix: &str) -> String {
    sha256_hex(prefix.as_bytes())[..8].to_owned()
}

/// Bucket names reduced to what recovery point names allow (letters, digits, hyphens).
fn name_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The name of the run of `policy` over `bucket`/`prefix` in `slot` (compact form):
/// `lb-<policy>-<bucket>-<prefix tag>-<slot>`. Deterministic, so a replayed trigger names
/// the same run.
pub fn run_name(policy: &str, bucket: &str, prefix: &str, slot_compact: &str) -> String {
    format!(
        "lb-{policy}-{}-{}-{slot_compact}",
        name_safe(bucket),
        prefix_tag(prefix)
    )
}

/// Where the backup of `bucket`/`prefix` keeps its files in the backup bucket.
pub fn area(bucket: &str, prefix: &str) -> String {
    format!("lifeboat/{bucket}/{}", prefix_tag(prefix))
}

pub fn manifest_key(bucket: &str, prefix: &str, run: &str) -> String {
    format!("{}/manifests/{run}.jsonl.zst", area(bucket, prefix))
}

pub fn checkpoint_key(bucket: &str, prefix: &str, run: &str) -> String {
    format!("{}/checkpoints/{run}.json.zst", area(bucket, prefix))
}

/// The checkpoint of one shard of a sharded run.
pub fn shard_checkpoint_key(bucket: &str, prefix: &str, run: &str, index: u32) -> String {
    format!("{}/checkpoints/{run}.shard-{index:05}.json.zst", area(bucket, prefix))
}

/// The shard list of a sharded run, kept until the run completes so that a restarted
/// run is split the same way (its parts and checkpoints stay valid).
pub fn shard_plan_key(bucket: &str, prefix: &str, run: &str) -> String {
    format!("{}/checkpoints/{run}.shards.json", area(bucket, prefix))
}

/// Where the shard parts of a sharded run are kept until the run's manifest is written.
pub fn shard_parts_dir(bucket: &str, prefix: &str, run: &str) -> String {
    format!("{}/parts/{run}/", area(bucket, prefix))
}

/// The partial manifest of one shard of a sharded run.
pub fn shard_part_key(bucket: &str, prefix: &str, run: &str, index: u32) -> String {
    format!("{}{index:05}.jsonl.zst", shard_parts_dir(bucket, prefix, run))
}

/// The backup key of `key` copied in `run`: readable when it fits in an S3 key, else
/// named by the SHA-256 of the source key (the manifest maps it back).
pub fn backup_key(bucket: &str, prefix: &str, run: &str, key: &str) -> String {
    let base = format!("{}/data/{run}/", area(bucket, prefix));
    if base.len() + key.len() <= MAX_KEY_LEN {
        format!("{base}{key}")
    } else {
        format!("{}/hashed/{run}/{}", area(bucket, prefix), sha256_hex(key.as_bytes()))
    }
}

#[cfg(test)]
mod tests;
