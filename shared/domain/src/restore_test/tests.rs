use super::*;
use crate::recovery_point::tests::sample;
use crate::{RecoveryPointId, Status};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn point(name: &str, location: &str, created: &str, status: Status) -> RecoveryPoint {
    let mut p = sample(status);
    p.location = Region::parse(location).unwrap();
    p.snapshot_name = name.into();
    p.id = RecoveryPointId::new(&p.location, p.resource.kind, name);
    p.created_at = at(created);
    p
}

#[test]
fn the_newest_restorable_point_of_each_location_is_due() {
    let points = vec![
        point("a1", "us-east-1", "2026-11-20T00:00:00Z", Status::Copied),
        point("a2", "us-east-1", "2026-11-21T00:00:00Z", Status::Copied),
        point("a3", "us-east-1", "2026-11-22T00:00:00Z", Status::Pending),
        point("b1", "us-west-2", "2026-11-21T00:10:00Z", Status::Available),
    ];
    let due = due(&points, &RestoreTestRule::default(), at("2026-11-22T01:00:00Z"));
    let names: Vec<&str> = due.iter().map(|p| p.snapshot_name.as_str()).collect();
    assert_eq!(names, ["a2", "b1"]);
}

#[test]
fn a_test_in_flight_or_recent_holds_the_location_back() {
    let now = at("2026-11-22T01:00:00Z");
    let mut old = point("a1", "us-east-1", "2026-11-20T00:00:00Z", Status::Copied);
    let mut t = RestoreTest::start(&old, "test-restores/r1", at("2026-11-20T01:00:00Z"));
    old.snapshot_mut().unwrap().restore_test = Some(t.clone());
    let newer = point("a2", "us-east-1", "2026-11-21T00:00:00Z", Status::Copied);
    let rule = RestoreTestRule::default();
    assert!(due(&[old.clone(), newer.clone()], &rule, now).is_empty(), "in flight");
    t.phase = Phase::Done;
    old.snapshot_mut().unwrap().restore_test = Some(t);
    assert!(
        due(&[old.clone(), newer.clone()], &rule, now).is_empty(),
        "started 2 days ago, every 7 days"
    );
    let later = at("2026-11-28T00:00:00Z");
    let both = [old, newer];
    let chosen = due(&both, &rule, later);
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].snapshot_name, "a2");
}

#[test]
fn locations_limit_what_is_tested_and_a_disabled_rule_tests_nothing() {
    let points = vec![
        point("a1", "us-east-1", "2026-11-21T00:00:00Z", Status::Copied),
        point("b1", "us-west-2", "2026-11-21T00:10:00Z", Status::Available),
    ];
    let now = at("2026-11-22T00:00:00Z");
    let mut problems = Vec::new();
    let copies = RestoreTestRule::from_document(
        &RestoreTestDocument {
            locations: vec!["copies".into()],
            ..RestoreTestDocument::default()
        },
        &mut problems,
    )
    .unwrap();
    assert_eq!(due(&points, &copies, now)[0].snapshot_name, "b1");
    assert_eq!(due(&points, &copies, now).len(), 1);
    let off = RestoreTestRule {
        enabled: false,
        ..RestoreTestRule::default()
    };
    assert!(due(&points, &off, now).is_empty());
}

#[test]
fn a_document_with_problems_names_each_one() {
    let mut problems = Vec::new();
    let doc: RestoreTestDocument = serde_json::from_value(serde_json::json!({
        "every": "5m",
        "locations": ["moon"],
        "class": "large",
        "networks": {"us-east-1": {"subnet_group": "isolated"}},
        "validation_lambda": "checker",
    }))
    .unwrap();
    assert!(RestoreTestRule::from_document(&doc, &mut problems).is_none());
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("networks.us-east-1")));
}

#[test]
fn a_rule_survives_its_document() {
    let doc: RestoreTestDocument = serde_json::from_value(serde_json::json!({
        "every": "1day",
        "locations": ["source", "eu-west-1"],
        "networks": {"us-east-1": {"subnet_group": "isolated", "security_groups": ["sg-1"]}},
        "validation_lambda": "arn:aws:lambda:us-east-1:123456789012:function:lifeboat-restore-validate-orders",
    }))
    .unwrap();
    let mut problems = Vec::new();
    let rule = RestoreTestRule::from_document(&doc, &mut problems).unwrap();
    assert!(problems.is_empty());
    let again = RestoreTestRule::from_document(&rule.to_document().unwrap(), &mut problems).unwrap();
    assert_eq!(again, rule);
    assert_eq!(RestoreTestRule::default().to_document(), None);
}

#[test]
fn comparison_names_what_differs() {
    let snap = Facts {
        engine: Some("postgres".into()),
        engine_version: Some("16.3".into()),
        storage_gb: Some(20),
        encrypted: Some(true),
        kms_key_id: Some("arn:aws:kms:us-west-2:123456789012:key/abc".into()),
        tags: vec![("team".into(), "payments".into())],
    };
    let same = Facts {
        kms_key_id: Some("abc".into()),
        ..snap.clone()
    };
    let (ok, bad) = compare(&snap, &same);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(ok.len(), 6, "{ok:?}");
    let other = Facts {
        engine_version: Some("15.1".into()),
        storage_gb: Some(10),
        encrypted: Some(false),
        kms_key_id: Some("def".into()),
        tags: Vec::new(),
        ..snap.clone()
    };
    let (_, bad) = compare(&snap, &other);
    assert_eq!(bad.len(), 5, "{bad:?}");
}

#[test]
fn names_are_valid_rds_identifiers_and_differ_per_start() {
    let p = point("a1", "us-east-1", "2026-11-21T00:00:00Z", Status::Copied);
    let a = RestoreTest::start(&p, "r", at("2026-11-22T00:00:00Z"));
    let b = RestoreTest::start(&p, "r", at("2026-11-29T00:00:00Z"));
    assert_ne!(a.target, b.target);
    for name in [&a.target, &a.writer()] {
        assert!(crate::ids::is_rds_identifier(name), "{name}");
    }
}

#[test]
fn evidence_and_budget() {
    let p = point("a1", "us-east-1", "2026-11-21T00:00:00Z", Status::Copied);
    let mut t = RestoreTest::start(&p, "r", at("2026-11-22T00:00:00Z"));
    assert_eq!(
        t.instance_secs(at("2026-11-22T00:01:00Z")),
        600,
        "billed ten minutes at least"
    );
    t.ready_at = Some(at("2026-11-22T00:12:00Z"));
    assert!(!t.passed(), "not judged while restoring");
    t.phase = Phase::TearingDown;
    assert!(t.passed());
    assert_eq!(t.restore_secs(), Some(720));
    t.finished_at = Some(at("2026-11-22T00:30:00Z"));
    t.phase = Phase::Done;
    let mut with = p;
    with.snapshot_mut().unwrap().restore_test = Some(t);
    assert_eq!(
        used_today(&[with.clone()], at("2026-11-22T12:00:00Z")),
        Duration::from_mins(30)
    );
    assert_eq!(used_today(&[with], at("2026-11-23T12:00:00Z")), Duration::ZERO);
    assert_eq!(smallest_class("aurora-postgresql"), "db.t4g.medium");
    assert_eq!(smallest_class("postgres"), "db.t4g.micro");
}
