//! Table copies (exports) and their import without network (aws-smithy-mocks), for what
//! moto 5.2.5 does not show: AWS writes manifest files (and a `_started` marker) beside an
//! export's `data/` folder, which moto does not, and the import must read the data folder
//! only; moto does not raise `ResourceInUseException` from ImportTable for an existing
//! target, nor `PointInTimeRecoveryUnavailableException` through a point in time. The whole
//! path runs on moto in `tests/tests/dr_tables.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
use aws_sdk_dynamodb::operation::import_table::ImportTableOutput;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, ImportTableDescription, InputCompressionType, InputFormat, KeySchemaElement, KeyType,
    ScalarAttributeType, TableDescription,
};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::Object;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use lifeboat_aws::table_exports::TableExports;
use lifeboat_domain::Region;
use lifeboat_domain::s3::ExportBuckets;
use lifeboat_ports::PortError;

const COPY: &str = "lb-gold-orders-20261123-0300";
const MARKER: &str = r#"{"export_arn":"arn:aws:dynamodb:us-east-1:123456789012:table/orders/export/0170-abc",
  "table_arn":"arn:aws:dynamodb:us-east-1:123456789012:table/orders",
  "export_time":"2026-11-23T03:00:00Z",
  "table":{"key_schema":[["pk","HASH"],["sk","RANGE"]],"attributes":[["pk","S"],["sk","N"],["customer","S"]],
           "indexes":[{"name":"by-customer","key_schema":[["customer","HASH"]],"projection":"ALL"}]}}"#;

fn west() -> Region {
    Region::parse("us-west-2").unwrap()
}

fn east() -> Region {
    Region::parse("us-east-1").unwrap()
}

fn exports(ddb: &[&Rule], s3: &[&Rule]) -> TableExports {
    let ddb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, ddb);
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, s3);
    TableExports::with_clients(
        HashMap::from([(west(), ddb.clone()), (east(), ddb)]),
        HashMap::from([(west(), s3.clone()), (east(), s3)]),
        ExportBuckets::parse("exports-{region}").unwrap(),
    )
}

fn marker() -> Rule {
    mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|r| {
            r.bucket() == Some("exports-us-west-2")
                && r.key() == Some(&format!("lifeboat-table-exports/{COPY}/lifeboat-export.json")[..])
        })
        .then_output(|| {
            GetObjectOutput::builder()
                .body(ByteStream::from_static(MARKER.as_bytes()))
                .build()
        })
}

/// What AWS writes for one export: the start marker, the manifests and the data files.
fn listing() -> Rule {
    mock!(aws_sdk_s3::Client::list_objects_v2).then_output(|| {
        let base = format!("lifeboat-table-exports/{COPY}/AWSDynamoDB");
        let keys = [
            format!("{base}/01700000000000-abcdef12/_started"),
            format!("{base}/01700000000000-abcdef12/manifest-files.json"),
            format!("{base}/01700000000000-abcdef12/manifest-summary.json"),
            format!("{base}/01700000000000-abcdef12/data/aaaa.json.gz"),
            format!("{base}/01700000000000-abcdef12/data/bbbb.json.gz"),
        ];
        ListObjectsV2Output::builder()
            .set_contents(Some(keys.iter().map(|k| Object::builder().key(k).build()).collect()))
            .build()
    })
}

fn ddb_error(code: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(400).unwrap(),
        SdkBody::from(format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"scripted"}}"#
        )),
    )
}

#[tokio::test]
async fn the_import_reads_the_data_folder_only_with_the_recorded_shape() {
    let import = mock!(aws_sdk_dynamodb::Client::import_table)
        .match_requests(|r| {
            let source = r.s3_bucket_source().unwrap();
            let table = r.table_creation_parameters().unwrap();
            let gsi = &table.global_secondary_indexes()[0];
            source.s3_bucket() == "exports-us-west-2"
                && source.s3_key_prefix()
                    == Some(&format!("lifeboat-table-exports/{COPY}/AWSDynamoDB/01700000000000-abcdef12/data/")[..])
                && r.input_format() == Some(&InputFormat::DynamodbJson)
                && r.input_compression_type() == Some(&InputCompressionType::Gzip)
                && r.client_token() == Some("token-1")
                && table.table_name() == "lbfo-x-orders"
                && table.key_schema().len() == 2
                && table.key_schema()[1].key_type() == &KeyType::Range
                && table.attribute_definitions().len() == 3
                && gsi.index_name() == "by-customer"
                && gsi.key_schema()[0].attribute_name() == "customer"
        })
        .then_output(|| {
            ImportTableOutput::builder()
                .import_table_description(
                    ImportTableDescription::builder()
                        .import_arn("arn:aws:dynamodb:us-west-2:123456789012:table/lbfo-x-orders/import/1")
                        .build(),
                )
                .build()
        });
    let (marker, listing) = (marker(), listing());
    let e = exports(&[&import], &[&marker, &listing]);
    let arn = e.import(&west(), COPY, "lbfo-x-orders", "token-1").await.unwrap();
    assert!(arn.ends_with("/import/1"), "{arn}");
    assert_eq!(import.num_calls(), 1, "the request matched: data folder, shape, format");
}

#[tokio::test]
async fn an_existing_target_is_already_exists_and_a_copy_without_a_record_is_not_found() {
    let import =
        mock!(aws_sdk_dynamodb::Client::import_table).then_http_response(|| ddb_error("ResourceInUseException"));
    let (marker, listing) = (marker(), listing());
    let e = exports(&[&import], &[&marker, &listing]);
    let err = e.import(&west(), COPY, "lbfo-x-orders", "token-1").await.unwrap_err();
    assert!(matches!(err, PortError::AlreadyExists(_)), "{err:?}");

    let missing = mock!(aws_sdk_s3::Client::get_object).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(404).unwrap(),
            SdkBody::from("<Error><Code>NoSuchKey</Code><Message>scripted</Message></Error>"),
        )
    });
    let e = exports(&[], &[&missing]);
    assert!(e.marker(&west(), COPY).await.unwrap().is_none());
    let err = e.import(&west(), COPY, "t", "token").await.unwrap_err();
    assert!(matches!(err, PortError::NotFound(_)), "{err:?}");
    // A name that would leave Lifeboat's prefix is refused before any call.
    let err = e.import(&west(), "../other", "t", "token").await.unwrap_err();
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn an_export_without_point_in_time_recovery_is_invalid_and_says_so() {
    let missing = mock!(aws_sdk_s3::Client::get_object).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(404).unwrap(),
            SdkBody::from("<Error><Code>NoSuchKey</Code><Message>scripted</Message></Error>"),
        )
    });
    let describe = mock!(aws_sdk_dynamodb::Client::describe_table).then_output(|| {
        DescribeTableOutput::builder()
            .table(
                TableDescription::builder()
                    .table_name("orders")
                    .table_arn("arn:aws:dynamodb:us-east-1:123456789012:table/orders")
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("pk")
                            .key_type(KeyType::Hash)
                            .build()
                            .unwrap(),
                    )
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name("pk")
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
    });
    let export = mock!(aws_sdk_dynamodb::Client::export_table_to_point_in_time)
        .then_http_response(|| ddb_error("PointInTimeRecoveryUnavailableException"));
    let e = exports(&[&describe, &export], &[&missing]);
    let err = e
        .start(
            &east(),
            "orders",
            "2026-11-23T03:00:00Z".parse().unwrap(),
            &west(),
            COPY,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PortError::Invalid(m) if m.contains("enable point-in-time recovery")),
        "{err:?}"
    );
}
