//! Behaviour of `send-digest` through its Lambda entry point, against the in-memory
//! fakes: one message a day with RPO, 3-2-1, failures and storage; replays send nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::{
    AlertKind, Failure, PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, Severity, Slot, Status, Step,
};
use lifeboat_ports::{Catalog, PortError};
use lifeboat_testkit::{Fakes, event_json};
use send_digest::{Deps, DigestConfig, handle};

const TICK: &str = include_str!("../../../events/send-digest/scheduler-tick.json");
const GOLD: &str =
    r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,"copies":[{"region":"us-west-2","kms_key_id":"alias/dr"}]}"#;

fn at() -> DateTime<Utc> {
    "2026-11-24T07:00:00Z".parse().unwrap()
}

fn setup() -> (Fakes, Deps) {
    let fakes = Fakes::new(at() + chrono::Duration::seconds(3));
    fakes.catalog.put_policy_json("gold", GOLD);
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        digest: DigestConfig::from_lookup(|k| (k == "DIGEST_TIMEZONE").then(|| "Europe/Berlin".into())).unwrap(),
    };
    (fakes, deps)
}

async fn point(
    fakes: &Fakes,
    r: &lifeboat_domain::ResourceRef,
    location: &str,
    minutes_ago: i64,
    status: Status,
) -> RecoveryPoint {
    let created = at() - chrono::Duration::minutes(minutes_ago);
    let slot = Slot::containing(created, Duration::from_hours(1));
    let name = format!("lb-gold-{}-{}", r.id, slot.compact());
    let loc = Region::parse(location).unwrap();
    let mut p = RecoveryPoint::new(
        r,
        &PolicyName::parse("gold").unwrap(),
        slot,
        &loc,
        &name,
        status,
        created,
    );
    if loc != r.region {
        p.source = Some(RecoveryPointId::new(&r.region, r.kind, &name));
    }
    fakes.catalog.insert(&p).await.unwrap();
    p
}

#[tokio::test]
async fn the_daily_digest_summarises_the_estate_and_is_sent_once_per_day() {
    let (fakes, deps) = setup();
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let billing = fakes.add_db(ResourceKind::RdsInstance, "billing", "gold");
    point(&fakes, &orders, "us-east-1", 30, Status::Copied).await;
    point(&fakes, &orders, "us-west-2", 30, Status::Available).await;
    let pending = point(&fakes, &billing, "us-east-1", 200, Status::Pending).await;
    let failed = pending
        .fail(
            Failure {
                step: Step::Create,
                code: "snapshot-failed".into(),
                message: "AWS reports the snapshot as failed".into(),
            },
            at() - chrono::Duration::hours(3),
        )
        .unwrap();
    fakes.catalog.update(&failed, pending.version).await.unwrap();

    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(report.sent);
    // 07:00 UTC is 08:00 in Berlin: the same day.
    assert_eq!(report.day.to_string(), "2026-11-24");
    assert_eq!(report.compliance.resources, 2);
    assert_eq!(
        (
            report.compliance.rpo_met,
            report.compliance.rpo_unverified,
            report.compliance.rpo_breached
        ),
        (0, 2, 2)
    );
    assert_eq!(report.failures_24h, 1);
    assert_eq!(report.unsized_points, 2);

    let alerts = fakes.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    let digest = &alerts[0];
    assert_eq!((digest.kind, digest.severity), (AlertKind::Digest, Severity::Info));
    assert_eq!(digest.dedupe_key, "digest#2026-11-24");
    assert!(
        digest
            .summary
            .contains("0 met, 2 unverified, 2 breached of 4 locations"),
        "{}",
        digest.summary
    );
    assert!(
        digest.details["rpo"].contains("billing in us-east-1: BREACHED"),
        "{}",
        digest.details["rpo"]
    );
    assert!(
        digest.details["three_two_one"].contains("orders (2/4)"),
        "{}",
        digest.details["three_two_one"]
    );
    assert!(digest.details["failures_24h"].contains("snapshot-failed"));
    assert!(
        digest.details["backups_24h"].starts_with("1 succeeded, 1 failed"),
        "{}",
        digest.details["backups_24h"]
    );
    assert!(digest.details["storage"].contains("us-west-2 rds-snapshot: 1 recovery point(s), size not recorded"));

    // The same day again (a replay, a retry): nothing more is sent.
    let again = handle(&deps, event_json(TICK)).await.unwrap();
    assert!(!again.sent);
    assert_eq!(fakes.notifier.alerts().len(), 1);
    // The next day is a new digest.
    fakes.clock.advance(chrono::Duration::days(1));
    handle(&deps, event_json(r#"{"scheduledTime":"2026-11-25T07:00:00Z"}"#))
        .await
        .unwrap();
    assert_eq!(fakes.notifier.alerts().len(), 2);
}

#[tokio::test]
async fn a_failed_publish_is_retryable_and_the_retry_sends_the_day() {
    let (fakes, deps) = setup();
    fakes.notifier.fail_next(PortError::Unavailable("sns down".into()));
    let err: FunctionError = handle(&deps, event_json(TICK)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    assert!(handle(&deps, event_json(TICK)).await.unwrap().sent);
    assert_eq!(fakes.notifier.alerts().len(), 1);
}

#[tokio::test]
async fn bad_configuration_and_events_are_refused_with_what_is_wrong() {
    let problems = DigestConfig::from_lookup(|k| match k {
        "DIGEST_TIMEZONE" => Some("Mars/Olympus".into()),
        "STORAGE_PRICES" => Some(r#"{"us-east-1":{"tape":"1"}}"#.into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(problems.problems.len(), 2, "{problems}");
    let (fakes, deps) = setup();
    let err = handle(&deps, event_json(r#"{"scheduledTime":"tomorrow"}"#))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(fakes.notifier.alerts().is_empty());
}
