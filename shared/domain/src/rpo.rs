//! Recovery point objective: in every location a policy names, the newest restorable
//! recovery point of each resource must be younger than the RPO in force (the window
//! rule's while a criticality window is open, else the policy's).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::window::Window;
use super::{Policy, RecoveryPoint, RecoveryPointId, Region, ResourceRef, Status};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpoStatus {
    pub resource_arn: String,
    pub location: Region,
    pub newest: Option<RecoveryPointId>,
    pub newest_at: Option<DateTime<Utc>>,
    /// Age of the newest good point, in whole seconds.
    pub age_secs: Option<u64>,
    pub target_secs: u64,
    pub breached: bool,
}

/// Evaluates the RPO of `resource` in its own region and in each copy destination.
/// `points` are the resource's recovery points (any order, any location); `windows` are
/// the ones its tags add to the policy's.
pub fn evaluate(
    resource: &ResourceRef,
    policy: &Policy,
    windows: &[Window],
    points: &[RecoveryPoint],
    now: DateTime<Utc>,
) -> Vec<RpoStatus> {
    let rpo = policy.effective(now, windows).rpo;
    let mut locations = vec![(resource.region.clone(), false)];
    locations.extend(
        policy
            .copies_for(resource.kind)
            .iter()
            .map(|c| (c.region.clone(), true)),
    );
    locations
        .into_iter()
        .map(|(location, copies)| {
            let newest = points
                .iter()
                .filter(|p| p.location == location && p.resource.arn == resource.arn)
                .filter(|p| {
                    if copies {
                        p.is_copy() && p.status == Status::Available
                    } else {
                        !p.is_copy() && p.is_restorable()
                    }
                })
                .max_by_key(|p| p.created_at);
            let age = newest.map(|p| (now - p.created_at).to_std().unwrap_or(Duration::ZERO));
            RpoStatus {
                resource_arn: resource.arn.clone(),
                location,
                newest: newest.map(|p| p.id.clone()),
                newest_at: newest.map(|p| p.created_at),
                age_secs: age.map(|a| a.as_secs()),
                target_secs: rpo.as_secs(),
                breached: age.is_none_or(|a| a > rpo),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery_point::tests::sample;

    #[test]
    fn breach_when_newest_good_point_is_older_than_rpo_in_each_location() {
        let policy = Policy::from_json(
            r#"{"name":"gold","every":"1h","rpo":"2h","retain":3,"copies":[{"region":"us-west-2","kms_key_id":"alias/dr"}]}"#,
        )
        .unwrap();
        let src = sample(Status::Copied);
        let mut copy = sample(Status::Available);
        copy.location = Region::parse("us-west-2").unwrap();
        copy.source = Some(src.id.clone());
        copy.id = RecoveryPointId::new(&copy.location, src.resource.kind, &src.snapshot_name);
        let soon = src.created_at + chrono::Duration::minutes(90);
        let all = evaluate(&src.resource, &policy, &[], &[src.clone(), copy.clone()], soon);
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|s| !s.breached));
        let late = src.created_at + chrono::Duration::hours(3);
        assert!(
            evaluate(&src.resource, &policy, &[], &[src.clone(), copy], late)
                .iter()
                .all(|s| s.breached)
        );
        // Without a copy, the DR location is breached even when the primary is fine.
        let only_src = evaluate(&src.resource, &policy, &[], std::slice::from_ref(&src), soon);
        assert!(!only_src[0].breached && only_src[1].breached && only_src[1].newest.is_none());
    }

    #[test]
    fn an_open_window_tightens_the_rpo() {
        let policy = Policy::from_json(
            r#"{"name":"gold","every":"1h","rpo":"2h","retain":3,
                "windows":[{"name":"sale","from":"2026-11-23T00:00:00Z","to":"2026-11-24T00:00:00Z"}],
                "window_rule":{"every":"15m","rpo":"15m"}}"#,
        )
        .unwrap();
        let src = sample(Status::Available);
        let in_window = src.created_at + chrono::Duration::minutes(30);
        let s = &evaluate(&src.resource, &policy, &[], std::slice::from_ref(&src), in_window)[0];
        assert!(s.breached && s.target_secs == 900, "{s:?}");
        let after = "2026-11-24T00:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let late_src = RecoveryPoint {
            created_at: after - chrono::Duration::minutes(30),
            ..src.clone()
        };
        let s = &evaluate(&src.resource, &policy, &[], std::slice::from_ref(&late_src), after)[0];
        assert!(!s.breached && s.target_secs == 7200, "{s:?}");
    }
}
