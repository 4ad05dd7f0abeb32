//! AWS adapters: one per service. Every SDK type and every SDK error conversion stays in
//! this crate; the rest of Lifeboat sees only ports and domain types. Only the functions'
//! `main`s (and tests) depend on it.
//!
//! Clients reach the emulator through `AWS_ENDPOINT_URL` (read by `aws-config`), never
//! through a code branch.

pub mod admin;
pub mod backup;
pub mod calls;
pub mod clients;
pub mod config_store;
pub mod dr;
pub mod dr_store;
pub mod dynamodb;
pub mod dynamodb_backups;
pub mod glacier;
pub mod keys;
pub mod lambda;
pub mod rds;
pub mod s3;
pub mod secrets;
pub mod sns;
pub mod sqs;
pub mod table_exports;
pub mod table_snapshots;
pub mod wiring;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, TimeZone, Utc};

use lifeboat_domain::Region;
use lifeboat_ports::{PortError, PortResult};

pub use backup::AwsBackupService;
pub use dynamodb::DynamoDbCatalog;
pub use dynamodb_backups::DynamoDbTableBackups;
pub use rds::{RdsSnapshotExporter, RdsSnapshotStore};
pub use sns::SnsNotifier;
pub use table_snapshots::DynamoDbTableSnapshots;

/// Builds a service client for a region from the shared SDK configuration.
pub type BuildClient<C> = fn(&SdkConfig, &Region) -> C;

/// One SDK client per region, each built once from the shared configuration the first
/// time its region is used (or prebuilt, e.g. mocked clients in tests).
pub struct PerRegion<C> {
    source: Option<(SdkConfig, BuildClient<C>)>,
    clients: std::sync::Mutex<std::collections::HashMap<Region, C>>,
}

impl<C> std::fmt::Debug for PerRegion<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerRegion").finish_non_exhaustive()
    }
}

impl<C: Clone> PerRegion<C> {
    /// Clients built by `build` from `base`, one per region on first use.
    pub fn new(base: SdkConfig, build: BuildClient<C>) -> Self {
        Self {
            source: Some((base, build)),
            clients: std::sync::Mutex::default(),
        }
    }

    /// Only these clients; any other region is `Invalid`.
    pub fn with_clients(clients: std::collections::HashMap<Region, C>) -> Self {
        Self {
            source: None,
            clients: std::sync::Mutex::new(clients),
        }
    }

    pub fn get(&self, region: &Region) -> PortResult<C> {
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(region) {
            return Ok(c.clone());
        }
        let (base, build) = self
            .source
            .as_ref()
            .ok_or_else(|| PortError::Invalid(format!("no client for region {region}")))?;
        let c = build(base, region);
        clients.insert(region.clone(), c.clone());
        Ok(c)
    }
}

/// An RDS client for `region`, counting its calls.
pub fn rds_client(base: &SdkConfig, region: &Region) -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(base)
            .region(aws_sdk_rds::config::Region::new(region.to_string()))
            .interceptor(calls::CountCalls)
            .build(),
    )
}

/// Attempts per SDK call (the first try plus retries with exponential backoff and jitter
/// on throttling, 5xx and transient network errors).
pub const MAX_ATTEMPTS: u32 = 6;

/// Shared SDK configuration, loaded once per cold start.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .retry_config(retry_config())
        .load()
        .await
}

/// The HTTPS client every SDK configuration of Lifeboat's uses (for AWS's services and for
/// the credential providers alike): hyper with rustls on ring, the system's CA roots; plain
/// HTTP only where an endpoint says `http://` (a local stack).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
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
    "ExportTaskAlreadyExists",
    "ExportTaskAlreadyExistsFault",
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
    "ExportTaskNotFound",
    "ExportTaskNotFoundFault",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
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
    // A global database already failing or switching over.
    "InvalidGlobalClusterStateFault",
    // DynamoDB backups: the table is being created, updated or deleted; or backups are
    // not available for it (yet).
    "TableInUseException",
    "ContinuousBackupsUnavailableException",
    // RDS exports: the snapshot is not available, or the export is in a state that
    // forbids the request.
    "InvalidExportSourceState",
    "InvalidExportSourceStateFault",
    "InvalidExportTaskStateFault",
    "InvalidExportOnlyFault",
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
    let message = cap(error_message(operation, &err));
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

/// What went wrong, in AWS's words: the operation, the error code and AWS's message for a
/// service error; the error chain for a timeout or a connection failure. Never the raw
/// HTTP response (headers, request ids, the body), which the SDK's debug form carries.
fn error_message<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match (se.err().code(), se.err().message()) {
                (Some(code), Some(message)) => format!("{operation}: {code}: {message}"),
                (Some(code), None) => format!("{operation}: {code} (HTTP {status})"),
                (None, Some(message)) => format!("{operation}: HTTP {status}: {message}"),
                (None, None) => format!("{operation}: HTTP {status}"),
            }
        }
        other => format!("{operation}: {}", DisplayErrorContext(other)),
    }
}

/// Error messages end up in records, alerts and logs: at most 1,000 characters.
fn cap(mut message: String) -> String {
    const MAX: usize = 1000;
    if message.len() > MAX {
        let mut end = MAX;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.secs(), t.subsec_nanos()).single()
}
