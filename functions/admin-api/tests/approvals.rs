//! Two-person approval over in-memory fakes: an overwrite restore, a failover and a
//! weakening policy change wait in `pending-approval` until a second admin the rule names
//! approves; only then does the requester get one token, which carries the approval.
//! Refused: self-approval (also from another session of the same role), an approver the
//! rule does not name, one without the admin role, an expired request, a second token.
//! The same flow runs through the CLI and the local HTTP API in `tests/tests/cli.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use lifeboat_domain::Status;
use lifeboat_domain::confirm::{self, SigningKey};
use lifeboat_domain::dr::DrPlan;
use lifeboat_ports::dr::DrStore;
use serde_json::{Value, json};

use crate::common::{ADMIN, ADMIN2, APPROVER, OPERATOR, Reply, VIEWER, World, rest_event, us_east_1};

const APPROVAL: &str = r#""approval": {"required": true, "expires": "4h",
    "approvers": ["arn:aws:iam::123456789012:user/approver-", "arn:aws:sts::123456789012:assumed-role/LifeboatOperator/",
                  "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/"]}"#;

fn gold(retention: &str) -> String {
    format!(r#"{{"name": "gold", "every": "1h", "rpo": "2h", "retention": {retention}, {APPROVAL}}}"#)
}

async fn act(w: &World, who: &str, id: &str, what: &str, body: Option<&str>) -> Reply {
    w.call(Some(who), "POST", &format!("/approvals/{id}/{what}"), body)
        .await
}

fn id_of(r: &Reply) -> String {
    r.body["approval"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_overwrite_restore_waits_for_a_second_admin_and_the_requester_gets_one_token() {
    let w = World::new();
    w.fakes.catalog.put_policy_json("gold", &gold(r#"{"last": 7}"#));
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    w.rds.add_instance(&us_east_1(), "reporting");
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            "/restores",
            Some(&json!({"recoveryPoint": rp.id, "target": "reporting", "overwrite": true}).to_string()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(
        r.body.get("confirmationToken").is_none(),
        "no token before approval: {}",
        r.body
    );
    assert_eq!(r.body["approval"]["state"], "pending-approval");
    assert_eq!(r.body["approval"]["subject"]["kind"], "overwrite-restore");
    let restore = r.body["restore"]["id"].as_str().unwrap().to_owned();
    let id = id_of(&r);
    assert_eq!(r.body["restore"]["approval"], id.as_str());

    // Listed for approvers.
    let r = w
        .call_q(
            Some(VIEWER),
            "GET",
            "/approvals",
            &[("state", "pending-approval")],
            None,
        )
        .await;
    assert_eq!((r.status, r.body["total"].as_u64()), (200, Some(1)), "{}", r.body);

    // Refused: the requester, another session of the requester's role, an approver without
    // the admin role, a viewer; no token while pending.
    for (who, status, needle) in [
        (ADMIN, 403, "second person"),
        (ADMIN2, 403, "second person"),
        (OPERATOR, 403, "admin role"),
        (VIEWER, 403, "operator role"),
    ] {
        let r = act(&w, who, &id, "approve", None).await;
        assert_eq!(r.status, status, "{who}: {}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains(needle), "{who}: {}", r.body);
    }
    let r = act(&w, ADMIN, &id, "token", None).await;
    assert_eq!(r.status, 409, "{}", r.body);

    // A token made without the approval (a preview's kind) does not confirm it.
    let key = SigningKey::new(vec![42; 32]).unwrap();
    let record = w.restores.all().into_iter().find(|x| x.id == restore).unwrap();
    let (forged, _) = confirm::issue(
        &key,
        &record.request_digest,
        ADMIN,
        w.deps.now(),
        Duration::minutes(5),
        "n-1",
    )
    .unwrap();
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            &format!("/restores/{restore}/confirm"),
            Some(&json!({"token": forged}).to_string()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["title"], "Approval required");
    assert!(w.rds.calls().is_empty(), "nothing touched RDS");

    // The second admin approves; only the requester gets the token, once.
    let r = act(&w, APPROVER, &id, "approve", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["state"].as_str(), r.body["decidedBy"].as_str()),
        (Some("approved"), Some(APPROVER))
    );
    let r = act(&w, APPROVER, &id, "token", None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = act(&w, ADMIN, &id, "token", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert!(r.body["confirm"].as_str().unwrap().contains(&restore));
    let again = act(&w, ADMIN, &id, "token", None).await;
    assert_eq!(again.status, 409, "{}", again.body);

    let r = w
        .call(
            Some(ADMIN),
            "POST",
            &format!("/restores/{restore}/confirm"),
            Some(&json!({"token": token}).to_string()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["restore"]["state"], "preserving-original");

    // Both acts are on the audit trail, with who did them.
    let audited: Vec<(String, String)> = w
        .audit
        .records()
        .into_iter()
        .filter(|a| a.phase == "answered" && a.route.starts_with("/approvals/"))
        .map(|a| (a.route, a.principal))
        .collect();
    assert!(
        audited.contains(&("/approvals/{id}/approve".into(), APPROVER.into())),
        "{audited:?}"
    );
    assert!(
        audited.contains(&("/approvals/{id}/token".into(), ADMIN.into())),
        "{audited:?}"
    );
}

#[tokio::test]
async fn a_restore_of_a_policy_without_approval_and_a_new_instance_restore_need_none() {
    let w = World::new();
    w.fakes
        .catalog
        .put_policy_json("gold", r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 7}"#);
    let rp = w.add_point("orders", "2026-11-22T01:00:00Z", Status::Available).await;
    w.rds.add_instance(&us_east_1(), "reporting");
    let body = json!({"recoveryPoint": rp.id, "target": "reporting", "overwrite": true}).to_string();
    let r = w.call(Some(ADMIN), "POST", "/restores", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["confirmationToken"].is_string());

    w.fakes.catalog.put_policy_json("gold", &gold(r#"{"last": 7}"#));
    let body = json!({"recoveryPoint": rp.id, "target": "orders-copy"}).to_string();
    let r = w.call(Some(OPERATOR), "POST", "/restores", Some(&body)).await;
    assert_eq!(
        r.status, 201,
        "a restore into a new instance overwrites nothing: {}",
        r.body
    );
}

#[tokio::test]
async fn an_expired_request_is_refused_and_a_denied_one_gets_no_token() {
    let w = World::new();
    w.dr.put_plan(&DrPlan::from_json(&plan()).unwrap()).await.unwrap();
    let failover = json!({"plan": "orders-dr", "mode": "failover"}).to_string();
    let first = w.call(Some(ADMIN), "POST", "/dr/executions", Some(&failover)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = w.call(Some(ADMIN), "POST", "/dr/executions", Some(&failover)).await;

    // Denied, with its reason (required).
    let r = act(&w, APPROVER, &id_of(&second), "deny", Some("{}")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = act(
        &w,
        APPROVER,
        &id_of(&second),
        "deny",
        Some(r#"{"reason": "not during the sale"}"#),
    )
    .await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("denied")),
        "{}",
        r.body
    );
    let r = act(&w, ADMIN, &id_of(&second), "token", None).await;
    assert_eq!(r.status, 409, "{}", r.body);

    // Past its expiry (4h): listed as expired, and approving it is refused.
    w.fakes.clock.advance(Duration::hours(5));
    let r = w
        .call_q(Some(VIEWER), "GET", "/approvals", &[("state", "expired")], None)
        .await;
    assert_eq!(r.body["items"][0]["id"], id_of(&first).as_str(), "{}", r.body);
    let r = act(&w, APPROVER, &id_of(&first), "approve", None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"), "{}", r.body);
    assert!(w.starter.started.lock().unwrap().is_empty());
}

fn plan() -> String {
    format!(
        r#"{{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
        "databases": [{{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}}], "rto": "30m", "rpo": "15m",
        "network": {{"allow_default_network": true}}, {APPROVAL}}}"#
    )
}

#[tokio::test]
async fn a_failover_of_a_plan_requiring_approval_starts_only_with_the_approved_token() {
    let w = World::new();
    w.dr.put_plan(&DrPlan::from_json(&plan()).unwrap()).await.unwrap();
    let failover = json!({"plan": "orders-dr", "mode": "failover"}).to_string();
    let r = w.call(Some(ADMIN), "POST", "/dr/executions", Some(&failover)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("token").is_none(), "{}", r.body);
    assert_eq!(r.body["preview"]["approval_required"], true);
    let id = id_of(&r);

    // A token issued the old way (no approval) is refused before anything starts.
    let key = SigningKey::new(vec![42; 32]).unwrap();
    let digest = confirm::dr_request_digest(&DrPlan::from_json(&plan()).unwrap(), "failover").unwrap();
    let (plain, _) = confirm::issue(&key, &digest, ADMIN, w.deps.now(), Duration::minutes(5), "n-2").unwrap();
    let with = |t: &str| json!({"plan": "orders-dr", "mode": "failover", "token": t}).to_string();
    let r = w.call(Some(ADMIN), "POST", "/dr/executions", Some(&with(&plain))).await;
    assert_eq!(
        (r.status, r.body["title"].as_str()),
        (403, Some("Approval required")),
        "{}",
        r.body
    );

    assert_eq!(act(&w, APPROVER, &id, "approve", None).await.status, 200);
    let r = act(&w, ADMIN, &id, "token", None).await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    let r = w.call(Some(ADMIN), "POST", "/dr/executions", Some(&with(&token))).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let started = w.starter.started.lock().unwrap().clone();
    assert_eq!(started.len(), 1);
    assert_eq!(
        started[0].2["token"],
        token.as_str(),
        "the pre-check verifies the same token"
    );
}

/// `PUT /policies/gold` with the `Lifeboat-Confirmation` header.
async fn put(w: &World, who: &str, doc: &str, token: Option<&str>) -> Reply {
    let mut event = rest_event(Some(who), "PUT", "/policies/gold", &[], Some(doc));
    if let Some(t) = token {
        event["headers"]["lifeboat-confirmation"] = json!(t);
    }
    w.send(&event).await
}

async fn stored(w: &World) -> Value {
    let r = w.call(Some(VIEWER), "GET", "/policies/gold", None).await;
    r.body["document"].clone()
}

#[tokio::test]
async fn a_policy_change_that_weakens_waits_and_one_that_strengthens_does_not() {
    let w = World::new();
    let r = put(&w, ADMIN, &gold(r#"{"last": 7, "daily": 30}"#), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Stronger: at once.
    let r = put(&w, ADMIN, &gold(r#"{"last": 14, "daily": 30}"#), None).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Shorter retention: waits, nothing stored.
    let weaker = gold(r#"{"last": 14, "daily": 7}"#);
    let r = put(&w, ADMIN, &weaker, None).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let changes = r.body["approval"]["subject"]["changes"].to_string();
    assert!(changes.contains("retention.daily: 30 → 7"), "{changes}");
    assert_eq!(stored(&w).await["retention"]["daily"], 30);
    let id = id_of(&r);

    // Dropping the approval rule itself is a weakening too.
    let r = put(
        &w,
        ADMIN,
        r#"{"name": "gold", "every": "1h", "rpo": "2h", "retention": {"last": 14, "daily": 30}}"#,
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(
        r.body["approval"]["summary"]
            .as_str()
            .unwrap()
            .contains("no longer required")
    );

    assert_eq!(act(&w, APPROVER, &id, "approve", None).await.status, 200);
    let token = act(&w, ADMIN, &id, "token", None).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The token confirms that document only.
    let r = put(&w, ADMIN, &gold(r#"{"last": 14, "daily": 1}"#), Some(&token)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A stale If-Match is refused before the token is looked at: it is not spent.
    let mut event = rest_event(Some(ADMIN), "PUT", "/policies/gold", &[], Some(&weaker));
    event["headers"]["lifeboat-confirmation"] = json!(token);
    event["headers"]["if-match"] = json!("\"stale\"");
    assert_eq!(w.send(&event).await.status, 412);
    let r = put(&w, ADMIN, &weaker, Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stored(&w).await["retention"]["daily"], 7);
    // Spent: it cannot carry a second change.
    let r = put(&w, ADMIN, &gold(r#"{"last": 1, "daily": 1}"#), Some(&token)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(stored(&w).await["retention"]["last"], 14);
}

/// `POST /confirmations`: an admin gets a token for one destructive request invoked
/// directly (restore-objects over the original keys, backup-config over the items); other
/// requests and other functions get none.
#[tokio::test]
async fn a_token_for_a_direct_destructive_request_is_issued_to_an_admin_for_that_request_only() {
    let w = World::new();
    let over = json!({"bucket": "photos", "prefix": "2026/", "asOf": "2026-11-23T18:30:00Z",
                      "target": {"bucket": "photos"}, "overwrite": true});
    let ask = |function: &str, request: &Value| json!({"function": function, "request": request}).to_string();
    let r = w
        .call(
            Some(OPERATOR),
            "POST",
            "/confirmations",
            Some(&ask("restore-objects", &over)),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let mut safe = over.clone();
    safe["overwrite"] = json!(false);
    for (function, request) in [("restore-objects", &safe), ("expire-recovery-points", &over)] {
        let r = w
            .call(Some(ADMIN), "POST", "/confirmations", Some(&ask(function, request)))
            .await;
        assert_eq!(r.status, 400, "{function}: {}", r.body);
    }
    let r = w
        .call(
            Some(ADMIN),
            "POST",
            "/confirmations",
            Some(&ask("restore-objects", &over)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(r.body["invoke"]["confirmation"], token);
    let key = SigningKey::new(vec![42; 32]).unwrap();
    let claims = confirm::verify_issued(
        &key,
        token,
        &confirm::invocation_digest("restore-objects", &r.body["invoke"]),
        w.deps.now(),
    )
    .unwrap();
    assert_eq!(claims.principal, ADMIN);
    // Bound to that request: another one does not match.
    assert!(
        confirm::verify_issued(
            &key,
            token,
            &confirm::invocation_digest("restore-objects", &safe),
            w.deps.now()
        )
        .is_err()
    );
}
