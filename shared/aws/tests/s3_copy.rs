//! A large copy (CreateMultipartUpload, UploadPartCopy, CompleteMultipartUpload) carries
//! the copy's Object Lock, legal hold and class on CreateMultipartUpload, as AWS takes them.
//! moto 5.2.5 drops a multipart upload's lock on completion, so `tests/tests/export.rs`
//! can check the lock of single copies only; this pins the requests the adapter sends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput;
use aws_sdk_s3::types::{CopyPartResult, ObjectLockLegalHoldStatus, ObjectLockMode, StorageClass};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::{TimeZone, Utc};
use lifeboat_aws::s3::S3ObjectStore;
use lifeboat_ports::objects::{CopyRequest, CopyTuning, LockMode, ObjectLock, ObjectStore, WriteOptions};

#[tokio::test]
async fn a_multipart_copy_asks_for_the_lock_the_legal_hold_and_the_class_when_it_starts() {
    let until = Utc.with_ymd_and_hms(2027, 1, 6, 18, 0, 0).unwrap();
    let create = mock!(aws_sdk_s3::Client::create_multipart_upload)
        .match_requests(move |r| {
            r.object_lock_mode() == Some(&ObjectLockMode::Governance)
                && r.object_lock_retain_until_date().map(aws_smithy_types::DateTime::secs) == Some(until.timestamp())
                && r.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On)
                && r.storage_class() == Some(&StorageClass::DeepArchive)
        })
        .then_output(|| CreateMultipartUploadOutput::builder().upload_id("u-1").build());
    let part = mock!(aws_sdk_s3::Client::upload_part_copy)
        .match_requests(|r| r.upload_id() == Some("u-1"))
        .then_output(|| {
            UploadPartCopyOutput::builder()
                .copy_part_result(CopyPartResult::builder().e_tag("\"p\"").build())
                .build()
        });
    let complete = mock!(aws_sdk_s3::Client::complete_multipart_upload)
        .match_requests(|r| r.upload_id() == Some("u-1"))
        .then_output(|| {
            CompleteMultipartUploadOutput::builder()
                .version_id("v-2")
                .e_tag("\"e\"")
                .build()
        });
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&create, &part, &complete]);
    let store = S3ObjectStore::new(
        client,
        CopyTuning {
            multipart_threshold: 5 * 1024 * 1024,
            part_size: 5 * 1024 * 1024,
        },
    );
    let written = store
        .copy(&CopyRequest {
            source_bucket: "vault".into(),
            source_key: "lifeboat/exports/data/part-0.parquet".into(),
            source_version_id: Some("v-1".into()),
            if_match: Some("etag".into()),
            size: 12 * 1024 * 1024,
            bucket: "vault".into(),
            key: "lifeboat/exports/data/part-0.parquet".into(),
            options: WriteOptions {
                storage_class: Some("DEEP_ARCHIVE".into()),
                lock: Some(ObjectLock {
                    mode: LockMode::Governance,
                    retain_until: until,
                }),
                legal_hold: true,
                metadata: Vec::new(),
            },
        })
        .await
        .unwrap();
    assert_eq!((written.version_id.as_deref(), written.parts), (Some("v-2"), 3));
    assert_eq!(create.num_calls(), 1, "the lock went with CreateMultipartUpload");
    assert_eq!(part.num_calls(), 3);
}
