//! `verify-backups`: proves S3 backup runs intact, trusting nothing the store says.
//!
//! For each recovery point (one named, or every available S3 run), the manifest is read
//! and checked against the SHA-256 in the catalog; then every object (`full`) or a
//! deterministic sample (`sample`) is streamed from the backup bucket — the very version
//! the manifest names, which is what a restore reads — and hashed (SHA-256 and CRC64/NVME,
//! constant memory). Size and hashes are compared with the manifest, and S3's stored
//! checksum (HeadObject ChecksumMode) with what Lifeboat computed. Missing, truncated or
//! corrupted objects mark the recovery point unverified; a later version written over a
//! backup key is reported as replaced (someone writes into the backup bucket) without
//! unverifying the run, whose recorded version is intact. One alert per run lists them.
//! Archived objects (Glacier Flexible Retrieval, Deep Archive) are checked by metadata,
//! and proved by sample restores: once per period (`restoreEveryDays`, 30 by default) a
//! deterministic sample of each checked run's archived copies (`restoreSample`, 1 by
//! default) is restored (`Bulk` by default) and, on a later run once S3 has restored it,
//! read back and compared with the manifest like any other object. The sample stays the
//! same through the period, so no state is needed beyond the run's `restore_checked_at`.

use std::collections::HashMap;
use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::alerting::Alerter;
use lifeboat::app::RunLog;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat::object_store::runs::{ManifestReadError, kept_runs, load_current_manifest};
use lifeboat::verify::{Problem, archived, check_each, check_one, sample};
use lifeboat_domain::manifest::ManifestEntry;
use lifeboat_domain::policy::VerifyRule;
use lifeboat_domain::recovery_point::VerificationFailure;
use lifeboat_domain::{Alert, AlertKind, PolicyName, RecoveryPoint, RecoveryPointId, Severity};
use lifeboat_ports::objects::{ObjectStore, RestoreTier};
use lifeboat_ports::{Catalog, Clock, Notifier, PortError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const FUNCTION: &str = "verify-backups";
/// Problems kept per recovery point (the count is always exact).
const MAX_LISTED: usize = 100;

#[derive(Clone)]
pub struct Deps {
    pub catalog: Arc<dyn Catalog>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// The backup region's S3.
    pub backup: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every object of every run.
    #[default]
    Full,
    /// `sample` objects per run, chosen by `seed`.
    Sample,
    /// The runs whose policy's `verify` rule is due (never verified, or last verified
    /// `verify.every` ago or longer), each checked as that rule says (every object, or
    /// `verify.sample` of them). Without a rule (or a valid policy), the default applies:
    /// 200 objects every day.
    Due,
}

/// `{"mode": "full"}`, `{"mode": "sample", "sample": 100, "seed": "2026-11-23"}`,
/// `{"mode": "due"}` (as each policy's `verify` rule says), optionally `"recoveryPoint":
/// "<id>"` for one run only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub sample: Option<usize>,
    #[serde(default)]
    pub seed: Option<String>,
    #[serde(default)]
    pub recovery_point: Option<String>,
    /// Archived copies of each checked run proved by a restore once per period (0: none).
    #[serde(default)]
    pub restore_sample: Option<usize>,
    /// `Bulk` (default) or `Standard`.
    #[serde(default)]
    pub restore_tier: Option<RestoreTier>,
    #[serde(default)]
    pub restore_every_days: Option<u32>,
}

/// Archived copies restored per run and period, unless the request says otherwise.
pub const RESTORE_SAMPLE: usize = 1;
/// The period of sample restores, in days.
pub const RESTORE_EVERY_DAYS: u32 = 30;
/// How long a sample restore stays readable: long enough for the daily run to read it.
const RESTORED_FOR_DAYS: u32 = 3;

impl VerifyRequest {
    /// Every object of one run (`Some`) or of every kept run (`None`), with the default
    /// sample-restore settings.
    pub fn full(recovery_point: Option<&lifeboat_domain::RecoveryPointId>) -> Self {
        Self {
            mode: Mode::Full,
            sample: None,
            seed: None,
            recovery_point: recovery_point.map(ToString::to_string),
            restore_sample: None,
            restore_tier: None,
            restore_every_days: None,
        }
    }

    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        if !event.is_object() {
            return Err(FunctionError::invalid("expected a verification request object"));
        }
        let req: Self = serde_json::from_value(event.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed verification request: {e}")))?;
        if req.mode == Mode::Sample && req.sample.is_none_or(|n| n == 0) {
            return Err(FunctionError::invalid("mode sample needs \"sample\": a positive count"));
        }
        if let Some(id) = &req.recovery_point {
            RecoveryPointId::parse(id).map_err(|e| FunctionError::invalid(e.to_string()))?;
        }
        if req.restore_tier == Some(RestoreTier::Expedited) {
            return Err(FunctionError::invalid(
                "restoreTier: Bulk or Standard (Expedited is not offered for Deep Archive, and costly for routine checks)",
            ));
        }
        if req.restore_every_days == Some(0) || req.restore_every_days.is_some_and(|d| d > 366) {
            return Err(FunctionError::invalid("restoreEveryDays: 1 to 366"));
        }
        if req.mode == Mode::Due && req.sample.is_some() {
            return Err(FunctionError::invalid(
                "mode due takes the sample size from each policy's verify rule: leave \"sample\" out",
            ));
        }
        Ok(req)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub recovery_point: RecoveryPointId,
    pub key: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub run_id: String,
    pub objects_checked: u64,
    pub bytes_read: u64,
    /// Checked by metadata only (archived tiers).
    pub metadata_only: u64,
    pub verified: Vec<RecoveryPointId>,
    pub unverified: Vec<RecoveryPointId>,
    pub findings: Vec<Finding>,
    pub alerted: bool,
    /// In mode `due`: runs whose verification is not due yet.
    pub not_due: usize,
    /// Sample restores of archived copies: started by this run, still under way, and
    /// read back intact (a bad one is a finding).
    pub restores_started: u64,
    pub restores_pending: u64,
    pub restores_verified: u64,
}

/// verify-backups as one invocation: a verification request in, a report out.
#[derive(Debug)]
pub struct VerifyBackups;

impl Function for VerifyBackups {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = VerifyRequest;
    type Output = VerifyReport;

    fn now(deps: &Deps) -> chrono::DateTime<chrono::Utc> {
        deps.clock.now()
    }

    fn parse(_: &Deps, payload: &Value) -> Result<VerifyRequest, FunctionError> {
        VerifyRequest::parse(payload)
    }

    async fn run(deps: &Deps, req: VerifyRequest, invocation: &mut Invocation) -> Result<VerifyReport, FunctionError> {
        run(deps, &req, invocation.run_id()).await
    }

    fn record_metrics(
        _: &Deps,
        result: &Result<VerifyReport, FunctionError>,
        _: std::time::Duration,
        metrics: &mut Metrics,
    ) {
        if let Ok(report) = result {
            record_metrics(report, metrics);
        }
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<VerifyReport, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the invocation's metrics to `sink` (once, also when it fails).
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<VerifyReport, FunctionError> {
    invoke::<VerifyBackups>(deps, event, sink).await
}

/// A run's metrics: `VerificationsPassed` (recovery points found intact) and
/// `VerificationMismatches` (objects missing, truncated or corrupted), both also when zero
/// so the alarm sees data.
pub fn record_metrics(report: &VerifyReport, metrics: &mut Metrics) {
    metrics.count(Metric::VerificationsPassed, report.verified.len() as u64);
    metrics.count(Metric::VerificationMismatches, report.findings.len() as u64);
}

pub async fn run(deps: &Deps, req: &VerifyRequest, run_id: &str) -> Result<VerifyReport, FunctionError> {
    let now = deps.clock.now();
    let mut log = RunLog::start(FUNCTION, run_id, now);
    let points = points_to_verify(deps, req).await?;
    let seed = req.seed.clone().unwrap_or_else(|| run_id.to_owned());
    let mut report = VerifyReport {
        run_id: run_id.to_owned(),
        ..VerifyReport::default()
    };
    let rules = due_rules(deps, req).await?;
    for rp in points {
        let Some(this_req) = request_for(req, &rules, &rp, now) else {
            report.not_due += 1;
            continue;
        };
        let checked = verify_point(deps, &rp, &this_req, &seed).await?;
        report.objects_checked += checked.objects;
        report.bytes_read += checked.bytes;
        report.metadata_only += checked.metadata_only;
        report.restores_started += checked.restores.started;
        report.restores_pending += checked.restores.pending;
        report.restores_verified += checked.restores.verified;
        record(deps, &rp, checked, &mut report, &mut log).await?;
    }
    if !report.findings.is_empty() {
        report.alerted = alert(deps, &report, run_id).await;
    }
    log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
    Ok(report)
}

/// The runs to verify: the one asked for (an S3 backup run), or every kept run.
async fn points_to_verify(deps: &Deps, req: &VerifyRequest) -> Result<Vec<RecoveryPoint>, FunctionError> {
    let Some(id) = &req.recovery_point else {
        return Ok(kept_runs(deps.catalog.as_ref()).await?);
    };
    let id = RecoveryPointId::parse(id).map_err(|e| FunctionError::invalid(e.to_string()))?;
    let rp = deps
        .catalog
        .get(&id)
        .await?
        .ok_or_else(|| FunctionError::not_found(format!("recovery point {id}")))?;
    if rp.manifest().is_none() {
        return Err(FunctionError::invalid(format!("{id} is not an S3 backup run")));
    }
    Ok(vec![rp])
}

/// In mode `due`, each policy's verify rule (none in the other modes).
async fn due_rules(deps: &Deps, req: &VerifyRequest) -> Result<HashMap<PolicyName, VerifyRule>, FunctionError> {
    if req.mode != Mode::Due {
        return Ok(HashMap::new());
    }
    Ok(deps
        .catalog
        .policies()
        .await?
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|p| p.verify.map(|v| (p.name, v)))
        .collect())
}

/// How `rp` is checked: as asked, or in mode `due` as its policy's rule says (`None`: not
/// due yet).
fn request_for(
    req: &VerifyRequest,
    rules: &HashMap<PolicyName, VerifyRule>,
    rp: &RecoveryPoint,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<VerifyRequest> {
    if req.mode != Mode::Due {
        return Some(req.clone());
    }
    let rule = rules.get(&rp.policy).copied().unwrap_or(VerifyRule::DEFAULT);
    rule.due(rp.verified_at, now).then(|| VerifyRequest {
        mode: if rule.sample.is_some() {
            Mode::Sample
        } else {
            Mode::Full
        },
        sample: rule.sample.and_then(|n| usize::try_from(n).ok()),
        ..req.clone()
    })
}

/// Records what checking `rp` found on the point (verified, or what failed) and in the
/// report.
async fn record(
    deps: &Deps,
    rp: &RecoveryPoint,
    checked: Checked,
    report: &mut VerifyReport,
    log: &mut RunLog,
) -> Result<(), FunctionError> {
    let now = deps.clock.now();
    let mut next = rp.clone();
    next.version += 1;
    next.updated_at = now;
    if let Some(objects) = next.objects_mut().filter(|_| checked.restores.proved) {
        objects.restore_checked_at = Some(now);
    }
    // A later version over a key (replaced) is alerted, but what a restore reads is intact.
    if checked.findings.iter().any(|f| f.problem.damages_the_run()) {
        next.verified_at = None;
        next.verification_failed = Some(VerificationFailure {
            at: now,
            checked: checked.objects,
            problems: checked
                .findings
                .iter()
                .take(MAX_LISTED)
                .map(|f| format!("{}: {}", f.problem.as_str(), f.key))
                .collect(),
        });
        report.unverified.push(rp.id.clone());
        log.action(
            "unverified",
            rp.id.as_str(),
            format!("{} problems", checked.findings.len()),
        );
    } else {
        next.verified_at = Some(now);
        next.verification_failed = None;
        report.verified.push(rp.id.clone());
        log.action("verified", rp.id.as_str(), format!("{} objects", checked.objects));
    }
    match deps.catalog.update(&next, rp.version).await {
        // Someone else changed the record meanwhile: the findings stay in the report
        // and the alert, and the next run records them.
        Ok(()) | Err(PortError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    report.findings.extend(checked.findings);
    Ok(())
}

async fn alert(deps: &Deps, report: &VerifyReport, run_id: &str) -> bool {
    let alerter = Alerter::new(deps.catalog.clone(), deps.notifier.clone(), deps.clock.clone());
    let listed: Vec<String> = report
        .findings
        .iter()
        .take(MAX_LISTED)
        .map(|f| format!("{} {} ({})", f.problem.as_str(), f.key, f.recovery_point))
        .collect();
    let damaged = report.findings.iter().filter(|f| f.problem.damages_the_run()).count();
    let summary = if damaged == 0 {
        // Only later versions written over backup keys: the runs themselves are intact.
        format!(
            "{} backup key(s) written over behind Lifeboat's back (replaced); the runs' own versions are intact",
            report.findings.len()
        )
    } else {
        format!(
            "{damaged} backup object(s) failed verification in {} recovery point(s)",
            report.unverified.len()
        )
    };
    let severity = if damaged == 0 {
        Severity::High
    } else {
        Severity::Critical
    };
    let mut alert = Alert::new(
        AlertKind::VerificationFailed,
        severity,
        summary,
        run_id,
        deps.clock.now(),
    )
    .detail("objects", listed.join("\n"))
    .detail(
        "recovery_points",
        report
            .unverified
            .iter()
            .map(RecoveryPointId::as_str)
            .collect::<Vec<_>>()
            .join(","),
    );
    if let Some(first) = report.unverified.first() {
        alert = alert.recovery_point(first);
    }
    match alerter.raise(alert, run_id).await {
        Ok(sent) => sent,
        Err(e) => {
            tracing::error!(error = %e, "could not publish the verification alert");
            false
        }
    }
}

#[derive(Default)]
struct Checked {
    objects: u64,
    bytes: u64,
    metadata_only: u64,
    findings: Vec<Finding>,
    restores: Restores,
}

/// Sample restores of one run's archived copies.
#[derive(Default)]
struct Restores {
    started: u64,
    pending: u64,
    verified: u64,
    /// Every sampled copy was read back intact in this run.
    proved: bool,
}

async fn verify_point(
    deps: &Deps,
    rp: &RecoveryPoint,
    req: &VerifyRequest,
    seed: &str,
) -> Result<Checked, FunctionError> {
    let mut out = Checked::default();
    let Some(mref) = rp.manifest() else {
        return Ok(out);
    };
    let finding = |key: &str, problem| Finding {
        recovery_point: rp.id.clone(),
        key: key.to_owned(),
        problem,
    };
    let manifest = match load_current_manifest(deps.backup.as_ref(), deps.catalog.as_ref(), &rp.location, mref).await {
        Ok(m) => m,
        Err(ManifestReadError::Port(e)) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, recovery_point = %rp.id, "manifest check failed");
            out.findings.push(finding(&mref.key, Problem::Manifest));
            return Ok(out);
        }
    };
    let live: Vec<&ManifestEntry> = manifest.live().collect();
    let chosen = match (req.mode, req.sample) {
        (Mode::Sample, Some(n)) => sample(live, n, seed),
        _ => live,
    };
    let checks = check_each(&deps.backup, &mref.backup_bucket, chosen).await?;
    // Copies this pass read back (restored archived ones included), and whether intact:
    // the sample-restore pass does not read them again.
    let mut read: HashMap<String, bool> = HashMap::new();
    for c in checks {
        out.objects += 1;
        out.bytes += c.bytes;
        out.metadata_only += u64::from(c.metadata_only);
        if !c.metadata_only {
            read.insert(c.key.clone(), c.problems.is_empty());
        }
        out.findings.extend(c.problems.into_iter().map(|p| finding(&c.key, p)));
    }
    let (restores, problems) = prove_archived(deps, rp, &manifest, &mref.backup_bucket, req, &read).await?;
    out.restores = restores;
    out.findings
        .extend(problems.into_iter().map(|(key, p)| finding(&key, p)));
    out.findings.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Proves a sample of the run's archived copies by restoring them: starts the restores
/// the first time, waits while S3 works, then reads the restored bytes back and compares
/// them with the manifest. Nothing to do once the period's sample was proved.
async fn prove_archived(
    deps: &Deps,
    rp: &RecoveryPoint,
    manifest: &lifeboat_domain::manifest::Manifest,
    bucket: &str,
    req: &VerifyRequest,
    read: &HashMap<String, bool>,
) -> Result<(Restores, Vec<(String, Problem)>), PortError> {
    let mut out = Restores::default();
    let mut problems = Vec::new();
    let n = req.restore_sample.unwrap_or(RESTORE_SAMPLE);
    let every = i64::from(req.restore_every_days.unwrap_or(RESTORE_EVERY_DAYS)) * 86_400;
    let archived_entries: Vec<&ManifestEntry> = manifest.live().filter(|e| archived(&e.storage_class)).collect();
    if n == 0 || archived_entries.is_empty() {
        return Ok((out, problems));
    }
    let now = deps.clock.now();
    let period = now.timestamp().div_euclid(every);
    if rp
        .restore_checked_at()
        .is_some_and(|t| t.timestamp().div_euclid(every) == period)
    {
        return Ok((out, problems));
    }
    let tier = req.restore_tier.unwrap_or(RestoreTier::Bulk);
    let mut read_back = 0usize;
    let picks = sample(archived_entries, n, &format!("{}#{period}", rp.id));
    let total = picks.len();
    for e in picks {
        let Some(head) = deps
            .backup
            .head(bucket, &e.backup_key, e.backup_version_id.as_deref())
            .await?
        else {
            problems.push((e.key.clone(), Problem::Missing));
            continue;
        };
        match head.restore.as_deref() {
            None if archived(&head.storage_class) => {
                deps.backup
                    .restore(
                        bucket,
                        &e.backup_key,
                        head.version_id.as_deref(),
                        RESTORED_FOR_DAYS,
                        tier,
                    )
                    .await?;
                out.started += 1;
            }
            Some(r) if r.contains("ongoing-request=\"true\"") => out.pending += 1,
            // Restored (or no longer archived): read it back like any other copy.
            // Read back already by the verification pass (its findings are listed there).
            _ if read.contains_key(&e.key) => {
                if read.get(&e.key) == Some(&true) {
                    out.verified += 1;
                    read_back += 1;
                }
            }
            _ => {
                let c = check_one(deps.backup.as_ref(), bucket, e).await?;
                if c.metadata_only {
                    out.pending += 1;
                    continue;
                }
                if c.problems.is_empty() {
                    out.verified += 1;
                    read_back += 1;
                }
                problems.extend(c.problems.into_iter().map(|p| (c.key.clone(), p)));
            }
        }
    }
    out.proved = total > 0 && read_back == total;
    Ok((out, problems))
}
