//! [`ArchiveVault`] on Glacier vaults (aws-sdk-glacier), account `-` (the caller's).
//!
//! Every request that carries bytes carries the tree hash Lifeboat computed for them
//! (`x-amz-sha256-tree-hash`), so Glacier refuses bytes that changed on the way; the SDK
//! only fills that header in when it is missing. Bodies up to the multipart threshold go
//! in one UploadArchive; larger ones through InitiateMultipartUpload, one
//! UploadMultipartPart per part (`Content-Range: bytes <first>-<last>/*` and the part's
//! tree hash) and CompleteMultipartUpload with the archive's size and tree hash. A failed
//! part aborts the upload, so no parts are left billed.

use async_trait::async_trait;
use aws_sdk_glacier::Client;
use aws_sdk_glacier::primitives::ByteStream;
use aws_sdk_glacier::types::{ActionCode, JobParameters, StatusCode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use super::port_error;
use lifeboat_domain::archive::RetrievalTier;
use lifeboat_domain::tree_hash::{TreeHash, parts, tree_hash};
use lifeboat_ports::vault::{
    ArchiveJob, ArchiveTuning, ArchiveVault, Archived, InventoryEntry, InventoryJob, JobOutput, JobStatus, MAX_PARTS,
    MAX_SINGLE_UPLOAD, archive_description, parse_inventory,
};
use lifeboat_ports::{PortError, PortResult};

/// A Glacier client for `region` (where the vault is), counting its calls.
pub fn client(base: &aws_config::SdkConfig, region: &lifeboat_domain::Region) -> Client {
    Client::from_conf(
        aws_sdk_glacier::config::Builder::from(base)
            .region(aws_sdk_glacier::config::Region::new(region.to_string()))
            .interceptor(super::calls::CountCalls)
            .build(),
    )
}

#[derive(Debug, Clone)]
pub struct GlacierArchiveVault {
    client: Client,
    tuning: ArchiveTuning,
}

impl GlacierArchiveVault {
    pub fn new(client: Client, tuning: ArchiveTuning) -> Self {
        Self {
            client,
            tuning: ArchiveTuning {
                multipart_threshold: tuning.multipart_threshold.min(MAX_SINGLE_UPLOAD),
                ..tuning
            },
        }
    }

    async fn upload_single(&self, vault: &str, description: &str, body: Vec<u8>) -> PortResult<Archived> {
        let size = body.len() as u64;
        let tree = tree_hash(&body);
        let out = self
            .client
            .upload_archive()
            .vault_name(vault)
            .archive_description(description)
            .checksum(tree.to_hex())
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| glacier_error("UploadArchive", e))?;
        let archive_id = required("UploadArchive", "archive id", out.archive_id())?;
        agreed("UploadArchive", &archive_id, tree, out.checksum())?;
        Ok(Archived {
            archive_id,
            tree_hash: tree,
            size,
            parts: 1,
        })
    }

    async fn upload_parts(&self, vault: &str, description: &str, body: &[u8]) -> PortResult<Archived> {
        let size = body.len() as u64;
        let part_size = self.tuning.part_size;
        let (tree, parts) = parts(body, part_size);
        if parts.len() as u64 > MAX_PARTS {
            return Err(PortError::Invalid(format!(
                "{size} bytes in parts of {} bytes would take {} parts; Glacier allows {MAX_PARTS}",
                part_size.bytes(),
                parts.len()
            )));
        }
        let upload_id = self
            .client
            .initiate_multipart_upload()
            .vault_name(vault)
            .archive_description(description)
            .part_size(part_size.bytes().to_string())
            .send()
            .await
            .map_err(|e| glacier_error("InitiateMultipartUpload", e))?
            .upload_id()
            .map(str::to_owned);
        let upload_id = required("InitiateMultipartUpload", "upload id", upload_id.as_deref())?;
        let result = async {
            for part in &parts {
                let (Ok(first), Ok(end)) = (usize::try_from(part.first), usize::try_from(part.last + 1)) else {
                    return Err(PortError::Invalid("part range beyond memory".into()));
                };
                let bytes = body.get(first..end).unwrap_or_default().to_vec();
                let out = self
                    .client
                    .upload_multipart_part()
                    .vault_name(vault)
                    .upload_id(&upload_id)
                    .range(format!("bytes {}-{}/*", part.first, part.last))
                    .checksum(part.tree_hash.to_hex())
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(|e| glacier_error("UploadMultipartPart", e))?;
                agreed("UploadMultipartPart", &upload_id, part.tree_hash, out.checksum())?;
            }
            let out = self
                .client
                .complete_multipart_upload()
                .vault_name(vault)
                .upload_id(&upload_id)
                .archive_size(size.to_string())
                .checksum(tree.to_hex())
                .send()
                .await
                .map_err(|e| glacier_error("CompleteMultipartUpload", e))?;
            let archive_id = required("CompleteMultipartUpload", "archive id", out.archive_id())?;
            agreed("CompleteMultipartUpload", &archive_id, tree, out.checksum())?;
            Ok(archive_id)
        }
        .await;
        match result {
            Ok(archive_id) => Ok(Archived {
                archive_id,
                tree_hash: tree,
                size,
                parts: u32::try_from(parts.len()).unwrap_or(u32::MAX),
            }),
            Err(e) => {
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .vault_name(vault)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(upload_id = %upload_id, error = %glacier_error("AbortMultipartUpload", abort), "could not abort the multipart upload; its parts stay until Glacier drops them");
                }
                Err(e)
            }
        }
    }
}

fn required(operation: &str, what: &str, value: Option<&str>) -> PortResult<String> {
    value
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| PortError::Invalid(format!("{operation} returned no {what}")))
}

/// Glacier's answer names the tree hash it computed: it must be Lifeboat's.
fn agreed(operation: &str, subject: &str, ours: TreeHash, theirs: Option<&str>) -> PortResult<()> {
    match theirs {
        Some(t) if !t.eq_ignore_ascii_case(&ours.to_hex()) => Err(PortError::Invalid(format!(
            "{operation} ({subject:.140}): Glacier answered tree hash {t:.64}, Lifeboat computed {ours}"
        ))),
        _ => Ok(()),
    }
}

/// Glacier's error codes that the shared mapping does not know, then the shared mapping.
#[allow(clippy::needless_pass_by_value)]
fn glacier_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().unwrap_or_default().to_owned();
    let mapped = port_error(operation, err);
    let remap: fn(String) -> PortError = match code.as_str() {
        // moto names a missing vault so; Glacier says ResourceNotFoundException.
        "VaultNotFound" => PortError::NotFound,
        // The retrieval policy's byte budget, or no Expedited capacity right now.
        "PolicyEnforcedException" => PortError::QuotaExceeded,
        "InsufficientCapacityException" => PortError::Throttled,
        "RequestTimeoutException" => PortError::Unavailable,
        _ => return mapped,
    };
    remap(message_of(mapped))
}

fn message_of(e: PortError) -> String {
    match e {
        PortError::Conflict(m)
        | PortError::AlreadyExists(m)
        | PortError::NotFound(m)
        | PortError::Throttled(m)
        | PortError::QuotaExceeded(m)
        | PortError::KmsKey(m)
        | PortError::InvalidState(m)
        | PortError::Invalid(m)
        | PortError::Corrupt(m)
        | PortError::Unavailable(m) => m,
    }
}

fn job_status(code: Option<&StatusCode>) -> JobStatus {
    match code {
        Some(StatusCode::Succeeded) => JobStatus::Succeeded,
        Some(StatusCode::Failed) => JobStatus::Failed,
        _ => JobStatus::InProgress,
    }
}

fn parse_date(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

#[async_trait]
impl ArchiveVault for GlacierArchiveVault {
    async fn upload(&self, vault: &str, description: &str, body: Vec<u8>) -> PortResult<Archived> {
        let description = archive_description(description);
        if body.len() as u64 > self.tuning.multipart_threshold {
            self.upload_parts(vault, &description, &body).await
        } else {
            self.upload_single(vault, &description, body).await
        }
    }

    async fn start_retrieval(
        &self,
        vault: &str,
        archive_id: &str,
        tier: RetrievalTier,
        description: &str,
    ) -> PortResult<String> {
        let out = self
            .client
            .initiate_job()
            .vault_name(vault)
            .job_parameters(
                JobParameters::builder()
                    .r#type("archive-retrieval")
                    .archive_id(archive_id)
                    .tier(tier.as_str())
                    .description(archive_description(description))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| glacier_error("InitiateJob", e))?;
        required("InitiateJob", "job id", out.job_id())
    }

    async fn describe_job(&self, vault: &str, job_id: &str) -> PortResult<Option<ArchiveJob>> {
        let out = match self
            .client
            .describe_job()
            .vault_name(vault)
            .job_id(job_id)
            .send()
            .await
            .map_err(|e| glacier_error("DescribeJob", e))
        {
            Ok(out) => out,
            Err(PortError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(ArchiveJob {
            job_id: out.job_id().unwrap_or(job_id).to_owned(),
            status: job_status(out.status_code()),
            status_message: out.status_message().map(str::to_owned),
            archive_id: out.archive_id().map(str::to_owned),
            tree_hash: out
                .sha256_tree_hash()
                .or(out.archive_sha256_tree_hash())
                .map(str::to_owned),
            completed_at: parse_date(out.completion_date()),
        }))
    }

    async fn job_output(&self, vault: &str, job_id: &str) -> PortResult<JobOutput> {
        let out = self
            .client
            .get_job_output()
            .vault_name(vault)
            .job_id(job_id)
            .send()
            .await
            .map_err(|e| glacier_error("GetJobOutput", e))?;
        let claimed_tree_hash = out.checksum().map(str::to_owned);
        let label = format!("job {job_id} of vault {vault}");
        let chunks = futures::stream::unfold((out.body, label), |(mut body, label)| async move {
            match body.next().await {
                None => None,
                Some(Ok(bytes)) => Some((Ok(bytes.to_vec()), (body, label))),
                Some(Err(e)) => Some((
                    Err(PortError::Unavailable(format!("reading the output of {label}: {e}"))),
                    (body, label),
                )),
            }
        });
        Ok(JobOutput {
            claimed_tree_hash,
            chunks: Box::pin(chunks),
        })
    }

    async fn start_inventory(&self, vault: &str) -> PortResult<String> {
        let out = self
            .client
            .initiate_job()
            .vault_name(vault)
            .job_parameters(
                JobParameters::builder()
                    .r#type("inventory-retrieval")
                    .format("JSON")
                    .description("lifeboat reconcile")
                    .build(),
            )
            .send()
            .await
            .map_err(|e| glacier_error("InitiateJob", e))?;
        required("InitiateJob", "job id", out.job_id())
    }

    async fn inventory_jobs(&self, vault: &str) -> PortResult<Vec<InventoryJob>> {
        let mut jobs = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_jobs()
                .vault_name(vault)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| glacier_error("ListJobs", e))?;
            jobs.extend(
                out.job_list()
                    .iter()
                    .filter(|j| j.action() == Some(&ActionCode::InventoryRetrieval))
                    .filter_map(|j| {
                        Some(InventoryJob {
                            job_id: j.job_id()?.to_owned(),
                            status: job_status(j.status_code()),
                            created_at: parse_date(j.creation_date()),
                            completed_at: parse_date(j.completion_date()),
                        })
                    }),
            );
            match out.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
                _ => return Ok(jobs),
            }
        }
    }

    async fn inventory(&self, vault: &str, job_id: &str) -> PortResult<Vec<InventoryEntry>> {
        use futures::StreamExt as _;
        let out = self.job_output(vault, job_id).await?;
        let mut chunks = out.chunks;
        let mut bytes = Vec::new();
        while let Some(chunk) = chunks.next().await {
            bytes.extend_from_slice(&chunk?);
            if bytes.len() as u64 > MAX_INVENTORY_BYTES {
                return Err(PortError::Invalid(format!(
                    "the inventory of vault {vault} is larger than {MAX_INVENTORY_BYTES} bytes"
                )));
            }
        }
        parse_inventory(&bytes).map_err(PortError::Invalid)
    }

    async fn delete_archive(&self, vault: &str, archive_id: &str) -> PortResult<bool> {
        match self
            .client
            .delete_archive()
            .vault_name(vault)
            .archive_id(archive_id)
            .send()
            .await
            .map_err(|e| glacier_error("DeleteArchive", e))
        {
            Ok(_) => Ok(true),
            Err(PortError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The largest vault inventory read (Lifeboat's bundles are a few per run).
const MAX_INVENTORY_BYTES: u64 = 256 * 1024 * 1024;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_threshold_stays_within_one_upload() {
        let client = Client::from_conf(
            aws_sdk_glacier::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_sdk_glacier::config::Region::new("us-east-1"))
                .build(),
        );
        let v = GlacierArchiveVault::new(
            client,
            ArchiveTuning {
                multipart_threshold: u64::MAX,
                part_size: lifeboat_domain::tree_hash::PartSize::MIN,
            },
        );
        assert_eq!(v.tuning.multipart_threshold, MAX_SINGLE_UPLOAD);
    }

    #[test]
    fn another_tree_hash_in_an_answer_is_an_error() {
        let ours = tree_hash(b"x");
        assert!(agreed("Op", "a", ours, Some(&ours.to_hex().to_uppercase())).is_ok());
        assert!(agreed("Op", "a", ours, None).is_ok());
        let err = agreed("Op", "a", ours, Some(&"0".repeat(64))).unwrap_err();
        assert!(matches!(err, PortError::Invalid(m) if m.contains("Lifeboat computed")));
    }
}
