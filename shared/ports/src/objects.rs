//! The object-store port: what S3 backup, verification and restore need from S3, in the
//! domain's words. The AWS adapter is `lifeboat_aws::s3::S3ObjectStore`; the in-memory
//! fake is `lifeboat_testkit::objects::InMemoryObjectStore`.

use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::PortResult;
use lifeboat_domain::manifest::ListedObject;
use lifeboat_domain::tiering::LifecycleRule;

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
    /// S3's stored SHA-256 (base64), sent with the bytes; a claim, compared but never
    /// trusted. The adapter also has the SDK check the bytes against S3's stored checksum:
    /// a mismatch ends the stream with [`PortError::Corrupt`](crate::PortError::Corrupt)
    /// after the last chunk.
    pub checksum_sha256: Option<String>,
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
    /// Streams the object's bytes with S3's stored checksum (ChecksumMode). `NotFound` when
    /// missing; `Conflict` when `if_match` no longer matches; `InvalidState` when archived
    /// and not restored; a stream ending in `Corrupt` when the bytes disagree with S3's
    /// stored checksum.
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

/// The largest single CopyObject S3 accepts (5 GiB).
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// The smallest part S3 accepts (except the last).
pub const MIN_PART: u64 = 5 * 1024 * 1024;

/// When copies go multipart, and in parts of what size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyTuning {
    /// Sources larger than this are copied with UploadPartCopy (at most 5 GiB).
    pub multipart_threshold: u64,
    /// Part size for UploadPartCopy (at least 5 MiB).
    pub part_size: u64,
}

impl Default for CopyTuning {
    fn default() -> Self {
        Self {
            multipart_threshold: MAX_SINGLE_COPY,
            part_size: 512 * 1024 * 1024,
        }
    }
}
