//! Helpers over the object-store port: the leased lifecycle write, whole-object reads,
//! digests of a stream.

use lifeboat_domain::tiering::LifecycleRule;
use lifeboat_ports::PortResult;
use lifeboat_ports::objects::{ObjectBody, ObjectStore};

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
    catalog: &dyn lifeboat_ports::Catalog,
    clock: &dyn lifeboat_ports::Clock,
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
            return Err(lifeboat_ports::PortError::Throttled(format!(
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
        return Err(lifeboat_ports::PortError::Invalid(format!(
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
            sha256: lifeboat_domain::manifest::hex(&sum),
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
