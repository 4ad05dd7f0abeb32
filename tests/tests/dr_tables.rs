//! DynamoDB tables in a DR plan, on the local stack: a table with items and a global
//! secondary index, a native backup taken through Lifeboat (an on-demand request to
//! `create-snapshots`), then drills on the real state machine that restore the backup on
//! moto (`RestoreTableFromBackup`), validate the restored table's item count and content
//! checksum, and tear it down.
//!
//! moto 5.2.5 restores instantly (the table is `ACTIVE` at once) and its `DescribeBackup`
//! gives the exact item count at backup time in `SourceTableDetails.ItemCount`; on AWS
//! that figure is refreshed only about every 6 hours, which is why validation reports a
//! difference from it but fails only on the checksum.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use lifeboat_domain::Region;
use lifeboat_domain::dr::ExecStatus;
use lifeboat_ports::Catalog;
use lifeboat_ports::dr::DrStore;
use lifeboat_ports::dr::DrTables;
use lifeboat_tests::PRIMARY;
use lifeboat_tests::dr::DrEnv;
use serde_json::json;

const ITEMS: usize = 40;

async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> String {
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("customer"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by-customer")
                .key_schema(key("customer", KeyType::Hash))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .table_description()
        .and_then(|t| t.table_arn())
        .unwrap()
        .to_owned()
}

async fn put_items(client: &aws_sdk_dynamodb::Client, table: &str) {
    for i in 0..ITEMS {
        client
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(format!("order-{i:03}")))
            .item("customer", AttributeValue::S(format!("c-{}", i % 7)))
            .item("total", AttributeValue::N(format!("{}.50", i * 3)))
            .item("lines", AttributeValue::L(vec![AttributeValue::N(i.to_string())]))
            .item("flags", AttributeValue::Ss(vec!["new".into(), format!("f{}", i % 3)]))
            .send()
            .await
            .unwrap();
    }
}

/// A table with [`ITEMS`] items, its backup taken through Lifeboat and a plan naming it:
/// (table, its ARN, the backup's recovery point, the plan).
async fn estate(dr: &DrEnv) -> (String, String, lifeboat_domain::RecoveryPointId, String) {
    let env = &dr.env;
    let client = aws_sdk_dynamodb::Client::new(&env.primary);
    let table = env.name("orders");
    let table_arn = create_table(&client, &table).await;
    put_items(&client, &table).await;

    // A native backup through Lifeboat: a policy selecting the table by a tag unique to
    // this test, and an on-demand backup request carried out by create-snapshots.
    let tag_key = format!("{}-dr", env.prefix);
    client
        .tag_resource()
        .resource_arn(&table_arn)
        .tags(
            aws_sdk_dynamodb::types::Tag::builder()
                .key(&tag_key)
                .value("prod")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    env.put_policy(&format!(
        r#"{{"name":"{{prefix}}-tables","every":"1h","rpo":"2h","retain":3,
             "select":{{"types":["dynamodb-table"],"tags":{{"{tag_key}":"prod"}}}}}}"#
    ))
    .await
    .unwrap();
    let backup = create_snapshots::run_request(
        &create_snapshots::Deps {
            ports: env.ports(),
            config: env.config(""),
            runs: create_snapshots::DataRuns::default(),
        },
        &lifeboat::events::BackupRequest {
            resources: vec![table_arn.clone()],
            emergency: false,
            reason: "DR drill test".into(),
            requested_by: None,
            request_id: env.name("backup"),
            requested_at: None,
        },
        "dr-tables-backup",
    )
    .await
    .unwrap();
    assert_eq!(backup.created.len(), 1, "{backup:#?}");
    let rp_id = backup.created[0].clone();
    // Written after the backup: not in the drill's restore.
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("after-the-backup".into()))
        .item("customer", AttributeValue::S("c-late".into()))
        .send()
        .await
        .unwrap();

    let plan = dr
        .put_plan(&format!(
            r#"{{"name": "{{prefix}}-tables", "source_region": "{PRIMARY}", "dr_region": "{}",
                "tables": [{{"arn": "{table_arn}"}}], "rto": "30m", "rpo": "15m", "poll_interval": "1s"}}"#,
            lifeboat_tests::DR
        ))
        .await
        .unwrap()
        .name;

    (table, table_arn, rp_id, plan)
}

#[tokio::test]
async fn a_drill_restores_a_table_backup_validates_count_and_checksum_and_tears_it_down() {
    let dr = DrEnv::start().await.unwrap();
    let env = &dr.env;
    let client = aws_sdk_dynamodb::Client::new(&env.primary);
    let (table, _, rp_id, plan) = estate(&dr).await;
    let tables = lifeboat_aws::dr::DynamoDbDrTables::new(env.primary.clone());
    let east = Region::parse(PRIMARY).unwrap();
    let mut checksums = Vec::new();
    for round in ["first", "second"] {
        let name = format!("{}-{round}", env.prefix);
        let done = dr.run(&name, json!({"plan": plan, "mode": "drill"})).await.unwrap();
        assert_eq!(done.status, "SUCCEEDED", "{round}: {done:?}");
        let report = dr.report(&plan, &name).await.unwrap();
        assert_eq!(report["status"], "succeeded", "{report:#}");
        let t = &report["tables"][0];
        let restored = t["target_name"].as_str().unwrap().to_owned();
        assert!(
            restored.starts_with("lbdr-") && restored.ends_with(&table),
            "{report:#}"
        );
        assert_eq!(t["recovery_point"], rp_id.to_string(), "{report:#}");
        assert!(
            t["reason"].as_str().unwrap().contains("newest usable native backup"),
            "{report:#}"
        );
        // The backup's 40 items, not the one written after it.
        assert_eq!(t["content"]["items"], ITEMS, "{report:#}");
        assert_eq!(t["backup_item_count"], ITEMS, "moto's DescribeBackup count: {report:#}");
        let verdict = t["verdict"].as_str().unwrap();
        assert!(verdict.starts_with("passed"), "{report:#}");
        assert!(
            verdict.contains("indexes [\"by-customer\"] as the source's"),
            "{verdict}"
        );
        assert!(verdict.contains("key schema as the source's"), "{verdict}");
        if round == "first" {
            assert!(verdict.contains("count and checksum recorded"), "{verdict}");
        } else {
            assert!(verdict.contains("match the backup's first restore"), "{verdict}");
        }
        checksums.push(t["content"]["checksum"].as_str().unwrap().to_owned());
        // The RPO is the backup's age (taken just before the drill).
        let rpo = report["measurement"]["rpo_secs"].as_u64().unwrap();
        assert!(rpo <= 120, "RPO {rpo}s: {report:#}");
        // Torn down: the drill's table is gone, the source is untouched.
        assert!(
            tables.describe_table(&east, &restored).await.unwrap().is_none(),
            "{restored} left behind"
        );
        assert!(
            report["compensations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["done"] == true)
        );
        let exec = dr.store().get_execution(&plan, &name).await.unwrap().unwrap();
        assert_eq!(exec.status, ExecStatus::Succeeded);
    }
    assert_eq!(checksums[0], checksums[1]);
    let recorded = env.catalog().get(&rp_id).await.unwrap().unwrap();
    let c = recorded.table_checksum().cloned().unwrap();
    assert_eq!((c.items, c.checksum.as_str()), (ITEMS as u64, checksums[0].as_str()));
    assert!(recorded.verified_at.is_some());

    // The checksum is of the data: the source table with the late item deleted again
    // holds exactly what the backup held, and scans to the same checksum.
    client
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("after-the-backup".into()))
        .send()
        .await
        .unwrap();
    let source = tables.scan_content(&east, &table).await.unwrap();
    assert_eq!((source.items, source.checksum), (ITEMS as u64, checksums[0].clone()));
    assert!(tables.describe_table(&east, &table).await.unwrap().is_some());
}

/// The backup's first validated restore recorded other content than a drill finds now
/// (as if the backup had changed since): the validation fails, the compensation deletes
/// the drill's table, the failure is alerted once, and the recorded checksum stays.
#[tokio::test]
async fn a_checksum_that_differs_from_the_first_restore_fails_the_drill_and_leaves_nothing() {
    let dr = DrEnv::start().await.unwrap();
    let env = &dr.env;
    let (_, _, rp_id, plan) = estate(&dr).await;
    let catalog = env.catalog();
    let mut rp = catalog.get(&rp_id).await.unwrap().unwrap();
    let expected = rp.version;
    let earlier = lifeboat_domain::TableChecksum {
        items: ITEMS as u64,
        checksum: format!(
            "{}:{}",
            lifeboat_domain::dr::table_digest::CHECKSUM_SCHEME,
            "ab".repeat(32)
        ),
        restored_as: "lbdr-00000000-earlier".into(),
        at: chrono::Utc::now(),
    };
    rp.table_backup_mut().unwrap().table_checksum = Some(earlier.clone());
    rp.version += 1;
    catalog.update(&rp, expected).await.unwrap();

    let name = format!("{}-mismatch", env.prefix);
    let done = dr.run(&name, json!({"plan": plan, "mode": "drill"})).await.unwrap();
    assert_eq!(
        (done.status.as_str(), done.error.as_deref()),
        ("FAILED", Some("DrFailed")),
        "{done:?}"
    );
    let report = dr.report(&plan, &name).await.unwrap();
    assert_eq!(report["status"], "failed", "{report:#}");
    assert!(
        report["error"].as_str().unwrap().contains("content differs"),
        "{report:#}"
    );
    let t = &report["tables"][0];
    assert!(t["verdict"].as_str().unwrap().starts_with("failed"), "{report:#}");
    assert_eq!(t["content"]["items"], ITEMS, "same count, other checksum: {report:#}");
    let restored = t["target_name"].as_str().unwrap();
    let tables = lifeboat_aws::dr::DynamoDbDrTables::new(env.primary.clone());
    assert!(
        tables
            .describe_table(&Region::parse(PRIMARY).unwrap(), restored)
            .await
            .unwrap()
            .is_none(),
        "{restored} left behind"
    );
    assert!(
        report["compensations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["done"] == true)
    );
    let ours = env
        .alerts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.alert.details.get("execution") == Some(&name))
        .count();
    assert_eq!(ours, 1);
    assert_eq!(
        catalog.get(&rp_id).await.unwrap().unwrap().table_checksum().cloned(),
        Some(earlier),
        "a later restore never overwrites the recorded checksum"
    );
}

/// A table's cross-region copy on moto, through the adapters: the table exported at its
/// backup's time (`ExportTableToPointInTime`, point-in-time recovery on) into the DR
/// region's export bucket by the table snapshot store, described by its name in the DR
/// region until the export completes, then imported there (`ImportTable`) into a new table
/// with the source's key schema and index, whose item count and content checksum equal the
/// source's. Deleting the copy removes Lifeboat's objects and nothing else in the bucket.
///
/// moto 5.2.5 exports the table as it is when called (it ignores `ExportTime`) and writes
/// the data file without the manifest files AWS writes beside it; nothing is written to
/// the table between its backup and the export here.
#[tokio::test]
async fn a_table_copy_is_an_export_to_the_dr_region_that_imports_there_with_the_same_content() {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    use lifeboat_aws::table_exports::TableExports;
    use lifeboat_domain::s3::ExportBuckets;
    use lifeboat_domain::{ResourceKind, ResourceRef};
    use lifeboat_ports::{PortError, SnapshotStatus, SnapshotStore};

    let env = lifeboat_tests::TestEnv::start().await.unwrap();
    let east = Region::parse(PRIMARY).unwrap();
    let west = Region::parse(lifeboat_tests::DR).unwrap();
    let client = aws_sdk_dynamodb::Client::new(&env.primary);
    let table = env.name("exported");
    let table_arn = create_table(&client, &table).await;
    put_items(&client, &table).await;
    client
        .update_continuous_backups()
        .table_name(&table)
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let buckets = ExportBuckets::parse(&format!("{}-exports-{{region}}", env.prefix)).unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&env.dr)
            .force_path_style(true)
            .build(),
    );
    let bucket = buckets.bucket(&west);
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Not Lifeboat's: never deleted.
    s3.put_object()
        .bucket(&bucket)
        .key("other/keep.json")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
    let exports = || TableExports::new(env.primary.clone(), buckets.clone(), true);
    let store = lifeboat_aws::DynamoDbTableSnapshots::new(env.primary.clone()).with_exports(exports());
    let resource = ResourceRef {
        kind: ResourceKind::DynamoDbTable,
        id: table.clone(),
        arn: table_arn.clone(),
        region: east.clone(),
    };
    let name = format!("lb-copies-{table}");
    store.create_snapshot(&resource, &name, &[]).await.unwrap();
    lifeboat_tests::wait_for("the backup", || async {
        Ok(store
            .describe_snapshot(&east, ResourceKind::DynamoDbTable, &name)
            .await?
            .is_some_and(|s| s.status == SnapshotStatus::Available))
    })
    .await
    .unwrap();
    let backup = store
        .describe_snapshot(&east, ResourceKind::DynamoDbTable, &name)
        .await
        .unwrap()
        .unwrap();

    let copy = store.copy_snapshot(&backup, &west, &name, "", &[]).await.unwrap();
    assert_eq!(
        (copy.region.clone(), copy.status.clone()),
        (west.clone(), SnapshotStatus::Creating)
    );
    assert_eq!(copy.created_at, backup.created_at, "exported at the backup's time");
    // A second start finds the first: no second export.
    assert!(
        matches!(
            store.copy_snapshot(&backup, &west, &name, "", &[]).await,
            Err(PortError::AlreadyExists(_))
        ),
        "a copy is started once"
    );
    lifeboat_tests::wait_for("the export", || async {
        Ok(store
            .describe_snapshot(&west, ResourceKind::DynamoDbTable, &name)
            .await?
            .is_some_and(|s| s.status == SnapshotStatus::Available))
    })
    .await
    .unwrap();

    // The DR region imports it (the source region is not asked for anything).
    let tables = lifeboat_aws::dr::DynamoDbDrTables::new(env.primary.clone()).with_exports(exports());
    let target = format!("lbdr-{table}");
    let import = tables.import_copy(&west, &name, &target).await.unwrap();
    lifeboat_tests::wait_for("the import", || async {
        let i = tables.describe_import(&west, &import).await?.unwrap();
        assert_ne!(i.status, "FAILED", "{i:?}");
        Ok(i.status == "COMPLETED")
    })
    .await
    .unwrap();
    let info = tables.describe_table(&west, &target).await.unwrap().unwrap();
    assert_eq!(info.key_schema, vec![("pk".to_owned(), "HASH".to_owned())]);
    assert_eq!(info.indexes, vec!["by-customer".to_owned()]);
    assert_eq!(
        tables
            .describe_import(&west, &import)
            .await
            .unwrap()
            .unwrap()
            .table_name
            .as_deref(),
        Some(target.as_str())
    );
    let source = tables.scan_content(&east, &table).await.unwrap();
    let imported = tables.scan_content(&west, &target).await.unwrap();
    assert_eq!(imported.items, u64::try_from(ITEMS).unwrap());
    assert_eq!(imported, source, "same count and checksum as the source");
    tables.delete_table(&west, &target).await.unwrap();

    store
        .delete_snapshot(&west, ResourceKind::DynamoDbTable, &name)
        .await
        .unwrap();
    assert!(
        store
            .describe_snapshot(&west, ResourceKind::DynamoDbTable, &name)
            .await
            .unwrap()
            .is_none()
    );
    let left: Vec<String> = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(left, vec!["other/keep.json".to_owned()]);
}

/// The failover's path, end to end on the local stack: a policy copying the table to
/// us-west-2, its backup taken by create-snapshots, the copy (an export on moto) started by
/// copy-snapshots and tracked to copied by track-recovery-points, then a drill on the real
/// state machine that imports the copy in us-west-2, validates its item count and checksum,
/// and tears the imported table down.
#[tokio::test]
async fn a_drill_imports_the_tables_copy_made_by_copy_snapshots_in_the_dr_region() {
    use std::sync::Arc;

    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    use lifeboat_aws::table_exports::TableExports;
    use lifeboat_domain::Status;
    use lifeboat_domain::s3::ExportBuckets;

    // As infra/local/functions.env names it for the functions.
    const LOCAL_EXPORTS: &str = "lifeboat-table-exports-{region}";
    let dr = DrEnv::start().await.unwrap();
    let env = &dr.env;
    let west = Region::parse(lifeboat_tests::DR).unwrap();
    let client = aws_sdk_dynamodb::Client::new(&env.primary);
    let table = env.name("copied");
    let table_arn = create_table(&client, &table).await;
    put_items(&client, &table).await;
    client
        .update_continuous_backups()
        .table_name(&table)
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let buckets = ExportBuckets::parse(LOCAL_EXPORTS).unwrap();
    let s3 = dr.s3();
    if let Err(e) = s3
        .create_bucket()
        .bucket(buckets.bucket(&west))
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
    {
        // Made by an earlier test on this stack.
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
        assert_eq!(code.as_deref(), Some("BucketAlreadyOwnedByYou"), "{e:?}");
    }
    let tag_key = format!("{}-dr", env.prefix);
    client
        .tag_resource()
        .resource_arn(&table_arn)
        .tags(
            aws_sdk_dynamodb::types::Tag::builder()
                .key(&tag_key)
                .value("prod")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    env.put_policy(&format!(
        r#"{{"name":"{{prefix}}-copied","every":"1h","rpo":"2h","retain":3,"copies":[{{"region":"{}"}}],
             "select":{{"types":["dynamodb-table"],"tags":{{"{tag_key}":"prod"}}}}}}"#,
        lifeboat_tests::DR
    ))
    .await
    .unwrap();
    let key = env.create_kms_key(lifeboat_tests::DR).await.unwrap();
    let mut config = env.config(&format!("{}={key}", lifeboat_tests::DR));
    config.table_export_bucket = Some(buckets.clone());
    config.s3_path_style = true;
    let mut ports = env.ports();
    ports.snapshots = Arc::new(lifeboat::routing::RoutedSnapshots {
        databases: Arc::new(lifeboat_aws::RdsSnapshotStore::new(env.primary.clone())),
        tables: Arc::new(
            lifeboat_aws::DynamoDbTableSnapshots::new(env.primary.clone()).with_exports(TableExports::new(
                env.primary.clone(),
                buckets,
                true,
            )),
        ),
    });
    let backup = create_snapshots::run_request(
        &create_snapshots::Deps {
            ports: ports.clone(),
            config: config.clone(),
            runs: create_snapshots::DataRuns::default(),
        },
        &lifeboat::events::BackupRequest {
            resources: vec![table_arn.clone()],
            emergency: false,
            reason: "DR copy test".into(),
            requested_by: None,
            request_id: env.name("backup"),
            requested_at: None,
        },
        "dr-tables-copy-backup",
    )
    .await
    .unwrap();
    assert_eq!(backup.created.len(), 1, "{backup:#?}");
    let track = track_recovery_points::Deps {
        ports: ports.clone(),
        config: config.clone(),
    };
    let now = || chrono::Utc::now().to_rfc3339();
    lifeboat_tests::track_until(env, &track, &now(), &backup.created, Status::Available)
        .await
        .unwrap();
    let copied = copy_snapshots::handle(
        &copy_snapshots::Deps {
            ports: ports.clone(),
            config: config.clone(),
        },
        lifeboat_tests::tick_event(&now(), "dr-tables-copy"),
    )
    .await
    .unwrap();
    assert_eq!(copied.started.len(), 1, "{copied:#?}");
    lifeboat_tests::track_until(env, &track, &now(), &backup.created, Status::Copied)
        .await
        .unwrap();

    let plan = dr
        .put_plan(&format!(
            r#"{{"name": "{{prefix}}-copied", "source_region": "{PRIMARY}", "dr_region": "{}",
                "tables": [{{"arn": "{table_arn}"}}], "rto": "30m", "rpo": "15m", "poll_interval": "1s"}}"#,
            lifeboat_tests::DR
        ))
        .await
        .unwrap()
        .name;
    let name = format!("{}-from-copy", env.prefix);
    let done = dr.run(&name, json!({"plan": plan, "mode": "drill"})).await.unwrap();
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let report = dr.report(&plan, &name).await.unwrap();
    let t = &report["tables"][0];
    assert_eq!(t["target_region"], lifeboat_tests::DR, "{report:#}");
    assert!(
        t["reason"].as_str().unwrap().contains("newest usable copy"),
        "{report:#}"
    );
    assert_eq!(t["content"]["items"], ITEMS, "{report:#}");
    assert!(t["verdict"].as_str().unwrap().starts_with("passed"), "{report:#}");
    let imported = t["target_name"].as_str().unwrap();
    let tables = lifeboat_aws::dr::DynamoDbDrTables::new(env.primary.clone());
    assert!(
        tables.describe_table(&west, imported).await.unwrap().is_none(),
        "{imported} left behind"
    );
    assert!(
        report["compensations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["done"] == true),
        "{report:#}"
    );
}
