//! The EMF lines one invocation of `track-recovery-points` emits, against the in-memory
//! fakes: backups, copies with their lag, and RPO checks per location.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::metrics::{MemorySink, Metric, validate_emf};
use lifeboat_domain::naming::tags;
use lifeboat_domain::{PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Slot, Status};
use lifeboat_ports::{Catalog, SnapshotStatus, SnapshotStore, Tag};
use lifeboat_testkit::{Fakes, event_json_for};
use serde_json::Value;
use track_recovery_points::{Deps, handle_with};

const GOLD: &str =
    r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,"priority":1,"copies":[{"region":"us-west-2"}]}"#;
const TICK: &str = include_str!("../../../events/track-recovery-points/scheduler-tick.json");

fn tick_time() -> DateTime<Utc> {
    "2026-11-23T18:25:00Z".parse().unwrap()
}

fn event() -> LambdaEvent<Value> {
    event_json_for(TICK, "req-metrics")
}

async fn pending_snapshot(fakes: &Fakes, resource: &ResourceRef, minutes_ago: i64) -> RecoveryPoint {
    let at = tick_time() - chrono::Duration::minutes(minutes_ago);
    let slot = Slot::containing(at, Duration::from_hours(1));
    let name = format!("lb-gold-{}-{}", resource.id, slot.compact());
    let tags = vec![
        Tag::new(tags::CREATED_BY, tags::CREATED_BY_VALUE),
        Tag::new(tags::POLICY, "gold"),
        Tag::new(tags::SLOT, slot.compact()),
    ];
    fakes.snapshots.create_snapshot(resource, &name, &tags).await.unwrap();
    let rp = RecoveryPoint::new(
        resource,
        &PolicyName::parse("gold").unwrap(),
        slot,
        &resource.region,
        &name,
        Status::Pending,
        at,
    );
    fakes.catalog.insert(&rp).await.unwrap();
    rp
}

#[tokio::test]
async fn one_invocation_emits_backup_copy_and_rpo_metrics_as_valid_emf() {
    let fakes = Fakes::new(tick_time());
    fakes.catalog.put_policy_json("gold", GOLD);
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
    };
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let billing = fakes.add_db(ResourceKind::RdsInstance, "billing", "gold");
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    // orders: its snapshot is now available, and a copy taken 20 min ago has arrived.
    let ok = pending_snapshot(&fakes, &orders, 20).await;
    fakes.snapshots.set_status(
        &ok.location,
        ok.resource.kind,
        &ok.snapshot_name,
        SnapshotStatus::Available,
    );
    let west = Region::parse("us-west-2").unwrap();
    let origin = fakes
        .snapshots
        .describe_snapshot(&ok.location, ok.resource.kind, &ok.snapshot_name)
        .await
        .unwrap()
        .unwrap();
    fakes
        .snapshots
        .copy_snapshot(&origin, &west, &ok.snapshot_name, "alias/dr", &[])
        .await
        .unwrap();
    fakes
        .snapshots
        .set_status(&west, ok.resource.kind, &ok.snapshot_name, SnapshotStatus::Available);
    let copy = RecoveryPoint {
        id: RecoveryPointId::new(&west, ok.resource.kind, &ok.snapshot_name),
        location: west.clone(),
        source: Some(ok.id.clone()),
        ..ok.clone()
    };
    fakes.catalog.insert(&copy).await.unwrap();
    // billing: its snapshot failed, so it has nothing in either location.
    let bad = pending_snapshot(&fakes, &billing, 20).await;
    fakes.snapshots.set_status(
        &bad.location,
        bad.resource.kind,
        &bad.snapshot_name,
        SnapshotStatus::Failed,
    );

    let sink = MemorySink::new();
    handle_with(&deps, event(), &sink).await.unwrap();

    let lines = sink.lines();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(validate_emf(line).is_empty(), "{line}: {:?}", validate_emf(line));
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["Function"], "track-recovery-points");
        assert_eq!(v["RunId"], "req-metrics");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Lifeboat");
        assert_eq!(v["_aws"]["Timestamp"], tick_time().timestamp_millis());
    }
    // One line without a location (backups) and one per location (copies, RPO).
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(sink.sum(Metric::BackupsSucceeded, None), Some(1));
    assert_eq!(sink.sum(Metric::BackupsFailed, None), Some(1));
    assert_eq!(sink.sum(Metric::StuckRecoveryPoints, None), Some(0));
    assert_eq!(sink.sum(Metric::CopiesSucceeded, Some("us-west-2")), Some(1));
    // The copy holds data captured 20 minutes before it was seen available.
    assert_eq!(sink.sum(Metric::CopyLag, Some("us-west-2")), Some(20 * 60));
    assert_eq!(sink.sum(Metric::RpoChecks, Some("us-east-1")), Some(2));
    assert_eq!(sink.sum(Metric::RpoChecks, Some("us-west-2")), Some(2));
    assert_eq!(sink.sum(Metric::RpoBreaches, Some("us-east-1")), Some(1));
    assert_eq!(sink.sum(Metric::RpoBreaches, Some("us-west-2")), Some(1));
    assert_eq!(sink.total(Metric::RecoveryPointAge), Some(2 * 20 * 60));
}

#[tokio::test]
async fn a_malformed_event_emits_nothing() {
    let fakes = Fakes::new(tick_time());
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
    };
    let sink = MemorySink::new();
    let bad = lifeboat_testkit::event(serde_json::json!({"scheduledTime": "yesterday"}));
    assert!(handle_with(&deps, bad, &sink).await.is_err());
    assert!(sink.lines().is_empty());
}
