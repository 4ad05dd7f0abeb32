//! DynamoDB on-demand backups through `DynamoDbTableBackups`, on the local AWS stack
//! (moto 5.2.5 implements CreateBackup, DescribeBackup, ListBackups and DeleteBackup).
//! Throttling, paging and faults are covered without network in
//! `shared/tests/table_backups.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use lifeboat::aws::DynamoDbTableBackups;
use lifeboat::ports::{PortError, SnapshotStatus, TableBackups};
use lifeboat_tests::TestEnv;

/// A one-key on-demand table; returns its ARN.
async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> String {
    let out = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
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
        .send()
        .await
        .unwrap();
    out.table_description()
        .and_then(|t| t.table_arn())
        .expect("a table ARN")
        .to_owned()
}

#[tokio::test]
async fn a_table_backup_is_created_once_per_name_listed_by_prefix_and_deleted_idempotently() {
    let env = TestEnv::start().await.unwrap();
    let client = aws_sdk_dynamodb::Client::new(&env.primary);
    let table = env.name("orders");
    let table_arn = create_table(&client, &table).await;
    let backups = DynamoDbTableBackups::new(client.clone());
    let name = format!("lb-gold-{table}-20261123-1800");

    // A backup someone else took, outside Lifeboat's prefix.
    client
        .create_backup()
        .table_name(&table)
        .backup_name(format!("manual-{table}"))
        .send()
        .await
        .unwrap();

    // Twice with one name: one backup.
    let first = backups.create_backup(&table, &name).await.unwrap();
    let second = backups.create_backup(&table, &name).await.unwrap();
    assert_eq!(
        second.backup_arn, first.backup_arn,
        "the second create returns the first backup"
    );
    assert_eq!(first.name, name);
    assert_eq!(first.table_arn, table_arn);
    assert!(
        matches!(first.status, SnapshotStatus::Creating | SnapshotStatus::Available),
        "{:?}",
        first.status
    );

    let described = backups
        .describe_backup(&first.backup_arn)
        .await
        .unwrap()
        .expect("described");
    assert_eq!(
        (
            described.backup_arn.as_str(),
            described.name.as_str(),
            described.table_arn.as_str()
        ),
        (first.backup_arn.as_str(), name.as_str(), table_arn.as_str())
    );
    assert!(described.created_at.is_some());

    let listed = backups.list_backups(&table, "lb-").await.unwrap();
    assert_eq!(listed.len(), 1, "only Lifeboat's backup, once: {listed:#?}");
    assert_eq!(listed[0].backup_arn, first.backup_arn);
    assert_eq!(listed[0].table_arn, table_arn);
    assert_eq!(backups.list_backups(&table, "").await.unwrap().len(), 2);

    // Deleting is idempotent.
    backups.delete_backup(&first.backup_arn).await.unwrap();
    backups.delete_backup(&first.backup_arn).await.unwrap();
    let after = backups.describe_backup(&first.backup_arn).await.unwrap();
    assert!(
        after
            .as_ref()
            .is_none_or(|b| b.status == SnapshotStatus::Other("deleted".into())),
        "{after:?}"
    );
    assert!(
        backups
            .list_backups(&table, "lb-")
            .await
            .unwrap()
            .iter()
            .all(|b| b.status == SnapshotStatus::Other("deleted".into())),
        "deleted backups are gone or marked deleted"
    );
}

#[tokio::test]
async fn backing_up_a_missing_table_is_not_found() {
    let env = TestEnv::start().await.unwrap();
    let backups = DynamoDbTableBackups::new(aws_sdk_dynamodb::Client::new(&env.primary));
    let err = backups
        .create_backup(&env.name("no-such-table"), "lb-gold-missing-20261123-1800")
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::NotFound(_)), "{err:?}");
}
