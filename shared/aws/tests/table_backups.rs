//! `DynamoDbTableBackups` without network: every SDK call is answered by an
//! `aws-smithy-mocks` rule. moto runs the happy path for real (the `lifeboat-tests` crate's
//! `table_backups.rs`); these tests cover what it cannot do: throttling, paging (moto
//! returns every backup on one page), service faults, and counting the calls that must
//! not happen. Clients use Lifeboat's real retry policy, tokio's clock is paused (backoffs
//! pass in virtual time), and each client has its own retry partition.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::operation::create_backup::CreateBackupOutput;
use aws_sdk_dynamodb::operation::delete_backup::DeleteBackupOutput;
use aws_sdk_dynamodb::operation::list_backups::ListBackupsOutput;
use aws_sdk_dynamodb::types::{BackupDetails, BackupStatus, BackupSummary, BackupType, BackupTypeFilter};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, TimeZone, Utc};
use tokio::time::Instant;

use lifeboat_aws::{DynamoDbTableBackups, MAX_ATTEMPTS, retry_config};
use lifeboat_ports::{PortError, SnapshotStatus, TableBackup, TableBackups};

// ---------------------------------------------------------------------------------------
// Mocked clients
// ---------------------------------------------------------------------------------------

/// The most time Lifeboat's retry policy may spend in backoff before retry number
/// `retries`: full jitter over 100 ms × 2^i, each capped at 5 s (virtual time).
fn backoff_ceiling(retries: u32) -> Duration {
    (0..retries)
        .map(|i| (Duration::from_millis(100) * 2_u32.pow(i)).min(Duration::from_secs(5)))
        .sum()
}

/// A retry partition of its own for each client, so parallel tests never drain each
/// other's retry token bucket.
fn own_partition() -> aws_sdk_dynamodb::config::retry::RetryPartition {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    aws_sdk_dynamodb::config::retry::RetryPartition::new(format!(
        "lifeboat-table-backups-test-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

fn backups(mode: RuleMode, rules: &[&Rule]) -> DynamoDbTableBackups {
    let partition = own_partition();
    DynamoDbTableBackups::new(mock_client!(
        aws_sdk_dynamodb,
        mode,
        rules,
        move |c: aws_sdk_dynamodb::config::Builder| c.retry_config(retry_config()).retry_partition(partition.clone())
    ))
}

/// An error exactly as DynamoDB (awsJson 1.0 protocol) sends it on the wire.
fn ddb_wire_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#
        )),
    )
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const TABLE: &str = "orders";
const TABLE_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";
const NAME: &str = "lb-gold-orders-20261123-1800";

fn backup_arn(id: &str) -> String {
    format!("{TABLE_ARN}/backup/{id}")
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 18, minute, 0).unwrap()
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn summary(name: &str, id: &str, status: BackupStatus, created: DateTime<Utc>) -> BackupSummary {
    BackupSummary::builder()
        .table_name(TABLE)
        .table_arn(TABLE_ARN)
        .backup_arn(backup_arn(id))
        .backup_name(name)
        .backup_creation_date_time(smithy_time(created))
        .backup_status(status)
        .backup_type(BackupType::User)
        .backup_size_bytes(4096)
        .build()
}

fn backup(name: &str, id: &str, status: SnapshotStatus, created: DateTime<Utc>) -> TableBackup {
    TableBackup {
        table_arn: TABLE_ARN.into(),
        backup_arn: backup_arn(id),
        name: name.into(),
        status,
        created_at: Some(created),
        size_bytes: Some(4096),
    }
}

fn created_output() -> CreateBackupOutput {
    CreateBackupOutput::builder()
        .backup_details(
            BackupDetails::builder()
                .backup_arn(backup_arn("01795000000000-0a1b2c3d"))
                .backup_name(NAME)
                .backup_status(BackupStatus::Creating)
                .backup_type(BackupType::User)
                .backup_creation_date_time(smithy_time(at(15)))
                .build()
                .unwrap(),
        )
        .build()
}

/// ListBackups for the table, asked for USER backups, first page.
fn list_first_page() -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_dynamodb::operation::list_backups::ListBackupsInput,
    ListBackupsOutput,
    aws_sdk_dynamodb::operation::list_backups::ListBackupsError,
> {
    mock!(aws_sdk_dynamodb::Client::list_backups).match_requests(|r| {
        r.table_name() == Some(TABLE)
            && r.backup_type() == Some(&BackupTypeFilter::User)
            && r.exclusive_start_backup_arn().is_none()
    })
}

fn create_rule() -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_dynamodb::operation::create_backup::CreateBackupInput,
    CreateBackupOutput,
    aws_sdk_dynamodb::operation::create_backup::CreateBackupError,
> {
    mock!(aws_sdk_dynamodb::Client::create_backup)
        .match_requests(|r| r.table_name() == Some(TABLE) && r.backup_name() == Some(NAME))
}

// ---------------------------------------------------------------------------------------
// create_backup
// ---------------------------------------------------------------------------------------

/// Uses aws-smithy-mocks (no network), because moto cannot inject throttling. The table
/// has no backup of that name; `CreateBackup` answers DynamoDB's control-plane
/// `ThrottlingException` twice, then succeeds. The SDK retries with Lifeboat's backoff;
/// the backup comes back `Creating`, with the table's ARN read from the backup's ARN
/// (CreateBackup's answer does not name it).
#[tokio::test(start_paused = true)]
async fn create_backup_retries_throttling_then_succeeds() {
    let list = list_first_page().then_output(|| ListBackupsOutput::builder().build());
    let create = create_rule()
        .sequence()
        .http_response(|| {
            ddb_wire_error(
                400,
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            )
        })
        .times(2)
        .output(created_output)
        .build();
    let store = backups(RuleMode::MatchAny, &[&list, &create]);

    let start = Instant::now();
    let made = store.create_backup(TABLE, NAME).await.unwrap();

    assert_eq!(
        made,
        TableBackup {
            table_arn: TABLE_ARN.into(),
            backup_arn: backup_arn("01795000000000-0a1b2c3d"),
            name: NAME.into(),
            status: SnapshotStatus::Creating,
            created_at: Some(at(15)),
            size_bytes: None,
        }
    );
    assert_eq!(list.num_calls(), 1, "looks once before creating");
    assert_eq!(create.num_calls(), 3);
    assert!(start.elapsed() <= backoff_ceiling(2), "{:?}", start.elapsed());
}

/// Uses aws-smithy-mocks (no network), because moto returns every backup on one page and
/// cannot count calls that must not happen. A backup named exactly `NAME` exists (twice,
/// as a race between two runs could leave it; plus a deleted one and one whose name only
/// starts with `NAME`): `create_backup` returns the oldest live one and never calls
/// `CreateBackup`.
#[tokio::test(start_paused = true)]
async fn create_backup_returns_the_existing_backup_of_that_name() {
    let list = list_first_page().then_output(|| {
        ListBackupsOutput::builder()
            .backup_summaries(summary(NAME, "0-deleted", BackupStatus::Deleted, at(1)))
            .backup_summaries(summary(
                &format!("{NAME}-manual"),
                "1-longer",
                BackupStatus::Available,
                at(2),
            ))
            .backup_summaries(summary(NAME, "3-duplicate", BackupStatus::Available, at(16)))
            .backup_summaries(summary(NAME, "2-first", BackupStatus::Creating, at(15)))
            .build()
    });
    let create = create_rule().then_output(created_output);
    let store = backups(RuleMode::MatchAny, &[&list, &create]);

    let found = store.create_backup(TABLE, NAME).await.unwrap();

    assert_eq!(found, backup(NAME, "2-first", SnapshotStatus::Creating, at(15)));
    assert_eq!(list.num_calls(), 1);
    assert_eq!(create.num_calls(), 0, "CreateBackup must not be called");
}

/// Uses aws-smithy-mocks (no network), because moto does not raise these faults on
/// demand. DynamoDB's backup faults, as raw awsJson bodies through the SDK's real
/// deserializer, map to the domain's errors. `LimitExceededException` (too many
/// concurrent control-plane operations) is retried by the SDK as throttling and ends as
/// `Throttled`; the others are not retried.
#[tokio::test(start_paused = true)]
async fn create_backup_faults_map_to_port_errors() {
    let cases: [(u16, &str, &str, usize); 6] = [
        (400, "TableNotFoundException", "not-found", 1),
        (400, "BackupInUseException", "throttled", 1),
        (400, "LimitExceededException", "throttled", MAX_ATTEMPTS as usize),
        (400, "ContinuousBackupsUnavailableException", "invalid-state", 1),
        (400, "TableInUseException", "invalid-state", 1),
        (500, "InternalServerError", "unavailable", MAX_ATTEMPTS as usize),
    ];
    for (status, code, expected, calls) in cases {
        let list = list_first_page().then_output(|| ListBackupsOutput::builder().build());
        let create = create_rule()
            .sequence()
            .http_response(move || ddb_wire_error(status, code, "scripted"))
            .repeatedly()
            .build();
        let store = backups(RuleMode::MatchAny, &[&list, &create]);
        let err = store.create_backup(TABLE, NAME).await.unwrap_err();
        assert_eq!(err.code(), expected, "{code}: {err:?}");
        assert_eq!(create.num_calls(), calls, "{code}");
    }
}

// ---------------------------------------------------------------------------------------
// list_backups
// ---------------------------------------------------------------------------------------

/// Uses aws-smithy-mocks (no network), because moto returns every backup on one page.
/// The first page ends with `LastEvaluatedBackupArn`; the adapter asks for the next page
/// from exactly that ARN (`ExclusiveStartBackupArn`), stops when a page has none, and keeps
/// only the backups whose name starts with the prefix, in listing order.
#[tokio::test(start_paused = true)]
async fn list_backups_reads_every_page() {
    let page1 = list_first_page().then_output(|| {
        ListBackupsOutput::builder()
            .backup_summaries(summary(
                "lb-gold-orders-20261123-1600",
                "a",
                BackupStatus::Available,
                at(1),
            ))
            .backup_summaries(summary("manual-before-migration", "b", BackupStatus::Available, at(2)))
            .last_evaluated_backup_arn(backup_arn("b"))
            .build()
    });
    let page2 = mock!(aws_sdk_dynamodb::Client::list_backups)
        .match_requests(|r| {
            r.table_name() == Some(TABLE) && r.exclusive_start_backup_arn() == Some(backup_arn("b").as_str())
        })
        .then_output(|| {
            ListBackupsOutput::builder()
                .backup_summaries(summary(
                    "lb-gold-orders-20261123-1700",
                    "c",
                    BackupStatus::Creating,
                    at(3),
                ))
                .build()
        });
    let store = backups(RuleMode::MatchAny, &[&page1, &page2]);

    let listed = store.list_backups(TABLE, "lb-").await.unwrap();

    assert_eq!(
        listed,
        [
            backup("lb-gold-orders-20261123-1600", "a", SnapshotStatus::Available, at(1)),
            backup("lb-gold-orders-20261123-1700", "c", SnapshotStatus::Creating, at(3)),
        ]
    );
    assert_eq!(page1.num_calls(), 1);
    assert_eq!(page2.num_calls(), 1);
}

/// Uses aws-smithy-mocks (no network): a service that keeps answering the same
/// `LastEvaluatedBackupArn` would page forever; the adapter stops with `Unavailable`.
#[tokio::test(start_paused = true)]
async fn list_backups_stops_when_the_listing_does_not_advance() {
    let pages = mock!(aws_sdk_dynamodb::Client::list_backups).then_output(|| {
        ListBackupsOutput::builder()
            .last_evaluated_backup_arn(backup_arn("b"))
            .build()
    });
    let store = backups(RuleMode::MatchAny, &[&pages]);
    let err = store.list_backups(TABLE, "lb-").await.unwrap_err();
    assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    assert_eq!(pages.num_calls(), 2);
}

// ---------------------------------------------------------------------------------------
// describe_backup and delete_backup
// ---------------------------------------------------------------------------------------

/// Uses aws-smithy-mocks (no network), to pin the wire format: a DescribeBackup answer as
/// DynamoDB sends it (epoch-seconds timestamps) reads as the backup, the table's ARN taken
/// from `SourceTableDetails`; `DELETED` is kept as `Other("deleted")`; a missing backup is
/// `None`.
#[tokio::test(start_paused = true)]
async fn describe_backup_reads_the_wire_answer_and_maps_not_found_to_none() {
    let arn = backup_arn("01795000000000-0a1b2c3d");
    let body = format!(
        r#"{{"BackupDescription":{{
            "BackupDetails":{{"BackupArn":"{arn}","BackupName":"{NAME}","BackupSizeBytes":123,
                "BackupStatus":"DELETED","BackupType":"USER","BackupCreationDateTime":{created}}},
            "SourceTableDetails":{{"TableName":"{TABLE}","TableId":"e0f1","TableArn":"{TABLE_ARN}",
                "KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}}],"TableCreationDateTime":1.7E9}}}}}}"#,
        created = at(15).timestamp()
    );
    let found = mock!(aws_sdk_dynamodb::Client::describe_backup)
        .match_requests(|r| r.backup_arn() == Some(backup_arn("01795000000000-0a1b2c3d").as_str()))
        .then_http_response(move || HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::from(body.clone())));
    let missing = mock!(aws_sdk_dynamodb::Client::describe_backup)
        .match_requests(|r| r.backup_arn() == Some(backup_arn("gone").as_str()))
        .then_http_response(|| ddb_wire_error(400, "BackupNotFoundException", "Backup not found"));
    let store = backups(RuleMode::MatchAny, &[&found, &missing]);

    let described = store.describe_backup(&arn).await.unwrap();
    assert_eq!(
        described,
        Some(TableBackup {
            table_arn: TABLE_ARN.into(),
            backup_arn: arn.clone(),
            name: NAME.into(),
            status: SnapshotStatus::Other("deleted".into()),
            created_at: Some(at(15)),
            size_bytes: Some(123),
        })
    );
    assert_eq!(store.describe_backup(&backup_arn("gone")).await.unwrap(), None);
    assert_eq!(missing.num_calls(), 1, "not found is an answer, not retried");
}

/// Uses aws-smithy-mocks (no network), because moto's answer to deleting a missing
/// backup is not DynamoDB's to rely on. `BackupNotFoundException` on delete is `Ok`
/// (deleting is idempotent) and is not retried; a backup still being created
/// (`BackupInUseException`) is `Throttled`, transient.
#[tokio::test(start_paused = true)]
async fn delete_backup_of_a_missing_backup_is_ok() {
    let gone = mock!(aws_sdk_dynamodb::Client::delete_backup)
        .match_requests(|r| r.backup_arn() == Some(backup_arn("gone").as_str()))
        .then_http_response(|| ddb_wire_error(400, "BackupNotFoundException", "Backup not found"));
    let busy = mock!(aws_sdk_dynamodb::Client::delete_backup)
        .match_requests(|r| r.backup_arn() == Some(backup_arn("busy").as_str()))
        .then_http_response(|| ddb_wire_error(400, "BackupInUseException", "Backup is being created"));
    let ok = mock!(aws_sdk_dynamodb::Client::delete_backup)
        .match_requests(|r| r.backup_arn() == Some(backup_arn("live").as_str()))
        .then_output(|| DeleteBackupOutput::builder().build());
    let store = backups(RuleMode::MatchAny, &[&gone, &busy, &ok]);

    store.delete_backup(&backup_arn("gone")).await.unwrap();
    assert_eq!(gone.num_calls(), 1);

    let err = store.delete_backup(&backup_arn("busy")).await.unwrap_err();
    assert!(matches!(err, PortError::Throttled(_)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(busy.num_calls(), 1);

    store.delete_backup(&backup_arn("live")).await.unwrap();
    assert_eq!(ok.num_calls(), 1);
}
