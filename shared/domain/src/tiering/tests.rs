#![allow(clippy::unwrap_used)]
use super::*;
use crate::{PolicyName, ResourceKind, ResourceRef, Slot, Status};

fn docs(steps: &[(&str, &str)]) -> Vec<TierStepDocument> {
    steps
        .iter()
        .map(|(a, c)| TierStepDocument {
            after: (*a).into(),
            class: (*c).into(),
        })
        .collect()
}

#[test]
fn a_sound_schedule_is_accepted_and_targets_by_age() {
    let s = TierSchedule::from_documents(&docs(&[
        ("30d", "GLACIER_IR"),
        ("120d", "glacier"),
        ("300d", "DEEP_ARCHIVE"),
    ]))
    .unwrap();
    let day = chrono::Duration::days;
    assert_eq!(s.target(day(29)), None);
    assert_eq!(s.target(day(30)).unwrap().class, S3Class::GlacierIr);
    assert_eq!(s.target(day(119)).unwrap().class, S3Class::GlacierIr);
    assert_eq!(s.target(day(120)).unwrap().class, S3Class::Glacier);
    assert_eq!(s.target(day(4000)).unwrap().class, S3Class::DeepArchive);
    assert_eq!(TierSchedule::from_documents(&s.to_documents()).unwrap(), s);
}

#[test]
fn every_problem_is_listed() {
    // The AWS docs' own example leaves GLACIER_IR after 60 of its 90 days.
    let p = TierSchedule::from_documents(&docs(&[
        ("30d", "GLACIER_IR"),
        ("90d", "GLACIER"),
        ("180d", "DEEP_ARCHIVE"),
    ]))
    .unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("GLACIER_IR from day 30 to day 90 is 60 days"), "{p:?}");
    assert!(p[0].contains("at day 120 or later"), "{p:?}");
    let p = TierSchedule::from_documents(&docs(&[
        ("10d", "STANDARD_IA"),
        ("5d", "GLACIER"),
        ("2h", "GLACIER_IR"),
        ("soon", "TAPE"),
        ("1d", "STANDARD"),
    ]))
    .unwrap_err();
    let all = p.join("\n");
    for want in [
        "at most 4",
        "whole number of days",
        "not a duration",
        "TAPE",
        "copies start in STANDARD",
        "only after 30 days",
        "list steps by increasing age",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    let p = TierSchedule::from_documents(&docs(&[("30d", "GLACIER"), ("400d", "GLACIER_IR")])).unwrap_err();
    assert!(p[0].contains("not colder"), "{p:?}");
}

#[test]
fn lifecycle_rules_cover_copies_not_manifests() {
    let s = TierSchedule::from_documents(&docs(&[("30d", "GLACIER")])).unwrap();
    let rules = lifecycle_rules("photos", "2026/", &s);
    assert_eq!(rules.len(), 2);
    assert!(
        rules
            .iter()
            .all(|r| r.id.starts_with(RULE_ID_PREFIX) && r.larger_than == 131_071)
    );
    assert!(rules[0].prefix.ends_with("/data/") && rules[1].prefix.ends_with("/hashed/"));
    let manifest = super::super::manifest::manifest_key("photos", "2026/", "lb-x");
    assert!(rules.iter().all(|r| !manifest.starts_with(&r.prefix)));
    assert!(lifecycle_rules("photos", "", &TierSchedule::default()).is_empty());
}

fn run(created: DateTime<Utc>) -> RecoveryPoint {
    let resource = ResourceRef {
        kind: ResourceKind::S3Prefix,
        id: "photos/".into(),
        arn: "arn:aws:s3:::photos/".into(),
        region: Region::parse("eu-west-1").unwrap(),
    };
    RecoveryPoint::new(
        &resource,
        &PolicyName::parse("gold").unwrap(),
        Slot::containing(created, std::time::Duration::from_mins(1)),
        &Region::parse("eu-central-1").unwrap(),
        "lb-gold-photos-all-20260101t0000",
        Status::Available,
        created,
    )
}

#[test]
fn moves_wait_for_age_minimum_durations_locks_and_holds() {
    let s = TierSchedule::from_documents(&docs(&[("30d", "GLACIER_IR"), ("120d", "GLACIER")])).unwrap();
    let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let day = chrono::Duration::days;
    let mut rp = run(t0);
    assert_eq!(due_move(&rp, &s, S3Class::Standard, t0 + day(29)), Ok(None));
    let m = due_move(&rp, &s, S3Class::Standard, t0 + day(30)).unwrap().unwrap();
    assert_eq!((m.from, m.to), (S3Class::Standard, S3Class::GlacierIr));
    // Moved late (day 45): GLACIER at day 120 would leave GLACIER_IR after 75 of 90 days.
    rp.objects_mut().unwrap().tiering = Some(TierRecord {
        class: S3Class::GlacierIr,
        moved_at: t0 + day(45),
        ledger_key: "k".into(),
        ledger_sha256: "s".into(),
        objects: 1,
        bytes: 1,
        small_kept: 0,
        superseded_pending: 0,
    });
    assert_eq!(due_move(&rp, &s, S3Class::Standard, t0 + day(100)), Ok(None));
    let w = due_move(&rp, &s, S3Class::Standard, t0 + day(120)).unwrap_err();
    assert!(w.reason.contains("runs until 2026-05-16"), "{w:?}");
    assert!(due_move(&rp, &s, S3Class::Standard, t0 + day(135)).unwrap().is_some());
    // Locked or held copies wait.
    let mut locked = run(t0);
    locked.holds.locked_until = Some(t0 + day(40));
    assert!(
        due_move(&locked, &s, S3Class::Standard, t0 + day(35))
            .unwrap_err()
            .reason
            .contains("locked")
    );
    assert!(
        due_move(&locked, &s, S3Class::Standard, t0 + day(41))
            .unwrap()
            .is_some()
    );
    let mut held = run(t0);
    held.holds.legal_hold = true;
    assert!(
        due_move(&held, &s, S3Class::Standard, t0 + day(35))
            .unwrap_err()
            .reason
            .contains("legal hold")
    );
}

fn entry(key: &str, size: u64, run: &str, version: &str) -> ManifestEntry {
    ManifestEntry {
        key: key.into(),
        version_id: None,
        size,
        etag: "e".into(),
        sha256: "s".into(),
        crc64nvme: "c".into(),
        storage_class: "STANDARD".into(),
        last_modified: None,
        backup_key: format!("lifeboat/photos/all/data/{run}/{key}"),
        backup_version_id: Some(version.into()),
        copied_in: run.into(),
        deleted: false,
    }
}

#[test]
fn small_and_inherited_copies_stay_and_the_cost_effect_is_shown() {
    let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let m = Manifest::new(
        "r2",
        "photos",
        "",
        t0,
        vec![
            entry("big", 10 * 1024 * 1024 * 1024, "r2", "v1"),
            entry("small", 1000, "r2", "v2"),
            entry("old", 1 << 30, "r1", "v3"),
        ],
    );
    let region = Region::parse("us-east-1").unwrap();
    let set = MoveSet::of(
        &m,
        S3Class::Standard,
        S3Class::Glacier,
        &region,
        &PriceBook::aws_list_prices(),
        &|_| Horizon::Unbounded,
    );
    assert_eq!((set.objects, set.small_kept, set.uneconomic_kept), (1, 1, 0));
    assert_eq!(set.entries[0].key, "big");
    // 10 GiB at $0.023 vs $0.0036 per GB-month, plus Glacier's 40 KB per object.
    assert_eq!(set.cost.before_micro_usd, 230_000);
    assert!((36_000..36_100).contains(&set.cost.after_micro_usd), "{:?}", set.cost);
    assert_eq!(set.cost.requests_micro_usd, 30);
}

#[test]
fn a_move_that_would_cost_more_than_it_saves_is_left_out() {
    let region = Region::parse("us-east-1").unwrap();
    let prices = PriceBook::aws_list_prices();
    let pays = |bytes, to, horizon| move_pays_off(bytes, S3Class::Standard, to, horizon, &region, &prices);
    let small = 130 * 1024;
    // $0.00003 to copy a 130 KB object into GLACIER, then at least 90 days billed
    // there: a month of STANDARD ($0.0000029) is cheaper.
    assert!(!pays(small, S3Class::Glacier, Horizon::Days(30)));
    // Kept indefinitely, the monthly saving repays the request.
    assert!(pays(small, S3Class::Glacier, Horizon::Unbounded));
    // 1 GiB: 30 days of STANDARD ($0.023) against 90 days of GLACIER ($0.0108).
    assert!(pays(1 << 30, S3Class::Glacier, Horizon::Days(30)));
    // Ten days left: the 90-day minimum in GLACIER costs more than ten days in STANDARD.
    assert!(!pays(1 << 30, S3Class::Glacier, Horizon::Days(10)));
    assert!(pays(small, S3Class::DeepArchive, Horizon::Days(5 * 365)));
    // Not colder for the money: STANDARD_IA at 30 days of a copy going in a week.
    assert!(!pays(1 << 30, S3Class::StandardIa, Horizon::Days(7)));

    let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let m = Manifest::new(
        "r2",
        "photos",
        "",
        t0,
        vec![
            entry("current", small, "r2", "v1"),
            entry("superseded", small, "r2", "v2"),
        ],
    );
    let set = MoveSet::of(&m, S3Class::Standard, S3Class::Glacier, &region, &prices, &|e| {
        if e.key == "current" {
            Horizon::Unbounded
        } else {
            Horizon::Days(20)
        }
    });
    assert_eq!((set.objects, set.uneconomic_kept, set.uneconomic_bytes), (1, 1, small));
    assert_eq!(set.entries[0].key, "current");
}

#[test]
fn the_ledger_round_trips_and_redirects_only_its_runs_copies() {
    let t0: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
    let ledger = Ledger {
        run: "r2".into(),
        class: S3Class::Glacier,
        moved_at: t0,
        entries: vec![LedgerEntry {
            backup_key: "lifeboat/photos/all/data/r2/big".into(),
            original_version: Some("v1".into()),
            version: Some("v9".into()),
            class: S3Class::Glacier,
        }],
    };
    let back = Ledger::decode(&ledger.encode().unwrap()).unwrap();
    assert_eq!(back, ledger);
    let mut entries = vec![entry("big", 1 << 20, "r2", "v1"), entry("big", 1 << 20, "r1", "v1")];
    assert_eq!(back.apply(&mut entries), 1);
    assert_eq!(entries[0].backup_version_id.as_deref(), Some("v9"));
    assert_eq!(entries[0].storage_class, "GLACIER");
    assert_eq!(entries[1].backup_version_id.as_deref(), Some("v1"));
    assert!(Ledger::decode(b"not zstd").is_err());
}
