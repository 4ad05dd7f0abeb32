//! [`ObjectStore`] on Amazon S3 (aws-sdk-s3). Path-style addressing is a setting (the
//! emulator needs it); copies above the multipart threshold use UploadPartCopy.

use std::fmt::Write as _;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart,
    ExpirationStatus, GlacierJobParameters, LifecycleRule, LifecycleRuleAndOperator, LifecycleRuleFilter,
    ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, RestoreRequest, StorageClass, Tier, Transition,
    TransitionDefaultMinimumObjectSize, TransitionStorageClass,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{port_error, to_chrono};
use lifeboat_domain::manifest::ListedObject;
use lifeboat_domain::tiering::LifecycleRule as TierRule;
use lifeboat_ports::objects::{
    CopyRequest, CopyTuning, LockMode, MAX_SINGLE_COPY, MIN_PART, ObjectBody, ObjectHead, ObjectLock, ObjectPage,
    ObjectStore, PrefixPage, RestoreTier, WriteOptions, Written,
};
use lifeboat_ports::{PortError, PortResult};

#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
    tuning: CopyTuning,
}

/// S3 error codes in the domain's words; the rest goes through the common mapping.
fn s3_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = match &err {
        SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
        _ => None,
    };
    let code = err.code().unwrap_or_default().to_owned();
    let message = || format!("{operation}: {code} {}", err.message().unwrap_or_default());
    match (code.as_str(), status) {
        ("NoSuchKey" | "NoSuchBucket" | "NoSuchVersion" | "NotFound", _) | (_, Some(404)) => {
            PortError::NotFound(message())
        }
        ("PreconditionFailed", _) | (_, Some(412)) => PortError::Conflict(message()),
        ("InvalidObjectState" | "AccessDenied" | "MethodNotAllowed", _) => PortError::InvalidState(message()),
        _ => port_error(operation, err),
    }
}

/// A read that broke off: `Corrupt` when the SDK found the bytes disagreeing with S3's
/// stored checksum (after the last chunk), else transient.
fn read_error(label: &str, e: &(dyn std::error::Error + 'static)) -> PortError {
    let mut source = Some(e);
    while let Some(err) = source {
        if err.to_string().contains("checksum mismatch") {
            return PortError::Corrupt(format!("reading {label}: {err}"));
        }
        source = err.source();
    }
    PortError::Unavailable(format!("reading {label}: {e}"))
}

/// Percent-encodes a key for `x-amz-copy-source` (keeps `/` and unreserved characters).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn copy_source(bucket: &str, key: &str, version_id: Option<&str>) -> String {
    match version_id {
        Some(v) => format!("{bucket}/{}?versionId={}", encode_key(key), encode_key(v)),
        None => format!("{bucket}/{}", encode_key(key)),
    }
}

fn smithy_time(t: chrono::DateTime<chrono::Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn lock_mode(m: LockMode) -> ObjectLockMode {
    match m {
        LockMode::Governance => ObjectLockMode::Governance,
        LockMode::Compliance => ObjectLockMode::Compliance,
    }
}

fn hold(on: bool) -> ObjectLockLegalHoldStatus {
    if on {
        ObjectLockLegalHoldStatus::On
    } else {
        ObjectLockLegalHoldStatus::Off
    }
}

/// `Content-MD5` of the (empty) body of a CopyObject or CreateMultipartUpload request.
/// Requests that set Object Lock retention must carry an integrity header; the MD5 of an
/// empty body is the correct one for these body-less requests.
fn empty_body_md5(req: &mut aws_smithy_runtime_api::http::Request) {
    req.headers_mut().insert("Content-MD5", "1B2M2Y8AsgTpgAEwStT+fA==");
}

fn strip_etag(e: &str) -> String {
    e.trim_matches('"').to_owned()
}

fn size(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

impl S3ObjectStore {
    pub fn new(client: Client, tuning: CopyTuning) -> Self {
        let tuning = CopyTuning {
            multipart_threshold: tuning.multipart_threshold.min(MAX_SINGLE_COPY),
            part_size: tuning.part_size.max(MIN_PART),
        };
        Self { client, tuning }
    }

    /// A client from the shared SDK configuration; `path_style` for the emulator.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, path_style: bool, tuning: CopyTuning) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .interceptor(super::calls::CountCalls)
            .build();
        Self::new(Client::from_conf(conf), tuning)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn copy_multipart(&self, r: &CopyRequest) -> PortResult<Written> {
        let o = &r.options;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&r.bucket)
            .key(&r.key)
            .set_storage_class(o.storage_class.as_deref().map(StorageClass::from))
            .set_object_lock_mode(o.lock.as_ref().map(|l| lock_mode(l.mode)))
            .set_object_lock_retain_until_date(o.lock.as_ref().map(|l| smithy_time(l.retain_until)))
            .set_object_lock_legal_hold_status(o.legal_hold.then(|| hold(true)))
            .set_metadata(Some(o.metadata.iter().cloned().collect()))
            .customize()
            .mutate_request(empty_body_md5)
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| PortError::Unavailable("CreateMultipartUpload returned no upload id".into()))?
            .to_owned();
        let result = self.copy_parts(r, &upload_id).await;
        match result {
            Ok(parts) => {
                let n = u32::try_from(parts.len()).unwrap_or(u32::MAX);
                let done = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&r.bucket)
                    .key(&r.key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map_err(|e| s3_error("CompleteMultipartUpload", e))?;
                Ok(Written {
                    version_id: done.version_id().map(str::to_owned),
                    etag: done.e_tag().map(strip_etag),
                    checksum_sha256: done.checksum_sha256().map(str::to_owned),
                    parts: n,
                })
            }
            Err(e) => {
                // Leave no orphaned parts behind (they are billed).
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&r.bucket)
                    .key(&r.key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(error = %s3_error("AbortMultipartUpload", abort), "could not abort a multipart copy");
                }
                Err(e)
            }
        }
    }

    async fn copy_parts(&self, r: &CopyRequest, upload_id: &str) -> PortResult<Vec<CompletedPart>> {
        let source = copy_source(&r.source_bucket, &r.source_key, r.source_version_id.as_deref());
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1i32;
        while start < r.size {
            let end = (start + self.tuning.part_size).min(r.size) - 1;
            let out = self
                .client
                .upload_part_copy()
                .bucket(&r.bucket)
                .key(&r.key)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(&source)
                .copy_source_range(format!("bytes={start}-{end}"))
                .set_copy_source_if_match(r.if_match.clone())
                .send()
                .await
                .map_err(|e| s3_error("UploadPartCopy", e))?;
            let etag = out.copy_part_result().and_then(|p| p.e_tag()).map(str::to_owned);
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(etag).build());
            start = end + 1;
            number += 1;
        }
        Ok(parts)
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn list_page_after(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
        max_keys: u32,
    ) -> PortResult<ObjectPage> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.map(str::to_owned))
            .set_start_after(start_after.filter(|_| token.is_none()).map(str::to_owned))
            .max_keys(i32::try_from(max_keys.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| s3_error("ListObjectsV2", e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ListedObject {
                    key: o.key()?.to_owned(),
                    version_id: None,
                    size: size(o.size()),
                    etag: o.e_tag().map(strip_etag).unwrap_or_default(),
                    storage_class: o
                        .storage_class()
                        .map_or_else(|| "STANDARD".to_owned(), |c| c.as_str().to_owned()),
                    last_modified: o.last_modified().and_then(to_chrono),
                })
            })
            .collect();
        let next_token = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_owned)
        } else {
            None
        };
        Ok(ObjectPage { objects, next_token })
    }

    async fn list_sub_prefixes(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
        max_keys: u32,
    ) -> PortResult<PrefixPage> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_continuation_token(token.map(str::to_owned))
            .max_keys(i32::try_from(max_keys.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| s3_error("ListObjectsV2", e))?;
        let next_token = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_owned)
        } else {
            None
        };
        Ok(PrefixPage {
            prefixes: out
                .common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned))
                .collect(),
            loose_objects: out.contents().len() as u64,
            next_token,
        })
    }

    async fn head(&self, bucket: &str, key: &str, version_id: Option<&str>) -> PortResult<Option<ObjectHead>> {
        let out = match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| s3_error("HeadObject", e))
        {
            Ok(o) => o,
            Err(PortError::NotFound(_)) => return Ok(None),
            // A delete marker answers 405 to a versioned HEAD.
            Err(PortError::InvalidState(m)) if m.contains("MethodNotAllowed") => return Ok(None),
            Err(e) => return Err(e),
        };
        if out.delete_marker() == Some(true) {
            return Ok(None);
        }
        let lock = match (
            out.object_lock_mode(),
            out.object_lock_retain_until_date().and_then(to_chrono),
        ) {
            (Some(m), Some(until)) => LockMode::parse(m.as_str()).map(|mode| ObjectLock {
                mode,
                retain_until: until,
            }),
            _ => None,
        };
        Ok(Some(ObjectHead {
            key: key.to_owned(),
            version_id: out.version_id().map(str::to_owned),
            size: size(out.content_length()),
            etag: out.e_tag().map(strip_etag).unwrap_or_default(),
            storage_class: out
                .storage_class()
                .map_or_else(|| "STANDARD".to_owned(), |c| c.as_str().to_owned()),
            last_modified: out.last_modified().and_then(to_chrono),
            checksum_sha256: out.checksum_sha256().map(str::to_owned),
            checksum_crc64nvme: out.checksum_crc64_nvme().map(str::to_owned),
            lock,
            legal_hold: out.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
            restore: out.restore().map(str::to_owned),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }))
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        if_match: Option<&str>,
    ) -> PortResult<ObjectBody> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .set_if_match(if_match.map(|e| format!("\"{e}\"")))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| s3_error("GetObject", e))?;
        let checksum_sha256 = out.checksum_sha256().map(str::to_owned);
        let version_id = out.version_id().map(str::to_owned);
        let size = size(out.content_length());
        let etag = out.e_tag().map(strip_etag);
        let storage_class = Some(
            out.storage_class()
                .map_or_else(|| "STANDARD".to_owned(), |c| c.as_str().to_owned()),
        );
        let last_modified = out.last_modified().and_then(to_chrono);
        let label = format!("{bucket}/{key}");
        let chunks = futures::stream::unfold((out.body, label), |(mut body, label)| async move {
            match body.next().await {
                None => None,
                Some(Ok(bytes)) => Some((Ok(bytes.to_vec()), (body, label))),
                Some(Err(e)) => Some((Err(read_error(&label, &e)), (body, label))),
            }
        });
        Ok(ObjectBody {
            version_id,
            size,
            etag,
            storage_class,
            last_modified,
            checksum_sha256,
            chunks: Box::pin(chunks),
        })
    }

    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, o: &WriteOptions) -> PortResult<Written> {
        let out = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_storage_class(o.storage_class.as_deref().map(StorageClass::from))
            .set_object_lock_mode(o.lock.as_ref().map(|l| lock_mode(l.mode)))
            .set_object_lock_retain_until_date(o.lock.as_ref().map(|l| smithy_time(l.retain_until)))
            .set_object_lock_legal_hold_status(o.legal_hold.then(|| hold(true)))
            .set_metadata(Some(o.metadata.iter().cloned().collect()))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", e))?;
        Ok(Written {
            version_id: out.version_id().map(str::to_owned),
            etag: out.e_tag().map(strip_etag),
            checksum_sha256: out.checksum_sha256().map(str::to_owned),
            parts: 1,
        })
    }

    async fn copy(&self, r: &CopyRequest) -> PortResult<Written> {
        if r.size > self.tuning.multipart_threshold {
            return self.copy_multipart(r).await;
        }
        let o = &r.options;
        let out = self
            .client
            .copy_object()
            .bucket(&r.bucket)
            .key(&r.key)
            .copy_source(copy_source(
                &r.source_bucket,
                &r.source_key,
                r.source_version_id.as_deref(),
            ))
            .set_copy_source_if_match(r.if_match.as_ref().map(|e| format!("\"{e}\"")))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .set_metadata(Some(o.metadata.iter().cloned().collect()))
            .set_storage_class(o.storage_class.as_deref().map(StorageClass::from))
            .set_object_lock_mode(o.lock.as_ref().map(|l| lock_mode(l.mode)))
            .set_object_lock_retain_until_date(o.lock.as_ref().map(|l| smithy_time(l.retain_until)))
            .set_object_lock_legal_hold_status(o.legal_hold.then(|| hold(true)))
            .customize()
            .mutate_request(empty_body_md5)
            .send()
            .await
            .map_err(|e| s3_error("CopyObject", e))?;
        let result = out.copy_object_result();
        Ok(Written {
            version_id: out.version_id().map(str::to_owned),
            etag: result.and_then(|c| c.e_tag()).map(strip_etag),
            checksum_sha256: result.and_then(|c| c.checksum_sha256()).map(str::to_owned),
            parts: 1,
        })
    }

    async fn delete(&self, bucket: &str, key: &str, version_id: Option<&str>) -> PortResult<()> {
        match self
            .client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", e))
        {
            Ok(_) | Err(PortError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn set_legal_hold(&self, bucket: &str, key: &str, version_id: Option<&str>, on: bool) -> PortResult<()> {
        self.client
            .put_object_legal_hold()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .legal_hold(ObjectLockLegalHold::builder().status(hold(on)).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| s3_error("PutObjectLegalHold", e))
    }

    async fn restore(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        days: u32,
        tier: RestoreTier,
    ) -> PortResult<()> {
        let tier = match tier {
            RestoreTier::Expedited => Tier::Expedited,
            RestoreTier::Standard => Tier::Standard,
            RestoreTier::Bulk => Tier::Bulk,
        };
        let request = RestoreRequest::builder()
            .days(i32::try_from(days).unwrap_or(i32::MAX))
            .glacier_job_parameters(
                GlacierJobParameters::builder()
                    .tier(tier)
                    .build()
                    .map_err(|e| PortError::Invalid(e.to_string()))?,
            )
            .build();
        match self
            .client
            .restore_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .restore_request(request)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already under way: what we asked for.
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => Ok(()),
            Err(e) => Err(s3_error("RestoreObject", e)),
        }
    }

    async fn replace_owned_rules(&self, bucket: &str, owner: &str, rules: &[TierRule]) -> PortResult<usize> {
        if owner.is_empty() {
            return Err(PortError::Invalid("lifecycle rules need an owner prefix".into()));
        }
        let mut kept: Vec<LifecycleRule> = match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => out.rules.unwrap_or_default(),
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Vec::new(),
            Err(e) => return Err(s3_error("GetBucketLifecycleConfiguration", e)),
        };
        kept.retain(|r| !r.id().is_some_and(|id| id.starts_with(owner)));
        for r in rules {
            let transitions = r
                .transitions
                .iter()
                .map(|t| {
                    Transition::builder()
                        .days(i32::try_from(t.after_days).unwrap_or(i32::MAX))
                        .storage_class(TransitionStorageClass::from(t.class.as_str()))
                        .build()
                })
                .collect();
            let filter = LifecycleRuleFilter::builder()
                .and(
                    LifecycleRuleAndOperator::builder()
                        .prefix(&r.prefix)
                        .object_size_greater_than(i64::try_from(r.larger_than).unwrap_or(i64::MAX))
                        .build(),
                )
                .build();
            kept.push(
                LifecycleRule::builder()
                    .id(&r.id)
                    .status(ExpirationStatus::Enabled)
                    .filter(filter)
                    .set_transitions(Some(transitions))
                    .build()
                    .map_err(|e| PortError::Invalid(format!("lifecycle rule {}: {e}", r.id)))?,
            );
        }
        let count = kept.len();
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(kept))
            .build()
            .map_err(|e| PortError::Invalid(format!("lifecycle configuration: {e}")))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(config)
            // Objects under 128 KB stay (S3's default since 2024, stated explicitly).
            .transition_default_minimum_object_size(TransitionDefaultMinimumObjectSize::AllStorageClasses128K)
            .send()
            .await
            .map_err(|e| s3_error("PutBucketLifecycleConfiguration", e))?;
        Ok(count)
    }
}

/// A store in `region` from the shared SDK configuration (e.g. the backup region's, for
/// the functions that read or delete what is kept there).
pub fn store_in(
    sdk: &aws_config::SdkConfig,
    region: &lifeboat_domain::Region,
    path_style: bool,
) -> std::sync::Arc<S3ObjectStore> {
    let conf = sdk
        .to_builder()
        .region(aws_config::Region::new(region.as_str().to_owned()))
        .build();
    std::sync::Arc::new(S3ObjectStore::from_sdk(&conf, path_style, CopyTuning::default()))
}

/// The source-region and backup-region stores of the S3 functions, from the shared SDK
/// configuration.
pub fn stores(
    sdk: &aws_config::SdkConfig,
    settings: &lifeboat::object_store::settings::S3Settings,
) -> (std::sync::Arc<S3ObjectStore>, std::sync::Arc<S3ObjectStore>) {
    let in_region = |r: &lifeboat_domain::Region| {
        sdk.to_builder()
            .region(aws_config::Region::new(r.as_str().to_owned()))
            .build()
    };
    let source = S3ObjectStore::from_sdk(
        &in_region(&settings.source_region),
        settings.path_style,
        settings.tuning,
    );
    let backup = S3ObjectStore::from_sdk(
        &in_region(&settings.backup_region),
        settings.path_style,
        settings.tuning,
    );
    (std::sync::Arc::new(source), std::sync::Arc::new(backup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_percent_encoded() {
        assert_eq!(copy_source("b", "a b/ü+1.txt", None), "b/a%20b/%C3%BC%2B1.txt");
        assert_eq!(copy_source("b", "k", Some("v1")), "b/k?versionId=v1");
    }

    #[test]
    fn tuning_respects_s3_limits() {
        let client = Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .build(),
        );
        let s = S3ObjectStore::new(
            client,
            CopyTuning {
                multipart_threshold: u64::MAX,
                part_size: 1,
            },
        );
        assert_eq!(s.tuning.multipart_threshold, MAX_SINGLE_COPY);
        assert_eq!(s.tuning.part_size, MIN_PART);
    }
}
