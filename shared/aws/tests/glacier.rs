//! `GlacierArchiveVault` without network: every SDK call is answered by an
//! `aws-smithy-mocks` rule, the requests going through the SDK's own Glacier interceptors
//! (account `-`, API version, tree-hash header). The multipart path is tested only here:
//! moto 5.2.5 answers InitiateMultipartUpload with 404. moto also never checks a tree hash
//! (it answers UploadArchive with the plain SHA-256 of the body), so the checks of
//! Glacier's answers are pinned here too; the single-request path and retrievals also run
//! against moto (tests/tests/archive.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_glacier::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_glacier::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_glacier::operation::describe_job::DescribeJobOutput;
use aws_sdk_glacier::operation::initiate_job::InitiateJobOutput;
use aws_sdk_glacier::operation::initiate_multipart_upload::InitiateMultipartUploadOutput;
use aws_sdk_glacier::operation::upload_archive::UploadArchiveOutput;
use aws_sdk_glacier::operation::upload_multipart_part::UploadMultipartPartOutput;
use aws_sdk_glacier::types::StatusCode as JobCode;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use lifeboat_aws::glacier::GlacierArchiveVault;
use lifeboat_aws::retry_config;
use lifeboat_domain::archive::RetrievalTier;
use lifeboat_domain::tree_hash::{MIB, PartSize, tree_hash};
use lifeboat_ports::PortError;
use lifeboat_ports::vault::ArchiveTuning;
use lifeboat_ports::vault::{ArchiveVault, JobStatus};

const VAULT: &str = "lifeboat-archive";

fn own_partition() -> aws_sdk_glacier::config::retry::RetryPartition {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    aws_sdk_glacier::config::retry::RetryPartition::new(format!(
        "lifeboat-glacier-test-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Parts of 1 MiB above 1 MiB.
fn vault(mode: RuleMode, rules: &[&Rule]) -> GlacierArchiveVault {
    let partition = own_partition();
    let client = mock_client!(
        aws_sdk_glacier,
        mode,
        rules,
        move |c: aws_sdk_glacier::config::Builder| c.retry_config(retry_config()).retry_partition(partition.clone())
    );
    GlacierArchiveVault::new(
        client,
        ArchiveTuning {
            multipart_threshold: MIB,
            part_size: PartSize::new(MIB).unwrap(),
        },
    )
}

/// An error as Glacier (restJson1) sends it on the wire.
fn glacier_wire_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(r#"{{"code":"{code}","message":"{message}","type":"Client"}}"#)),
    );
    response.headers_mut().insert("x-amzn-ErrorType", code.to_owned());
    response
}

fn body(len: u64) -> Vec<u8> {
    (0..len).map(|i| u8::try_from((i * 31 + 7) % 251).unwrap()).collect()
}

/// Glacier is tested with aws-smithy-mocks for multipart uploads: moto has none. A 2.5 MiB
/// body in 1 MiB parts: InitiateMultipartUpload with the part size, one UploadMultipartPart
/// per part with its `bytes first-last/*` range and its own tree hash (computed here
/// independently, slice by slice), CompleteMultipartUpload with the size and the archive's
/// tree hash. Glacier's answers echo the hashes.
#[tokio::test(start_paused = true)]
async fn large_bodies_go_in_parts_each_with_its_range_and_tree_hash() {
    let data = body(5 * MIB / 2);
    let whole = tree_hash(&data).to_hex();
    let expected: Vec<(String, String)> = [(0, MIB), (MIB, 2 * MIB), (2 * MIB, 5 * MIB / 2)]
        .iter()
        .map(|(a, b)| {
            let slice = &data[usize::try_from(*a).unwrap()..usize::try_from(*b).unwrap()];
            (format!("bytes {a}-{}/*", b - 1), tree_hash(slice).to_hex())
        })
        .collect();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();

    let initiate = mock!(aws_sdk_glacier::Client::initiate_multipart_upload)
        .match_requests(|r| {
            r.vault_name() == Some(VAULT)
                && r.part_size() == Some("1048576")
                && r.archive_description() == Some("lifeboat us-west-2/s3/run sha256 abc")
        })
        .then_output(|| InitiateMultipartUploadOutput::builder().upload_id("up-1").build());
    let record = seen.clone();
    let part = mock!(aws_sdk_glacier::Client::upload_multipart_part)
        .match_requests(move |r| {
            record.lock().unwrap().push((
                r.range().unwrap_or_default().to_owned(),
                r.checksum().unwrap_or_default().to_owned(),
            ));
            r.vault_name() == Some(VAULT) && r.upload_id() == Some("up-1")
        })
        .then_compute_output(|r| {
            UploadMultipartPartOutput::builder()
                .checksum(r.checksum().unwrap_or_default())
                .build()
        });
    let w = whole.clone();
    let complete = mock!(aws_sdk_glacier::Client::complete_multipart_upload)
        .match_requests(move |r| {
            r.upload_id() == Some("up-1") && r.archive_size() == Some("2621440") && r.checksum() == Some(w.as_str())
        })
        .then_compute_output(|r| {
            CompleteMultipartUploadOutput::builder()
                .archive_id("archive-1")
                .checksum(r.checksum().unwrap_or_default())
                .build()
        });
    let v = vault(RuleMode::MatchAny, &[&initiate, &part, &complete]);
    let archived = v
        .upload(VAULT, "lifeboat us-west-2/s3/run sha256 abc\n", data.clone())
        .await
        .unwrap();
    assert_eq!(archived.archive_id, "archive-1");
    assert_eq!(
        (archived.parts, archived.size, archived.tree_hash.to_hex()),
        (3, 5 * MIB / 2, whole)
    );
    assert_eq!(*seen.lock().unwrap(), expected);
    assert_eq!(
        (initiate.num_calls(), part.num_calls(), complete.num_calls()),
        (1, 3, 1)
    );
}

/// Glacier is tested with aws-smithy-mocks for multipart uploads: moto has none. A part
/// Glacier refuses (its tree hash did not match the bytes it received) aborts the upload,
/// so no parts are left billed, and the refusal is returned as `Invalid`.
#[tokio::test(start_paused = true)]
async fn a_refused_part_aborts_the_upload() {
    let initiate = mock!(aws_sdk_glacier::Client::initiate_multipart_upload)
        .then_output(|| InitiateMultipartUploadOutput::builder().upload_id("up-2").build());
    let part = mock!(aws_sdk_glacier::Client::upload_multipart_part)
        .sequence()
        .output(|| UploadMultipartPartOutput::builder().build())
        .http_response(|| {
            glacier_wire_error(
                400,
                "InvalidParameterValueException",
                "Checksum mismatch: expected abc but got def",
            )
        })
        .build();
    let abort = mock!(aws_sdk_glacier::Client::abort_multipart_upload)
        .match_requests(|r| r.upload_id() == Some("up-2") && r.vault_name() == Some(VAULT))
        .then_output(|| AbortMultipartUploadOutput::builder().build());
    let complete = mock!(aws_sdk_glacier::Client::complete_multipart_upload)
        .then_output(|| CompleteMultipartUploadOutput::builder().archive_id("never").build());
    let v = vault(RuleMode::MatchAny, &[&initiate, &part, &abort, &complete]);
    let err = v.upload(VAULT, "x", body(3 * MIB)).await.unwrap_err();
    assert!(
        matches!(&err, PortError::Invalid(m) if m.contains("UploadMultipartPart") && m.contains("Checksum mismatch")),
        "{err}"
    );
    assert_eq!((part.num_calls(), abort.num_calls(), complete.num_calls()), (2, 1, 0));
}

/// moto never checks tree hashes, so this is pinned here: an answer naming another tree
/// hash than Lifeboat's is an error naming the archive, not an archive.
#[tokio::test(start_paused = true)]
async fn an_answer_with_another_tree_hash_is_refused() {
    let data = body(1000);
    let ours = tree_hash(&data).to_hex();
    let sent = ours.clone();
    let upload = mock!(aws_sdk_glacier::Client::upload_archive)
        .match_requests(move |r| r.checksum() == Some(sent.as_str()) && r.vault_name() == Some(VAULT))
        .then_output(|| {
            UploadArchiveOutput::builder()
                .archive_id("archive-9")
                .checksum("0".repeat(64))
                .build()
        });
    let v = vault(RuleMode::MatchAny, &[&upload]);
    let err = v.upload(VAULT, "x", data).await.unwrap_err();
    assert!(
        matches!(&err, PortError::Invalid(m) if m.contains("archive-9") && m.contains(&ours)),
        "{err}"
    );
}

/// Jobs as Glacier describes them; error codes mapped to the port's kinds: a forgotten job
/// is `None`, no Expedited capacity is `Throttled`, the retrieval policy's limit is
/// `QuotaExceeded`.
#[tokio::test(start_paused = true)]
async fn jobs_are_described_and_errors_mapped() {
    let hash = "ab".repeat(32);
    let h = hash.clone();
    let describe = mock!(aws_sdk_glacier::Client::describe_job)
        .match_requests(|r| r.job_id() == Some("job-1"))
        .then_output(move || {
            DescribeJobOutput::builder()
                .job_id("job-1")
                .status_code(JobCode::Succeeded)
                .archive_id("archive-1")
                .sha256_tree_hash(h.clone())
                .completion_date("2026-11-24T05:00:00.000Z")
                .build()
        });
    let gone = mock!(aws_sdk_glacier::Client::describe_job)
        .match_requests(|r| r.job_id() == Some("job-2"))
        .then_http_response(|| glacier_wire_error(404, "ResourceNotFoundException", "The job ID was not found"));
    let capacity = mock!(aws_sdk_glacier::Client::initiate_job)
        .match_requests(|r| r.job_parameters().and_then(|p| p.tier()) == Some("Expedited"))
        .then_http_response(|| glacier_wire_error(400, "InsufficientCapacityException", "no capacity"));
    let policy = mock!(aws_sdk_glacier::Client::initiate_job)
        .match_requests(|r| r.job_parameters().and_then(|p| p.tier()) == Some("Bulk"))
        .then_http_response(|| glacier_wire_error(400, "PolicyEnforcedException", "over the free tier"));
    let standard = mock!(aws_sdk_glacier::Client::initiate_job)
        .match_requests(|r| {
            r.job_parameters().is_some_and(|p| {
                p.tier() == Some("Standard")
                    && p.r#type() == Some("archive-retrieval")
                    && p.archive_id() == Some("archive-1")
            })
        })
        .then_output(|| InitiateJobOutput::builder().job_id("job-3").build());
    let v = vault(RuleMode::MatchAny, &[&describe, &gone, &capacity, &policy, &standard]);

    let job = v.describe_job(VAULT, "job-1").await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.tree_hash.as_deref()),
        (JobStatus::Succeeded, Some(hash.as_str()))
    );
    assert_eq!(job.completed_at.unwrap().to_rfc3339(), "2026-11-24T05:00:00+00:00");
    assert_eq!(v.describe_job(VAULT, "job-2").await.unwrap(), None);
    let err = v
        .start_retrieval(VAULT, "archive-1", RetrievalTier::Expedited, "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Throttled(_)), "{err}");
    let err = v
        .start_retrieval(VAULT, "archive-1", RetrievalTier::Bulk, "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::QuotaExceeded(_)), "{err}");
    assert_eq!(
        v.start_retrieval(VAULT, "archive-1", RetrievalTier::Standard, "d")
            .await
            .unwrap(),
        "job-3"
    );
}

/// Reconciliation's calls, where moto cannot show them: ListJobs is paged (the marker is
/// followed) and only inventory jobs are kept; DeleteArchive of an archive already gone
/// (404) answers `false`, not an error; an inventory in Glacier's JSON is read.
#[tokio::test(start_paused = true)]
async fn inventory_jobs_are_paged_and_deleting_a_gone_archive_is_not_an_error() {
    use aws_sdk_glacier::operation::delete_archive::DeleteArchiveOutput;
    use aws_sdk_glacier::operation::list_jobs::ListJobsOutput;
    use aws_sdk_glacier::types::{ActionCode, GlacierJobDescription};
    let job = |id: &str, action: ActionCode, code: JobCode| {
        GlacierJobDescription::builder()
            .job_id(id)
            .action(action)
            .status_code(code)
            .creation_date("2026-11-24T01:00:00.000Z")
            .build()
    };
    let (j1, j2, j3) = (
        job("inv-1", ActionCode::InventoryRetrieval, JobCode::Succeeded),
        job("arc-1", ActionCode::ArchiveRetrieval, JobCode::InProgress),
        job("inv-2", ActionCode::InventoryRetrieval, JobCode::InProgress),
    );
    let first = mock!(aws_sdk_glacier::Client::list_jobs)
        .match_requests(|r| r.marker().is_none())
        .then_output(move || {
            ListJobsOutput::builder()
                .job_list(j1.clone())
                .job_list(j2.clone())
                .marker("page-2")
                .build()
        });
    let second = mock!(aws_sdk_glacier::Client::list_jobs)
        .match_requests(|r| r.marker() == Some("page-2"))
        .then_output(move || ListJobsOutput::builder().job_list(j3.clone()).build());
    let deleted = mock!(aws_sdk_glacier::Client::delete_archive)
        .match_requests(|r| r.archive_id() == Some("there"))
        .then_output(|| DeleteArchiveOutput::builder().build());
    let gone = mock!(aws_sdk_glacier::Client::delete_archive)
        .match_requests(|r| r.archive_id() == Some("gone"))
        .then_http_response(|| glacier_wire_error(404, "ResourceNotFoundException", "Archive not found"));
    let v = vault(RuleMode::MatchAny, &[&first, &second, &deleted, &gone]);
    let jobs = v.inventory_jobs(VAULT).await.unwrap();
    let seen: Vec<(&str, JobStatus)> = jobs.iter().map(|j| (j.job_id.as_str(), j.status)).collect();
    assert_eq!(
        seen,
        [("inv-1", JobStatus::Succeeded), ("inv-2", JobStatus::InProgress)]
    );
    assert!(jobs[0].created_at.is_some());
    assert!(v.delete_archive(VAULT, "there").await.unwrap());
    assert!(!v.delete_archive(VAULT, "gone").await.unwrap());

    let inventory = br#"{"VaultARN":"arn:aws:glacier:us-west-2:123456789012:vaults/v","InventoryDate":"2026-11-24T02:00:00Z",
        "ArchiveList":[{"ArchiveId":"a1","ArchiveDescription":"lifeboat x sha256 y","CreationDate":"2026-11-23T18:00:00Z",
        "Size":3,"SHA256TreeHash":"ABCD"}]}"#;
    let entries = lifeboat_ports::vault::parse_inventory(inventory).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].archive_id.as_str(),
            entries[0].description.as_str(),
            entries[0].size,
            entries[0].tree_hash.as_str()
        ),
        ("a1", "lifeboat x sha256 y", 3, "abcd")
    );
    assert!(lifeboat_ports::vault::parse_inventory(b"{}").is_err());
}
