//! Retention on the local AWS stack (moto): real RDS snapshots, the DynamoDB catalog, the
//! real adapters; `expire-recovery-points` called in-process.
//!
//! moto stamps snapshots with the wall clock, so a simulated month is seeded: one real
//! snapshot per simulated day (named and tagged as Lifeboat names and tags them) and a
//! catalog record carrying that day as its `created_at`. Retention is judged at the tick's
//! scheduled time, so the run sees "now" as the end of that month.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveTime, Utc};
use lifeboat_domain::naming::tags;
use lifeboat_domain::{PolicyName, RecoveryPoint, Region, ResourceKind, ResourceRef, Slot, Status};
use lifeboat_ports::Catalog;
use lifeboat_tests::{PRIMARY, TestEnv};

/// The simulated "now": the tick's scheduled time, a Tuesday.
const NOW: &str = "2026-03-31T03:00:00Z";
const DAYS: i64 = 35;

fn deps(env: &TestEnv) -> expire_recovery_points::Deps {
    expire_recovery_points::Deps {
        ports: env.ports(),
        config: env.config(""),
        backups: None,
    }
}

/// Manual snapshots of `instance` in moto.
async fn snapshots_in_moto(env: &TestEnv, instance: &str) -> BTreeSet<String> {
    let out = env
        .rds(PRIMARY)
        .describe_db_snapshots()
        .db_instance_identifier(instance)
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    out.db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_owned))
        .collect()
}

/// A backup of `resource` made at `at`: a real snapshot in moto with `snapshot_tags`, and
/// its catalog record with `created_at = at`.
async fn seed(
    env: &TestEnv,
    resource: &ResourceRef,
    policy: &PolicyName,
    at: DateTime<Utc>,
    snapshot_tags: Vec<(&str, String)>,
) -> RecoveryPoint {
    let slot = Slot::containing(at, Duration::from_hours(24));
    let name = format!("lb-{policy}-{}-{}", resource.id, slot.compact());
    let out = env
        .rds(PRIMARY)
        .create_db_snapshot()
        .db_instance_identifier(&resource.id)
        .db_snapshot_identifier(&name)
        .set_tags(Some(
            snapshot_tags
                .into_iter()
                .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    env.wait_snapshot_available(PRIMARY, &name).await.unwrap();
    let rp = RecoveryPoint {
        snapshot_arn: out.db_snapshot().and_then(|s| s.db_snapshot_arn()).map(str::to_owned),
        ..RecoveryPoint::new(resource, policy, slot, &resource.region, &name, Status::Available, at)
    };
    env.catalog().insert(&rp).await.unwrap();
    rp
}

fn lifeboat_tags(policy: &PolicyName, at: DateTime<Utc>) -> Vec<(&'static str, String)> {
    vec![
        (tags::CREATED_BY, tags::CREATED_BY_VALUE.to_owned()),
        (tags::POLICY, policy.to_string()),
        (tags::SLOT, Slot::containing(at, Duration::from_hours(24)).compact()),
    ]
}

async fn protected_instance(env: &TestEnv, policy: &PolicyName, name: &str) -> ResourceRef {
    let id = env.name(name);
    let arn = env.create_instance(&id, policy.as_str()).await.unwrap();
    ResourceRef {
        kind: ResourceKind::RdsInstance,
        id,
        arn,
        region: Region::parse(PRIMARY).unwrap(),
    }
}

/// What `daily: 7, weekly: 4` keeps of one backup per day (UTC), worked out here without
/// the retention code: the newest backup of each of the 7 newest days that have one, and
/// of each of the 4 newest ISO weeks that have one.
fn expected_kept(days: &[DateTime<Utc>]) -> BTreeSet<DateTime<Utc>> {
    let mut newest_per_day: BTreeMap<chrono::NaiveDate, DateTime<Utc>> = BTreeMap::new();
    let mut newest_per_week: BTreeMap<(i32, u32), DateTime<Utc>> = BTreeMap::new();
    for &t in days {
        let day = newest_per_day.entry(t.date_naive()).or_insert(t);
        *day = (*day).max(t);
        let w = t.iso_week();
        let week = newest_per_week.entry((w.year(), w.week())).or_insert(t);
        *week = (*week).max(t);
    }
    newest_per_day
        .values()
        .rev()
        .take(7)
        .chain(newest_per_week.values().rev().take(4))
        .copied()
        .collect()
}

#[tokio::test]
async fn gfs_over_a_simulated_month_leaves_exactly_the_expected_snapshots_in_moto() {
    let env = TestEnv::start().await.unwrap();
    let policy = env
        .put_policy(r#"{"name":"{prefix}-gfs","every":"1day","rpo":"2days","retention":{"daily":7,"weekly":4}}"#)
        .await
        .unwrap();
    let db = protected_instance(&env, &policy.name, "orders").await;
    let now: DateTime<Utc> = NOW.parse().unwrap();
    // One backup a day, at 00:05, for the 35 days up to "now".
    let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
    let times: Vec<DateTime<Utc>> = (0..DAYS)
        .map(|d| midnight - chrono::Duration::days(d) + chrono::Duration::minutes(5))
        .collect();
    let mut points = Vec::new();
    for &at in &times {
        points.push(seed(&env, &db, &policy.name, at, lifeboat_tags(&policy.name, at)).await);
    }
    assert_eq!(snapshots_in_moto(&env, &db.id).await.len(), 35);
    let kept_times = expected_kept(&times);
    let (kept, gone): (Vec<_>, Vec<_>) = points.iter().partition(|p| kept_times.contains(&p.created_at));
    // Tuesday 31 March: the 7 daily ones reach back to Wednesday 25, so the newest of this
    // ISO week (today) and of last week (Sunday 29) are among them; weekly adds Sundays 22 and 15.
    assert_eq!(kept.len(), 7 + 2, "{kept_times:?}");

    let report = expire_recovery_points::handle(&deps(&env), lifeboat_tests::tick_event(NOW, "run-1"))
        .await
        .unwrap();

    let expired: BTreeSet<_> = report.expired.iter().map(|e| e.id.clone()).collect();
    let expected_gone: BTreeSet<_> = gone.iter().map(|p| p.id.clone()).collect();
    assert_eq!(expired, expected_gone, "{report:#?}");
    assert!(report.expired.iter().all(|e| e.snapshot_deleted));
    assert_eq!((report.kept, report.protected, report.remaining), (kept.len(), 0, 0));
    assert!(report.failed.is_empty() && report.refused.is_empty() && report.skipped.is_empty());
    let kept_names: BTreeSet<_> = kept.iter().map(|p| p.snapshot_name.clone()).collect();
    assert_eq!(snapshots_in_moto(&env, &db.id).await, kept_names);
    let catalog = env.catalog();
    let statuses: BTreeMap<_, _> = catalog
        .by_resource(&db.arn, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.id, p.status))
        .collect();
    assert_eq!(statuses.len(), 35);
    for p in &points {
        let want = if kept_times.contains(&p.created_at) {
            Status::Available
        } else {
            Status::Expired
        };
        assert_eq!(statuses[&p.id], want, "{}", p.id);
    }

    // A second run (a replay, or the next day's tick at the same instant) deletes nothing more.
    let again = expire_recovery_points::handle(&deps(&env), lifeboat_tests::tick_event(NOW, "run-2"))
        .await
        .unwrap();
    assert!(again.expired.is_empty() && again.resumed.is_empty(), "{again:#?}");
    assert_eq!(again.kept, kept.len());
    assert_eq!(snapshots_in_moto(&env, &db.id).await, kept_names);

    // Deleting a snapshot that is already gone is fine (moto answers DBSnapshotNotFound).
    env.ports()
        .snapshots
        .delete_snapshot(&db.region, db.kind, &gone[0].snapshot_name)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_snapshot_without_lifeboat_tags_is_not_deleted_in_moto() {
    let env = TestEnv::start().await.unwrap();
    let policy = env
        .put_policy(r#"{"name":"{prefix}-short","every":"1day","rpo":"2days","retention":{"daily":1}}"#)
        .await
        .unwrap();
    let db = protected_instance(&env, &policy.name, "billing").await;
    let now: DateTime<Utc> = NOW.parse().unwrap();
    let newest = seed(
        &env,
        &db,
        &policy.name,
        now - chrono::Duration::hours(2),
        lifeboat_tags(&policy.name, now),
    )
    .await;
    let at = now - chrono::Duration::days(3);
    let foreign = seed(&env, &db, &policy.name, at, vec![("team", "dba".to_owned())]).await;

    let report = expire_recovery_points::handle(&deps(&env), lifeboat_tests::tick_event(NOW, "run-1"))
        .await
        .unwrap();

    assert!(report.expired.is_empty(), "{report:#?}");
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].subject, foreign.id.as_str());
    assert_eq!(
        snapshots_in_moto(&env, &db.id).await,
        BTreeSet::from([newest.snapshot_name.clone(), foreign.snapshot_name.clone()])
    );
    let record = env.catalog().get(&foreign.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Expiring);

    // The next run finds it expiring (the catalog's status index), refuses again, alerts no more.
    let again = expire_recovery_points::handle(&deps(&env), lifeboat_tests::tick_event(NOW, "run-2"))
        .await
        .unwrap();
    assert_eq!(again.refused.len(), 1, "{again:#?}");
    let alerts = env.alerts().await.unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].event_type.as_deref(), Some("expiry-failed"));

    // An operator deletes the snapshot by hand: the next run finishes the record.
    env.rds(PRIMARY)
        .delete_db_snapshot()
        .db_snapshot_identifier(&foreign.snapshot_name)
        .send()
        .await
        .unwrap();
    let last = expire_recovery_points::handle(&deps(&env), lifeboat_tests::tick_event(NOW, "run-3"))
        .await
        .unwrap();
    assert_eq!(last.resumed.len(), 1, "{last:#?}");
    assert!(!last.resumed[0].snapshot_deleted);
    let record = env.catalog().get(&foreign.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Expired);
    assert_eq!(
        snapshots_in_moto(&env, &db.id).await,
        BTreeSet::from([newest.snapshot_name])
    );
}
