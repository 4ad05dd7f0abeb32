//! Data sets a policy names, on the local stack: the schedule's tick starts the run of an
//! S3 data set and of a config bundle for its slot (create-snapshots → backup-objects and
//! backup-config, the Lambda hop taken in process), retention expires the older runs, and
//! expiring them deletes on the emulator's S3 only the copies no kept run references (and
//! the older bundles' envelopes), never a version under legal hold (S3 refuses it; moto
//! enforces Object Lock) until the hold is lifted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use create_snapshots::{DataRuns, RunTargets};
use expire_recovery_points::BackupStore;
use lifeboat_domain::{RecoveryPointId, ResourceKind, Status};
use lifeboat_ports::Catalog;
use lifeboat_ports::objects::{CopyTuning, ObjectStore};
use lifeboat_tests::s3::{
    InProcessRuns, backup_bucket, backup_deps, client, ensure_backup_bucket, put, settings, source_bucket, store,
};
use lifeboat_tests::{DR, PRIMARY, TestEnv};
use serde_json::json;

/// Every key under `prefix` of `bucket` that still has a version (delete markers aside).
async fn versioned_keys(env: &TestEnv, bucket: &str, prefix: &str) -> BTreeSet<String> {
    let out = client(env, DR)
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter_map(|v| v.key().map(str::to_owned))
        .collect()
}

fn tick(at: DateTime<Utc>) -> serde_json::Value {
    json!({"scheduledTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})
}

#[tokio::test]
async fn the_schedule_backs_up_a_data_set_and_retention_expires_what_no_kept_run_needs() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("media"), env.name("vault"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    aws_sdk_ssm::Client::new(&env.primary)
        .put_parameter()
        .name(format!("/{}/app/db-host", env.prefix))
        .value("app.db.local")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let policy = env
        .put_policy(&format!(
            r#"{{"name": "{{prefix}}-media", "every": "1h", "rpo": "2h", "retain": 1,
                "s3": [{{"bucket": "{src}", "prefix": "docs/"}}],
                "config_bundles": [{{"name": "{{prefix}}-app", "parameters": ["/{{prefix}}/app/"]}}]}}"#
        ))
        .await
        .unwrap();
    // Copies locked for a few seconds: long enough to be refused, short enough to lapse.
    let s3 = settings(
        &bak,
        &[("OBJECT_LOCK_MODE", "GOVERNANCE"), ("OBJECT_LOCK_DURATION", "3s")],
    );
    let config = backup_config::Deps {
        confirmations: lifeboat_tests::s3::confirmations(&env),
        catalog: Arc::new(env.catalog()),
        clock: Arc::new(lifeboat_ports::SystemClock),
        config: Arc::new(lifeboat_aws::config_store::AwsConfigStore::new(&env.primary)),
        keys: Arc::new(lifeboat_aws::config_store::KmsDataKeys::new(&env.primary)),
        backup: store(&env, DR, CopyTuning::default()),
        settings: s3.clone(),
        kms_key_id: env.create_kms_key(PRIMARY).await.unwrap(),
    };
    let create = create_snapshots::Deps {
        ports: env.ports(),
        config: env.config(""),
        runs: DataRuns {
            lambdas: Arc::new(InProcessRuns {
                objects: backup_deps(&env, s3),
                config: Some(config),
            }),
            executions: Arc::new(lifeboat_testkit::lambda::RecordingLambdas::default()),
            targets: RunTargets {
                backup_objects_function: Some("backup-objects".into()),
                backup_config_function: Some("backup-config".into()),
                ..RunTargets::default()
            },
        },
    };

    // Three hourly slots: a, b, c at first; b changes before the second, c before the third.
    let hour = Utc::now().duration_trunc(chrono::Duration::hours(1)).unwrap();
    for k in ["a", "b", "c"] {
        put(&env, PRIMARY, &src, &format!("docs/{k}"), format!("{k} v1").as_bytes())
            .await
            .unwrap();
    }
    let mut runs: Vec<RecoveryPointId> = Vec::new();
    let mut bundles: Vec<RecoveryPointId> = Vec::new();
    for (i, change) in [None, Some("b"), Some("c")].into_iter().enumerate() {
        if let Some(k) = change {
            put(&env, PRIMARY, &src, &format!("docs/{k}"), format!("{k} v2").as_bytes())
                .await
                .unwrap();
        }
        let at = hour - chrono::Duration::hours(2 - i64::try_from(i).unwrap()) + chrono::Duration::seconds(2);
        let report = create_snapshots::handle(&create, lifeboat_testkit::event(tick(at)))
            .await
            .unwrap();
        assert_eq!(report.started.len(), 2, "{report:?}");
        assert!(report.created.is_empty() && report.failed.is_empty(), "{report:?}");
        for id in &report.started {
            let rp = env.catalog().get(id).await.unwrap().expect("the run is recorded");
            assert_eq!(rp.status, Status::Available);
            assert_eq!(rp.policy, policy.name);
            assert_eq!(rp.location.as_str(), DR);
            if rp.resource.kind == ResourceKind::ConfigBundle {
                assert!(
                    rp.verified_at.is_some(),
                    "a bundle is opened again before it is recorded"
                );
                bundles.push(id.clone());
            } else {
                runs.push(id.clone());
            }
        }
        // Another tick of the same slot finds the runs recorded: nothing started again.
        let again = create_snapshots::handle(
            &create,
            lifeboat_testkit::event(tick(at + chrono::Duration::minutes(1))),
        )
        .await
        .unwrap();
        assert_eq!((again.started.len(), again.already_recorded), (0, 2), "{again:?}");
    }
    assert_eq!((runs.len(), bundles.len()), (3, 3));
    let run = |i: usize| runs[i].as_str().rsplit('/').next().unwrap().to_owned();
    let copies = versioned_keys(&env, &bak, "lifeboat/").await;
    let data = |i: usize, k: &str| {
        copies
            .iter()
            .find(|c| c.contains(&format!("/data/{}/docs/{k}", run(i))))
            .cloned()
            .unwrap_or_else(|| panic!("no copy of {k} from run {i}"))
    };
    let (a0, b0, c0, b1, c2) = (data(0, "a"), data(0, "b"), data(0, "c"), data(1, "b"), data(2, "c"));

    // A legal hold on the first run's copy of b: S3 refuses to delete it.
    let s3c = client(&env, DR);
    s3c.put_object_legal_hold()
        .bucket(&bak)
        .key(&b0)
        .legal_hold(
            aws_sdk_s3::types::ObjectLockLegalHold::builder()
                .status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // The copies' locks lapse; retention (keep 1) lets the two older runs go.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let expire = expire_recovery_points::Deps {
        ports: env.ports(),
        config: env.config(""),
        backups: Some(BackupStore(store(&env, DR, CopyTuning::default()))),
    };
    let report = expire_recovery_points::handle(&expire, lifeboat_testkit::event(tick(Utc::now())))
        .await
        .unwrap();
    let catalog = env.catalog();
    assert_eq!(
        catalog.get(&runs[1]).await.unwrap().unwrap().status,
        Status::Expired,
        "{report:?}"
    );
    assert_eq!(catalog.get(&runs[0]).await.unwrap().unwrap().status, Status::Expiring);
    assert_eq!(catalog.get(&runs[2]).await.unwrap().unwrap().status, Status::Available);
    let refused = report
        .skipped
        .iter()
        .find(|s| s.id == runs[0].to_string())
        .expect("the held run is reported");
    assert!(refused.reason.contains("legal hold"), "{}", refused.reason);
    let left = versioned_keys(&env, &bak, "lifeboat/").await;
    assert!(left.contains(&b0), "the held copy stays");

    // The hold is lifted: the next run finishes the expiry.
    s3c.put_object_legal_hold()
        .bucket(&bak)
        .key(&b0)
        .legal_hold(
            aws_sdk_s3::types::ObjectLockLegalHold::builder()
                .status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::Off)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let later = expire_recovery_points::handle(&expire, lifeboat_testkit::event(tick(Utc::now())))
        .await
        .unwrap();
    assert!(later.resumed.iter().any(|e| e.id == runs[0]), "{later:?}");
    assert_eq!(catalog.get(&runs[0]).await.unwrap().unwrap().status, Status::Expired);

    // What the kept run references stays (a from the first run, b from the second, c of
    // its own); what only the expired runs referenced is gone, manifests included.
    let left = versioned_keys(&env, &bak, "lifeboat/").await;
    for k in [&a0, &b1, &c2] {
        assert!(left.contains(k), "{k} is kept");
    }
    for k in [&b0, &c0] {
        assert!(!left.contains(k), "{k} is deleted");
    }
    for i in [0, 1] {
        let mref = catalog
            .get(&runs[i])
            .await
            .unwrap()
            .unwrap()
            .manifest()
            .cloned()
            .unwrap();
        assert!(!left.contains(&mref.key), "the manifest of run {i} is deleted");
    }
    // The older bundles expired with their envelopes; the newest is kept.
    for (i, id) in bundles.iter().enumerate() {
        let rp = catalog.get(id).await.unwrap().unwrap();
        let envelope = rp.manifest().cloned().unwrap().key;
        if i < 2 {
            assert_eq!(rp.status, Status::Expired);
            assert!(!left.contains(&envelope), "{envelope} is deleted");
        } else {
            assert_eq!(rp.status, Status::Available);
            assert!(left.contains(&envelope), "{envelope} is kept");
        }
    }
    let kept = catalog
        .get(&runs[2])
        .await
        .unwrap()
        .unwrap()
        .manifest()
        .cloned()
        .unwrap();
    let backup = store(&env, DR, CopyTuning::default());
    let manifest = lifeboat::object_store::runs::load_manifest(backup.as_ref(), &kept)
        .await
        .unwrap();
    for e in manifest.live() {
        let head = backup
            .head(&bak, &e.backup_key, e.backup_version_id.as_deref())
            .await
            .unwrap();
        assert!(head.is_some(), "{} of the kept run is restorable", e.key);
    }
}

/// The deployed path: the real create-snapshots binary, ticked for a policy that names a
/// data set, queues the real backup-objects through the Lambda API (an `Event` invocation,
/// answered at once and run in the background, as Lambda does), which records the run.
#[tokio::test]
async fn the_deployed_tick_queues_the_deployed_backup_run() {
    let env = TestEnv::local_deployment().await.unwrap();
    let src = env.name("queued");
    source_bucket(&env, &src).await.unwrap();
    // The deployed functions' backup bucket (infra/local/functions.env).
    ensure_backup_bucket(&env, "lifeboat-backups").await.unwrap();
    for k in ["a", "b", "c"] {
        put(&env, PRIMARY, &src, &format!("docs/{k}"), k.as_bytes())
            .await
            .unwrap();
    }
    let policy = env
        .put_policy(&format!(
            r#"{{"name": "{{prefix}}-queued", "every": "1h", "rpo": "2h", "retain": 3,
                "s3": [{{"bucket": "{src}", "prefix": "docs/"}}]}}"#
        ))
        .await
        .unwrap();
    let now = Utc::now();
    let tick = json!({"scheduledTime": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                      "policy": policy.name.as_str()});
    let (error, out) = env.invoke("create-snapshots", &tick.to_string()).await.unwrap();
    assert!(error.is_none(), "{out}");
    let started: Vec<RecoveryPointId> = serde_json::from_value(out["started"].clone()).unwrap();
    assert_eq!(started.len(), 1, "{out}");
    let waited = std::time::Instant::now();
    let rp = loop {
        if let Some(rp) = env.catalog().get(&started[0]).await.unwrap() {
            break rp;
        }
        assert!(
            waited.elapsed() < Duration::from_mins(2),
            "the queued run was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(rp.status, Status::Available);
    assert_eq!(rp.manifest().map(|m| (m.objects, m.copied)), Some((3, 3)));
    assert!(rp.holds.locked_until.is_some(), "copies locked as the deployment says");
}
