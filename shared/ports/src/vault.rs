//! The archive-vault port: what archiving bundles in a Glacier vault needs, in the domain's
//! words. The AWS adapter is `lifeboat_aws::glacier::GlacierArchiveVault`; the in-memory
//! fake is `lifeboat_testkit::vault::InMemoryArchiveVault`.
//!
//! Lifeboat computes every tree hash itself: an upload sends the tree hash of the body
//! (and of each part), which Glacier checks the bytes against; a retrieval's output is
//! hashed again as it streams in and compared with the record, and with what Glacier
//! claims (see [`lifeboat_domain::archive`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::Digest as _;

use crate::PortResult;
use crate::objects::ByteChunks;
use lifeboat_domain::archive::{ReadBack, RetrievalTier};
use lifeboat_domain::tree_hash::{PartSize, TreeHash, TreeHasher};

/// An archive Glacier accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub archive_id: String,
    /// The tree hash Lifeboat computed and Glacier accepted.
    pub tree_hash: TreeHash,
    pub size: u64,
    /// Requests the upload took: 1, or the parts of a multipart upload.
    pub parts: u32,
}

/// A job's state, as Glacier reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    InProgress,
    Succeeded,
    Failed,
}

/// An archive-retrieval job, as Glacier describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveJob {
    pub job_id: String,
    pub status: JobStatus,
    /// Glacier's words on the job's state (why it failed).
    pub status_message: Option<String>,
    pub archive_id: Option<String>,
    /// The tree hash Glacier claims for the retrieved bytes (`SHA256TreeHash`): a claim,
    /// compared, never trusted.
    pub tree_hash: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A job's output: the bytes, streamed, and the tree hash Glacier sends along with them
/// (`x-amz-sha256-tree-hash`), if any.
pub struct JobOutput {
    pub claimed_tree_hash: Option<String>,
    pub chunks: ByteChunks,
}

impl std::fmt::Debug for JobOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobOutput")
            .field("claimed_tree_hash", &self.claimed_tree_hash)
            .finish_non_exhaustive()
    }
}

/// An archive as a vault inventory lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryEntry {
    pub archive_id: String,
    pub description: String,
    pub size: u64,
    /// The tree hash Glacier holds for the archive (hex).
    pub tree_hash: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// An inventory-retrieval job of a vault (whoever started it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryJob {
    pub job_id: String,
    pub status: JobStatus,
    pub created_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Reads a vault inventory (Glacier's JSON format: `{"ArchiveList": [{"ArchiveId",
/// "ArchiveDescription", "CreationDate", "Size", "SHA256TreeHash"}]}`).
pub fn parse_inventory(bytes: &[u8]) -> Result<Vec<InventoryEntry>, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Inventory {
        archive_list: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        archive_id: String,
        #[serde(default)]
        archive_description: Option<String>,
        #[serde(default)]
        creation_date: Option<String>,
        size: u64,
        #[serde(rename = "SHA256TreeHash")]
        sha256_tree_hash: String,
    }
    let inv: Inventory = serde_json::from_slice(bytes).map_err(|e| format!("vault inventory: {e}"))?;
    Ok(inv
        .archive_list
        .into_iter()
        .map(|e| InventoryEntry {
            archive_id: e.archive_id,
            description: e.archive_description.unwrap_or_default(),
            size: e.size,
            tree_hash: e.sha256_tree_hash.to_lowercase(),
            created_at: e
                .creation_date
                .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
                .map(|d| d.with_timezone(&Utc)),
        })
        .collect())
}

/// Glacier vault operations, in one region. Vaults are named per call.
#[async_trait]
pub trait ArchiveVault: Send + Sync {
    /// Uploads `body` as one archive described by `description` (printable ASCII; other
    /// characters are dropped): in one request up to the adapter's multipart threshold,
    /// else in parts, each with its range and tree hash. The tree hashes are Lifeboat's;
    /// an answer naming another tree hash is an error. `NotFound` when the vault does not
    /// exist.
    async fn upload(&self, vault: &str, description: &str, body: Vec<u8>) -> PortResult<Archived>;
    /// Starts an archive-retrieval job of the whole archive; returns the job id.
    async fn start_retrieval(
        &self,
        vault: &str,
        archive_id: &str,
        tier: RetrievalTier,
        description: &str,
    ) -> PortResult<String>;
    /// The job, or `None` when Glacier no longer knows it (job records expire).
    async fn describe_job(&self, vault: &str, job_id: &str) -> PortResult<Option<ArchiveJob>>;
    /// Streams a succeeded job's output. `InvalidState` when it is not ready; `NotFound`
    /// when the job (or its output) is gone.
    async fn job_output(&self, vault: &str, job_id: &str) -> PortResult<JobOutput>;
    /// Starts an inventory-retrieval job of the vault; returns the job id.
    async fn start_inventory(&self, vault: &str) -> PortResult<String>;
    /// The vault's inventory-retrieval jobs Glacier still knows (about a day after they
    /// complete), whoever started them.
    async fn inventory_jobs(&self, vault: &str) -> PortResult<Vec<InventoryJob>>;
    /// The archives a succeeded inventory job lists.
    async fn inventory(&self, vault: &str, job_id: &str) -> PortResult<Vec<InventoryEntry>>;
    /// Deletes an archive; `Ok(false)` when it was already gone (an inventory lists
    /// archives for a while after their deletion).
    async fn delete_archive(&self, vault: &str, archive_id: &str) -> PortResult<bool>;
}

/// What Glacier accepts as an archive description: printable ASCII, at most 1,024
/// characters.
pub fn archive_description(text: &str) -> String {
    text.chars().filter(|c| matches!(c, ' '..='~')).take(1024).collect()
}

/// Reads a job's output to its end, hashing it as it streams (tree hash and SHA-256,
/// constant memory), with Glacier's claims: the job's (`job_claim`) and the output's.
/// A read error ends it with that error.
pub async fn read_back(output: JobOutput, job_claim: Option<&str>) -> PortResult<ReadBack> {
    use futures::StreamExt;
    let mut chunks = output.chunks;
    let mut tree = TreeHasher::new();
    let mut sha = sha2::Sha256::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        tree.update(&chunk);
        sha.update(&chunk);
    }
    let bytes = tree.bytes();
    let mut claims: Vec<String> = job_claim.map(str::to_owned).into_iter().collect();
    if let Some(header) = output.claimed_tree_hash
        && !claims.iter().any(|c| c.eq_ignore_ascii_case(&header))
    {
        claims.push(header);
    }
    Ok(ReadBack {
        tree_hash: tree.finish().to_hex(),
        sha256: lifeboat_domain::manifest::hex(&sha.finalize()),
        bytes,
        claims,
    })
}

/// The largest archive one UploadArchive takes (4 GiB).
pub const MAX_SINGLE_UPLOAD: u64 = 4 * 1024 * lifeboat_domain::tree_hash::MIB;
/// Glacier's limit on the parts of one multipart upload.
pub const MAX_PARTS: u64 = 10_000;

/// When an upload goes in parts, and how large they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveTuning {
    /// Bodies larger than this are uploaded in parts (at most [`MAX_SINGLE_UPLOAD`]).
    pub multipart_threshold: u64,
    pub part_size: PartSize,
}

impl Default for ArchiveTuning {
    /// Parts of 16 MiB above 64 MiB: retries resend little, and a Lambda holds a part
    /// and its copy in the SDK comfortably.
    fn default() -> Self {
        Self {
            multipart_threshold: 64 * lifeboat_domain::tree_hash::MIB,
            part_size: PartSize::new(16 * lifeboat_domain::tree_hash::MIB).unwrap_or(PartSize::MIN),
        }
    }
}
