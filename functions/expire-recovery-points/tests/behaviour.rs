//! Behaviour of `expire-recovery-points` through its Lambda entry point, against the
//! in-memory fakes: GFS retention, replays, crash resume, holds placed after planning,
//! foreign snapshots, the safety floor, transient and permanent errors, the per-run cap.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use expire_recovery_points::{Deps, MAX_EXPIRIES_PER_RUN, Report, handle};
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::naming::tags;
use lifeboat_domain::{
    AlertKind, Failure, Policy, PolicyName, PolicyProblems, RecoveryPoint, RecoveryPointId, Region, ResourceKind,
    ResourceRef, Slot, Status, Step,
};
use lifeboat_ports::{Catalog, PortError, PortResult, RunRecord, SnapshotStatus, SnapshotStore, Tag};
use lifeboat_testkit::{Fakes, InMemoryCatalog, SnapshotOp, event_json};

const TICK: &str = include_str!("../../../events/expire-recovery-points/scheduler-tick.json");
const MALFORMED: &str = include_str!("../../../events/expire-recovery-points/malformed.json");
const GOLD: &str = r#"{"name":"gold","every":"1day","rpo":"2days","retention":{"daily":3}}"#;

/// The tick's scheduled time (see the sample event).
fn scheduled() -> DateTime<Utc> {
    "2026-11-23T03:00:00Z".parse().unwrap()
}

fn setup(policies: &[(&str, &str)]) -> (Fakes, Deps) {
    // The function runs a few minutes after the instant it was scheduled for.
    let fakes = Fakes::new(scheduled() + chrono::Duration::minutes(4));
    for (name, json) in policies {
        fakes.catalog.put_policy_json(name, json);
    }
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        backups: None,
    };
    (fakes, deps)
}

fn lifeboat_tags(policy: &str, slot: Slot) -> Vec<Tag> {
    vec![
        Tag::new(tags::CREATED_BY, tags::CREATED_BY_VALUE),
        Tag::new(tags::POLICY, policy),
        Tag::new(tags::SLOT, slot.compact()),
    ]
}

/// A daily backup of `resource` taken `days_ago` (at 00:05 that day): its snapshot in the
/// store (with `snapshot_tags`, none for `None`) and its record in the catalog.
async fn seed(
    fakes: &Fakes,
    resource: &ResourceRef,
    policy: &str,
    days_ago: i64,
    snapshot_tags: Option<Vec<Tag>>,
) -> RecoveryPoint {
    let at = scheduled() - chrono::Duration::days(days_ago) - chrono::Duration::hours(3) + chrono::Duration::minutes(5);
    let slot = Slot::containing(at, Duration::from_hours(24));
    let name = format!("lb-{policy}-{}-{}", resource.id, slot.compact());
    let arn = match snapshot_tags {
        Some(t) => fakes.snapshots.create_snapshot(resource, &name, &t).await.unwrap().arn,
        None => None,
    };
    let rp = RecoveryPoint {
        snapshot_arn: arn,
        ..RecoveryPoint::new(
            resource,
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

/// `n` daily backups of `db`, newest first (index = days ago).
async fn daily(fakes: &Fakes, resource: &ResourceRef, n: i64) -> Vec<RecoveryPoint> {
    let mut out = Vec::new();
    for d in 0..n {
        out.push(seed(fakes, resource, "gold", d, Some(lifeboat_tags("gold", slot_of(d)))).await);
    }
    out
}

fn slot_of(days_ago: i64) -> Slot {
    Slot::containing(
        scheduled() - chrono::Duration::days(days_ago) - chrono::Duration::hours(3),
        Duration::from_hours(24),
    )
}

fn stored(fakes: &Fakes, id: &RecoveryPointId) -> RecoveryPoint {
    fakes
        .catalog
        .points()
        .into_iter()
        .find(|p| &p.id == id)
        .unwrap_or_else(|| panic!("{id} not recorded"))
}

async fn set(fakes: &Fakes, rp: &RecoveryPoint, change: impl FnOnce(&mut RecoveryPoint)) -> RecoveryPoint {
    let current = stored(fakes, &rp.id);
    let mut next = current.clone();
    change(&mut next);
    next.version = current.version + 1;
    fakes.catalog.update(&next, current.version).await.unwrap();
    next
}

fn snapshot_names(fakes: &Fakes) -> BTreeSet<String> {
    fakes.snapshots.snapshots().into_iter().map(|s| s.name).collect()
}

fn ids(expired: &[expire_recovery_points::Expired]) -> BTreeSet<RecoveryPointId> {
    expired.iter().map(|e| e.id.clone()).collect()
}

async fn ok(deps: &Deps) -> Report {
    handle(deps, event_json(TICK)).await.unwrap()
}

#[tokio::test]
async fn gfs_daily_3_expires_exactly_the_seven_older_points_and_deletes_their_snapshots() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let points = daily(&fakes, &orders, 10).await;

    let report = ok(&deps).await;

    let expected: BTreeSet<_> = points[3..].iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids(&report.expired), expected, "{report:#?}");
    assert!(report.expired.iter().all(|e| e.snapshot_deleted));
    assert!(
        report.expired[0].reason.contains("not kept by retention (daily 3)"),
        "{}",
        report.expired[0].reason
    );
    assert_eq!((report.kept, report.protected, report.remaining), (3, 0, 0));
    assert!(report.failed.is_empty() && report.refused.is_empty() && report.skipped.is_empty());
    let kept: BTreeSet<_> = points[..3].iter().map(|p| p.snapshot_name.clone()).collect();
    assert_eq!(snapshot_names(&fakes), kept);
    for (i, p) in points.iter().enumerate() {
        let s = stored(&fakes, &p.id);
        let want = if i < 3 { Status::Available } else { Status::Expired };
        assert_eq!(s.status, want, "{}", p.id);
        if i >= 3 {
            assert_eq!(s.version, p.version + 2, "two conditional writes: expiring, expired");
        }
    }
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 7);
    assert!(fakes.notifier.alerts().is_empty());
    let runs = fakes.catalog.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].summary.get("expired"), Some(&7));
}

#[tokio::test]
async fn a_point_under_a_restore_test_outlives_its_retention_until_the_test_ends() {
    use lifeboat_testkit::dr::{InMemoryDrDatabases, RecordingValidationLambda};
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let points = daily(&fakes, &orders, 4).await;
    let oldest = &points[3];
    let rds = std::sync::Arc::new(InMemoryDrDatabases::new());
    rds.slow_restores();
    for p in [&points[0], oldest] {
        rds.put_snapshot_facts(
            &orders.region,
            &p.snapshot_name,
            lifeboat_domain::restore_test::Facts {
                engine: Some("postgres".into()),
                ..Default::default()
            },
        );
    }
    let tests = test_restores::Deps {
        catalog: fakes.catalog.clone(),
        notifier: fakes.notifier.clone(),
        clock: fakes.clock.clone(),
        databases: rds.clone(),
        validator: std::sync::Arc::new(RecordingValidationLambda::default()),
        settings: test_restores::Settings::from_lookup(|k| {
            (k == "RESTORE_TEST_NETWORKS")
                .then(|| r#"{"us-east-1": {"subnet_group": "isolated", "security_groups": ["sg-1"]}}"#.to_owned())
        })
        .unwrap(),
        alert_window: None,
    };
    // The newest and the oldest are tested (the safety floor keeps the newest verified
    // point, so the newest must be proven too for the oldest to be expirable at all).
    for p in [&points[0], oldest] {
        let one = serde_json::json!({"recoveryPoint": p.id});
        test_restores::handle(&tests, lifeboat_testkit::event(one))
            .await
            .unwrap();
    }
    assert!(stored(&fakes, &oldest.id).holds.in_use_by.is_some());

    let held = ok(&deps).await;
    assert!(!ids(&held.expired).contains(&oldest.id), "{held:#?}");
    assert_eq!(stored(&fakes, &oldest.id).status, Status::Available);
    assert!(snapshot_names(&fakes).contains(&oldest.snapshot_name));

    // The test ends (restored, judged, its database deleted): the hold goes, retention applies.
    rds.finish_restores();
    for _ in 0..2 {
        let advance = serde_json::json!({"mode": "advance"});
        test_restores::handle(&tests, lifeboat_testkit::event(advance))
            .await
            .unwrap();
    }
    let done = stored(&fakes, &oldest.id);
    assert!(
        done.verified_at.is_some() && done.holds.in_use_by.is_none(),
        "{done:#?}"
    );
    let after = ok(&deps).await;
    assert!(ids(&after.expired).contains(&oldest.id), "{after:#?}");
    assert!(!snapshot_names(&fakes).contains(&oldest.snapshot_name));
}

#[tokio::test]
async fn a_replayed_tick_does_nothing_twice() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    daily(&fakes, &orders, 10).await;
    ok(&deps).await;
    let after_first = (snapshot_names(&fakes), fakes.catalog.points());

    // The same tick delivered again, later: the same instant is judged, nothing is left.
    fakes.clock.advance(chrono::Duration::hours(2));
    let again = ok(&deps).await;
    assert!(again.expired.is_empty() && again.resumed.is_empty(), "{again:#?}");
    assert_eq!(again.kept, 3);
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 7, "no second delete");
    assert_eq!((snapshot_names(&fakes), fakes.catalog.points()), after_first);
}

#[tokio::test]
async fn a_point_left_expiring_by_a_crash_is_finished_first_by_the_next_run() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let points = daily(&fakes, &orders, 5).await;
    // A crash after `expiring` was written, before the delete…
    let before_delete = set(&fakes, &points[4], |p| p.status = Status::Expiring).await;
    // …and one after the delete, before `expired` was written.
    let after_delete = set(&fakes, &points[3], |p| p.status = Status::Expiring).await;
    fakes
        .snapshots
        .remove(&orders.region, orders.kind, &after_delete.snapshot_name);

    let report = ok(&deps).await;

    let resumed: Vec<_> = report
        .resumed
        .iter()
        .map(|e| (e.id.clone(), e.snapshot_deleted))
        .collect();
    assert_eq!(
        resumed,
        [(points[4].id.clone(), true), (points[3].id.clone(), false)],
        "oldest first; a snapshot already gone is fine"
    );
    assert!(report.expired.is_empty(), "the planner leaves expiring points alone");
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 1);
    assert_eq!(stored(&fakes, &before_delete.id).status, Status::Expired);
    assert_eq!(stored(&fakes, &after_delete.id).status, Status::Expired);
    assert_eq!(snapshot_names(&fakes).len(), 3);
}

#[tokio::test]
async fn a_transient_error_leaves_the_point_expiring_ends_retryable_and_the_retry_finishes_it() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let points = daily(&fakes, &orders, 5).await;
    fakes
        .snapshots
        .fail_next(SnapshotOp::Delete, PortError::Throttled("Rate exceeded".into()));

    let err = handle(&deps, event_json(TICK)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable, "{err}");
    assert!(
        err.message.contains("1 expiries hit transient errors"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("expired 1"),
        "the other one was done: {}",
        err.message
    );
    let statuses: Vec<_> = points[3..].iter().map(|p| stored(&fakes, &p.id).status).collect();
    assert!(
        statuses.contains(&Status::Expiring) && statuses.contains(&Status::Expired),
        "{statuses:?}"
    );
    assert!(fakes.notifier.alerts().is_empty(), "transient: no alert");

    let report = ok(&deps).await;
    assert_eq!(report.resumed.len(), 1);
    assert!(report.expired.is_empty());
    assert!(
        points[3..]
            .iter()
            .all(|p| stored(&fakes, &p.id).status == Status::Expired)
    );
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 3);
}

/// A catalog that places a legal hold on one recovery point the moment it is read by id:
/// the hold arrives after the plan was made (from `by_resource`), before the expiry.
#[derive(Debug)]
struct HoldOnRead {
    inner: Arc<InMemoryCatalog>,
    target: RecoveryPointId,
    placed: AtomicBool,
}

#[async_trait]
impl Catalog for HoldOnRead {
    async fn policies(&self) -> PortResult<Vec<Result<Policy, PolicyProblems>>> {
        self.inner.policies().await
    }
    async fn put_policy(&self, policy: &Policy) -> PortResult<()> {
        self.inner.put_policy(policy).await
    }
    async fn policy_document(&self, name: &str) -> PortResult<Option<String>> {
        self.inner.policy_document(name).await
    }
    async fn replace_policy(&self, policy: &Policy, expected: Option<&str>) -> PortResult<()> {
        self.inner.replace_policy(policy, expected).await
    }
    async fn keep_policy_version(&self, name: &str, version: &lifeboat_ports::PolicyVersion) -> PortResult<()> {
        self.inner.keep_policy_version(name, version).await
    }
    async fn policy_versions(&self, name: &str, limit: usize) -> PortResult<Vec<lifeboat_ports::PolicyVersion>> {
        self.inner.policy_versions(name, limit).await
    }
    async fn get(&self, id: &RecoveryPointId) -> PortResult<Option<RecoveryPoint>> {
        if id == &self.target && !self.placed.swap(true, Ordering::SeqCst) {
            let mut held = self.inner.get(id).await?.unwrap();
            held.holds.legal_hold = true;
            held.version += 1;
            self.inner.update(&held, held.version - 1).await?;
        }
        self.inner.get(id).await
    }
    async fn get_many(&self, ids: &[RecoveryPointId]) -> PortResult<Vec<RecoveryPoint>> {
        self.inner.get_many(ids).await
    }
    async fn insert(&self, rp: &RecoveryPoint) -> PortResult<()> {
        self.inner.insert(rp).await
    }
    async fn update(&self, rp: &RecoveryPoint, expected_version: u64) -> PortResult<()> {
        self.inner.update(rp, expected_version).await
    }
    async fn by_status(&self, status: Status) -> PortResult<Vec<RecoveryPoint>> {
        self.inner.by_status(status).await
    }
    async fn by_resource(&self, resource_arn: &str, limit: usize) -> PortResult<Vec<RecoveryPoint>> {
        self.inner.by_resource(resource_arn, limit).await
    }
    async fn created_since(
        &self,
        location: &lifeboat_domain::Region,
        since: chrono::DateTime<chrono::Utc>,
    ) -> PortResult<Vec<RecoveryPoint>> {
        self.inner.created_since(location, since).await
    }
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        self.inner.acquire_lease(name, holder, until, now).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        self.inner.release_lease(name, holder).await
    }
    async fn claim_marker(&self, key: &str, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> PortResult<bool> {
        self.inner.claim_marker(key, now, stale_before).await
    }
    async fn confirm_marker(&self, key: &str) -> PortResult<()> {
        self.inner.confirm_marker(key).await
    }
    async fn release_marker(&self, key: &str) -> PortResult<()> {
        self.inner.release_marker(key).await
    }
    async fn record_run(&self, run: &RunRecord) -> PortResult<()> {
        self.inner.record_run(run).await
    }
    async fn log_alert(&self, alert: &lifeboat_domain::Alert, sent_at: DateTime<Utc>) -> PortResult<()> {
        self.inner.log_alert(alert, sent_at).await
    }
    async fn recent_alerts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<(DateTime<Utc>, lifeboat_domain::Alert)>> {
        self.inner.recent_alerts(since, until, limit).await
    }
}

#[tokio::test]
async fn a_legal_hold_placed_after_planning_is_respected() {
    let (fakes, mut deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let points = daily(&fakes, &orders, 5).await;
    let target = points[4].id.clone();
    deps.ports.catalog = Arc::new(HoldOnRead {
        inner: fakes.catalog.clone(),
        target: target.clone(),
        placed: AtomicBool::new(false),
    });

    let report = ok(&deps).await;

    assert_eq!(ids(&report.expired), BTreeSet::from([points[3].id.clone()]));
    assert_eq!(report.skipped.len(), 1, "{report:#?}");
    assert_eq!(report.skipped[0].id, target.as_str());
    assert!(
        report.skipped[0].reason.contains("legal hold"),
        "{}",
        report.skipped[0].reason
    );
    let held = stored(&fakes, &target);
    assert_eq!((held.status, held.holds.legal_hold), (Status::Available, true));
    assert!(snapshot_names(&fakes).contains(&held.snapshot_name));

    // The next run's plan sees the hold: the point is protected, not even attempted.
    let next = ok(&deps).await;
    assert!(next.expired.is_empty() && next.skipped.is_empty(), "{next:#?}");
    assert_eq!(next.protected, 1);
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 1);
}

#[tokio::test]
async fn a_snapshot_not_created_by_lifeboat_is_refused_and_alerted_once() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    daily(&fakes, &orders, 3).await;
    // A record whose snapshot someone else made (same name, no Lifeboat tag).
    let foreign = seed(&fakes, &orders, "gold", 9, Some(vec![Tag::new("team", "dba")])).await;

    let first = ok(&deps).await;
    let second = ok(&deps).await;

    for report in [&first, &second] {
        assert!(report.expired.is_empty() && report.resumed.is_empty(), "{report:#?}");
        assert_eq!(report.refused.len(), 1);
        assert_eq!(report.refused[0].subject, foreign.id.as_str());
        assert_eq!(report.refused[0].code, "not-created-by-lifeboat");
    }
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 0, "never deleted");
    assert!(snapshot_names(&fakes).contains(&foreign.snapshot_name));
    assert_eq!(
        stored(&fakes, &foreign.id).status,
        Status::Expiring,
        "no way back in the lifecycle: it stays expiring, refused each run"
    );
    let alerts = fakes.notifier.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].kind, AlertKind::ExpiryFailed);
    assert_eq!(alerts[0].recovery_point.as_ref(), Some(&foreign.id));

    // An operator deletes it by hand: the next run finishes the record.
    fakes
        .snapshots
        .remove(&orders.region, orders.kind, &foreign.snapshot_name);
    let third = ok(&deps).await;
    assert_eq!(ids(&third.resumed), BTreeSet::from([foreign.id.clone()]));
    assert_eq!(stored(&fakes, &foreign.id).status, Status::Expired);
}

#[tokio::test]
async fn a_delete_aws_refuses_is_reported_and_alerted_once_then_retried_by_later_runs() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let points = daily(&fakes, &orders, 4).await;
    let victim = &points[3];
    fakes.snapshots.set_status(
        &orders.region,
        orders.kind,
        &victim.snapshot_name,
        SnapshotStatus::Creating,
    );

    for _ in 0..2 {
        let report = ok(&deps).await;
        assert_eq!(report.failed.len(), 1, "{report:#?}");
        assert_eq!(report.failed[0].code, "invalid-state");
        assert_eq!(stored(&fakes, &victim.id).status, Status::Expiring);
    }
    let alerts = fakes.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::ExpiryFailed);
    assert!(alerts[0].summary.contains("invalid-state"), "{}", alerts[0].summary);

    fakes.snapshots.set_status(
        &orders.region,
        orders.kind,
        &victim.snapshot_name,
        SnapshotStatus::Available,
    );
    let report = ok(&deps).await;
    assert_eq!(ids(&report.resumed), BTreeSet::from([victim.id.clone()]));
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 3);
}

#[tokio::test]
async fn a_malformed_event_is_invalid_and_touches_nothing() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    for payload in [MALFORMED, r#"{"scheduledTime":"tomorrow"}"#, "[]"] {
        let err: FunctionError = handle(&deps, event_json(payload)).await.unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid, "{payload}: {err}");
    }
    assert!(
        handle(&deps, event_json(MALFORMED))
            .await
            .unwrap_err()
            .message
            .contains("unknown field")
    );
    assert_eq!(fakes.snapshots.total_calls(), 0);
    assert_eq!(fakes.catalog.calls(), 0);
}

#[tokio::test]
async fn the_newest_point_stays_even_when_every_point_is_past_retention() {
    let policy = r#"{"name":"gold","every":"1day","rpo":"2days","retention":{"min_age":"2days"}}"#;
    let (fakes, deps) = setup(&[("gold", policy)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let mut points = Vec::new();
    for d in 30..36 {
        points.push(seed(&fakes, &orders, "gold", d, Some(lifeboat_tags("gold", slot_of(d)))).await);
    }

    let report = ok(&deps).await;

    let expected: BTreeSet<_> = points[1..].iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids(&report.expired), expected);
    assert_eq!((report.kept, report.protected), (0, 1));
    assert_eq!(stored(&fakes, &points[0].id).status, Status::Available);
    assert_eq!(
        snapshot_names(&fakes),
        BTreeSet::from([points[0].snapshot_name.clone()])
    );
}

#[tokio::test]
async fn an_old_failed_create_without_a_snapshot_is_cleared_without_a_delete() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    daily(&fakes, &orders, 2).await;
    let failed = seed(&fakes, &orders, "gold", 10, None).await;
    let failed = set(&fakes, &failed, |p| {
        p.status = Status::Failed;
        p.failure = Some(Failure {
            step: Step::Create,
            code: "snapshot-failed".into(),
            message: "AWS reports the snapshot failed".into(),
        });
    })
    .await;

    let report = ok(&deps).await;

    assert_eq!(ids(&report.expired), BTreeSet::from([failed.id.clone()]));
    assert!(!report.expired[0].snapshot_deleted);
    assert!(
        report.expired[0].reason.contains("creation failed"),
        "{}",
        report.expired[0].reason
    );
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 0);
    let cleared = stored(&fakes, &failed.id);
    assert_eq!(cleared.status, Status::Expired);
    assert!(cleared.failure.is_some(), "the failure stays as history");
}

#[tokio::test]
async fn the_source_of_a_copy_in_flight_is_not_deleted() {
    let policy =
        r#"{"name":"gold","every":"1day","rpo":"2days","retention":{"daily":1},"copies":[{"region":"us-west-2"}]}"#;
    let (fakes, deps) = setup(&[("gold", policy)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let points = daily(&fakes, &orders, 3).await;
    // The oldest one's copy is still being made (the tracker has not settled the source).
    let mut copy = points[2].clone();
    copy.id = RecoveryPointId::new(&Region::parse("us-west-2").unwrap(), orders.kind, &copy.snapshot_name);
    copy.location = Region::parse("us-west-2").unwrap();
    copy.source = Some(points[2].id.clone());
    copy.status = Status::Pending;
    fakes.catalog.insert(&copy).await.unwrap();

    let report = ok(&deps).await;

    assert_eq!(ids(&report.expired), BTreeSet::from([points[1].id.clone()]));
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0].reason.contains("in flight"),
        "{}",
        report.skipped[0].reason
    );
    assert_eq!(stored(&fakes, &points[2].id).status, Status::Available);
}

#[tokio::test]
async fn work_beyond_the_per_run_cap_waits_for_the_next_run() {
    let policy = r#"{"name":"gold","every":"1day","rpo":"2days","retention":{"daily":1}}"#;
    let (fakes, deps) = setup(&[("gold", policy)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let n = i64::try_from(MAX_EXPIRIES_PER_RUN).unwrap() + 31;
    daily(&fakes, &orders, n).await;

    let first = ok(&deps).await;
    assert_eq!(first.expired.len(), MAX_EXPIRIES_PER_RUN);
    assert_eq!(first.remaining, 30);
    let second = ok(&deps).await;
    assert_eq!((second.expired.len(), second.remaining), (30, 0));
    assert_eq!(snapshot_names(&fakes).len(), 1);
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), MAX_EXPIRIES_PER_RUN + 30);
}

#[tokio::test]
async fn a_tick_for_one_policy_expires_only_that_policy() {
    let silver = r#"{"name":"silver","every":"1day","rpo":"2days","retention":{"daily":1}}"#;
    let (fakes, deps) = setup(&[("gold", GOLD), ("silver", silver)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let billing = fakes.add_db(ResourceKind::RdsInstance, "billing", "silver");
    daily(&fakes, &orders, 5).await;
    for d in 0..3 {
        seed(&fakes, &billing, "silver", d, Some(lifeboat_tags("silver", slot_of(d)))).await;
    }
    let tick = r#"{"scheduledTime":"2026-11-23T03:00:00Z","policy":"silver"}"#;

    let report = handle(&deps, event_json(tick)).await.unwrap();

    assert_eq!(report.expired.len(), 2);
    assert!(report.expired.iter().all(|e| e.id.as_str().contains("-billing-")));
    assert_eq!(report.kept, 1);

    let unknown = handle(
        &deps,
        event_json(r#"{"scheduledTime":"2026-11-23T03:00:00Z","policy":"bronze"}"#),
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.kind, ErrorType::NotFound);
}

#[tokio::test]
async fn a_tick_dated_decades_ago_or_in_the_future_is_refused_and_expires_nothing() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    daily(&fakes, &orders, 10).await;
    let before = (snapshot_names(&fakes), fakes.catalog.points());
    let calls = fakes.catalog.calls();
    for (payload, time, bound) in [
        (
            include_str!("../../../events/expire-recovery-points/future-tick.json"),
            "2036-11-23T03:00:00Z",
            "MAX_EVENT_SKEW",
        ),
        (
            include_str!("../../../events/expire-recovery-points/stale-tick.json"),
            "1996-11-23T03:00:00Z",
            "MAX_EVENT_AGE",
        ),
    ] {
        let err = handle(&deps, event_json(payload)).await.unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid, "{err}");
        assert!(
            err.message.contains(time) && err.message.contains(bound),
            "{}",
            err.message
        );
    }
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 0);
    assert_eq!((snapshot_names(&fakes), fakes.catalog.points()), before);
    assert_eq!(fakes.catalog.calls(), calls, "nothing read or written");
    assert!(fakes.catalog.runs().is_empty());
}

#[tokio::test]
async fn a_point_left_expiring_is_not_deleted_once_it_has_become_the_newest_restorable() {
    let (fakes, deps) = setup(&[("gold", GOLD)]);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let points = daily(&fakes, &orders, 3).await;
    // A crash left the oldest point `expiring`; since then the two newer ones have gone
    // (expired by hand, their snapshots deleted): the crashed one is all that is left.
    let crashed = set(&fakes, &points[2], |p| p.status = Status::Expiring).await;
    for p in &points[..2] {
        set(&fakes, p, |p| p.status = Status::Expired).await;
        fakes.snapshots.remove(&orders.region, orders.kind, &p.snapshot_name);
    }

    let report = ok(&deps).await;

    assert!(report.resumed.is_empty(), "{report:#?}");
    let skipped = report.skipped.iter().find(|s| s.id == crashed.id.to_string()).unwrap();
    assert!(skipped.reason.contains("newest restorable"), "{}", skipped.reason);
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Delete), 0);
    assert_eq!(snapshot_names(&fakes), BTreeSet::from([crashed.snapshot_name.clone()]));
    assert_eq!(stored(&fakes, &crashed.id).status, Status::Expiring);
}
