//! The planner: from policies, protected resources, the catalog's recovery points, the
//! copy budget and the time, decide what to create, copy and expire, each with its reason.
//! Pure: no I/O, no clock. Applying a plan and planning again yields no further action.
//!
//! **Safety floor.** Nothing is expired that is the newest restorable or the newest
//! verified recovery point of its resource in its location, is under legal hold, lock or
//! minimum storage duration (unless forced), is in use by a restore, is the source of a
//! copy in flight, is still pending, or belongs to a resource inside a criticality window.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::copy_queue::{CopyCandidate, CopyClass, plan_copies};
use super::naming::{emergency_name, on_demand_name, snapshot_name};
use super::window::Window;
use super::{Policy, PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceRef, Slot, Status, Step};

/// Failed records whose snapshot never became usable are cleared after this long.
pub const FAILED_GRACE: Duration = Duration::from_hours(168);

/// A resource under a policy, with the windows its tags add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    pub resource: ResourceRef,
    pub policy: PolicyName,
    pub windows: Vec<Window>,
}

/// A backup asked for outside any schedule: an emergency (its copies jump the queue) or a
/// plain on-demand one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmergencyRequest {
    pub resource_arn: String,
    pub requested_at: DateTime<Utc>,
    pub reason: String,
    pub emergency: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub policies: &'a BTreeMap<PolicyName, Policy>,
    pub resources: &'a [ProtectedResource],
    pub points: &'a [RecoveryPoint],
    pub emergencies: &'a [EmergencyRequest],
    pub copy_budget_per_region: usize,
    pub dr_kms_keys: &'a BTreeMap<Region, String>,
    pub now: DateTime<Utc>,
    /// Expire points under minimum storage duration too (they are billed anyway).
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateAction {
    pub id: RecoveryPointId,
    pub resource: ResourceRef,
    pub policy: PolicyName,
    pub slot: Slot,
    pub snapshot_name: String,
    pub emergency: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyAction {
    pub source: RecoveryPointId,
    pub copy: RecoveryPointId,
    pub destination: Region,
    pub kms_key_id: String,
    pub class: CopyClass,
    pub reason: String,
}

/// A copy that is not started this time, and why (it waits or is blocked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldCopy {
    pub source: RecoveryPointId,
    pub destination: Region,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpireAction {
    pub id: RecoveryPointId,
    pub resource_arn: String,
    pub location: Region,
    pub reason: String,
}

/// A point retention alone would expire, kept by the safety floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protected {
    pub id: RecoveryPointId,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub creates: Vec<CreateAction>,
    pub copies: Vec<CopyAction>,
    /// Copies that fit no budget this time: the next run takes them.
    pub waiting: Vec<HeldCopy>,
    /// Copies configuration prevents (e.g. no KMS key for the region).
    pub blocked: Vec<HeldCopy>,
    pub expiries: Vec<ExpireAction>,
    pub protected: Vec<Protected>,
    /// Recovery points retention keeps.
    pub kept: usize,
}

impl Plan {
    /// True when applying this plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.copies.is_empty() && self.expiries.is_empty()
    }

    /// A readable summary, one line per action.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} to create, {} to copy ({} waiting, {} blocked), {} to expire, {} kept, {} protected by the safety floor\n",
            self.creates.len(),
            self.copies.len(),
            self.waiting.len(),
            self.blocked.len(),
            self.expiries.len(),
            self.kept,
            self.protected.len()
        );
        for c in &self.creates {
            let _ = writeln!(out, "  create {}: {}", c.snapshot_name, c.reason);
        }
        for c in &self.copies {
            let _ = writeln!(out, "  copy   {} → {}: {}", c.source, c.destination, c.reason);
        }
        for c in self.waiting.iter().chain(&self.blocked) {
            let _ = writeln!(out, "  hold   {} → {}: {}", c.source, c.destination, c.reason);
        }
        for e in &self.expiries {
            let _ = writeln!(out, "  expire {}: {}", e.id, e.reason);
        }
        for p in &self.protected {
            let _ = writeln!(out, "  keep   {}: {}", p.id, p.reason);
        }
        out
    }
}

fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds().max(0).unsigned_abs();
    humantime::format_duration(Duration::from_secs(secs - secs % 60)).to_string()
}

/// The backups asked for: emergencies first, then on-demand ones, oldest request first.
/// Data sets are left out: an on-demand run of one is a `backup-objects` or
/// `backup-config` request of its own (with its `requestId`).
pub fn requested_creates(resources: &[ProtectedResource], requests: &[EmergencyRequest]) -> Vec<CreateAction> {
    let by_arn: HashMap<&str, &ProtectedResource> = resources
        .iter()
        .filter(|r| !r.resource.kind.is_data_set())
        .map(|r| (r.resource.arn.as_str(), r))
        .collect();
    let mut creates = Vec::new();
    let mut requests: Vec<&EmergencyRequest> = requests.iter().collect();
    requests.sort_by_key(|e| (std::cmp::Reverse(e.emergency), e.requested_at));
    for e in requests {
        let Some(r) = by_arn.get(e.resource_arn.as_str()) else {
            continue;
        };
        let name = if e.emergency {
            emergency_name(&r.policy, &r.resource, e.requested_at)
        } else {
            on_demand_name(&r.policy, &r.resource, e.requested_at)
        };
        let id = RecoveryPointId::new(&r.resource.region, r.resource.kind, &name);
        if creates.iter().any(|c: &CreateAction| c.id == id) {
            continue;
        }
        creates.push(CreateAction {
            id,
            resource: r.resource.clone(),
            policy: r.policy.clone(),
            slot: Slot::containing(e.requested_at, Duration::from_mins(1)),
            snapshot_name: name,
            emergency: e.emergency,
            reason: format!(
                "{} backup requested {}: {}",
                if e.emergency { "emergency" } else { "on-demand" },
                e.requested_at.format("%Y-%m-%d %H:%M:%S UTC"),
                e.reason
            ),
        });
    }
    creates
}

/// Each resource's current slot under the rule in force at `now`. A data set's is the run
/// its function names by the slot ([`super::data_set::run_name`]), recorded where the
/// data set is placed (the backup region).
pub fn scheduled_creates(
    policies: &BTreeMap<PolicyName, Policy>,
    resources: &[ProtectedResource],
    now: DateTime<Utc>,
) -> Vec<CreateAction> {
    let mut creates = Vec::new();
    for r in resources {
        let Some(policy) = policies.get(&r.policy) else {
            continue;
        };
        let effective = policy.effective(now, &r.windows);
        let Some(slot) = effective.slot else { continue };
        let name = super::data_set::run_name(&policy.name, &r.resource, slot)
            .unwrap_or_else(|| snapshot_name(&policy.name, &r.resource, slot));
        let id = RecoveryPointId::new(&r.resource.region, r.resource.kind, &name);
        creates.push(CreateAction {
            id,
            resource: r.resource.clone(),
            policy: policy.name.clone(),
            slot,
            snapshot_name: name,
            emergency: false,
            reason: format!("due: slot {slot} of {}", effective.schedule),
        });
    }
    creates
}

/// Plans one cycle. See the module documentation for the guarantees.
///
/// Holds every recovery point at once; [`Planner`] gives the same plan fed one resource
/// at a time, in memory bounded by one resource's history plus the plan itself.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let mut by_arn: HashMap<&str, Vec<&RecoveryPoint>> = HashMap::new();
    for p in input.points {
        by_arn.entry(p.resource.arn.as_str()).or_default().push(p);
    }
    let mut planner = Planner::new(input);
    for r in input.resources {
        let points = by_arn.remove(r.resource.arn.as_str()).unwrap_or_default();
        planner.add(Some(r), &points);
    }
    // Points of resources no policy protects any more: expired under their own policy.
    let mut orphans: Vec<(&str, Vec<&RecoveryPoint>)> = by_arn.into_iter().collect();
    orphans.sort_unstable_by_key(|(arn, _)| *arn);
    for (_, points) in orphans {
        planner.add(None, &points);
    }
    planner.finish()
}

/// The planner, fed resource by resource (e.g. as the catalog pages in each resource's
/// history): [`Planner::add`] plans a resource's creates, copy candidates and expiries;
/// [`Planner::finish`] runs the copy queue over every candidate and returns the plan.
/// Each resource must be added once, with all its recovery points (every location).
#[derive(Debug)]
pub struct Planner<'a> {
    policies: &'a BTreeMap<PolicyName, Policy>,
    emergencies: &'a [EmergencyRequest],
    copy_budget_per_region: usize,
    dr_kms_keys: &'a BTreeMap<Region, String>,
    now: DateTime<Utc>,
    force: bool,
    plan: Plan,
    requested: Vec<CreateAction>,
    in_flight: BTreeMap<Region, usize>,
    busy: BTreeSet<String>,
    candidates: Vec<CopyCandidate>,
    /// (source, destination) → (KMS key, copy id).
    targets: HashMap<(RecoveryPointId, Region), (String, RecoveryPointId)>,
}

impl<'a> Planner<'a> {
    /// The settings of `input` (its `resources` and `points` are not read).
    pub fn new(input: &PlanInput<'a>) -> Self {
        Self {
            policies: input.policies,
            emergencies: input.emergencies,
            copy_budget_per_region: input.copy_budget_per_region,
            dr_kms_keys: input.dr_kms_keys,
            now: input.now,
            force: input.force,
            plan: Plan::default(),
            requested: Vec::new(),
            in_flight: BTreeMap::new(),
            busy: BTreeSet::new(),
            candidates: Vec::new(),
            targets: HashMap::new(),
        }
    }

    /// Plans one resource: `resource` is `None` for recovery points of a resource no
    /// policy protects any more; `points` are all its recovery points.
    pub fn add(&mut self, resource: Option<&ProtectedResource>, points: &[&RecoveryPoint]) {
        let now = self.now;
        let ids: HashSet<&RecoveryPointId> = points.iter().map(|p| &p.id).collect();
        let windows = resource.map_or(&[][..], |r| r.windows.as_slice());

        // 1. Creates: requested ones (ordered in `finish`), then the current slot's.
        if let Some(r) = resource {
            let one = std::slice::from_ref(r);
            let asked: Vec<EmergencyRequest> = self
                .emergencies
                .iter()
                .filter(|e| e.resource_arn == r.resource.arn)
                .cloned()
                .collect();
            if !asked.is_empty() {
                self.requested.extend(
                    requested_creates(one, &asked)
                        .into_iter()
                        .filter(|c| !ids.contains(&c.id)),
                );
            }
            self.plan.creates.extend(
                scheduled_creates(self.policies, one, now)
                    .into_iter()
                    .filter(|c| !ids.contains(&c.id)),
            );
        }

        // 2. Copy candidates; the queue runs over all of them in `finish`.
        for p in points.iter().filter(|p| p.is_copy() && p.status == Status::Pending) {
            *self.in_flight.entry(p.location.clone()).or_insert(0) += 1;
            self.busy.insert(p.resource.arn.clone());
        }
        for source in points.iter().filter(|p| {
            !p.is_copy() && matches!(p.status, Status::Available | Status::Copying) && p.location == p.resource.region
        }) {
            let Some(policy) = self.policies.get(&source.policy) else {
                continue;
            };
            for target in policy.copies_for(source.resource.kind) {
                let copy = RecoveryPointId::new(&target.region, source.resource.kind, &source.snapshot_name);
                if ids.contains(&copy) {
                    continue;
                }
                let Some(kms) = target
                    .kms_key_id
                    .as_ref()
                    .or_else(|| self.dr_kms_keys.get(&target.region))
                else {
                    self.plan.blocked.push(HeldCopy {
                        source: source.id.clone(),
                        destination: target.region.clone(),
                        reason: format!("no KMS key configured for {}", target.region),
                    });
                    continue;
                };
                let class = copy_class(policy, source, windows, points, &target.region, now);
                self.targets
                    .insert((source.id.clone(), target.region.clone()), (kms.clone(), copy));
                self.candidates.push(CopyCandidate {
                    class,
                    source: source.id.clone(),
                    resource_arn: source.resource.arn.clone(),
                    destination: target.region.clone(),
                    priority: policy.priority,
                    captured_at: source.created_at,
                });
            }
        }

        // 3. Expiries, per location, behind the safety floor. The resource's current
        // policy governs; without one, nothing is expired.
        let policy_name = resource
            .map(|r| &r.policy)
            .or_else(|| points.iter().map(|p| &p.policy).max());
        let Some(policy) = policy_name.and_then(|n| self.policies.get(n)) else {
            return;
        };
        let mut groups: BTreeMap<&Region, Vec<&RecoveryPoint>> = BTreeMap::new();
        for p in points
            .iter()
            .filter(|p| !matches!(p.status, Status::Expiring | Status::Expired))
        {
            groups.entry(&p.location).or_default().push(p);
        }
        for group in groups.values() {
            expire_group(now, self.force, policy, windows, group, &mut self.plan);
        }
    }

    /// Runs the copy queue within the per-region budget and returns the plan.
    pub fn finish(mut self) -> Plan {
        let now = self.now;
        let queued = plan_copies(
            self.candidates,
            &self.in_flight,
            &self.busy,
            self.copy_budget_per_region,
        );
        for c in queued.launch {
            let (kms_key_id, copy) = self
                .targets
                .remove(&(c.source.clone(), c.destination.clone()))
                .unwrap_or_else(|| (String::new(), c.source.clone()));
            self.plan.copies.push(CopyAction {
                reason: format!(
                    "{}: copy to {} (captured {} ago)",
                    c.class,
                    c.destination,
                    age(now, c.captured_at)
                ),
                source: c.source,
                copy,
                destination: c.destination,
                kms_key_id,
                class: c.class,
            });
        }
        for (c, why) in queued.waiting {
            self.plan.waiting.push(HeldCopy {
                source: c.source,
                destination: c.destination,
                reason: why.to_string(),
            });
        }
        // Requests first: emergencies, then on-demand, oldest request first.
        self.requested
            .sort_by_key(|c| (std::cmp::Reverse(c.emergency), c.slot.start()));
        self.requested.append(&mut self.plan.creates);
        self.plan.creates = self.requested;
        self.plan
    }
}

/// Will the destination's newest copy be older than the RPO by the next slot?
/// Where a copy of `source` to `dest` stands in the queue: emergencies first, then
/// resources inside an open criticality window (the policy's or the resource's `windows`),
/// then copies without which the destination's RPO is missed by the next slot, then the
/// rest. `history` is the resource's recovery points (any order, any location).
pub fn copy_class(
    policy: &Policy,
    source: &RecoveryPoint,
    windows: &[Window],
    history: &[&RecoveryPoint],
    dest: &Region,
    now: DateTime<Utc>,
) -> CopyClass {
    if source.emergency {
        CopyClass::Emergency
    } else if policy.open_window(now, windows).is_some() {
        CopyClass::Window
    } else if rpo_at_risk(policy, history, dest, now) {
        CopyClass::RpoAtRisk
    } else {
        CopyClass::Routine
    }
}

fn rpo_at_risk(policy: &Policy, points: &[&RecoveryPoint], dest: &Region, now: DateTime<Utc>) -> bool {
    let newest = points
        .iter()
        .filter(|p| p.is_copy() && &p.location == dest && p.status == Status::Available)
        .map(|p| p.created_at)
        .max();
    let Some(newest) = newest else { return true };
    let next = policy.schedule.next_after(now).unwrap_or(now);
    (next - newest).to_std().unwrap_or_default() > policy.rpo
}

/// The safety floor judged again right before a point's snapshot is deleted, from a fresh
/// read of its resource's history (`history`: any order, any location, the point itself
/// included or not): `Some(why)` when deleting `point` would take the newest restorable or
/// the newest verified recovery point of its resource in its location. A point already
/// `expiring` counts as what it was before (restorable unless its backup never became
/// usable), so a point a crashed run left `expiring` is kept when it has become the floor
/// meanwhile.
pub fn floor_at_apply(point: &RecoveryPoint, history: &[RecoveryPoint]) -> Option<String> {
    let usable = |p: &RecoveryPoint| {
        p.is_restorable()
            || (p.status == Status::Expiring && p.failure.as_ref().is_none_or(|f| f.step == Step::Copy && !p.is_copy()))
    };
    if !usable(point) {
        return None;
    }
    let key = |p: &RecoveryPoint| (p.created_at, p.id.clone());
    let others: Vec<&RecoveryPoint> = history
        .iter()
        .filter(|p| p.id != point.id && p.location == point.location && p.is_restorable())
        .collect();
    if !others.iter().any(|p| key(p) > key(point)) {
        return Some("newest restorable recovery point in its location (judged again before deleting)".into());
    }
    if point.verified_at.is_some() && !others.iter().any(|p| p.verified_at.is_some() && key(p) > key(point)) {
        return Some("newest verified recovery point in its location (judged again before deleting)".into());
    }
    None
}

fn expire_group(
    now: DateTime<Utc>,
    force: bool,
    policy: &Policy,
    windows: &[Window],
    points: &[&RecoveryPoint],
    plan: &mut Plan,
) {
    let window = policy.open_window(now, windows);
    // In a fixed order, so that ties (equal times) are broken the same way however the
    // points arrive.
    let mut restorable: Vec<&RecoveryPoint> = points.iter().copied().filter(|p| p.is_restorable()).collect();
    restorable.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let times: Vec<DateTime<Utc>> = restorable.iter().map(|p| p.created_at).collect();
    let kept = policy.retention.select(&times, policy.timezone, now);
    let newest = restorable.iter().max_by_key(|p| (p.created_at, &p.id)).map(|p| &p.id);
    let newest_verified = restorable
        .iter()
        .filter(|p| p.verified_at.is_some())
        .max_by_key(|p| (p.created_at, &p.id))
        .map(|p| &p.id);
    let n_kept = kept.iter().flatten().count();
    plan.kept += n_kept;

    let floor = |p: &RecoveryPoint| -> Option<String> {
        if let Some(w) = window {
            return Some(format!("criticality window {w:?} is open"));
        }
        if Some(&p.id) == newest {
            return Some("newest restorable recovery point in its location".into());
        }
        if Some(&p.id) == newest_verified {
            return Some("newest verified recovery point in its location".into());
        }
        if let (Some(vault), None) = (p.backup_vault(), p.backup_job_id()) {
            return Some(format!(
                "made outside Lifeboat in AWS Backup vault {vault}: the vault's lifecycle deletes it"
            ));
        }
        let h = &p.holds;
        if h.legal_hold {
            return Some("legal hold".into());
        }
        if let Some(until) = h.locked_until.filter(|u| *u > now) {
            return Some(format!("locked until {until}"));
        }
        if let Some(by) = &h.in_use_by {
            return Some(format!("in use by {by}"));
        }
        if let Some(until) = h.min_storage_until.filter(|u| *u > now && !force) {
            return Some(format!(
                "minimum storage duration until {until} (force to expire anyway)"
            ));
        }
        if p.status == Status::Copying {
            return Some("source of a copy in flight".into());
        }
        None
    };

    let rules = policy.retention.describe();
    for (p, keep) in restorable.iter().zip(&kept) {
        if keep.is_some() {
            continue;
        }
        match floor(p) {
            Some(reason) => plan.protected.push(Protected {
                id: p.id.clone(),
                reason,
            }),
            None => plan.expiries.push(ExpireAction {
                id: p.id.clone(),
                resource_arn: p.resource.arn.clone(),
                location: p.location.clone(),
                reason: format!(
                    "not kept by retention ({rules}): {n_kept} newer or better-spaced points are kept; {} old",
                    age(now, p.created_at)
                ),
            }),
        }
    }
    // Records of backups that never became usable are cleared after a grace period.
    for p in points
        .iter()
        .filter(|p| p.status == Status::Failed && !p.is_restorable())
    {
        let old = (now - p.updated_at).to_std().unwrap_or_default() > FAILED_GRACE;
        if !old {
            continue;
        }
        let step = p.failure.as_ref().map_or(
            "a step",
            |f| if f.step == Step::Create { "creation" } else { "the copy" },
        );
        match floor(p) {
            Some(reason) => plan.protected.push(Protected {
                id: p.id.clone(),
                reason,
            }),
            None => plan.expiries.push(ExpireAction {
                id: p.id.clone(),
                resource_arn: p.resource.arn.clone(),
                location: p.location.clone(),
                reason: format!(
                    "{step} failed {} ago; failed records are cleared after 7 days",
                    age(now, p.updated_at)
                ),
            }),
        }
    }
}
