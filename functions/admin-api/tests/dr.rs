//! `POST /dr/executions`, `GET /dr/executions?plan=`, `GET /dr/executions/{plan}/{execution}`
//! and `GET /dr/plans`
//! over in-memory fakes: roles, the confirmation token of failovers and failbacks, refusals.
//! The state machine itself runs on the local stack in `tests/tests/admin_api.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{ADMIN, ADMIN2, DR_STATE_MACHINE, OPERATOR, VIEWER, World};
use lifeboat_domain::dr::{DrExecution, DrPlan, ExecStatus, Mode};
use lifeboat_ports::dr::DrStore;
use serde_json::json;

const PLAN: &str = r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
    "databases": [{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}], "rto": "30m", "rpo": "15m",
    "network": {"allow_default_network": true}}"#;

async fn world() -> World {
    let w = World::new();
    w.dr.put_plan(&DrPlan::from_json(PLAN).unwrap()).await.unwrap();
    w
}

fn body(plan: &str, mode: &str, token: Option<&str>) -> String {
    match token {
        Some(t) => json!({"plan": plan, "mode": mode, "token": t}),
        None => json!({"plan": plan, "mode": mode}),
    }
    .to_string()
}

#[tokio::test]
async fn an_operator_starts_a_drill_and_a_viewer_cannot() {
    let w = world().await;
    let r = w
        .call(
            Some(VIEWER),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "drill", None)),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = w
        .call(
            Some(OPERATOR),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "drill", None)),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let started = w.starter.started.lock().unwrap().clone();
    assert_eq!(started.len(), 1);
    let (machine, name, input) = &started[0];
    assert_eq!(machine, DR_STATE_MACHINE);
    assert_eq!(r.body["execution"], name.as_str());
    assert!(name.starts_with("orders-dr-drill-") && name.len() <= 80, "{name}");
    assert_eq!(input, &json!({"plan": "orders-dr", "mode": "drill", "execution": name}));
    assert_eq!(r.body["links"]["self"], format!("/dr/executions/orders-dr/{name}"));
}

#[tokio::test]
async fn a_failover_needs_an_admin_and_a_token_for_this_plan_mode_and_caller() {
    let w = world().await;
    let failover = body("orders-dr", "failover", None);
    let r = w.call(Some(OPERATOR), "POST", "/dr/executions", Some(&failover)).await;
    assert_eq!(r.status, 403, "an operator may drill, not fail over: {}", r.body);

    // First call: a preview and a token, nothing started.
    let r = w.call(Some(ADMIN), "POST", "/dr/executions", Some(&failover)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["preview"]["dr_region"], "us-west-2");
    assert_eq!(r.body["preview"]["databases"][0]["id"], "orders");
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert!(w.starter.started.lock().unwrap().is_empty());

    // A failback while production runs on the source side: refused for that reason,
    // before any token is looked at or issued.
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "failback", Some(&token))),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.body["title"], "The plan's site does not allow this mode",
        "{}",
        r.body
    );
    // Another admin's token, or garbage: refused, nothing started.
    let r = w
        .call(
            Some(ADMIN2),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "failover", Some(&token))),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "failover", Some("x.y"))),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(w.starter.started.lock().unwrap().is_empty());

    // With its token: started, the token passed on for the pre-check to verify and consume.
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "failover", Some(&token))),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let started = w.starter.started.lock().unwrap().clone();
    let (_, _, input) = &started[0];
    assert_eq!(input["mode"], "failover");
    assert!(
        input.get("principal").is_none(),
        "who confirmed travels inside the signed token, not beside it: {input}"
    );
    assert_eq!(input["token"], token.as_str());
    assert!(input["failure_time"].is_string());
}

#[tokio::test]
async fn a_running_execution_unknown_plans_and_bad_requests_are_refused() {
    let w = world().await;
    let plan = DrPlan::from_json(PLAN).unwrap();
    let now = "2026-11-23T03:00:00Z".parse().unwrap();
    let running = DrExecution::new(&plan, "orders-dr-drill-1", Mode::Drill, now, now);
    assert_eq!(running.status, ExecStatus::Running);
    w.dr.insert_execution(&running).await.unwrap();
    let r = w
        .call(
            Some(OPERATOR),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "drill", None)),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = w
        .call(
            Some(OPERATOR),
            "POST",
            "/dr/executions",
            Some(&body("nope", "drill", None)),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = w
        .call(
            Some(OPERATOR),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "panic", None)),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errors"][0]["field"], "mode");
    let r = w
        .call(
            Some(OPERATOR),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "drill", Some("t"))),
        )
        .await;
    assert_eq!(r.status, 400, "a drill takes no token: {}", r.body);
    assert!(w.starter.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn executions_are_listed_newest_first_and_read_one_by_one() {
    let w = world().await;
    let plan = DrPlan::from_json(PLAN).unwrap();
    for (i, at) in ["2026-11-20T03:00:00Z", "2026-11-22T03:00:00Z"].iter().enumerate() {
        let t = at.parse().unwrap();
        let mut e = DrExecution::new(&plan, &format!("orders-dr-drill-{i}"), Mode::Drill, t, t);
        e.status = ExecStatus::Succeeded;
        e.token_nonce = Some("secret-nonce".into());
        w.dr.insert_execution(&e).await.unwrap();
    }
    let r = w
        .call_q(Some(VIEWER), "GET", "/dr/executions", &[("plan", "orders-dr")], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["items"][0]["execution"], "orders-dr-drill-1");
    assert!(r.body["items"][0].get("token_nonce").is_none());
    let r = w
        .call(Some(VIEWER), "GET", "/dr/executions/orders-dr/orders-dr-drill-0", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "succeeded");
    let report = w
        .call(
            Some(VIEWER),
            "GET",
            "/dr/executions/orders-dr/orders-dr-drill-0/report",
            None,
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(
        (report.body["execution"].as_str(), report.body["status"].as_str()),
        (Some("orders-dr-drill-0"), Some("succeeded"))
    );
    assert!(report.body.get("token_nonce").is_none(), "{}", report.body);
    assert_eq!(
        w.call(Some(VIEWER), "GET", "/dr/executions/orders-dr/none/report", None)
            .await
            .status,
        404
    );
    assert_eq!(
        w.call(Some(VIEWER), "GET", "/dr/executions/orders-dr/none", None)
            .await
            .status,
        404
    );
    assert_eq!(w.call(Some(VIEWER), "GET", "/dr/executions", None).await.status, 400);
}

#[tokio::test]
async fn plans_are_listed_with_targets_and_their_newest_drill() {
    let w = world().await;
    w.dr.put_raw_plan("broken", r#"{"name": "broken", "rto": "soon"}"#);
    let plan = DrPlan::from_json(PLAN).unwrap();
    let runs = [
        ("orders-dr-drill-0", Mode::Drill, "2026-11-20T03:00:00Z"),
        ("orders-dr-failover-1", Mode::Failover, "2026-11-21T03:00:00Z"),
        ("orders-dr-drill-2", Mode::Drill, "2026-11-19T03:00:00Z"),
    ];
    for (name, mode, at) in runs {
        let t = at.parse().unwrap();
        let mut e = DrExecution::new(&plan, name, mode, t, t);
        e.status = ExecStatus::Succeeded;
        e.token_nonce = Some("secret-nonce".into());
        w.dr.insert_execution(&e).await.unwrap();
    }
    let r = w.call(Some(VIEWER), "GET", "/dr/plans", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 2);
    let broken = &r.body["items"][0];
    assert_eq!(
        (broken["name"].as_str(), broken["valid"].as_bool()),
        (Some("broken"), Some(false))
    );
    assert!(!broken["problems"].as_array().unwrap().is_empty(), "{broken}");
    let orders = &r.body["items"][1];
    assert_eq!(orders["name"], "orders-dr");
    assert_eq!(
        (orders["rto_target_s"].as_u64(), orders["rpo_target_s"].as_u64()),
        (Some(1800), Some(900))
    );
    assert_eq!(orders["executions"], 3);
    assert_eq!(orders["last_execution"]["execution"], "orders-dr-failover-1");
    assert_eq!(orders["last_drill"]["execution"], "orders-dr-drill-0");
    assert!(orders["last_drill"].get("token_nonce").is_none());
    assert_eq!(orders["active_side"], "source");
    assert_eq!(orders["databases"], json!(["orders"]));
    // Unknown query parameters are refused, as on every route.
    let r = w.call_q(Some(VIEWER), "GET", "/dr/plans", &[("x", "1")], None).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn a_busy_plan_and_a_mode_its_site_refuses_are_different_errors_and_tokens_stay_bound_to_their_mode() {
    use lifeboat_ports::dr::{ActiveSide, DrStore, Site};
    let w = world().await;
    // Production on the DR side: a failover is refused for that reason (no token issued).
    let site = Site {
        active: ActiveSide::Dr,
        since: crate::common::t("2026-11-23T02:00:00Z"),
        execution: "fo-earlier".into(),
        databases: Vec::new(),
    };
    w.dr.put_site("orders-dr", &site).await.unwrap();
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "failover", None)),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["title"], "The plan's site does not allow this mode");
    assert!(r.body.get("token").is_none());
    // A failback is previewed; a failover's token would not do for it.
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "failback", None)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let failback_token = r.body["token"].as_str().unwrap().to_owned();
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "drill", None)),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    // Now an execution runs: that is its own error, whatever the mode.
    let plan = DrPlan::from_json(PLAN).unwrap();
    let running = lifeboat_domain::dr::DrExecution::new(
        &plan,
        "drill-running",
        lifeboat_domain::dr::Mode::Drill,
        crate::common::t("2026-11-23T02:59:00Z"),
        crate::common::t("2026-11-23T02:59:00Z"),
    );
    w.dr.insert_execution(&running).await.unwrap();
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            "/dr/executions",
            Some(&body("orders-dr", "failback", Some(&failback_token))),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["title"], "Another execution of the plan is running");
}

/// A failover's preview runs run-dr-step's pre-check first: a problem it finds refuses the
/// failover before any token is issued, every problem listed; passed, the preview shows the
/// checks and where each database comes back from.
#[tokio::test]
async fn a_failover_preview_runs_the_precheck_before_any_token() {
    let w = world().await;
    let failover = body("orders-dr", "failover", None);
    *w.invoker.reply.lock().unwrap() = Some(Ok(lifeboat_ports::lambda::Invocation {
        function_error: None,
        payload: json!({"checks": [], "problems": [
            "orders: no verified recovery point in us-west-2",
            "prechecks.kms_key_id: key k is not usable in us-west-2"], "sources": []})
        .to_string()
        .into_bytes(),
    }));
    let r = w.call(Some(ADMIN), "POST", "/dr/executions", Some(&failover)).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["title"], "The pre-check refuses this failover");
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2, "{}", r.body);
    assert!(r.body.get("token").is_none());
    let calls = w.invoker.calls.lock().unwrap().clone();
    assert_eq!(
        calls.last().unwrap(),
        &(
            crate::common::DR_STEP_FUNCTION.to_owned(),
            json!({"preview": {"plan": "orders-dr", "mode": "failover"}})
        )
    );

    let r = w.call(Some(ADMIN), "POST", "/dr/executions", Some(&failover)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["preview"]["sources"][0]["database"], "orders", "{}", r.body);
    assert!(
        r.body["preview"]["checks"][0]
            .as_str()
            .unwrap()
            .contains("verified recovery point")
    );
    assert!(r.body["token"].is_string());
    assert!(w.starter.started.lock().unwrap().is_empty());
}
