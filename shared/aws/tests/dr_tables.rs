//! `DynamoDbDrTables` without network (aws-smithy-mocks), for what moto does not show:
//! moto returns a small table's scan on one page, so the paging of the checksum scan
//! (each page's `LastEvaluatedKey` handed back as `ExclusiveStartKey`, strongly
//! consistent reads) is pinned here; and moto does not raise DynamoDB's table faults on
//! demand, so their mapping to the domain's errors is pinned here too. The happy path
//! runs on moto in `tests/tests/dr_tables.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::operation::delete_table::DeleteTableOutput;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use lifeboat_aws::dr::DynamoDbDrTables;
use lifeboat_aws::retry_config;
use lifeboat_domain::Region;
use lifeboat_domain::dr::table_digest::{TableDigest, Value};
use lifeboat_ports::dr::DrTables;

fn own_partition() -> aws_sdk_dynamodb::config::retry::RetryPartition {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    aws_sdk_dynamodb::config::retry::RetryPartition::new(format!(
        "lifeboat-dr-tables-test-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

fn region() -> Region {
    Region::parse("us-east-1").unwrap()
}

fn tables(rules: &[&Rule]) -> DynamoDbDrTables {
    let partition = own_partition();
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        rules,
        move |c: aws_sdk_dynamodb::config::Builder| c.retry_config(retry_config()).retry_partition(partition.clone())
    );
    DynamoDbDrTables::with_clients(HashMap::from([(region(), client)]))
}

fn ddb_wire_error(status: u16, code: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"scripted"}}"#
        )),
    )
}

fn sdk_item(pk: &str, n: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.into())),
        ("n".to_owned(), AttributeValue::N(n.into())),
        (
            "m".to_owned(),
            AttributeValue::M(HashMap::from([(
                "set".to_owned(),
                AttributeValue::Ns(vec!["2".into(), "1.0".into()]),
            )])),
        ),
    ])
}

fn item(pk: &str, n: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("pk".to_owned(), Value::S(pk.into())),
        ("n".to_owned(), Value::N(n.into())),
        (
            "m".to_owned(),
            Value::M(BTreeMap::from([(
                "set".to_owned(),
                Value::Ns(vec!["1".into(), "2".into()]),
            )])),
        ),
    ])
}

#[tokio::test]
async fn the_checksum_scan_reads_every_page_consistently() {
    let first = mock!(aws_sdk_dynamodb::Client::scan)
        .match_requests(|r| {
            r.table_name() == Some("lbdr-0a1b2c3d-orders")
                && r.consistent_read() == Some(true)
                && r.exclusive_start_key().is_none()
        })
        .then_output(|| {
            ScanOutput::builder()
                .items(sdk_item("a", "1"))
                .items(sdk_item("b", "2.50"))
                .last_evaluated_key("pk", AttributeValue::S("b".into()))
                .build()
        });
    let second = mock!(aws_sdk_dynamodb::Client::scan)
        .match_requests(|r| {
            r.consistent_read() == Some(true)
                && r.exclusive_start_key()
                    .and_then(|k| k.get("pk"))
                    .is_some_and(|v| v == &AttributeValue::S("b".into()))
        })
        .then_output(|| ScanOutput::builder().items(sdk_item("c", "3")).build());
    let t = tables(&[&first, &second]);
    let content = t.scan_content(&region(), "lbdr-0a1b2c3d-orders").await.unwrap();
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    // The same items in another order and spelling give the same checksum.
    let mut expected = TableDigest::new();
    for (pk, n) in [("c", "3"), ("a", "1.0"), ("b", "25e-1")] {
        expected.add(&item(pk, n));
    }
    assert_eq!(content, expected.content());
    assert_eq!(content.items, 3);
}

#[tokio::test(start_paused = true)]
async fn table_faults_map_to_the_domain_errors() {
    // A table still being restored cannot be deleted yet: retried later, not failed.
    let busy = mock!(aws_sdk_dynamodb::Client::delete_table)
        .then_http_response(|| ddb_wire_error(400, "ResourceInUseException"));
    let err = tables(&[&busy])
        .delete_table(&region(), "lbdr-0a1b2c3d-orders")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "throttled", "{err:?}");
    // A missing table is what deleting wanted.
    let missing = mock!(aws_sdk_dynamodb::Client::delete_table)
        .then_http_response(|| ddb_wire_error(400, "ResourceNotFoundException"));
    tables(&[&missing])
        .delete_table(&region(), "lbdr-0a1b2c3d-orders")
        .await
        .unwrap();
    let ok = mock!(aws_sdk_dynamodb::Client::delete_table)
        .match_requests(|r| r.table_name() == Some("lbdr-0a1b2c3d-orders"))
        .then_output(|| DeleteTableOutput::builder().build());
    tables(&[&ok])
        .delete_table(&region(), "lbdr-0a1b2c3d-orders")
        .await
        .unwrap();
    assert_eq!(ok.num_calls(), 1);

    for (code, expected) in [
        ("TableAlreadyExistsException", "already-exists"),
        ("BackupNotFoundException", "not-found"),
        ("BackupInUseException", "throttled"),
        ("TableInUseException", "invalid-state"),
    ] {
        let restore = mock!(aws_sdk_dynamodb::Client::restore_table_from_backup)
            .then_http_response(move || ddb_wire_error(400, code));
        let err = tables(&[&restore])
            .restore_from_backup(
                &region(),
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/1",
                "lbdr-x-orders",
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), expected, "{code}: {err:?}");
    }
    // Missing tables and backups are `None`, not errors.
    let no_table = mock!(aws_sdk_dynamodb::Client::describe_table)
        .then_http_response(|| ddb_wire_error(400, "ResourceNotFoundException"));
    assert_eq!(
        tables(&[&no_table])
            .describe_table(&region(), "lbdr-x-orders")
            .await
            .unwrap(),
        None
    );
    let no_backup = mock!(aws_sdk_dynamodb::Client::describe_backup)
        .then_http_response(|| ddb_wire_error(400, "BackupNotFoundException"));
    assert_eq!(
        tables(&[&no_backup])
            .describe_backup(
                &region(),
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/1"
            )
            .await
            .unwrap(),
        None
    );
}
