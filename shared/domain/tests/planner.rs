//! The planner: worked examples, and properties over 10,000 random histories of recovery
//! points, holds, windows and clocks (safety floor, copy budget, idempotence).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_domain::copy_queue::CopyClass;
use lifeboat_domain::planner::{EmergencyRequest, Plan, PlanInput, Planner, ProtectedResource, plan};
use lifeboat_domain::{
    Failure, Policy, PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Slot, Status, Step,
};
use proptest::prelude::*;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn region(r: &str) -> Region {
    Region::parse(r).unwrap()
}

fn resource(id: &str) -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::RdsInstance,
        id: id.into(),
        arn: format!("arn:aws:rds:us-east-1:123456789012:db:{id}"),
        region: region("us-east-1"),
    }
}

fn point(
    r: &ResourceRef,
    policy: &str,
    name: &str,
    location: &str,
    at: DateTime<Utc>,
    status: Status,
) -> RecoveryPoint {
    let location = region(location);
    let primary = location == r.region;
    let policy = PolicyName::parse(policy).unwrap();
    let slot = Slot::containing(at, Duration::from_mins(1));
    RecoveryPoint {
        source: (!primary).then(|| RecoveryPointId::new(&r.region, r.kind, name)),
        ..RecoveryPoint::new(r, &policy, slot, &location, name, status, at)
    }
}

struct World {
    policies: BTreeMap<PolicyName, Policy>,
    resources: Vec<ProtectedResource>,
    points: Vec<RecoveryPoint>,
    emergencies: Vec<EmergencyRequest>,
    keys: BTreeMap<Region, String>,
    budget: usize,
    force: bool,
}

impl World {
    fn new(policies: &[&str]) -> Self {
        let policies = policies
            .iter()
            .map(|j| Policy::from_json(j).unwrap())
            .map(|p| (p.name.clone(), p))
            .collect();
        Self {
            policies,
            resources: Vec::new(),
            points: Vec::new(),
            emergencies: Vec::new(),
            keys: BTreeMap::from([(region("us-west-2"), "alias/dr".to_owned())]),
            budget: 5,
            force: false,
        }
    }

    fn protect(&mut self, id: &str, policy: &str) -> ResourceRef {
        let r = resource(id);
        self.resources.push(ProtectedResource {
            resource: r.clone(),
            policy: PolicyName::parse(policy).unwrap(),
            windows: Vec::new(),
        });
        r
    }

    fn plan(&self, now: DateTime<Utc>) -> Plan {
        plan(&PlanInput {
            policies: &self.policies,
            resources: &self.resources,
            points: &self.points,
            emergencies: &self.emergencies,
            copy_budget_per_region: self.budget,
            dr_kms_keys: &self.keys,
            now,
            force: self.force,
        })
    }

    /// Carries a plan out the way AWS does: new snapshots and copies start pending,
    /// expired points are marked expired.
    fn apply(&mut self, plan: &Plan, now: DateTime<Utc>) {
        for c in &plan.creates {
            let mut p = point(
                &c.resource,
                c.policy.as_str(),
                &c.snapshot_name,
                c.resource.region.as_str(),
                now,
                Status::Pending,
            );
            p.emergency = c.emergency;
            self.points.push(p);
        }
        for c in &plan.copies {
            let source = self.points.iter().find(|p| p.id == c.source).unwrap().clone();
            let mut p = point(
                &source.resource,
                source.policy.as_str(),
                &source.snapshot_name,
                c.destination.as_str(),
                source.created_at,
                Status::Pending,
            );
            p.source = Some(source.id.clone());
            self.points.push(p);
        }
        let expired: BTreeSet<_> = plan.expiries.iter().map(|e| e.id.clone()).collect();
        for p in &mut self.points {
            if expired.contains(&p.id) {
                p.status = Status::Expired;
            }
        }
    }
}

const HOURLY_GFS: &str = r#"{"name":"gold","every":"1h","rpo":"2h","retention":{"hourly":24,"daily":7,"weekly":4,"monthly":3},
    "copies":[{"region":"us-west-2"}],
    "windows":[{"name":"black-friday","from":"2026-11-27T00:00:00Z","to":"2026-12-01T00:00:00Z"}],
    "window_rule":{"every":"15m","rpo":"15m"}}"#;

#[test]
fn a_month_of_hourly_snapshots_keeps_exactly_what_gfs_says_and_explains_the_rest() {
    let mut w = World::new(&[HOURLY_GFS]);
    let r = w.protect("orders", "gold");
    let now = t("2026-11-23T18:05:00Z");
    for h in 0..24 * 31 {
        let at = t("2026-11-23T18:00:00Z") - chrono::Duration::hours(h);
        let name = format!("lb-gold-orders-{}", at.format("%Y%m%d-%H%M"));
        w.points.push(point(&r, "gold", &name, "us-east-1", at, Status::Copied));
        w.points
            .push(point(&r, "gold", &name, "us-west-2", at, Status::Available));
    }
    let p = w.plan(now);
    // Per location: 24 hourly (back to 19:00 on the 22nd); daily adds the 21st-17th (5);
    // ISO weeks add the 15th and the 8th (2); months add 31 October (1). Two locations.
    assert_eq!(p.kept, 2 * (24 + 5 + 2 + 1), "{}", p.summary());
    assert_eq!(p.expiries.len(), 2 * 24 * 31 - p.kept);
    assert!(p.copies.is_empty(), "every source already has its copy");
    assert!(p.expiries.iter().all(|e| {
        e.reason
            .contains("not kept by retention (hourly 24, daily 7, weekly 4, monthly 3)")
    }));
    assert!(p.creates.is_empty(), "the 18:00 slot is covered");
    w.apply(&p, now);
    assert!(w.plan(now).is_empty(), "re-planning after applying does nothing");
}

#[test]
fn a_criticality_window_raises_frequency_and_blocks_every_expiry() {
    let mut w = World::new(&[HOURLY_GFS]);
    let r = w.protect("orders", "gold");
    for h in 0..100 {
        let at = t("2026-11-28T10:00:00Z") - chrono::Duration::hours(h);
        w.points.push(point(
            &r,
            "gold",
            &format!("lb-gold-orders-{h}"),
            "us-east-1",
            at,
            Status::Available,
        ));
    }
    let during = w.plan(t("2026-11-28T10:20:00Z"));
    assert_eq!(during.creates.len(), 1);
    assert_eq!(
        during.creates[0].snapshot_name, "lb-gold-orders-20261128-1015",
        "15-minute slots in the window"
    );
    assert!(
        during.creates[0].reason.contains("window black-friday"),
        "{}",
        during.creates[0].reason
    );
    assert!(during.expiries.is_empty());
    assert!(
        during
            .protected
            .iter()
            .all(|p| p.reason.contains("criticality window \"black-friday\" is open"))
    );
    assert!(during.copies.iter().all(|c| c.class == CopyClass::Window));
    let after = w.plan(t("2026-12-02T10:20:00Z"));
    assert!(!after.expiries.is_empty(), "expiry resumes once the window closes");
    assert_eq!(
        after.creates[0].snapshot_name, "lb-gold-orders-20261202-1000",
        "back to hourly slots"
    );
}

#[test]
fn an_emergency_backup_is_created_first_and_its_copy_jumps_the_queue() {
    let mut w = World::new(&[HOURLY_GFS]);
    w.budget = 1;
    let a = w.protect("orders", "gold");
    let b = w.protect("billing", "gold");
    let now = t("2026-11-23T18:05:00Z");
    // An old routine source waiting to be copied…
    w.points.push(point(
        &a,
        "gold",
        "lb-gold-orders-old",
        "us-east-1",
        now - chrono::Duration::hours(5),
        Status::Available,
    ));
    // …and a fresh emergency snapshot of another resource.
    let mut em = point(
        &b,
        "gold",
        "lb-gold-billing-em-20261123-180000",
        "us-east-1",
        now,
        Status::Available,
    );
    em.emergency = true;
    w.points.push(em);
    w.emergencies.push(EmergencyRequest {
        resource_arn: a.arn.clone(),
        requested_at: now,
        reason: "before schema migration".into(),
        emergency: true,
    });
    let p = w.plan(now);
    assert!(p.creates[0].emergency && p.creates[0].snapshot_name == "lb-gold-orders-em-20261123-180500");
    assert!(p.creates[0].reason.contains("before schema migration"));
    assert_eq!(p.copies.len(), 1);
    assert_eq!(p.copies[0].class, CopyClass::Emergency);
    assert!(p.copies[0].source.as_str().contains("billing-em"));
    assert_eq!(p.waiting.len(), 1);
    assert!(p.waiting[0].reason.contains("budget"));
}

#[test]
fn holds_min_storage_and_the_newest_points_are_never_expired() {
    let mut w = World::new(&[r#"{"name":"gold","every":"1h","rpo":"2h","retain":1}"#]);
    let r = w.protect("orders", "gold");
    let now = t("2026-11-23T18:05:00Z");
    let mk = |i: i64, status| {
        point(
            &r,
            "gold",
            &format!("lb-gold-orders-{i}"),
            "us-east-1",
            now - chrono::Duration::hours(i),
            status,
        )
    };
    let mut held = mk(2, Status::Available);
    held.holds.legal_hold = true;
    let mut locked = mk(3, Status::Available);
    locked.holds.locked_until = Some(now + chrono::Duration::days(30));
    let mut in_use = mk(4, Status::Available);
    in_use.holds.in_use_by = Some("restore-42".into());
    let mut min_storage = mk(5, Status::Available);
    min_storage.holds.min_storage_until = Some(now + chrono::Duration::days(60));
    let mut verified = mk(6, Status::Available);
    verified.verified_at = Some(now);
    let copying = mk(7, Status::Copying);
    let plain = mk(8, Status::Available);
    let mut dead = mk(9, Status::Failed);
    dead.failure = Some(Failure {
        step: Step::Create,
        code: "snapshot-failed".into(),
        message: "x".into(),
    });
    dead.updated_at = now - chrono::Duration::days(8);
    w.points = vec![
        mk(1, Status::Available),
        held,
        locked,
        in_use,
        min_storage,
        verified,
        copying,
        plain,
        dead,
    ];
    let p = w.plan(now);
    let expired: Vec<_> = p
        .expiries
        .iter()
        .map(|e| e.id.as_str().rsplit('-').next().unwrap().to_owned())
        .collect();
    assert_eq!(expired, ["8", "9"], "{}", p.summary());
    let reasons: Vec<_> = p.protected.iter().map(|x| x.reason.clone()).collect();
    for needle in [
        "legal hold",
        "locked until",
        "in use by restore-42",
        "minimum storage",
        "newest verified",
        "copy in flight",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "{needle} missing from {reasons:?}"
        );
    }
    w.force = true;
    assert_eq!(
        w.plan(now).expiries.len(),
        3,
        "forcing releases only the minimum-storage hold"
    );
}

#[test]
fn a_copy_without_a_kms_key_is_blocked_not_skipped() {
    let mut w =
        World::new(&[r#"{"name":"gold","every":"1h","rpo":"2h","retain":3,"copies":[{"region":"eu-west-1"}]}"#]);
    let r = w.protect("orders", "gold");
    let now = t("2026-11-23T18:05:00Z");
    w.points.push(point(
        &r,
        "gold",
        "lb-gold-orders-1",
        "us-east-1",
        now,
        Status::Available,
    ));
    let p = w.plan(now);
    assert!(p.copies.is_empty());
    assert_eq!(p.blocked.len(), 1);
    assert!(p.blocked[0].reason.contains("no KMS key configured for eu-west-1"));
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Gen {
    now_offset_min: i64,
    retention: (u32, u32, u32, u32, u32, u32),
    every_idx: usize,
    copy_west: bool,
    copy_eu: bool,
    window: Option<(i64, i64)>,
    points: Vec<(usize, u8, i64, u8, u8)>,
    emergencies: Vec<usize>,
    budget: usize,
    force: bool,
}

fn arb_gen() -> impl Strategy<Value = Gen> {
    (
        0i64..(7 * 24 * 60),
        (0u32..4, 0u32..30, 0u32..10, 0u32..6, 0u32..14, 0u32..3),
        0usize..3,
        any::<bool>(),
        any::<bool>(),
        proptest::option::of((-600i64..600, 1i64..900)),
        proptest::collection::vec((0usize..3, 0u8..3, 0i64..(400 * 24 * 60), 0u8..10, 0u8..20), 0..70),
        proptest::collection::vec(0usize..3, 0..3),
        1usize..6,
        any::<bool>(),
    )
        .prop_map(
            |(now_offset_min, retention, every_idx, copy_west, copy_eu, window, points, emergencies, budget, force)| {
                Gen {
                    now_offset_min,
                    retention,
                    every_idx,
                    copy_west,
                    copy_eu,
                    window,
                    points,
                    emergencies,
                    budget,
                    force,
                }
            },
        )
}

fn build(g: &Gen) -> (World, DateTime<Utc>) {
    let now = t("2026-11-23T18:00:00Z") + chrono::Duration::minutes(g.now_offset_min);
    let (last, hourly, daily, weekly, monthly, yearly) = g.retention;
    let last = if last + hourly + daily + weekly + monthly + yearly == 0 {
        1
    } else {
        last
    };
    let every = ["15m", "1h", "1day"][g.every_idx];
    let mut copies = Vec::new();
    if g.copy_west {
        copies.push(r#"{"region":"us-west-2"}"#.to_owned());
    }
    if g.copy_eu {
        copies.push(r#"{"region":"eu-west-1"}"#.to_owned());
    }
    let window = g.window.map_or(String::new(), |(start, len)| {
        let from = now + chrono::Duration::minutes(start);
        let to = from + chrono::Duration::minutes(len);
        format!(
            r#","windows":[{{"name":"busy","from":"{}","to":"{}"}}],"window_rule":{{"every":"15m","rpo":"15m"}}"#,
            from.to_rfc3339(),
            to.to_rfc3339()
        )
    });
    let json = format!(
        r#"{{"name":"p","every":"{every}","rpo":"2days","retention":{{"last":{last},"hourly":{hourly},"daily":{daily},"weekly":{weekly},"monthly":{monthly},"yearly":{yearly}}},"copies":[{}]{window}}}"#,
        copies.join(",")
    );
    let mut w = World::new(&[&json]);
    w.budget = g.budget;
    w.force = g.force;
    let rs: Vec<_> = (0..3).map(|i| w.protect(&format!("db{i}"), "p")).collect();
    let locations = ["us-east-1", "us-west-2", "eu-west-1"];
    for (i, &(res, loc, age, status, hold)) in g.points.iter().enumerate() {
        let at = now - chrono::Duration::minutes(age);
        let status = [
            Status::Available,
            Status::Available,
            Status::Available,
            Status::Copied,
            Status::Copied,
            Status::Copying,
            Status::Pending,
            Status::Failed,
            Status::Failed,
            Status::Available,
        ][status as usize];
        let mut p = point(
            &rs[res],
            "p",
            &format!("lb-p-db{res}-{i}"),
            locations[loc as usize],
            at,
            status,
        );
        if p.is_copy() && status == Status::Copying {
            p.status = Status::Available;
        }
        if p.status == Status::Failed {
            let step = if hold % 2 == 0 { Step::Create } else { Step::Copy };
            p.failure = Some(Failure {
                step,
                code: "x".into(),
                message: "x".into(),
            });
        }
        match hold {
            0 => p.holds.legal_hold = true,
            1 => p.holds.locked_until = Some(now + chrono::Duration::days(3)),
            2 => p.holds.locked_until = Some(now - chrono::Duration::days(3)),
            3 => p.holds.in_use_by = Some("restore".into()),
            4 => p.holds.min_storage_until = Some(now + chrono::Duration::days(10)),
            5..=9 => p.verified_at = Some(at),
            _ => {}
        }
        w.points.push(p);
    }
    for (i, &res) in g.emergencies.iter().enumerate() {
        w.emergencies.push(EmergencyRequest {
            resource_arn: rs[res].arn.clone(),
            requested_at: now - chrono::Duration::seconds(i64::try_from(i).unwrap()),
            reason: "test".into(),
            emergency: true,
        });
    }
    (w, now)
}

fn check_floor(w: &World, p: &Plan, now: DateTime<Utc>) -> Result<(), TestCaseError> {
    let by_id: HashMap<_, _> = w.points.iter().map(|p| (&p.id, p)).collect();
    let policy = w.policies.values().next().unwrap();
    let window_open = policy.open_window(now, &[]).is_some();
    let mut groups: HashMap<(&str, &Region), Vec<&RecoveryPoint>> = HashMap::new();
    for x in w.points.iter().filter(|x| x.is_restorable()) {
        groups
            .entry((x.resource.arn.as_str(), &x.location))
            .or_default()
            .push(x);
    }
    let newest: BTreeSet<&RecoveryPointId> = groups
        .values()
        .filter_map(|g| g.iter().max_by_key(|x| (x.created_at, &x.id)).map(|x| &x.id))
        .collect();
    let newest_verified: BTreeSet<&RecoveryPointId> = groups
        .values()
        .filter_map(|g| {
            g.iter()
                .filter(|x| x.verified_at.is_some())
                .max_by_key(|x| (x.created_at, &x.id))
                .map(|x| &x.id)
        })
        .collect();
    prop_assert!(!window_open || p.expiries.is_empty(), "expiry inside an open window");
    for e in &p.expiries {
        let x = by_id[&e.id];
        prop_assert!(!newest.contains(&x.id), "expired the newest restorable {}", x.id);
        prop_assert!(!newest_verified.contains(&x.id), "expired the newest verified {}", x.id);
        prop_assert!(!x.holds.legal_hold, "expired under legal hold");
        prop_assert!(x.holds.locked_until.is_none_or(|u| u <= now), "expired while locked");
        prop_assert!(x.holds.in_use_by.is_none(), "expired while in use");
        prop_assert!(
            w.force || x.holds.min_storage_until.is_none_or(|u| u <= now),
            "expired under minimum storage"
        );
        prop_assert!(
            !matches!(x.status, Status::Pending | Status::Copying),
            "expired {} work",
            x.status
        );
    }
    Ok(())
}

fn check_copies(w: &World, p: &Plan) -> Result<(), TestCaseError> {
    let mut in_flight: HashMap<&Region, usize> = HashMap::new();
    let mut busy = BTreeSet::new();
    for x in w.points.iter().filter(|x| x.is_copy() && x.status == Status::Pending) {
        *in_flight.entry(&x.location).or_insert(0) += 1;
        busy.insert(x.resource.arn.clone());
    }
    let mut launched: HashMap<&Region, usize> = HashMap::new();
    let mut resources = BTreeSet::new();
    for c in &p.copies {
        *launched.entry(&c.destination).or_insert(0) += 1;
        let source = w.points.iter().find(|x| x.id == c.source).unwrap();
        prop_assert!(!busy.contains(&source.resource.arn), "a second copy of a busy resource");
        prop_assert!(
            resources.insert(source.resource.arn.clone()),
            "two copies of one resource at once"
        );
        prop_assert!(!c.kms_key_id.is_empty());
    }
    for (region, n) in launched {
        let before = in_flight.get(region).copied().unwrap_or(0);
        prop_assert!(
            before + n <= w.budget,
            "{region}: {before} in flight + {n} launched > budget {}",
            w.budget
        );
    }
    let first_routine = p.creates.iter().position(|c| !c.emergency).unwrap_or(p.creates.len());
    prop_assert!(
        p.creates[first_routine..].iter().all(|c| !c.emergency),
        "emergency creates come first"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// The safety floor holds, the copy budget and one-copy-per-resource rule hold, and
    /// planning again after applying the plan yields no further action.
    #[test]
    fn plans_are_safe_within_budget_and_idempotent(g in arb_gen()) {
        let (mut w, now) = build(&g);
        let first = w.plan(now);
        check_floor(&w, &first, now)?;
        check_copies(&w, &first)?;
        w.apply(&first, now);
        let second = w.plan(now);
        prop_assert!(second.is_empty(), "not idempotent:\nfirst:\n{}\nsecond:\n{}", first.summary(), second.summary());
    }

    /// Fed one resource at a time, in any order (as the catalog pages histories in), the
    /// planner makes the same plan as with every point at once.
    #[test]
    fn planning_resource_by_resource_in_any_order_gives_the_same_plan(g in arb_gen()) {
        let (w, now) = build(&g);
        let whole = w.plan(now);
        let input = PlanInput {
            policies: &w.policies,
            resources: &w.resources,
            points: &[],
            emergencies: &w.emergencies,
            copy_budget_per_region: w.budget,
            dr_kms_keys: &w.keys,
            now,
            force: w.force,
        };
        let mut planner = Planner::new(&input);
        for r in w.resources.iter().rev() {
            let mut points: Vec<&RecoveryPoint> =
                w.points.iter().filter(|p| p.resource.arn == r.resource.arn).collect();
            points.reverse();
            planner.add(Some(r), &points);
        }
        let streamed = planner.finish();
        prop_assert_eq!(sorted(&whole), sorted(&streamed));
    }
}

/// A plan's actions as sorted JSON lines (order-insensitive comparison).
fn sorted(plan: &Plan) -> Vec<String> {
    let v = serde_json::to_value(plan).unwrap();
    let mut lines: Vec<String> = v
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(k, v)| match v.as_array() {
            Some(items) => items.iter().map(|i| format!("{k} {i}")).collect::<Vec<_>>(),
            None => vec![format!("{k} {v}")],
        })
        .collect();
    lines.sort();
    lines
}
