//! An in-memory Glacier: vaults, archives checked against the uploader's tree hash like
//! Glacier checks them, retrieval jobs completed (or failed) by the test, archives that can
//! rot and claims that can lie; scripted failures; every call counted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use lifeboat_domain::archive::RetrievalTier;
use lifeboat_domain::tree_hash::{PartSize, parts, tree_hash};
use lifeboat_ports::vault::{ArchiveJob, ArchiveVault, Archived, InventoryEntry, InventoryJob, JobOutput, JobStatus};
use lifeboat_ports::{PortError, PortResult};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VaultOp {
    Upload,
    StartRetrieval,
    DescribeJob,
    JobOutput,
    StartInventory,
    ListJobs,
    Inventory,
    DeleteArchive,
}

/// An archive as the fake keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArchive {
    pub vault: String,
    pub description: String,
    pub bytes: Vec<u8>,
    pub parts: u32,
}

/// A retrieval job as the fake keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeJob {
    pub vault: String,
    pub archive_id: String,
    pub tier: RetrievalTier,
    pub description: String,
    pub status: JobStatus,
    pub status_message: Option<String>,
    /// A claim that overrides the honest one (a lying or buggy store).
    pub claimed_tree_hash: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    /// An inventory-retrieval job: the vault's archives when it started.
    pub inventory: Option<Vec<InventoryEntry>>,
}

#[derive(Debug, Default)]
struct State {
    vaults: Vec<String>,
    archives: BTreeMap<String, StoredArchive>,
    jobs: BTreeMap<String, FakeJob>,
    next: u64,
}

#[derive(Debug)]
pub struct InMemoryArchiveVault {
    state: Mutex<State>,
    failures: Mutex<VecDeque<(VaultOp, PortError)>>,
    calls: Mutex<HashMap<VaultOp, usize>>,
    /// Bodies above this are uploaded in parts of `part_size` (counted in `parts`).
    pub multipart_threshold: u64,
    pub part_size: PartSize,
    /// What completed jobs are stamped with.
    pub now: Mutex<DateTime<Utc>>,
}

impl Default for InMemoryArchiveVault {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            failures: Mutex::default(),
            calls: Mutex::default(),
            multipart_threshold: 64 * lifeboat_domain::tree_hash::MIB,
            part_size: PartSize::MIN,
            now: Mutex::new(DateTime::<Utc>::UNIX_EPOCH),
        }
    }
}

impl InMemoryArchiveVault {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bodies above `threshold` count as multipart uploads in parts of `part_size`.
    #[must_use]
    pub fn with_multipart(mut self, threshold: u64, part_size: PartSize) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size;
        self
    }

    /// A fake with `vault` created.
    pub fn with_vault(vault: &str) -> Self {
        let v = Self::new();
        v.add_vault(vault);
        v
    }

    pub fn add_vault(&self, vault: &str) {
        lock(&self.state).vaults.push(vault.to_owned());
    }

    pub fn archives(&self) -> BTreeMap<String, StoredArchive> {
        lock(&self.state).archives.clone()
    }

    pub fn jobs(&self) -> BTreeMap<String, FakeJob> {
        lock(&self.state).jobs.clone()
    }

    /// Every running job succeeds.
    pub fn complete_jobs(&self) {
        let now = *lock(&self.now);
        for job in lock(&self.state).jobs.values_mut() {
            if job.status == JobStatus::InProgress {
                job.status = JobStatus::Succeeded;
                job.completed_at = Some(now);
            }
        }
    }

    pub fn fail_job(&self, job_id: &str, message: &str) {
        let now = *lock(&self.now);
        if let Some(job) = lock(&self.state).jobs.get_mut(job_id) {
            job.status = JobStatus::Failed;
            job.status_message = Some(message.to_owned());
            job.completed_at = Some(now);
        }
    }

    /// Glacier forgets the job (its record expired).
    pub fn forget_job(&self, job_id: &str) {
        lock(&self.state).jobs.remove(job_id);
    }

    /// The job claims `tree_hash` for its output, whatever the bytes are.
    pub fn set_claim(&self, job_id: &str, tree_hash: &str) {
        if let Some(job) = lock(&self.state).jobs.get_mut(job_id) {
            job.claimed_tree_hash = Some(tree_hash.to_owned());
        }
    }

    /// Flips one bit of a stored archive (bit rot behind Glacier's back).
    pub fn corrupt(&self, archive_id: &str) {
        if let Some(a) = lock(&self.state).archives.get_mut(archive_id)
            && let Some(b) = a.bytes.last_mut()
        {
            *b ^= 1;
        }
    }

    /// The next call of `op` fails with `error` (queued in order).
    pub fn fail_next(&self, op: VaultOp, error: PortError) {
        lock(&self.failures).push_back((op, error));
    }

    pub fn calls(&self, op: VaultOp) -> usize {
        lock(&self.calls).get(&op).copied().unwrap_or(0)
    }

    fn enter(&self, op: VaultOp, vault: &str) -> PortResult<MutexGuard<'_, State>> {
        *lock(&self.calls).entry(op).or_insert(0) += 1;
        {
            let mut failures = lock(&self.failures);
            if let Some(i) = failures.iter().position(|(o, _)| *o == op)
                && let Some((_, e)) = failures.remove(i)
            {
                return Err(e);
            }
        }
        let state = lock(&self.state);
        if !state.vaults.iter().any(|v| v == vault) {
            return Err(PortError::NotFound(format!("vault {vault}")));
        }
        Ok(state)
    }
}

#[async_trait]
impl ArchiveVault for InMemoryArchiveVault {
    async fn upload(&self, vault: &str, description: &str, body: Vec<u8>) -> PortResult<Archived> {
        let mut state = self.enter(VaultOp::Upload, vault)?;
        let size = body.len() as u64;
        let (tree, parts) = if size > self.multipart_threshold {
            let (root, parts) = parts(&body, self.part_size);
            (root, u32::try_from(parts.len()).unwrap_or(u32::MAX))
        } else {
            (tree_hash(&body), 1)
        };
        state.next += 1;
        let archive_id = format!("archive-{:04}", state.next);
        state.archives.insert(
            archive_id.clone(),
            StoredArchive {
                vault: vault.to_owned(),
                description: lifeboat_ports::vault::archive_description(description),
                bytes: body,
                parts,
            },
        );
        Ok(Archived {
            archive_id,
            tree_hash: tree,
            size,
            parts,
        })
    }

    async fn start_retrieval(
        &self,
        vault: &str,
        archive_id: &str,
        tier: RetrievalTier,
        description: &str,
    ) -> PortResult<String> {
        let mut state = self.enter(VaultOp::StartRetrieval, vault)?;
        if state.archives.get(archive_id).is_none_or(|a| a.vault != vault) {
            return Err(PortError::NotFound(format!("archive {archive_id} in vault {vault}")));
        }
        state.next += 1;
        let job_id = format!("job-{:04}", state.next);
        state.jobs.insert(
            job_id.clone(),
            FakeJob {
                vault: vault.to_owned(),
                archive_id: archive_id.to_owned(),
                tier,
                description: description.to_owned(),
                status: JobStatus::InProgress,
                status_message: None,
                claimed_tree_hash: None,
                completed_at: None,
                inventory: None,
            },
        );
        Ok(job_id)
    }

    async fn describe_job(&self, vault: &str, job_id: &str) -> PortResult<Option<ArchiveJob>> {
        let state = self.enter(VaultOp::DescribeJob, vault)?;
        let Some(job) = state.jobs.get(job_id).filter(|j| j.vault == vault) else {
            return Ok(None);
        };
        // Like Glacier, the claim is the hash of the archive as stored (so bit rot shows
        // up as bytes that disagree with the record, not with the claim).
        let honest = (job.status == JobStatus::Succeeded)
            .then(|| {
                state
                    .archives
                    .get(&job.archive_id)
                    .map(|a| tree_hash(&a.bytes).to_hex())
            })
            .flatten();
        Ok(Some(ArchiveJob {
            job_id: job_id.to_owned(),
            status: job.status,
            status_message: job.status_message.clone(),
            archive_id: Some(job.archive_id.clone()),
            tree_hash: job.claimed_tree_hash.clone().or(honest),
            completed_at: job.completed_at,
        }))
    }

    async fn job_output(&self, vault: &str, job_id: &str) -> PortResult<JobOutput> {
        let state = self.enter(VaultOp::JobOutput, vault)?;
        let job = state
            .jobs
            .get(job_id)
            .filter(|j| j.vault == vault)
            .ok_or_else(|| PortError::NotFound(format!("job {job_id} in vault {vault}")))?;
        if job.status != JobStatus::Succeeded {
            return Err(PortError::InvalidState(format!("job {job_id} has no output")));
        }
        let bytes = state
            .archives
            .get(&job.archive_id)
            .map(|a| a.bytes.clone())
            .ok_or_else(|| PortError::NotFound(format!("archive {}", job.archive_id)))?;
        // Streamed in uneven chunks, like a network read.
        let chunks: Vec<PortResult<Vec<u8>>> = bytes.chunks(300_001).map(|c| Ok(c.to_vec())).collect();
        Ok(JobOutput {
            claimed_tree_hash: None,
            chunks: Box::pin(futures::stream::iter(chunks)),
        })
    }

    async fn start_inventory(&self, vault: &str) -> PortResult<String> {
        let mut state = self.enter(VaultOp::StartInventory, vault)?;
        let now = *lock(&self.now);
        let entries: Vec<InventoryEntry> = state
            .archives
            .iter()
            .filter(|(_, a)| a.vault == vault)
            .map(|(id, a)| InventoryEntry {
                archive_id: id.clone(),
                description: a.description.clone(),
                size: a.bytes.len() as u64,
                tree_hash: tree_hash(&a.bytes).to_hex(),
                created_at: Some(now),
            })
            .collect();
        state.next += 1;
        let job_id = format!("job-{:04}", state.next);
        state.jobs.insert(
            job_id.clone(),
            FakeJob {
                vault: vault.to_owned(),
                archive_id: String::new(),
                tier: RetrievalTier::Standard,
                description: "inventory".to_owned(),
                status: JobStatus::InProgress,
                status_message: None,
                claimed_tree_hash: None,
                completed_at: None,
                inventory: Some(entries),
            },
        );
        Ok(job_id)
    }

    async fn inventory_jobs(&self, vault: &str) -> PortResult<Vec<InventoryJob>> {
        let state = self.enter(VaultOp::ListJobs, vault)?;
        Ok(state
            .jobs
            .iter()
            .filter(|(_, j)| j.vault == vault && j.inventory.is_some())
            .map(|(id, j)| InventoryJob {
                job_id: id.clone(),
                status: j.status,
                created_at: None,
                completed_at: j.completed_at,
            })
            .collect())
    }

    async fn inventory(&self, vault: &str, job_id: &str) -> PortResult<Vec<InventoryEntry>> {
        let state = self.enter(VaultOp::Inventory, vault)?;
        let job = state
            .jobs
            .get(job_id)
            .filter(|j| j.vault == vault)
            .ok_or_else(|| PortError::NotFound(format!("job {job_id} in vault {vault}")))?;
        match (&job.inventory, job.status) {
            (Some(entries), JobStatus::Succeeded) => Ok(entries.clone()),
            (Some(_), _) => Err(PortError::InvalidState(format!("job {job_id} has no output"))),
            (None, _) => Err(PortError::Invalid(format!("job {job_id} is not an inventory"))),
        }
    }

    async fn delete_archive(&self, vault: &str, archive_id: &str) -> PortResult<bool> {
        let mut state = self.enter(VaultOp::DeleteArchive, vault)?;
        if state.archives.get(archive_id).is_some_and(|a| a.vault == vault) {
            state.archives.remove(archive_id);
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lifeboat_domain::tree_hash::MIB;
    use lifeboat_ports::vault::read_back;

    #[tokio::test]
    async fn archives_are_retrieved_after_their_job_completes() {
        let v = InMemoryArchiveVault::with_vault("v");
        let body = b"manifest bytes".to_vec();
        let a = v.upload("v", "lifeboat é test\n", body.clone()).await.unwrap();
        assert_eq!((a.size, a.parts, a.tree_hash), (14, 1, tree_hash(&body)));
        assert_eq!(v.archives()[&a.archive_id].description, "lifeboat  test");
        assert!(matches!(
            v.upload("nope", "", vec![1]).await,
            Err(PortError::NotFound(_))
        ));

        let job = v
            .start_retrieval("v", &a.archive_id, RetrievalTier::Expedited, "check")
            .await
            .unwrap();
        let running = v.describe_job("v", &job).await.unwrap().unwrap();
        assert_eq!((running.status, running.tree_hash), (JobStatus::InProgress, None));
        assert!(matches!(v.job_output("v", &job).await, Err(PortError::InvalidState(_))));
        v.complete_jobs();
        let done = v.describe_job("v", &job).await.unwrap().unwrap();
        assert_eq!(done.tree_hash, Some(a.tree_hash.to_hex()));
        let read = read_back(v.job_output("v", &job).await.unwrap(), done.tree_hash.as_deref())
            .await
            .unwrap();
        assert_eq!((read.bytes, read.tree_hash), (14, a.tree_hash.to_hex()));
        assert_eq!(read.claims, vec![a.tree_hash.to_hex()]);
        assert!(v.describe_job("v", "job-9999").await.unwrap().is_none());
        assert!(
            v.start_retrieval("v", "archive-9999", RetrievalTier::Bulk, "")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn large_bodies_go_in_parts_and_hash_the_same() {
        let v = InMemoryArchiveVault::with_vault("v").with_multipart(MIB, PartSize::MIN);
        let body: Vec<u8> = (0..(5 * MIB / 2)).map(|i| u8::try_from(i % 256).unwrap()).collect();
        let a = v.upload("v", "big", body.clone()).await.unwrap();
        assert_eq!((a.parts, a.tree_hash), (3, tree_hash(&body)));
    }
}
