//! A sharded S3 backup run on the local stack: the real state machine
//! (`infra/state-machines/backup-objects.asl.json`, with the template's substitutions)
//! executed by moto's Step Functions, each Lambda task reaching the real backup-objects
//! binary through the bridge (moto → cargo-lambda). The run splits a prefix whose objects
//! are spread over several sub-prefixes, backs the shards up in an inline Map, and
//! finishes with one manifest listing every object, copies in the backup bucket and a
//! recovery point in the catalog. A run that cannot start is caught and alerted through
//! SNS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use lifeboat::object_store::runs::load_manifest;
use lifeboat_domain::manifest::sha256_hex;
use lifeboat_domain::{AlertKind, RecoveryPointId, Status};
use lifeboat_ports::Catalog;
use lifeboat_tests::s3::{client, get, put, source_bucket, store};
use lifeboat_tests::{DR, PRIMARY, TestEnv};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
/// The local deployment's backup bucket (infra/local/functions.env).
const BACKUP_BUCKET: &str = "lifeboat-backups";

/// The backup bucket of the local deployment: in the DR region, Object Lock enabled.
/// Shared by every test that runs the real binary; created once.
async fn ensure_backup_bucket(env: &TestEnv) {
    lifeboat_tests::s3::ensure_backup_bucket(env, BACKUP_BUCKET)
        .await
        .unwrap();
}

/// A state machine of this test (unique name) from the real ASL.
async fn state_machine(env: &TestEnv) -> (aws_sdk_sfn::Client, String) {
    let raw = std::fs::read_to_string(lifeboat_tests::repo_root().join("infra/state-machines/backup-objects.asl.json"))
        .unwrap();
    let definition = raw
        .replace(
            "${BackupObjectsFunctionArn}",
            &format!("arn:aws:lambda:{PRIMARY}:{ACCOUNT}:function:backup-objects"),
        )
        .replace("${AlertsTopicArn}", &env.topic_arn);
    let sfn = aws_sdk_sfn::Client::new(&env.primary);
    let arn = sfn
        .create_state_machine()
        .name(env.name("backup-objects"))
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/lifeboat-backup-objects"))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned();
    (sfn, arn)
}

struct Finished {
    status: String,
    output: Value,
    error: Option<String>,
    cause: Option<String>,
    wall: Duration,
}

async fn execute(sfn: &aws_sdk_sfn::Client, machine: &str, name: &str, input: &Value) -> Finished {
    let started = Instant::now();
    let arn = sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_owned();
    loop {
        let d = sfn.describe_execution().execution_arn(&arn).send().await.unwrap();
        if *d.status() != ExecutionStatus::Running {
            return Finished {
                status: d.status().as_str().to_owned(),
                output: d
                    .output()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null),
                error: d.error().map(str::to_owned),
                cause: d.cause().map(str::to_owned),
                wall: started.elapsed(),
            };
        }
        if started.elapsed() > Duration::from_mins(3) {
            // Not left looping in the emulator.
            let _ = sfn.stop_execution().execution_arn(&arn).send().await;
            panic!("execution {name} still running after 3 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_state_machine_backs_up_every_shard_of_a_prefix_with_the_real_function() {
    let env = TestEnv::local_deployment().await.unwrap();
    ensure_backup_bucket(&env).await;
    let src = env.name("media");
    source_bucket(&env, &src).await.unwrap();
    // Objects over six sub-prefixes (one nested deeper), loose ones between them, and
    // one outside the protected prefix.
    let mut objects: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for sub in ["audio", "docs", "images", "logs", "raw", "video"] {
        for i in 0..4 {
            objects.insert(
                format!("media/{sub}/{i:02}.bin"),
                format!("{sub} object {i}").into_bytes(),
            );
        }
    }
    objects.insert("media/images/2026/11/deep.jpg".into(), b"nested".to_vec());
    objects.insert("media/index.html".into(), b"loose".to_vec());
    objects.insert("media/zz-notes.txt".into(), b"loose at the end".to_vec());
    for (k, v) in &objects {
        put(&env, PRIMARY, &src, k, v).await.unwrap();
    }
    put(&env, PRIMARY, &src, "other/outside.txt", b"not protected")
        .await
        .unwrap();

    let (sfn, machine) = state_machine(&env).await;
    // The schedule's tick, as it arrives: backup-objects refuses times far from its clock.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let input = json!({"bucket": src, "prefix": "media/", "policy": "gold", "scheduledTime": now});
    let done = execute(&sfn, &machine, &env.name("run-1"), &input).await;
    assert_eq!(done.status, "SUCCEEDED", "{:?} {:?}", done.error, done.cause);
    eprintln!(
        "sharded run of {} objects on the local stack: {:?}",
        objects.len(),
        done.wall
    );
    let shards = done.output["plan"]["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 6, "{}", done.output);

    // The catalog's recovery point and its manifest: every object, once, in key order.
    let rp = RecoveryPointId::parse(done.output["result"]["recovery_point"].as_str().unwrap()).unwrap();
    let point = env.catalog().get(&rp).await.unwrap().unwrap();
    assert_eq!(point.status, Status::Available);
    assert_eq!(point.location.as_str(), DR);
    let mref = point.manifest().cloned().unwrap();
    assert_eq!(
        (mref.objects, mref.copied, mref.deleted),
        (objects.len() as u64, objects.len() as u64, 0)
    );
    let backup = store(&env, DR, lifeboat_ports::objects::CopyTuning::default());
    let manifest = load_manifest(backup.as_ref(), &mref).await.unwrap();
    let keys: Vec<&str> = manifest.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, objects.keys().map(String::as_str).collect::<Vec<_>>());
    // The copies hold the source bytes, as their SHA-256 says.
    for e in &manifest.entries {
        let bytes = get(&env, DR, BACKUP_BUCKET, &e.backup_key, e.backup_version_id.as_deref())
            .await
            .unwrap();
        assert_eq!(&bytes, &objects[&e.key], "{}", e.key);
        assert_eq!(e.sha256, sha256_hex(&bytes));
    }
    // No shard part, checkpoint or split is left behind.
    let area = mref.key.split("/manifests/").next().unwrap().to_owned();
    let left = client(&env, DR)
        .list_objects_v2()
        .bucket(BACKUP_BUCKET)
        .prefix(format!("{area}/"))
        .send()
        .await
        .unwrap();
    let scratch: Vec<_> = left
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| k.contains("/parts/") || k.contains("/checkpoints/"))
        .collect();
    assert!(scratch.is_empty(), "{scratch:?}");

    // The same run started again does nothing: the split is empty, finish a replay.
    let again = execute(&sfn, &machine, &env.name("run-1-again"), &input).await;
    assert_eq!(again.status, "SUCCEEDED", "{:?} {:?}", again.error, again.cause);
    assert_eq!(again.output["plan"]["shards"], json!([]));
    assert_eq!(again.output["result"]["replay"], true);
}

#[tokio::test]
async fn a_run_that_fails_is_alerted_through_sns() {
    let env = TestEnv::local_deployment().await.unwrap();
    let (sfn, machine) = state_machine(&env).await;
    let missing = env.name("no-such-bucket");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let input = json!({"bucket": missing, "prefix": "", "policy": "gold", "scheduledTime": now});
    let done = execute(&sfn, &machine, &env.name("run-missing"), &input).await;
    assert_eq!(done.status, "FAILED");
    assert_eq!(done.error.as_deref(), Some("BackupFailed"));
    let alerts = env.alerts().await.unwrap();
    let ours: Vec<_> = alerts
        .iter()
        .filter(|a| a.alert.resource.as_deref() == Some(&format!("arn:aws:s3:::{missing}/")))
        .collect();
    assert_eq!(ours.len(), 1, "{alerts:?}");
    let a = &ours[0];
    assert_eq!(a.alert.kind, AlertKind::BackupFailed);
    assert_eq!(a.event_type.as_deref(), Some("backup-failed"));
    assert_eq!(a.severity.as_deref(), Some("high"));
    assert!(a.alert.summary.contains(&missing), "{}", a.alert.summary);
    assert_eq!(
        a.alert.details.get("error").map(String::as_str),
        Some("NotFound"),
        "{:?}",
        a.alert.details
    );
}
