//! DynamoDB on-demand backups through `DynamoDbTableBackups`, on the local AWS stack
//! (moto 5.2.5 implements CreateBackup, DescribeBackup, ListBackups and DeleteBackup).
//! Throttling, paging and faults are covered without network in
//! `shared/aws/tests/table_backups.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use lifeboat_aws::DynamoDbTableBackups;
use lifeboat_ports::{PortError, SnapshotStatus, TableBackups};
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

/// A policy that selects tables by type and tag (the tables carry no policy tag) backs
/// them up on schedule with native backups, the catalog records them, a replayed tick adds
/// nothing, and retention deletes the oldest backup in DynamoDB.
#[tokio::test]
async fn a_policy_selecting_tagged_tables_backs_them_up_and_expires_by_retention() {
    use lifeboat_ports::Catalog;

    let env = TestEnv::start().await.unwrap();
    let client = aws_sdk_dynamodb::Client::new(&env.primary);
    let (carts, scratch) = (env.name("carts"), env.name("scratch"));
    let carts_arn = create_table(&client, &carts).await;
    let scratch_arn = create_table(&client, &scratch).await;
    // A tag unique to this test, so other tests' tables are never selected.
    let tag_key = format!("{}-env", env.name("sel"));
    for (arn, value) in [(&carts_arn, "prod"), (&scratch_arn, "dev")] {
        client
            .tag_resource()
            .resource_arn(arn)
            .tags(
                aws_sdk_dynamodb::types::Tag::builder()
                    .key(&tag_key)
                    .value(value)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let policy = env
        .put_policy(&format!(
            r#"{{"name":"{{prefix}}-tables","every":"1h","rpo":"2h","retain":2,
                 "select":{{"types":["dynamodb-table"],"tags":{{"{tag_key}":"prod"}}}}}}"#
        ))
        .await
        .unwrap();
    let deps = create_snapshots::Deps {
        ports: env.ports(),
        config: env.config(""),
        runs: create_snapshots::DataRuns::default(),
    };
    for (i, at) in ["2026-11-23T18:15:00Z", "2026-11-23T19:15:00Z", "2026-11-23T20:15:00Z"]
        .into_iter()
        .enumerate()
    {
        let report = create_snapshots::handle(&deps, lifeboat_tests::tick_event(at, &format!("run-{i}")))
            .await
            .unwrap();
        let mine: Vec<_> = report
            .created
            .iter()
            .filter(|id| id.as_str().contains(&carts))
            .collect();
        assert_eq!(mine.len(), 1, "{report:#?}");
        assert!(mine[0].as_str().starts_with("us-east-1/table/"));
        assert!(!report.created.iter().any(|id| id.as_str().contains(&scratch)));
    }
    // A replayed tick makes no second backup.
    create_snapshots::handle(&deps, lifeboat_tests::tick_event("2026-11-23T20:15:00Z", "replay"))
        .await
        .unwrap();
    let lifeboat = DynamoDbTableBackups::new(client.clone());
    let names = |list: Vec<lifeboat_ports::TableBackup>| {
        let mut n: Vec<String> = list.into_iter().map(|b| b.name).collect();
        n.sort();
        n
    };
    let before = names(lifeboat.list_backups(&carts, "lb-").await.unwrap());
    let expected: Vec<String> = ["1800", "1900", "2000"]
        .iter()
        .map(|hm| format!("lb-{}-{carts}-20261123-{hm}", policy.name))
        .collect();
    assert_eq!(before, expected);
    assert!(lifeboat.list_backups(&scratch, "lb-").await.unwrap().is_empty());
    let points = env.catalog().by_resource(&carts_arn, 10).await.unwrap();
    assert_eq!(points.len(), 3);
    assert!(
        points
            .iter()
            .all(|p| p.snapshot_arn.as_deref().is_some_and(|a| a.contains("/backup/")))
    );

    // Retention keeps the newest two; judged after the backups were made (moto stamps
    // them with the wall clock).
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let expire = expire_recovery_points::Deps {
        ports: env.ports(),
        config: env.config(""),
        backups: None,
    };
    let report = expire_recovery_points::handle(&expire, lifeboat_tests::tick_event(&later, "expire-1"))
        .await
        .unwrap();
    assert!(report.failed.is_empty() && report.refused.is_empty(), "{report:#?}");
    assert_eq!(report.expired.len(), 1, "{report:#?}");
    let after = names(lifeboat.list_backups(&carts, "lb-").await.unwrap());
    assert_eq!(after, expected[1..]);
}
