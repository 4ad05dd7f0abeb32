//! The database long-term tier on the local stack (moto 5.2.5): a snapshot's DR copy
//! exported to the backup bucket with StartExportTask, the export's objects moved to
//! DEEP_ARCHIVE by CopyObject (one of them large enough for a multipart UploadPartCopy),
//! a manifest written beside them, the backup bucket's lifecycle rule for the exports
//! written beside the others, and the catalog item linking snapshot and export.
//!
//! What moto does, checked here: `start_export_task` records the task and answers with
//! status `complete` at once (lower case; AWS says `COMPLETE` after STARTING and
//! IN_PROGRESS), `describe_export_tasks` returns it, a second start with the same
//! identifier is refused with `ExportTaskAlreadyExists`, an unknown identifier is
//! `ExportTaskNotFound`. moto writes no files into the bucket: this test writes
//! Parquet-like files under the export's prefix itself, where RDS would, before the poll.
//! A FAILED status with its FailureCause cannot be produced on moto; that path is tested
//! in `shared/aws/tests/rds_export.rs` (aws-smithy-mocks) and over the fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use chrono::{DateTime, Utc};
use export_snapshots::{Mode, Request};
use lifeboat::object_store::read_all;
use lifeboat_aws::RdsSnapshotExporter;
use lifeboat_domain::export::{ExportManifest, ExportStatus, RULE_ID_PREFIX};
use lifeboat_domain::tiering::S3Class;
use lifeboat_domain::{RecoveryPoint, Region, ResourceKind, ResourceRef, Slot, Status};
use lifeboat_ports::objects::CopyTuning;
use lifeboat_ports::{Catalog, ExportRequest, ExportTaskState, PortError};
use lifeboat_testkit::ManualClock;
use lifeboat_tests::s3::{backup_bucket, client, put, settings, store};
use lifeboat_tests::{DR, PRIMARY, TestEnv};

const MIB: usize = 1024 * 1024;

fn t0() -> DateTime<Utc> {
    "2026-06-01T05:00:00Z".parse().unwrap()
}

fn request(mode: Mode) -> Request {
    Request {
        mode,
        dry_run: false,
        max_objects: None,
    }
}

#[tokio::test]
async fn a_snapshot_copy_is_exported_moved_to_deep_archive_and_linked_in_the_catalog() {
    let env = TestEnv::start().await.unwrap();
    let bak = env.name("xbak");
    backup_bucket(&env, &bak).await.unwrap();
    let key = env.create_kms_key(DR).await.unwrap();
    let policy = env
        .put_policy(&format!(
            r#"{{"name": "{{prefix}}-exp", "every": "1d", "rpo": "2d", "retain": 7,
                "copies": [{{"region": "{DR}", "kms_key_id": "{key}"}}],
                "export": {{"every": "30d", "kms_key_id": "{key}",
                           "role_arn": "arn:aws:iam::123456789012:role/rds-export", "class": "DEEP_ARCHIVE", "keep": "7y"}}}}"#
        ))
        .await
        .unwrap();

    // A snapshot in the primary region and its encrypted copy in the DR region.
    let db = env.name("orders");
    let db_arn = env.create_instance(&db, policy.name.as_str()).await.unwrap();
    let snap = format!("lb-{db}-20260601-0400");
    let source_arn = env
        .rds(PRIMARY)
        .create_db_snapshot()
        .db_instance_identifier(&db)
        .db_snapshot_identifier(&snap)
        .send()
        .await
        .unwrap()
        .db_snapshot()
        .and_then(|s| s.db_snapshot_arn())
        .unwrap()
        .to_owned();
    env.wait_snapshot_available(PRIMARY, &snap).await.unwrap();
    let copy_arn = env
        .rds(DR)
        .copy_db_snapshot()
        .source_db_snapshot_identifier(&source_arn)
        .target_db_snapshot_identifier(&snap)
        .kms_key_id(&key)
        .send()
        .await
        .unwrap()
        .db_snapshot()
        .and_then(|s| s.db_snapshot_arn())
        .unwrap()
        .to_owned();
    env.wait_snapshot_available(DR, &snap).await.unwrap();
    let catalog = env.catalog();
    let resource = ResourceRef {
        kind: ResourceKind::RdsInstance,
        id: db.clone(),
        arn: db_arn,
        region: Region::parse(PRIMARY).unwrap(),
    };
    let at: DateTime<Utc> = "2026-06-01T04:00:00Z".parse().unwrap();
    let slot = Slot::containing(at, std::time::Duration::from_hours(24));
    let mut source = RecoveryPoint::new(
        &resource,
        &policy.name,
        slot,
        &resource.region,
        &snap,
        Status::Copied,
        at,
    );
    source.snapshot_arn = Some(source_arn);
    catalog.insert(&source).await.unwrap();
    let dr = Region::parse(DR).unwrap();
    let mut copy = RecoveryPoint::new(&resource, &policy.name, slot, &dr, &snap, Status::Available, at);
    copy.source = Some(source.id.clone());
    copy.snapshot_arn = Some(copy_arn.clone());
    copy.kms_key_id = Some(key.clone());
    catalog.insert(&copy).await.unwrap();

    // 5 MiB parts above 5 MiB: the 6 MiB file moves with UploadPartCopy.
    let tuning = CopyTuning {
        multipart_threshold: 5 * MIB as u64,
        part_size: 5 * MIB as u64,
    };
    // Exports are locked like the backup copies.
    let s = settings(&bak, &[("OBJECT_LOCK_MODE", "GOVERNANCE"), ("OBJECT_LOCK_DAYS", "1")]);
    let ports = env.ports();
    let deps = export_snapshots::Deps {
        catalog: Arc::new(env.catalog()),
        notifier: ports.notifier,
        clock: Arc::new(ManualClock::new(t0())),
        backup: store(&env, DR, tuning),
        exporter: Arc::new(RdsSnapshotExporter::from_sdk(&env.primary, &dr)),
        settings: s,
    };

    let started = export_snapshots::handle(&deps, lifeboat_tests::request_event(&request(Mode::Start), "x-start"))
        .await
        .unwrap();
    let ours: Vec<_> = started.started.iter().filter(|s| s.recovery_point == copy.id).collect();
    assert_eq!(ours.len(), 1, "{started:?}");
    let task_id = ours[0].task_id.clone();
    let prefix = ours[0].prefix.clone();

    // What moto made of it.
    let tasks = env
        .rds(DR)
        .describe_export_tasks()
        .export_task_identifier(&task_id)
        .send()
        .await
        .unwrap();
    let task = &tasks.export_tasks()[0];
    assert_eq!(task.source_arn(), Some(copy_arn.as_str()));
    assert_eq!(task.s3_bucket(), Some(bak.as_str()));
    assert_eq!(task.s3_prefix(), Some(prefix.as_str()));
    assert_eq!(task.status().map(str::to_ascii_uppercase).as_deref(), Some("COMPLETE"));
    let described = deps.exporter.describe_export(&task_id).await.unwrap().unwrap();
    assert_eq!(described.state, ExportTaskState::Complete);
    assert_eq!(
        deps.exporter.describe_export("lbx-never-started-1").await.unwrap(),
        None
    );
    let again = deps
        .exporter
        .start_export(&ExportRequest {
            task_id: task_id.clone(),
            source_arn: copy_arn.clone(),
            bucket: bak.clone(),
            prefix: prefix.clone(),
            role_arn: "arn:aws:iam::123456789012:role/rds-export".into(),
            kms_key_id: key.clone(),
        })
        .await
        .unwrap_err();
    assert!(matches!(again, PortError::AlreadyExists(_)), "{again:?}");
    let e = catalog.get(&copy.id).await.unwrap().unwrap().export().cloned().unwrap();
    assert_eq!(e.status, ExportStatus::Started);

    // moto writes no export files: put what RDS would write under <prefix>/<task id>/.
    let data = e.data_prefix();
    let big: Vec<u8> = (0..6 * MIB).map(|i| u8::try_from(i % 251).unwrap()).collect();
    let small = b"PAR1 not really parquet, but bytes to keep PAR1".to_vec();
    let big_key = format!("{data}{db}/public.orders/1/part-00000-big.gz.parquet");
    let small_key = format!("{data}{db}/public.customers/1/part-00000-small.gz.parquet");
    let info_key = format!("{data}export_info_{task_id}.json");
    put(&env, DR, &bak, &big_key, &big).await.unwrap();
    put(&env, DR, &bak, &small_key, &small).await.unwrap();
    put(
        &env,
        DR,
        &bak,
        &info_key,
        br#"{"exportTaskIdentifier":"x","status":"COMPLETE"}"#,
    )
    .await
    .unwrap();

    let polled = export_snapshots::handle(&deps, lifeboat_tests::request_event(&request(Mode::Poll), "x-poll"))
        .await
        .unwrap();
    let archived: Vec<_> = polled.archived.iter().filter(|a| a.recovery_point == copy.id).collect();
    assert_eq!(archived.len(), 1, "{polled:?}");
    assert_eq!((archived[0].objects, archived[0].copied), (2, 2));
    assert_eq!(archived[0].bytes, (big.len() + small.len()) as u64);

    // In moto, the data objects are in DEEP_ARCHIVE; the export's description stays readable.
    let s3 = client(&env, DR);
    for k in [&big_key, &small_key] {
        let head = s3.head_object().bucket(&bak).key(k).send().await.unwrap();
        assert_eq!(
            head.storage_class().map(aws_sdk_s3::types::StorageClass::as_str),
            Some("DEEP_ARCHIVE"),
            "{k}"
        );
        // Locked like the backup copies. The big one went through a multipart copy, whose
        // lock moto 5.2.5 drops on completion (the adapter sends it with
        // CreateMultipartUpload, as AWS takes it): only the single CopyObject is checked here.
        if k == &small_key {
            assert_eq!(
                head.object_lock_mode().map(aws_sdk_s3::types::ObjectLockMode::as_str),
                Some("GOVERNANCE"),
                "{k}: locked like the backup copies"
            );
            assert!(head.object_lock_retain_until_date().is_some(), "{k}");
        }
    }
    let info = s3.head_object().bucket(&bak).key(&info_key).send().await.unwrap();
    assert_ne!(
        info.storage_class().map(aws_sdk_s3::types::StorageClass::as_str),
        Some("DEEP_ARCHIVE")
    );

    // The catalog item links the snapshot with its export; the manifest proves the bytes.
    let linked = catalog.get(&copy.id).await.unwrap().unwrap();
    assert_eq!(linked.snapshot_arn.as_deref(), Some(copy_arn.as_str()));
    let e = linked.export().cloned().unwrap();
    assert_eq!(
        (e.status, e.class, e.objects),
        (ExportStatus::Archived, S3Class::DeepArchive, 2)
    );
    assert_eq!(e.task_id, task_id);
    let backup = store(&env, DR, CopyTuning::default());
    let bytes = read_all(backup.as_ref(), &bak, e.manifest_key.as_deref().unwrap(), 1 << 20)
        .await
        .unwrap();
    let manifest = ExportManifest::decode(&bytes, e.manifest_sha256.as_deref().unwrap()).unwrap();
    assert_eq!(manifest.snapshot_arn, copy_arn);
    assert_eq!(manifest.recovery_point, copy.id);
    let big_entry = manifest.entries.iter().find(|m| m.key == big_key).unwrap();
    assert_eq!(
        big_entry.sha256.as_deref(),
        Some(lifeboat_domain::manifest::sha256_hex(&big).as_str())
    );

    // The lifecycle rule for the exports, in moto's stored configuration.
    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bak)
        .send()
        .await
        .unwrap();
    let rule = rules
        .rules()
        .iter()
        .find(|r| r.id().is_some_and(|id| id.starts_with(RULE_ID_PREFIX)))
        .unwrap();
    assert_eq!(rule.transitions()[0].days(), Some(0));
    assert_eq!(
        rule.transitions()[0]
            .storage_class()
            .map(aws_sdk_s3::types::TransitionStorageClass::as_str),
        Some("DEEP_ARCHIVE")
    );

    // A replay of the daily run does nothing twice.
    let replay = export_snapshots::handle(&deps, lifeboat_tests::request_event(&request(Mode::Run), "x-replay"))
        .await
        .unwrap();
    assert!(replay.started.is_empty() && replay.archived.is_empty(), "{replay:?}");
    assert_eq!(catalog.get(&copy.id).await.unwrap().unwrap(), linked);
    let all = env.rds(DR).describe_export_tasks().send().await.unwrap();
    assert_eq!(
        all.export_tasks()
            .iter()
            .filter(|t| t.source_arn() == Some(copy_arn.as_str()))
            .count(),
        1
    );
}
