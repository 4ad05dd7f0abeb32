//! `test-restores` through its handler, on the in-memory fakes: a test is started,
//! waited for, judged against its snapshot and the validation Lambda, recorded and torn
//! down, within its bounds, and never deletes a database it did not make.
#![allow(clippy::unwrap_used, reason = "fixtures and helpers: a failed setup fails the test")]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use lifeboat::ErrorType;
use lifeboat_domain::restore_test::{Facts, Phase, RestoreTest, TAG_RESTORE_TEST};
use lifeboat_domain::{AlertKind, PolicyName, RecoveryPoint, Region, ResourceKind, ResourceRef, Slot, Status};
use lifeboat_ports::dr::DrDatabases as _;
use lifeboat_ports::{Catalog as _, PortError, Tag};
use lifeboat_testkit::dr::{InMemoryDrDatabases, RecordingValidationLambda};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, RecordingNotifier, event, event_for, sample_event};
use test_restores::{Deps, Settings, handle};

const NETWORKS: &str = r#""networks": {
    "us-east-1": {"subnet_group": "isolated", "security_groups": ["sg-noingress"]},
    "us-west-2": {"subnet_group": "isolated", "security_groups": ["sg-noingress"]}
}"#;

fn now() -> DateTime<Utc> {
    "2026-11-23T19:00:00Z".parse().unwrap()
}

fn east() -> Region {
    Region::parse("us-east-1").unwrap()
}

struct World {
    deps: Deps,
    catalog: Arc<InMemoryCatalog>,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<ManualClock>,
    dbs: Arc<InMemoryDrDatabases>,
    validator: Arc<RecordingValidationLambda>,
}

fn world(policy_extra: &str, settings: Settings) -> World {
    let catalog = Arc::new(InMemoryCatalog::new());
    catalog.put_policy_json(
        "gold",
        &format!(
            r#"{{"name": "gold", "every": "1h", "rpo": "2h", "retain": 24, "restore_tests": {{ {policy_extra} }} }}"#
        ),
    );
    let notifier = Arc::new(RecordingNotifier::new());
    let clock = Arc::new(ManualClock::new(now()));
    let dbs = Arc::new(InMemoryDrDatabases::new());
    let validator = Arc::new(RecordingValidationLambda::default());
    let deps = Deps {
        catalog: catalog.clone(),
        notifier: notifier.clone(),
        clock: clock.clone(),
        databases: dbs.clone(),
        validator: validator.clone(),
        settings,
        alert_window: None,
    };
    World {
        deps,
        catalog,
        notifier,
        clock,
        dbs,
        validator,
    }
}

fn facts(engine: &str) -> Facts {
    Facts {
        engine: Some(engine.into()),
        engine_version: Some("16.3".into()),
        storage_gb: Some(20),
        encrypted: Some(true),
        kms_key_id: Some("arn:aws:kms:us-east-1:123456789012:key/prod".into()),
        tags: vec![("team".into(), "payments".into())],
    }
}

impl World {
    /// An available snapshot `name` of database `db` (with the facts RDS records).
    async fn snapshot(&self, kind: ResourceKind, db: &str, name: &str, taken: DateTime<Utc>) -> RecoveryPoint {
        let resource = ResourceRef {
            kind,
            id: db.into(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:{}:{db}", kind.short()),
            region: east(),
        };
        let engine = if kind == ResourceKind::AuroraCluster {
            "aurora-postgresql"
        } else {
            "postgres"
        };
        self.dbs.put_snapshot_facts(&east(), name, facts(engine));
        let rp = RecoveryPoint::new(
            &resource,
            &PolicyName::parse("gold").unwrap(),
            Slot::containing(taken, std::time::Duration::from_hours(1)),
            &east(),
            name,
            Status::Available,
            taken,
        );
        self.catalog.insert(&rp).await.unwrap();
        rp
    }

    async fn tick(&self) -> test_restores::Report {
        self.clock.advance(Duration::minutes(15));
        handle(&self.deps, sample_event("test-restores", "scheduled.json"))
            .await
            .unwrap()
    }

    async fn point(&self, rp: &RecoveryPoint) -> RecoveryPoint {
        self.catalog.get(&rp.id).await.unwrap().unwrap()
    }

    fn failure_alerts(&self) -> usize {
        self.notifier
            .alerts()
            .iter()
            .filter(|a| a.kind == AlertKind::RestoreTestFailed)
            .count()
    }
}

fn settings() -> Settings {
    Settings::default()
}

#[tokio::test]
async fn a_database_snapshot_is_restored_judged_verified_and_torn_down() {
    let w = world(NETWORKS, settings());
    w.dbs.slow_restores();
    let rp = w
        .snapshot(
            ResourceKind::RdsInstance,
            "orders",
            "lb-gold-orders-20261123-1800",
            now(),
        )
        .await;

    let first = w.tick().await;
    assert_eq!(first.started.len(), 1, "{first:?}");
    let held = w.point(&rp).await;
    let test = held.restore_test().cloned().unwrap();
    assert_eq!(
        held.holds.in_use_by,
        Some(test.hold()),
        "retention keeps it while it is read"
    );
    assert_eq!(test.phase, Phase::Restoring);
    let made = w
        .dbs
        .describe(&east(), ResourceKind::RdsInstance, &test.target)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(made.tag(TAG_RESTORE_TEST), Some(rp.id.as_str()));
    assert_eq!(
        made.class.as_deref(),
        Some("db.t4g.micro"),
        "the smallest class of the engine"
    );
    assert!(made.tags.contains(&Tag::new("team", "payments")), "the snapshot's tags");

    let waiting = w.tick().await;
    assert_eq!(waiting.advanced[0].outcome, "restoring");
    assert!(w.point(&rp).await.verified_at.is_none());

    w.dbs.finish_restores();
    let judged = w.tick().await;
    assert_eq!(judged.passed, 1, "{judged:?}");
    let point = w.point(&rp).await;
    let test = point.restore_test().cloned().unwrap();
    assert_eq!(point.verified_at, Some(lifeboat_ports::Clock::now(w.clock.as_ref())));
    assert_eq!(
        test.restore_secs(),
        Some(30 * 60),
        "from the request to available, as measured"
    );
    assert!(
        test.checks.iter().any(|c| c.contains("engine version 16.3")),
        "{:?}",
        test.checks
    );
    assert!(test.by.starts_with("test-restores/"));
    assert_eq!(w.dbs.deleted().len(), 1);
    assert_eq!(
        w.dbs.deleted()[0].final_snapshot,
        None,
        "a copy of a copy: no final snapshot"
    );

    let done = w.tick().await;
    assert_eq!(done.torn_down, 1);
    let done_point = w.point(&rp).await;
    assert_eq!(done_point.holds.in_use_by, None, "released when the test is done");
    let test = done_point.restore_test().cloned().unwrap();
    assert_eq!(test.phase, Phase::Done);
    assert!(test.finished_at.is_some());
    assert!(!w.dbs.exists(&east(), &test.target));
    assert!(w.tick().await.started.is_empty(), "tested within 7 days: not due");
    assert_eq!(w.dbs.restores(), 1);
    assert_eq!(w.failure_alerts(), 0);
}

#[tokio::test]
async fn an_aurora_cluster_gets_a_writer_before_it_is_judged_and_loses_it_first() {
    let w = world(NETWORKS, settings());
    let rp = w
        .snapshot(
            ResourceKind::AuroraCluster,
            "ledger",
            "lb-gold-ledger-20261123-1800",
            now(),
        )
        .await;
    w.tick().await;
    let target = w.point(&rp).await.restore_test().cloned().unwrap().target;
    let second = w.tick().await;
    assert_eq!(second.advanced[0].outcome, "restoring", "the writer is being created");
    assert_eq!(
        w.dbs.writers(),
        vec![(format!("{target}-w"), "db.t4g.medium".to_owned())]
    );
    let third = w.tick().await;
    assert_eq!(third.passed, 1, "{third:?}");
    let deleted: Vec<String> = w.dbs.deleted().into_iter().map(|d| d.id).collect();
    assert_eq!(deleted, vec![format!("{target}-w")], "the writer goes first");
    w.tick().await;
    w.tick().await;
    let deleted: Vec<String> = w.dbs.deleted().into_iter().map(|d| d.id).collect();
    assert_eq!(deleted, vec![format!("{target}-w"), target]);
    assert_eq!(w.point(&rp).await.restore_test().cloned().unwrap().phase, Phase::Done);
}

#[tokio::test]
async fn a_restore_that_differs_from_its_snapshot_fails_unverified_and_alerts_once() {
    let w = world(NETWORKS, settings());
    w.dbs.slow_restores();
    let rp = w
        .snapshot(
            ResourceKind::RdsInstance,
            "orders",
            "lb-gold-orders-20261123-1800",
            now(),
        )
        .await;
    w.tick().await;
    let target = w.point(&rp).await.restore_test().cloned().unwrap().target;
    w.dbs.finish_restores();
    w.dbs.edit(&east(), &target, |db| {
        db.engine_version = Some("15.1".into());
        db.encrypted = Some(false);
    });
    let judged = w.tick().await;
    assert_eq!(judged.failed, 1);
    let point = w.point(&rp).await;
    assert!(point.verified_at.is_none());
    let failure = point.verification_failed.unwrap();
    assert!(
        failure.problems.iter().any(|p| p.contains("engine version is 15.1")),
        "{failure:?}"
    );
    assert!(failure.problems.iter().any(|p| p.contains("not")), "{failure:?}");
    w.tick().await;
    w.tick().await;
    assert_eq!(w.failure_alerts(), 1);
    assert!(!w.dbs.exists(&east(), &target), "torn down all the same");
}

#[tokio::test]
async fn the_validation_lambda_gets_the_endpoint_and_can_fail_the_test() {
    let w = world(
        &format!(
            r#"{NETWORKS}, "validation_lambda": "arn:aws:lambda:us-east-1:123456789012:function:lifeboat-restore-validate-row-counts""#
        ),
        settings(),
    );
    w.validator
        .answer(Ok(serde_json::json!({"ok": false, "reason": "orders table is empty"})));
    let rp = w
        .snapshot(
            ResourceKind::RdsInstance,
            "orders",
            "lb-gold-orders-20261123-1800",
            now(),
        )
        .await;
    w.tick().await;
    let judged = w.tick().await;
    assert_eq!(judged.failed, 1, "{judged:?}");
    let calls = w.validator.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1["purpose"], "restore-test");
    assert!(calls[0].1["endpoint"].as_str().is_some_and(|e| e.contains("lbrt-")));
    let problems = w.point(&rp).await.restore_test().cloned().unwrap().problems;
    assert!(
        problems.iter().any(|p| p.contains("orders table is empty")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_database_holding_the_test_name_that_is_not_the_tests_is_never_deleted() {
    let w = world(NETWORKS, settings());
    let rp = w
        .snapshot(
            ResourceKind::RdsInstance,
            "orders",
            "lb-gold-orders-20261123-1800",
            now(),
        )
        .await;
    // The next tick starts the test at now + 15 minutes: its name is known in advance.
    let target = RestoreTest::start(&rp, "x", now() + Duration::minutes(15)).target;
    w.dbs.put(
        &east(),
        ResourceKind::RdsInstance,
        &target,
        vec![Tag::new("owner", "someone-else")],
    );
    w.tick().await;
    w.tick().await;
    w.tick().await;
    assert!(w.dbs.deleted().is_empty(), "someone else's database is left alone");
    assert!(w.dbs.exists(&east(), &target));
    let point = w.point(&rp).await;
    assert!(point.verified_at.is_none());
    assert!(
        point.restore_test().cloned().unwrap().problems[0].contains("did not make"),
        "the test says why"
    );
    assert_eq!(w.failure_alerts(), 1);
}

#[tokio::test]
async fn concurrency_budget_and_network_bound_what_starts() {
    let w = world(
        "",
        Settings {
            max_concurrent: 2,
            ..Settings::default()
        },
    );
    w.dbs.slow_restores();
    for db in ["a", "b", "c"] {
        w.snapshot(
            ResourceKind::RdsInstance,
            db,
            &format!("lb-gold-{db}-20261123-1800"),
            now(),
        )
        .await;
    }
    let no_network = w.tick().await;
    assert!(no_network.started.is_empty());
    assert_eq!(no_network.deferred.len(), 3);
    assert!(
        no_network.deferred[0].contains("no isolated network"),
        "{:?}",
        no_network.deferred
    );
    w.tick().await;
    assert_eq!(w.failure_alerts(), 1, "one alert per region and day");

    let w = world(
        NETWORKS,
        Settings {
            max_concurrent: 2,
            ..Settings::default()
        },
    );
    w.dbs.slow_restores();
    for db in ["a", "b", "c"] {
        w.snapshot(
            ResourceKind::RdsInstance,
            db,
            &format!("lb-gold-{db}-20261123-1800"),
            now(),
        )
        .await;
    }
    let bounded = w.tick().await;
    assert_eq!(bounded.started.len(), 2);
    assert!(
        bounded.deferred[0].contains("RESTORE_TEST_MAX_CONCURRENT"),
        "{:?}",
        bounded.deferred
    );

    let w = world(
        NETWORKS,
        Settings {
            daily_budget: std::time::Duration::from_hours(1),
            ..Settings::default()
        },
    );
    w.dbs.slow_restores();
    for db in ["a", "b", "c", "d", "e", "f", "g"] {
        w.snapshot(
            ResourceKind::RdsInstance,
            db,
            &format!("lb-gold-{db}-20261123-1800"),
            now(),
        )
        .await;
    }
    let budget = w.tick().await;
    assert_eq!(budget.started.len(), 2, "bounded by the default concurrency first");
    // Two tests of at least ten minutes each; after four hours they have used the budget.
    w.clock.advance(Duration::hours(4));
    let spent = w.tick().await;
    assert!(spent.started.is_empty(), "{spent:?}");
    assert!(
        spent
            .deferred
            .iter()
            .all(|d| d.contains("budget") || d.contains("in flight")),
        "{:?}",
        spent.deferred
    );
}

#[tokio::test]
async fn a_replayed_event_does_nothing_twice_and_a_crash_before_the_restore_is_continued() {
    let w = world(NETWORKS, settings());
    w.dbs.slow_restores();
    let rp = w
        .snapshot(
            ResourceKind::RdsInstance,
            "orders",
            "lb-gold-orders-20261123-1800",
            now(),
        )
        .await;
    w.clock.advance(Duration::minutes(15));
    let payload = serde_json::json!({});
    handle(&w.deps, event_for(payload.clone(), "req-1")).await.unwrap();
    let again = handle(&w.deps, event_for(payload, "req-1")).await.unwrap();
    assert!(again.started.is_empty());
    assert_eq!(w.dbs.restores(), 1);

    let other = w
        .snapshot(
            ResourceKind::RdsInstance,
            "billing",
            "lb-gold-billing-20261123-1800",
            now(),
        )
        .await;
    // RDS throttles the request: the test stays recorded with no database, and the next
    // run asks again.
    w.dbs.fail_next_restore(PortError::Throttled("Rate exceeded".into()));
    w.tick().await;
    let test = w.point(&other).await.restore_test().cloned().unwrap();
    assert_eq!(test.phase, Phase::Restoring);
    assert!(!w.dbs.exists(&east(), &test.target));
    w.tick().await;
    assert!(w.dbs.exists(&east(), &test.target), "asked again");
    assert_eq!(
        w.point(&rp).await.restore_test().cloned().unwrap().phase,
        Phase::Restoring
    );
}

#[tokio::test]
async fn one_point_on_request_and_bad_requests_named() {
    let w = world(NETWORKS, settings());
    w.snapshot(
        ResourceKind::RdsInstance,
        "orders",
        "lb-gold-orders-20261123-1800",
        now(),
    )
    .await;
    let one = handle(&w.deps, sample_event("test-restores", "one-point.json"))
        .await
        .unwrap();
    assert_eq!(one.started.len(), 1);
    let bad = handle(&w.deps, sample_event("test-restores", "bad-point.json"))
        .await
        .unwrap_err();
    assert_eq!(bad.kind, ErrorType::Invalid);
    assert!(bad.message.contains("recovery point id"), "{}", bad.message);
    for payload in [
        serde_json::json!([]),
        serde_json::json!({"recoveryPoint": 7}),
        serde_json::json!({"mode": "all"}),
    ] {
        let e = handle(&w.deps, event(payload)).await.unwrap_err();
        assert_eq!(e.kind, ErrorType::Invalid, "{}", e.message);
    }
    let missing = handle(
        &w.deps,
        event(serde_json::json!({"recoveryPoint": "us-east-1/db/lb-gold-gone-20261123-1800"})),
    )
    .await
    .unwrap_err();
    assert_eq!(missing.kind, ErrorType::NotFound);
}
