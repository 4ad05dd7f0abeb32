//! Every sample event under `events/<function>/` invoked on its real function through the
//! local Lambda API (moto's endpoint → the bridge → `cargo lambda watch`), with the outcome
//! its name promises: success, or the function error its name implies. The local deployment
//! (infra/local/functions.env) configures every function, so none fails while starting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeSet;

use base64::Engine as _;
use lifeboat_tests::{DR, PRIMARY, TestEnv};
use serde_json::Value;

/// What invoking a sample must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// No function error.
    Succeeds,
    /// A function error with this `errorType`.
    Fails(&'static str),
    /// An API Gateway / function URL reply with this HTTP status (admin-api).
    Http(u64),
}

use Outcome::{Fails, Http, Succeeds};

/// Every sample and its outcome. A new sample must be added here: the test fails on a file
/// it does not know.
const SAMPLES: &[(&str, Outcome)] = &[
    ("admin-api/function-url-get-recovery-points.json", Http(200)),
    ("admin-api/get-audit-unknown-principal.json", Http(403)),
    ("admin-api/get-resources-viewer.json", Http(200)),
    ("admin-api/post-backups-operator.json", Http(202)),
    ("admin-api/put-policy-admin.json", Http(200)),
    // Name a recovery point of an estate the local deployment does not have (the function's
    // behaviour tests give them one): the point is reported missing, nothing is archived.
    ("archive-bundles/archive-one.json", Fails("NotFound")),
    ("archive-bundles/archive.json", Succeeds),
    ("archive-bundles/malformed.json", Fails("Invalid")),
    ("archive-bundles/poll.json", Succeeds),
    ("archive-bundles/reconcile.json", Succeeds),
    ("archive-bundles/retrieve.json", Fails("NotFound")),
    ("backup-config/backup.json", Succeeds),
    ("backup-config/malformed.json", Fails("Invalid")),
    ("backup-config/restore-dry-run.json", Succeeds),
    // A finish whose shard list leaves a gap is refused.
    ("backup-objects/finish-gap.json", Fails("Invalid")),
    ("backup-objects/from-change-queue.json", Succeeds),
    ("backup-objects/malformed.json", Fails("Invalid")),
    ("backup-objects/plan-shards.json", Succeeds),
    ("backup-objects/scheduled-shard.json", Succeeds),
    ("backup-objects/shard.json", Succeeds),
    ("copy-snapshots/scheduler-tick.json", Succeeds),
    ("copy-snapshots/wrong-type.json", Fails("Invalid")),
    ("create-snapshots/emergency-request.json", Succeeds),
    ("create-snapshots/eventbridge-scheduled-event.json", Succeeds),
    ("create-snapshots/malformed.json", Fails("Invalid")),
    ("create-snapshots/scheduler-tick.json", Succeeds),
    // Dated decades ago: refused before anything is read or written.
    ("create-snapshots/stale-tick.json", Fails("Invalid")),
    ("create-snapshots/unknown-event.json", Fails("Invalid")),
    // Dated years ahead: retention is never judged at a time the event makes up.
    ("expire-recovery-points/future-tick.json", Fails("Invalid")),
    ("expire-recovery-points/malformed.json", Fails("Invalid")),
    ("expire-recovery-points/scheduler-tick.json", Succeeds),
    ("expire-recovery-points/stale-tick.json", Fails("Invalid")),
    ("export-snapshots/bad-mode.json", Fails("Invalid")),
    ("export-snapshots/dry-run.json", Succeeds),
    ("export-snapshots/poll-one-object.json", Succeeds),
    ("export-snapshots/poll.json", Succeeds),
    ("export-snapshots/scheduled.json", Succeeds),
    ("export-snapshots/start.json", Succeeds),
    ("plan-backups/dry-run.json", Succeeds),
    ("plan-backups/emergency-before-migration.json", Succeeds),
    ("plan-backups/malformed.json", Fails("Invalid")),
    // Restores the state of 2026-11-23 18:30, before any backup the local deployment has:
    // there is nothing to restore from.
    ("restore-objects/dry-run.json", Fails("NotFound")),
    ("restore-objects/overwrite-without-flag.json", Fails("Invalid")),
    ("run-dr-step/precheck-unknown-plan.json", Fails("NotFound")),
    // The DR state machine's input (what the weekly schedule starts it with, run by
    // tests/tests/dr.rs), not a step event: run-dr-step refuses it.
    ("run-dr-step/scheduled-drill.json", Fails("Invalid")),
    ("run-dr-step/unknown-action.json", Fails("Invalid")),
    ("send-digest/scheduler-tick.json", Succeeds),
    // The schedule's event: moves the local deployment's tests on, starts those due.
    ("test-restores/scheduled.json", Succeeds),
    ("test-restores/advance.json", Succeeds),
    ("test-restores/bad-point.json", Fails("Invalid")),
    // A recovery point of an estate the local deployment does not have.
    ("test-restores/one-point.json", Fails("NotFound")),
    ("tier-backups/dry-run.json", Succeeds),
    ("tier-backups/scheduled.json", Succeeds),
    ("tier-backups/zero-budget.json", Fails("Invalid")),
    // Name a job and a snapshot the local deployment does not record: nothing changes.
    ("track-recovery-points/backup-job-completed.json", Succeeds),
    ("track-recovery-points/rds-snapshot-created.json", Succeeds),
    ("track-recovery-points/scheduler-tick.json", Succeeds),
    ("track-recovery-points/unknown-policy.json", Fails("Invalid")),
    ("track-recovery-points/unsupported-event.json", Fails("Invalid")),
    ("verify-backups/due.json", Succeeds),
    ("verify-backups/full.json", Succeeds),
    ("verify-backups/malformed.json", Fails("Invalid")),
    ("verify-backups/sampled.json", Succeeds),
];

fn events_dir() -> std::path::PathBuf {
    lifeboat_tests::repo_root().join("events")
}

/// Every `events/<function>/*.json`, as `<function>/<file>`.
fn sample_files() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for function in std::fs::read_dir(events_dir()).unwrap() {
        let function = function.unwrap();
        if !function.file_type().unwrap().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(function.path()).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            if std::path::Path::new(&name).extension().is_some_and(|e| e == "json") {
                found.insert(format!("{}/{name}", function.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// The fixed resources of the local deployment the samples name (what the SAM template
/// and its operator provide on AWS): the admin API's signing key, backup-config's KMS key,
/// the backup and DR report buckets, the archive vault. Idempotent: several tests share them.
async fn local_deployment_resources(env: &TestEnv) {
    let sm = aws_sdk_secretsmanager::Client::new(&env.primary);
    if sm
        .describe_secret()
        .secret_id("lifeboat/confirm-signing-key")
        .send()
        .await
        .is_err()
    {
        let key = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
        let _ = sm
            .create_secret()
            .name("lifeboat/confirm-signing-key")
            .secret_string(key)
            .send()
            .await;
    }
    let kms = aws_sdk_kms::Client::new(&env.primary);
    let aliases = kms.list_aliases().send().await.unwrap();
    if !aliases
        .aliases()
        .iter()
        .any(|a| a.alias_name() == Some("alias/lifeboat-config"))
    {
        let key = kms
            .create_key()
            .description("lifeboat config bundles")
            .send()
            .await
            .unwrap();
        let key_id = key.key_metadata().unwrap().key_id().to_owned();
        let _ = kms
            .create_alias()
            .alias_name("alias/lifeboat-config")
            .target_key_id(key_id)
            .send()
            .await;
    }
    let _ = lifeboat_tests::s3::backup_bucket(env, "lifeboat-backups").await;
    let _ = lifeboat_tests::s3::client(env, PRIMARY)
        .create_bucket()
        .bucket("lifeboat-dr-reports")
        .send()
        .await;
    let glacier = aws_sdk_glacier::Client::new(&env.dr);
    let _ = glacier
        .create_vault()
        .account_id("-")
        .vault_name("lifeboat-archive")
        .send()
        .await;
    // What the samples back up: the "gold" policy, the "orders" database it protects, the
    // parameters under /orders/, the "photos" bucket and its change queue.
    env.put_policy(r#"{"name":"gold","every":"1d","rpo":"2d","retain":7}"#)
        .await
        .unwrap();
    if env.create_instance("orders", "gold").await.is_err() {
        env.wait_instance_available(PRIMARY, "orders").await.unwrap();
    }
    aws_sdk_ssm::Client::new(&env.primary)
        .put_parameter()
        .name("/orders/db-host")
        .value("orders.local")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let _ = lifeboat_tests::s3::source_bucket(env, "photos").await;
    lifeboat_tests::s3::put(env, PRIMARY, "photos", "2026/a/one.jpg", b"one")
        .await
        .unwrap();
    aws_sdk_sqs::Client::new(&env.primary)
        .create_queue()
        .queue_name("lifeboat-changes-photos")
        .send()
        .await
        .unwrap();
    let _ = DR;
}

#[tokio::test]
async fn every_sample_event_has_the_outcome_its_name_promises() {
    let env = TestEnv::local_deployment().await.unwrap();
    local_deployment_resources(&env).await;

    let listed: BTreeSet<String> = SAMPLES.iter().map(|(p, _)| (*p).to_owned()).collect();
    assert_eq!(sample_files(), listed, "every sample is listed here, and only samples");

    let mut wrong = Vec::new();
    for (path, expected) in SAMPLES {
        let function = path.split('/').next().unwrap();
        let payload = std::fs::read_to_string(events_dir().join(path)).unwrap();
        // A sample about the event's time keeps it; every other one arrives now.
        let dated = path.contains("stale-") || path.contains("future-");
        let payload = if dated { payload } else { delivered_now(&payload) };
        let (error, reply) = env.invoke(function, &payload).await.unwrap();
        let got = match (&error, &reply) {
            (Some(_), r) => Fails(leak(r["errorType"].as_str().unwrap_or("?"))),
            (None, r) if r.get("statusCode").is_some() => Http(r["statusCode"].as_u64().unwrap_or(0)),
            (None, _) => Succeeds,
        };
        if got != *expected {
            wrong.push(format!("{path}: expected {expected:?}, got {got:?}: {}", short(&reply)));
        }
    }
    assert!(wrong.is_empty(), "samples with another outcome:\n{}", wrong.join("\n"));
}

/// A sample as its schedule or rule would deliver it now: the functions refuse a tick dated
/// outside MAX_EVENT_SKEW / MAX_EVENT_AGE, and the samples carry a fixed date.
fn delivered_now(payload: &str) -> String {
    let mut event: Value = serde_json::from_str(payload).unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for field in ["scheduledTime", "time"] {
        // Only a well-formed time: a malformed sample stays malformed.
        let well_formed = event
            .get(field)
            .and_then(Value::as_str)
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
        if well_formed {
            event[field] = Value::String(now.clone());
        }
    }
    event.to_string()
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(400).collect()
}
