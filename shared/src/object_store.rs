//! The object-store port: what S3 backup, verification and restore need from S3, in the
//! domain's words. The AWS adapter is [`crate::aws::s3::S3ObjectStore`]; the in-memory
//! fake is [`fake::InMemoryObjectStore`] (feature `test-util`).

use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::domain::manifest::ListedObject;
use crate::domain::tiering::LifecycleRule;
use crate::ports::PortResult;

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectPage {
    pub objects: Vec<ListedObject>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_token: Option<String>,
}

/// One page of a delimited listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixPage {
    /// Sub-prefixes (common prefixes), in key order.
    pub prefixes: Vec<String>,
    /// Objects directly under the prefix on this page.
    pub loose_objects: u64,
    /// Pass back to get the next page; `None` on the last page.
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete.
    Governance,
    /// Nobody deletes the version before the date, not even the root user.
    Compliance,
}

impl LockMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "GOVERNANCE" => Some(Self::Governance),
            "COMPLIANCE" => Some(Self::Compliance),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Governance => "GOVERNANCE",
            Self::Compliance => "COMPLIANCE",
        }
    }
}

/// Object Lock retention of one object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    pub mode: LockMode,
    pub retain_until: DateTime<Utc>,
}

/// An object version's metadata, with S3's stored checksums (HeadObject with ChecksumMode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub key: String,
    pub version_id: Option<String>,
    pub size: u64,
    pub etag: String,
    pub storage_class: String,
    pub last_modified: Option<DateTime<Utc>>,
    /// S3's stored SHA-256, base64 as S3 reports it; a claim, compared but never trusted.
    pub checksum_sha256: Option<String>,
    pub checksum_crc64nvme: Option<String>,
    pub lock: Option<ObjectLock>,
    pub legal_hold: bool,
    /// `x-amz-restore` for archived objects (e.g. `ongoing-request="true"`).
    pub restore: Option<String>,
    pub metadata: Vec<(String, String)>,
}

/// Object bytes as a stream of chunks: memory stays constant whatever the object size.
pub type ByteChunks = Pin<Box<dyn Stream<Item = PortResult<Vec<u8>>> + Send>>;

/// An object being read.
pub struct ObjectBody {
    pub version_id: Option<String>,
    /// Content-Length announced by the store.
    pub size: u64,
    /// The version's ETag (quotes stripped), storage class and last modification, as the
    /// store announced them with the bytes.
    pub etag: Option<String>,
    pub storage_class: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
    pub chunks: ByteChunks,
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody")
            .field("version_id", &self.version_id)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Options of a write (put or copy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `None` keeps the bucket's default (`STANDARD`).
    pub storage_class: Option<String>,
    pub lock: Option<ObjectLock>,
    pub legal_hold: bool,
    /// User metadata (`x-amz-meta-*`).
    pub metadata: Vec<(String, String)>,
}

/// A server-side copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRequest {
    pub source_bucket: String,
    pub source_key: String,
    pub source_version_id: Option<String>,
    /// Copy only if the source still has this ETag (else `Conflict`).
    pub if_match: Option<String>,
    /// The source size: above the adapter's threshold the copy is multipart (UploadPartCopy).
    pub size: u64,
    pub bucket: String,
    pub key: String,
    pub options: WriteOptions,
}

/// What a write produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub version_id: Option<String>,
    pub etag: Option<String>,
    /// The SHA-256 S3 says it stored (base64), when it says one.
    pub checksum_sha256: Option<String>,
    /// Parts used (1 for a single request).
    pub parts: u32,
}

/// Restore speed of an archived object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreTier {
    Expedited,
    Standard,
    Bulk,
}

/// S3 operations used by the S3 data-protection functions. Buckets are named per call;
/// one adapter serves one region.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// One page (at most `max_keys`) of the current objects under `prefix`.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
        max_keys: u32,
    ) -> PortResult<ObjectPage> {
        self.list_page_after(bucket, prefix, None, token, max_keys).await
    }
    /// [`ObjectStore::list_page`] starting after the key `start_after` (S3's
    /// `StartAfter`; only the first page uses it, a `token` continues the listing).
    async fn list_page_after(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
        max_keys: u32,
    ) -> PortResult<ObjectPage>;
    /// One page of a listing delimited by `/`: the first-level sub-prefixes of `prefix`
    /// (each ending in `/`), and how many objects sit directly under `prefix`.
    async fn list_sub_prefixes(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
        max_keys: u32,
    ) -> PortResult<PrefixPage>;
    /// The object's metadata and stored checksums; `None` when missing (or a delete marker).
    async fn head(&self, bucket: &str, key: &str, version_id: Option<&str>) -> PortResult<Option<ObjectHead>>;
    /// Streams the object's bytes. `NotFound` when missing; `Conflict` when `if_match`
    /// no longer matches; `InvalidState` when archived and not restored.
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        if_match: Option<&str>,
    ) -> PortResult<ObjectBody>;
    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, options: &WriteOptions) -> PortResult<Written>;
    /// Server-side copy (multipart UploadPartCopy above the adapter's threshold), asking S3
    /// to store a SHA-256 checksum of the copy.
    async fn copy(&self, request: &CopyRequest) -> PortResult<Written>;
    /// Deletes one version (or, without a version id, adds a delete marker). A locked
    /// version is refused with `InvalidState`.
    async fn delete(&self, bucket: &str, key: &str, version_id: Option<&str>) -> PortResult<()>;
    async fn set_legal_hold(&self, bucket: &str, key: &str, version_id: Option<&str>, on: bool) -> PortResult<()>;
    /// Starts (or finds under way) the restore of an archived object for `days`.
    async fn restore(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        days: u32,
        tier: RestoreTier,
    ) -> PortResult<()>;
    /// Replaces the bucket's lifecycle rules whose id starts with `owner` (the rule-id
    /// prefix of the function that owns them) by `rules`, keeping every other rule;
    /// returns how many rules the bucket has afterwards.
    async fn replace_owned_rules(&self, bucket: &str, owner: &str, rules: &[LifecycleRule]) -> PortResult<usize>;
}

/// How long one writer may hold a bucket's lifecycle lease (a read and a write).
const LIFECYCLE_LEASE_FOR: chrono::Duration = chrono::Duration::seconds(60);
/// Tries at the lease before giving up as throttled: 100 ms doubling, about 3 s in all.
const LIFECYCLE_LEASE_TRIES: u32 = 5;

/// The catalog lease guarding `bucket`'s lifecycle configuration.
pub fn lifecycle_lease(bucket: &str) -> String {
    format!("lifecycle#{bucket}")
}

/// [`ObjectStore::replace_owned_rules`] under a per-bucket lease in the catalog. A bucket
/// has one lifecycle document and S3 offers no conditional write on it: two owners
/// (tier-backups and export-snapshots share the backup bucket) each keep the other's
/// rules, but read-modify-writes that interleave would still drop one owner's change.
/// The lease serializes them. A lease still held after a few short waits is `Throttled`
/// (the caller's run is retried); a crashed holder's lease expires after a minute.
pub async fn replace_owned_rules_leased(
    store: &dyn ObjectStore,
    catalog: &dyn crate::ports::Catalog,
    clock: &dyn crate::ports::Clock,
    bucket: &str,
    owner: &str,
    rules: &[LifecycleRule],
    holder: &str,
) -> PortResult<usize> {
    let lease = lifecycle_lease(bucket);
    let mut wait = std::time::Duration::from_millis(100);
    let mut tries = 0;
    loop {
        let now = clock.now();
        if catalog
            .acquire_lease(&lease, holder, now + LIFECYCLE_LEASE_FOR, now)
            .await?
        {
            break;
        }
        tries += 1;
        if tries >= LIFECYCLE_LEASE_TRIES {
            return Err(crate::ports::PortError::Throttled(format!(
                "the lifecycle configuration of {bucket} is being written by another run (lease {lease})"
            )));
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    let result = store.replace_owned_rules(bucket, owner, rules).await;
    if let Err(e) = catalog.release_lease(&lease, holder).await {
        tracing::warn!(error = %e, %lease, "could not release the lifecycle lease (it expires)");
    }
    result
}

/// Reads a whole (small) object into memory: manifests and checkpoints only.
pub async fn read_all(store: &dyn ObjectStore, bucket: &str, key: &str, limit: u64) -> PortResult<Vec<u8>> {
    use futures::StreamExt;
    let mut body = store.get(bucket, key, None, None).await?;
    if body.size > limit {
        return Err(crate::ports::PortError::Invalid(format!(
            "{key} is {} bytes, more than the {limit} allowed",
            body.size
        )));
    }
    let mut out = Vec::with_capacity(usize::try_from(body.size).unwrap_or(0));
    while let Some(chunk) = body.chunks.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[cfg(any(test, feature = "test-util"))]
pub mod fake;

/// Digests of a stream of bytes, computed by Lifeboat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// Base64, as S3 spells its stored checksum.
    pub sha256_base64: String,
    /// CRC64/NVME, lowercase hex.
    pub crc64nvme: String,
}

/// Streaming SHA-256 (sha2 picks SHA-NI or the ARMv8 SHA2 instructions at run time when
/// the CPU has them) and CRC64/NVME (crc-fast, SIMD): constant memory, one pass.
#[derive(Debug, Clone)]
pub struct StreamHasher {
    sha: sha2::Sha256,
    crc: crc_fast::Digest,
    bytes: u64,
}

impl Default for StreamHasher {
    fn default() -> Self {
        Self {
            sha: <sha2::Sha256 as sha2::Digest>::new(),
            crc: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme),
            bytes: 0,
        }
    }
}

impl StreamHasher {
    pub fn update(&mut self, chunk: &[u8]) {
        sha2::Digest::update(&mut self.sha, chunk);
        self.crc.update(chunk);
        self.bytes += chunk.len() as u64;
    }

    pub fn finish(self) -> Digests {
        use base64::Engine as _;
        let sum = sha2::Digest::finalize(self.sha);
        Digests {
            bytes: self.bytes,
            sha256: crate::domain::manifest::hex(&sum),
            sha256_base64: base64::engine::general_purpose::STANDARD.encode(sum),
            crc64nvme: format!("{:016x}", self.crc.finalize()),
        }
    }
}

/// Hashes a body to its end. A read error ends it with that error.
pub async fn digest(body: ObjectBody) -> PortResult<Digests> {
    use futures::StreamExt;
    let mut chunks = body.chunks;
    let mut h = StreamHasher::default();
    while let Some(chunk) = chunks.next().await {
        h.update(&chunk?);
    }
    Ok(h.finish())
}

pub mod runs;
pub mod settings;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a test failure

    use chrono::TimeZone;

    use super::fake::InMemoryObjectStore;
    use super::*;
    use crate::domain::tiering::{S3Class, TierStep};
    use crate::memory::{InMemoryCatalog, ManualClock};
    use crate::ports::{Catalog, Clock, PortError};

    fn rule(id: &str) -> LifecycleRule {
        LifecycleRule {
            id: id.to_owned(),
            prefix: "p/".to_owned(),
            larger_than: 131_072,
            transitions: vec![TierStep {
                after_days: 30,
                class: S3Class::GlacierIr,
            }],
        }
    }

    fn world() -> (InMemoryObjectStore, InMemoryCatalog, ManualClock) {
        let store = InMemoryObjectStore::new();
        store.create_bucket("backups", true);
        store.add_lifecycle_rule("backups", rule("someone-else keep"));
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        (store, InMemoryCatalog::new(), ManualClock::new(now))
    }

    #[tokio::test]
    async fn the_owned_rules_are_replaced_under_the_lease_and_the_lease_is_released() {
        let (store, catalog, clock) = world();
        let n = replace_owned_rules_leased(&store, &catalog, &clock, "backups", "mine ", &[rule("mine a")], "run-1")
            .await
            .unwrap();
        assert_eq!(n, 2);
        let ids: Vec<String> = store.lifecycle_rules("backups").into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["someone-else keep", "mine a"]);
        // Released: another writer takes it at once.
        let now = clock.now();
        assert!(
            catalog
                .acquire_lease(
                    &lifecycle_lease("backups"),
                    "other",
                    now + chrono::Duration::seconds(5),
                    now
                )
                .await
                .unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_that_cannot_get_the_lease_changes_nothing_and_is_throttled() {
        let (store, catalog, clock) = world();
        let now = clock.now();
        assert!(
            catalog
                .acquire_lease(
                    &lifecycle_lease("backups"),
                    "other",
                    now + chrono::Duration::seconds(60),
                    now
                )
                .await
                .unwrap()
        );
        let err = replace_owned_rules_leased(&store, &catalog, &clock, "backups", "mine ", &[rule("mine a")], "run-1")
            .await
            .unwrap_err();
        assert!(
            matches!(err, PortError::Throttled(ref m) if m.contains("lifecycle#backups")),
            "{err}"
        );
        let ids: Vec<String> = store.lifecycle_rules("backups").into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["someone-else keep"]);
        // Once the holder's lease has expired (it crashed), the writer gets through.
        clock.advance(chrono::Duration::seconds(61));
        replace_owned_rules_leased(&store, &catalog, &clock, "backups", "mine ", &[rule("mine a")], "run-1")
            .await
            .unwrap();
        assert_eq!(store.lifecycle_rules("backups").len(), 2);
    }
}
