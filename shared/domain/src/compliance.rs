//! Compliance, per resource: is the RPO met by *verified* recovery points, how often do
//! backups succeed, and how far is the resource from the 3-2-1 rule?
//!
//! - **RPO compliance** builds on [`super::rpo::evaluate`] (newest restorable point per
//!   location) and adds the newest *verified* restorable point: a location is `met` when a
//!   verified point is younger than the RPO, `unverified` when only an unverified one is,
//!   and `breached` when none is.
//! - **Backup success rate** over a period: backups (not copies) captured in the period
//!   that became restorable, against those that failed at creation. Pending ones are not
//!   judged yet. The rate is in basis points (1/100 of a percent), never a float.
//! - **3-2-1 score**: at least 2 backup copies (3 copies of the data with production), on
//!   at least 2 storage media or tiers, at least 1 outside the resource's region, and at
//!   least 1 immutable (legal hold or a lock that has not expired). The score is the number
//!   of the four rules met (0-4), and `missing` says in words what is not.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cost::StorageTier;
use super::rpo::{RpoStatus, evaluate};
use super::window::Window;
use super::{Policy, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Status, Step};

/// RPO state of one location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpoState {
    /// A restorable point is younger than the RPO, and a point of the location was proven
    /// (verified) within the policy's verification cadence for the kind
    /// ([`verification_window`]), with no failed verification of a newer one.
    Met,
    /// A restorable point is younger than the RPO, but none is proven as recently.
    Unverified,
    /// No restorable point is younger than the RPO.
    Breached,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationCompliance {
    pub location: Region,
    pub state: RpoState,
    pub target_secs: u64,
    /// The newest restorable point and its age (what [`super::rpo`] judges).
    pub newest: Option<RecoveryPointId>,
    pub age_secs: Option<u64>,
    /// The newest verified restorable point and its age.
    pub newest_verified: Option<RecoveryPointId>,
    pub verified_age_secs: Option<u64>,
    /// The newest judged restore test of the resource in this location (databases): the
    /// measured time of a restore from snapshot is the evidence for its RTO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<RestoreEvidence>,
}

/// A judged restore test, as compliance reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreEvidence {
    pub recovery_point: RecoveryPointId,
    pub tested_at: DateTime<Utc>,
    pub passed: bool,
    /// From the restore request to a database one can connect to.
    pub restore_secs: Option<u64>,
}

/// The newest judged restore test among `points` held in `location`.
pub fn restore_evidence(points: &[RecoveryPoint], location: &Region) -> Option<RestoreEvidence> {
    points
        .iter()
        .filter(|p| &p.location == location)
        .filter_map(|p| {
            let t = p.restore_test()?;
            let judged = t.ready_at.is_some() || t.phase == super::restore_test::Phase::Done;
            (judged && t.phase != super::restore_test::Phase::Restoring).then(|| RestoreEvidence {
                recovery_point: p.id.clone(),
                tested_at: t.started_at,
                passed: t.passed(),
                restore_secs: t.restore_secs(),
            })
        })
        .max_by_key(|e| (e.tested_at, e.recovery_point.clone()))
}

/// How long a verified point vouches for a resource's backups in its location: the
/// policy's cadence of proving them (restore tests for RDS and Aurora, re-verification for
/// S3 runs), never less than the RPO. Config bundles are verified as they are made, and
/// DynamoDB backups only by drills: for them, the RPO.
pub fn verification_window(policy: &Policy, kind: ResourceKind) -> std::time::Duration {
    let cadence = match kind {
        ResourceKind::RdsInstance | ResourceKind::AuroraCluster => {
            policy.restore_tests.enabled.then_some(policy.restore_tests.every)
        }
        ResourceKind::S3Prefix => Some(policy.verify.unwrap_or(super::policy::VerifyRule::DEFAULT).every),
        ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => None,
    };
    cadence.map_or(policy.rpo, |c| c.max(policy.rpo))
}

/// RPO compliance of every location of one resource.
pub fn rpo_compliance(
    resource: &ResourceRef,
    policy: &Policy,
    windows: &[Window],
    points: &[RecoveryPoint],
    now: DateTime<Utc>,
) -> Vec<LocationCompliance> {
    let verified: Vec<RecoveryPoint> = points
        .iter()
        .filter(|p| p.verified_at.is_some_and(|v| v <= now))
        .cloned()
        .collect();
    let all = evaluate(resource, policy, windows, points, now);
    let checked = evaluate(resource, policy, windows, &verified, now);
    let window = verification_window(policy, resource.kind).as_secs();
    all.into_iter()
        .zip(checked)
        .map(|(a, v): (RpoStatus, RpoStatus)| {
            let restore_test = restore_evidence(points, &a.location);
            // A newer point whose verification failed takes the older proof's word away.
            let proven_at = v.newest_at;
            let failed_since = points.iter().any(|p| {
                p.location == a.location
                    && p.verification_failed.is_some()
                    && proven_at.is_none_or(|at| p.created_at > at)
            });
            let proven = v.age_secs.is_some_and(|age| age <= window) && !failed_since;
            LocationCompliance {
                state: if !a.breached && proven {
                    RpoState::Met
                } else if !a.breached {
                    RpoState::Unverified
                } else {
                    RpoState::Breached
                },
                location: a.location,
                target_secs: a.target_secs,
                newest: a.newest,
                age_secs: a.age_secs,
                newest_verified: v.newest,
                verified_age_secs: v.age_secs,
                restore_test,
            }
        })
        .collect()
}

/// Backups captured in a period and how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessRate {
    pub succeeded: u64,
    pub failed: u64,
    /// Still pending: not judged.
    pub pending: u64,
    /// `succeeded / (succeeded + failed)` in basis points (10000 = 100 %); `None` when
    /// nothing was judged.
    pub rate_bp: Option<u32>,
}

impl SuccessRate {
    /// Combines two counts (e.g. two resources).
    #[must_use]
    pub fn merge(self, other: Self) -> Self {
        let mut out = Self {
            succeeded: self.succeeded.saturating_add(other.succeeded),
            failed: self.failed.saturating_add(other.failed),
            pending: self.pending.saturating_add(other.pending),
            rate_bp: None,
        };
        out.rate_bp = rate_bp(out.succeeded, out.failed);
        out
    }
}

fn rate_bp(succeeded: u64, failed: u64) -> Option<u32> {
    let judged = u128::from(succeeded) + u128::from(failed);
    (judged > 0).then(|| u32::try_from(u128::from(succeeded) * 10_000 / judged).unwrap_or(10_000))
}

/// Whether a backup (not a copy) ended well, badly, or not yet.
fn outcome(p: &RecoveryPoint) -> Option<bool> {
    match p.status {
        Status::Pending => None,
        Status::Failed => Some(p.failure.as_ref().is_some_and(|f| f.step == Step::Copy)),
        Status::Available | Status::Copying | Status::Copied => Some(true),
        // Expired or expiring: it was good if it did not fail at creation.
        Status::Expiring | Status::Expired => Some(p.failure.as_ref().is_none_or(|f| f.step == Step::Copy)),
    }
}

/// Backup success rate of the backups (not copies) captured in `[from, to)`.
pub fn success_rate(points: &[RecoveryPoint], from: DateTime<Utc>, to: DateTime<Utc>) -> SuccessRate {
    let mut out = SuccessRate::default();
    for p in points
        .iter()
        .filter(|p| !p.is_copy() && p.created_at >= from && p.created_at < to)
    {
        match outcome(p) {
            None => out.pending += 1,
            Some(true) => out.succeeded += 1,
            Some(false) => out.failed += 1,
        }
    }
    out.rate_bp = rate_bp(out.succeeded, out.failed);
    out
}

/// One stored backup copy, as the 3-2-1 rule sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyFacts {
    pub location: Region,
    pub tier: StorageTier,
    pub immutable: bool,
}

impl CopyFacts {
    /// The facts of a recovery point that can be restored now, else `None`.
    pub fn of(p: &RecoveryPoint, now: DateTime<Utc>) -> Option<Self> {
        if !p.is_restorable() {
            return None;
        }
        Some(Self {
            location: p.location.clone(),
            tier: StorageTier::of_kind(p.resource.kind),
            immutable: p.holds.legal_hold || p.holds.locked_until.is_some_and(|u| u > now),
        })
    }
}

/// How one resource measures against 3-2-1 (+1 immutable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreeTwoOne {
    /// Distinct (location, tier) places holding a restorable backup.
    pub copies: usize,
    /// Distinct storage tiers among them.
    pub media: usize,
    /// A copy outside the resource's region.
    pub off_site: bool,
    /// A copy under legal hold or an unexpired lock.
    pub immutable: bool,
    /// Rules met, 0-4.
    pub score: u8,
    /// What is missing, in words; empty when the score is 4.
    pub missing: Vec<String>,
}

/// Backup copies needed beside production (3 copies of the data in all).
pub const COPIES_NEEDED: usize = 2;
/// Distinct media or tiers needed.
pub const MEDIA_NEEDED: usize = 2;

/// The 3-2-1 score of a resource in `home` from its backup copies.
pub fn three_two_one(home: &Region, copies: &[CopyFacts]) -> ThreeTwoOne {
    let places: BTreeSet<(&Region, StorageTier)> = copies.iter().map(|c| (&c.location, c.tier)).collect();
    let media: BTreeSet<StorageTier> = copies.iter().map(|c| c.tier).collect();
    let off_site = copies.iter().any(|c| &c.location != home);
    let immutable = copies.iter().any(|c| c.immutable);
    let mut missing = Vec::new();
    if places.len() < COPIES_NEEDED {
        missing.push(format!(
            "{} backup cop{} (3-2-1 needs {COPIES_NEEDED} beside production)",
            places.len(),
            if places.len() == 1 { "y" } else { "ies" }
        ));
    }
    if media.len() < MEDIA_NEEDED {
        missing.push(match media.iter().next() {
            Some(t) => format!("every copy is on one medium ({t}): add another tier, e.g. an export to S3 Glacier"),
            None => "no storage medium holds a backup".to_owned(),
        });
    }
    if !off_site {
        missing.push(format!("no copy outside {home}"));
    }
    if !immutable {
        missing.push("no immutable copy (legal hold or lock)".to_owned());
    }
    let score = [
        places.len() >= COPIES_NEEDED,
        media.len() >= MEDIA_NEEDED,
        off_site,
        immutable,
    ]
    .iter()
    .filter(|ok| **ok)
    .count();
    ThreeTwoOne {
        copies: places.len(),
        media: media.len(),
        off_site,
        immutable,
        score: u8::try_from(score).unwrap_or(4),
        missing,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::recovery_point::tests::sample;
    use crate::{Failure, Status};
    use proptest::prelude::*;

    fn west() -> Region {
        Region::parse("us-west-2").unwrap()
    }

    fn gold() -> Policy {
        Policy::from_json(
            r#"{"name":"gold","every":"1h","rpo":"2h","retain":3,"copies":[{"region":"us-west-2","kms_key_id":"alias/dr"}]}"#,
        )
        .unwrap()
    }

    fn copy_of(src: &RecoveryPoint) -> RecoveryPoint {
        let mut c = src.clone();
        c.location = west();
        c.source = Some(src.id.clone());
        c.status = Status::Available;
        c.id = RecoveryPointId::new(&c.location, src.resource.kind, &src.snapshot_name);
        c
    }

    #[test]
    fn verified_points_meet_the_rpo_unverified_ones_only_keep_it_from_breaching() {
        let mut src = sample(Status::Copied);
        let copy = copy_of(&src);
        let soon = src.created_at + chrono::Duration::minutes(30);
        let states: Vec<_> = rpo_compliance(&src.resource, &gold(), &[], &[src.clone(), copy.clone()], soon)
            .into_iter()
            .map(|l| l.state)
            .collect();
        assert_eq!(states, [RpoState::Unverified, RpoState::Unverified]);
        src.verified_at = Some(src.created_at + chrono::Duration::minutes(10));
        let got = rpo_compliance(&src.resource, &gold(), &[], &[src.clone(), copy.clone()], soon);
        assert_eq!(got[0].state, RpoState::Met);
        assert_eq!(got[0].newest_verified.as_ref(), Some(&src.id));
        assert_eq!(got[1].state, RpoState::Unverified);
        let late = src.created_at + chrono::Duration::hours(3);
        assert!(
            rpo_compliance(&src.resource, &gold(), &[], &[src.clone(), copy], late)
                .iter()
                .all(|l| l.state == RpoState::Breached)
        );
    }

    #[test]
    fn a_restore_test_vouches_for_its_cadence_until_a_newer_point_fails_one() {
        // The policy tests restores weekly (the default): a copy proven three days ago keeps
        // the location met while newer, untested copies keep the RPO.
        let old = sample(Status::Copied);
        let mut proven = copy_of(&old);
        proven.verified_at = Some(old.created_at + chrono::Duration::hours(1));
        let three_days = chrono::Duration::days(3);
        let mut newer = sample(Status::Copied);
        newer.created_at = old.created_at + three_days;
        newer.snapshot_name = "lb-gold-orders-newer".into();
        newer.id = RecoveryPointId::new(&newer.location, newer.resource.kind, &newer.snapshot_name);
        let newer_copy = copy_of(&newer);
        let soon = newer.created_at + chrono::Duration::minutes(30);
        let points = [old.clone(), proven.clone(), newer.clone(), newer_copy.clone()];
        let states: Vec<_> = rpo_compliance(&old.resource, &gold(), &[], &points, soon)
            .into_iter()
            .map(|l| l.state)
            .collect();
        assert_eq!(states, [RpoState::Unverified, RpoState::Met]);
        assert_eq!(
            verification_window(&gold(), ResourceKind::RdsInstance),
            std::time::Duration::from_hours(168)
        );

        // Past the cadence (the proven copy eight days old), the proof is stale; the newest
        // copy still keeps the RPO.
        let mut stale = points.clone();
        for p in &mut stale[..2] {
            p.created_at -= chrono::Duration::days(5);
        }
        let got = rpo_compliance(&old.resource, &gold(), &[], &stale, soon);
        assert_eq!(got[1].state, RpoState::Unverified, "{got:?}");

        // A newer copy failed its restore test: not met, whatever older proof there is.
        let mut failed = newer_copy.clone();
        failed.verification_failed = Some(crate::recovery_point::VerificationFailure {
            at: soon,
            checked: 1,
            problems: vec!["restore test: engine version differs".into()],
        });
        let points = [old.clone(), proven, newer, failed];
        assert_eq!(
            rpo_compliance(&old.resource, &gold(), &[], &points, soon)[1].state,
            RpoState::Unverified
        );
    }

    #[test]
    fn each_location_shows_its_newest_judged_restore_test_as_rto_evidence() {
        use crate::restore_test::{Phase, RestoreTest};
        let src = sample(Status::Copied);
        let mut copy = copy_of(&src);
        let soon = src.created_at + chrono::Duration::minutes(30);
        let none = rpo_compliance(&src.resource, &gold(), &[], &[src.clone(), copy.clone()], soon);
        assert!(none.iter().all(|l| l.restore_test.is_none()));
        let mut test = RestoreTest::start(&copy, "test-restores/r1", src.created_at + chrono::Duration::minutes(5));
        copy.snapshot_mut().unwrap().restore_test = Some(test.clone());
        let restoring = rpo_compliance(&src.resource, &gold(), &[], &[src.clone(), copy.clone()], soon);
        assert!(restoring[1].restore_test.is_none(), "not judged yet");
        test.ready_at = Some(test.started_at + chrono::Duration::minutes(12));
        test.phase = Phase::Done;
        copy.snapshot_mut().unwrap().restore_test = Some(test);
        let judged = rpo_compliance(&src.resource, &gold(), &[], &[src.clone(), copy.clone()], soon);
        assert!(judged[0].restore_test.is_none(), "the source region was not tested");
        let evidence = judged[1].restore_test.clone().unwrap();
        assert_eq!((evidence.passed, evidence.restore_secs), (true, Some(720)));
        assert_eq!(evidence.recovery_point, copy.id);
    }

    #[test]
    fn success_rate_counts_backups_not_copies_and_not_pending_ones() {
        let ok = sample(Status::Available);
        let from = ok.created_at - chrono::Duration::hours(1);
        let to = ok.created_at + chrono::Duration::hours(1);
        let failed = sample(Status::Pending)
            .fail(
                Failure {
                    step: Step::Create,
                    code: "snapshot-failed".into(),
                    message: "x".into(),
                },
                ok.created_at,
            )
            .unwrap();
        let pending = sample(Status::Pending);
        let copy = copy_of(&ok);
        let r = success_rate(&[ok.clone(), failed, pending, copy], from, to);
        assert_eq!((r.succeeded, r.failed, r.pending, r.rate_bp), (1, 1, 1, Some(5_000)));
        assert_eq!(success_rate(&[ok], to, to + chrono::Duration::hours(1)).rate_bp, None);
    }

    #[test]
    fn three_two_one_names_what_is_missing() {
        let home = Region::parse("us-east-1").unwrap();
        let snap = |loc: &Region, immutable| CopyFacts {
            location: loc.clone(),
            tier: StorageTier::RdsSnapshot,
            immutable,
        };
        let only_local = three_two_one(&home, &[snap(&home, false)]);
        assert_eq!(only_local.score, 0);
        assert_eq!(only_local.missing.len(), 4);
        let two_regions = three_two_one(&home, &[snap(&home, false), snap(&west(), true)]);
        assert_eq!((two_regions.copies, two_regions.media, two_regions.score), (2, 1, 3));
        assert_eq!(two_regions.missing.len(), 1);
        assert!(
            two_regions.missing[0].contains("one medium"),
            "{:?}",
            two_regions.missing
        );
        let full = three_two_one(
            &home,
            &[
                snap(&home, false),
                CopyFacts {
                    location: west(),
                    tier: StorageTier::S3GlacierDeepArchive,
                    immutable: true,
                },
            ],
        );
        assert_eq!(full.score, 4);
        assert!(full.missing.is_empty());
        assert_eq!(three_two_one(&home, &[]).score, 0);
    }

    fn arb_facts() -> impl Strategy<Value = CopyFacts> {
        let regions = ["us-east-1", "us-west-2", "eu-west-1"];
        (0..3usize, 0..StorageTier::ALL.len(), any::<bool>()).prop_map(move |(r, t, immutable)| CopyFacts {
            location: Region::parse(regions[r]).unwrap(),
            tier: StorageTier::ALL[t],
            immutable,
        })
    }

    proptest! {
        /// Adding a copy never lowers the score; the score always equals 4 minus the
        /// number of missing items.
        #[test]
        fn adding_a_copy_never_lowers_the_score(
            copies in proptest::collection::vec(arb_facts(), 0..8),
            extra in arb_facts(),
        ) {
            let home = Region::parse("us-east-1").unwrap();
            let before = three_two_one(&home, &copies);
            let mut more = copies.clone();
            more.push(extra);
            let after = three_two_one(&home, &more);
            prop_assert!(after.score >= before.score);
            prop_assert_eq!(usize::from(before.score) + before.missing.len(), 4);
            prop_assert_eq!(usize::from(after.score) + after.missing.len(), 4);
        }

        /// The rate is within 0-100 %, merging is the rate of the union, and a success
        /// never lowers it.
        #[test]
        fn success_rates_merge_and_stay_in_range(
            a in (0..u64::MAX / 4, 0..u64::MAX / 4),
            b in (0..1_000_000u64, 0..1_000_000u64),
        ) {
            let mk = |(s, f): (u64, u64)| SuccessRate { succeeded: s, failed: f, pending: 0, rate_bp: rate_bp(s, f) };
            let (x, y) = (mk(a), mk(b));
            let m = x.merge(y);
            prop_assert!(m.rate_bp.is_none_or(|r| r <= 10_000));
            prop_assert_eq!(m.rate_bp, rate_bp(a.0 + b.0, a.1 + b.1));
            let one_more = mk((a.0 + 1, a.1));
            prop_assert!(one_more.rate_bp >= x.rate_bp);
        }
    }
}
