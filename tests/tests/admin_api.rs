//! The admin API on the local AWS stack: the real `admin-api` binary, invoked through the
//! Lambda bridge with API Gateway REST events as API Gateway sends them (IAM identity in
//! the request context), its audit trail in the catalog table, and `POST /backups` carried
//! out by the real `create-snapshots` binary, which the API invokes through Lambda.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use base64::Engine as _;
use lifeboat_domain::RecoveryPointId;
use lifeboat_ports::Catalog as _;
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

/// The catalog, policy, plan and restore routes on the local stack: a viewer reads the
/// recovery points and plans; an admin writes a policy (an operator may not); an
/// operator previews a restore into a new instance and confirms it with its token, and the
/// instance appears in RDS; a restore over the original needs an admin, takes a
/// pre-restore snapshot, and is rolled back.
#[tokio::test]
async fn catalog_policies_plans_and_a_confirmed_restore_through_the_real_binary() {
    let env = TestEnv::local_deployment().await.unwrap();
    signing_secret(&env).await;
    let policy = env
        .put_policy(r#"{"name":"{prefix}-rst","every":"1day","rpo":"26h","retain":3}"#)
        .await
        .unwrap();
    let db = env.name("rst");
    let arn = env.create_instance(&db, policy.name.as_str()).await.unwrap();
    let id = |what: &str| format!("{}-{what}", env.prefix);
    let backup = json!({"resources": [arn], "reason": "before the restore test"});
    let (status, _, body) = call(&env, &request("POST", "/backups", OPERATOR, Some(&backup), &id("b"))).await;
    assert_eq!(status, 202, "{body}");

    // Recovery points, by resource, then one by id.
    let mut event: Value = serde_json::from_str(&request("GET", "/recovery-points", VIEWER, None, &id("l"))).unwrap();
    event["queryStringParameters"] = json!({"resource": arn});
    event["multiValueQueryStringParameters"] = json!({"resource": [arn]});
    let (status, _, list) = call(&env, &event.to_string()).await;
    assert_eq!(status, 200, "{list}");
    let point = list["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, one) = call(
        &env,
        &request("GET", &format!("/recovery-points/{point}"), VIEWER, None, &id("g")),
    )
    .await;
    assert_eq!((status, one["id"].as_str()), (200, Some(point.as_str())), "{one}");
    wait_until_tracked(&env, &point).await;

    // Policies: an admin writes, an operator may not, a viewer reads.
    let path = format!("/policies/{}", policy.name);
    let doc = json!({"name": policy.name.as_str(), "every": "1day", "rpo": "26h", "retain": 5});
    let (status, _, _) = call(&env, &request("PUT", &path, OPERATOR, Some(&doc), &id("p1"))).await;
    assert_eq!(status, 403);
    let (status, _, body) = call(&env, &request("PUT", &path, ADMIN, Some(&doc), &id("p2"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = call(&env, &request("GET", &path, VIEWER, None, &id("p3"))).await;
    assert_eq!(
        (status, &body["document"]["retention"]["last"]),
        (200, &json!(5)),
        "{body}"
    );

    // A dry-run plan of that policy.
    let (status, _, plan) = call(
        &env,
        &request(
            "POST",
            "/plans",
            VIEWER,
            Some(&json!({"policy": policy.name.as_str()})),
            &id("pl"),
        ),
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    assert!(plan["summary"].is_string(), "{plan}");

    // A restore into a new instance: previewed, confirmed with the token, carried out.
    let target = format!("{db}-copy");
    // The local estate runs no VPC: the source has no DB subnet group and no security
    // group, so a restore would land in the default VPC and is refused unless asked for.
    let restore = json!({"recoveryPoint": point, "target": target});
    let (status, _, refused) = call(&env, &request("POST", "/restores", OPERATOR, Some(&restore), &id("r0"))).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("placement.subnetGroup"), "{refused}");
    let restore = json!({"recoveryPoint": point, "target": target, "placement": {"allowDefaultNetwork": true}});
    let (status, _, preview) = call(&env, &request("POST", "/restores", OPERATOR, Some(&restore), &id("r1"))).await;
    assert_eq!(status, 201, "{preview}");
    let rid = preview["restore"]["id"].as_str().unwrap().to_owned();
    let token = json!({"token": preview["confirmationToken"]});
    let (status, _, _) = call(
        &env,
        &request(
            "POST",
            &format!("/restores/{rid}/confirm"),
            VIEWER,
            Some(&token),
            &id("r2"),
        ),
    )
    .await;
    assert_eq!(status, 403, "a viewer cannot confirm");
    let (status, _, body) = call(
        &env,
        &request(
            "POST",
            &format!("/restores/{rid}/confirm"),
            OPERATOR,
            Some(&token),
            &id("r3"),
        ),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, _, body) = call(
        &env,
        &request("GET", &format!("/restores/{rid}"), VIEWER, None, &id("r4")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let restored = env
        .rds(PRIMARY)
        .describe_db_instances()
        .db_instance_identifier(&target)
        .send()
        .await
        .unwrap();
    assert_eq!(restored.db_instances().len(), 1);
    // Never publicly accessible (moto does not report the flag; the request's
    // PubliclyAccessible=false is pinned by the adapter's mock test).
    assert_ne!(restored.db_instances()[0].publicly_accessible(), Some(true));

    // Over the original: an operator is refused (the admin path is its own test below).
    let over = json!({"recoveryPoint": point, "target": db, "overwrite": true});
    let (status, _, _) = call(&env, &request("POST", "/restores", OPERATOR, Some(&over), &id("o1"))).await;
    assert_eq!(status, 403);
}

/// The snapshot takes time, as on AWS: the real tracker (invoked through the local Lambda
/// API) records when the point is available.
async fn wait_until_tracked(env: &TestEnv, point: &str) {
    let tracked = lifeboat_domain::RecoveryPointId::parse(point).unwrap();
    let started = std::time::Instant::now();
    loop {
        let tick = json!({ "scheduledTime": chrono::Utc::now().to_rfc3339() }).to_string();
        let (error, out) = env.invoke("track-recovery-points", &tick).await.unwrap();
        assert_eq!(error, None, "{out}");
        let status = env.catalog().get(&tracked).await.unwrap().map(|p| p.status);
        if matches!(
            status,
            Some(lifeboat_domain::Status::Available | lifeboat_domain::Status::Copied)
        ) {
            return;
        }
        assert!(started.elapsed() < lifeboat_tests::WAIT_LIMIT, "{point} is {status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A database with one recovery point taken through the API, recorded available by the
/// tracker; answers (instance, point).
async fn database_with_a_point(env: &TestEnv, what: &str) -> (String, String) {
    let policy = env
        .put_policy(&format!(
            r#"{{"name":"{{prefix}}-{what}","every":"1day","rpo":"26h","retain":3}}"#
        ))
        .await
        .unwrap();
    let db = env.name(what);
    let arn = env.create_instance(&db, policy.name.as_str()).await.unwrap();
    let backup = json!({"resources": [arn], "reason": "before the overwrite test"});
    let rid = format!("{}-{what}-b", env.prefix);
    let (status, _, body) = call(env, &request("POST", "/backups", OPERATOR, Some(&backup), &rid)).await;
    assert_eq!(status, 202, "{body}");
    let mut event: Value =
        serde_json::from_str(&request("GET", "/recovery-points", VIEWER, None, &format!("{rid}-l"))).unwrap();
    event["queryStringParameters"] = json!({"resource": arn});
    event["multiValueQueryStringParameters"] = json!({"resource": [arn]});
    let (status, _, list) = call(env, &event.to_string()).await;
    assert_eq!(status, 200, "{list}");
    let point = list["items"][0]["id"].as_str().unwrap().to_owned();
    wait_until_tracked(env, &point).await;
    (db, point)
}

/// Previews and confirms an overwrite of `db` as an admin; answers the restore id.
async fn confirm_overwrite(env: &TestEnv, db: &str, point: &str) -> String {
    let rid = |what: &str| format!("{}-{db}-{what}", env.prefix);
    let over = json!({"recoveryPoint": point, "target": db, "overwrite": true,
                      "placement": {"allowDefaultNetwork": true}});
    let (status, _, preview) = call(env, &request("POST", "/restores", ADMIN, Some(&over), &rid("p"))).await;
    assert_eq!(status, 201, "{preview}");
    let oid = preview["restore"]["id"].as_str().unwrap().to_owned();
    let token = json!({"token": preview["confirmationToken"]});
    let path = format!("/restores/{oid}/confirm");
    let (status, _, body) = call(env, &request("POST", &path, ADMIN, Some(&token), &rid("c"))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["restore"]["state"], "preserving-original", "{body}");
    // A replayed confirm changes nothing.
    let (status, _, body) = call(env, &request("POST", &path, ADMIN, Some(&token), &rid("c2"))).await;
    assert_eq!(status, 409, "{body}");
    oid
}

/// `POST /restores/{id}/advance` until the restore is in `state` (RDS renames and restores
/// take their time on a strict stack); answers the last restore view.
async fn advance_until(env: &TestEnv, oid: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for n in 0..120 {
        let (status, _, body) = call(
            env,
            &request(
                "POST",
                &format!("/restores/{oid}/advance"),
                ADMIN,
                Some(&json!({})),
                &format!("{}-{oid}-adv-{state}-{n}", env.prefix),
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body["restore"]["state"] == json!(state) {
            return body["restore"].clone();
        }
        last = body;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("restore {oid} never became {state}: {last}");
}

async fn instance(env: &TestEnv, id: &str) -> Option<aws_sdk_rds::types::DbInstance> {
    env.rds(PRIMARY)
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.db_instances().first().cloned())
}

/// An overwrite on the local stack renames the original aside (ModifyDBInstance), restores
/// under its identifier, and keeps the original until it is finished: then it is deleted
/// with a final snapshot that holds its data.
#[tokio::test]
async fn an_overwrite_keeps_the_original_until_finished_then_deletes_it_with_a_final_snapshot() {
    let env = TestEnv::local_deployment().await.unwrap();
    signing_secret(&env).await;
    let (db, point) = database_with_a_point(&env, "ovf").await;
    let oid = confirm_overwrite(&env, &db, &point).await;
    let restored = advance_until(&env, &oid, "restored").await;
    let kept = restored["preservedAs"].as_str().unwrap().to_owned();
    assert_eq!(kept, format!("{db}-lbpre-{}", &oid[..8]));
    // The original, renamed: not the restored one.
    let original = instance(&env, &kept).await.expect("the original is kept");
    assert!(
        !original
            .tag_list()
            .iter()
            .any(|t| t.key() == Some("lifeboat:restored-from")),
        "{original:?}"
    );
    let now = instance(&env, &db).await.expect("the restored instance");
    assert!(
        now.tag_list().iter().any(|t| t.key() == Some("lifeboat:restored-from")),
        "{now:?}"
    );

    let rid = |what: &str| format!("{}-{oid}-{what}", env.prefix);
    let finish = format!("/restores/{oid}/finish");
    let (status, _, body) = call(&env, &request("POST", &finish, OPERATOR, Some(&json!({})), &rid("f0"))).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = call(&env, &request("POST", &finish, ADMIN, Some(&json!({})), &rid("f1"))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["restore"]["state"], "finished", "{body}");
    let final_snapshot = body["restore"]["finalSnapshot"].as_str().unwrap().to_owned();
    let snaps = env
        .rds(PRIMARY)
        .describe_db_snapshots()
        .db_snapshot_identifier(&final_snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(
        snaps.db_snapshots()[0].db_instance_identifier(),
        Some(kept.as_str()),
        "the final snapshot is the original's"
    );
    // A replayed finish does nothing; the restored instance is still there.
    let (status, _, body) = call(&env, &request("POST", &finish, ADMIN, Some(&json!({})), &rid("f2"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(instance(&env, &db).await.is_some());
}

/// An overwrite rolled back on the local stack: the restored instance is renamed aside and
/// the original renamed back; nothing is deleted.
#[tokio::test]
async fn an_overwrite_rolled_back_renames_the_original_back_and_deletes_nothing() {
    let env = TestEnv::local_deployment().await.unwrap();
    signing_secret(&env).await;
    let (db, point) = database_with_a_point(&env, "ovr").await;
    let oid = confirm_overwrite(&env, &db, &point).await;
    advance_until(&env, &oid, "restored").await;
    let (status, _, body) = call(
        &env,
        &request(
            "POST",
            &format!("/restores/{oid}/rollback"),
            ADMIN,
            Some(&json!({})),
            &format!("{}-{oid}-rb", env.prefix),
        ),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let done = advance_until(&env, &oid, "rolled-back").await;
    let aside = done["setAsideAs"].as_str().unwrap().to_owned();
    let back = instance(&env, &db).await.expect("the original is back");
    assert!(
        !back
            .tag_list()
            .iter()
            .any(|t| t.key() == Some("lifeboat:restored-from")),
        "{back:?}"
    );
    let set_aside = instance(&env, &aside)
        .await
        .expect("the restored instance is kept aside");
    assert!(
        set_aside
            .tag_list()
            .iter()
            .any(|t| t.key() == Some("lifeboat:restored-from")),
        "{set_aside:?}"
    );
    assert!(instance(&env, &format!("{db}-lbpre-{}", &oid[..8])).await.is_none());
}

/// An Aurora recovery point, taken through the API and tracked by the real tracker, is
/// restored into a new cluster: the cluster first, then (once it is available) its writer
/// with the class recorded with the snapshot, and the restore is `restored` only once the
/// writer is available. moto runs no VPC, so the default network is allowed explicitly.
#[tokio::test]
async fn an_aurora_point_is_restored_into_a_new_cluster_with_its_writer() {
    let env = TestEnv::local_deployment().await.unwrap();
    signing_secret(&env).await;
    let policy = env
        .put_policy(r#"{"name":"{prefix}-aur","every":"1day","rpo":"26h","retain":3}"#)
        .await
        .unwrap();
    let cluster = env.name("aur");
    let arn = env.create_cluster(&cluster, policy.name.as_str()).await.unwrap();
    let rid = |what: &str| format!("{}-aur-{what}", env.prefix);
    let backup = json!({"resources": [arn], "reason": "before the cluster restore test"});
    let (status, _, body) = call(&env, &request("POST", "/backups", OPERATOR, Some(&backup), &rid("b"))).await;
    assert_eq!(status, 202, "{body}");
    let mut event: Value = serde_json::from_str(&request("GET", "/recovery-points", VIEWER, None, &rid("l"))).unwrap();
    event["queryStringParameters"] = json!({"resource": arn});
    event["multiValueQueryStringParameters"] = json!({"resource": [arn]});
    let (status, _, list) = call(&env, &event.to_string()).await;
    assert_eq!(status, 200, "{list}");
    let point = list["items"][0]["id"].as_str().unwrap().to_owned();
    wait_until_tracked(&env, &point).await;
    let recorded = env
        .catalog()
        .get(&RecoveryPointId::parse(&point).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.writer_class(), Some("db.r6g.large"), "{recorded:?}");

    let target = format!("{cluster}-copy");
    let ask = json!({"recoveryPoint": point, "target": target, "placement": {"allowDefaultNetwork": true}});
    let (status, _, preview) = call(&env, &request("POST", "/restores", OPERATOR, Some(&ask), &rid("p"))).await;
    assert_eq!(status, 201, "{preview}");
    assert_eq!(preview["restore"]["writer"]["class"], "db.r6g.large", "{preview}");
    let oid = preview["restore"]["id"].as_str().unwrap().to_owned();
    let token = json!({"token": preview["confirmationToken"]});
    let path = format!("/restores/{oid}/confirm");
    let (status, _, body) = call(&env, &request("POST", &path, OPERATOR, Some(&token), &rid("c"))).await;
    assert_eq!(status, 202, "{body}");
    let done = advance_until(&env, &oid, "restored").await;
    let writer = done["writer"]["instance"].as_str().unwrap();
    let w = instance(&env, writer).await.expect("the writer exists");
    assert_eq!(w.db_cluster_identifier(), Some(target.as_str()));
    assert_eq!(w.db_instance_status(), Some("available"));
    assert_eq!(w.db_instance_class(), Some("db.r6g.large"));
}
