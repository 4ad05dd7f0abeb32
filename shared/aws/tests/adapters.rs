//! Adapter tests without network: every SDK call is answered by an `aws-smithy-mocks` rule.
//!
//! They cover what the local emulator (moto) cannot do: throttling, 5xx, partial batch
//! results. They also pin the exact requests the adapters send. Clients use Lifeboat's
//! real retry policy (`lifeboat_aws::retry_config()`) and the SDK's tokio sleep. Every test
//! runs with tokio's clock paused: backoffs pass in virtual time, take no wall-clock time,
//! and can be measured. Each client gets its own retry partition, so tests never share a
//! retry token bucket.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, WriteRequest};
use aws_sdk_rds::operation::copy_db_cluster_snapshot::CopyDbClusterSnapshotOutput;
use aws_sdk_rds::operation::copy_db_snapshot::{CopyDBSnapshotError, CopyDbSnapshotOutput};
use aws_sdk_rds::operation::create_db_snapshot::{CreateDBSnapshotError, CreateDbSnapshotOutput};
use aws_sdk_rds::operation::delete_db_cluster_snapshot::DeleteDbClusterSnapshotOutput;
use aws_sdk_rds::operation::delete_db_snapshot::{DeleteDBSnapshotError, DeleteDbSnapshotOutput};
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDBSnapshotsError;
use aws_sdk_rds::types::error::{
    DbSnapshotAlreadyExistsFault, DbSnapshotNotFoundFault, InvalidDbInstanceStateFault, InvalidDbSnapshotStateFault,
    KmsKeyNotAccessibleFault, SnapshotQuotaExceededFault,
};
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, DbSnapshot, Tag as RdsTag};
use aws_sdk_sns::operation::publish::{PublishInput, PublishOutput};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use lifeboat_aws::{DynamoDbCatalog, MAX_ATTEMPTS, RdsSnapshotStore, SnsNotifier, retry_config};
use lifeboat_domain::naming::tags;
use lifeboat_domain::recovery_point::{Detail, Holds};
use lifeboat_domain::{
    Alert, AlertKind, PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Severity, Slot,
    Status,
};
use lifeboat_ports::{Catalog, Notifier, PortError, RunRecord, Snapshot, SnapshotStatus, SnapshotStore, Tag};

// ---------------------------------------------------------------------------------------
// Mocked clients
// ---------------------------------------------------------------------------------------

/// The most time Lifeboat's retry policy may spend in backoff before retry number
/// `retries`: full jitter over 100 ms × 2^i, each capped at 5 s. (The SDK's default policy
/// starts at 1 s, so it would exceed this bound.) Tests run with tokio's clock paused, so
/// this is virtual time: retries cost no wall-clock time.
fn backoff_ceiling(retries: u32) -> Duration {
    (0..retries)
        .map(|i| (Duration::from_millis(100) * 2_u32.pow(i)).min(Duration::from_secs(5)))
        .sum()
}

fn assert_backoff_within(start: Instant, retries: u32) {
    let spent = start.elapsed();
    assert!(
        spent <= backoff_ceiling(retries),
        "{spent:?} spent in backoff, more than {:?}",
        backoff_ceiling(retries)
    );
}

/// A retry partition of its own for each client: the SDK's retry token bucket is global
/// per partition, and tests running in parallel must not drain each other's.
fn own_partition() -> aws_sdk_rds::config::retry::RetryPartition {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    aws_sdk_rds::config::retry::RetryPartition::new(format!(
        "lifeboat-adapter-test-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `mock_client!` configured like production (Lifeboat's retry policy, the SDK's tokio
/// sleep), with a private retry partition.
macro_rules! client {
    ($sdk:ident, $mode:expr, $rules:expr) => {{
        let partition = own_partition();
        mock_client!($sdk, $mode, $rules, move |c: $sdk::config::Builder| {
            c.retry_config(retry_config()).retry_partition(partition.clone())
        })
    }};
}

fn region(s: &str) -> Region {
    Region::parse(s).unwrap()
}

fn rds_store(clients: Vec<(&str, aws_sdk_rds::Client)>) -> RdsSnapshotStore {
    RdsSnapshotStore::with_clients(
        clients
            .into_iter()
            .map(|(r, c)| (region(r), c))
            .collect::<HashMap<_, _>>(),
    )
}

fn http(status: u16, body: String) -> HttpResponse {
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

/// An error exactly as RDS (awsQuery protocol) sends it on the wire.
fn rds_wire_error(status: u16, code: &str, message: &str) -> HttpResponse {
    http(
        status,
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{message}</Message></Error><RequestId>x</RequestId></ErrorResponse>"
        ),
    )
}

fn throttled() -> HttpResponse {
    rds_wire_error(400, "Throttling", "Rate exceeded")
}

/// An error exactly as DynamoDB (awsJson 1.0 protocol) sends it on the wire.
fn ddb_wire_error(status: u16, code: &str, message: &str) -> HttpResponse {
    http(
        status,
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#),
    )
}

/// The error metadata the SDK's deserializer attaches to a modeled error.
fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

// ---------------------------------------------------------------------------------------
// RDS fixtures
// ---------------------------------------------------------------------------------------

const SNAPSHOT: &str = "lb-gold-db1-20261123-1800";
const SOURCE_ARN: &str = "arn:aws:rds:us-east-1:123456789012:snapshot:lb-gold-db1-20261123-1800";
const COPY_ARN: &str = "arn:aws:rds:eu-west-1:123456789012:snapshot:lb-gold-db1-20261123-1800";
const DR_KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/0b0e5a1c-dr";

fn db1() -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::RdsInstance,
        id: "db1".into(),
        arn: "arn:aws:rds:us-east-1:123456789012:db:db1".into(),
        region: region("us-east-1"),
    }
}

fn aurora1() -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::AuroraCluster,
        id: "aurora1".into(),
        arn: "arn:aws:rds:us-east-1:123456789012:cluster:aurora1".into(),
        region: region("us-east-1"),
    }
}

fn our_tags() -> Vec<Tag> {
    vec![
        Tag::new(tags::CREATED_BY, tags::CREATED_BY_VALUE),
        Tag::new(tags::POLICY, "gold"),
        Tag::new(tags::SLOT, "20261123-1800"),
    ]
}

fn rds_tags(tags: &[Tag]) -> Vec<RdsTag> {
    tags.iter()
        .map(|t| RdsTag::builder().key(&t.key).value(&t.value).build())
        .collect()
}

fn creating_db_snapshot() -> DbSnapshot {
    DbSnapshot::builder()
        .db_snapshot_identifier(SNAPSHOT)
        .db_snapshot_arn(SOURCE_ARN)
        .db_instance_identifier("db1")
        .status("creating")
        .set_tag_list(Some(rds_tags(&our_tags())))
        .build()
}

fn create_db_snapshot_rule() -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_rds::operation::create_db_snapshot::CreateDbSnapshotInput,
    CreateDbSnapshotOutput,
    CreateDBSnapshotError,
> {
    mock!(aws_sdk_rds::Client::create_db_snapshot).match_requests(|r| {
        r.db_snapshot_identifier() == Some(SNAPSHOT)
            && r.db_instance_identifier() == Some("db1")
            && r.tags() == rds_tags(&our_tags()).as_slice()
    })
}

fn created() -> CreateDbSnapshotOutput {
    CreateDbSnapshotOutput::builder()
        .db_snapshot(creating_db_snapshot())
        .build()
}

fn assert_created(snapshot: &Snapshot) {
    assert_eq!(snapshot.kind, ResourceKind::RdsInstance);
    assert_eq!(snapshot.region, region("us-east-1"));
    assert_eq!(snapshot.name, SNAPSHOT);
    assert_eq!(snapshot.arn.as_deref(), Some(SOURCE_ARN));
    assert_eq!(snapshot.status, SnapshotStatus::Creating);
    assert_eq!(snapshot.tags, our_tags());
}

// ---------------------------------------------------------------------------------------
// RDS: retries
// ---------------------------------------------------------------------------------------

/// Uses aws-smithy-mocks (no network), because moto cannot inject throttling.
/// `CreateDBSnapshot` is throttled twice (HTTP 400 with an awsQuery `Throttling` body, as
/// RDS really sends it), then succeeds. The SDK retries with Lifeboat's backoff, and the
/// store returns the snapshot.
#[tokio::test(start_paused = true)]
async fn rds_create_snapshot_retries_throttling_then_succeeds() {
    let rule = create_db_snapshot_rule()
        .sequence()
        .http_response(throttled)
        .times(2)
        .output(created)
        .build();
    let store = rds_store(vec![("us-east-1", client!(aws_sdk_rds, RuleMode::Sequential, [&rule]))]);

    let start = Instant::now();
    let snapshot = store.create_snapshot(&db1(), SNAPSHOT, &our_tags()).await.unwrap();

    assert_created(&snapshot);
    assert_eq!(rule.num_calls(), 3);
    assert_backoff_within(start, 2);
}

/// Uses aws-smithy-mocks (no network), because moto cannot inject 5xx responses.
/// `CreateDBSnapshot` answers 503 twice, then succeeds. Server errors are retried like
/// throttling.
#[tokio::test(start_paused = true)]
async fn rds_create_snapshot_retries_5xx_then_succeeds() {
    let rule = create_db_snapshot_rule()
        .sequence()
        .http_status(503, None)
        .times(2)
        .output(created)
        .build();
    let store = rds_store(vec![("us-east-1", client!(aws_sdk_rds, RuleMode::Sequential, [&rule]))]);

    let start = Instant::now();
    let snapshot = store.create_snapshot(&db1(), SNAPSHOT, &our_tags()).await.unwrap();

    assert_created(&snapshot);
    assert_eq!(rule.num_calls(), 3);
    assert_backoff_within(start, 2);
}

/// Uses aws-smithy-mocks (no network), because moto cannot inject throttling. Throttled on
/// every attempt: the store gives up after exactly `MAX_ATTEMPTS` calls and reports
/// `Throttled`, which is transient (the state machine retries later).
#[tokio::test(start_paused = true)]
async fn rds_throttled_on_every_attempt_is_throttled_after_max_attempts() {
    let rule = create_db_snapshot_rule()
        .sequence()
        .http_response(throttled)
        .repeatedly()
        .build();
    let store = rds_store(vec![("us-east-1", client!(aws_sdk_rds, RuleMode::Sequential, [&rule]))]);

    let start = Instant::now();
    let err = store.create_snapshot(&db1(), SNAPSHOT, &our_tags()).await.unwrap_err();

    assert!(matches!(err, PortError::Throttled(_)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(rule.num_calls(), MAX_ATTEMPTS as usize);
    assert_backoff_within(start, MAX_ATTEMPTS - 1);
}

// ---------------------------------------------------------------------------------------
// RDS: error mapping
// ---------------------------------------------------------------------------------------

async fn create_fails_with(error: CreateDBSnapshotError) -> (PortError, usize) {
    let error = Arc::new(Mutex::new(Some(error)));
    let rule = create_db_snapshot_rule().then_error(move || error.lock().unwrap().take().expect("answered once"));
    let store = rds_store(vec![("us-east-1", client!(aws_sdk_rds, RuleMode::Sequential, [&rule]))]);
    let err = store.create_snapshot(&db1(), SNAPSHOT, &our_tags()).await.unwrap_err();
    (err, rule.num_calls())
}

fn available_source() -> Snapshot {
    Snapshot {
        kind: ResourceKind::RdsInstance,
        region: region("us-east-1"),
        name: SNAPSHOT.into(),
        arn: Some(SOURCE_ARN.into()),
        status: SnapshotStatus::Available,
        created_at: None,
        kms_key_id: Some("arn:aws:kms:us-east-1:123456789012:key/primary".into()),
        tags: our_tags(),
        size_bytes: Some(20 << 30),
    }
}

fn copy_tags() -> Vec<Tag> {
    let mut t = our_tags();
    t.push(Tag::new(tags::COPY_OF, SOURCE_ARN));
    t
}

/// Uses aws-smithy-mocks (no network), because moto does not raise these faults on
/// demand. The modeled RDS faults (as the SDK's deserializer builds them, code included)
/// map to the domain's errors, and none of them is retried.
#[tokio::test(start_paused = true)]
async fn rds_modeled_faults_map_to_port_errors() {
    let (err, calls) = create_fails_with(CreateDBSnapshotError::DbSnapshotAlreadyExistsFault(
        DbSnapshotAlreadyExistsFault::builder()
            .message("Cannot create the snapshot because a snapshot with the identifier lb-gold-db1-20261123-1800 already exists.")
            .meta(meta("DBSnapshotAlreadyExists", "already exists"))
            .build(),
    ))
    .await;
    assert!(matches!(err, PortError::AlreadyExists(_)), "{err:?}");
    assert_eq!(calls, 1);

    let (err, calls) = create_fails_with(CreateDBSnapshotError::SnapshotQuotaExceededFault(
        SnapshotQuotaExceededFault::builder()
            .message("Cannot create more than 100 manual snapshots")
            .meta(meta("SnapshotQuotaExceeded", "quota"))
            .build(),
    ))
    .await;
    assert!(matches!(err, PortError::QuotaExceeded(_)), "{err:?}");
    assert_eq!(calls, 1);

    let (err, calls) = create_fails_with(CreateDBSnapshotError::InvalidDbInstanceStateFault(
        InvalidDbInstanceStateFault::builder()
            .message("Instance db1 is not currently in the available state.")
            .meta(meta("InvalidDBInstanceState", "not available"))
            .build(),
    ))
    .await;
    assert!(matches!(err, PortError::InvalidState(_)), "{err:?}");
    assert_eq!(calls, 1);

    // KMS: on the copy, in the destination region.
    let kms = mock!(aws_sdk_rds::Client::copy_db_snapshot).then_error(|| {
        CopyDBSnapshotError::KmsKeyNotAccessibleFault(
            KmsKeyNotAccessibleFault::builder()
                .message("The specified KMS key is not accessible.")
                .meta(meta("KMSKeyNotAccessibleFault", "not accessible"))
                .build(),
        )
    });
    let store = rds_store(vec![("eu-west-1", client!(aws_sdk_rds, RuleMode::Sequential, [&kms]))]);
    let err = store
        .copy_snapshot(
            &available_source(),
            &region("eu-west-1"),
            SNAPSHOT,
            DR_KEY,
            &copy_tags(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::KmsKey(_)), "{err:?}");
    assert_eq!(kms.num_calls(), 1);

    // Not found on describe is an answer, not an error.
    let not_found = mock!(aws_sdk_rds::Client::describe_db_snapshots)
        .match_requests(|r| r.db_snapshot_identifier() == Some(SNAPSHOT))
        .then_error(|| {
            DescribeDBSnapshotsError::DbSnapshotNotFoundFault(
                DbSnapshotNotFoundFault::builder()
                    .message("DBSnapshot lb-gold-db1-20261123-1800 not found.")
                    .meta(meta("DBSnapshotNotFound", "not found"))
                    .build(),
            )
        });
    let store = rds_store(vec![(
        "us-east-1",
        client!(aws_sdk_rds, RuleMode::Sequential, [&not_found]),
    )]);
    let found = store
        .describe_snapshot(&region("us-east-1"), ResourceKind::RdsInstance, SNAPSHOT)
        .await
        .unwrap();
    assert_eq!(found, None);
    assert_eq!(not_found.num_calls(), 1);
}

/// Uses aws-smithy-mocks (no network), because moto does not raise these faults on
/// demand. The same faults as raw awsQuery error bodies go through the SDK's real
/// deserializer. This pins the wire codes (some end in `Fault`, some do not) against the
/// adapter's tables.
#[tokio::test(start_paused = true)]
async fn rds_wire_error_codes_map_to_port_errors() {
    let cases: [(&str, ResourceRef, u16, &str, &str); 8] = [
        ("create", db1(), 400, "DBSnapshotAlreadyExists", "already-exists"),
        ("create", db1(), 400, "SnapshotQuotaExceeded", "quota"),
        ("create", db1(), 400, "InvalidDBInstanceState", "invalid-state"),
        ("create", db1(), 404, "DBInstanceNotFound", "not-found"),
        (
            "create",
            aurora1(),
            400,
            "DBClusterSnapshotAlreadyExistsFault",
            "already-exists",
        ),
        ("create", aurora1(), 400, "InvalidDBClusterStateFault", "invalid-state"),
        ("copy", db1(), 400, "KMSKeyNotAccessibleFault", "kms-key"),
        ("create", db1(), 400, "InvalidParameterCombination", "invalid"),
    ];
    for (op, resource, status, code, expected) in cases {
        let body = move || rds_wire_error(status, code, "scripted");
        let rule = match (op, resource.kind) {
            ("copy", _) => mock!(aws_sdk_rds::Client::copy_db_snapshot).then_http_response(body),
            (_, ResourceKind::RdsInstance) => mock!(aws_sdk_rds::Client::create_db_snapshot).then_http_response(body),
            (
                _,
                ResourceKind::AuroraCluster
                | ResourceKind::S3Prefix
                | ResourceKind::DynamoDbTable
                | ResourceKind::ConfigBundle,
            ) => mock!(aws_sdk_rds::Client::create_db_cluster_snapshot).then_http_response(body),
        };
        // A cluster snapshot first reads the writer's class (to record it): no cluster
        // is described here, so none is recorded and the snapshot is still asked for.
        let describe = mock!(aws_sdk_rds::Client::describe_db_clusters)
            .then_output(|| DescribeDbClustersOutput::builder().build());
        let store = rds_store(vec![
            (
                "us-east-1",
                client!(aws_sdk_rds, RuleMode::MatchAny, [&rule, &describe]),
            ),
            (
                "eu-west-1",
                client!(aws_sdk_rds, RuleMode::MatchAny, [&rule, &describe]),
            ),
        ]);
        let result = if op == "copy" {
            store
                .copy_snapshot(
                    &available_source(),
                    &region("eu-west-1"),
                    SNAPSHOT,
                    DR_KEY,
                    &copy_tags(),
                )
                .await
        } else {
            store.create_snapshot(&resource, SNAPSHOT, &our_tags()).await
        };
        let err = result.unwrap_err();
        assert_eq!(err.code(), expected, "{code}: {err:?}");
        assert_eq!(rule.num_calls(), 1, "{code} must not be retried");
    }

    let not_found = mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots)
        .then_http_response(|| rds_wire_error(404, "DBClusterSnapshotNotFoundFault", "gone"));
    let store = rds_store(vec![(
        "us-east-1",
        client!(aws_sdk_rds, RuleMode::Sequential, [&not_found]),
    )]);
    let found = store
        .describe_snapshot(&region("us-east-1"), ResourceKind::AuroraCluster, SNAPSHOT)
        .await
        .unwrap();
    assert_eq!(found, None);
}

// ---------------------------------------------------------------------------------------
// RDS: discovery and copy
// ---------------------------------------------------------------------------------------

fn policy_tag(policy: &str) -> RdsTag {
    RdsTag::builder().key(tags::POLICY).value(policy).build()
}

/// Uses aws-smithy-mocks (no network), because moto pages differently from RDS and
/// cannot be made to return a `Marker`. Standalone instances (tagged or not) and clusters
/// are listed with their tags; Aurora members (protected through their cluster) are not.
/// Both pages of `DescribeDBInstances` are read.
#[tokio::test(start_paused = true)]
async fn rds_resources_reads_every_page_and_skips_aurora_members() {
    let page1 = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.marker().is_none())
        .then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("db1")
                        .db_instance_arn("arn:aws:rds:us-east-1:123456789012:db:db1")
                        .tag_list(policy_tag("gold"))
                        .tag_list(RdsTag::builder().key("team").value("orders").build())
                        .build(),
                )
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("scratch")
                        .db_instance_arn("arn:aws:rds:us-east-1:123456789012:db:scratch")
                        .build(),
                )
                .marker("page-2")
                .build()
        });
    let page2 = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.marker() == Some("page-2"))
        .then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("aurora1-instance-1")
                        .db_instance_arn("arn:aws:rds:us-east-1:123456789012:db:aurora1-instance-1")
                        .db_cluster_identifier("aurora1")
                        .tag_list(policy_tag("gold"))
                        .build(),
                )
                .build()
        });
    let clusters = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| r.marker().is_none())
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("aurora1")
                        .db_cluster_arn("arn:aws:rds:us-east-1:123456789012:cluster:aurora1")
                        .tag_list(policy_tag("silver"))
                        .build(),
                )
                .build()
        });
    let store = rds_store(vec![(
        "us-east-1",
        client!(aws_sdk_rds, RuleMode::Sequential, [&page1, &page2, &clusters]),
    )]);

    let found = store.resources(&region("us-east-1")).await.unwrap();

    let summary: Vec<_> = found
        .iter()
        .map(|d| (d.resource.kind, d.resource.id.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (ResourceKind::RdsInstance, "db1"),
            (ResourceKind::RdsInstance, "scratch"),
            (ResourceKind::AuroraCluster, "aurora1"),
        ]
    );
    assert_eq!(found[0].resource, db1());
    assert_eq!(
        found[0].tags,
        [Tag::new(tags::POLICY, "gold"), Tag::new("team", "orders")]
    );
    assert!(found[1].tags.is_empty());
    assert_eq!(found[2].resource, aurora1());
    assert_eq!(found[2].tags, [Tag::new(tags::POLICY, "silver")]);
    assert_eq!((page1.num_calls(), page2.num_calls(), clusters.num_calls()), (1, 1, 1));
}

/// Uses aws-smithy-mocks (no network), because moto does not check the request: a copy
/// issued from the wrong region, or without the KMS key, would still "work" there. The
/// copy goes to the destination region's client with the source ARN, the destination
/// key, the new name and the tags. The source region's client is never called, and the
/// returned snapshot lives in the destination.
#[tokio::test(start_paused = true)]
async fn rds_copy_snapshot_is_requested_in_the_destination_region() {
    let copy = mock!(aws_sdk_rds::Client::copy_db_snapshot)
        .match_requests(|r| {
            r.source_db_snapshot_identifier() == Some(SOURCE_ARN)
                && r.target_db_snapshot_identifier() == Some(SNAPSHOT)
                && r.kms_key_id() == Some(DR_KEY)
                && r.tags() == rds_tags(&copy_tags()).as_slice()
        })
        .then_output(|| {
            CopyDbSnapshotOutput::builder()
                .db_snapshot(
                    DbSnapshot::builder()
                        .db_snapshot_identifier(SNAPSHOT)
                        .db_snapshot_arn(COPY_ARN)
                        .status("pending")
                        .kms_key_id(DR_KEY)
                        .set_tag_list(Some(rds_tags(&copy_tags())))
                        .build(),
                )
                .build()
        });
    let cluster_copy = mock!(aws_sdk_rds::Client::copy_db_cluster_snapshot)
        .match_requests(|r| {
            r.source_db_cluster_snapshot_identifier()
                == Some("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:lb-gold-aurora1")
                && r.target_db_cluster_snapshot_identifier() == Some("lb-gold-aurora1")
                && r.kms_key_id() == Some(DR_KEY)
                && r.tags() == rds_tags(&copy_tags()).as_slice()
        })
        .then_output(|| {
            CopyDbClusterSnapshotOutput::builder()
                .db_cluster_snapshot(
                    DbClusterSnapshot::builder()
                        .db_cluster_snapshot_identifier("lb-gold-aurora1")
                        .status("copying")
                        .kms_key_id(DR_KEY)
                        .build(),
                )
                .build()
        });
    let nothing: [&Rule; 0] = [];
    let store = rds_store(vec![
        ("us-east-1", client!(aws_sdk_rds, RuleMode::Sequential, nothing)),
        (
            "eu-west-1",
            client!(aws_sdk_rds, RuleMode::Sequential, [&copy, &cluster_copy]),
        ),
    ]);

    let copied = store
        .copy_snapshot(
            &available_source(),
            &region("eu-west-1"),
            SNAPSHOT,
            DR_KEY,
            &copy_tags(),
        )
        .await
        .unwrap();
    assert_eq!(copied.kind, ResourceKind::RdsInstance);
    assert_eq!(copied.region, region("eu-west-1"));
    assert_eq!(copied.name, SNAPSHOT);
    assert_eq!(copied.arn.as_deref(), Some(COPY_ARN));
    assert_eq!(copied.status, SnapshotStatus::Creating);
    assert_eq!(copied.kms_key_id.as_deref(), Some(DR_KEY));
    assert_eq!(copied.tags, copy_tags());
    assert_eq!(copy.num_calls(), 1);

    let cluster_source = Snapshot {
        kind: ResourceKind::AuroraCluster,
        name: "lb-gold-aurora1".into(),
        arn: Some("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:lb-gold-aurora1".into()),
        ..available_source()
    };
    let copied = store
        .copy_snapshot(
            &cluster_source,
            &region("eu-west-1"),
            "lb-gold-aurora1",
            DR_KEY,
            &copy_tags(),
        )
        .await
        .unwrap();
    assert_eq!(copied.kind, ResourceKind::AuroraCluster);
    assert_eq!(copied.region, region("eu-west-1"));
    assert_eq!(copied.status, SnapshotStatus::Creating);
    assert_eq!(cluster_copy.num_calls(), 1);
}

// ---------------------------------------------------------------------------------------
// RDS: delete
// ---------------------------------------------------------------------------------------

/// Uses aws-smithy-mocks (no network), because moto does not check which region a delete
/// is sent to, nor raise `InvalidDBSnapshotState` on demand. The delete goes to the
/// snapshot's own region's client with exactly its identifier (the primary region's
/// client is never called); an instance snapshot uses DeleteDBSnapshot, a cluster
/// snapshot DeleteDBClusterSnapshot. A snapshot that is already gone is `Ok` (a retried
/// expiry is harmless); a refusal is `InvalidState` and is not retried.
#[tokio::test(start_paused = true)]
async fn rds_delete_snapshot_is_requested_in_its_region_and_is_idempotent() {
    let delete = mock!(aws_sdk_rds::Client::delete_db_snapshot)
        .match_requests(|r| r.db_snapshot_identifier() == Some(SNAPSHOT))
        .sequence()
        .http_response(throttled)
        .output(|| {
            DeleteDbSnapshotOutput::builder()
                .db_snapshot(
                    DbSnapshot::builder()
                        .db_snapshot_identifier(SNAPSHOT)
                        .db_snapshot_arn(COPY_ARN)
                        .status("deleted")
                        .build(),
                )
                .build()
        })
        .error(|| {
            DeleteDBSnapshotError::DbSnapshotNotFoundFault(
                DbSnapshotNotFoundFault::builder()
                    .message("DBSnapshot lb-gold-db1-20261123-1800 not found.")
                    .meta(meta("DBSnapshotNotFound", "not found"))
                    .build(),
            )
        })
        .error(|| {
            DeleteDBSnapshotError::InvalidDbSnapshotStateFault(
                InvalidDbSnapshotStateFault::builder()
                    .message("Cannot delete the snapshot because it is not in the available state.")
                    .meta(meta("InvalidDBSnapshotState", "not available"))
                    .build(),
            )
        })
        .build();
    let cluster_delete = mock!(aws_sdk_rds::Client::delete_db_cluster_snapshot)
        .match_requests(|r| r.db_cluster_snapshot_identifier() == Some("lb-gold-aurora1"))
        .sequence()
        .output(|| DeleteDbClusterSnapshotOutput::builder().build())
        .http_response(|| rds_wire_error(404, "DBClusterSnapshotNotFoundFault", "gone"))
        .http_response(|| rds_wire_error(400, "InvalidDBClusterSnapshotStateFault", "copying"))
        .build();
    let nothing: [&Rule; 0] = [];
    let store = rds_store(vec![
        ("us-east-1", client!(aws_sdk_rds, RuleMode::Sequential, nothing)),
        (
            "eu-west-1",
            client!(aws_sdk_rds, RuleMode::MatchAny, [&delete, &cluster_delete]),
        ),
    ]);
    let eu = region("eu-west-1");

    // Throttled once, then deleted.
    let start = Instant::now();
    store
        .delete_snapshot(&eu, ResourceKind::RdsInstance, SNAPSHOT)
        .await
        .unwrap();
    assert_eq!(delete.num_calls(), 2);
    assert_backoff_within(start, 1);
    // Gone already: nothing to do.
    store
        .delete_snapshot(&eu, ResourceKind::RdsInstance, SNAPSHOT)
        .await
        .unwrap();
    assert_eq!(delete.num_calls(), 3);
    // Refused: reported, not retried.
    let err = store
        .delete_snapshot(&eu, ResourceKind::RdsInstance, SNAPSHOT)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::InvalidState(_)), "{err:?}");
    assert_eq!(delete.num_calls(), 4, "InvalidDBSnapshotState must not be retried");

    // The same for a cluster snapshot, with raw awsQuery error bodies.
    store
        .delete_snapshot(&eu, ResourceKind::AuroraCluster, "lb-gold-aurora1")
        .await
        .unwrap();
    store
        .delete_snapshot(&eu, ResourceKind::AuroraCluster, "lb-gold-aurora1")
        .await
        .unwrap();
    let err = store
        .delete_snapshot(&eu, ResourceKind::AuroraCluster, "lb-gold-aurora1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid-state", "{err:?}");
    assert_eq!(cluster_delete.num_calls(), 3);

    // A region without a client is a configuration error, not a silent success.
    let err = store
        .delete_snapshot(&region("ap-south-1"), ResourceKind::RdsInstance, SNAPSHOT)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------

const TABLE: &str = "lifeboat-catalog";

type Item = HashMap<String, AttributeValue>;
/// An item's primary key: (`pk`, `sk`).
type Key = (String, String);

fn at() -> DateTime<Utc> {
    "2026-11-23T18:00:00Z".parse().unwrap()
}

fn point(resource_id: &str) -> RecoveryPoint {
    let location = region("us-east-1");
    let name = format!("lb-gold-{resource_id}-20261123-1800");
    RecoveryPoint {
        id: RecoveryPointId::new(&location, ResourceKind::RdsInstance, &name),
        resource: ResourceRef {
            kind: ResourceKind::RdsInstance,
            id: resource_id.into(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:db:{resource_id}"),
            region: location.clone(),
        },
        policy: PolicyName::parse("gold").unwrap(),
        slot: Slot::containing(at(), Duration::from_hours(1)),
        location,
        snapshot_name: name,
        snapshot_arn: None,
        shared_with: Vec::new(),
        source: None,
        kms_key_id: None,
        status: Status::Pending,
        failure: None,
        adopted: false,
        emergency: false,
        verified_at: None,
        holds: Holds::default(),
        verification_failed: None,
        size_bytes: None,
        detail: Detail::of(ResourceKind::RdsInstance),
        created_at: at(),
        updated_at: at(),
        version: 1,
    }
}

fn text<'a>(item: &'a Item, attr: &str) -> &'a str {
    item.get(attr).and_then(|v| v.as_s().ok()).map_or("", String::as_str)
}

fn key_of(item: &Item) -> Key {
    (text(item, "pk").to_owned(), text(item, "sk").to_owned())
}

fn put_key(w: &WriteRequest) -> Key {
    key_of(&w.put_request().expect("a put").item)
}

fn ddb_catalog(mode: RuleMode, rules: &[&Rule]) -> DynamoDbCatalog {
    DynamoDbCatalog::new(client!(aws_sdk_dynamodb, mode, rules), TABLE)
}

/// Every stored policy comes back on its own; a broken one is named by the key (`sk`) it
/// is stored under, whatever its document says, with its parse error: one broken policy
/// never hides another.
#[tokio::test]
async fn dynamodb_policies_name_each_broken_policy_by_its_key() {
    let item = |sk: &str, doc: Option<&str>| {
        let mut item: Item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("POLICY".into())),
            ("sk".to_owned(), AttributeValue::S(sk.into())),
        ]);
        if let Some(doc) = doc {
            item.insert("document".into(), AttributeValue::S(doc.into()));
        }
        item
    };
    let items = vec![
        item("gold", Some(r#"{"name":"gold","every":"1h","rpo":"2h","retain":24}"#)),
        item("orders-gold", Some(r#"{"name": "orders-gold", "every": 3}"#)),
        item("ledger", Some("not json at all")),
        item(
            "renamed",
            Some(r#"{"name":"other","every":"1h","rpo":"2h","retain":0}"#),
        ),
        item("empty", None),
    ];
    let rule = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|r| r.table_name() == Some(TABLE))
        .then_output(move || {
            aws_sdk_dynamodb::operation::query::QueryOutput::builder()
                .set_items(Some(items.clone()))
                .build()
        });
    let catalog = ddb_catalog(RuleMode::MatchAny, &[&rule]);
    let loaded = catalog.policies().await.unwrap();
    assert_eq!(loaded.len(), 5);
    assert_eq!(loaded[0].as_ref().unwrap().name.as_str(), "gold");
    let broken: Vec<(String, String)> = loaded[1..]
        .iter()
        .map(|r| {
            let p = r.as_ref().unwrap_err();
            (p.policy.clone(), p.problems.join("; "))
        })
        .collect();
    let keys: Vec<&str> = broken.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["orders-gold", "ledger", "renamed", "empty"]);
    assert!(
        broken[0]
            .1
            .contains("not a valid policy document: invalid type: integer"),
        "{broken:?}"
    );
    assert!(
        broken[1].1.contains("not a valid policy document: expected ident"),
        "{broken:?}"
    );
    assert!(broken[2].1.contains("keeps nothing"), "{broken:?}");
    assert!(broken[3].1.contains("no document"), "{broken:?}");
}

fn insert_rule()
-> aws_smithy_mocks::RuleBuilder<aws_sdk_dynamodb::operation::put_item::PutItemInput, PutItemOutput, PutItemError> {
    let id = point("db1").id;
    mock!(aws_sdk_dynamodb::Client::put_item).match_requests(move |r| {
        r.table_name() == Some(TABLE)
            && r.condition_expression() == Some("attribute_not_exists(pk)")
            && r.item()
                .is_some_and(|i| key_of(i) == (format!("RP#{id}"), "RP".to_owned()))
    })
}

/// Uses aws-smithy-mocks (no network), because moto cannot inject 5xx or throttling.
/// `PutItem` answers HTTP 500 `InternalServerError` twice and is retried to success. A
/// lost conditional write is a `Conflict`. `ProvisionedThroughputExceededException` on
/// every attempt ends as `Throttled` after `MAX_ATTEMPTS` calls.
#[tokio::test(start_paused = true)]
async fn dynamodb_insert_retries_5xx_and_maps_conflict_and_throttling() {
    let rule = insert_rule()
        .sequence()
        .http_response(|| ddb_wire_error(500, "InternalServerError", "Internal server error"))
        .times(2)
        .output(|| PutItemOutput::builder().build())
        .build();
    let catalog = ddb_catalog(RuleMode::Sequential, &[&rule]);
    let start = Instant::now();
    catalog.insert(&point("db1")).await.unwrap();
    assert_eq!(rule.num_calls(), 3);
    assert_backoff_within(start, 2);

    let rule = insert_rule().then_error(|| {
        PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .meta(meta(
                    "ConditionalCheckFailedException",
                    "The conditional request failed",
                ))
                .build(),
        )
    });
    let catalog = ddb_catalog(RuleMode::Sequential, &[&rule]);
    let err = catalog.insert(&point("db1")).await.unwrap_err();
    assert!(matches!(err, PortError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("already recorded"), "{err}");
    assert_eq!(rule.num_calls(), 1);

    let rule = insert_rule()
        .sequence()
        .http_response(|| {
            ddb_wire_error(
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            )
        })
        .repeatedly()
        .build();
    let catalog = ddb_catalog(RuleMode::Sequential, &[&rule]);
    let start = Instant::now();
    let err = catalog.insert(&point("db1")).await.unwrap_err();
    assert!(matches!(err, PortError::Throttled(_)), "{err:?}");
    assert_eq!(rule.num_calls(), MAX_ATTEMPTS as usize);
    assert_backoff_within(start, MAX_ATTEMPTS - 1);
}

/// Uses aws-smithy-mocks (no network), because moto never returns `UnprocessedItems`.
/// A run with 30 actions is 31 items: two `BatchWriteItem` batches (25 + 6). The first
/// answer leaves 3 items unprocessed. The adapter resubmits exactly those 3 before the
/// next batch. Every item is written once and only once.
#[tokio::test(start_paused = true)]
async fn dynamodb_record_run_resubmits_exactly_the_unprocessed_items() {
    let requests: Arc<Mutex<Vec<Vec<Key>>>> = Arc::default();
    let written: Arc<Mutex<Vec<Key>>> = Arc::default();
    let rule = {
        let requests = requests.clone();
        let written = written.clone();
        mock!(aws_sdk_dynamodb::Client::batch_write_item)
            .match_requests(|r| r.request_items().is_some_and(|m| m.len() == 1))
            .then_compute_output(move |r| {
                let writes = &r.request_items().unwrap()[TABLE];
                let mut requests = requests.lock().unwrap();
                requests.push(writes.iter().map(put_key).collect());
                let unprocessed = if requests.len() == 1 {
                    writes[22..].to_vec()
                } else {
                    Vec::new()
                };
                let done = writes.len() - unprocessed.len();
                written.lock().unwrap().extend(writes[..done].iter().map(put_key));
                let out = BatchWriteItemOutput::builder();
                if unprocessed.is_empty() {
                    out.build()
                } else {
                    out.unprocessed_items(TABLE, unprocessed).build()
                }
            })
    };
    let catalog = ddb_catalog(RuleMode::MatchAny, &[&rule]);
    let run = RunRecord {
        run_id: "run-1".into(),
        function: "create-snapshots".into(),
        started_at: at(),
        finished_at: at() + chrono::Duration::seconds(3),
        summary: BTreeMap::from([("created".to_owned(), 30)]),
        actions: (0..30)
            .map(|i| (format!("arn:aws:rds:us-east-1:1:db:db{i}"), "created".into()))
            .collect(),
    };

    catalog.record_run(&run).await.unwrap();

    let requests = requests.lock().unwrap().clone();
    let sizes: Vec<_> = requests.iter().map(Vec::len).collect();
    assert_eq!(sizes, [25, 3, 6]);
    assert_eq!(requests[1], requests[0][22..], "resubmits exactly the unprocessed");
    let written = written.lock().unwrap().clone();
    let distinct: HashSet<_> = written.iter().cloned().collect();
    assert_eq!(written.len(), 31, "{written:?}");
    assert_eq!(distinct.len(), 31, "an item was written twice");
    assert!(distinct.contains(&(
        "RUN#create-snapshots".to_owned(),
        "2026-11-23T18:00:00.000Z#run-1".to_owned()
    )));
    for i in 0..30 {
        assert!(distinct.contains(&("RUN#run-1".to_owned(), format!("ACTION#{i:05}"))));
    }
}

/// A mocked table behind `PutItem` and `BatchGetItem`: stores what the adapter writes so
/// reads return the adapter's own encoding. The first `BatchGetItem` answer holds back
/// the last `hold_back` keys as `UnprocessedKeys`. A request with duplicate keys is
/// refused with a `ValidationException`, as DynamoDB does.
fn mocked_table(hold_back: usize) -> (Rule, Rule, Arc<Mutex<Vec<Vec<String>>>>) {
    let table: Arc<Mutex<HashMap<Key, Item>>> = Arc::default();
    let gets: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let put = {
        let table = table.clone();
        mock!(aws_sdk_dynamodb::Client::put_item).then_compute_output(move |r| {
            let item = r.item().unwrap().clone();
            table.lock().unwrap().insert(key_of(&item), item);
            PutItemOutput::builder().build()
        })
    };
    let get = {
        let gets = gets.clone();
        mock!(aws_sdk_dynamodb::Client::batch_get_item).then_compute_response(move |r| {
            let request = &r.request_items().unwrap()[TABLE];
            assert_eq!(request.consistent_read(), Some(true));
            let keys = request.keys();
            let pks: Vec<String> = keys.iter().map(|k| text(k, "pk").to_owned()).collect();
            let first = {
                let mut gets = gets.lock().unwrap();
                gets.push(pks.clone());
                gets.len() == 1
            };
            if pks.iter().collect::<HashSet<_>>().len() != pks.len() {
                return aws_smithy_mocks::MockResponse::Http(ddb_wire_error(
                    400,
                    "ValidationException",
                    "Provided list of item keys contains duplicates",
                ));
            }
            let split = if first {
                keys.len().saturating_sub(hold_back)
            } else {
                keys.len()
            };
            let table = table.lock().unwrap();
            let found: Vec<Item> = keys[..split]
                .iter()
                .filter_map(|k| table.get(&key_of(k)).cloned())
                .collect();
            let mut out = BatchGetItemOutput::builder().responses(TABLE, found);
            if split < keys.len() {
                out = out.unprocessed_keys(
                    TABLE,
                    KeysAndAttributes::builder()
                        .set_keys(Some(keys[split..].to_vec()))
                        .consistent_read(true)
                        .build()
                        .unwrap(),
                );
            }
            aws_smithy_mocks::MockResponse::Output(out.build())
        })
    };
    (put, get, gets)
}

/// Uses aws-smithy-mocks (no network), because moto never returns `UnprocessedKeys`.
/// The first `BatchGetItem` answer leaves 2 of 5 keys unprocessed. The adapter asks again
/// for exactly those 2, and every point comes back once, equal to what was inserted.
#[tokio::test(start_paused = true)]
async fn dynamodb_get_many_retries_unprocessed_keys_until_all_found() {
    let (put, get, gets) = mocked_table(2);
    let catalog = ddb_catalog(RuleMode::MatchAny, &[&put, &get]);
    let points: Vec<_> = ["db1", "db2", "db3", "db4", "db5"].into_iter().map(point).collect();
    for p in &points {
        catalog.insert(p).await.unwrap();
    }
    let ids: Vec<_> = points.iter().map(|p| p.id.clone()).collect();
    let missing = point("gone").id;

    let mut with_missing = ids.clone();
    with_missing.push(missing.clone());
    let mut found = catalog.get_many(&with_missing).await.unwrap();

    found.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(found, points);
    let gets = gets.lock().unwrap().clone();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].len(), 6);
    assert_eq!(
        gets[1],
        [format!("RP#{}", ids[4]), format!("RP#{missing}")],
        "asks again for exactly the unprocessed keys"
    );
}

/// Uses aws-smithy-mocks (no network), because moto accepts duplicate keys in one
/// `BatchGetItem` while DynamoDB refuses the whole request. Ids repeated anywhere in the
/// input are asked for once and returned once. More than 100 ids are split into requests
/// of at most 100 keys.
#[tokio::test(start_paused = true)]
async fn dynamodb_get_many_asks_for_each_key_once_in_batches_of_100() {
    let (put, get, gets) = mocked_table(0);
    let catalog = ddb_catalog(RuleMode::MatchAny, &[&put, &get]);
    let (a, b) = (point("db1"), point("db2"));
    catalog.insert(&a).await.unwrap();
    catalog.insert(&b).await.unwrap();

    let found = catalog
        .get_many(&[a.id.clone(), b.id.clone(), a.id.clone()])
        .await
        .unwrap();
    assert_eq!(found, [a.clone(), b.clone()]);

    let many: Vec<_> = (0..150).map(|i| point(&format!("db{i}")).id).collect();
    let found = catalog.get_many(&many).await.unwrap();
    assert_eq!(found.len(), 2);
    let sizes: Vec<_> = gets.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 100, 50]);
}

// ---------------------------------------------------------------------------------------
// SNS
// ---------------------------------------------------------------------------------------

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:lifeboat-alerts";

/// Uses aws-smithy-mocks (no network), because the request is the subject here: moto
/// accepts any subject, and its SQS envelope does not show the attribute data types. The
/// alert travels as JSON that parses back to the same `Alert`. Severity, type, resource
/// and location are `String` message attributes for subscription filters. The subject is
/// at most 100 printable ASCII characters, even for a long non-ASCII summary.
#[tokio::test(start_paused = true)]
async fn sns_publish_sends_filterable_attributes_ascii_subject_and_json_alert() {
    let seen: Arc<Mutex<Vec<PublishInput>>> = Arc::default();
    let rule = {
        let seen = seen.clone();
        mock!(aws_sdk_sns::Client::publish)
            .match_requests(move |r| {
                seen.lock().unwrap().push(r.clone());
                true
            })
            .then_output(|| PublishOutput::builder().message_id("m-1").build())
    };
    let client = client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
    let notifier = SnsNotifier::new(client, TOPIC);

    let dr = region("eu-west-1");
    let summary = "Kopie nach eu-west-1 fehlgeschlagen: KMS-Schlüssel nicht zugänglich — \
                   スナップショットのコピーに失敗しました\u{7}\n"
        .repeat(3);
    let full = Alert::new(
        AlertKind::CopyFailed,
        Severity::High,
        summary,
        "us-east-1/db/lb-gold-db1-20261123-1800",
        at(),
    )
    .resource(db1().arn)
    .recovery_point(&point("db1").id)
    .location(&dr)
    .detail("code", "kms-key");
    let bare = Alert::new(
        AlertKind::InvalidPolicy,
        Severity::Warning,
        "policy gold: every must be at least 1h",
        "gold",
        at(),
    );

    notifier.publish(&full).await.unwrap();
    notifier.publish(&bare).await.unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (request, alert) in seen.iter().zip([&full, &bare]) {
        assert_eq!(request.topic_arn(), Some(TOPIC));
        let subject = request.subject().unwrap();
        assert!(subject.chars().count() < 100, "{subject:?}");
        assert!(
            subject.chars().all(|c| c.is_ascii() && !c.is_ascii_control()),
            "{subject:?}"
        );
        let parsed: Alert = serde_json::from_str(request.message().unwrap()).unwrap();
        assert_eq!(&parsed, alert);
    }
    assert!(
        seen[0]
            .subject()
            .unwrap()
            .starts_with("Lifeboat high copy-failed: Kopie nach eu-west-1 fehlgeschlagen: KMS-Schl"),
        "{:?}",
        seen[0].subject()
    );

    let attributes = |i: usize| -> BTreeMap<String, (String, String)> {
        seen[i]
            .message_attributes()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    (
                        v.data_type().to_owned(),
                        v.string_value().unwrap_or_default().to_owned(),
                    ),
                )
            })
            .collect()
    };
    let string = |v: &str| ("String".to_owned(), v.to_owned());
    assert_eq!(
        attributes(0),
        BTreeMap::from([
            ("severity".to_owned(), string("high")),
            ("event_type".to_owned(), string("copy-failed")),
            ("resource".to_owned(), string(&db1().arn)),
            ("location".to_owned(), string("eu-west-1")),
        ])
    );
    assert_eq!(
        attributes(1),
        BTreeMap::from([
            ("severity".to_owned(), string("warning")),
            ("event_type".to_owned(), string("invalid-policy")),
        ])
    );
}

// ---------------------------------------------------------------------------------------
// RDS: the admin API's restorer (overwrite by rename-and-swap)
// ---------------------------------------------------------------------------------------

fn restorer(client: aws_sdk_rds::Client) -> lifeboat_aws::admin::RdsDbRestorer {
    lifeboat_aws::admin::RdsDbRestorer::with_clients(HashMap::from([(region("us-east-1"), client)]))
}

/// Uses aws-smithy-mocks to pin the exact request: an overwrite moves the original aside
/// with ModifyDBInstance NewDBInstanceIdentifier and ApplyImmediately (a rename keeps the
/// instance, its data and its automated backups). A name that is taken, a missing
/// instance and an instance that cannot be modified now are told apart.
#[tokio::test(start_paused = true)]
async fn admin_restorer_renames_with_modify_db_instance_applied_immediately() {
    use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
    use lifeboat_ports::admin::DbRestorer as _;
    let rename = mock!(aws_sdk_rds::Client::modify_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("orders")
                && r.new_db_instance_identifier() == Some("orders-lbpre-1234abcd")
                && r.apply_immediately() == Some(true)
                && r.db_instance_class().is_none()
                && r.allocated_storage().is_none()
        })
        .then_output(|| ModifyDbInstanceOutput::builder().build());
    let taken = mock!(aws_sdk_rds::Client::modify_db_instance)
        .then_http_response(|| rds_wire_error(400, "DBInstanceAlreadyExists", "taken"));
    let busy = mock!(aws_sdk_rds::Client::modify_db_instance)
        .then_http_response(|| rds_wire_error(400, "InvalidDBInstanceState", "renaming"));
    let gone = mock!(aws_sdk_rds::Client::modify_db_instance)
        .then_http_response(|| rds_wire_error(404, "DBInstanceNotFound", "gone"));
    let r = restorer(client!(
        aws_sdk_rds,
        RuleMode::Sequential,
        &[&rename, &taken, &busy, &gone]
    ));
    let east = region("us-east-1");
    r.rename_instance(&east, "orders", "orders-lbpre-1234abcd")
        .await
        .unwrap();
    assert!(matches!(
        r.rename_instance(&east, "orders", "orders-lbpre-1234abcd").await,
        Err(PortError::AlreadyExists(_))
    ));
    assert!(matches!(
        r.rename_instance(&east, "orders", "x").await,
        Err(PortError::InvalidState(_))
    ));
    assert!(matches!(
        r.rename_instance(&east, "orders", "x").await,
        Err(PortError::NotFound(_))
    ));
    assert_eq!(rename.num_calls(), 1);
}

/// Uses aws-smithy-mocks to pin the exact request: a restore carries its placement and
/// groups and is never publicly accessible; the placement is read back from
/// DescribeDBInstances (moto runs no VPC for these tests, so the request is pinned here).
#[tokio::test(start_paused = true)]
async fn admin_restorer_restores_into_the_placement_it_is_given_never_public() {
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDbInstanceFromDbSnapshotOutput;
    use aws_sdk_rds::types::{
        DbInstance, DbParameterGroupStatus, DbSubnetGroup, OptionGroupMembership, VpcSecurityGroupMembership,
    };
    use lifeboat_domain::dr::plan::RestoreSettings;
    use lifeboat_ports::admin::DbRestorer as _;
    let settings = RestoreSettings {
        subnet_group: Some("private-db".into()),
        security_groups: vec!["sg-0123456789abcdef0".into(), "sg-0fedcba9876543210".into()],
        parameter_group: Some("orders-pg16".into()),
        cluster_parameter_group: None,
        option_group: Some("orders-options".into()),
    };
    let restore = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("orders-copy")
                && r.db_snapshot_identifier() == Some("lb-orders-202611220100")
                && r.db_subnet_group_name() == Some("private-db")
                && r.vpc_security_group_ids() == ["sg-0123456789abcdef0", "sg-0fedcba9876543210"]
                && r.db_parameter_group_name() == Some("orders-pg16")
                && r.option_group_name() == Some("orders-options")
                && r.publicly_accessible() == Some(false)
        })
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("orders")
                    .db_subnet_group(DbSubnetGroup::builder().db_subnet_group_name("private-db").build())
                    .vpc_security_groups(
                        VpcSecurityGroupMembership::builder()
                            .vpc_security_group_id("sg-0123456789abcdef0")
                            .build(),
                    )
                    .vpc_security_groups(
                        VpcSecurityGroupMembership::builder()
                            .vpc_security_group_id("sg-0fedcba9876543210")
                            .build(),
                    )
                    .db_parameter_groups(
                        DbParameterGroupStatus::builder()
                            .db_parameter_group_name("orders-pg16")
                            .build(),
                    )
                    .option_group_memberships(
                        OptionGroupMembership::builder()
                            .option_group_name("orders-options")
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let gone = mock!(aws_sdk_rds::Client::describe_db_instances)
        .then_http_response(|| rds_wire_error(404, "DBInstanceNotFound", "gone"));
    let r = restorer(client!(
        aws_sdk_rds,
        RuleMode::Sequential,
        &[&restore, &describe, &gone]
    ));
    let east = region("us-east-1");
    r.restore_instance(&east, "lb-orders-202611220100", "orders-copy", &settings)
        .await
        .unwrap();
    assert_eq!(r.placement(&east, "orders").await.unwrap(), Some(settings));
    assert_eq!(r.placement(&east, "gone").await.unwrap(), None);
    assert_eq!(restore.num_calls(), 1);
}

/// Uses aws-smithy-mocks to pin the exact request: finishing an overwrite deletes the kept
/// original with a final snapshot and DeleteAutomatedBackups=false, never SkipFinalSnapshot.
#[tokio::test(start_paused = true)]
async fn admin_restorer_deletes_only_with_a_final_snapshot_and_keeps_automated_backups() {
    use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
    use lifeboat_ports::admin::DbRestorer as _;
    let delete = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("orders-lbpre-1234abcd")
                && r.skip_final_snapshot() == Some(false)
                && r.final_db_snapshot_identifier() == Some("lb-pre-1234abcd-0000")
                && r.delete_automated_backups() == Some(false)
        })
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let r = restorer(client!(aws_sdk_rds, RuleMode::Sequential, &[&delete]));
    r.delete_instance_keeping_data(&region("us-east-1"), "orders-lbpre-1234abcd", "lb-pre-1234abcd-0000")
        .await
        .unwrap();
    assert_eq!(delete.num_calls(), 1);
}

// ---------------------------------------------------------------------------------------
// RDS: DR restores carry their placement; Aurora restores get a writer
// ---------------------------------------------------------------------------------------

fn dr_databases(client: aws_sdk_rds::Client) -> lifeboat_aws::dr::RdsDrDatabases {
    lifeboat_aws::dr::RdsDrDatabases::with_clients(HashMap::from([(region("us-west-2"), client)]))
}

fn placed() -> lifeboat_domain::dr::plan::RestoreSettings {
    lifeboat_domain::dr::plan::RestoreSettings {
        subnet_group: Some("dr-private".into()),
        security_groups: vec!["sg-0123456789abcdef0".into()],
        parameter_group: Some("orders-pg".into()),
        cluster_parameter_group: Some("ledger-cpg".into()),
        option_group: Some("orders-og".into()),
    }
}

/// Uses aws-smithy-mocks to pin the exact requests (moto accepts and ignores most of these
/// fields): an instance restore carries the subnet group, security groups, parameter and
/// option groups and is never publicly accessible, from a snapshot and to a point in time.
#[tokio::test(start_paused = true)]
async fn dr_instance_restores_carry_their_placement_and_are_never_public() {
    use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDbInstanceFromDbSnapshotOutput;
    use aws_sdk_rds::operation::restore_db_instance_to_point_in_time::RestoreDbInstanceToPointInTimeOutput;
    use lifeboat_ports::dr::{DrDatabases as _, RestoreRequest};
    let from_snapshot = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("lbdr-1234abcd-orders")
                && r.db_subnet_group_name() == Some("dr-private")
                && r.vpc_security_group_ids() == ["sg-0123456789abcdef0".to_owned()]
                && r.db_parameter_group_name() == Some("orders-pg")
                && r.option_group_name() == Some("orders-og")
                && r.publicly_accessible() == Some(false)
        })
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let to_time = mock!(aws_sdk_rds::Client::restore_db_instance_to_point_in_time)
        .match_requests(|r| {
            r.db_subnet_group_name() == Some("dr-private")
                && r.vpc_security_group_ids() == ["sg-0123456789abcdef0".to_owned()]
                && r.publicly_accessible() == Some(false)
        })
        .then_output(|| RestoreDbInstanceToPointInTimeOutput::builder().build());
    let dbs = dr_databases(client!(aws_sdk_rds, RuleMode::Sequential, &[&from_snapshot, &to_time]));
    let west = region("us-west-2");
    let settings = placed();
    let req = RestoreRequest {
        region: &west,
        kind: ResourceKind::RdsInstance,
        target: "lbdr-1234abcd-orders",
        class: None,
        settings: &settings,
        tags: &[],
    };
    dbs.restore_from_snapshot(&req, "lb-orders-x").await.unwrap();
    dbs.restore_to_time(&req, "orders", Utc::now()).await.unwrap();
    assert_eq!((from_snapshot.num_calls(), to_time.num_calls()), (1, 1));
}

/// Uses aws-smithy-mocks to pin the exact requests: a cluster restore carries its subnet
/// group, security groups and cluster parameter group; its writer instance is created in
/// it with the class asked for, never publicly accessible, and a writer that exists
/// already (a retried step) is fine.
#[tokio::test(start_paused = true)]
async fn dr_cluster_restores_carry_their_placement_and_get_a_private_writer() {
    use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
    use aws_sdk_rds::operation::restore_db_cluster_from_snapshot::RestoreDbClusterFromSnapshotOutput;
    use lifeboat_ports::dr::{DrDatabases as _, RestoreRequest, WriterRequest};
    let engine = mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots).then_output(|| {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(DbClusterSnapshot::builder().engine("aurora-postgresql").build())
            .build()
    });
    let restore = mock!(aws_sdk_rds::Client::restore_db_cluster_from_snapshot)
        .match_requests(|r| {
            r.db_cluster_identifier() == Some("lbdr-1234abcd-ledger")
                && r.engine() == Some("aurora-postgresql")
                && r.db_subnet_group_name() == Some("dr-private")
                && r.vpc_security_group_ids() == ["sg-0123456789abcdef0".to_owned()]
                && r.db_cluster_parameter_group_name() == Some("ledger-cpg")
        })
        .then_output(|| RestoreDbClusterFromSnapshotOutput::builder().build());
    let writer = mock!(aws_sdk_rds::Client::create_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("lbdr-1234abcd-ledger-w1")
                && r.db_cluster_identifier() == Some("lbdr-1234abcd-ledger")
                && r.db_instance_class() == Some("db.r6g.large")
                && r.engine() == Some("aurora-postgresql")
                && r.db_parameter_group_name() == Some("ledger-pg")
                && r.publicly_accessible() == Some(false)
        })
        .then_output(|| CreateDbInstanceOutput::builder().build());
    let exists = mock!(aws_sdk_rds::Client::create_db_instance)
        .then_http_response(|| rds_wire_error(400, "DBInstanceAlreadyExists", "exists"));
    let dbs = dr_databases(client!(
        aws_sdk_rds,
        RuleMode::Sequential,
        &[&engine, &restore, &writer, &exists]
    ));
    let west = region("us-west-2");
    let settings = placed();
    let req = RestoreRequest {
        region: &west,
        kind: ResourceKind::AuroraCluster,
        target: "lbdr-1234abcd-ledger",
        class: None,
        settings: &settings,
        tags: &[],
    };
    dbs.restore_from_snapshot(&req, "lb-ledger-x").await.unwrap();
    let w = WriterRequest {
        region: &west,
        cluster: "lbdr-1234abcd-ledger",
        instance: "lbdr-1234abcd-ledger-w1",
        class: "db.r6g.large",
        engine: "aurora-postgresql",
        parameter_group: Some("ledger-pg"),
        tags: &[],
    };
    dbs.create_cluster_instance(&w).await.unwrap();
    dbs.create_cluster_instance(&w).await.unwrap();
    assert_eq!((restore.num_calls(), writer.num_calls(), exists.num_calls()), (1, 1, 1));
}

// ---------------------------------------------------------------------------------------
// RDS: DR restores whose target exists already
// ---------------------------------------------------------------------------------------

/// Uses aws-smithy-mocks to pin the answers: a DR restore whose target identifier is taken
/// adopts it only when it carries the restore's Lifeboat tags (a retried step finds the
/// database its earlier run started); a database of that name that is not this restore's
/// is a conflict and left alone; one still being deleted (its name kept for minutes, as
/// on AWS) makes the restore wait.
#[tokio::test(start_paused = true)]
async fn a_dr_restore_adopts_an_existing_target_only_when_it_carries_its_tags() {
    use lifeboat_aws::dr::RdsDrDatabases;
    use lifeboat_domain::dr::plan::RestoreSettings;
    use lifeboat_ports::dr::{DrDatabases as _, RestoreRequest};
    let exists = || {
        mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
            .then_http_response(|| rds_wire_error(400, "DBInstanceAlreadyExists", "exists"))
    };
    let described = |status: &'static str, tagged: bool| {
        mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
            let mut db = DbInstance::builder()
                .db_instance_identifier("lbfo-0a1b2c3d-orders")
                .db_instance_status(status);
            if tagged {
                db = db
                    .tag_list(RdsTag::builder().key("lifeboat:dr-execution").value("exec-1").build())
                    .tag_list(RdsTag::builder().key("lifeboat:dr-plan").value("orders-dr").build());
            }
            DescribeDbInstancesOutput::builder().db_instances(db.build()).build()
        })
    };
    let (e1, d1) = (exists(), described("available", true));
    let (e2, d2) = (exists(), described("available", false));
    let (e3, d3) = (exists(), described("deleting", true));
    let client = mock_client!(aws_sdk_rds, RuleMode::Sequential, [&e1, &d1, &e2, &d2, &e3, &d3]);
    let west = region("us-west-2");
    let dbs = RdsDrDatabases::with_clients(HashMap::from([(west.clone(), client)]));
    let tags = vec![
        Tag::new("lifeboat:dr-execution", "exec-1"),
        Tag::new("lifeboat:dr-plan", "orders-dr"),
    ];
    let settings = RestoreSettings::default();
    let req = RestoreRequest {
        region: &west,
        kind: ResourceKind::RdsInstance,
        target: "lbfo-0a1b2c3d-orders",
        class: None,
        settings: &settings,
        tags: &tags,
    };
    dbs.restore_from_snapshot(&req, "lb-orders-202611220100").await.unwrap();
    let foreign = dbs.restore_from_snapshot(&req, "lb-orders-202611220100").await;
    assert!(
        matches!(&foreign, Err(PortError::Conflict(m)) if m.contains("left alone")),
        "{foreign:?}"
    );
    let deleting = dbs.restore_from_snapshot(&req, "lb-orders-202611220100").await;
    assert!(matches!(deleting, Err(PortError::InvalidState(_))), "{deleting:?}");
}

/// Uses aws-smithy-mocks to pin the requests: an Aurora cluster snapshot records the
/// class of the cluster's writer as RDS describes it (the tag `lifeboat:writer-class`),
/// so a restore in a region whose source is down can create its writer; the returned
/// snapshot carries it.
#[tokio::test(start_paused = true)]
async fn a_cluster_snapshot_records_the_class_of_the_writer() {
    use aws_sdk_rds::operation::create_db_cluster_snapshot::CreateDbClusterSnapshotOutput;
    use aws_sdk_rds::types::DbClusterMember;
    let cluster = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| {
        DescribeDbClustersOutput::builder()
            .db_clusters(
                DbCluster::builder()
                    .db_cluster_identifier("aurora1")
                    .db_cluster_members(
                        DbClusterMember::builder()
                            .db_instance_identifier("aurora1-reader")
                            .is_cluster_writer(false)
                            .build(),
                    )
                    .db_cluster_members(
                        DbClusterMember::builder()
                            .db_instance_identifier("aurora1-writer")
                            .is_cluster_writer(true)
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let writer = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier() == Some("aurora1-writer"))
        .then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("aurora1-writer")
                        .db_instance_class("db.r6g.2xlarge")
                        .build(),
                )
                .build()
        });
    let create = mock!(aws_sdk_rds::Client::create_db_cluster_snapshot)
        .match_requests(|r| {
            r.tags()
                .iter()
                .any(|t| t.key() == Some("lifeboat:writer-class") && t.value() == Some("db.r6g.2xlarge"))
        })
        .then_output(|| {
            CreateDbClusterSnapshotOutput::builder()
                .db_cluster_snapshot(
                    DbClusterSnapshot::builder()
                        .db_cluster_snapshot_identifier(SNAPSHOT)
                        .status("creating")
                        .build(),
                )
                .build()
        });
    let store = rds_store(vec![(
        "us-east-1",
        client!(aws_sdk_rds, RuleMode::Sequential, [&cluster, &writer, &create]),
    )]);
    let snapshot = store.create_snapshot(&aurora1(), SNAPSHOT, &our_tags()).await.unwrap();
    assert_eq!(
        lifeboat_ports::tag_value(&snapshot.tags, "lifeboat:writer-class"),
        Some("db.r6g.2xlarge")
    );
    assert_eq!(create.num_calls(), 1);
}

/// Uses aws-smithy-mocks to pin the requests (moto runs no VPC for these tests): an
/// Aurora restore through the admin API restores the cluster with the snapshot's engine and
/// its placement, then creates its writer in it, never publicly accessible.
#[tokio::test(start_paused = true)]
async fn admin_restorer_restores_a_cluster_then_creates_its_private_writer() {
    use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
    use aws_sdk_rds::operation::restore_db_cluster_from_snapshot::RestoreDbClusterFromSnapshotOutput;
    use lifeboat_domain::dr::plan::RestoreSettings;
    use lifeboat_ports::admin::DbRestorer as _;
    let snapshot = mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots).then_output(|| {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(
                DbClusterSnapshot::builder()
                    .db_cluster_snapshot_identifier("lb-gold-ledger-202611220100")
                    .engine("aurora-postgresql")
                    .build(),
            )
            .build()
    });
    let restore = mock!(aws_sdk_rds::Client::restore_db_cluster_from_snapshot)
        .match_requests(|r| {
            r.db_cluster_identifier() == Some("ledger-copy")
                && r.snapshot_identifier() == Some("lb-gold-ledger-202611220100")
                && r.engine() == Some("aurora-postgresql")
                && r.db_subnet_group_name() == Some("private-db")
                && r.vpc_security_group_ids() == ["sg-0123456789abcdef0"]
                && r.db_cluster_parameter_group_name() == Some("ledger-cluster-pg")
        })
        .then_output(|| RestoreDbClusterFromSnapshotOutput::builder().build());
    let cluster = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| {
        DescribeDbClustersOutput::builder()
            .db_clusters(
                DbCluster::builder()
                    .db_cluster_identifier("ledger-copy")
                    .engine("aurora-postgresql")
                    .build(),
            )
            .build()
    });
    let writer = mock!(aws_sdk_rds::Client::create_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("ledger-copy-w1")
                && r.db_cluster_identifier() == Some("ledger-copy")
                && r.db_instance_class() == Some("db.r6g.large")
                && r.engine() == Some("aurora-postgresql")
                && r.publicly_accessible() == Some(false)
        })
        .then_output(|| CreateDbInstanceOutput::builder().build());
    let r = restorer(client!(
        aws_sdk_rds,
        RuleMode::Sequential,
        &[&snapshot, &restore, &cluster, &writer]
    ));
    let east = region("us-east-1");
    let settings = RestoreSettings {
        subnet_group: Some("private-db".into()),
        security_groups: vec!["sg-0123456789abcdef0".into()],
        parameter_group: None,
        cluster_parameter_group: Some("ledger-cluster-pg".into()),
        option_group: None,
    };
    r.restore_cluster(&east, "lb-gold-ledger-202611220100", "ledger-copy", &settings)
        .await
        .unwrap();
    r.create_writer(&east, "ledger-copy", "ledger-copy-w1", "db.r6g.large")
        .await
        .unwrap();
    assert_eq!((restore.num_calls(), writer.num_calls()), (1, 1));
}
