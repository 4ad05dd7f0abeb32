//! `tier-backups`: moves S3 backup copies to colder storage classes as their runs age,
//! by each policy's `tiers`.
//!
//! Two mechanisms, one schedule:
//!
//! - **Lifecycle rules.** Every invocation (except a dry run) writes the backup bucket's
//!   lifecycle rules for each protected bucket/prefix whose policy has tiers (copies only:
//!   manifests and ledgers stay readable in STANDARD; objects under 128 KB stay). Rules
//!   Lifeboat does not own are kept. On AWS these move copies in place, daily.
//! - **Explicit moves** by run age, for copies the lifecycle has not moved (it never runs
//!   on an emulator, and runs only daily on AWS): a `CopyObject` of each copy onto its own
//!   key with the new class, the S3-reported SHA-256 of the new version compared with the
//!   manifest's, then a ledger of every moved copy (original → current version) written
//!   beside the manifests, recorded on the run's catalog record by a version-checked
//!   write, and only then the superseded versions deleted. A run waits (with its reason)
//!   while its copies are locked or held, inside their class's minimum storage duration,
//!   or already archived. A copy whose move would cost more than it saves before it is
//!   expected to go stays where it is (`uneconomic_kept`): one the newest run of its
//!   prefix still lists lives on with its object; one since superseded is expected to go
//!   when its run's retention ends (the policy's expected lifetime).
//!
//! Crash-safe and idempotent: a copy already in the target class with the run's checksum
//! (moved by a crashed invocation, or by the lifecycle rule) is recorded, not copied again;
//! a run whose record already names the target class is done. One invocation at a time (a
//! lease). A dry run reports the moves, what waits and why, and the monthly cost before and
//! after, changing nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::app::RunLog;
use lifeboat::error::ErrorType;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat::object_store::read_all;
use lifeboat::object_store::runs::{ManifestReadError, kept_runs, load_manifest};
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::cost::PriceBook;
use lifeboat_domain::manifest::{ManifestEntry, ManifestRef, hex, sha256_hex};
use lifeboat_domain::tiering::{
    CostEffect, DueMove, Horizon, Ledger, LedgerEntry, LifecycleRule, MoveSet, S3Class, TierRecord, TierSchedule,
    TierWait, ledger_key, lifecycle_rules, plan_moves,
};
use lifeboat_domain::{PolicyName, RecoveryPoint};
use lifeboat_ports::objects::{CopyRequest, ObjectStore, WriteOptions};
use lifeboat_ports::{Catalog, Clock, PortError, PortResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod moving;

use moving::{move_run, sweep};

pub const FUNCTION: &str = "tier-backups";
const LEASE: &str = "tier-backups";
const LEASE_FOR: chrono::Duration = chrono::Duration::minutes(16);
const CONCURRENCY: usize = 16;
/// Copies moved per invocation by default; the rest waits for the next one.
pub const DEFAULT_MAX_OBJECTS: u64 = 20_000;
const MAX_LEDGER_BYTES: u64 = 512 * 1024 * 1024;
const META_RUN: &str = "lifeboat-run";
const META_SHA256: &str = "lifeboat-sha256";

#[derive(Clone)]
pub struct Deps {
    pub catalog: Arc<dyn Catalog>,
    pub clock: Arc<dyn Clock>,
    /// S3 in the backup region.
    pub backup: Arc<dyn ObjectStore>,
    pub settings: S3Settings,
    pub prices: PriceBook,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// `{}` moves what is due; `{"dryRun": true}` only reports; `maxObjects` caps the copies
/// moved by one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierRequest {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub max_objects: Option<u64>,
}

impl TierRequest {
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        // EventBridge Scheduler may send an empty input.
        if event.is_null() {
            return Ok(Self::default());
        }
        if !event.is_object() {
            return Err(FunctionError::invalid(
                "expected a tier request object, e.g. {\"dryRun\": true}",
            ));
        }
        let req: Self = serde_json::from_value(event.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed tier request: {e}")))?;
        if req.max_objects == Some(0) {
            return Err(FunctionError::invalid("maxObjects must be at least 1"));
        }
        Ok(req)
    }
}

/// What happened to one run's copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveReport {
    pub recovery_point: String,
    pub run: String,
    pub from: S3Class,
    pub to: S3Class,
    pub reason: String,
    pub objects: u64,
    pub bytes: u64,
    /// Copies under 128 KB, left where they are.
    pub small_kept: u64,
    /// Copies left where they are because moving them would cost more than it saves
    /// before they are expected to go.
    pub uneconomic_kept: u64,
    /// Copies found already in the target class (a crashed invocation or the lifecycle
    /// rule moved them): recorded, not copied again.
    pub recovered: u64,
    pub recovered_bytes: u64,
    /// Superseded versions that could not be deleted yet.
    pub superseded_pending: u64,
    pub cost: CostEffect,
    /// `planned` (dry run), `moved`, or `deferred` (over this invocation's budget).
    pub outcome: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TierReport {
    pub dry_run: bool,
    /// Lifecycle rules Lifeboat owns, written to the backup bucket (or that would be).
    pub lifecycle_rules: Vec<LifecycleRule>,
    pub moves: Vec<MoveReport>,
    pub waiting: Vec<TierWait>,
    /// Monthly storage cost of the moved (or planned) copies before and after.
    pub monthly_before_micro_usd: u64,
    pub monthly_after_micro_usd: u64,
    pub objects_moved: u64,
    pub bytes_moved: u64,
    /// Superseded versions an earlier move could not delete, deleted now.
    pub superseded_swept: u64,
    /// Another invocation held the lease: nothing was done.
    pub busy: bool,
}

/// tier-backups as one invocation: a tier request in, a report out.
#[derive(Debug)]
pub struct TierBackups;

impl Function for TierBackups {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = TierRequest;
    type Output = TierReport;

    fn now(deps: &Deps) -> chrono::DateTime<chrono::Utc> {
        deps.clock.now()
    }

    fn parse(_: &Deps, payload: &Value) -> Result<TierRequest, FunctionError> {
        TierRequest::parse(payload)
    }

    async fn run(deps: &Deps, req: TierRequest, invocation: &mut Invocation) -> Result<TierReport, FunctionError> {
        run(deps, &req, invocation.run_id()).await
    }

    fn record_metrics(
        deps: &Deps,
        result: &Result<TierReport, FunctionError>,
        _: std::time::Duration,
        metrics: &mut Metrics,
    ) {
        if let Ok(r) = result {
            metrics.count_in(&deps.settings.backup_region, Metric::ObjectsTiered, r.objects_moved);
            metrics.count_in(&deps.settings.backup_region, Metric::BytesTiered, r.bytes_moved);
        }
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<TierReport, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the invocation's metrics to `sink` (once, also when it fails).
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<TierReport, FunctionError> {
    invoke::<TierBackups>(deps, event, sink).await
}

pub async fn run(deps: &Deps, req: &TierRequest, run_id: &str) -> Result<TierReport, FunctionError> {
    let now = deps.clock.now();
    let s = &deps.settings;
    let base = S3Class::parse(&s.storage_class).ok_or_else(|| {
        FunctionError::misconfigured(format!(
            "BACKUP_STORAGE_CLASS: {:.20?} is not an S3 storage class Lifeboat tiers",
            s.storage_class
        ))
    })?;
    let policies: Vec<_> = deps
        .catalog
        .policies()
        .await?
        .into_iter()
        .filter_map(Result::ok)
        .filter(|p| !p.tiers.is_empty())
        .collect();
    let lifetimes = policies
        .iter()
        .filter_map(|p| {
            let life = p.retention.expected_lifetime(p.rpo)?;
            Some((p.name.clone(), chrono::Duration::from_std(life).ok()?))
        })
        .collect();
    let schedules: BTreeMap<PolicyName, TierSchedule> = policies.into_iter().map(|p| (p.name, p.tiers)).collect();
    let mut runs = kept_runs(deps.catalog.as_ref()).await?;
    runs.retain(|p| p.location == s.backup_region);
    runs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));

    let mut report = TierReport {
        dry_run: req.dry_run,
        lifecycle_rules: desired_rules(&runs, &schedules),
        ..TierReport::default()
    };
    let plan = plan_moves(&runs, &schedules, base, now);
    report.waiting = plan.waiting;
    let due = plan.moves;
    let mut stays = Stays {
        runs: &runs,
        lifetimes,
        current: HashMap::new(),
    };
    if req.dry_run {
        for (rp, m) in due {
            let set = move_set(deps, rp, &m, &mut stays).await?;
            report.moves.push(move_report(rp, &m, &set, "planned"));
        }
    } else {
        let holder = format!("{FUNCTION}/{run_id}");
        if !deps.catalog.acquire_lease(LEASE, &holder, now + LEASE_FOR, now).await? {
            report.busy = true;
            return Ok(report);
        }
        let result = apply(deps, req, run_id, due, &mut stays, &mut report).await;
        if let Err(e) = deps.catalog.release_lease(LEASE, &holder).await {
            tracing::warn!(error = %e, "could not release the tier-backups lease (it expires)");
        }
        result?;
    }
    for m in &report.moves {
        if m.outcome != "deferred" {
            report.monthly_before_micro_usd += m.cost.before_micro_usd;
            report.monthly_after_micro_usd += m.cost.after_micro_usd;
        }
    }
    Ok(report)
}

async fn apply(
    deps: &Deps,
    req: &TierRequest,
    run_id: &str,
    due: Vec<(&RecoveryPoint, DueMove)>,
    stays: &mut Stays<'_>,
    report: &mut TierReport,
) -> Result<(), FunctionError> {
    let s = &deps.settings;
    let mut log = RunLog::start(FUNCTION, run_id, deps.clock.now());
    let count = lifeboat::object_store::replace_owned_rules_leased(
        deps.backup.as_ref(),
        deps.catalog.as_ref(),
        deps.clock.as_ref(),
        &s.backup_bucket,
        lifeboat_domain::tiering::RULE_ID_PREFIX,
        &report.lifecycle_rules,
        &format!("{FUNCTION}/{run_id}"),
    )
    .await?;
    log.action("lifecycle", &s.backup_bucket, format!("{count} rules"));
    let max = req.max_objects.unwrap_or(DEFAULT_MAX_OBJECTS);
    let mut budget = max;
    for (rp, m) in due {
        let set = move_set(deps, rp, &m, stays).await?;
        // A run moves whole; one larger than the budget still moves when it comes first.
        if set.objects > budget && budget < max {
            report.moves.push(move_report(rp, &m, &set, "deferred"));
            continue;
        }
        let mut r = move_report(rp, &m, &set, "moved");
        move_run(deps, rp, &m, &set, &mut r).await?;
        budget = budget.saturating_sub(set.objects);
        report.objects_moved += set.objects.saturating_sub(r.recovered);
        report.bytes_moved += set.bytes.saturating_sub(r.recovered_bytes);
        log.action("moved", &m.run, format!("{} copies to {}", set.objects, m.to));
        report.moves.push(r);
    }
    for rp in stays
        .runs
        .iter()
        .filter(|r| r.tiering().is_some_and(|t| t.superseded_pending > 0))
    {
        let swept = sweep(deps, &rp.id).await?;
        report.superseded_swept += swept;
        log.action("swept", &rp.snapshot_name, format!("{swept} superseded versions"));
    }
    log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
    Ok(())
}

/// The lifecycle rules for every protected bucket/prefix whose (newest run's) policy has
/// tiers.
fn desired_rules(runs: &[RecoveryPoint], schedules: &BTreeMap<PolicyName, TierSchedule>) -> Vec<LifecycleRule> {
    let mut newest: BTreeMap<(&str, &str), &RecoveryPoint> = BTreeMap::new();
    for rp in runs {
        if let Some(m) = rp.manifest() {
            // `runs` is sorted oldest first: the last one wins.
            newest.insert((m.source_bucket.as_str(), m.prefix.as_str()), rp);
        }
    }
    newest
        .into_iter()
        .filter_map(|((bucket, prefix), rp)| schedules.get(&rp.policy).map(|s| lifecycle_rules(bucket, prefix, s)))
        .flatten()
        .collect()
}

fn move_report(rp: &RecoveryPoint, m: &DueMove, set: &MoveSet, outcome: &str) -> MoveReport {
    MoveReport {
        recovery_point: rp.id.to_string(),
        run: m.run.clone(),
        from: m.from,
        to: m.to,
        reason: m.reason.clone(),
        objects: set.objects,
        bytes: set.bytes,
        small_kept: set.small_kept,
        uneconomic_kept: set.uneconomic_kept,
        recovered: 0,
        recovered_bytes: 0,
        superseded_pending: 0,
        cost: set.cost,
        outcome: outcome.into(),
    }
}

/// How long copies are expected to stay, for the payback of their moves.
struct Stays<'a> {
    /// Kept S3 runs, oldest first.
    runs: &'a [RecoveryPoint],
    /// Each policy's expected retention lifetime.
    lifetimes: BTreeMap<PolicyName, chrono::Duration>,
    /// Per source bucket and prefix: the copies (key, run that made it) the newest run lists.
    current: HashMap<(String, String), HashSet<(String, String)>>,
}

impl Stays<'_> {
    async fn current_copies(
        &mut self,
        deps: &Deps,
        bucket: &str,
        prefix: &str,
    ) -> Result<&HashSet<(String, String)>, FunctionError> {
        let k = (bucket.to_owned(), prefix.to_owned());
        if !self.current.contains_key(&k) {
            let newest = self
                .runs
                .iter()
                .filter_map(|r| r.manifest().map(|m| (r, m)))
                .rfind(|(_, m)| m.source_bucket == bucket && m.prefix == prefix);
            let mut copies = HashSet::new();
            if let Some((r, mref)) = newest {
                let manifest = read_manifest(deps, r, mref).await?;
                copies.extend(manifest.live().map(|e| (e.key.clone(), e.copied_in.clone())));
            }
            self.current.insert(k.clone(), copies);
        }
        Ok(self.current.entry(k).or_default())
    }
}

async fn read_manifest(
    deps: &Deps,
    rp: &RecoveryPoint,
    mref: &lifeboat_domain::manifest::ManifestRef,
) -> Result<lifeboat_domain::manifest::Manifest, FunctionError> {
    load_manifest(deps.backup.as_ref(), mref).await.map_err(|e| match e {
        ManifestReadError::Port(p) => FunctionError::from(p),
        ManifestReadError::Bad(b) => FunctionError::new(
            ErrorType::Conflict,
            format!(
                "the manifest of {} failed its check ({b}); its copies are not moved",
                rp.id
            ),
        ),
    })
}

async fn move_set(
    deps: &Deps,
    rp: &RecoveryPoint,
    m: &DueMove,
    stays: &mut Stays<'_>,
) -> Result<MoveSet, FunctionError> {
    let Some(mref) = rp.manifest() else {
        return Ok(MoveSet::default());
    };
    let manifest = read_manifest(deps, rp, mref).await?;
    // A superseded copy is expected to go when this run does; without a known lifetime
    // nothing bounds it.
    let left = stays.lifetimes.get(&rp.policy).map(|life| {
        let days = (rp.created_at + *life - deps.clock.now()).num_days();
        Horizon::Days(u32::try_from(days.max(0)).unwrap_or(u32::MAX))
    });
    let current = stays.current_copies(deps, &mref.source_bucket, &mref.prefix).await?;
    let horizon = |e: &ManifestEntry| {
        if current.contains(&(e.key.clone(), e.copied_in.clone())) {
            Horizon::Unbounded
        } else {
            left.unwrap_or(Horizon::Unbounded)
        }
    };
    Ok(MoveSet::of(
        &manifest,
        m.from,
        m.to,
        &deps.settings.backup_region,
        &deps.prices,
        &horizon,
    ))
}
