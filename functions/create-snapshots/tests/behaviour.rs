//! Behaviour of `create-snapshots` through its Lambda entry point, against the in-memory
//! fakes (the same flows run against the local AWS stack in the `lifeboat-tests` crate).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use create_snapshots::{Deps, handle};
use lambda_runtime::Diagnostic;
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::naming::tags;
use lifeboat_domain::{AlertKind, ResourceKind, Severity, Status};
use lifeboat_ports::{PortError, SnapshotStatus, SnapshotStore, tag_value};
use lifeboat_testkit::{Fakes, SnapshotOp, event, event_json, event_with};
use serde_json::{Value, json};

const GOLD: &str =
    r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,"priority":1,"copies":[{"region":"us-west-2"}]}"#;
const SILVER: &str = r#"{"name":"silver","every":"1day","rpo":"26h","retain":7}"#;
const TICK: &str = include_str!("../../../events/create-snapshots/scheduler-tick.json");

fn now() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

fn setup() -> (Fakes, Deps) {
    let fakes = Fakes::new(now());
    fakes.catalog.put_policy_json("gold", GOLD);
    fakes.catalog.put_policy_json("silver", SILVER);
    fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    fakes.add_db(ResourceKind::RdsInstance, "billing", "gold");
    fakes.add_db(ResourceKind::AuroraCluster, "ledger", "gold");
    fakes.add_db(ResourceKind::RdsInstance, "reports", "silver");
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        runs: create_snapshots::DataRuns::default(),
    };
    (fakes, deps)
}

#[tokio::test]
async fn a_tick_snapshots_every_protected_resource_once_and_records_it() {
    let (fakes, deps) = setup();
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    let created: Vec<_> = report.created.iter().map(ToString::to_string).collect();
    assert_eq!(
        created,
        [
            "us-east-1/cluster/lb-gold-ledger-20261123-1800",
            "us-east-1/db/lb-gold-billing-20261123-1800",
            "us-east-1/db/lb-gold-orders-20261123-1800",
            "us-east-1/db/lb-silver-reports-20261123-0000",
        ]
    );
    assert_eq!(report.slots["gold"], "2026-11-23T18:00:00Z");
    let points = fakes.catalog.points();
    assert_eq!(points.len(), 4);
    assert!(
        points
            .iter()
            .all(|p| p.status == Status::Available && p.version == 1 && !p.adopted)
    );
    for s in fakes.snapshots.snapshots() {
        assert_eq!(tag_value(&s.tags, tags::CREATED_BY), Some("lifeboat"));
        assert!(
            tag_value(&s.tags, tags::SOURCE)
                .unwrap()
                .starts_with("arn:aws:rds:us-east-1:")
        );
        assert!(tag_value(&s.tags, tags::SLOT).is_some() && tag_value(&s.tags, tags::POLICY).is_some());
    }
    assert!(fakes.notifier.alerts().is_empty());
    assert_eq!(fakes.catalog.runs().len(), 1);
}

#[tokio::test]
async fn an_eventbridge_rule_event_for_one_policy_touches_only_that_policy() {
    let (fakes, deps) = setup();
    let report = handle(
        &deps,
        event_json(include_str!(
            "../../../events/create-snapshots/eventbridge-scheduled-event.json"
        )),
    )
    .await
    .unwrap();
    assert_eq!(report.created.len(), 3);
    assert!(fakes.catalog.points().iter().all(|p| p.policy.as_str() == "gold"));
}

#[tokio::test]
async fn a_hundred_sequential_and_ten_concurrent_deliveries_make_one_snapshot_per_resource() {
    let (fakes, deps) = setup();
    for _ in 0..100 {
        handle(&deps, event_json(TICK)).await.unwrap();
    }
    let concurrent = futures::future::join_all((0..10).map(|_| handle(&deps, event_json(TICK)))).await;
    assert!(concurrent.iter().all(Result::is_ok));
    assert_eq!(fakes.snapshots.snapshots().len(), 4);
    assert_eq!(fakes.catalog.points().len(), 4);
    // Replays after the first cost one listing and one batch read, no create call.
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Create), 4);
    assert!(fakes.notifier.alerts().is_empty());
}

#[tokio::test]
async fn ten_concurrent_first_deliveries_race_to_one_snapshot_and_one_record() {
    let (fakes, deps) = setup();
    let results = futures::future::join_all((0..10).map(|_| handle(&deps, event_json(TICK)))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(fakes.snapshots.snapshots().len(), 4);
    assert_eq!(fakes.catalog.points().len(), 4);
}

#[tokio::test]
async fn a_crash_between_create_and_record_is_healed_by_the_next_delivery() {
    let (fakes, deps) = setup();
    // The first delivery made the snapshot, then died before writing the catalog.
    let orders = fakes
        .snapshots
        .resources(&lifeboat_domain::Region::parse("us-east-1").unwrap())
        .await
        .unwrap();
    let orders = orders.iter().find(|d| d.resource.id == "orders").unwrap();
    let slot = lifeboat_domain::Slot::containing(now(), std::time::Duration::from_hours(1));
    let name = "lb-gold-orders-20261123-1800";
    let tags = create_snapshots::snapshot_tags(&"gold".to_owned().try_into().unwrap(), slot, &orders.resource);
    fakes
        .snapshots
        .create_snapshot(&orders.resource, name, &tags)
        .await
        .unwrap();

    let report = handle(&deps, event_json(TICK)).await.unwrap();
    let adopted: Vec<_> = report.adopted.iter().map(ToString::to_string).collect();
    assert_eq!(adopted, ["us-east-1/db/lb-gold-orders-20261123-1800"]);
    assert_eq!(report.created.len(), 3);
    assert_eq!(fakes.snapshots.snapshots().iter().filter(|s| s.name == name).count(), 1);
    let rp = fakes
        .catalog
        .points()
        .into_iter()
        .find(|p| p.snapshot_name == name)
        .unwrap();
    assert!(rp.adopted);
}

#[tokio::test]
async fn malformed_and_unknown_events_are_rejected_before_any_aws_call() {
    for (file, needle) in [
        (
            include_str!("../../../events/create-snapshots/malformed.json"),
            "RFC 3339",
        ),
        (
            include_str!("../../../events/create-snapshots/unknown-event.json"),
            "unknown event",
        ),
    ] {
        let (fakes, deps) = setup();
        let err = handle(&deps, event_json(file)).await.unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid);
        assert!(err.message.contains(needle), "{}", err.message);
        let diagnostic = Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "Invalid");
        assert_eq!(fakes.snapshots.total_calls(), 0);
        assert_eq!(fakes.catalog.calls(), 0);
        assert!(fakes.notifier.alerts().is_empty());
    }
}

#[tokio::test]
async fn an_unknown_policy_in_the_event_is_not_found() {
    let (fakes, deps) = setup();
    let err = handle(
        &deps,
        event_json(r#"{"scheduledTime":"2026-11-23T18:15:00Z","policy":"platinum"}"#),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorType::NotFound);
    assert!(err.message.contains("platinum"));
    assert_eq!(fakes.snapshots.calls(SnapshotOp::Create), 0);
}

#[tokio::test]
async fn a_snapshot_aws_reports_failed_is_recorded_and_alerted_once() {
    let (fakes, deps) = setup();
    fakes.snapshots.set_new_status(SnapshotStatus::Failed);
    handle(&deps, event_json(TICK)).await.unwrap();
    handle(&deps, event_json(TICK)).await.unwrap();
    let points = fakes.catalog.points();
    assert!(
        points
            .iter()
            .all(|p| p.status == Status::Failed && p.failure.as_ref().unwrap().code == "snapshot-failed")
    );
    let alerts = fakes.notifier.alerts();
    assert_eq!(alerts.len(), 4, "one alert per failed snapshot, none on replay");
    assert!(
        alerts
            .iter()
            .all(|a| a.kind == AlertKind::BackupFailed && a.recovery_point.is_some())
    );
}

#[tokio::test]
async fn a_quota_refusal_is_recorded_as_failed_and_alerted_once() {
    let (fakes, deps) = setup();
    fakes.snapshots.fail_next(
        SnapshotOp::Create,
        PortError::QuotaExceeded("SnapshotQuotaExceeded: 100 manual snapshots".into()),
    );
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].code, "quota");
    handle(&deps, event_json(TICK)).await.unwrap();
    let failed: Vec<_> = fakes
        .catalog
        .points()
        .into_iter()
        .filter(|p| p.status == Status::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].failure.as_ref().unwrap().code, "quota");
    let alerts = fakes.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity, Severity::Critical);
    assert_eq!(fakes.snapshots.snapshots().len(), 3);
}

#[tokio::test]
async fn throttling_after_retries_is_retryable_and_the_retry_completes_without_duplicates() {
    let (fakes, deps) = setup();
    fakes
        .snapshots
        .fail_next(SnapshotOp::Create, PortError::Throttled("Rate exceeded".into()));
    let err: FunctionError = handle(&deps, event_json(TICK)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    assert_eq!(fakes.catalog.points().len(), 3, "the others were done and recorded");
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.created.len(), 1);
    assert_eq!(report.already_recorded, 3);
    assert_eq!(fakes.snapshots.snapshots().len(), 4);
    assert_eq!(fakes.catalog.points().len(), 4);
    assert!(
        fakes.notifier.alerts().is_empty(),
        "throttling that a retry cures is not an alert"
    );
}

#[tokio::test]
async fn a_busy_resource_is_retried_by_later_ticks_of_the_same_slot() {
    let (fakes, deps) = setup();
    fakes.snapshots.fail_next(
        SnapshotOp::Create,
        PortError::InvalidState("InvalidDBInstanceState: modifying".into()),
    );
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.failed[0].code, "invalid-state");
    assert_eq!(fakes.catalog.points().len(), 3);
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.created.len(), 1);
    assert_eq!(fakes.notifier.alerts().len(), 1, "one warning for the busy resource");
}

#[tokio::test]
async fn resources_tagged_with_an_unknown_or_invalid_policy_are_alerted_and_the_rest_still_run() {
    let (fakes, deps) = setup();
    fakes
        .catalog
        .put_policy_json("broken", r#"{"name":"broken","every":"1h","rpo":"5m","retain":0}"#);
    fakes.add_db(ResourceKind::RdsInstance, "legacy", "platinum");
    fakes.add_db(ResourceKind::RdsInstance, "scratch", "broken");
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.created.len(), 4);
    let skipped: BTreeSet<_> = report
        .skipped
        .iter()
        .map(|s| s.subject.rsplit(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(skipped, BTreeSet::from(["legacy".to_owned(), "scratch".to_owned()]));
    handle(&deps, event_json(TICK)).await.unwrap();
    let kinds: Vec<_> = fakes.notifier.alerts().iter().map(|a| a.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == AlertKind::UnknownPolicy).count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == AlertKind::InvalidPolicy).count(), 1);
    let invalid = fakes
        .notifier
        .alerts()
        .into_iter()
        .find(|a| a.kind == AlertKind::InvalidPolicy)
        .unwrap();
    assert!(
        invalid.details["problems"].contains("keeps nothing"),
        "{:?}",
        invalid.details
    );
}

/// Stored policies that do not parse are each alerted under the key they are stored
/// under, with the parse error, once per policy per day: one broken policy never hides
/// another.
#[tokio::test]
async fn every_unparsable_policy_is_alerted_under_its_own_key_once_a_day() {
    let (fakes, deps) = setup();
    fakes
        .catalog
        .put_policy_json("orders-gold", r#"{"name": "orders-gold", "every": 3}"#);
    fakes.catalog.put_policy_json("ledger", "not json at all");
    handle(&deps, event_json(TICK)).await.unwrap();
    handle(&deps, event_json(TICK)).await.unwrap();
    let invalid: Vec<_> = fakes
        .notifier
        .alerts()
        .into_iter()
        .filter(|a| a.kind == AlertKind::InvalidPolicy)
        .collect();
    assert_eq!(invalid.len(), 2, "{invalid:?}");
    // Each alert names its own key and carries its own parse error.
    for (key, error) in [
        ("orders-gold", "invalid type: integer `3`"),
        ("ledger", "expected ident"),
    ] {
        let a = invalid
            .iter()
            .find(|a| a.summary.contains(&format!("{key:?}")))
            .unwrap_or_else(|| panic!("no alert names {key}: {invalid:?}"));
        assert!(a.details["problems"].contains("not a valid policy document"), "{a:?}");
        assert!(a.details["problems"].contains(error), "{key}: {a:?}");
        assert_eq!(a.details["policy"], key, "{a:?}");
        assert_eq!(a.dedupe_key, format!("invalid-policy#{key}#2026-11-23"), "{a:?}");
        assert!(!a.summary.contains("unparsed"), "{a:?}");
    }

    // The next day, each is alerted once more.
    let next_day = "2026-11-24T18:15:00Z";
    fakes.clock.set(next_day.parse().unwrap());
    for _ in 0..2 {
        handle(&deps, event_json(&format!(r#"{{"scheduledTime":"{next_day}"}}"#)))
            .await
            .unwrap();
    }
    let keys: BTreeSet<String> = fakes
        .notifier
        .alerts()
        .into_iter()
        .filter(|a| a.kind == AlertKind::InvalidPolicy)
        .map(|a| a.dedupe_key)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(
            [
                "invalid-policy#ledger#2026-11-23",
                "invalid-policy#ledger#2026-11-24",
                "invalid-policy#orders-gold#2026-11-23",
                "invalid-policy#orders-gold#2026-11-24",
            ]
            .map(String::from)
        )
    );
    assert_eq!(
        fakes
            .notifier
            .alerts()
            .iter()
            .filter(|a| a.kind == AlertKind::InvalidPolicy)
            .count(),
        4
    );
}

#[tokio::test]
async fn arbitrary_json_events_never_panic_and_are_rejected_as_invalid() {
    let (fakes, deps) = setup();
    for raw in [
        json!(null),
        json!(42),
        json!("x"),
        json!([]),
        json!({}),
        json!({"scheduledTime": 5}),
        json!({"detail-type": 1}),
    ] {
        let err = handle(&deps, event(raw)).await.unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid);
    }
    assert_eq!(fakes.snapshots.total_calls(), 0);
}

#[tokio::test]
async fn a_run_out_of_time_starts_one_chunk_ends_retryable_and_the_retry_finishes() {
    let fakes = Fakes::new(now());
    fakes.catalog.put_policy_json("gold", GOLD);
    for i in 0..40 {
        fakes.add_db(ResourceKind::RdsInstance, &format!("db{i:02}"), "gold");
    }
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        runs: create_snapshots::DataRuns::default(),
    };
    let tick: Value = serde_json::from_str(TICK).unwrap();
    // Past its stop instant: the first chunk (32) is started, the rest is left for the retry.
    let err = handle(&deps, event_with(tick.clone(), "late", Some(now())))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    assert!(err.message.contains("8 backup(s) not started"), "{}", err.message);
    assert_eq!(fakes.snapshots.snapshots().len(), 32);
    assert_eq!(fakes.catalog.points().len(), 32);
    // The retry, with time to spare, starts the other 8, once.
    let later = now() + chrono::Duration::minutes(10);
    let report = handle(&deps, event_with(tick, "retry", Some(later))).await.unwrap();
    assert_eq!(
        (report.created.len(), report.already_recorded, report.remaining),
        (8, 32, 0)
    );
    assert_eq!(fakes.snapshots.snapshots().len(), 40);
}

/// With `ALERT_DEDUPE_WINDOW`, the same kind of alert about the same resource is sent once
/// per window: a resource busy at two consecutive hourly slots warns once with a 2 h
/// window, twice without one.
#[tokio::test]
async fn the_alert_window_sends_a_repeated_warning_for_one_resource_once() {
    for (window, expected) in [(Some(chrono::Duration::hours(2)), 1), (None, 2)] {
        let fakes = Fakes::new(now());
        fakes.catalog.put_policy_json("gold", GOLD);
        fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
        let mut ports = fakes.ports();
        ports.alert_window = window;
        let deps = Deps {
            ports,
            config: Fakes::config(),
            runs: create_snapshots::DataRuns::default(),
        };
        for (i, at) in ["2026-11-23T18:15:00Z", "2026-11-23T19:15:00Z"].into_iter().enumerate() {
            fakes.clock.set(at.parse().unwrap());
            fakes.snapshots.fail_next(
                SnapshotOp::Create,
                PortError::InvalidState("InvalidDBInstanceState: modifying".into()),
            );
            let report = handle(&deps, event_json(&format!(r#"{{"scheduledTime":"{at}"}}"#)))
                .await
                .unwrap();
            assert_eq!(report.failed.len(), 1, "slot {i}");
        }
        assert_eq!(fakes.notifier.alerts().len(), expected, "window {window:?}");
    }
}

#[tokio::test]
async fn a_tick_dated_decades_ago_or_in_the_future_is_refused_and_changes_nothing() {
    let (fakes, deps) = setup();
    let stale = include_str!("../../../events/create-snapshots/stale-tick.json");
    let future = r#"{"scheduledTime":"2026-11-23T19:15:00Z"}"#;
    for (payload, time, bound) in [
        (stale, "1996-11-23T18:15:00Z", "MAX_EVENT_AGE"),
        (future, "2026-11-23T19:15:00Z", "MAX_EVENT_SKEW"),
    ] {
        let err = handle(&deps, event_json(payload)).await.unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid, "{err}");
        assert!(
            err.message.contains(time) && err.message.contains(bound),
            "{}",
            err.message
        );
    }
    assert!(fakes.snapshots.snapshots().is_empty());
    assert_eq!(fakes.snapshots.total_calls(), 0);
    assert!(fakes.catalog.points().is_empty());
    assert!(fakes.catalog.runs().is_empty());
    assert!(fakes.notifier.alerts().is_empty());
}
