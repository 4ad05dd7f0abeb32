//! `copy-snapshots`: copies available snapshots to the DR regions their policy names, with
//! each destination region's KMS key, never more copies in flight per destination region
//! than the budget, most critical then oldest first, one copy at a time per resource.
//!
//! One run at a time (a lease in the catalog), so the budget count cannot race. Copy names
//! are deterministic, so a replayed run adopts copies instead of making them twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::alerting::Alerter;
use lifeboat::app::{
    ItemFailure, PLAN_POINTS_PER_RESOURCE, Ports, RunLog, copy_ids, kms_key_for, load_policies, protected_resources,
    settle_source, settle_with,
};
use lifeboat::config::Config;
use lifeboat::events::ScheduleTick;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat_domain::copy_queue::{CopyCandidate, CopyClass, WaitReason, plan_copies};
use lifeboat_domain::naming::tags;
use lifeboat_domain::planner;
use lifeboat_domain::{
    Alert, AlertKind, Failure, Policy, PolicyName, RecoveryPoint, RecoveryPointId, Region, Severity, Status, Step,
};
use lifeboat_ports::{PortError, Snapshot, SnapshotStatus, Tag};
use serde::Serialize;
use serde_json::Value;

pub const FUNCTION: &str = "copy-snapshots";
pub const LEASE: &str = "copy-snapshots";
/// Longer than the function timeout, so a crashed run's lease expires on its own.
const LEASE_FOR: chrono::Duration = chrono::Duration::minutes(16);

#[derive(Debug, Clone)]
pub struct Deps {
    pub ports: Ports,
    pub config: Config,
}

#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub source: RecoveryPointId,
    pub destination: Region,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub run_id: String,
    /// Set when another run holds the lease: this run did nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub started: Vec<RecoveryPointId>,
    pub adopted: Vec<RecoveryPointId>,
    pub waiting: Vec<Waiting>,
    /// Copies that cannot start until configuration changes (e.g. no KMS key).
    pub blocked: Vec<ItemFailure>,
    pub failed: Vec<ItemFailure>,
    /// Copies in flight per destination region after this run.
    pub in_flight: BTreeMap<Region, usize>,
    pub budget_per_region: usize,
}

/// copy-snapshots as one invocation: a schedule tick in, a report out.
#[derive(Debug)]
pub struct CopySnapshots;

impl Function for CopySnapshots {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = ScheduleTick;
    type Output = Report;

    fn now(deps: &Deps) -> DateTime<Utc> {
        deps.ports.clock.now()
    }

    fn parse(deps: &Deps, payload: &Value) -> Result<ScheduleTick, FunctionError> {
        ScheduleTick::parse(payload, deps.ports.clock.now(), deps.config.event_time)
    }

    async fn run(deps: &Deps, tick: ScheduleTick, invocation: &mut Invocation) -> Result<Report, FunctionError> {
        run(deps, &tick, invocation.run_id()).await
    }

    fn record_metrics(_: &Deps, result: &Result<Report, FunctionError>, _: Duration, metrics: &mut Metrics) {
        if let Ok(report) = result {
            record_metrics(report, metrics);
        }
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the invocation's metrics to `sink` (once, also when the run fails):
/// `CopiesStarted`, and `CopiesFailed` for copies AWS refused to start.
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<Report, FunctionError> {
    invoke::<CopySnapshots>(deps, event, sink).await
}

/// A run's metrics.
pub fn record_metrics(report: &Report, metrics: &mut Metrics) {
    metrics.count(Metric::CopiesStarted, report.started.len() as u64);
    metrics.count(Metric::CopiesFailed, report.failed.len() as u64);
}

pub async fn run(deps: &Deps, tick: &ScheduleTick, run_id: &str) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let now = ports.clock.now();
    if !ports.catalog.acquire_lease(LEASE, run_id, now + LEASE_FOR, now).await? {
        return Ok(Report {
            run_id: run_id.to_owned(),
            skipped: Some("another copy-snapshots run holds the lease".into()),
            budget_per_region: deps.config.copy_budget_per_region,
            ..Report::default()
        });
    }
    let result = copy(deps, tick, run_id).await;
    if let Err(e) = ports.catalog.release_lease(LEASE, run_id).await {
        tracing::warn!(error = %e, "could not release the lease; it expires on its own");
    }
    result
}

async fn copy(deps: &Deps, tick: &ScheduleTick, run_id: &str) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let alerter = ports.alerter();
    let now = ports.clock.now();
    let mut log = RunLog::start(FUNCTION, run_id, now);
    let mut report = Report {
        run_id: run_id.to_owned(),
        budget_per_region: deps.config.copy_budget_per_region,
        ..Report::default()
    };
    let policies = load_policies(ports.catalog.as_ref(), &alerter, run_id, now).await?;

    let mut sources = ports.catalog.by_status(Status::Available).await?;
    sources.extend(ports.catalog.by_status(Status::Copying).await?);
    sources.retain(|s| !s.is_copy() && tick.policy.as_ref().is_none_or(|p| p == &s.policy));
    let (mut in_flight, busy) = copies_in_flight(deps).await?;

    let all_ids: Vec<_> = sources
        .iter()
        .filter_map(|s| policies.get(&s.policy).map(|p| copy_ids(s, p)))
        .flatten()
        .collect();
    // Copy records known to this run: read once here, then added to as copies start, so
    // settling sources needs no second read.
    let mut known: HashMap<RecoveryPointId, RecoveryPoint> = ports
        .catalog
        .get_many(&all_ids)
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();

    let ctx = Ctx {
        deps,
        alerter: &alerter,
        run_id,
        now,
    };
    let (mut candidates, by_id) = candidates(ctx, tick, &policies, &sources, &known, &mut report, &mut log).await;
    // Under contention the order decides who waits: classify as the planner does, with
    // each contending resource's history (RPO at risk) and tag windows. Without contention
    // everything starts anyway, so the common run makes no extra reads.
    if !plan_copies(
        candidates.clone(),
        &in_flight,
        &busy,
        deps.config.copy_budget_per_region,
    )
    .waiting
    .is_empty()
    {
        refine_classes(deps, &policies, &mut candidates, &by_id, tick.scheduled_time, &mut log).await?;
    }
    let plan = plan_copies(candidates, &in_flight, &busy, deps.config.copy_budget_per_region);
    let mut full_regions: BTreeSet<Region> = BTreeSet::new();
    let mut touched: BTreeMap<RecoveryPointId, (&RecoveryPoint, &Policy)> = BTreeMap::new();
    let mut reread: BTreeSet<RecoveryPointId> = BTreeSet::new();
    for c in &plan.launch {
        let Some(&(source, policy)) = by_id.get(&c.source) else {
            continue;
        };
        if full_regions.contains(&c.destination) {
            report.waiting.push(Waiting {
                source: c.source.clone(),
                destination: c.destination.clone(),
                reason: "the region refused a copy this run (quota)".into(),
            });
            continue;
        }
        let kms = kms_key_for(policy, &deps.config, &c.destination)
            .unwrap_or_default()
            .to_owned();
        let job = CopyJob {
            source,
            policy,
            dest: &c.destination,
            kms: &kms,
            id: RecoveryPointId::new(&c.destination, source.resource.kind, &source.snapshot_name),
        };
        let started = start_copy(deps, &alerter, &job, run_id).await;
        let (recorded_elsewhere, region_full) =
            note_started(started, c, &kms, &mut report, &mut log, &mut in_flight, &mut known);
        if recorded_elsewhere {
            // Another run recorded this copy first: read before settling.
            reread.insert(source.id.clone());
        }
        if region_full {
            full_regions.insert(c.destination.clone());
        }
        touched.insert(source.id.clone(), (source, policy));
    }
    for (c, why) in plan.waiting {
        let reason = match &why {
            WaitReason::RegionBudgetFull { .. } | WaitReason::ResourceBusy => why.to_string(),
        };
        log.action("waiting", c.source.as_str(), format!("to {}: {reason}", c.destination));
        report.waiting.push(Waiting {
            source: c.source,
            destination: c.destination,
            reason,
        });
    }
    settle(deps, touched, &reread, &known).await?;
    report.in_flight = in_flight;
    log.finish(ports.catalog.as_ref(), ports.clock.now()).await;
    Ok(report)
}

/// What this run reads once and passes down.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    deps: &'a Deps,
    alerter: &'a Alerter,
    run_id: &'a str,
    now: DateTime<Utc>,
}

/// The copies due: every copy target of every source's policy not yet recorded, each with
/// its class (emergency, open window, routine). Copies that configuration prevents (to the
/// primary region itself, no KMS key) are blocked, reported and alerted.
async fn candidates<'s>(
    ctx: Ctx<'_>,
    tick: &ScheduleTick,
    policies: &'s BTreeMap<PolicyName, Policy>,
    sources: &'s [RecoveryPoint],
    known: &HashMap<RecoveryPointId, RecoveryPoint>,
    report: &mut Report,
    log: &mut RunLog,
) -> (
    Vec<CopyCandidate>,
    HashMap<RecoveryPointId, (&'s RecoveryPoint, &'s Policy)>,
) {
    let mut candidates = Vec::new();
    let mut by_id: HashMap<RecoveryPointId, (&RecoveryPoint, &Policy)> = HashMap::new();
    for source in sources {
        let Some(policy) = policies.get(&source.policy) else {
            report.blocked.push(ItemFailure {
                subject: source.id.to_string(),
                code: "unknown-policy".into(),
                message: format!("policy {} no longer exists or is invalid", source.policy),
            });
            continue;
        };
        for target in policy.copies_for(source.resource.kind) {
            let copy_id = RecoveryPointId::new(&target.region, source.resource.kind, &source.snapshot_name);
            if known.contains_key(&copy_id) {
                continue;
            }
            if target.region == ctx.deps.config.primary_region {
                report.blocked.push(
                    block(
                        ctx.alerter,
                        source,
                        policy,
                        &target.region,
                        "copy target is the primary region itself",
                        ctx.run_id,
                        ctx.now,
                    )
                    .await,
                );
                continue;
            }
            if kms_key_for(policy, &ctx.deps.config, &target.region).is_none() {
                let why = format!(
                    "no KMS key configured for {} (policy copies[].kms_key_id or DR_KMS_KEYS)",
                    target.region
                );
                report
                    .blocked
                    .push(block(ctx.alerter, source, policy, &target.region, &why, ctx.run_id, ctx.now).await);
                log.action("blocked", copy_id.as_str(), why);
                continue;
            }
            by_id.insert(source.id.clone(), (source, policy));
            candidates.push(CopyCandidate {
                // Emergencies first, then resources inside an open criticality window.
                class: if source.emergency {
                    CopyClass::Emergency
                } else if policy.open_window(tick.scheduled_time, &[]).is_some() {
                    CopyClass::Window
                } else {
                    CopyClass::Routine
                },
                source: source.id.clone(),
                resource_arn: source.resource.arn.clone(),
                destination: target.region.clone(),
                priority: policy.priority,
                captured_at: source.created_at,
            });
        }
    }
    (candidates, by_id)
}

/// Records what starting one copy did in the report and the run log; returns whether
/// another run recorded the copy first (its source is read again before settling) and
/// whether the destination region refused (quota: no more copies there this run).
fn note_started(
    started: Started,
    c: &CopyCandidate,
    kms: &str,
    report: &mut Report,
    log: &mut RunLog,
    in_flight: &mut BTreeMap<Region, usize>,
    known: &mut HashMap<RecoveryPointId, RecoveryPoint>,
) -> (bool, bool) {
    match started {
        Started::New(copy) => {
            log.action(
                "started",
                copy.id.as_str(),
                format!("copy to {} with {kms}", c.destination),
            );
            if copy.status == Status::Pending {
                *in_flight.entry(c.destination.clone()).or_insert(0) += 1;
            }
            report.started.push(copy.id.clone());
            known.insert(copy.id.clone(), copy);
        }
        Started::Adopted(copy) => {
            log.action("adopted", copy.id.as_str(), "existing copy recorded");
            if copy.status == Status::Pending {
                *in_flight.entry(c.destination.clone()).or_insert(0) += 1;
            }
            report.adopted.push(copy.id.clone());
            known.insert(copy.id.clone(), copy);
        }
        Started::Rejected(copy, f) => {
            log.action("failed", &f.subject, format!("{}: {}", f.code, f.message));
            report.failed.push(f);
            known.insert(copy.id.clone(), copy);
        }
        Started::Recorded => return (true, false),
        Started::Wait(reason, region_full) => {
            log.action("waiting", c.source.as_str(), reason.clone());
            report.waiting.push(Waiting {
                source: c.source.clone(),
                destination: c.destination.clone(),
                reason,
            });
            return (false, region_full);
        }
        Started::Failed(f) => {
            log.action("failed", &f.subject, format!("{}: {}", f.code, f.message));
            report.failed.push(f);
        }
    }
    (false, false)
}
/// Sources move to copying/copied (or failed) from what this run knows: one conditional
/// write each; a lost race is settled by the next run or the tracker.
async fn settle(
    deps: &Deps,
    touched: BTreeMap<RecoveryPointId, (&RecoveryPoint, &Policy)>,
    reread: &BTreeSet<RecoveryPointId>,
    known: &HashMap<RecoveryPointId, RecoveryPoint>,
) -> Result<(), FunctionError> {
    let ports = &deps.ports;
    for (id, (source, policy)) in touched {
        let now = ports.clock.now();
        if reread.contains(&id) {
            settle_source(ports.catalog.as_ref(), source, policy, now).await?;
            continue;
        }
        let copies: Vec<RecoveryPoint> = copy_ids(source, policy)
            .iter()
            .filter_map(|c| known.get(c).cloned())
            .collect();
        settle_with(ports.catalog.as_ref(), source, policy, &copies, now).await?;
    }
    Ok(())
}

/// Copies being made: how many per destination region, and the resources they are of.
async fn copies_in_flight(deps: &Deps) -> Result<(BTreeMap<Region, usize>, BTreeSet<String>), FunctionError> {
    let pending_copies: Vec<_> = deps
        .ports
        .catalog
        .by_status(Status::Pending)
        .await?
        .into_iter()
        .filter(RecoveryPoint::is_copy)
        .collect();
    let mut in_flight: BTreeMap<Region, usize> = BTreeMap::new();
    for c in &pending_copies {
        *in_flight.entry(c.location.clone()).or_insert(0) += 1;
    }
    let busy: BTreeSet<String> = pending_copies.iter().map(|c| c.resource.arn.clone()).collect();
    Ok((in_flight, busy))
}

/// Re-classifies `candidates` with what only a contended run reads: the resources'
/// recovery points (newest copy per destination, for RPO at risk) and the criticality
/// windows in their tags.
async fn refine_classes(
    deps: &Deps,
    policies: &BTreeMap<PolicyName, Policy>,
    candidates: &mut [CopyCandidate],
    by_id: &HashMap<RecoveryPointId, (&RecoveryPoint, &Policy)>,
    now: DateTime<Utc>,
    log: &mut RunLog,
) -> Result<(), FunctionError> {
    use futures::{StreamExt, TryStreamExt, stream};

    let ports = &deps.ports;
    let arns: BTreeSet<String> = candidates.iter().map(|c| c.resource_arn.clone()).collect();
    let histories: HashMap<String, Vec<RecoveryPoint>> = stream::iter(arns)
        .map(|arn| async move {
            let points = ports.catalog.by_resource(&arn, PLAN_POINTS_PER_RESOURCE).await?;
            Ok::<_, PortError>((arn, points))
        })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    // A malformed window tag is reported by create-snapshots; here it just adds nothing.
    let (protected, _) = protected_resources(ports, &deps.config, policies).await?;
    let windows: HashMap<String, Vec<lifeboat_domain::window::Window>> =
        protected.into_iter().map(|r| (r.resource.arn, r.windows)).collect();
    for c in candidates.iter_mut() {
        let Some(&(source, policy)) = by_id.get(&c.source) else {
            continue;
        };
        let history: Vec<&RecoveryPoint> = histories.get(&c.resource_arn).into_iter().flatten().collect();
        let tagged = windows.get(&c.resource_arn).map_or(&[][..], Vec::as_slice);
        let class = planner::copy_class(policy, source, tagged, &history, &c.destination, now);
        if class != c.class {
            log.action("reclassified", c.source.as_str(), format!("{} → {class}", c.class));
            c.class = class;
        }
    }
    Ok(())
}

enum Started {
    /// Started and recorded (the copy's record).
    New(RecoveryPoint),
    /// Found already made (after a crash) and recorded.
    Adopted(RecoveryPoint),
    /// Refused for good: recorded as failed and alerted.
    Rejected(RecoveryPoint, ItemFailure),
    /// Another run recorded it first.
    Recorded,
    /// Not started; `true` when the destination region refused (quota): stop there.
    Wait(String, bool),
    Failed(ItemFailure),
}

fn copy_tags(source: &RecoveryPoint) -> Vec<Tag> {
    vec![
        Tag::new(tags::CREATED_BY, tags::CREATED_BY_VALUE),
        Tag::new(tags::POLICY, source.policy.as_str()),
        Tag::new(tags::SLOT, source.slot.compact()),
        Tag::new(tags::SOURCE, &source.resource.arn),
        Tag::new(tags::COPY_OF, source.id.as_str()),
    ]
}

/// One copy to make: a source recovery point into one destination region.
struct CopyJob<'a> {
    source: &'a RecoveryPoint,
    policy: &'a Policy,
    dest: &'a Region,
    kms: &'a str,
    /// The copy's own recovery point id.
    id: RecoveryPointId,
}

impl CopyJob<'_> {
    /// The catalog record of this copy, in `status`.
    fn record(&self, status: Status, now: DateTime<Utc>) -> RecoveryPoint {
        let s = self.source;
        RecoveryPoint {
            source: Some(s.id.clone()),
            kms_key_id: Some(self.kms.to_owned()),
            updated_at: now,
            // A copy holds the data of its source's instant: that is what RPO measures.
            ..RecoveryPoint::new(
                &s.resource,
                &s.policy,
                s.slot,
                self.dest,
                &s.snapshot_name,
                status,
                s.created_at,
            )
        }
        .with_writer_class(s.writer_class().map(str::to_owned))
    }
}

async fn start_copy(deps: &Deps, alerter: &Alerter, job: &CopyJob<'_>, run_id: &str) -> Started {
    let ports = &deps.ports;
    let (source, dest, kms) = (job.source, job.dest, job.kms);
    let origin = Snapshot {
        kind: source.resource.kind,
        region: source.location.clone(),
        name: source.snapshot_name.clone(),
        arn: source.snapshot_arn.clone(),
        status: SnapshotStatus::Available,
        created_at: Some(source.created_at),
        kms_key_id: source.kms_key_id.clone(),
        tags: Vec::new(),
        size_bytes: source.size_bytes,
    };
    let (snapshot, adopted) = match ports
        .snapshots
        .copy_snapshot(&origin, dest, &source.snapshot_name, kms, &copy_tags(source))
        .await
    {
        Ok(s) => (s, false),
        Err(PortError::AlreadyExists(_)) => match ports
            .snapshots
            .describe_snapshot(dest, source.resource.kind, &source.snapshot_name)
            .await
        {
            Ok(Some(s)) => (s, true),
            Ok(None) => {
                return Started::Wait("copy exists but cannot be described yet".into(), false);
            }
            Err(e) => return Started::Wait(e.to_string(), false),
        },
        Err(e @ PortError::QuotaExceeded(_)) => {
            let now = ports.clock.now();
            let alert = Alert::new(
                AlertKind::CopyBlocked,
                Severity::Warning,
                format!("{dest} refused a snapshot copy (quota); copies wait for the next run"),
                format!("quota#{dest}#{}", now.format("%Y-%m-%dT%H")),
                now,
            )
            .location(dest)
            .detail("error", e.to_string());
            alerter.raise_or_log(alert, run_id).await;
            return Started::Wait(e.to_string(), true);
        }
        Err(e) if e.is_transient() || matches!(e, PortError::InvalidState(_)) => {
            return Started::Wait(e.to_string(), false);
        }
        Err(e) => {
            return record_failed_copy(deps, alerter, job, &e, run_id).await;
        }
    };
    let now = ports.clock.now();
    let status = snapshot.status.recovery_status();
    let mut rp = job.record(status, now);
    rp.snapshot_arn = snapshot.arn;
    rp.adopted = adopted;
    if status == Status::Failed {
        rp.failure = Some(Failure {
            step: Step::Copy,
            code: "copy-failed".into(),
            message: "AWS reports the copy as failed".into(),
        });
    }
    match ports.catalog.insert(&rp).await {
        Ok(()) => {}
        Err(PortError::Conflict(_)) => return Started::Recorded,
        Err(e) => return Started::Failed(ItemFailure::new(job.id.as_str(), &e)),
    }
    if adopted {
        Started::Adopted(rp)
    } else {
        Started::New(rp)
    }
}

/// A refusal retrying will not cure (KMS key unusable, invalid request): the copy is
/// recorded as failed so the catalog shows it, and alerted once.
async fn record_failed_copy(deps: &Deps, alerter: &Alerter, job: &CopyJob<'_>, e: &PortError, run_id: &str) -> Started {
    let now = deps.ports.clock.now();
    let (source, dest, copy_id) = (job.source, job.dest, &job.id);
    let mut rp = job.record(Status::Failed, now);
    rp.failure = Some(Failure {
        step: Step::Copy,
        code: e.code().into(),
        message: e.to_string(),
    });
    match deps.ports.catalog.insert(&rp).await {
        Ok(()) => {
            let alert = Alert::new(
                AlertKind::CopyFailed,
                Severity::High,
                format!("copy of {} to {dest} rejected: {}", source.snapshot_name, e.code()),
                copy_id.as_str(),
                now,
            )
            .resource(&source.resource.arn)
            .recovery_point(copy_id)
            .location(dest)
            .detail("policy", job.policy.name.as_str())
            .detail("kms_key_id", job.kms)
            .detail("error", e.to_string());
            alerter.raise_or_log(alert, run_id).await;
            Started::Rejected(rp, ItemFailure::new(copy_id.as_str(), e))
        }
        Err(PortError::Conflict(_)) => Started::Recorded,
        Err(write) => Started::Failed(ItemFailure::new(copy_id.as_str(), &write)),
    }
}

/// A copy that configuration prevents: reported in the run and alerted once a day per
/// policy and region (never a silent skip).
async fn block(
    alerter: &Alerter,
    source: &RecoveryPoint,
    policy: &Policy,
    region: &Region,
    why: &str,
    run_id: &str,
    now: DateTime<Utc>,
) -> ItemFailure {
    let alert = Alert::new(
        AlertKind::CopyBlocked,
        Severity::Critical,
        format!("copies of policy {} to {region} are blocked: {why}", policy.name),
        format!("{}#{region}#{}", policy.name, now.format("%Y-%m-%d")),
        now,
    )
    .location(region)
    .detail("policy", policy.name.as_str());
    alerter.raise_or_log(alert, run_id).await;
    ItemFailure {
        subject: source.id.to_string(),
        code: "copy-blocked".into(),
        message: format!("copy to {region}: {why}"),
    }
}
