//! The EMF lines one invocation of `expire-recovery-points` emits, against the in-memory
//! fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::Duration;

use chrono::{DateTime, Utc};
use expire_recovery_points::{Deps, handle_with};
use lifeboat::metrics::{MemorySink, validate_emf};
use lifeboat_domain::naming::tags;
use lifeboat_domain::{PolicyName, RecoveryPoint, ResourceKind, Slot, Status};
use lifeboat_ports::{Catalog, SnapshotStore, Tag};
use lifeboat_testkit::{Fakes, event_json_for};
use serde_json::Value;

const TICK: &str = include_str!("../../../events/expire-recovery-points/scheduler-tick.json");
const GOLD: &str = r#"{"name":"gold","every":"1day","rpo":"2days","retention":{"daily":3}}"#;

fn scheduled() -> DateTime<Utc> {
    "2026-11-23T03:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn one_invocation_emits_expiries_and_failures_once() {
    let fakes = Fakes::new(scheduled() + chrono::Duration::minutes(4));
    fakes.catalog.put_policy_json("gold", GOLD);
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        backups: None,
    };
    let db = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    // Five daily backups: retention keeps three, two expire.
    for days_ago in 0..5 {
        let at =
            scheduled() - chrono::Duration::days(days_ago) - chrono::Duration::hours(3) + chrono::Duration::minutes(5);
        let slot = Slot::containing(at, Duration::from_hours(24));
        let name = format!("lb-gold-{}-{}", db.id, slot.compact());
        let t = vec![
            Tag::new(tags::CREATED_BY, tags::CREATED_BY_VALUE),
            Tag::new(tags::POLICY, "gold"),
            Tag::new(tags::SLOT, slot.compact()),
        ];
        fakes.snapshots.create_snapshot(&db, &name, &t).await.unwrap();
        let rp = RecoveryPoint::new(
            &db,
            &PolicyName::parse("gold").unwrap(),
            slot,
            &db.region,
            &name,
            Status::Available,
            at,
        );
        fakes.catalog.insert(&rp).await.unwrap();
    }
    let sink = MemorySink::new();
    let report = handle_with(&deps, event_json_for(TICK, "req-expire"), &sink)
        .await
        .unwrap();
    assert_eq!(report.expired.len(), 2);
    let lines = sink.lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(validate_emf(&lines[0]).is_empty(), "{:?}", validate_emf(&lines[0]));
    let v: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["Function"], "expire-recovery-points");
    assert_eq!(v["RecoveryPointsExpired"], 2);
    assert_eq!(v["ExpiryFailures"], 0);
}
