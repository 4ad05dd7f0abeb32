//! Behaviour of `track-recovery-points` through its Lambda entry point, against the
//! in-memory fakes: state tracking, stuck work, orphan adoption and RPO alerts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::ErrorType;
use lifeboat_domain::naming::tags;
use lifeboat_domain::{
    AlertKind, PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Severity, Slot, Status,
};
use lifeboat_ports::{Catalog, SnapshotStatus, SnapshotStore, Tag};
use lifeboat_testkit::{Fakes, SnapshotOp, event_json};
use serde_json::Value;
use track_recovery_points::{Deps, handle};

const GOLD: &str =
    r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,"priority":1,"copies":[{"region":"us-west-2"}]}"#;
const TICK: &str = include_str!("../../../events/track-recovery-points/scheduler-tick.json");

fn tick_time() -> DateTime<Utc> {
    "2026-11-23T18:25:00Z".parse().unwrap()
}

/// The clock a few seconds after `t`, as when a schedule delivers its tick.
fn at(t: &str) -> chrono::DateTime<chrono::Utc> {
    t.parse::<chrono::DateTime<chrono::Utc>>().unwrap() + chrono::Duration::seconds(4)
}

fn tick_at(t: &str) -> LambdaEvent<Value> {
    event_json(&format!(r#"{{"scheduledTime":"{t}"}}"#))
}

fn setup() -> (Fakes, Deps) {
    let fakes = Fakes::new(tick_time());
    fakes.catalog.put_policy_json("gold", GOLD);
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
    };
    (fakes, deps)
}

fn tags_for(slot: Slot) -> Vec<Tag> {
    vec![
        Tag::new(tags::CREATED_BY, tags::CREATED_BY_VALUE),
        Tag::new(tags::POLICY, "gold"),
        Tag::new(tags::SLOT, slot.compact()),
    ]
}

/// A snapshot of `resource` taken `minutes_ago`, in the store and (optionally) the catalog.
async fn snapshot(
    fakes: &Fakes,
    resource: &ResourceRef,
    minutes_ago: i64,
    status: Status,
    record: bool,
) -> RecoveryPoint {
    let at = tick_time() - chrono::Duration::minutes(minutes_ago);
    let slot = Slot::containing(at, Duration::from_hours(1));
    let name = format!("lb-gold-{}-{}", resource.id, slot.compact());
    let snap = fakes
        .snapshots
        .create_snapshot(resource, &name, &tags_for(slot))
        .await
        .unwrap();
    let rp = RecoveryPoint {
        snapshot_arn: snap.arn,
        ..RecoveryPoint::new(
            resource,
            &PolicyName::parse("gold").unwrap(),
            slot,
            &resource.region,
            &name,
            status,
            at,
        )
    };
    if record {
        fakes.catalog.insert(&rp).await.unwrap();
    }
    rp
}

fn status_of(fakes: &Fakes, id: &RecoveryPointId) -> Status {
    fakes.catalog.points().into_iter().find(|p| &p.id == id).unwrap().status
}

#[tokio::test]
async fn pending_snapshots_advance_to_available_and_failed_ones_alert_once() {
    let (fakes, deps) = setup();
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let billing = fakes.add_db(ResourceKind::RdsInstance, "billing", "gold");
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    fakes.snapshots.set_new_size(20 << 30);
    let ok = snapshot(&fakes, &orders, 20, Status::Pending, true).await;
    let bad = snapshot(&fakes, &billing, 20, Status::Pending, true).await;
    fakes.snapshots.set_status(
        &ok.location,
        ok.resource.kind,
        &ok.snapshot_name,
        SnapshotStatus::Available,
    );
    fakes.snapshots.set_status(
        &bad.location,
        bad.resource.kind,
        &bad.snapshot_name,
        SnapshotStatus::Failed,
    );
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(report.transitions.contains(&(ok.id.clone(), Status::Available)));
    assert!(report.transitions.contains(&(bad.id.clone(), Status::Failed)));
    handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(status_of(&fakes, &ok.id), Status::Available);
    let recorded = fakes.catalog.points().into_iter().find(|p| p.id == ok.id).unwrap();
    assert_eq!(
        recorded.size_bytes,
        Some(20 << 30),
        "the size RDS reports, for storage and cost"
    );
    let failed: Vec<_> = fakes
        .notifier
        .alerts()
        .into_iter()
        .filter(|a| a.kind == AlertKind::BackupFailed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].recovery_point.as_ref(), Some(&bad.id));
}

#[tokio::test]
async fn a_snapshot_that_vanished_is_marked_failed_not_dropped() {
    let (fakes, deps) = setup();
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    let rp = snapshot(&fakes, &orders, 20, Status::Pending, true).await;
    fakes
        .snapshots
        .remove(&rp.location, rp.resource.kind, &rp.snapshot_name);
    handle(&deps, event_json(TICK)).await.unwrap();
    let stored = fakes.catalog.points().into_iter().find(|p| p.id == rp.id).unwrap();
    assert_eq!(stored.status, Status::Failed);
    assert_eq!(stored.failure.unwrap().code, "vanished");
}

#[tokio::test]
async fn work_pending_past_its_deadline_is_alerted_once_as_stuck() {
    let (fakes, deps) = setup();
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    let rp = snapshot(&fakes, &orders, 30, Status::Pending, true).await;
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(report.stuck.is_empty(), "30 minutes is within the 2 h deadline");
    fakes.clock.set(at("2026-11-23T21:00:00Z"));
    let report = handle(&deps, tick_at("2026-11-23T21:00:00Z")).await.unwrap();
    assert_eq!(report.stuck, vec![rp.id.clone()]);
    fakes.clock.set(at("2026-11-23T21:05:00Z"));
    handle(&deps, tick_at("2026-11-23T21:05:00Z")).await.unwrap();
    let stuck: Vec<_> = fakes
        .notifier
        .alerts()
        .into_iter()
        .filter(|a| a.kind == AlertKind::Stuck)
        .collect();
    assert_eq!(stuck.len(), 1);
    assert_eq!(
        status_of(&fakes, &rp.id),
        Status::Pending,
        "stuck work is alerted, not abandoned"
    );
}

#[tokio::test]
async fn a_finished_copy_settles_its_source_as_copied() {
    let (fakes, deps) = setup();
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let src = snapshot(&fakes, &orders, 20, Status::Copying, true).await;
    let west = Region::parse("us-west-2").unwrap();
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    let origin = fakes
        .snapshots
        .describe_snapshot(&src.location, src.resource.kind, &src.snapshot_name)
        .await
        .unwrap()
        .unwrap();
    fakes
        .snapshots
        .copy_snapshot(&origin, &west, &src.snapshot_name, "alias/dr", &[])
        .await
        .unwrap();
    let mut copy = src.clone();
    copy.id = RecoveryPointId::new(&west, src.resource.kind, &src.snapshot_name);
    copy.location = west.clone();
    copy.source = Some(src.id.clone());
    copy.status = Status::Pending;
    fakes.catalog.insert(&copy).await.unwrap();

    handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(status_of(&fakes, &src.id), Status::Copying, "copy still in flight");
    fakes
        .snapshots
        .set_status(&west, src.resource.kind, &src.snapshot_name, SnapshotStatus::Available);
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(report.transitions.contains(&(copy.id.clone(), Status::Available)));
    assert!(report.transitions.contains(&(src.id.clone(), Status::Copied)));
    let rpo: Vec<_> = report
        .rpo
        .iter()
        .map(|s| (s.location.to_string(), s.breached))
        .collect();
    assert_eq!(rpo, [("us-east-1".to_owned(), false), ("us-west-2".to_owned(), false)]);
}

#[tokio::test]
async fn a_tagged_snapshot_the_catalog_lost_is_adopted() {
    let (fakes, deps) = setup();
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    // A crash in an earlier slot left this snapshot without a record.
    let orphan = snapshot(&fakes, &orders, 90, Status::Available, false).await;
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.adopted, vec![orphan.id.clone()]);
    let stored = fakes.catalog.points().into_iter().find(|p| p.id == orphan.id).unwrap();
    assert!(stored.adopted);
    assert_eq!(stored.slot, orphan.slot);
    assert!(handle(&deps, event_json(TICK)).await.unwrap().adopted.is_empty());
}

#[tokio::test]
async fn reconciling_lists_each_region_and_kind_once_whatever_the_number_of_resources() {
    let (fakes, deps) = setup();
    let mut orphans = Vec::new();
    for i in 0..40 {
        let kind = if i % 4 == 3 {
            ResourceKind::AuroraCluster
        } else {
            ResourceKind::RdsInstance
        };
        let db = fakes.add_db(kind, &format!("db{i:02}"), "gold");
        // Every resource recorded an hour ago; every fifth lost its record of the slot before.
        snapshot(&fakes, &db, 30, Status::Available, true).await;
        if i % 5 == 0 {
            orphans.push(snapshot(&fakes, &db, 90, Status::Available, false).await.id);
        }
    }
    // A Lifeboat-tagged snapshot of a database no policy protects is not adopted.
    let stray = ResourceRef {
        kind: ResourceKind::RdsInstance,
        id: "stray".into(),
        arn: "arn:aws:rds:us-east-1:123456789012:db:stray".into(),
        region: Region::parse("us-east-1").unwrap(),
    };
    snapshot(&fakes, &stray, 90, Status::Available, false).await;
    let before = fakes.snapshots.calls(SnapshotOp::ListLifeboat);
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    // 40 resources of two kinds in one region: two listings.
    assert_eq!(fakes.snapshots.calls(SnapshotOp::ListLifeboat) - before, 2);
    let mut adopted = report.adopted.clone();
    adopted.sort();
    orphans.sort();
    assert_eq!(adopted, orphans);
}

/// One cycle over `n` resources, each with a fresh snapshot (30 minutes old) copied to
/// us-west-2, and `stale` more whose newest snapshot is five hours old: the catalog calls
/// the cycle made, and its report.
async fn rpo_cycle(n: usize, stale: usize) -> (usize, track_recovery_points::Report) {
    let (fakes, deps) = setup();
    let gold = PolicyName::parse("gold").unwrap();
    let west = Region::parse("us-west-2").unwrap();
    for i in 0..n + stale {
        let db = fakes.add_db(ResourceKind::RdsInstance, &format!("db{i:03}"), "gold");
        let minutes_ago = if i < n { 30 } else { 300 };
        let src = snapshot(&fakes, &db, minutes_ago, Status::Copied, true).await;
        let copy = RecoveryPoint {
            source: Some(src.id.clone()),
            ..RecoveryPoint::new(
                &db,
                &gold,
                src.slot,
                &west,
                &src.snapshot_name,
                Status::Available,
                src.created_at,
            )
        };
        fakes.catalog.insert(&copy).await.unwrap();
    }
    let before = fakes.catalog.calls();
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    (fakes.catalog.calls() - before, report)
}

#[tokio::test]
async fn the_rpo_check_reads_each_location_once_whatever_the_number_of_resources() {
    let (few, small) = rpo_cycle(4, 0).await;
    let (many, large) = rpo_cycle(40, 0).await;
    assert_eq!(few, many, "catalog calls of a cycle over 4 and over 40 resources");
    assert_eq!(large.rpo.len(), 80, "each resource in the primary and in us-west-2");
    assert!(
        small
            .rpo
            .iter()
            .chain(&large.rpo)
            .all(|s| !s.breached && s.age_secs == Some(1800))
    );
    // A resource with nothing within its RPO is read on its own, so its breach names its
    // newest point and that point's age.
    let (with_stale, report) = rpo_cycle(40, 2).await;
    let (few_with_stale, _) = rpo_cycle(4, 2).await;
    assert_eq!(
        with_stale, few_with_stale,
        "reads (and alerts) grow with the breaches, not the resources"
    );
    let breached: Vec<_> = report.rpo.iter().filter(|s| s.breached).collect();
    assert_eq!(breached.len(), 4, "two resources, in both locations");
    assert!(
        breached
            .iter()
            .all(|s| s.newest.is_some() && s.age_secs == Some(5 * 3600)),
        "{breached:#?}"
    );
}

#[tokio::test]
async fn rpo_breaches_alert_once_per_episode_in_each_location() {
    let (fakes, deps) = setup();
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    snapshot(&fakes, &orders, 60, Status::Available, true).await;
    // Fresh in the primary; never copied to us-west-2.
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    let breached: Vec<_> = report
        .rpo
        .iter()
        .filter(|s| s.breached)
        .map(|s| s.location.to_string())
        .collect();
    assert_eq!(breached, ["us-west-2"]);
    // Three hours later the primary is breached too.
    fakes.clock.set(at("2026-11-23T21:30:00Z"));
    handle(&deps, tick_at("2026-11-23T21:30:00Z")).await.unwrap();
    fakes.clock.set(at("2026-11-23T21:35:00Z"));
    handle(&deps, tick_at("2026-11-23T21:35:00Z")).await.unwrap();
    let rpo: Vec<_> = fakes
        .notifier
        .alerts()
        .into_iter()
        .filter(|a| a.kind == AlertKind::RpoBreach)
        .collect();
    assert_eq!(rpo.len(), 2, "one per location per episode: {rpo:#?}");
    let primary = rpo
        .iter()
        .find(|a| a.location.as_ref().unwrap().as_str() == "us-east-1")
        .unwrap();
    assert_eq!(primary.severity, Severity::Critical);
    assert!(primary.summary.contains("RPO 2h"), "{}", primary.summary);
    // A new snapshot ends the primary episode; when it too goes stale, a new alert follows.
    fakes.clock.set("2026-11-23T21:40:00Z".parse().unwrap());
    let fresh = snapshot(&fakes, &orders, -76, Status::Available, true).await; // taken at 19:41
    let report = handle(&deps, tick_at("2026-11-23T21:40:00Z")).await.unwrap();
    assert!(
        !report
            .rpo
            .iter()
            .find(|s| s.location.as_str() == "us-east-1")
            .unwrap()
            .breached
    );
    fakes.clock.set(at("2026-11-24T00:00:00Z"));
    handle(&deps, tick_at("2026-11-24T00:00:00Z")).await.unwrap();
    let primary_alerts: Vec<_> = fakes
        .notifier
        .alerts()
        .into_iter()
        .filter(|a| a.kind == AlertKind::RpoBreach && a.location.as_ref().unwrap().as_str() == "us-east-1")
        .collect();
    assert_eq!(primary_alerts.len(), 2);
    assert_eq!(primary_alerts[1].recovery_point.as_ref(), Some(&fresh.id));
}

#[tokio::test]
async fn an_invalid_policy_name_in_the_event_is_rejected_before_any_call() {
    let (fakes, deps) = setup();
    let err = handle(
        &deps,
        event_json(include_str!(
            "../../../events/track-recovery-points/unknown-policy.json"
        )),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("policy name"), "{}", err.message);
    assert_eq!(fakes.catalog.calls(), 0);
    assert_eq!(fakes.snapshots.total_calls(), 0);
}

#[tokio::test]
async fn a_data_set_without_a_run_within_its_rpo_is_a_breach_where_its_runs_are_kept() {
    let fakes = Fakes::new(tick_time());
    fakes.catalog.put_policy_json(
        "media",
        r#"{"name":"media","every":"1h","rpo":"2h","retain":24,"s3":[{"bucket":"photos","prefix":"2026/"}],
            "config_bundles":[{"name":"orders-config","parameters":["/orders/"]}]}"#,
    );
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
    };
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    // Judged in the backup region (Fakes::config's BACKUP_REGION), where runs are kept;
    // no snapshot is looked for.
    let rpo: Vec<_> = report
        .rpo
        .iter()
        .map(|s| (s.resource_arn.clone(), s.location.to_string(), s.breached))
        .collect();
    assert_eq!(
        rpo,
        [
            ("arn:aws:s3:::photos/2026/".to_owned(), "us-west-2".to_owned(), true),
            (
                "lifeboat:config-bundle:us-east-1:orders-config".to_owned(),
                "us-west-2".to_owned(),
                true
            ),
        ]
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let alerts: Vec<_> = fakes
        .notifier
        .alerts()
        .into_iter()
        .filter(|a| a.kind == AlertKind::RpoBreach)
        .collect();
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    assert!(
        alerts
            .iter()
            .all(|a| a.location.as_ref().unwrap().as_str() == "us-west-2")
    );
}

/// The sample RDS snapshot event, naming `snapshot`, delivered as invocation `id`.
fn rds_event(snapshot: &str, id: &str) -> LambdaEvent<Value> {
    let mut event = lifeboat_testkit::sample("track-recovery-points", "rds-snapshot-created.json");
    event["detail"]["SourceIdentifier"] = Value::from(snapshot);
    lifeboat_testkit::event_for(event, id)
}

#[tokio::test]
async fn an_rds_snapshot_event_moves_its_pending_point_now_and_a_replay_changes_nothing() {
    let (fakes, deps) = setup();
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let billing = fakes.add_db(ResourceKind::RdsInstance, "billing", "gold");
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    let done = snapshot(&fakes, &orders, 20, Status::Pending, true).await;
    let other = snapshot(&fakes, &billing, 20, Status::Pending, true).await;
    for rp in [&done, &other] {
        fakes.snapshots.set_status(
            &rp.location,
            rp.resource.kind,
            &rp.snapshot_name,
            SnapshotStatus::Available,
        );
    }
    let report = handle(&deps, rds_event(&done.snapshot_name, "e1")).await.unwrap();
    assert_eq!(report.transitions, vec![(done.id.clone(), Status::Available)]);
    assert_eq!(status_of(&fakes, &done.id), Status::Available);
    // Only the point the event names: the other waits for its own event or the cycle.
    assert_eq!(status_of(&fakes, &other.id), Status::Pending);
    // Delivered again (EventBridge delivers at least once): nothing moves twice.
    let again = handle(&deps, rds_event(&done.snapshot_name, "e1")).await.unwrap();
    assert!(again.transitions.is_empty());
    assert!(again.ignored.unwrap().contains("available already"));
}

#[tokio::test]
async fn an_event_that_arrives_before_the_snapshot_is_done_leaves_it_pending() {
    let (fakes, deps) = setup();
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    fakes.snapshots.set_new_status(SnapshotStatus::Creating);
    let rp = snapshot(&fakes, &orders, 2, Status::Pending, true).await;
    // Out of order: the event is read as a hint, and AWS still says creating.
    let report = handle(&deps, rds_event(&rp.snapshot_name, "early")).await.unwrap();
    assert!(report.transitions.is_empty() && report.errors.is_empty());
    assert_eq!(status_of(&fakes, &rp.id), Status::Pending);
}

#[tokio::test]
async fn events_naming_nothing_lifeboat_records_change_nothing() {
    let (fakes, deps) = setup();
    fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    for (name, event) in [
        (
            "sample",
            event_json(include_str!(
                "../../../events/track-recovery-points/rds-snapshot-created.json"
            )),
        ),
        ("not Lifeboat's", rds_event("rds:orders-2026-11-23-18-00", "auto")),
        (
            "backup job",
            event_json(include_str!(
                "../../../events/track-recovery-points/backup-job-completed.json"
            )),
        ),
    ] {
        let report = handle(&deps, event).await.unwrap();
        assert!(report.transitions.is_empty(), "{name}");
        assert!(report.ignored.is_some(), "{name}");
    }
    assert!(fakes.catalog.points().is_empty());
}

#[tokio::test]
async fn an_unsupported_or_malformed_service_event_is_invalid() {
    let (_fakes, deps) = setup();
    let unsupported = include_str!("../../../events/track-recovery-points/unsupported-event.json");
    let err = handle(&deps, event_json(unsupported)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("RDS DB Instance Event"), "{}", err.message);
    let mut no_name = lifeboat_testkit::sample("track-recovery-points", "rds-snapshot-created.json");
    no_name["detail"].as_object_mut().unwrap().remove("SourceIdentifier");
    let err = handle(&deps, lifeboat_testkit::event_for(no_name, "bad"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("SourceIdentifier"), "{}", err.message);
}
