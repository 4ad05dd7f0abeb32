//! Behaviour of `copy-snapshots` through its Lambda entry point, against the in-memory
//! fakes: the per-region budget, criticality order, one copy per resource, KMS keys as
//! configuration, and the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::Duration;

use chrono::{DateTime, Utc};
use copy_snapshots::{Deps, LEASE, handle};
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::naming::tags;
use lifeboat_domain::{AlertKind, PolicyName, RecoveryPoint, Region, ResourceKind, Severity, Slot, Status, Step};
use lifeboat_ports::{Catalog, PortError, SnapshotStatus, SnapshotStore, Tag, tag_value};
use lifeboat_testkit::{Fakes, SnapshotOp, event_json};

const GOLD: &str =
    r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,"priority":1,"copies":[{"region":"us-west-2"}]}"#;
const BRONZE: &str =
    r#"{"name":"bronze","every":"1h","rpo":"4h","retain":24,"priority":9,"copies":[{"region":"us-west-2"}]}"#;
const TICK: &str = include_str!("../../../events/copy-snapshots/scheduler-tick.json");

fn now() -> DateTime<Utc> {
    "2026-11-23T18:20:00Z".parse().unwrap()
}

fn region(r: &str) -> Region {
    Region::parse(r).unwrap()
}

fn setup(policies: &[(&str, &str)]) -> (Fakes, Deps) {
    let fakes = Fakes::new(now());
    for (name, json) in policies {
        fakes.catalog.put_policy_json(name, json);
    }
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
    };
    (fakes, deps)
}

/// A source snapshot of `db` (made `hours_ago`), present in the store and the catalog.
async fn source(fakes: &Fakes, db: &str, policy: &str, hours_ago: i64) -> RecoveryPoint {
    let resource = fakes.add_db(ResourceKind::RdsInstance, db, policy);
    let at = now() - chrono::Duration::hours(hours_ago);
    let slot = Slot::containing(at, Duration::from_hours(1));
    let name = format!("lb-{policy}-{db}-{}", slot.compact());
    let tags = vec![
        Tag::new(tags::CREATED_BY, tags::CREATED_BY_VALUE),
        Tag::new(tags::POLICY, policy),
        Tag::new(tags::SLOT, slot.compact()),
    ];
    let snap = match fakes.snapshots.create_snapshot(&resource, &name, &tags).await {
        Ok(s) => s,
        Err(PortError::AlreadyExists(_)) => fakes
            .snapshots
            .describe_snapshot(&resource.region, resource.kind, &name)
            .await
            .unwrap()
            .unwrap(),
        Err(e) => panic!("{e}"),
    };
    let rp = RecoveryPoint {
        snapshot_arn: snap.arn,
        ..RecoveryPoint::new(
            &resource,
            &PolicyName::parse(policy).unwrap(),
            slot,
            &resource.region,
            &name,
            Status::Available,
            at,
        )
    };
    fakes.catalog.insert(&rp).await.unwrap();
    rp
}

fn point(fakes: &Fakes, id: &str) -> RecoveryPoint {
    fakes
        .catalog
        .points()
        .into_iter()
        .find(|p| p.id.as_str() == id)
        .unwrap_or_else(|| panic!("{id} not recorded"))
}

#[tokio::test]
async fn copies_go_to_the_policy_region_with_that_region_key_and_tags() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let src = source(&fakes, "orders", "gold", 1).await;
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.started.len(), 1);
    let copy = point(&fakes, &format!("us-west-2/db/{}", src.snapshot_name));
    assert_eq!(copy.source.as_ref(), Some(&src.id));
    assert_eq!(
        copy.kms_key_id.as_deref(),
        Some("arn:aws:kms:us-west-2:123456789012:key/dr-key")
    );
    assert_eq!(copy.created_at, src.created_at, "a copy holds its source's instant");
    let snap = fakes
        .snapshots
        .snapshots()
        .into_iter()
        .find(|s| s.region == region("us-west-2"))
        .unwrap();
    assert_eq!(tag_value(&snap.tags, tags::COPY_OF), Some(src.id.as_str()));
    assert_eq!(snap.kms_key_id.as_deref(), copy.kms_key_id.as_deref());
    // The copy was available at once, so the source is settled as copied.
    assert_eq!(point(&fakes, src.id.as_str()).status, Status::Copied);
    // A replay finds nothing left to do.
    let again = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(again.started.is_empty() && again.waiting.is_empty());
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Copy), 1);
}

#[tokio::test]
async fn never_more_copies_in_flight_per_region_than_the_budget() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    for i in 0..8 {
        source(&fakes, &format!("db{i}"), "gold", 1).await;
    }
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.started.len(), 5);
    assert_eq!(report.waiting.len(), 3);
    assert!(
        report.waiting.iter().all(|w| w.reason.contains("budget")),
        "{:?}",
        report.waiting
    );
    assert_eq!(report.in_flight[&region("us-west-2")], 5);
    let sources_copying = fakes
        .catalog
        .points()
        .iter()
        .filter(|p| p.status == Status::Copying)
        .count();
    assert_eq!(sources_copying, 5);

    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(report.started.is_empty(), "the budget is still full");
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Copy), 5);

    // Two copies finish (as the tracker would record): two more may start.
    for p in fakes
        .catalog
        .points()
        .into_iter()
        .filter(RecoveryPoint::is_copy)
        .take(2)
    {
        let next = p.transition(Status::Available, now()).unwrap();
        fakes.catalog.update(&next, p.version).await.unwrap();
    }
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.started.len(), 2);
    assert_eq!(report.in_flight[&region("us-west-2")], 5);
}

#[tokio::test]
async fn the_most_critical_then_the_oldest_go_first() {
    let (fakes, mut deps) = setup(&[("gold", GOLD), ("bronze", BRONZE)]);
    deps.config.copy_budget_per_region = 1;
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    source(&fakes, "old-bronze", "bronze", 5).await;
    source(&fakes, "new-gold", "gold", 1).await;
    source(&fakes, "old-gold", "gold", 3).await;
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    let started: Vec<_> = report.started.iter().map(ToString::to_string).collect();
    assert_eq!(started, ["us-west-2/db/lb-gold-old-gold-20261123-1500"]);
    assert_eq!(report.waiting.len(), 2);
}

#[tokio::test]
async fn one_copy_at_a_time_per_source_resource() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    source(&fakes, "orders", "gold", 2).await;
    source(&fakes, "orders", "gold", 1).await;
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.started.len(), 1);
    assert_eq!(report.waiting.len(), 1);
    assert!(
        report.waiting[0].reason.contains("another copy of this resource"),
        "{}",
        report.waiting[0].reason
    );
}

#[tokio::test]
async fn a_missing_kms_key_blocks_the_copy_with_one_alert_never_a_silent_skip() {
    let policy = r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,"copies":[{"region":"eu-west-1"}]}"#;
    let (fakes, deps) = setup(&[("gold", policy)]);
    let src = source(&fakes, "orders", "gold", 1).await;
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(report.started.is_empty());
    assert_eq!(report.blocked.len(), 1);
    assert!(
        report.blocked[0]
            .message
            .contains("no KMS key configured for eu-west-1"),
        "{}",
        report.blocked[0].message
    );
    handle(&deps, event_json(TICK)).await.unwrap();
    let alerts = fakes.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].kind, alerts[0].severity),
        (AlertKind::CopyBlocked, Severity::Critical)
    );
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Copy), 0);
    assert_eq!(
        point(&fakes, src.id.as_str()).status,
        Status::Available,
        "still waiting for a key"
    );
}

#[tokio::test]
async fn a_kms_rejection_is_recorded_and_alerted_once_and_the_source_stays_restorable() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let src = source(&fakes, "orders", "gold", 1).await;
    fakes.snapshots.fail_next(
        SnapshotOp::Copy,
        PortError::KmsKey("KMSKeyNotAccessibleFault: key disabled".into()),
    );
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].code, "kms-key");
    handle(&deps, event_json(TICK)).await.unwrap();
    let copy = point(&fakes, &format!("us-west-2/db/{}", src.snapshot_name));
    assert_eq!(copy.status, Status::Failed);
    assert_eq!(copy.failure.as_ref().unwrap().step, Step::Copy);
    let source_now = point(&fakes, src.id.as_str());
    assert_eq!(source_now.status, Status::Failed);
    assert!(source_now.is_restorable(), "the primary snapshot itself is fine");
    let alerts = fakes.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::CopyFailed);
    assert_eq!(
        alerts[0].details["kms_key_id"],
        "arn:aws:kms:us-west-2:123456789012:key/dr-key"
    );
    assert_eq!(
        fakes.snapshots.calls(SnapshotOp::Copy),
        1,
        "no blind retry of a rejected copy"
    );
}

#[tokio::test]
async fn a_quota_refusal_waits_with_one_alert_and_the_next_run_copies() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    source(&fakes, "orders", "gold", 1).await;
    source(&fakes, "billing", "gold", 1).await;
    fakes.snapshots.fail_next(
        SnapshotOp::Copy,
        PortError::QuotaExceeded("SnapshotQuotaExceeded".into()),
    );
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(
        report.started.is_empty(),
        "after a region refuses, no more copies go there this run"
    );
    assert_eq!(report.waiting.len(), 2);
    assert!(
        fakes.catalog.points().iter().all(|p| !p.is_copy()),
        "nothing recorded for a refused copy"
    );
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.started.len(), 2);
    let alerts = fakes.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].kind, alerts[0].severity),
        (AlertKind::CopyBlocked, Severity::Warning)
    );
}

#[tokio::test]
async fn a_copy_made_by_a_crashed_run_is_adopted_not_repeated() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let src = source(&fakes, "orders", "gold", 1).await;
    let origin = fakes
        .snapshots
        .describe_snapshot(&src.location, src.resource.kind, &src.snapshot_name)
        .await
        .unwrap()
        .unwrap();
    fakes
        .snapshots
        .copy_snapshot(&origin, &region("us-west-2"), &src.snapshot_name, "alias/dr", &[])
        .await
        .unwrap();
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.adopted.len(), 1);
    assert!(report.started.is_empty());
    assert_eq!(fakes.snapshots.snapshots().len(), 2);
    assert!(point(&fakes, &format!("us-west-2/db/{}", src.snapshot_name)).adopted);
}

#[tokio::test]
async fn a_run_that_finds_the_lease_held_does_nothing() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    source(&fakes, "orders", "gold", 1).await;
    assert!(
        fakes
            .catalog
            .acquire_lease(LEASE, "other-run", now() + chrono::Duration::minutes(5), now())
            .await
            .unwrap()
    );
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(report.skipped.is_some());
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Copy), 0);
    // Once the holder's lease expires, the next run proceeds.
    fakes.clock.advance(chrono::Duration::minutes(6));
    assert_eq!(handle(&deps, event_json(TICK)).await.unwrap().started.len(), 1);
}

#[tokio::test]
async fn a_non_object_event_is_invalid_and_touches_nothing() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let err: FunctionError = handle(
        &deps,
        event_json(include_str!("../../../events/copy-snapshots/wrong-type.json")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("a string"), "{}", err.message);
    assert_eq!(fakes.catalog.calls(), 0);
    assert_eq!(fakes.snapshots.total_calls(), 0);
}

#[tokio::test]
async fn copies_of_a_policy_inside_its_criticality_window_go_first() {
    let sale = r#"{"name":"shop","every":"1h","rpo":"4h","retain":24,"priority":9,"copies":[{"region":"us-west-2"}],
        "windows":[{"name":"sale","from":"2026-11-23T00:00:00Z","to":"2026-11-24T00:00:00Z"}]}"#;
    let (fakes, mut deps) = setup(&[("gold", GOLD), ("shop", sale)]);
    deps.config.copy_budget_per_region = 1;
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    source(&fakes, "ledger", "gold", 5).await;
    source(&fakes, "cart", "shop", 1).await;
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    let started: Vec<_> = report.started.iter().map(ToString::to_string).collect();
    assert_eq!(
        started,
        ["us-west-2/db/lb-shop-cart-20261123-1700"],
        "the window beats priority 1 and age"
    );
}

#[tokio::test]
async fn under_contention_a_copy_without_which_the_rpo_is_missed_beats_priority() {
    let (fakes, mut deps) = setup(&[("gold", GOLD), ("bronze", BRONZE)]);
    deps.config.copy_budget_per_region = 1;
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    // "steady" (priority 1) already has a fresh copy in us-west-2; "lagging" (priority 9)
    // has none, so its RPO there is missed unless it goes now.
    let steady = source(&fakes, "steady", "gold", 1).await;
    let fresh = RecoveryPoint {
        source: Some(lifeboat_domain::RecoveryPointId::new(
            &region("us-east-1"),
            ResourceKind::RdsInstance,
            "lb-gold-steady-20261123-1600",
        )),
        ..RecoveryPoint::new(
            &steady.resource,
            &steady.policy,
            steady.slot,
            &region("us-west-2"),
            "lb-gold-steady-20261123-1600",
            Status::Available,
            now() - chrono::Duration::minutes(30),
        )
    };
    assert!(fresh.is_copy());
    fakes.catalog.insert(&fresh).await.unwrap();
    source(&fakes, "lagging", "bronze", 1).await;
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    let started: Vec<_> = report.started.iter().map(ToString::to_string).collect();
    assert_eq!(started, ["us-west-2/db/lb-bronze-lagging-20261123-1700"]);
    assert_eq!(report.waiting.len(), 1);
}

#[tokio::test]
async fn under_contention_a_window_in_a_resource_tag_goes_first() {
    let (fakes, mut deps) = setup(&[("gold", GOLD), ("bronze", BRONZE)]);
    deps.config.copy_budget_per_region = 1;
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    source(&fakes, "ledger", "gold", 3).await;
    let cart = source(&fakes, "cart", "bronze", 1).await;
    // Tag "cart" with a criticality window open now.
    fakes.snapshots.add_resource(
        cart.resource.clone(),
        vec![
            Tag::new(lifeboat::config::DEFAULT_POLICY_TAG_KEY, "bronze"),
            Tag::new(
                lifeboat::app::CRITICAL_WINDOW_TAG,
                "2026-11-23T00:00:00Z/2026-11-24T00:00:00Z",
            ),
        ],
    );
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    let started: Vec<_> = report.started.iter().map(ToString::to_string).collect();
    assert_eq!(started, ["us-west-2/db/lb-bronze-cart-20261123-1700"]);
}
