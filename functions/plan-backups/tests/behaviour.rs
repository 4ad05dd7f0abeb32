//! `plan-backups` through its Lambda entry point, against the in-memory fakes: the dry run
//! explains what would happen and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat::ErrorType;
use lifeboat_domain::{PolicyName, RecoveryPoint, ResourceKind, ResourceRef, Slot, Status};
use lifeboat_ports::{Catalog, SnapshotStore, Tag};
use lifeboat_testkit::{Fakes, event_json};
use plan_backups::{Deps, handle};

const GOLD: &str =
    r#"{"name":"gold","every":"1h","rpo":"2h","retention":{"last":2},"priority":1,"copies":[{"region":"us-west-2"}]}"#;

fn now() -> DateTime<Utc> {
    "2026-11-23T18:05:00Z".parse().unwrap()
}

async fn seed(fakes: &Fakes, r: &ResourceRef, hours_ago: i64) {
    let at = now() - chrono::Duration::hours(hours_ago);
    let slot = Slot::containing(at, Duration::from_hours(1));
    let name = format!("lb-gold-{}-{}", r.id, slot.compact());
    fakes
        .snapshots
        .create_snapshot(r, &name, &[Tag::new("lifeboat:created-by", "lifeboat")])
        .await
        .unwrap();
    let rp = RecoveryPoint::new(
        r,
        &PolicyName::parse("gold").unwrap(),
        slot,
        &r.region,
        &name,
        Status::Available,
        at,
    );
    fakes.catalog.insert(&rp).await.unwrap();
}

fn setup() -> (Fakes, Deps, ResourceRef) {
    let fakes = Fakes::new(now());
    fakes.catalog.put_policy_json("gold", GOLD);
    let orders = fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        tier_base: lifeboat_domain::tiering::S3Class::Standard,
    };
    (fakes, deps, orders)
}

#[tokio::test]
async fn the_dry_run_explains_creates_copies_and_expiries_and_changes_nothing() {
    let (fakes, deps, orders) = setup();
    for h in 1..=4 {
        seed(&fakes, &orders, h).await;
    }
    let before = fakes.catalog.points();
    let snapshots_before = fakes.snapshots.snapshots().len();
    let report = handle(
        &deps,
        event_json(include_str!("../../../events/plan-backups/dry-run.json")),
    )
    .await
    .unwrap();
    let plan = &report.plan;
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.creates[0].snapshot_name, "lb-gold-orders-20261123-1800");
    assert!(
        plan.creates[0]
            .reason
            .contains("due: slot 2026-11-23T18:00:00Z of every 1h")
    );
    assert_eq!(plan.copies.len(), 1, "one copy of the resource at a time");
    assert_eq!(plan.waiting.len(), 3);
    assert_eq!(plan.expiries.len(), 2, "retention keeps the last 2 of 4");
    assert!(
        report
            .summary
            .starts_with("1 to create, 1 to copy (3 waiting, 0 blocked), 2 to expire"),
        "{}",
        report.summary
    );
    assert_eq!(fakes.catalog.points(), before, "no catalog change");
    assert!(fakes.catalog.runs().is_empty(), "no run record");
    assert_eq!(fakes.snapshots.snapshots().len(), snapshots_before);
    assert!(fakes.notifier.alerts().is_empty());
}

#[tokio::test]
async fn an_emergency_request_is_planned_first_and_unprotected_resources_are_reported() {
    let (_fakes, deps, _) = setup();
    let report = handle(
        &deps,
        event_json(include_str!(
            "../../../events/plan-backups/emergency-before-migration.json"
        )),
    )
    .await
    .unwrap();
    assert!(report.plan.creates[0].emergency);
    assert_eq!(
        report.plan.creates[0].snapshot_name,
        "lb-gold-orders-em-20261123-180500"
    );
    let json = r#"{"emergencies":[{"resource_arn":"arn:aws:rds:us-east-1:123456789012:db:ghost","reason":"x"}]}"#;
    let report = handle(&deps, event_json(json)).await.unwrap();
    assert_eq!(report.problems[0].code, "not-protected");
}

#[tokio::test]
async fn invalid_policies_are_reported_without_alerts() {
    let (fakes, deps, _) = setup();
    fakes.catalog.put_policy_json(
        "broken",
        r#"{"name":"broken","cron":"61 * * * *","rpo":"1h","retain":1}"#,
    );
    let report = handle(&deps, event_json("{}")).await.unwrap();
    assert_eq!(report.problems.len(), 1);
    assert!(
        report.problems[0].message.contains("cron"),
        "{}",
        report.problems[0].message
    );
    assert!(fakes.notifier.alerts().is_empty(), "a dry run raises no alerts");
}

#[tokio::test]
async fn malformed_requests_are_invalid_and_read_nothing() {
    for (json, needle) in [
        (
            include_str!("../../../events/plan-backups/malformed.json"),
            "unknown field",
        ),
        (r#"{"at":"tomorrow"}"#, "RFC 3339"),
        (r#"{"policy":"Gold!"}"#, "policy name"),
        (
            r#"{"emergencies":[{"resource_arn":"orders","reason":""}]}"#,
            "emergencies[0]",
        ),
        ("[1,2]", "plan request object"),
    ] {
        let (fakes, deps, _) = setup();
        let err = handle(&deps, event_json(json)).await.unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid, "{json}");
        assert!(err.message.contains(needle), "{json}: {}", err.message);
        assert_eq!(fakes.catalog.calls(), 0);
        assert_eq!(fakes.snapshots.total_calls(), 0);
    }
    let (_, deps, _) = setup();
    let err = handle(&deps, event_json(r#"{"policy":"platinum"}"#)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::NotFound);
}

#[tokio::test]
async fn s3_runs_due_a_colder_class_are_in_the_plan_with_their_reason() {
    let (fakes, deps, _) = setup();
    fakes.catalog.put_policy_json(
        "media",
        r#"{"name":"media","every":"1d","rpo":"2d","retain":30,
            "tiers":[{"after":"30d","class":"GLACIER_IR"},{"after":"120d","class":"GLACIER"}]}"#,
    );
    let photos = lifeboat_domain::s3::s3_resource(&lifeboat_domain::Region::parse("us-east-1").unwrap(), "photos", "");
    for (run, days) in [("lb-media-photos-all-old", 40), ("lb-media-photos-all-new", 3)] {
        let at = now() - chrono::Duration::days(days);
        let mut rp = RecoveryPoint::new(
            &photos,
            &PolicyName::parse("media").unwrap(),
            Slot::containing(at, Duration::from_mins(1)),
            &photos.region,
            run,
            Status::Available,
            at,
        );
        rp.objects_mut().unwrap().manifest = Some(lifeboat_domain::manifest::ManifestRef {
            source_bucket: "photos".into(),
            prefix: String::new(),
            backup_bucket: "vault".into(),
            key: format!("lifeboat/photos/all/manifests/{run}.jsonl.zst"),
            sha256: "0".repeat(64),
            objects: 1,
            bytes: 1,
            copied: 1,
            deleted: 0,
        });
        fakes.catalog.insert(&rp).await.unwrap();
    }
    let report = handle(&deps, event_json("{}")).await.unwrap();
    assert_eq!(report.tiering.moves.len(), 1, "{:?}", report.tiering);
    let m = &report.tiering.moves[0];
    assert_eq!(m.due.run, "lb-media-photos-all-old");
    assert_eq!(m.due.to.as_str(), "GLACIER_IR");
    assert!(m.due.reason.contains("40 days old"), "{}", m.due.reason);
    assert!(
        report.summary.contains("1 runs' copies to move to a colder class")
            && report
                .summary
                .contains("tier   us-east-1/s3/lb-media-photos-all-old STANDARD → GLACIER_IR"),
        "{}",
        report.summary
    );
}
