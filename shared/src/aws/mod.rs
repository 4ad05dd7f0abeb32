//! AWS adapters: one per service. Every SDK type and every SDK error conversion stays in
//! this module; the rest of Lifeboat sees only ports and domain types.
//!
//! Clients reach the emulator through `AWS_ENDPOINT_URL` (read by `aws-config`), never
//! through a code branch.

pub mod admin;
pub mod backup;
pub mod calls;
pub mod dynamodb;
pub mod dynamodb_backups;
pub mod rds;
pub mod s3;
pub mod secrets;
pub mod sns;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, TimeZone, Utc};

use crate::ports::PortError;

pub use backup::AwsBackupService;
pub use dynamodb::DynamoDbCatalog;
pub use dynamodb_backups::DynamoDbTableBackups;
pub use rds::RdsSnapshotStore;
pub use sns::SnsNotifier;

/// Attempts per SDK call (the first try plus retries with exponential backoff and jitter
/// on throttling, 5xx and transient network errors).
pub const MAX_ATTEMPTS: u32 = 6;

/// Shared SDK configuration, loaded once per cold start.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .load()
        .await
}

/// The retry policy every Lifeboat client uses.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(5))
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceededException",
    "SlowDown",
    // DynamoDB: another backup operation is running on the table (or on this backup);
    // it clears by itself, so it is retried later like throttling.
    "BackupInUseException",
];
const ALREADY_EXISTS: &[&str] = &[
    "DBSnapshotAlreadyExists",
    "DBClusterSnapshotAlreadyExistsFault",
    "ResourceInUseException",
];
const NOT_FOUND: &[&str] = &[
    "DBSnapshotNotFound",
    "DBSnapshotNotFoundFault",
    "DBClusterSnapshotNotFoundFault",
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBClusterNotFoundFault",
    "ResourceNotFoundException",
    "NotFound",
    "NotFoundException",
    "TableNotFoundException",
    "BackupNotFoundException",
];
const QUOTA: &[&str] = &[
    "SnapshotQuotaExceeded",
    "SnapshotQuotaExceededFault",
    "LimitExceededException",
];
const KMS: &[&str] = &[
    "KMSKeyNotAccessibleFault",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSNotFoundException",
    "KMSInvalidStateException",
    "KMSInvalidKeyUsageException",
];
const INVALID_STATE: &[&str] = &[
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
    "InvalidDBSnapshotState",
    "InvalidDBSnapshotStateFault",
    "InvalidDBClusterSnapshotStateFault",
    // DynamoDB backups: the table is being created, updated or deleted; or backups are
    // not available for it (yet).
    "TableInUseException",
    "ContinuousBackupsUnavailableException",
];
const CONFLICT: &[&str] = &[
    "ConditionalCheckFailedException",
    "TransactionCanceledException",
    "TransactionConflictException",
];

/// Maps an SDK error (after the SDK's own retries) into the domain's [`PortError`].
/// Takes the error by value so it reads well in `map_err(|e| port_error("Op", e))`.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn port_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().unwrap_or_default().to_owned();
    let message = format!("{operation}: {}", DisplayErrorContext(&err));
    let server_fault = match &err {
        SdkError::ServiceError(se) => se.raw().status().is_server_error(),
        _ => true,
    };
    let is = |set: &[&str]| set.contains(&code.as_str());
    if is(CONFLICT) {
        PortError::Conflict(message)
    } else if is(THROTTLING) {
        PortError::Throttled(message)
    } else if is(ALREADY_EXISTS) {
        PortError::AlreadyExists(message)
    } else if is(NOT_FOUND) {
        PortError::NotFound(message)
    } else if is(QUOTA) {
        PortError::QuotaExceeded(message)
    } else if is(KMS) {
        PortError::KmsKey(message)
    } else if is(INVALID_STATE) {
        PortError::InvalidState(message)
    } else if server_fault {
        PortError::Unavailable(message)
    } else {
        PortError::Invalid(message)
    }
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.secs(), t.subsec_nanos()).single()
}
