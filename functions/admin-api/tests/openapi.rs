//! The OpenAPI document (infra/api/openapi.json) lists every route of the table, and the
//! answers the handler gives validate against its schemas.
//!
//! The validator below covers the JSON Schema keywords the document uses: `$ref`, `type`
//! (one or several, `null` included), `required`, `properties`, `items`, `enum`,
//! `minItems`, `maxItems`. A keyword it does not know fails the test, so the document
//! cannot silently use more than is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{ADMIN, APPROVER, OPERATOR, Reply, VIEWER, World, us_east_1};
use admin_api::ROUTES;
use lifeboat_domain::Status;
use serde_json::{Value, json};

fn document() -> Value {
    let path = lifeboat_testkit::repo_root().join("infra/api/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.trim_start_matches('#');
            resolve(doc, doc.pointer(ptr).unwrap_or_else(|| panic!("dangling {r}")))
        }
        None => schema,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("unknown type {other}"),
    }
}

fn validate(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    let Some(obj) = schema.as_object() else { return };
    for key in obj.keys() {
        assert!(
            [
                "type",
                "required",
                "properties",
                "items",
                "enum",
                "minItems",
                "maxItems",
                "description"
            ]
            .contains(&key.as_str()),
            "the validator does not check `{key}` (at {at})"
        );
    }
    if let Some(t) = obj.get("type") {
        let ok = match t {
            Value::String(s) => type_ok(s, v),
            Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
            _ => false,
        };
        if !ok {
            errors.push(format!("{at}: {v} is not {t}"));
            return;
        }
    }
    if let Some(Value::Array(options)) = obj.get("enum")
        && !options.contains(v)
    {
        errors.push(format!("{at}: {v} not in {options:?}"));
    }
    if let (Some(Value::Array(req)), Some(m)) = (obj.get("required"), v.as_object()) {
        for r in req {
            if !m.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{at}: missing {r}"));
            }
        }
    }
    if let (Some(Value::Object(props)), Some(m)) = (obj.get("properties"), v.as_object()) {
        for (k, s) in props {
            if let Some(val) = m.get(k) {
                validate(doc, s, val, &format!("{at}.{k}"), errors);
            }
        }
    }
    if let (Some(items), Some(arr)) = (obj.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(doc, items, item, &format!("{at}[{i}]"), errors);
        }
    }
}

/// The response schema for (pattern, method, status), checked against the reply.
fn check(doc: &Value, pattern: &str, method: &str, r: &Reply) {
    let op = &doc["paths"][pattern][method.to_lowercase()];
    assert!(op.is_object(), "{method} {pattern} is not in the OpenAPI document");
    let resp = &op["responses"][r.status.to_string()];
    assert!(
        resp.is_object(),
        "{method} {pattern} answered {} which the document does not list: {}",
        r.status,
        r.body
    );
    let (ct, media) = resp["content"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(ct, &r.content_type, "{method} {pattern} {}", r.status);
    let mut errors = Vec::new();
    validate(doc, &media["schema"], &r.body, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {pattern} {}: {errors:?}\n{}",
        r.status,
        r.body
    );
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut table: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.pattern.to_owned()))
        .collect();
    documented.sort();
    table.sort();
    assert_eq!(documented, table);
}

/// Every route of the table is an API event of the deployed function (template.yaml), and
/// nothing else: a route without its event would be unreachable on AWS.
#[test]
fn every_route_is_an_event_of_the_deployed_function() {
    let path = lifeboat_testkit::repo_root().join("template.yaml");
    let template = std::fs::read_to_string(path).unwrap();
    let start = template.find("\n  AdminApiFunction:").unwrap();
    let block = &template[start..];
    let events = &block[block.find("      Events:").unwrap()..block.find("      Policies:").unwrap()];
    let mut deployed: Vec<(String, String)> = events
        .lines()
        .filter_map(|l| {
            let path = l.split("Path: ").nth(1)?.split(',').next()?.trim().trim_matches('"');
            let method = l.split("Method: ").nth(1)?.trim_end_matches('}').trim();
            Some((method.to_owned(), path.to_owned()))
        })
        .collect();
    let mut table: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.pattern.to_owned()))
        .collect();
    deployed.sort();
    table.sort();
    assert_eq!(deployed, table);
}

#[tokio::test]
async fn answers_validate_against_the_document() {
    let doc = document();
    let w = World::new();
    w.fakes
        .catalog
        .put_policy_json("gold", r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 3}"#);
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    w.add_point("orders", "2026-11-22T02:00:00Z", Status::Available).await;
    w.rds.add_instance(&us_east_1(), "orders");

    check(
        &doc,
        "/resources",
        "GET",
        &w.call(Some(VIEWER), "GET", "/resources", None).await,
    );
    check(
        &doc,
        "/recovery-points",
        "GET",
        &w.call_q(Some(VIEWER), "GET", "/recovery-points", &[("limit", "1")], None)
            .await,
    );
    check(
        &doc,
        "/recovery-points",
        "GET",
        &w.call_q(Some(VIEWER), "GET", "/recovery-points", &[("status", "x")], None)
            .await,
    );
    check(
        &doc,
        "/recovery-points/{id+}",
        "GET",
        &w.call(Some(VIEWER), "GET", &format!("/recovery-points/{}", rp.id), None)
            .await,
    );
    check(
        &doc,
        "/recovery-points/{id+}",
        "GET",
        &w.call(Some(VIEWER), "GET", "/recovery-points/us-east-1/db/none", None)
            .await,
    );
    check(
        &doc,
        "/policies/{name}",
        "GET",
        &w.call(Some(VIEWER), "GET", "/policies/gold", None).await,
    );
    let good = r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 3}"#;
    check(
        &doc,
        "/policies/{name}",
        "PUT",
        &w.call(Some(ADMIN), "PUT", "/policies/gold", Some(good)).await,
    );
    check(
        &doc,
        "/policies/{name}",
        "PUT",
        &w.call(
            Some(ADMIN),
            "PUT",
            "/policies/gold",
            Some(r#"{"name":"gold","rpo":"x"}"#),
        )
        .await,
    );
    check(
        &doc,
        "/policies/{name}",
        "PUT",
        &w.call(Some(VIEWER), "PUT", "/policies/gold", Some(good)).await,
    );
    check(
        &doc,
        "/plans",
        "POST",
        &w.call(Some(VIEWER), "POST", "/plans", Some("{}")).await,
    );
    let backup = json!({"resources": ["arn:aws:rds:us-east-1:123456789012:db:orders"], "reason": "r"}).to_string();
    check(
        &doc,
        "/backups",
        "POST",
        &w.call(Some(OPERATOR), "POST", "/backups", Some(&backup)).await,
    );
    check(
        &doc,
        "/backups",
        "POST",
        &w.call(Some(OPERATOR), "POST", "/backups", Some("[]")).await,
    );

    let preview = w
        .call(
            Some(ADMIN),
            "POST",
            "/restores",
            Some(&json!({"recoveryPoint": rp.id, "target": "orders", "overwrite": true}).to_string()),
        )
        .await;
    check(&doc, "/restores", "POST", &preview);
    let id = preview.body["restore"]["id"].as_str().unwrap();
    let token = preview.body["confirmationToken"].as_str().unwrap();
    check(
        &doc,
        "/restores/{id}",
        "GET",
        &w.call(Some(VIEWER), "GET", &format!("/restores/{id}"), None).await,
    );
    let confirm = w
        .call(
            Some(ADMIN),
            "POST",
            &format!("/restores/{id}/confirm"),
            Some(&json!({"token": token}).to_string()),
        )
        .await;
    check(&doc, "/restores/{id}/confirm", "POST", &confirm);
    check(
        &doc,
        "/restores/{id}",
        "GET",
        &w.call(Some(VIEWER), "GET", &format!("/restores/{id}"), None).await,
    );
    check(
        &doc,
        "/restores/{id}/confirm",
        "POST",
        &w.call(
            Some(ADMIN),
            "POST",
            &format!("/restores/{id}/confirm"),
            Some(&json!({"token": token}).to_string()),
        )
        .await,
    );
    w.rds.settle();
    check(
        &doc,
        "/restores/{id}/advance",
        "POST",
        &w.call(Some(ADMIN), "POST", &format!("/restores/{id}/advance"), Some("{}"))
            .await,
    );
    w.rds.settle();
    check(
        &doc,
        "/restores/{id}/advance",
        "POST",
        &w.call(Some(ADMIN), "POST", &format!("/restores/{id}/advance"), Some("{}"))
            .await,
    );
    check(
        &doc,
        "/restores/{id}",
        "GET",
        &w.call(Some(VIEWER), "GET", &format!("/restores/{id}"), None).await,
    );
    check(
        &doc,
        "/restores/{id}/rollback",
        "POST",
        &w.call(Some(ADMIN), "POST", &format!("/restores/{id}/rollback"), Some("{}"))
            .await,
    );
    check(
        &doc,
        "/restores/{id}/finish",
        "POST",
        &w.call(Some(ADMIN), "POST", &format!("/restores/{id}/finish"), Some("{}"))
            .await,
    );
    check(
        &doc,
        "/audit",
        "GET",
        &w.call_q(Some(ADMIN), "GET", "/audit", &[("limit", "3")], None).await,
    );
    check(
        &doc,
        "/audit",
        "GET",
        &w.call(Some(VIEWER), "GET", "/audit", None).await,
    );
    check(
        &doc,
        "/compliance",
        "GET",
        &w.call(Some(VIEWER), "GET", "/compliance", None).await,
    );
    check(
        &doc,
        "/compliance",
        "GET",
        &w.call_q(Some(VIEWER), "GET", "/compliance", &[("period", "soon")], None)
            .await,
    );
    check(
        &doc,
        "/metrics",
        "GET",
        &w.call(Some(VIEWER), "GET", "/metrics", None).await,
    );
    // DR executions: a drill, a failover's preview and start, the listing and one record.
    lifeboat_ports::dr::DrStore::put_plan(
        w.dr.as_ref(),
        &lifeboat_domain::dr::DrPlan::from_json(
            r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
                "databases": [{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}], "rto": "30m", "rpo": "15m",
                "network": {"allow_default_network": true}}"#,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let drill = json!({"plan": "orders-dr", "mode": "drill"}).to_string();
    check(
        &doc,
        "/dr/executions",
        "POST",
        &w.call(Some(OPERATOR), "POST", "/dr/executions", Some(&drill)).await,
    );
    check(
        &doc,
        "/dr/executions",
        "POST",
        &w.call(Some(VIEWER), "POST", "/dr/executions", Some(&drill)).await,
    );
    let failover = json!({"plan": "orders-dr", "mode": "failover"}).to_string();
    let preview = w.call(Some(ADMIN), "POST", "/dr/executions", Some(&failover)).await;
    check(&doc, "/dr/executions", "POST", &preview);
    let token = preview.body["token"].as_str().unwrap();
    let start = json!({"plan": "orders-dr", "mode": "failover", "token": token}).to_string();
    check(
        &doc,
        "/dr/executions",
        "POST",
        &w.call(Some(ADMIN), "POST", "/dr/executions", Some(&start)).await,
    );
    let now = "2026-11-23T03:00:00Z".parse().unwrap();
    let plan = lifeboat_ports::dr::DrStore::get_plan(w.dr.as_ref(), "orders-dr")
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let exec =
        lifeboat_domain::dr::DrExecution::new(&plan, "orders-dr-drill-1", lifeboat_domain::dr::Mode::Drill, now, now);
    lifeboat_ports::dr::DrStore::insert_execution(w.dr.as_ref(), &exec)
        .await
        .unwrap();
    check(
        &doc,
        "/dr/executions",
        "GET",
        &w.call_q(Some(VIEWER), "GET", "/dr/executions", &[("plan", "orders-dr")], None)
            .await,
    );
    check(
        &doc,
        "/dr/executions/{plan}/{execution}",
        "GET",
        &w.call(Some(VIEWER), "GET", "/dr/executions/orders-dr/orders-dr-drill-1", None)
            .await,
    );
    check(
        &doc,
        "/dr/executions/{plan}/{execution}",
        "GET",
        &w.call(Some(VIEWER), "GET", "/dr/executions/orders-dr/none", None).await,
    );
}

/// The approval routes' answers, and the answers that wait for approval.
#[tokio::test]
async fn approval_answers_validate_against_the_document() {
    let doc = document();
    let w = World::new();
    w.fakes.catalog.put_policy_json(
        "gold",
        r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 3,
            "approval": {"required": true, "approvers": ["arn:aws:iam::123456789012:user/approver-"]}}"#,
    );
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    w.rds.add_instance(&us_east_1(), "orders");
    let body = json!({"recoveryPoint": rp.id, "target": "orders", "overwrite": true}).to_string();
    let r = w.call(Some(ADMIN), "POST", "/restores", Some(&body)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    check(&doc, "/restores", "POST", &r);
    let id = r.body["approval"]["id"].as_str().unwrap().to_owned();
    check(
        &doc,
        "/approvals",
        "GET",
        &w.call(Some(VIEWER), "GET", "/approvals", None).await,
    );
    check(
        &doc,
        "/approvals/{id}",
        "GET",
        &w.call(Some(VIEWER), "GET", &format!("/approvals/{id}"), None).await,
    );
    for (who, what) in [
        (ADMIN, "approve"),
        (APPROVER, "approve"),
        (ADMIN, "token"),
        (ADMIN, "token"),
    ] {
        let path = format!("/approvals/{id}/{what}");
        check(
            &doc,
            &format!("/approvals/{{id}}/{what}"),
            "POST",
            &w.call(Some(who), "POST", &path, None).await,
        );
    }
    check(
        &doc,
        "/approvals/{id}/deny",
        "POST",
        &w.call(Some(APPROVER), "POST", &format!("/approvals/{id}/deny"), Some("{}"))
            .await,
    );
    let weaker = r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 1,
        "approval": {"required": true, "approvers": ["arn:aws:iam::123456789012:user/approver-"]}}"#;
    let r = w.call(Some(ADMIN), "PUT", "/policies/gold", Some(weaker)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    check(&doc, "/policies/{name}", "PUT", &r);
}
