//! The admin API on the local AWS stack: the real `admin-api` binary, invoked through the
//! Lambda bridge with API Gateway REST events as API Gateway sends them (IAM identity in
//! the request context), its audit trail in the catalog table, and `POST /backups` carried
//! out by the real `create-snapshots` binary, which the API invokes through Lambda.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use base64::Engine as _;
use lifeboat_tests::api::{call, request};
use lifeboat_tests::{PRIMARY, TestEnv};
use serde_json::{Value, json};

const VIEWER: &str = "arn:aws:iam::123456789012:user/lifeboat-viewer";
const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/LifeboatOperator/bob";
const ADMIN: &str = "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/alice";
const STRANGER: &str = "arn:aws:iam::123456789012:user/mallory";
/// The secret the local deployment's admin-api reads (infra/local/functions.env).
const SIGNING_SECRET: &str = "lifeboat/confirm-signing-key";

/// The signing-key secret exists in the emulator (created once per stack).
async fn signing_secret(env: &TestEnv) {
    let sm = aws_sdk_secretsmanager::Client::new(&env.primary);
    if sm.describe_secret().secret_id(SIGNING_SECRET).send().await.is_err() {
        let key = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
        // A concurrent test may have created it first: that is fine too.
        let _ = sm.create_secret().name(SIGNING_SECRET).secret_string(key).send().await;
    }
}

#[tokio::test]
async fn roles_refusals_a_backup_through_the_real_functions_and_its_audit_record() {
    let env = TestEnv::local_deployment().await.unwrap();
    signing_secret(&env).await;
    let policy = env
        .put_policy(r#"{"name":"{prefix}-api","every":"1day","rpo":"26h","retain":3}"#)
        .await
        .unwrap();
    let db = env.name("api");
    let arn = env.create_instance(&db, policy.name.as_str()).await.unwrap();
    let id = |what: &str| format!("{}-{what}", env.prefix);

    // A viewer reads; the resource is listed with its policy.
    let (status, _, body) = call(&env, &request("GET", "/resources", VIEWER, None, &id("r1"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains(&arn), "{body}");

    // A viewer may not back up; a principal no role names may not even read.
    let backup = json!({"resources": [arn], "emergency": true, "reason": "before the risky change"});
    let (status, content_type, body) = call(&env, &request("POST", "/backups", VIEWER, Some(&backup), &id("r2"))).await;
    assert_eq!(
        (status, content_type.as_str()),
        (403, "application/problem+json"),
        "{body}"
    );
    let (status, _, _) = call(&env, &request("GET", "/resources", STRANGER, None, &id("r3"))).await;
    assert_eq!(status, 403);

    // Bad input is a 400 naming the field, before any backup.
    let bad = json!({"resources": ["orders"], "reason": ""});
    let (status, _, body) = call(&env, &request("POST", "/backups", OPERATOR, Some(&bad), &id("r4"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("resources[0]") && body.to_string().contains("reason"),
        "{body}"
    );

    // An operator's emergency backup: the API invokes create-snapshots, which snapshots.
    let (status, _, body) = call(&env, &request("POST", "/backups", OPERATOR, Some(&backup), &id("r5"))).await;
    assert_eq!(status, 202, "{body}");
    let snapshots = env
        .rds(PRIMARY)
        .describe_db_snapshots()
        .db_instance_identifier(&db)
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let names: Vec<_> = snapshots
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].contains("-em-"), "{names:?}");

    // The same API request delivered again (a client retry) makes no second snapshot.
    let (status, _, body) = call(&env, &request("POST", "/backups", OPERATOR, Some(&backup), &id("r5"))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["result"]["replayed"], json!(true), "{body}");

    // The audit trail has the backup, asked for and answered, with the operator's name.
    let mut cursor: Option<String> = None;
    let mut phases = Vec::new();
    for _ in 0..50 {
        let mut event: Value = serde_json::from_str(&request("GET", "/audit", ADMIN, None, &id("a"))).unwrap();
        if let Some(c) = &cursor {
            event["queryStringParameters"] = json!({"cursor": c});
            event["multiValueQueryStringParameters"] = json!({"cursor": [c]});
        }
        let (status, _, body) = call(&env, &event.to_string()).await;
        assert_eq!(status, 200, "{body}");
        for item in body["items"].as_array().unwrap() {
            if item["requestId"] == json!(id("r5")) {
                assert_eq!(item["principal"], json!(OPERATOR));
                assert_eq!(item["route"], json!("/backups"));
                phases.push(item["phase"].as_str().unwrap().to_owned());
            }
        }
        cursor = body["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert!(
        phases.contains(&"requested".to_owned()) && phases.contains(&"answered".to_owned()),
        "{phases:?}"
    );
    // A viewer cannot read the audit trail.
    let (status, _, _) = call(&env, &request("GET", "/audit", VIEWER, None, &id("a2"))).await;
    assert_eq!(status, 403);
}
