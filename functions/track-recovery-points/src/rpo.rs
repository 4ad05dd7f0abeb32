//! Step 4 of a cycle: each protected resource's RPO, in each location it is kept.
//!
//! The points are read once per location, oldest first, back to the longest RPO any
//! protected resource has at the tick (`Catalog::created_since`, the catalog's
//! `by-location` index), not once per resource: a cycle's reads grow with the points made
//! within an RPO, not with the number of resources. A resource with no usable point in
//! that span is in breach whatever older points it has; only those are read one by one
//! (`by_resource`), so a breach still names the newest point and its age.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use lifeboat::app::{ItemFailure, Ports};
use lifeboat_domain::planner::ProtectedResource;
use lifeboat_domain::rpo::{RpoStatus, evaluate};
use lifeboat_domain::{Policy, PolicyName, RecoveryPoint, Region};

/// Recovery points read for one resource whose RPO is breached, newest first.
const BREACH_HISTORY: usize = 200;

/// A protected resource's RPO in each of its locations, judged at the tick.
pub(crate) struct Judged<'a> {
    pub(crate) protected: &'a ProtectedResource,
    pub(crate) policy: &'a Policy,
    pub(crate) statuses: Vec<RpoStatus>,
}

/// Every protected resource's RPO (those whose policy is unknown are skipped), and the
/// reads that failed (a resource whose points could not be read is left out).
pub(crate) async fn judge<'a>(
    ports: &Ports,
    policies: &'a BTreeMap<PolicyName, Policy>,
    resources: &'a [ProtectedResource],
    at: DateTime<Utc>,
) -> (Vec<Judged<'a>>, Vec<ItemFailure>) {
    let protected: Vec<(&ProtectedResource, &Policy)> = resources
        .iter()
        .filter_map(|d| policies.get(&d.policy).map(|p| (d, p)))
        .collect();
    let mut failures = Vec::new();
    let recent = recent_points(ports, &protected, at, &mut failures).await;
    let mut judged = Vec::with_capacity(protected.len());
    for (d, policy) in protected {
        // A malformed window tag is ignored (plan-backups reports it).
        let in_span = recent.as_ref().map(|recent| {
            let points = recent.get(d.resource.arn.as_str()).map_or(&[][..], Vec::as_slice);
            evaluate(&d.resource, policy, &d.windows, points, at)
        });
        let statuses = match in_span {
            Some(statuses) if !statuses.iter().any(|s| s.breached) => statuses,
            // Nothing usable within the RPO somewhere (or the span could not be read): its
            // own history says how old the newest usable point is.
            _ => match history(ports, d, policy, at).await {
                Ok(statuses) => statuses,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            },
        };
        judged.push(Judged {
            protected: d,
            policy,
            statuses,
        });
    }
    (judged, failures)
}

/// The points of every location a protected resource is kept in, created within the
/// longest RPO any of them has at `at`, by resource ARN. `None` when a location could not
/// be read (each resource is then read on its own).
async fn recent_points(
    ports: &Ports,
    protected: &[(&ProtectedResource, &Policy)],
    at: DateTime<Utc>,
    failures: &mut Vec<ItemFailure>,
) -> Option<HashMap<String, Vec<RecoveryPoint>>> {
    let mut locations: BTreeSet<&Region> = BTreeSet::new();
    let mut longest = std::time::Duration::ZERO;
    for (d, policy) in protected {
        locations.insert(&d.resource.region);
        locations.extend(policy.copies_for(d.resource.kind).iter().map(|c| &c.region));
        longest = longest.max(policy.effective(at, &d.windows).rpo);
    }
    let since = at - chrono::Duration::from_std(longest).unwrap_or(chrono::Duration::MAX);
    let mut by_resource: HashMap<String, Vec<RecoveryPoint>> = HashMap::new();
    for location in locations {
        match ports.catalog.created_since(location, since).await {
            Ok(points) => {
                for p in points {
                    by_resource.entry(p.resource.arn.clone()).or_default().push(p);
                }
            }
            Err(e) => {
                failures.push(ItemFailure::new(format!("recovery points in {location}"), &e));
                return None;
            }
        }
    }
    Some(by_resource)
}

/// `d`'s RPO from its own newest points.
async fn history(
    ports: &Ports,
    d: &ProtectedResource,
    policy: &Policy,
    at: DateTime<Utc>,
) -> Result<Vec<RpoStatus>, ItemFailure> {
    let points = ports
        .catalog
        .by_resource(&d.resource.arn, BREACH_HISTORY)
        .await
        .map_err(|e| ItemFailure::new(d.resource.arn.clone(), &e))?;
    Ok(evaluate(&d.resource, policy, &d.windows, &points, at))
}
