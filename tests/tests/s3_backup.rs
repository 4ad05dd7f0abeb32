//! S3 data protection on the local stack (moto 5.2.5 S3 with versioning and Object Lock):
//! incremental runs restore exactly the bytes of each run, a byte flipped behind
//! Lifeboat's back is found and alerted every time, an interrupted run resumes with a
//! consistent manifest, multipart copies work, and a locked copy cannot be deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeMap;

use backup_objects::{BackupRequest, RunStatus};
use chrono::{DateTime, Utc};
use lifeboat::object_store::runs::load_manifest;
use lifeboat::verify::Problem;
use lifeboat_domain::manifest::Manifest;
use lifeboat_domain::{AlertKind, RecoveryPointId};
use lifeboat_ports::objects::ObjectStore;
use lifeboat_ports::{Catalog, PortError};
use lifeboat_tests::s3::{backup_bucket, backup_deps, get, put, settings, source_bucket, store, verify_deps};
use lifeboat_tests::{DR, PRIMARY, TestEnv};
use verify_backups::VerifyRequest;

fn at(hour: u32) -> DateTime<Utc> {
    format!("2026-11-23T{hour:02}:00:00Z").parse().unwrap()
}

fn req(bucket: &str, hour: u32, max_pages: Option<u32>) -> BackupRequest {
    BackupRequest {
        bucket: bucket.to_owned(),
        prefix: "docs/".to_owned(),
        policy: "gold".to_owned(),
        scheduled_time: at(hour),
        request_id: None,
        max_pages,
        change_queue: None,
        full_listing: false,
    }
}

async fn manifest(env: &TestEnv, rp: &RecoveryPointId) -> Manifest {
    let point = env.catalog().get(rp).await.unwrap().unwrap();
    let s = store(env, DR, lifeboat_ports::objects::CopyTuning::default());
    load_manifest(s.as_ref(), point.manifest().unwrap()).await.unwrap()
}

/// What restoring a manifest gives: every live key with the bytes of its backup version.
async fn restored(env: &TestEnv, backup: &str, m: &Manifest) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in m.live() {
        let bytes = get(env, DR, backup, &e.backup_key, e.backup_version_id.as_deref())
            .await
            .unwrap();
        out.insert(e.key.clone(), bytes);
    }
    out
}

#[tokio::test]
async fn incremental_runs_restore_exactly_the_bytes_of_each_run() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("src"), env.name("bak"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    let deps = backup_deps(
        &env,
        settings(&bak, &[("OBJECT_LOCK_MODE", "GOVERNANCE"), ("OBJECT_LOCK_DAYS", "1")]),
    );

    let mut expected: Vec<BTreeMap<String, Vec<u8>>> = Vec::new();
    let mut live: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..6 {
        let (k, v) = (format!("docs/{i}.txt"), format!("version 1 of {i}").into_bytes());
        put(&env, PRIMARY, &src, &k, &v).await.unwrap();
        live.insert(k, v);
    }
    put(&env, PRIMARY, &src, "elsewhere/x.txt", b"not in the shard")
        .await
        .unwrap();
    let r1 = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 18, None), "run-1"))
        .await
        .unwrap();
    assert_eq!((r1.status, r1.copied), (RunStatus::Complete, 6));
    expected.push(live.clone());

    // Change one, add one, delete one.
    put(&env, PRIMARY, &src, "docs/1.txt", b"version 2 of 1").await.unwrap();
    live.insert("docs/1.txt".into(), b"version 2 of 1".to_vec());
    put(&env, PRIMARY, &src, "docs/new.txt", b"brand new").await.unwrap();
    live.insert("docs/new.txt".into(), b"brand new".to_vec());
    client_delete(&env, &src, "docs/2.txt").await;
    live.remove("docs/2.txt");
    let r2 = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 19, None), "run-2"))
        .await
        .unwrap();
    assert_eq!((r2.copied, r2.unchanged, r2.deleted), (2, 4, 1));
    expected.push(live.clone());

    // Nothing changes: nothing copied.
    let r3 = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 20, None), "run-3"))
        .await
        .unwrap();
    assert_eq!((r3.copied, r3.unchanged, r3.deleted), (0, 6, 0));
    expected.push(live.clone());

    let restore = lifeboat_tests::s3::restore_deps(&env, settings(&bak, &[]));
    for (report, want) in [&r1, &r2, &r3].into_iter().zip(&expected) {
        let m = manifest(&env, &report.recovery_point).await;
        assert_eq!(&restored(&env, &bak, &m).await, want, "{}", report.run);
        // Point-in-time restore as of the run's completion, to a new prefix.
        let point = env.catalog().get(&report.recovery_point).await.unwrap().unwrap();
        let req = restore_objects::RestoreRequest {
            bucket: src.clone(),
            prefix: "docs/".into(),
            as_of: point.created_at,
            keys: None,
            target: Some(restore_objects::Target {
                bucket: src.clone(),
                prefix: format!("restored/{}/", report.run),
            }),
            overwrite: false,
            dry_run: false,
            tier: None,
            confirmation: None,
            payload: serde_json::Value::Null,
        };
        let out = restore_objects::handle(&restore, lifeboat_tests::request_event(&req, &report.run))
            .await
            .unwrap();
        assert_eq!(out.run, report.run);
        let mut got = BTreeMap::new();
        for item in &out.items {
            got.insert(
                item.key.clone(),
                get(&env, PRIMARY, &src, &item.target_key, None).await.unwrap(),
            );
        }
        assert_eq!(&got, want, "restore as of {}", point.created_at);
    }
    // Over the original keys, as of run 1: refused without the admin API's token for this
    // exact request, nothing written; with it, docs/1.txt is version 1 again (version 2
    // stays in its history), and the act is on the audit trail with who confirmed it.
    let point = env.catalog().get(&r1.recovery_point).await.unwrap().unwrap();
    let over = serde_json::json!({"bucket": src, "prefix": "docs/", "asOf": point.created_at,
        "keys": ["docs/1.txt"], "target": {"bucket": src}, "overwrite": true});
    let refused = restore_objects::handle(&restore, lifeboat_testkit::event(over.clone()))
        .await
        .unwrap_err();
    assert!(refused.message.contains("POST /confirmations"), "{refused}");
    assert_eq!(
        get(&env, PRIMARY, &src, "docs/1.txt", None).await.unwrap(),
        b"version 2 of 1"
    );
    let admin = "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/alice";
    let (status, _, issued) = lifeboat_tests::api::call(
        &env,
        &lifeboat_tests::api::request(
            "POST",
            "/confirmations",
            admin,
            Some(&serde_json::json!({"function": "restore-objects", "request": over})),
            &format!("{}-confirm", env.prefix),
        ),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let confirmed = issued["invoke"].clone();
    restore_objects::handle(&restore, lifeboat_testkit::event(confirmed.clone()))
        .await
        .unwrap();
    assert_eq!(
        get(&env, PRIMARY, &src, "docs/1.txt", None).await.unwrap(),
        b"version 1 of 1"
    );
    let audit = lifeboat_aws::admin::DynamoDbAdminStore::new(aws_sdk_dynamodb::Client::new(&env.primary), &env.table);
    let trail = lifeboat_ports::admin::AuditLog::page(&audit, 10, None).await.unwrap();
    assert!(
        trail
            .records
            .iter()
            .any(|r| r.phase == "confirmed" && r.principal == admin && r.route == "restore-objects"),
        "{trail:?}"
    );
    let again = restore_objects::handle(&restore, lifeboat_testkit::event(confirmed))
        .await
        .unwrap_err();
    assert!(again.message.contains("already used"), "{again}");

    // The catalog knows the runs as recovery points of the prefix.
    let runs = lifeboat::object_store::runs::completed_runs(&env.catalog(), &format!("arn:aws:s3:::{src}/docs/"))
        .await
        .unwrap();
    assert_eq!(runs.len(), 3);
}

async fn client_delete(env: &TestEnv, bucket: &str, key: &str) {
    lifeboat_tests::s3::client(env, PRIMARY)
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_flipped_byte_written_over_any_backup_object_is_detected_as_replaced_and_alerted_in_every_trial() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("src"), env.name("bak"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    for i in 0..8 {
        let body: Vec<u8> = (0..(1000 + i * 333))
            .map(|b| u8::try_from((b * 31 + i) % 256).unwrap())
            .collect();
        put(&env, PRIMARY, &src, &format!("docs/{i}.bin"), &body).await.unwrap();
    }
    let deps = backup_deps(&env, settings(&bak, &[]));
    let report = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 18, None), "run-1"))
        .await
        .unwrap();
    let m = manifest(&env, &report.recovery_point).await;
    let verify = verify_deps(&env);
    let one = |_: &str| VerifyRequest::full(Some(&report.recovery_point));
    let clean = verify_backups::handle(
        &verify,
        lifeboat_tests::request_event(&one(""), &format!("{}-clean", env.prefix)),
    )
    .await
    .unwrap();
    assert_eq!(clean.verified, vec![report.recovery_point.clone()]);

    let trials = 20;
    let mut detected = 0;
    let raw = lifeboat_tests::s3::client(&env, DR);
    for trial in 0..trials {
        let e = &m.entries[(trial * 5) % m.entries.len()];
        let mut bytes = get(&env, DR, &bak, &e.backup_key, None).await.unwrap();
        let pos = (trial * 7919) % bytes.len();
        bytes[pos] ^= 1 << (trial % 8);
        // Written behind Lifeboat's back, straight to the backup bucket.
        let bad = put(&env, DR, &bak, &e.backup_key, &bytes).await.unwrap();
        let out = verify_backups::handle(
            &verify,
            lifeboat_tests::request_event(&one(""), &format!("{}-trial-{trial}", env.prefix)),
        )
        .await
        .unwrap();
        // Read as a restore reads it (the manifest's version, intact), the run stays
        // restorable: the new version over the key is reported as replaced, and alerted.
        if out
            .findings
            .iter()
            .any(|f| f.key == e.key && f.problem == Problem::Replaced)
        {
            detected += 1;
        }
        assert_eq!(out.verified, vec![report.recovery_point.clone()]);
        assert!(out.alerted);
        // Remove the bad version (no lock in this world): the good one is current again.
        raw.delete_object()
            .bucket(&bak)
            .key(&e.backup_key)
            .set_version_id(bad)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(detected, trials, "detected {detected} of {trials}");
    let alerts = env.alerts().await.unwrap();
    let verification: Vec<_> = alerts
        .iter()
        .filter(|a| a.alert.kind == AlertKind::VerificationFailed)
        .collect();
    assert_eq!(verification.len(), trials, "one alert per run");
    // Intact again: verified again.
    let again = verify_backups::handle(
        &verify,
        lifeboat_tests::request_event(&one(""), &format!("{}-after", env.prefix)),
    )
    .await
    .unwrap();
    assert_eq!(again.verified, vec![report.recovery_point.clone()]);
    assert!(
        env.catalog()
            .get(&report.recovery_point)
            .await
            .unwrap()
            .unwrap()
            .verified_at
            .is_some()
    );
}

#[tokio::test]
async fn a_copy_lost_from_the_locked_bucket_is_found_missing_and_healed_by_the_next_run() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("src"), env.name("bak"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    for i in 0..5 {
        put(
            &env,
            PRIMARY,
            &src,
            &format!("docs/{i}.txt"),
            format!("doc {i}\n").repeat(50).as_bytes(),
        )
        .await
        .unwrap();
    }
    let deps = backup_deps(
        &env,
        settings(&bak, &[("OBJECT_LOCK_MODE", "GOVERNANCE"), ("OBJECT_LOCK_DAYS", "1")]),
    );
    let first = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 18, None), "run-1"))
        .await
        .unwrap();
    let m = manifest(&env, &first.recovery_point).await;
    let lost = &m.entries[2];
    // Someone holding the governance bypass deletes the copy's very version.
    lifeboat_tests::s3::client(&env, DR)
        .delete_object()
        .bucket(&bak)
        .key(&lost.backup_key)
        .set_version_id(lost.backup_version_id.clone())
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();
    let verify = verify_deps(&env);
    let of = |rp: &RecoveryPointId| VerifyRequest::full(Some(rp));
    let found = verify_backups::handle(
        &verify,
        lifeboat_tests::request_event(&of(&first.recovery_point), &format!("{}-v1", env.prefix)),
    )
    .await
    .unwrap();
    assert!(
        found
            .findings
            .iter()
            .any(|f| f.key == lost.key && f.problem == Problem::Missing),
        "{found:?}"
    );
    assert_eq!(found.unverified, vec![first.recovery_point.clone()]);

    // The next run copies it again from the source (same content) and verifies again.
    let next = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 19, None), "run-2"))
        .await
        .unwrap();
    assert_eq!(next.healed, vec![lost.key.clone()], "{next:?}");
    assert!(next.unrecoverable.is_empty());
    assert_eq!(next.copied, 1, "only the lost copy is copied again: {next:?}");
    let again = verify_backups::handle(
        &verify,
        lifeboat_tests::request_event(&of(&next.recovery_point), &format!("{}-v2", env.prefix)),
    )
    .await
    .unwrap();
    assert_eq!(again.verified, vec![next.recovery_point.clone()], "{again:?}");
    let m2 = manifest(&env, &next.recovery_point).await;
    let healed = m2.entries.iter().find(|e| e.key == lost.key).unwrap();
    assert_eq!(healed.sha256, lost.sha256);
    assert_ne!(healed.copied_in, lost.copied_in);
}

#[tokio::test]
async fn an_interrupted_run_resumes_with_a_consistent_manifest() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("src"), env.name("bak"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    for i in 0..25 {
        put(
            &env,
            PRIMARY,
            &src,
            &format!("docs/{i:02}"),
            format!("body {i}").as_bytes(),
        )
        .await
        .unwrap();
    }
    let deps = backup_deps(&env, settings(&bak, &[("LIST_PAGE_SIZE", "10")]));
    let first = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 18, Some(1)), "a"))
        .await
        .unwrap();
    assert_eq!((first.status, first.copied), (RunStatus::InProgress, 10));
    assert!(env.catalog().get(&first.recovery_point).await.unwrap().is_none());
    let second = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 18, Some(1)), "b"))
        .await
        .unwrap();
    assert_eq!((second.status, second.copied), (RunStatus::InProgress, 10));
    let last = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 18, None), "c"))
        .await
        .unwrap();
    assert_eq!((last.status, last.copied), (RunStatus::Complete, 5));
    let m = manifest(&env, &last.recovery_point).await;
    assert_eq!(m.header.objects, 25);
    let got = restored(&env, &bak, &m).await;
    for i in 0..25 {
        assert_eq!(got[&format!("docs/{i:02}")], format!("body {i}").into_bytes());
    }
    // Each object was written once.
    let versions = lifeboat_tests::s3::client(&env, DR)
        .list_object_versions()
        .bucket(&bak)
        .prefix(format!("lifeboat/{src}/"))
        .send()
        .await
        .unwrap();
    let data: Vec<_> = versions
        .versions()
        .iter()
        .filter(|v| v.key().is_some_and(|k| k.contains("/data/")))
        .collect();
    assert_eq!(data.len(), 25);
}

#[tokio::test]
async fn large_objects_are_copied_with_upload_part_copy() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("src"), env.name("bak"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    let big: Vec<u8> = (0..(11 * 1024 * 1024)).map(|i: u32| (i % 253) as u8).collect();
    put(&env, PRIMARY, &src, "docs/big.bin", &big).await.unwrap();
    let five_mib = (5 * 1024 * 1024).to_string();
    let deps = backup_deps(
        &env,
        settings(
            &bak,
            &[("MULTIPART_THRESHOLD_BYTES", &five_mib), ("PART_SIZE_BYTES", &five_mib)],
        ),
    );
    let r = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 18, None), "a"))
        .await
        .unwrap();
    assert_eq!(r.copied, 1);
    let m = manifest(&env, &r.recovery_point).await;
    let e = &m.entries[0];
    assert_eq!(
        get(&env, DR, &bak, &e.backup_key, e.backup_version_id.as_deref())
            .await
            .unwrap(),
        big
    );
    let parts = lifeboat_tests::s3::client(&env, DR)
        .head_object()
        .bucket(&bak)
        .key(&e.backup_key)
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(parts.parts_count(), Some(3), "three parts of at most 5 MiB");
    let verify = verify_backups::handle(
        &verify_deps(&env),
        lifeboat_tests::request_event(
            &VerifyRequest::full(Some(&r.recovery_point)),
            &format!("{}-v", env.prefix),
        ),
    )
    .await
    .unwrap();
    assert_eq!(verify.verified.len(), 1);
}

#[tokio::test]
async fn a_locked_backup_copy_cannot_be_deleted_before_its_retention() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("src"), env.name("bak"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    put(&env, PRIMARY, &src, "docs/contract.pdf", b"signed").await.unwrap();
    let deps = backup_deps(
        &env,
        settings(&bak, &[("OBJECT_LOCK_MODE", "COMPLIANCE"), ("OBJECT_LOCK_DAYS", "30")]),
    );
    let r = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, 18, None), "a"))
        .await
        .unwrap();
    let m = manifest(&env, &r.recovery_point).await;
    let e = &m.entries[0];
    let s = store(&env, DR, lifeboat_ports::objects::CopyTuning::default());
    let head = s
        .head(&bak, &e.backup_key, e.backup_version_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    let lock = head.lock.expect("the copy is locked");
    assert_eq!(lock.mode, lifeboat_ports::objects::LockMode::Compliance);
    assert!(lock.retain_until > Utc::now() + chrono::Duration::days(29));
    let refused = s.delete(&bak, &e.backup_key, e.backup_version_id.as_deref()).await;
    assert!(matches!(refused, Err(PortError::InvalidState(_))), "{refused:?}");
    assert_eq!(
        get(&env, DR, &bak, &e.backup_key, e.backup_version_id.as_deref())
            .await
            .unwrap(),
        b"signed"
    );
    let rp = env.catalog().get(&r.recovery_point).await.unwrap().unwrap();
    assert!(rp.holds.locked_until.is_some());
    // The manifest is locked too.
    let mref = rp.manifest().cloned().unwrap();
    let mhead = s.head(&bak, &mref.key, None).await.unwrap().unwrap();
    assert!(mhead.lock.is_some());
}

/// Copies written straight into GLACIER are checked by metadata, and one of them per run
/// is proved by a sample restore: the first verification starts it (moto restores at
/// once; S3 takes hours, Bulk up to 12 for GLACIER), the next reads the restored bytes
/// back against the manifest and records `restore_checked_at`; a third in the same
/// period starts nothing.
#[tokio::test]
async fn archived_copies_are_proved_by_a_sample_restore() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("src"), env.name("bak"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    for i in 0..4 {
        put(
            &env,
            PRIMARY,
            &src,
            &format!("docs/{i}.txt"),
            format!("archived {i}").as_bytes(),
        )
        .await
        .unwrap();
    }
    let deps = backup_deps(&env, settings(&bak, &[("BACKUP_STORAGE_CLASS", "GLACIER")]));
    let r = backup_objects::handle(
        &deps,
        lifeboat_tests::request_event(&req(&src, 18, None), "glacier-run"),
    )
    .await
    .unwrap();
    let verify = verify_deps(&env);
    let one = VerifyRequest::full(Some(&r.recovery_point));
    let first = verify_backups::handle(
        &verify,
        lifeboat_tests::request_event(&one, &format!("{}-a1", env.prefix)),
    )
    .await
    .unwrap();
    assert_eq!((first.metadata_only, first.restores_started), (4, 1), "{first:?}");
    assert_eq!(first.verified, vec![r.recovery_point.clone()]);
    let second = verify_backups::handle(
        &verify,
        lifeboat_tests::request_event(&one, &format!("{}-a2", env.prefix)),
    )
    .await
    .unwrap();
    assert_eq!(second.restores_verified, 1, "{second:?}");
    assert!(second.findings.is_empty(), "{:?}", second.findings);
    let point = env.catalog().get(&r.recovery_point).await.unwrap().unwrap();
    assert!(point.restore_checked_at().is_some());
    let third = verify_backups::handle(
        &verify,
        lifeboat_tests::request_event(&one, &format!("{}-a3", env.prefix)),
    )
    .await
    .unwrap();
    assert_eq!(
        (third.restores_started, third.restores_pending, third.restores_verified),
        (0, 0, 0)
    );
}
