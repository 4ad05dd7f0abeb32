//! The admin API in process: crafted API Gateway REST requests for each role, over fakes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::many_single_char_names)]

use crate::common::{ADMIN, ADMIN2, OPERATOR, STRANGER, VIEWER, World, port_err, us_east_1};
use admin_api::{ROUTES, Role};
use lifeboat_domain::Status;
use lifeboat_domain::restore::RestoreState;
use lifeboat_ports::lambda::Invocation;
use lifeboat_ports::{Catalog, PortError};
use serde_json::{Value, json};

fn event_file(name: &str) -> Value {
    lifeboat_testkit::sample("admin-api", name)
}

#[tokio::test]
async fn sample_events_for_each_role() {
    let w = World::new();
    w.fakes
        .add_db(lifeboat_domain::ResourceKind::RdsInstance, "orders", "gold");

    let r = w.send(&event_file("get-resources-viewer.json")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["items"][0]["id"], "orders");
    assert_eq!(r.body["items"][0]["policy"], "gold");

    let r = w.send(&event_file("put-policy-admin.json")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["document"]["rpo"], "2h");

    let r = w.send(&event_file("post-backups-operator.json")).await;
    assert_eq!(r.status, 202, "{}", r.body);

    let r = w.send(&event_file("get-audit-unknown-principal.json")).await;
    assert_eq!(r.status, 403);
    assert!(r.is_problem());

    // The function-URL shape `cargo lambda watch` serves (HTTP API v2, IAM authorizer).
    w.add_point("orders", "2026-11-23T01:00:00Z", Status::Available).await;
    let r = w.send(&event_file("function-url-get-recovery-points.json")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn roles_gate_every_route() {
    let w = World::new();
    for route in ROUTES {
        let path = route
            .pattern
            .replace("{id+}", "us-east-1/db/lb-x")
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{name}", "gold");
        for (who, role) in [(VIEWER, Role::Viewer), (OPERATOR, Role::Operator), (ADMIN, Role::Admin)] {
            let r = w.call(Some(who), route.method, &path, Some("{}")).await;
            if role < route.min_role {
                assert_eq!(r.status, 403, "{who} {} {path}: {}", route.method, r.body);
                assert!(r.body["detail"].as_str().unwrap().contains(route.min_role.as_str()));
            } else {
                assert_ne!(r.status, 403, "{who} {} {path}: {}", route.method, r.body);
            }
        }
        for who in [Some(STRANGER), None] {
            let r = w.call(who, route.method, &path, Some("{}")).await;
            assert_eq!(r.status, 403, "{who:?} {} {path}", route.method);
            assert!(r.is_problem());
        }
    }
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let w = World::new();
    let r = w.call(Some(ADMIN), "GET", "/nope", None).await;
    assert_eq!(r.status, 404);
    assert!(r.is_problem());
    let r = w.call(Some(ADMIN), "DELETE", "/policies/gold", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, PUT"));
    let r = w.call(Some(ADMIN), "DELETE", "/audit", None).await;
    assert_eq!(r.status, 405, "the audit trail cannot be changed through the API");
}

#[tokio::test]
async fn recovery_points_filter_and_page_stably() {
    let w = World::new();
    for h in 0..5 {
        w.add_point("orders", &format!("2026-11-22T0{h}:00:00Z"), Status::Available)
            .await;
    }
    w.add_point("billing", "2026-11-22T02:00:00Z", Status::Available).await;
    w.add_point("billing", "2026-11-22T03:00:00Z", Status::Failed).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("status", "available"), ("limit", "2")];
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
        }
        let r = w.call_q(Some(VIEWER), "GET", "/recovery-points", &q, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for item in r.body["items"].as_array().unwrap() {
            seen.push((
                item["created_at"].as_str().unwrap().to_owned(),
                item["id"].as_str().unwrap().to_owned(),
            ));
            assert_eq!(item["tier"], "standard");
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    assert_eq!(seen, sorted, "newest first, ties by id, no repeats across pages");

    let r = w
        .call_q(
            Some(VIEWER),
            "GET",
            "/recovery-points",
            &[
                ("resource", "arn:aws:rds:us-east-1:123456789012:db:billing"),
                ("from", "2026-11-22T02:30:00Z"),
                ("type", "rds-instance"),
                ("region", "us-east-1"),
                ("tier", "standard"),
            ],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["items"][0]["status"], "failed");

    // A tampered cursor, one from another listing, and bad filters: 400 naming each field.
    let first = w
        .call_q(Some(VIEWER), "GET", "/recovery-points", &[("limit", "1")], None)
        .await;
    let c = first.body["nextCursor"].as_str().unwrap().to_owned();
    let mut tampered = c.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (q, field) in [
        (vec![("cursor", tampered.as_str())], "cursor"),
        (vec![("cursor", c.as_str()), ("status", "failed")], "cursor"),
        (vec![("cursor", "garbage")], "cursor"),
    ] {
        let r = w.call_q(Some(VIEWER), "GET", "/recovery-points", &q, None).await;
        assert_eq!(r.status, 400, "{q:?}");
        assert_eq!(r.body["errors"][0]["field"], field);
    }
    let r = w
        .call_q(
            Some(VIEWER),
            "GET",
            "/recovery-points",
            &[
                ("status", "lost"),
                ("from", "yesterday"),
                ("limit", "0"),
                ("colour", "red"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"colour"), "{fields:?}");
    let r = w
        .call_q(
            Some(VIEWER),
            "GET",
            "/recovery-points",
            &[("status", "lost"), ("from", "yesterday"), ("limit", "0")],
            None,
        )
        .await;
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"status") && fields.contains(&"from"), "{fields:?}");
}

#[tokio::test]
async fn one_recovery_point_by_id() {
    let w = World::new();
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    let r = w
        .call(Some(VIEWER), "GET", &format!("/recovery-points/{}", rp.id), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], rp.id.as_str());
    let encoded = rp.id.as_str().replace('/', "%2F");
    let r = w
        .call(Some(VIEWER), "GET", &format!("/recovery-points/{encoded}"), None)
        .await;
    assert_eq!(r.status, 200, "percent-encoded ids work too");
    let r = w
        .call(Some(VIEWER), "GET", "/recovery-points/us-east-1/db/lb-missing", None)
        .await;
    assert_eq!(r.status, 404);
    let r = w.call(Some(VIEWER), "GET", "/recovery-points/mars/db/x", None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errors"][0]["field"], "id");
}

#[tokio::test]
async fn policies_are_validated_with_every_problem_listed_and_audited() {
    let w = World::new();
    let bad =
        json!({"name": "gold", "every": "soon", "rpo": "never", "timezone": "Mars/Olympus", "retain": 3}).to_string();
    let r = w.call(Some(ADMIN), "PUT", "/policies/gold", Some(&bad)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let errors = r.body["errors"].as_array().unwrap();
    assert!(errors.len() >= 3, "every problem listed: {errors:?}");
    assert!(w.fakes.catalog.policies().await.unwrap().is_empty(), "nothing stored");

    let r = w
        .call(
            Some(ADMIN),
            "PUT",
            "/policies/gold",
            Some(r#"{"name": "silver", "every": "1h", "rpo": "2h"}"#),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errors"][0]["field"], "name");
    let r = w
        .call(
            Some(ADMIN),
            "PUT",
            "/policies/gold",
            Some(r#"{"name": "gold", "every": "1h", "rpo": "2h", "colour": 1}"#),
        )
        .await;
    assert_eq!(r.status, 400, "unknown fields refused");
    let r = w.call(Some(ADMIN), "PUT", "/policies/gold", Some("{not json")).await;
    assert_eq!(r.status, 400);

    // Copy targets this deployment cannot serve: the primary region, a region without a key.
    let r = w
        .call(
            Some(ADMIN),
            "PUT",
            "/policies/gold",
            Some(r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 24, "copies": [{"region": "us-east-1"}, {"region": "eu-west-1"}]}"#),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["copies[0].region", "copies[1].kms_key_id"]);
    assert!(w.fakes.catalog.policies().await.unwrap().is_empty(), "nothing stored");

    // us-west-2 has a key in the deployment's DR_KMS_KEYS.
    let good = r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 24, "copies": [{"region": "us-west-2"}]}"#;
    let r = w.call(Some(ADMIN), "PUT", "/policies/gold", Some(good)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = w.call(Some(VIEWER), "GET", "/policies/gold", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["valid"], true);
    assert_eq!(w.call(Some(VIEWER), "GET", "/policies/none", None).await.status, 404);
    assert_eq!(
        w.call(Some(VIEWER), "GET", "/policies/Bad_Name", None).await.status,
        400
    );

    // Every mutating request: a `requested` and an `answered` record, refusals included.
    let records = w.audit.records();
    let puts: Vec<_> = records.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 12, "6 PUTs × 2 phases");
    assert!(
        puts.iter()
            .all(|r| r.principal == ADMIN && r.role == "admin" && r.route == "/policies/{name}")
    );
    assert_eq!(puts.iter().filter(|r| r.status == Some(400)).count(), 5);
    assert_eq!(puts.iter().filter(|r| r.status == Some(200)).count(), 1);
    assert!(records.iter().all(|r| r.method != "GET"), "reads are not audited");
    let body_hash = records
        .iter()
        .find(|r| r.status == Some(200))
        .unwrap()
        .body_sha256
        .clone();
    assert_eq!(body_hash.len(), 64);
    assert!(
        !records.iter().any(|r| format!("{r:?}").contains("retain")),
        "bodies are digested, never stored"
    );
}

#[tokio::test]
async fn a_request_that_cannot_be_audited_changes_nothing() {
    let w = World::new();
    w.audit.fail_next(port_err());
    let r = w
        .call(
            Some(ADMIN),
            "PUT",
            "/policies/gold",
            Some(r#"{"name": "gold", "every": "1h", "rpo": "2h"}"#),
        )
        .await;
    assert_eq!(r.status, 503);
    assert!(r.is_problem());
    assert!(
        !r.body.to_string().contains("lifeboat-catalog-secret"),
        "internals never echoed"
    );
    assert!(w.fakes.catalog.policies().await.unwrap().is_empty());
}

#[tokio::test]
async fn internal_errors_are_logged_not_echoed_and_throttling_is_429() {
    let w = World::new();
    w.fakes.catalog.fail_next(port_err());
    let r = w.call(Some(VIEWER), "GET", "/policies/gold", None).await;
    assert_eq!(r.status, 503);
    assert!(!r.body.to_string().contains("lifeboat-catalog-secret"));
    w.fakes
        .catalog
        .fail_next(PortError::Throttled("ProvisionedThroughputExceeded on t".into()));
    let r = w.call(Some(VIEWER), "GET", "/policies/gold", None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("5"));
    w.fakes
        .catalog
        .fail_next(PortError::Invalid("bad item in table xyz".into()));
    let r = w.call(Some(VIEWER), "GET", "/policies/gold", None).await;
    assert_eq!(r.status, 500);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains(r.body["requestId"].as_str().unwrap())
    );
    assert!(!r.body.to_string().contains("xyz"));
}

#[tokio::test]
async fn plans_are_dry_runs() {
    let w = World::new();
    w.fakes
        .catalog
        .put_policy_json("gold", r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 3}"#);
    w.fakes
        .add_db(lifeboat_domain::ResourceKind::RdsInstance, "orders", "gold");
    let r = w.call(Some(VIEWER), "POST", "/plans", Some("{}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["summary"].is_string());
    assert!(w.fakes.catalog.points().is_empty(), "a dry run creates nothing");
    let r = w
        .call(Some(VIEWER), "POST", "/plans", Some(r#"{"policy": "nope"}"#))
        .await;
    assert_eq!(r.status, 404);
    let r = w
        .call(Some(VIEWER), "POST", "/plans", Some(r#"{"at": "tomorrow"}"#))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn backups_invoke_create_snapshots_with_the_contract_event() {
    let w = World::new();
    let body = json!({"resources": ["arn:aws:rds:us-east-1:123456789012:db:orders"], "emergency": true, "reason": "migration"});
    let r = w
        .call(Some(OPERATOR), "POST", "/backups", Some(&body.to_string()))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let request_id = r.body["requestId"].as_str().unwrap().to_owned();
    let calls = w.invoker.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "create-snapshots");
    assert_eq!(
        calls[0].1,
        json!({"source": "lifeboat.admin", "detail-type": "Backup requested", "detail": {
            "resources": ["arn:aws:rds:us-east-1:123456789012:db:orders"], "emergency": true,
            "reason": "migration", "requestedBy": OPERATOR, "requestId": request_id}})
    );
    assert_eq!(r.body["result"], json!({"created": 1}));

    // Refusals name each offending field; nothing is invoked.
    let bad = json!({"resources": ["arn:aws:s3:::bucket", "arn:aws:rds:us-east-1:123456789012:db:a", "arn:aws:rds:us-east-1:123456789012:db:a"], "reason": " "});
    let r = w.call(Some(OPERATOR), "POST", "/backups", Some(&bad.to_string())).await;
    assert_eq!(r.status, 400);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["resources[0]", "resources[2]", "reason"]);
    assert_eq!(w.invoker.calls.lock().unwrap().len(), 1);

    // The function's answers map to HTTP.
    for (error_type, status) in [
        ("Invalid", 400),
        ("NotFound", 404),
        ("Conflict", 409),
        ("Retryable", 429),
        ("Internal", 502),
    ] {
        *w.invoker.reply.lock().unwrap() = Some(Ok(Invocation {
            function_error: Some("Unhandled".into()),
            payload: json!({"errorType": error_type, "errorMessage": "m"})
                .to_string()
                .into_bytes(),
        }));
        let r = w.call(Some(ADMIN), "POST", "/backups", Some(&body.to_string())).await;
        assert_eq!(r.status, status, "{error_type}");
        assert!(r.is_problem());
    }
    *w.invoker.reply.lock().unwrap() = Some(Err(PortError::Throttled("TooManyRequestsException".into())));
    assert_eq!(
        w.call(Some(ADMIN), "POST", "/backups", Some(&body.to_string()))
            .await
            .status,
        429
    );
}

async fn preview(w: &World, who: &str, body: &Value) -> crate::common::Reply {
    w.call(Some(who), "POST", "/restores", Some(&body.to_string())).await
}

#[tokio::test]
async fn restore_to_a_new_instance_with_a_confirmed_token() {
    let w = World::new();
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    let r = preview(&w, OPERATOR, &json!({"recoveryPoint": rp.id, "target": "orders-copy"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["preview"]["tier"], "standard");
    assert_eq!(r.body["preview"]["target"], "orders-copy");
    assert!(r.body["preview"]["estimatedMinutes"].as_u64().unwrap() > 0);
    let id = r.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = r.body["confirmationToken"].as_str().unwrap().to_owned();
    assert!(w.rds.calls().is_empty(), "a preview changes nothing in RDS");

    let r = w
        .call(
            Some(OPERATOR),
            "POST",
            &format!("/restores/{id}/confirm"),
            Some(&json!({"token": token}).to_string()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["restore"]["state"], "restoring");
    assert_eq!(
        w.rds.restored_from(&us_east_1(), "orders-copy").as_deref(),
        Some(rp.snapshot_name.as_str())
    );
    let hold = || async { w.catalog_point(&rp.id).await.holds.in_use_by };
    assert_eq!(hold().await, Some(format!("restore {id}")), "held while RDS reads it");

    let r = w.call(Some(VIEWER), "GET", &format!("/restores/{id}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["progress"]["instanceStatus"], "creating");
    assert_eq!(r.body["progress"]["done"], false);
    w.rds.settle();
    let r = w
        .call(Some(OPERATOR), "POST", &format!("/restores/{id}/advance"), Some("{}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["restore"]["state"], "restored");
    assert_eq!(hold().await, None, "released once the database is made");

    // Used once: a replay is refused and changes nothing.
    let calls = w.rds.calls();
    let r = w
        .call(
            Some(OPERATOR),
            "POST",
            &format!("/restores/{id}/confirm"),
            Some(&json!({"token": token}).to_string()),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(w.rds.calls(), calls);
    let r = w
        .call(Some(ADMIN), "POST", &format!("/restores/{id}/rollback"), Some("{}"))
        .await;
    assert_eq!(r.status, 409, "nothing was overwritten");
    let r = w
        .call(Some(ADMIN), "POST", &format!("/restores/{id}/finish"), Some("{}"))
        .await;
    assert_eq!(r.status, 409, "nothing to finish");

    // Defaults: a fresh identifier derived from the resource.
    let r = preview(&w, OPERATOR, &json!({"recoveryPoint": rp.id})).await;
    assert!(
        r.body["preview"]["target"]
            .as_str()
            .unwrap()
            .starts_with("orders-restore-")
    );
}

/// Confirms a previewed restore as `who`, then lets RDS finish it.
async fn confirm_restore(w: &World, who: &str, previewed: &crate::common::Reply) -> String {
    let id = previewed.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = previewed.body["confirmationToken"].as_str().unwrap();
    let r = w
        .call(
            Some(who),
            "POST",
            &format!("/restores/{id}/confirm"),
            Some(&json!({"token": token}).to_string()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    id
}

#[tokio::test]
async fn a_restore_goes_where_its_source_is_with_its_groups_and_never_public() {
    let w = World::new();
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    let r = preview(&w, OPERATOR, &json!({"recoveryPoint": rp.id, "target": "orders-copy"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let placement = &r.body["restore"]["placement"];
    assert_eq!(placement["subnetGroup"], "private-db", "{}", r.body);
    assert_eq!(placement["securityGroups"], json!(["sg-0123456789abcdef0"]));
    assert_eq!(placement["parameterGroup"], "orders-pg16");
    assert_eq!(placement["publiclyAccessible"], false);
    confirm_restore(&w, OPERATOR, &r).await;
    assert_eq!(
        w.rds.settings_of(&us_east_1(), "orders-copy"),
        Some(lifeboat_testkit::admin::test_placement()),
        "the restore carries the source's subnet group, security groups and parameter group"
    );

    // What the request names wins over what the source has.
    let r = preview(
        &w,
        OPERATOR,
        &json!({"recoveryPoint": rp.id, "target": "orders-audit",
                "placement": {"subnetGroup": "audit-db", "securityGroups": ["sg-0fedcba9876543210"]}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    confirm_restore(&w, OPERATOR, &r).await;
    let s = w.rds.settings_of(&us_east_1(), "orders-audit").unwrap();
    assert_eq!(s.subnet_group.as_deref(), Some("audit-db"));
    assert_eq!(s.security_groups, vec!["sg-0fedcba9876543210".to_owned()]);
    assert_eq!(s.parameter_group.as_deref(), Some("orders-pg16"));
}

#[tokio::test]
async fn a_restore_that_would_land_in_the_default_network_is_refused_unless_asked() {
    let w = World::new();
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    // The source is in the default VPC with its default security group (no subnet group
    // and no security group RDS reports).
    w.rds.add_instance_with(
        &us_east_1(),
        "orders",
        lifeboat_domain::dr::plan::RestoreSettings::default(),
    );
    let r = preview(&w, OPERATOR, &json!({"recoveryPoint": rp.id, "target": "orders-copy"})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let text = r.body.to_string();
    assert!(text.contains("placement.subnetGroup"), "{text}");
    assert!(text.contains("placement.securityGroups"), "{text}");
    assert!(w.rds.calls().is_empty());

    // Named explicitly, or allowed explicitly.
    let r = preview(
        &w,
        OPERATOR,
        &json!({"recoveryPoint": rp.id, "target": "orders-copy",
                "placement": {"subnetGroup": "private-db", "securityGroups": ["sg-0123456789abcdef0"]}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = preview(
        &w,
        OPERATOR,
        &json!({"recoveryPoint": rp.id, "target": "orders-scratch", "placement": {"allowDefaultNetwork": true}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // An unknown placement field is named, not ignored.
    let r = preview(
        &w,
        OPERATOR,
        &json!({"recoveryPoint": rp.id, "placement": {"subnet": "x"}}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn an_overwrite_puts_the_restore_where_the_replaced_instance_was() {
    let w = World::new();
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    let placed = lifeboat_domain::dr::plan::RestoreSettings {
        subnet_group: Some("legacy-db".into()),
        security_groups: vec!["sg-0aaaaaaaaaaaaaaaa".into(), "sg-0bbbbbbbbbbbbbbbb".into()],
        parameter_group: Some("legacy-pg".into()),
        cluster_parameter_group: None,
        option_group: Some("legacy-options".into()),
    };
    w.rds.add_instance_with(&us_east_1(), "reporting", placed.clone());
    let r = preview(
        &w,
        ADMIN,
        &json!({"recoveryPoint": rp.id, "target": "reporting", "overwrite": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = confirm_restore(&w, ADMIN, &r).await;
    w.rds.settle();
    assert_eq!(
        post(&w, ADMIN, &id, "advance").await.body["restore"]["state"],
        "restoring"
    );
    w.rds.settle();
    let r = post(&w, ADMIN, &id, "advance").await;
    assert_eq!(r.body["restore"]["state"], "restored", "{}", r.body);
    assert_eq!(
        w.rds.restored_from(&us_east_1(), "reporting").as_deref(),
        Some(rp.snapshot_name.as_str())
    );
    assert_eq!(w.rds.settings_of(&us_east_1(), "reporting"), Some(placed));
}

/// An Aurora cluster is restored into a new cluster placed where its source is, and gets
/// its writer (the class recorded with the snapshot): it counts as restored only once the
/// writer is available. An overwrite of a cluster is refused.
#[tokio::test]
async fn an_aurora_restore_makes_a_new_cluster_with_its_writer() {
    let w = World::new();
    let rp = w
        .add_cluster_point("ledger", "2026-11-22T01:00:00Z", Some("db.r6g.large"))
        .await;
    w.rds.add_cluster(
        &us_east_1(),
        "ledger",
        lifeboat_testkit::admin::test_placement(),
        Some("db.r6g.xlarge"),
    );
    let r = preview(&w, OPERATOR, &json!({"recoveryPoint": rp.id, "target": "ledger-copy"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["restore"]["writer"]["instance"], "ledger-copy-w1");
    assert_eq!(
        r.body["restore"]["writer"]["class"], "db.r6g.large",
        "as recorded with the snapshot"
    );
    let id = confirm_restore(&w, OPERATOR, &r).await;
    let (data, placed) = w.rds.cluster(&us_east_1(), "ledger-copy").unwrap();
    assert_eq!(data, rp.snapshot_name);
    assert_eq!(placed.subnet_group.as_deref(), Some("private-db"));
    assert_eq!(placed.security_groups, vec!["sg-0123456789abcdef0".to_owned()]);

    // The cluster becomes available: its writer is created, and only once that is
    // available is the restore done.
    w.rds.settle();
    let r = post(&w, OPERATOR, &id, "advance").await;
    assert_eq!(r.body["restore"]["state"], "restoring", "{}", r.body);
    assert_eq!(
        w.rds.writers(),
        vec![(
            "ledger-copy".to_owned(),
            "ledger-copy-w1".to_owned(),
            "db.r6g.large".to_owned()
        )]
    );
    let r = post(&w, OPERATOR, &id, "advance").await;
    assert_eq!(
        r.body["restore"]["state"], "restoring",
        "the writer is still being created: {}",
        r.body
    );
    w.rds.settle();
    let r = post(&w, OPERATOR, &id, "advance").await;
    assert_eq!(r.body["restore"]["state"], "restored", "{}", r.body);
    assert_eq!(w.rds.writers().len(), 1, "one writer");

    // Never over an existing cluster.
    let r = preview(
        &w,
        ADMIN,
        &json!({"recoveryPoint": rp.id, "target": "ledger", "overwrite": true}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
}

/// A cluster that took the target's name between preview and confirmation is never used:
/// the confirmation is refused and nothing is restored (nor a writer put into it).
#[tokio::test]
async fn an_aurora_restore_whose_target_cluster_appeared_meanwhile_is_refused() {
    let w = World::new();
    let rp = w
        .add_cluster_point("ledger", "2026-11-22T01:00:00Z", Some("db.r6g.large"))
        .await;
    let body = json!({"recoveryPoint": rp.id, "target": "ledger-copy",
                      "placement": {"allowDefaultNetwork": true}});
    let r = preview(&w, OPERATOR, &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    w.rds.add_cluster(
        &us_east_1(),
        "ledger-copy",
        lifeboat_domain::dr::plan::RestoreSettings::default(),
        None,
    );
    let id = r.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = r.body["confirmationToken"].as_str().unwrap();
    let c = w
        .call(
            Some(OPERATOR),
            "POST",
            &format!("/restores/{id}/confirm"),
            Some(&json!({"token": token}).to_string()),
        )
        .await;
    assert_eq!(c.status, 409, "{}", c.body);
    assert!(w.rds.calls().is_empty(), "{:?}", w.rds.calls());
    assert!(w.rds.writers().is_empty());
}

/// Without a writer class from the request, the snapshot or the source, a cluster restore
/// is refused before anything is done, naming the field.
#[tokio::test]
async fn an_aurora_restore_without_a_known_writer_class_is_refused() {
    let w = World::new();
    let rp = w.add_cluster_point("ledger", "2026-11-22T01:00:00Z", None).await;
    let body = json!({"recoveryPoint": rp.id, "target": "ledger-copy",
                      "placement": {"allowDefaultNetwork": true}});
    let r = preview(&w, OPERATOR, &body).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.to_string().contains("placement.writerClass"), "{}", r.body);
    let body = json!({"recoveryPoint": rp.id, "target": "ledger-copy",
                      "placement": {"allowDefaultNetwork": true, "writerClass": "db.r6g.large"}});
    let r = preview(&w, OPERATOR, &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(w.rds.calls().is_empty());
}

#[tokio::test]
async fn refused_tokens_change_nothing() {
    let w = World::new();
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    let a = preview(&w, ADMIN, &json!({"recoveryPoint": rp.id, "target": "a1"})).await;
    let b = preview(&w, ADMIN, &json!({"recoveryPoint": rp.id, "target": "b1"})).await;
    let (a_id, a_token) = (
        a.body["restore"]["id"].as_str().unwrap(),
        a.body["confirmationToken"].as_str().unwrap(),
    );
    let b_id = b.body["restore"]["id"].as_str().unwrap();
    let confirm = |id: &str, token: &str| (format!("/restores/{id}/confirm"), json!({"token": token}).to_string());

    // A token for another request.
    let (p, body) = confirm(b_id, a_token);
    let r = w.call(Some(ADMIN), "POST", &p, Some(&body)).await;
    assert_eq!(r.status, 403);
    assert!(r.body["detail"].as_str().unwrap().contains("different request"));
    // Another caller (same role).
    let (p, body) = confirm(a_id, a_token);
    let r = w.call(Some(ADMIN2), "POST", &p, Some(&body)).await;
    assert_eq!(r.status, 403);
    assert!(r.body["detail"].as_str().unwrap().contains("different caller"));
    // A tampered and a malformed token.
    let mut chars: Vec<char> = a_token.chars().collect();
    let i = chars.len() - 3;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let (p, body) = confirm(a_id, &tampered);
    assert_eq!(w.call(Some(ADMIN), "POST", &p, Some(&body)).await.status, 403);
    let (p, body) = confirm(a_id, "not-a-token");
    let r = w.call(Some(ADMIN), "POST", &p, Some(&body)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errors"][0]["field"], "token");
    // Expired.
    w.fakes.clock.advance(chrono::Duration::minutes(11));
    let (p, body) = confirm(a_id, a_token);
    let r = w.call(Some(ADMIN), "POST", &p, Some(&body)).await;
    assert_eq!(r.status, 403);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"));

    assert!(w.rds.calls().is_empty(), "no refusal touched RDS");
    assert!(w.restores.all().iter().all(|r| r.state == RestoreState::Previewed));
    // Confirming an unknown restore id.
    let (p, body) = confirm("00000000-0000-4000-8000-000000000000", a_token);
    assert_eq!(w.call(Some(ADMIN), "POST", &p, Some(&body)).await.status, 404);
    let (p, body) = confirm("nope", a_token);
    assert_eq!(w.call(Some(ADMIN), "POST", &p, Some(&body)).await.status, 400);
}

#[tokio::test]
async fn an_overwrite_never_deletes_the_target() {
    let w = World::new();
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    w.rds.add_instance(&us_east_1(), "orders");
    let r = preview(
        &w,
        ADMIN,
        &json!({"recoveryPoint": rp.id, "target": "orders", "overwrite": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = r.body["confirmationToken"].as_str().unwrap().to_owned();
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            &format!("/restores/{id}/confirm"),
            Some(&json!({"token": token}).to_string()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let calls = w.rds.calls();
    assert!(calls.iter().all(|c| !c.starts_with("delete:")), "{calls:?}");
    assert_eq!(calls, [format!("rename:orders->orders-lbpre-{}", &id[..8])]);
}

/// Confirms an overwrite of `orders` and answers the restore id.
async fn confirmed_overwrite(w: &World) -> (String, String) {
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    w.rds.add_instance(&us_east_1(), "orders");
    let r = preview(
        w,
        ADMIN,
        &json!({"recoveryPoint": rp.id, "target": "orders", "overwrite": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["restore"]["id"].as_str().unwrap().to_owned();
    let token = r.body["confirmationToken"].as_str().unwrap();
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            &format!("/restores/{id}/confirm"),
            Some(&json!({"token": token}).to_string()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    (id, rp.snapshot_name)
}

async fn post(w: &World, who: &str, id: &str, what: &str) -> crate::common::Reply {
    w.call(Some(who), "POST", &format!("/restores/{id}/{what}"), Some("{}"))
        .await
}

/// Takes a confirmed overwrite to `restored`, letting RDS finish each step.
async fn restored_overwrite(w: &World) -> (String, String) {
    let (id, snapshot) = confirmed_overwrite(w).await;
    w.rds.settle();
    assert_eq!(
        post(w, ADMIN, &id, "advance").await.body["restore"]["state"],
        "restoring"
    );
    w.rds.settle();
    let r = post(w, ADMIN, &id, "advance").await;
    assert_eq!(r.body["restore"]["state"], "restored", "{}", r.body);
    (id, snapshot)
}

#[tokio::test]
async fn an_overwrite_renames_the_original_aside_and_finishing_deletes_it_with_a_final_snapshot() {
    let w = World::new();
    let (id, snapshot) = confirmed_overwrite(&w).await;
    let short = &id[..8];
    let kept = format!("orders-lbpre-{short}");
    let r = w.call(Some(VIEWER), "GET", &format!("/restores/{id}"), None).await;
    assert_eq!(r.body["restore"]["state"], "preserving-original", "{}", r.body);
    assert_eq!(r.body["restore"]["preservedAs"], kept.as_str());
    assert_eq!(r.body["progress"]["instanceStatus"], "renaming");

    // RDS has not applied the rename yet: the name is not free, nothing more happens,
    // however often the restore is advanced or the confirm replayed.
    for _ in 0..2 {
        let r = post(&w, ADMIN, &id, "advance").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["restore"]["state"], "preserving-original");
        assert!(
            r.body["detail"].as_str().unwrap().contains("once orders is free"),
            "{}",
            r.body
        );
    }
    assert_eq!(w.rds.calls().len(), 1);
    assert_eq!(
        post(&w, OPERATOR, &id, "advance").await.status,
        403,
        "an overwrite is an admin's"
    );
    assert_eq!(post(&w, ADMIN, &id, "finish").await.status, 409, "nothing restored yet");

    // The name is free: the recovery point is restored under it.
    w.rds.settle();
    let r = post(&w, ADMIN, &id, "advance").await;
    assert_eq!(r.body["restore"]["state"], "restoring", "{}", r.body);
    assert_eq!(w.rds.calls()[1..], [format!("restore:{snapshot}->orders")]);
    assert_eq!(
        post(&w, ADMIN, &id, "advance").await.body["restore"]["state"],
        "restoring"
    );
    assert_eq!(w.rds.calls().len(), 2, "a replayed advance does nothing twice");
    w.rds.settle();
    let r = post(&w, ADMIN, &id, "advance").await;
    assert_eq!(r.body["restore"]["state"], "restored", "{}", r.body);
    assert_eq!(
        w.rds.data_of(&us_east_1(), "orders").as_deref(),
        Some(snapshot.as_str())
    );
    assert_eq!(
        w.rds.data_of(&us_east_1(), &kept).as_deref(),
        Some("original:orders"),
        "the original is kept, untouched"
    );
    let r = w.call(Some(VIEWER), "GET", &format!("/restores/{id}"), None).await;
    assert_eq!(r.body["progress"]["done"], true);
    assert!(
        r.body["progress"]["next"]
            .as_str()
            .unwrap()
            .contains("finish or roll back")
    );

    // Finishing deletes the original with a final snapshot; only an admin may.
    assert_eq!(post(&w, OPERATOR, &id, "finish").await.status, 403);
    let r = post(&w, ADMIN, &id, "finish").await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["restore"]["state"], "finished");
    let final_snapshot = format!("lb-pre-{id}");
    assert_eq!(r.body["restore"]["finalSnapshot"], final_snapshot.as_str());
    assert_eq!(w.rds.calls()[2..], [format!("delete:{kept} final={final_snapshot}")]);
    assert_eq!(
        w.rds.snapshot_data(&us_east_1(), &final_snapshot).as_deref(),
        Some("original:orders")
    );
    // Replays change nothing; a finished restore cannot be rolled back.
    let r = post(&w, ADMIN, &id, "finish").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(post(&w, ADMIN, &id, "advance").await.status, 200);
    assert_eq!(post(&w, ADMIN, &id, "rollback").await.status, 409);
    assert_eq!(w.rds.calls().len(), 3);
    assert_eq!(w.restores.all()[0].state, RestoreState::Finished);
}

#[tokio::test]
async fn an_overwrite_rolls_back_by_renames_and_deletes_nothing() {
    let w = World::new();
    let (id, snapshot) = restored_overwrite(&w).await;
    let short = &id[..8];
    let (kept, aside) = (format!("orders-lbpre-{short}"), format!("orders-lbrb-{short}"));

    assert_eq!(post(&w, OPERATOR, &id, "rollback").await.status, 403);
    let r = post(&w, ADMIN, &id, "rollback").await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["restore"]["state"], "rolling-back");
    assert_eq!(r.body["restore"]["setAsideAs"], aside.as_str());
    assert_eq!(w.rds.calls().last().unwrap(), &format!("rename:orders->{aside}"));
    // Asked again before RDS applied the rename: nothing twice.
    let n = w.rds.calls().len();
    assert_eq!(post(&w, ADMIN, &id, "rollback").await.status, 202);
    assert_eq!(post(&w, ADMIN, &id, "advance").await.status, 200);
    assert_eq!(w.rds.calls().len(), n);

    w.rds.settle();
    let r = post(&w, ADMIN, &id, "advance").await;
    assert_eq!(r.body["restore"]["state"], "rolling-back", "{}", r.body);
    assert_eq!(w.rds.calls().last().unwrap(), &format!("rename:{kept}->orders"));
    w.rds.settle();
    let r = post(&w, ADMIN, &id, "advance").await;
    assert_eq!(r.body["restore"]["state"], "rolled-back", "{}", r.body);
    assert_eq!(
        w.rds.data_of(&us_east_1(), "orders").as_deref(),
        Some("original:orders")
    );
    assert_eq!(w.rds.data_of(&us_east_1(), &aside).as_deref(), Some(snapshot.as_str()));
    assert!(
        w.rds.calls().iter().all(|c| !c.starts_with("delete:")),
        "{:?}",
        w.rds.calls()
    );
    assert_eq!(post(&w, ADMIN, &id, "rollback").await.status, 409, "rolled back once");
    assert_eq!(post(&w, ADMIN, &id, "finish").await.status, 409);
}

#[tokio::test]
async fn a_failed_rollback_leaves_a_record_the_rollback_can_be_retried_from() {
    let w = World::new();
    let (id, _) = restored_overwrite(&w).await;

    // A throttled rename: the rollback stays in progress and goes on when advanced.
    w.rds.fail_next("rename", PortError::Throttled("Throttling".into()));
    let r = post(&w, ADMIN, &id, "rollback").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(w.restores.all()[0].state, RestoreState::RollingBack);

    // A refused rename: the record says so and the rollback can be asked for again.
    w.rds
        .fail_next("rename", PortError::InvalidState("InvalidDBInstanceState".into()));
    let r = post(&w, ADMIN, &id, "advance").await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = w.call(Some(VIEWER), "GET", &format!("/restores/{id}"), None).await;
    assert_eq!(r.body["restore"]["state"], "rollback-failed", "{}", r.body);
    assert!(
        r.body["restore"]["failure"]
            .as_str()
            .unwrap()
            .contains("nothing was deleted")
    );
    assert!(
        r.body["progress"]["next"]
            .as_str()
            .unwrap()
            .contains("ask for the rollback again")
    );
    assert_eq!(
        post(&w, ADMIN, &id, "advance").await.status,
        200,
        "waits for the operator"
    );
    assert_eq!(post(&w, ADMIN, &id, "finish").await.status, 409);

    let r = post(&w, ADMIN, &id, "rollback").await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["restore"]["state"], "rolling-back");
    for _ in 0..2 {
        w.rds.settle();
        post(&w, ADMIN, &id, "advance").await;
    }
    assert_eq!(w.restores.all()[0].state, RestoreState::RolledBack);
    assert_eq!(
        w.rds.data_of(&us_east_1(), "orders").as_deref(),
        Some("original:orders")
    );
    assert!(w.rds.calls().iter().all(|c| !c.starts_with("delete:")));
}

#[tokio::test]
async fn a_restore_refused_after_the_rename_is_failed_and_rolled_back_by_renaming_the_original_back() {
    let w = World::new();
    let (id, _) = confirmed_overwrite(&w).await;
    w.rds.settle();
    w.rds
        .fail_next("restore", PortError::Unavailable("InternalFailure".into()));
    let r = post(&w, ADMIN, &id, "advance").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(w.restores.all()[0].state, RestoreState::Restoring, "worth another try");
    w.rds
        .fail_next("restore", PortError::Invalid("InvalidParameterCombination".into()));
    let r = post(&w, ADMIN, &id, "advance").await;
    assert_eq!(r.status, 500, "{}", r.body);
    let record = w.restores.all()[0].clone();
    assert_eq!(record.state, RestoreState::Failed);
    assert!(record.failure.unwrap().contains("the restore was refused"));

    let r = post(&w, ADMIN, &id, "rollback").await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(
        w.rds.calls().last().unwrap(),
        &format!("rename:orders-lbpre-{}->orders", &id[..8])
    );
    w.rds.settle();
    let r = post(&w, ADMIN, &id, "advance").await;
    assert_eq!(r.body["restore"]["state"], "rolled-back", "{}", r.body);
    assert_eq!(
        w.rds.data_of(&us_east_1(), "orders").as_deref(),
        Some("original:orders")
    );
}

#[tokio::test]
async fn an_overwrite_is_confirmed_only_while_the_target_can_be_renamed() {
    let w = World::new();
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    w.rds.add_instance(&us_east_1(), "orders");

    let body = json!({"recoveryPoint": rp.id, "target": "orders", "overwrite": true});
    assert_eq!(
        preview(&w, OPERATOR, &body).await.status,
        403,
        "operators cannot overwrite"
    );
    assert_eq!(
        preview(&w, ADMIN, &json!({"recoveryPoint": rp.id, "target": "orders"}))
            .await
            .status,
        409,
        "target exists"
    );
    assert_eq!(
        preview(
            &w,
            ADMIN,
            &json!({"recoveryPoint": rp.id, "target": "gone", "overwrite": true})
        )
        .await
        .status,
        404
    );
    let r = preview(&w, ADMIN, &body).await;
    let id = r.body["restore"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body["preview"]["preservedAs"],
        format!("orders-lbpre-{}", &id[..8]).as_str()
    );
    let token = r.body["confirmationToken"].as_str().unwrap().to_owned();
    // The name the original would be kept under is taken: refused, token kept.
    w.rds.add_instance(&us_east_1(), &format!("orders-lbpre-{}", &id[..8]));
    let confirm = json!({"token": token}).to_string();
    let r = w
        .call(Some(ADMIN), "POST", &format!("/restores/{id}/confirm"), Some(&confirm))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(w.rds.calls().is_empty());
    assert_eq!(w.restores.all()[0].state, RestoreState::Previewed);
}

#[tokio::test]
async fn unrestorable_points_are_refused() {
    let w = World::new();
    let pending = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Pending).await;
    let r = preview(&w, OPERATOR, &json!({"recoveryPoint": pending.id})).await;
    assert_eq!(r.status, 409);
    let r = preview(&w, OPERATOR, &json!({"recoveryPoint": "us-east-1/db/lb-none"})).await;
    assert_eq!(r.status, 404);
    let r = preview(
        &w,
        OPERATOR,
        &json!({"recoveryPoint": "x", "target": "9bad--", "overwrite": true}),
    )
    .await;
    assert_eq!(r.status, 400);
    // The id and the target are both named; the target is given, so overwrite is complete.
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2, "{}", r.body);
}

#[tokio::test]
async fn the_audit_trail_is_paged_for_admins() {
    let w = World::new();
    for _ in 0..3 {
        w.call(
            Some(ADMIN),
            "PUT",
            "/policies/gold",
            Some(r#"{"name": "gold", "every": "1h", "rpo": "2h"}"#),
        )
        .await;
        w.fakes.clock.advance(chrono::Duration::seconds(1));
    }
    let r = w.call_q(Some(ADMIN), "GET", "/audit", &[("limit", "4")], None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 4);
    let c = r.body["nextCursor"].as_str().unwrap().to_owned();
    let r = w
        .call_q(Some(ADMIN), "GET", "/audit", &[("limit", "4"), ("cursor", &c)], None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert!(r.body["nextCursor"].is_null());
    assert_eq!(
        w.call_q(Some(ADMIN), "GET", "/audit", &[("cursor", "!!")], None)
            .await
            .status,
        400
    );
    assert_eq!(w.call(Some(OPERATOR), "GET", "/audit", None).await.status, 403);
}

#[tokio::test]
async fn compliance_and_metrics_are_read_by_viewers_from_the_catalog() {
    let w = World::new();
    w.fakes
        .catalog
        .put_policy_json("gold", r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 3}"#);
    w.add_point("orders", "2026-11-23T02:30:00Z", Status::Available).await;
    let r = w.call(Some(VIEWER), "GET", "/compliance", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["summary"]["resources"], 1, "{}", r.body);
    assert_eq!(r.body["resources"][0]["resource_id"], "orders", "{}", r.body);
    assert_eq!(r.body["resources"][0]["rpo"][0]["state"], "unverified", "{}", r.body);
    let r = w
        .call_q(Some(VIEWER), "GET", "/compliance", &[("period", "7days")], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = w
        .call_q(Some(VIEWER), "GET", "/compliance", &[("period", "5s")], None)
        .await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (400, Some("period")));
    let r = w.call(Some(VIEWER), "GET", "/metrics", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["recovery_points"]["total"], 1, "{}", r.body);
    assert!(r.body["storage"]["total_usd"].is_string());
    assert_eq!(w.call(Some(STRANGER), "GET", "/metrics", None).await.status, 403);
}

#[tokio::test]
async fn strangers_get_403_before_any_route_is_matched() {
    let w = World::new();
    for who in [None, Some(STRANGER)] {
        for (method, path) in [
            ("GET", "/nope"),
            ("DELETE", "/policies/gold"),
            ("DELETE", "/audit"),
            ("GET", "/resources"),
            ("POST", "/restores"),
        ] {
            let r = w.call(who, method, path, None).await;
            assert_eq!(r.status, 403, "{who:?} {method} {path}: {}", r.body);
            assert!(r.is_problem());
            assert_eq!(r.header("allow"), None, "no route map for strangers");
            assert!(!r.body.to_string().contains("route"), "{}", r.body);
        }
    }
    // A stranger's attempt to change something is on record, as refused.
    let refused: Vec<_> = w.audit.records().into_iter().filter(|r| r.role == "none").collect();
    assert!(
        refused.iter().any(|r| r.method == "POST" && r.status == Some(403)),
        "{refused:#?}"
    );
}

#[tokio::test]
async fn a_foreign_event_is_answered_invalid_never_with_a_runtime_error() {
    let w = World::new();
    for payload in [
        json!({"scheduledTime": "2026-11-23T18:15:00Z", "scheduleArn": "arn:aws:scheduler:us-east-1:1:schedule/default/x"}),
        json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-23T18:15:00Z"}),
        json!([1, 2]),
        json!("GET /resources"),
        json!(null),
    ] {
        let err = admin_api::handle_event(&w.deps, lifeboat_testkit::event(payload.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.kind, lifeboat::ErrorType::Invalid, "{payload}: {err}");
    }
    assert!(w.audit.records().is_empty());
    // The same entry point answers real requests in the proxy response shape.
    w.fakes
        .add_db(lifeboat_domain::ResourceKind::RdsInstance, "orders", "gold");
    for sample in ["get-resources-viewer.json", "function-url-get-recovery-points.json"] {
        let answer = admin_api::handle_event(&w.deps, lifeboat_testkit::event(event_file(sample)))
            .await
            .unwrap();
        assert_eq!(answer["statusCode"], 200, "{sample}: {answer}");
        assert_eq!(answer["headers"]["content-type"], "application/json");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert!(body["items"].is_array(), "{body}");
    }
}
