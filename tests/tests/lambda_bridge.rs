//! The real function binaries, invoked through the Lambda Invoke API of the local stack
//! (moto's endpoint → the bridge → `cargo lambda watch`), exactly as Step Functions and
//! the schedules call them. Uses the local deployment (infra/local/functions.env) and the
//! sample events under events/.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use lifeboat_domain::{RecoveryPointId, Region, Status};
use lifeboat_ports::Catalog;
use lifeboat_tests::{DR, TestEnv};
use serde_json::Value;

fn sample(path: &str) -> String {
    std::fs::read_to_string(lifeboat_tests::repo_root().join("events").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A sample schedule tick as the schedule would deliver it now: its `scheduledTime` set to
/// `at` (the functions refuse ticks dated outside MAX_EVENT_SKEW / MAX_EVENT_AGE).
fn tick_sample(path: &str, at: &str) -> String {
    let mut event: Value = serde_json::from_str(&sample(path)).unwrap();
    event["scheduledTime"] = Value::String(at.to_owned());
    event.to_string()
}

#[tokio::test]
async fn bad_events_come_back_as_invalid_function_errors_that_step_functions_can_catch() {
    let env = TestEnv::local_deployment().await.unwrap();
    for (function, file, needle) in [
        ("create-snapshots", "create-snapshots/malformed.json", "RFC 3339"),
        (
            "create-snapshots",
            "create-snapshots/unknown-event.json",
            "unknown event",
        ),
        ("copy-snapshots", "copy-snapshots/wrong-type.json", "a string"),
        (
            "track-recovery-points",
            "track-recovery-points/unknown-policy.json",
            "policy name",
        ),
    ] {
        let (error, payload) = env.invoke(function, &sample(file)).await.unwrap();
        assert_eq!(error.as_deref(), Some("Unhandled"), "{function} {file}: {payload}");
        assert_eq!(payload["errorType"], "Invalid", "{function} {file}: {payload}");
        assert!(
            payload["errorMessage"].as_str().unwrap_or_default().contains(needle),
            "{payload}"
        );
    }
}

#[tokio::test]
async fn the_real_binaries_run_the_schedule_path_on_the_sample_events() {
    let env = TestEnv::local_deployment().await.unwrap();
    let key = env.create_kms_key(DR).await.unwrap();
    let policy = env
        .put_policy(&format!(r#"{{"name":"{{prefix}}-gold","every":"1h","rpo":"2h","retain":24,"copies":[{{"region":"{DR}","kms_key_id":"{key}"}}]}}"#))
        .await
        .unwrap();
    let db = env.name("orders");
    env.create_instance(&db, policy.name.as_str()).await.unwrap();

    let now = chrono::Utc::now();
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let slot = now.format("%Y%m%d-%H00");
    let (error, created) = env
        .invoke(
            "create-snapshots",
            &tick_sample("create-snapshots/scheduler-tick.json", &at),
        )
        .await
        .unwrap();
    assert_eq!(error, None, "{created}");
    let id = format!("us-east-1/db/lb-{}-{db}-{slot}", policy.name);
    assert!(
        created["created"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == &Value::String(id.clone())),
        "{created}"
    );

    // Snapshots take time, as on AWS: the tracker marks the point available once RDS says
    // so, and only available points are copied.
    let catalog = env.catalog();
    track_until(&env, &id, Status::Available).await;
    let (error, copied) = env
        .invoke(
            "copy-snapshots",
            &tick_sample("copy-snapshots/scheduler-tick.json", &at),
        )
        .await
        .unwrap();
    assert_eq!(error, None, "{copied}");
    let copy_id = format!("{DR}/db/lb-{}-{db}-{slot}", policy.name);
    let started: Vec<_> = copied["started"]
        .as_array()
        .unwrap()
        .iter()
        .chain(copied["adopted"].as_array().unwrap())
        .cloned()
        .collect();
    assert!(started.contains(&Value::String(copy_id.clone())), "{copied}");

    // The copy takes time too: the tracker sees it through.
    track_until(&env, &id, Status::Copied).await;

    let source = catalog
        .get(&RecoveryPointId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(source.status, Status::Copied);
    let copy = catalog
        .get(&RecoveryPointId::parse(&copy_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (copy.status, copy.location.clone(), copy.kms_key_id.as_deref()),
        (Status::Available, Region::parse(DR).unwrap(), Some(key.as_str()))
    );

    // Every log line of the functions is JSON and carries the invocation's request id.
    let log =
        std::fs::read_to_string(lifeboat_tests::repo_root().join(".local/stack/cargo-lambda.log")).unwrap_or_default();
    let ours: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["span"]["requestId"].is_string())
        .collect();
    assert!(
        !ours.is_empty(),
        "no JSON log line with a request id in cargo-lambda.log"
    );
    assert!(
        ours.iter().any(|v| v["message"] == "run finished"),
        "the run summary is logged"
    );
}

/// Invokes the real track-recovery-points on its sample tick until the recovery point `id`
/// has `status` (the local stack, like AWS, takes a few seconds per snapshot or copy).
async fn track_until(env: &TestEnv, id: &str, status: Status) {
    let point = RecoveryPointId::parse(id).unwrap();
    let started = std::time::Instant::now();
    loop {
        let (error, tracked) = env
            .invoke(
                "track-recovery-points",
                &tick_sample(
                    "track-recovery-points/scheduler-tick.json",
                    &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
            )
            .await
            .unwrap();
        assert_eq!(error, None, "{tracked}");
        let now = env.catalog().get(&point).await.unwrap().map(|p| p.status);
        if now == Some(status) {
            return;
        }
        assert!(
            started.elapsed() < lifeboat_tests::WAIT_LIMIT,
            "{id} is {now:?}, not {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The real binary answers with the plan for one policy. (That a dry run changes nothing is
/// shown by plan-backups' behaviour tests, which count every call, and by its read-only IAM
/// policy; on this shared local deployment other tests' create-snapshots runs may snapshot
/// any tagged resource at any time.)
#[tokio::test]
async fn the_dry_run_plan_comes_from_the_real_binary() {
    let env = TestEnv::local_deployment().await.unwrap();
    let policy = env
        .put_policy(r#"{"name":"{prefix}-plan","every":"1h","rpo":"2h","retain":24,"priority":1}"#)
        .await
        .unwrap();
    let db = env.name("plan");
    let arn = env.create_instance(&db, policy.name.as_str()).await.unwrap();
    let request = serde_json::json!({ "policy": policy.name.as_str() }).to_string();
    let (error, report) = env.invoke("plan-backups", &request).await.unwrap();
    assert_eq!(error, None, "{report}");
    let creates = report["plan"]["creates"].as_array().unwrap();
    assert!(
        creates.iter().all(|c| c["policy"] == policy.name.as_str()),
        "only the requested policy: {report}"
    );
    if let Some(ours) = creates.iter().find(|c| c["resource"]["id"] == db.as_str()) {
        assert!(ours["reason"].as_str().unwrap().starts_with("due: slot"), "{ours}");
    } else {
        // Another test's scheduled create-snapshots run (every policy, now) took this
        // slot's snapshot first (pending or done): the catalog has it, so nothing is due.
        let points = env.catalog().by_resource(&arn, 10).await.unwrap();
        assert!(!points.is_empty(), "{report}");
    }
    assert!(report["summary"].as_str().unwrap().contains("to create"));
    let (error, payload) = env
        .invoke("plan-backups", &sample("plan-backups/malformed.json"))
        .await
        .unwrap();
    assert_eq!(
        (error.as_deref(), &payload["errorType"]),
        (Some("Unhandled"), &Value::from("Invalid")),
        "{payload}"
    );
}

/// Every run records the AWS calls it made (counted by an SDK interceptor, retries and
/// pages included) in its run record and its "run finished" log line.
#[tokio::test]
async fn runs_report_the_aws_calls_they_made() {
    let env = TestEnv::local_deployment().await.unwrap();
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (error, _) = env
        .invoke(
            "track-recovery-points",
            &tick_sample("track-recovery-points/scheduler-tick.json", &at),
        )
        .await
        .unwrap();
    assert_eq!(error, None);
    // The runtime's output reaches cargo-lambda's log file shortly after the invocation
    // answers: read it until the line is there (or give up after 20 seconds).
    let path = lifeboat_tests::repo_root().join(".local/stack/cargo-lambda.log");
    let started = std::time::Instant::now();
    let last = loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let finished = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .rfind(|v| v["message"] == "run finished" && v["function"] == "track-recovery-points");
        if let Some(line) = finished {
            break line;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no run finished line in the log"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // At least: the policy query, the two listings, and the status queries.
    assert!(last["aws_calls"].as_u64().unwrap_or(0) >= 4, "{last}");
    let calls = last["calls"].as_str().unwrap_or_default();
    assert!(
        calls.contains("RDS:DescribeDBInstances") && calls.contains("DynamoDB:Query"),
        "{calls}"
    );
}
