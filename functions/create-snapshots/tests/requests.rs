//! On-demand and emergency backups (admin `POST /backups` → a "Backup requested" event),
//! and criticality windows from resource tags, against the in-memory fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use chrono::{DateTime, Utc};
use create_snapshots::{Deps, handle};
use lifeboat::app::CRITICAL_WINDOW_TAG;
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::{Region, ResourceKind, ResourceRef};
use lifeboat_ports::Tag;
use lifeboat_testkit::{Fakes, SnapshotOp, event_for};
use serde_json::{Value, json};

const GOLD: &str =
    r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,"priority":1,"copies":[{"region":"us-west-2"}]}"#;
const REQUEST: &str = include_str!("../../../events/create-snapshots/emergency-request.json");
const TICK: &str = include_str!("../../../events/create-snapshots/scheduler-tick.json");

fn now() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

fn setup() -> (Fakes, Deps) {
    let fakes = Fakes::new(now());
    fakes.catalog.put_policy_json("gold", GOLD);
    fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    fakes.add_db(ResourceKind::RdsInstance, "billing", "gold");
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        runs: create_snapshots::DataRuns::default(),
    };
    (fakes, deps)
}

fn request() -> Value {
    serde_json::from_str(REQUEST).unwrap()
}

#[tokio::test]
async fn an_emergency_request_snapshots_the_named_protected_resources_and_names_the_rest() {
    let (fakes, deps) = setup();
    let report = handle(&deps, event_for(request(), "inv-1")).await.unwrap();
    let created: Vec<_> = report.created.iter().map(ToString::to_string).collect();
    assert_eq!(created, ["us-east-1/db/lb-gold-orders-em-20261123-181500"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].code, "not-protected");
    assert!(report.skipped[0].subject.ends_with(":db:unknown-db"));
    let points = fakes.catalog.points();
    assert_eq!(points.len(), 1, "only the requested resource, not billing");
    assert!(points[0].emergency);
    assert_eq!(
        report.request_id.as_deref(),
        Some("4b7e2f0c-6a0e-4c1e-9d55-0c1d2e3f4a5b")
    );
}

#[tokio::test]
async fn a_replayed_request_does_nothing_twice_even_without_a_request_time() {
    let (fakes, deps) = setup();
    let mut req = request();
    req.as_object_mut().unwrap().remove("time");
    let first = handle(&deps, event_for(req.clone(), "inv-1")).await.unwrap();
    assert_eq!(first.created.len(), 1);
    // A minute later (another name would be derived from the clock): still nothing new.
    fakes.clock.advance(chrono::Duration::minutes(1));
    let again = handle(&deps, event_for(req, "inv-2")).await.unwrap();
    assert!(again.replayed && again.created.is_empty());
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Create), 1);
    assert_eq!(fakes.catalog.points().len(), 1);
}

#[tokio::test]
async fn an_on_demand_request_is_not_an_emergency() {
    let (fakes, deps) = setup();
    let mut req = request();
    req["detail"]["emergency"] = json!(false);
    req["detail"]["requestId"] = json!("on-demand-1");
    let report = handle(&deps, event_for(req, "inv-1")).await.unwrap();
    assert_eq!(
        report.created[0].to_string(),
        "us-east-1/db/lb-gold-orders-od-20261123-181500"
    );
    assert!(!fakes.catalog.points()[0].emergency);
}

#[tokio::test]
async fn a_request_for_only_unprotected_resources_is_not_found_and_a_bad_one_is_invalid() {
    let (fakes, deps) = setup();
    let mut req = request();
    req["detail"]["resources"] = json!(["arn:aws:rds:us-east-1:123456789012:db:nope"]);
    let err: FunctionError = handle(&deps, event_for(req, "inv-1")).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::NotFound);
    assert!(err.message.contains("db:nope"));

    let mut bad = request();
    bad["detail"]["resources"] = json!([]);
    bad["detail"]["reason"] = json!("");
    let err = handle(&deps, event_for(bad, "inv-2")).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("at least one") && err.message.contains("detail.reason"));
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Create), 0);
}

#[tokio::test]
async fn a_failed_request_can_be_retried_and_then_completes_once() {
    let (fakes, deps) = setup();
    fakes.snapshots.fail_next(
        SnapshotOp::Create,
        lifeboat_ports::PortError::Throttled("Throttling".into()),
    );
    let err = handle(&deps, event_for(request(), "inv-1")).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    let retry = handle(&deps, event_for(request(), "inv-2")).await.unwrap();
    assert_eq!(retry.created.len(), 1);
    assert!(!retry.replayed);
    let third = handle(&deps, event_for(request(), "inv-3")).await.unwrap();
    assert!(third.replayed);
    assert_eq!(fakes.catalog.points().len(), 1);
}

#[tokio::test]
async fn a_critical_window_tag_raises_the_schedule_of_that_resource_only() {
    // gold runs hourly; "ledger" carries a window tag whose rule is the policy's window
    // rule (every 15 min by default) while open.
    let fakes = Fakes::new(now());
    fakes.catalog.put_policy_json(
        "gold",
        r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,
            "window_rule":{"every":"15m","rpo":"15m"}}"#,
    );
    fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let ledger = ResourceRef {
        kind: ResourceKind::RdsInstance,
        id: "ledger".into(),
        arn: "arn:aws:rds:us-east-1:123456789012:db:ledger".into(),
        region: Region::parse("us-east-1").unwrap(),
    };
    fakes.snapshots.add_resource(
        ledger,
        vec![
            Tag::new(lifeboat::config::DEFAULT_POLICY_TAG_KEY, "gold"),
            Tag::new(CRITICAL_WINDOW_TAG, "2026-11-23T00:00:00Z/2026-11-24T00:00:00Z"),
        ],
    );
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        runs: create_snapshots::DataRuns::default(),
    };
    let report = handle(&deps, event_for(serde_json::from_str(TICK).unwrap(), "inv-1"))
        .await
        .unwrap();
    let created: Vec<_> = report.created.iter().map(ToString::to_string).collect();
    assert_eq!(
        created,
        [
            "us-east-1/db/lb-gold-ledger-20261123-1815",
            "us-east-1/db/lb-gold-orders-20261123-1800",
        ]
    );
}
