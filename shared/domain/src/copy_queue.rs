//! Which cross-region copies start now, and why the others wait.
//!
//! RDS limits concurrent snapshot copies per destination region and serialises copies of
//! one DB instance. Rather than fail and retry blindly, Lifeboat keeps a queue ordered by
//! criticality then age, and starts only what fits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RecoveryPointId, Region};

/// Why a copy is urgent, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyClass {
    /// Of an emergency (on-demand) backup.
    Emergency,
    /// Of a resource inside an open criticality window.
    Window,
    /// The destination's newest copy will be older than the RPO before the next slot.
    RpoAtRisk,
    Routine,
}

impl fmt::Display for CopyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Emergency => "emergency",
            Self::Window => "criticality window",
            Self::RpoAtRisk => "RPO at risk",
            Self::Routine => "routine",
        })
    }
}

/// A copy that could start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyCandidate {
    pub class: CopyClass,
    pub source: RecoveryPointId,
    pub resource_arn: String,
    pub destination: Region,
    /// 1 is the most critical.
    pub priority: u8,
    /// When the source's data was captured: older goes first.
    pub captured_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum WaitReason {
    /// The destination region already has `budget` copies in flight.
    RegionBudgetFull { region: Region, budget: usize },
    /// Another copy of the same resource is in flight.
    ResourceBusy,
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RegionBudgetFull { region, budget } => {
                write!(f, "{region} already has {budget} copies in flight (the budget)")
            }
            Self::ResourceBusy => f.write_str("another copy of this resource is in flight"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyPlan {
    pub launch: Vec<CopyCandidate>,
    pub waiting: Vec<(CopyCandidate, WaitReason)>,
}

/// Orders candidates (by urgency class, then most critical policy, then oldest first) and
/// starts as many as the per-region budget and the one-copy-per-resource rule allow.
pub fn plan_copies(
    mut candidates: Vec<CopyCandidate>,
    in_flight: &BTreeMap<Region, usize>,
    busy_resources: &BTreeSet<String>,
    budget: usize,
) -> CopyPlan {
    candidates.sort_by(|a, b| {
        let key = |c: &CopyCandidate| (c.class, c.priority, c.captured_at);
        key(a)
            .cmp(&key(b))
            .then_with(|| (&a.source, &a.destination).cmp(&(&b.source, &b.destination)))
    });
    let mut used = in_flight.clone();
    let mut busy = busy_resources.clone();
    let mut plan = CopyPlan::default();
    for c in candidates {
        if busy.contains(&c.resource_arn) {
            plan.waiting.push((c, WaitReason::ResourceBusy));
            continue;
        }
        let n = used.entry(c.destination.clone()).or_insert(0);
        if *n >= budget {
            let region = c.destination.clone();
            plan.waiting.push((c, WaitReason::RegionBudgetFull { region, budget }));
            continue;
        }
        *n += 1;
        busy.insert(c.resource_arn.clone());
        plan.launch.push(c);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResourceKind;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn cand(res: usize, dest: &str, prio: u8, age: i64) -> CopyCandidate {
        let region = Region::parse("us-east-1").unwrap();
        CopyCandidate {
            class: CopyClass::Routine,
            source: RecoveryPointId::new(&region, ResourceKind::RdsInstance, &format!("lb-p-r{res}-{age}")),
            resource_arn: format!("arn:aws:rds:us-east-1:1:db:r{res}"),
            destination: Region::parse(dest).unwrap(),
            priority: prio,
            captured_at: Utc.timestamp_opt(1_700_000_000 + age, 0).unwrap(),
        }
    }

    #[test]
    fn most_critical_then_oldest_first() {
        let plan = plan_copies(
            vec![
                cand(1, "us-west-2", 5, 10),
                cand(2, "us-west-2", 1, 50),
                cand(3, "us-west-2", 5, 5),
            ],
            &BTreeMap::new(),
            &BTreeSet::new(),
            2,
        );
        let launched: Vec<_> = plan.launch.iter().map(|c| c.resource_arn.clone()).collect();
        assert_eq!(
            launched,
            ["arn:aws:rds:us-east-1:1:db:r2", "arn:aws:rds:us-east-1:1:db:r3"]
        );
        assert_eq!(plan.waiting.len(), 1);
        assert!(matches!(
            plan.waiting[0].1,
            WaitReason::RegionBudgetFull { budget: 2, .. }
        ));
    }

    #[test]
    fn in_flight_copies_count_against_the_budget_and_busy_resources_wait() {
        let in_flight = BTreeMap::from([(Region::parse("us-west-2").unwrap(), 5)]);
        let busy = BTreeSet::from(["arn:aws:rds:us-east-1:1:db:r9".to_owned()]);
        let plan = plan_copies(
            vec![cand(1, "us-west-2", 1, 1), cand(9, "eu-west-1", 1, 1)],
            &in_flight,
            &busy,
            5,
        );
        assert!(plan.launch.is_empty());
        assert_eq!(
            plan.waiting[0].1,
            WaitReason::RegionBudgetFull {
                region: Region::parse("us-west-2").unwrap(),
                budget: 5
            }
        );
        assert_eq!(plan.waiting[1].1, WaitReason::ResourceBusy);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        #[test]
        fn never_exceeds_budget_nor_two_copies_of_one_resource(
            raw in proptest::collection::vec((0usize..20, 0usize..3, 1u8..10, 0i64..1000), 0..80),
            flying in proptest::collection::vec(0usize..8, 3),
            budget in 1usize..8,
        ) {
            let regions = ["us-west-2", "eu-west-1", "ap-south-1"];
            let cands: Vec<_> = raw.iter().map(|&(r, d, p, a)| cand(r, regions[d], p, a)).collect();
            let in_flight: BTreeMap<_, _> = regions.iter().zip(&flying).map(|(r, n)| (Region::parse(r).unwrap(), *n)).collect();
            let n = cands.len();
            let plan = plan_copies(cands, &in_flight, &BTreeSet::new(), budget);
            prop_assert_eq!(plan.launch.len() + plan.waiting.len(), n);
            for r in regions {
                let region = Region::parse(r).unwrap();
                let launched = plan.launch.iter().filter(|c| c.destination == region).count();
                let before = in_flight[&region];
                prop_assert!(launched == 0 || before + launched <= budget);
            }
            let mut seen = BTreeSet::new();
            for c in &plan.launch {
                prop_assert!(seen.insert(c.resource_arn.clone()));
            }
        }
    }
}
