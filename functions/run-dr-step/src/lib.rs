//! `run-dr-step`: every step of the DR state machine (`infra/state-machines/dr.asl.json`),
//! chosen by `action`: precheck, choose-source, restore, poll, validate, switch, teardown,
//! finish, compensate.
//!
//! One function rather than one per step: the steps share one execution record (a
//! read-modify-write with a version check) and its compensation log, and every step needs
//! most of the same clients; one binary keeps that logic in one place and one cold start
//! per execution. The state machine passes `{"action": …, "request": <its state>}`; every
//! step loads the execution record, does its work idempotently (deterministic names,
//! check before create, undo recorded *before* each change) and saves the record.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::alerting::Alerter;
use lifeboat::app::PointUpdateError;
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat::object_store::runs::{ManifestReadError, completed_runs, load_current_manifest};
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::confirm::{self, TokenError};
use lifeboat_domain::dr::execution::{DB_PREFIXES, FinalSnapshot, final_snapshot_name, short_id};
use lifeboat_domain::dr::execution::{
    DbRun, Measurement, SourceFacts, choose_source, resource_name, writer_instance_name,
};
use lifeboat_domain::dr::execution::{TABLE_PREFIXES, TableRun};
use lifeboat_domain::dr::plan::{GlobalMove, RestoreSettings};
use lifeboat_domain::dr::{
    Action, DrExecution, DrPlan, ExecStatus, Mode, Phase, Source, SwitchScope, Undo, lease_name,
};
use lifeboat_domain::s3::s3_resource;
use lifeboat_domain::{Alert, AlertKind, RecoveryPoint, Region, ResourceKind, ResourceRef, Severity};
use lifeboat_ports::dr::{ActiveSide, SiteDb};
use lifeboat_ports::dr::{
    DbInfo, DeleteMode, DnsRecords, DrDatabases, DrTables, Parameters, Reports, RestoreRequest, WriterRequest,
};
use lifeboat_ports::dr::{DrStore, Site};
use lifeboat_ports::keys::{KmsKeys, SigningKeys};
use lifeboat_ports::lambda::ValidationLambda;
use lifeboat_ports::objects::ObjectStore;
use lifeboat_ports::{Catalog, Clock, Notifier, PortError, PortResult, SnapshotStatus, SnapshotStore, Tag};
use serde::Deserialize;
use serde_json::{Value, json};

pub const FUNCTION: &str = "run-dr-step";
/// Tags on everything a DR execution creates.
pub const TAG_EXECUTION: &str = "lifeboat:dr-execution";
pub const TAG_PLAN: &str = "lifeboat:dr-plan";
pub const TAG_MODE: &str = "lifeboat:dr-mode";
/// How long the plan's lease lasts at most (an execution that dies keeps it this long).
const LEASE_HOURS: i64 = 12;

/// Configuration: `CATALOG_TABLE_NAME`, `ALERTS_TOPIC_ARN`, `DR_REPORTS_BUCKET`, optional
/// `CONFIRM_KEY_SECRET_ID` (failover and failback need it) and `S3_FORCE_PATH_STYLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrConfig {
    pub catalog_table: String,
    pub alerts_topic_arn: String,
    pub reports_bucket: String,
    pub confirm_key_secret_id: Option<String>,
    pub s3_force_path_style: bool,
    /// `BACKUP_REGION`: where `backup-objects` keeps S3 backups (plans with `data` read
    /// them back there); absent, such plans fail their pre-check.
    pub backup_region: Option<Region>,
    /// `DR_SWITCH_PARAMETER_PATH`, `DR_HOSTED_ZONE_IDS`: what a switch may write here.
    pub switch_scope: SwitchScope,
    /// `TABLE_EXPORT_BUCKET`: the buckets holding tables' copies (exports), `{region}`
    /// standing for the region; absent, tables have no copies to import.
    pub table_export_bucket: Option<lifeboat_domain::s3::ExportBuckets>,
}

impl DrConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut problems = Vec::new();
        let mut required = |k: &str| {
            get(k).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| {
                problems.push(format!("{k} is not set"));
                String::new()
            })
        };
        let catalog_table = required("CATALOG_TABLE_NAME");
        let alerts_topic_arn = required("ALERTS_TOPIC_ARN");
        let reports_bucket = required("DR_REPORTS_BUCKET");
        let switch_scope = SwitchScope::from_env(
            get("DR_SWITCH_PARAMETER_PATH").as_deref(),
            get("DR_HOSTED_ZONE_IDS").as_deref(),
        )
        .unwrap_or_else(|e| {
            problems.push(e);
            SwitchScope::default()
        });
        let backup_region = match get("BACKUP_REGION").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(r) => match Region::parse(&r) {
                Ok(r) => Some(r),
                Err(e) => {
                    problems.push(format!("BACKUP_REGION: {e}"));
                    None
                }
            },
        };
        let table_export_bucket = match get("TABLE_EXPORT_BUCKET").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(v) => match lifeboat_domain::s3::ExportBuckets::parse(&v) {
                Ok(b) => Some(b),
                Err(e) => {
                    problems.push(format!("TABLE_EXPORT_BUCKET: {e}"));
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(format!("invalid configuration: {}", problems.join("; ")));
        }
        Ok(Self {
            table_export_bucket,
            catalog_table,
            alerts_topic_arn,
            reports_bucket,
            confirm_key_secret_id: get("CONFIRM_KEY_SECRET_ID").filter(|v| !v.trim().is_empty()),
            s3_force_path_style: get("S3_FORCE_PATH_STYLE").is_some_and(|v| v == "true"),
            backup_region,
            switch_scope,
        })
    }
}

#[derive(Clone)]
pub struct Deps {
    pub catalog: Arc<dyn Catalog>,
    pub store: Arc<dyn DrStore>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub databases: Arc<dyn DrDatabases>,
    /// DynamoDB tables: imported from their copies or restored from their native backups,
    /// scanned, deleted.
    pub tables: Arc<dyn DrTables>,
    pub parameters: Arc<dyn Parameters>,
    pub dns: Arc<dyn DnsRecords>,
    pub reports: Arc<dyn Reports>,
    pub keys: Arc<dyn KmsKeys>,
    pub validator: Arc<dyn ValidationLambda>,
    pub signing: Arc<dyn SigningKeys>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// S3 in the backup region, where plans' data sets are read back.
    pub backup: Option<Arc<dyn ObjectStore>>,
    /// The SSM parameters and hosted zones the deployment lets a switch write.
    pub switch_scope: SwitchScope,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

impl Deps {
    fn alerter(&self) -> Alerter {
        Alerter::new(self.catalog.clone(), self.notifier.clone(), self.clock.clone())
    }
}

/// The execution's input as the state machine carries it (plus what steps added).
#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionInput {
    pub plan: String,
    pub execution: String,
    pub mode: String,
    /// Failover and failback: the confirmation token. Who confirmed is read from the
    /// verified token, never from this input.
    #[serde(default)]
    pub token: Option<String>,
    /// Failover: when the failure happened (RFC 3339); the RPO is measured from it.
    #[serde(default)]
    pub failure_time: Option<DateTime<Utc>>,
    /// Set by a Catch: `{"Error": …, "Cause": …}`.
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    action: String,
    request: Value,
}

/// A parsed step request.
#[derive(Debug, Clone)]
pub struct StepRequest {
    pub action: Action,
    pub input: ExecutionInput,
    pub mode: Mode,
}

impl StepRequest {
    pub fn parse(payload: &Value) -> Result<Self, FunctionError> {
        let env: Envelope = serde_json::from_value(payload.clone())
            .map_err(|e| FunctionError::invalid(format!("expected {{\"action\", \"request\"}}: {e}")))?;
        let action = Action::parse(&env.action).ok_or_else(|| {
            FunctionError::invalid(format!(
                "unknown action {:.40?}; expected one of {}",
                env.action,
                Action::ALL.map(Action::as_str).join(", ")
            ))
        })?;
        let input: ExecutionInput = serde_json::from_value(env.request)
            .map_err(|e| FunctionError::invalid(format!("request: expected plan, execution and mode: {e}")))?;
        let mode = Mode::parse(&input.mode).ok_or_else(|| {
            FunctionError::invalid(format!("mode {:.20?} is not drill, failover or failback", input.mode))
        })?;
        if !lifeboat_domain::dr::execution::is_execution_name(&input.execution) {
            return Err(FunctionError::invalid(
                "execution: 1-80 letters, digits, '-' or '_' (the Step Functions execution name)",
            ));
        }
        Ok(Self { action, input, mode })
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the step's metrics to `sink` (once, also when it fails).
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<Value, FunctionError> {
    let mut metrics = Metrics::new(FUNCTION, &event.context.request_id, deps.clock.now());
    let result = match StepRequest::parse(&event.payload) {
        Ok(req) => {
            let result = run(deps, &req, &event.context.request_id).await;
            record_metrics(&req, &result, &mut metrics);
            result
        }
        Err(e) => Err(e),
    };
    metrics.flush(sink);
    result
}

/// A step's metrics: `DrStepFailures` for a step that failed (a refusal — bad input, or a
/// pre-check refusing a second start or the wrong side — is not a failure; a validation
/// that finds a problem is); `DrCompensations`;
/// and at the finish of a drill (not its replay) `DrillRto`, `DrillRpo` and whether
/// each was over its target.
pub fn record_metrics(req: &StepRequest, result: &Result<Value, FunctionError>, metrics: &mut Metrics) {
    match result {
        Err(e) if e.kind == ErrorType::Invalid => {}
        Err(e) if e.kind == ErrorType::Conflict && req.action == Action::Precheck => {}
        Err(_) => metrics.count(Metric::DrStepFailures, 1),
        Ok(_) if req.action == Action::Compensate => metrics.count(Metric::DrCompensations, 1),
        Ok(out) if req.action == Action::Finish && req.mode == Mode::Drill && out.get("replayed").is_none() => {
            let Ok(m) = serde_json::from_value::<Measurement>(out["measurement"].clone()) else {
                return;
            };
            if let Some(rto) = m.rto_secs {
                metrics.sample(Metric::DrillRto, rto);
            }
            if let Some(rpo) = m.rpo_secs {
                metrics.sample(Metric::DrillRpo, rpo);
            }
            metrics.count(Metric::DrillRtoOverTarget, u64::from(m.rto_met == Some(false)));
            metrics.count(Metric::DrillRpoOverTarget, u64::from(m.rpo_met == Some(false)));
        }
        Ok(_) => {}
    }
}

/// Runs one step.
pub async fn run(deps: &Deps, req: &StepRequest, run_id: &str) -> Result<Value, FunctionError> {
    tracing::info!(action = req.action.as_str(), plan = %req.input.plan, execution = %req.input.execution, mode = req.mode.as_str(), "DR step");
    match req.action {
        Action::Precheck => precheck(deps, req).await,
        Action::Compensate | Action::NeedsOperator => compensate(deps, req, run_id).await,
        action => step(deps, req, action, run_id).await,
    }
}

fn internal(message: impl Into<String>) -> FunctionError {
    FunctionError::new(ErrorType::Internal, message)
}

async fn load_plan(deps: &Deps, name: &str) -> Result<DrPlan, FunctionError> {
    match deps.store.get_plan(name).await? {
        None => Err(FunctionError::not_found(format!("no DR plan named {name:.64?}"))),
        Some(Err(problems)) => Err(FunctionError::misconfigured(problems.to_string())),
        Some(Ok(plan)) => Ok(plan),
    }
}

/// Saves `exec` over `version`, bumping it.
async fn save(deps: &Deps, exec: &mut DrExecution) -> Result<(), FunctionError> {
    let expected = exec.version;
    exec.version += 1;
    if let Err(e) = deps.store.update_execution(exec, expected).await {
        exec.version = expected;
        return Err(e.into());
    }
    Ok(())
}

fn step_output(exec: &DrExecution, plan: &DrPlan, ready: bool, summary: impl Into<String>) -> Value {
    json!({
        "ready": ready,
        "wait_seconds": plan.poll_interval.as_secs().max(1),
        "summary": summary.into(),
        "status": exec.status,
    })
}

async fn release(deps: &Deps, plan: &str, execution: &str) {
    match deps.catalog.release_lease(&lease_name(plan), execution).await {
        Ok(()) | Err(PortError::Conflict(_) | PortError::NotFound(_)) => {}
        Err(e) => tracing::warn!(error = %e, "could not release the DR lease; it expires by itself"),
    }
}

/// The newest verified, restorable recovery point of `db` in `region`.
async fn newest_verified_point(
    deps: &Deps,
    arn: &str,
    region: &Region,
) -> PortResult<Option<lifeboat_domain::RecoveryPoint>> {
    let points = deps.catalog.by_resource(arn, 200).await?;
    Ok(points
        .into_iter()
        .filter(|rp| &rp.location == region && rp.is_restorable() && rp.verified_at.is_some())
        .max_by_key(|rp| rp.created_at))
}

/// The newest usable native backup of `table` taken at or before `at`: a restorable
/// recovery point of the table, in the table's own region (native backups never leave
/// it), made by Lifeboat's native backups (not delegated to an AWS Backup vault), with
/// the backup's ARN recorded.
async fn newest_table_backup(
    deps: &Deps,
    table: &lifeboat_domain::dr::plan::ProtectedTable,
    at: DateTime<Utc>,
) -> PortResult<Option<lifeboat_domain::RecoveryPoint>> {
    let points = deps.catalog.by_resource(&table.arn, 200).await?;
    Ok(points
        .into_iter()
        .filter(|rp| {
            rp.resource.kind == ResourceKind::DynamoDbTable
                && rp.location == table.region
                && rp.is_restorable()
                && rp.backup_vault.is_none()
                && rp.snapshot_arn.is_some()
                && rp.created_at <= at
        })
        .max_by_key(|rp| rp.created_at))
}

/// The newest usable copy of `table` in `region` (the DR region) taken at or before `at`:
/// an export of the table at its backup's time, held in the region's export bucket, which
/// the region can import with nothing of the table's own region.
async fn newest_table_copy(
    deps: &Deps,
    table: &lifeboat_domain::dr::plan::ProtectedTable,
    region: &Region,
    at: DateTime<Utc>,
) -> PortResult<Option<lifeboat_domain::RecoveryPoint>> {
    if region == &table.region {
        return Ok(None);
    }
    let points = deps.catalog.by_resource(&table.arn, 200).await?;
    Ok(points
        .into_iter()
        .filter(|rp| {
            rp.resource.kind == ResourceKind::DynamoDbTable
                && &rp.location == region
                && rp.is_restorable()
                && rp.backup_vault.is_none()
                && rp.created_at <= at
        })
        .max_by_key(|rp| rp.created_at))
}

fn age_text(d: chrono::Duration) -> String {
    humantime::format_duration(std::time::Duration::from_secs(
        u64::try_from(d.num_seconds()).unwrap_or(0),
    ))
    .to_string()
}

// ---------------------------------------------------------------------------------------
// precheck
// ---------------------------------------------------------------------------------------

async fn precheck(deps: &Deps, req: &StepRequest) -> Result<Value, FunctionError> {
    let now = deps.clock.now();
    let input = &req.input;
    let plan = load_plan(deps, &input.plan).await?;

    // Failover and failback change production: a valid confirmation token first, before
    // anything else is touched.
    // Failover and failback change production: a valid confirmation token first, before
    // anything else is touched. It is bound to the plan's content (a plan changed since the
    // token was issued is refused) and names who confirmed.
    let claims = if req.mode.needs_confirmation() {
        let Some(token) = input.token.as_deref() else {
            return Err(FunctionError::invalid(format!(
                "{} needs a confirmation token; refused before any change",
                req.mode
            )));
        };
        let key = deps
            .signing
            .key()
            .await
            .map_err(|e| FunctionError::misconfigured(format!("confirmation key: {e}")))?;
        let digest = confirm::dr_request_digest(&plan, req.mode.as_str())
            .map_err(|e| internal(format!("digest of plan {}: {e}", plan.name)))?;
        let claims = confirm::verify_issued(&key, token, &digest, now).map_err(|e| {
            let why = if e == TokenError::WrongRequest {
                format!("{e} (or the plan changed since it was issued)")
            } else {
                e.to_string()
            };
            FunctionError::invalid(format!("{}: {why}; refused before any change", req.mode))
        })?;
        Some(claims)
    } else {
        None
    };

    let output = |exec: &DrExecution| {
        json!({
            "plan": exec.plan,
            "execution": exec.execution,
            "mode": exec.mode,
            "step": step_output(exec, &plan, true, format!("pre-checks passed: {}", exec.checks.join("; "))),
        })
    };
    // A retried pre-check finds its record. A record is only ever written after its token
    // was consumed, so finding it means the token is spent; it must be this token.
    if let Some(exec) = deps.store.get_execution(&plan.name, &input.execution).await? {
        if let Some(claims) = &claims
            && exec.token_nonce.as_deref() != Some(claims.nonce.as_str())
        {
            return Err(FunctionError::invalid(format!(
                "{}: execution {} was started with another confirmation token; refused",
                req.mode, input.execution
            )));
        }
        return Ok(output(&exec));
    }

    let leased = deps
        .catalog
        .acquire_lease(
            &lease_name(&plan.name),
            &input.execution,
            now + chrono::Duration::hours(LEASE_HOURS),
            now,
        )
        .await?;
    if !leased {
        return Err(FunctionError::new(
            ErrorType::Conflict,
            format!(
                "plan {}: another DR execution is running (it holds the lease); this start is refused",
                plan.name
            ),
        ));
    }
    match precheck_leased(deps, req, &plan, claims.as_ref(), now).await {
        Ok(exec) => Ok(output(&exec)),
        Err(e) => {
            // Nothing was changed: give the plan back.
            release(deps, &plan.name, &input.execution).await;
            Err(e)
        }
    }
}

async fn precheck_leased(
    deps: &Deps,
    req: &StepRequest,
    plan: &DrPlan,
    claims: Option<&confirm::Claims>,
    now: DateTime<Utc>,
) -> Result<DrExecution, FunctionError> {
    let input = &req.input;
    let site = deps.store.site(&plan.name).await?;
    let on_dr = site.as_ref().is_some_and(|s| s.active == ActiveSide::Dr);
    match req.mode {
        Mode::Failback if !on_dr => {
            return Err(FunctionError::new(
                ErrorType::Conflict,
                format!(
                    "plan {}: production is on the source side; nothing to fail back",
                    plan.name
                ),
            ));
        }
        Mode::Failover if on_dr => {
            return Err(FunctionError::new(
                ErrorType::Conflict,
                format!("plan {}: already failed over; fail back first", plan.name),
            ));
        }
        _ => {}
    }

    let mut problems = Vec::new();
    let mut checks = Vec::new();
    for db in &plan.databases {
        // Failback needs the source region healthy again.
        if req.mode == Mode::Failback {
            match deps.databases.describe(&plan.source_region, db.kind, &db.id).await {
                Ok(_) => checks.push(format!("{}: source region {} answers", db.id, plan.source_region)),
                Err(e) => problems.push(format!(
                    "{}: source region {} is not healthy: {e}",
                    db.id, plan.source_region
                )),
            }
            continue;
        }
        let replica = req.mode == Mode::Failover && db.read_replica.is_some();
        // The newest verified copy in the DR region, read once: the RPO check and the
        // writer class of a restored Aurora cluster both use it.
        let aurora_restore = db.kind == ResourceKind::AuroraCluster && db.instance_class.is_none() && !replica;
        let newest = if (plan.prechecks.recovery_point || aurora_restore) && !replica {
            newest_verified_point(deps, &db.arn, &plan.dr_region).await?
        } else {
            None
        };
        if plan.prechecks.recovery_point && !replica {
            match newest.as_ref().map(|rp| (rp.id.to_string(), rp.created_at)) {
                Some((id, taken)) => {
                    let age = (now - taken).to_std().unwrap_or_default();
                    if age > plan.rpo {
                        problems.push(format!(
                            "{}: newest verified recovery point in {} ({id}) is {} old, older than the RPO {}",
                            db.id,
                            plan.dr_region,
                            humantime::format_duration(std::time::Duration::from_secs(age.as_secs())),
                            humantime::format_duration(plan.rpo)
                        ));
                    } else {
                        checks.push(format!("{}: verified recovery point {id} in {}", db.id, plan.dr_region));
                    }
                }
                None => problems.push(format!("{}: no verified recovery point in {}", db.id, plan.dr_region)),
            }
        }
        // A restored Aurora cluster needs a writer, and its class: the plan's, the
        // source writer's (read now), or the one recorded with the snapshot. A failover
        // whose source cannot be read and whose copy records none is refused now rather
        // than halfway.
        if aurora_restore {
            let now_readable = deps
                .databases
                .describe(&plan.source_region, db.kind, &db.id)
                .await
                .ok()
                .flatten()
                .and_then(|i| i.class)
                .is_some();
            let recorded = newest.and_then(|rp| rp.writer_class);
            match (now_readable, recorded) {
                (true, _) => {}
                (false, Some(class)) => checks.push(format!(
                    "{}: writer class {class}, as recorded with the recovery point (the source cannot be read)",
                    db.id
                )),
                (false, None) => problems.push(format!(
                    "{}: no instance class for the restored cluster's writer: the source's writer cannot be read and the recovery point records none; set instance_class in the plan",
                    db.id
                )),
            }
        }
    }
    // DynamoDB tables (drills and failovers restore them): the newest usable backup taken
    // by the event (the failure time, or now) must exist and be within the RPO of it.
    if plan.prechecks.recovery_point && req.mode != Mode::Failback {
        let event = input.failure_time.unwrap_or(now);
        for t in &plan.tables {
            let copy = newest_table_copy(deps, t, &plan.dr_region, event).await?;
            let point = match copy {
                Some(rp) => Some(rp),
                // A failover comes back in the DR region: only a copy there will do.
                None if req.mode == Mode::Failover => {
                    problems.push(format!(
                        "table {}: no usable copy in {} (a table's copy is an export of it: give its policy a copy to {} and configure TABLE_EXPORT_BUCKET)",
                        t.name, plan.dr_region, plan.dr_region
                    ));
                    continue;
                }
                None => {
                    checks.push(format!(
                        "table {}: no copy in {}: the drill restores its native backup in {} and does not prove a failover",
                        t.name, plan.dr_region, t.region
                    ));
                    newest_table_backup(deps, t, event).await?
                }
            };
            match point {
                None => problems.push(format!(
                    "table {}: no usable backup in {} (native backups stay in the table's region)",
                    t.name, t.region
                )),
                Some(rp) => {
                    let age = (event - rp.created_at).to_std().unwrap_or_default();
                    if age > plan.rpo {
                        problems.push(format!(
                            "table {}: newest backup {} is {} old, older than the RPO {}",
                            t.name,
                            rp.snapshot_name,
                            age_text(event - rp.created_at),
                            humantime::format_duration(plan.rpo)
                        ));
                    } else {
                        checks.push(format!(
                            "table {}: backup {} in {}",
                            t.name, rp.snapshot_name, rp.location
                        ));
                    }
                }
            }
        }
    }
    // S3 data: the newest backup run must exist, be verified and be within the RPO (a
    // failback reads the same backups: they live in the backup region).
    if plan.prechecks.recovery_point {
        for d in &plan.data {
            let what = format!("s3://{}/{}", d.bucket, d.prefix);
            if deps.backup.is_none() {
                problems.push(format!("{what}: S3 backups are not configured for DR (BACKUP_REGION)"));
                continue;
            }
            match newest_data_run(deps, plan, d, now).await? {
                None => problems.push(format!("{what}: no completed backup run")),
                Some(rp) if rp.verified_at.is_none() => problems.push(format!(
                    "{what}: the newest backup run {} is not verified (run verify-backups)",
                    rp.id
                )),
                Some(rp) => {
                    let age = (now - rp.created_at).to_std().unwrap_or_default();
                    if age > plan.rpo {
                        problems.push(format!(
                            "{what}: newest verified backup run {} is {} old, older than the RPO {}",
                            rp.id,
                            humantime::format_duration(std::time::Duration::from_secs(age.as_secs())),
                            humantime::format_duration(plan.rpo)
                        ));
                    } else {
                        checks.push(format!("{what}: verified backup run {}", rp.id));
                    }
                }
            }
        }
    }
    if let Some(key) = &plan.prechecks.kms_key_id {
        if deps.keys.usable(&plan.dr_region, key).await? {
            checks.push(format!("KMS key usable in {}", plan.dr_region));
        } else {
            problems.push(format!("KMS key {key} is missing or disabled in {}", plan.dr_region));
        }
    }
    // The failback copies the DR-side databases' snapshots to the source region (a plan
    // of tables and data alone copies nothing).
    if req.mode == Mode::Failback && !plan.databases.is_empty() {
        match &plan.prechecks.source_kms_key_id {
            Some(key) if deps.keys.usable(&plan.source_region, key).await? => {
                checks.push(format!("KMS key usable in {}", plan.source_region));
            }
            Some(key) => problems.push(format!(
                "KMS key {key} is missing or disabled in {}",
                plan.source_region
            )),
            None => problems.push("failback needs prechecks.source_kms_key_id (the copy to the source region)".into()),
        }
        // No write may be lost: the DR side stops taking writes before its final snapshot.
        if plan.switch.as_ref().and_then(|s| s.quiesce.as_ref()).is_none() {
            problems.push(
                "failback needs switch.quiesce (how writes to the DR side stop before its final snapshot: a maintenance endpoint or a read-only parameter); without it every write made after the snapshot would be lost".into(),
            );
        }
    }
    // The switch writes only what this deployment's role may write (a drill checks it too:
    // the drill is where a failover's problems should show).
    if let Some(sw) = &plan.switch {
        problems.extend(deps.switch_scope.problems(sw));
    }
    if let Some(group) = &plan.prechecks.subnet_group {
        if deps.databases.subnet_group_exists(&plan.dr_region, group).await? {
            checks.push(format!("subnet group {group} exists"));
        } else {
            problems.push(format!("DB subnet group {group} does not exist in {}", plan.dr_region));
        }
    }
    if plan.prechecks.quotas {
        let quotas = deps.databases.quotas(&plan.dr_region).await?;
        for (name, need) in [
            (
                "DBInstances",
                plan.databases
                    .iter()
                    .filter(|d| d.kind == ResourceKind::RdsInstance)
                    .count(),
            ),
            (
                "DBClusters",
                plan.databases
                    .iter()
                    .filter(|d| d.kind == ResourceKind::AuroraCluster)
                    .count(),
            ),
        ] {
            let need = i64::try_from(need).unwrap_or(i64::MAX);
            if let Some((_, used, max)) = quotas.iter().find(|(n, _, _)| n == name) {
                if used + need > *max {
                    problems.push(format!("quota {name}: {used} of {max} used, {need} more needed"));
                } else {
                    checks.push(format!("quota {name}: {used}+{need} of {max}"));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(FunctionError::misconfigured(format!(
            "pre-checks failed: {}",
            problems.join("; ")
        )));
    }

    // The token is spent before the execution exists: every later step (all of which read
    // this record) runs on a consumed token. A crash between the two leaves the token spent
    // and no execution: the retry is refused and nothing was changed (ask for a new token).
    if let Some(claims) = claims {
        match lifeboat::confirm::consume(deps.catalog.as_ref(), claims, now).await {
            Ok(()) => {}
            Err(TokenError::Reused) => {
                return Err(FunctionError::invalid(format!(
                    "{}: the confirmation token was already used; refused before any change",
                    req.mode
                )));
            }
            Err(e) => return Err(FunctionError::retryable(e.to_string())),
        }
    }
    let mut exec = DrExecution::new(plan, &input.execution, req.mode, now, input.failure_time.unwrap_or(now));
    // Who confirmed, from the verified token (never from the step's input).
    exec.principal = claims.map(|c| c.principal.clone());
    exec.token_nonce = claims.map(|c| c.nonce.clone());
    exec.checks = checks;
    exec.begin(Action::Precheck, now);
    exec.end(Action::Precheck, now, deps.clock.now(), "passed");
    match deps.store.insert_execution(&exec).await {
        Ok(()) => {}
        Err(PortError::Conflict(_)) => {
            return deps
                .store
                .get_execution(&plan.name, &input.execution)
                .await?
                .ok_or_else(|| internal("execution record vanished"));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(exec)
}

// ---------------------------------------------------------------------------------------
// the steps after the pre-check
// ---------------------------------------------------------------------------------------

async fn step(deps: &Deps, req: &StepRequest, action: Action, run_id: &str) -> Result<Value, FunctionError> {
    let plan = load_plan(deps, &req.input.plan).await?;
    let mut exec = deps
        .store
        .get_execution(&plan.name, &req.input.execution)
        .await?
        .ok_or_else(|| FunctionError::not_found(format!("no DR execution {}", req.input.execution)))?;
    if exec.status != ExecStatus::Running {
        if action == Action::Finish && exec.status == ExecStatus::Succeeded {
            let mut out = finish_output(&exec, &plan);
            out["replayed"] = json!(true);
            return Ok(out);
        }
        return Err(FunctionError::new(
            ErrorType::Conflict,
            format!(
                "execution {} is {:?}; step {action} refused",
                exec.execution, exec.status
            ),
        ));
    }
    let started = deps.clock.now();
    exec.begin(action, started);
    let result = match action {
        Action::ChooseSource => choose(deps, &plan, &mut exec).await,
        Action::Restore | Action::Poll => advance(deps, &plan, &mut exec, action).await,
        Action::Validate => validate(deps, &plan, &mut exec).await,
        Action::Switch => switch(deps, &plan, &mut exec).await,
        Action::Teardown => teardown(deps, &plan, &mut exec).await,
        Action::Finish => finish(deps, &plan, &mut exec, run_id).await,
        Action::Precheck | Action::Compensate | Action::NeedsOperator => Err(internal("not a plain step")),
    };
    let now = deps.clock.now();
    match result {
        Ok((ready, summary)) => {
            exec.end(action, started, now, summary.clone());
            save(deps, &mut exec).await?;
            if plan.rehearsal_fault == Some(action) && (ready || action != Action::Poll) {
                return Err(internal(format!("rehearsal fault injected at step {action}")));
            }
            if action == Action::Finish {
                return Ok(finish_output(&exec, &plan));
            }
            Ok(step_output(&exec, &plan, ready, summary))
        }
        Err(e) => {
            exec.end(action, started, now, format!("failed: {}", e.message));
            // Keep what the step recorded (its undo entries above all).
            if let Err(save_err) = save(deps, &mut exec).await {
                tracing::warn!(error = %save_err, "could not record the failed step");
            }
            Err(e)
        }
    }
}

type StepResult = Result<(bool, String), FunctionError>;

fn lifeboat_tags(exec: &DrExecution) -> Vec<Tag> {
    vec![
        Tag::new(TAG_EXECUTION, &exec.execution),
        Tag::new(TAG_PLAN, &exec.plan),
        Tag::new(TAG_MODE, exec.mode.as_str()),
        Tag::new("lifeboat:created-by", "lifeboat"),
    ]
}

/// Chooses where each table comes back from: its newest usable copy in the DR region
/// taken at or before the reference time (the drill or failure time), imported there; a
/// drill of a table without a copy restores its newest usable native backup, confirmed
/// by DynamoDB, in the table's own region instead.
async fn choose_tables(
    deps: &Deps,
    plan: &DrPlan,
    exec: &mut DrExecution,
    chosen: &mut Vec<String>,
) -> Result<(), FunctionError> {
    let reference = exec.reference_time;
    let what = if exec.mode == Mode::Drill { "drill" } else { "failure" };
    for i in 0..exec.tables.len() {
        if exec.tables[i].phase != Phase::New {
            continue;
        }
        let table = exec.tables[i].table.clone();
        if let Some(rp) = newest_table_copy(deps, &table, &plan.dr_region, reference).await? {
            let reason = format!(
                "newest usable copy {} of {} in {} (an export of the table at {}): {} before the {what} time (the table's RPO); imported in {}",
                rp.snapshot_name,
                table.name,
                plan.dr_region,
                rp.created_at,
                age_text(reference - rp.created_at),
                plan.dr_region
            );
            chosen.push(format!("table {}: {reason}", table.name));
            let t = &mut exec.tables[i];
            t.recovery_point = Some(rp.id.to_string());
            t.copy = Some(rp.snapshot_name.clone());
            t.backup_at = Some(rp.created_at);
            t.target_region = plan.dr_region.clone();
            t.expected = rp
                .table_checksum
                .as_ref()
                .map(|c| lifeboat_domain::dr::table_digest::TableContent {
                    items: c.items,
                    checksum: c.checksum.clone(),
                });
            t.reason = reason;
            t.phase = Phase::Chosen;
            continue;
        }
        if exec.mode == Mode::Failover {
            return Err(FunctionError::not_found(format!(
                "table {}: no usable copy in {} taken by {reference}: a failover brings tables back in the DR region, from their copies (exports)",
                table.name, plan.dr_region
            )));
        }
        let rp = newest_table_backup(deps, &table, reference).await?.ok_or_else(|| {
            FunctionError::not_found(format!(
                "table {}: no usable backup in {} taken by {reference}",
                table.name, table.region
            ))
        })?;
        let arn = rp.snapshot_arn.clone().unwrap_or_default();
        let backup = deps.tables.describe_backup(&table.region, &arn).await?.ok_or_else(|| {
            FunctionError::not_found(format!(
                "table {}: backup {} ({}) is recorded but DynamoDB no longer has it",
                table.name, rp.snapshot_name, rp.id
            ))
        })?;
        if backup.status != "AVAILABLE" {
            return Err(FunctionError::new(
                ErrorType::Conflict,
                format!(
                    "table {}: backup {} is {}, not AVAILABLE",
                    table.name, rp.snapshot_name, backup.status
                ),
            ));
        }
        let reason = format!(
            "newest usable native backup {} of {} in {}, taken at {}: {} before the {what} time (the table's RPO)",
            rp.snapshot_name,
            table.name,
            table.region,
            rp.created_at,
            age_text(reference - rp.created_at)
        );
        chosen.push(format!("table {}: {reason}", table.name));
        let t = &mut exec.tables[i];
        t.recovery_point = Some(rp.id.to_string());
        t.backup_arn = Some(arn);
        t.backup_at = Some(rp.created_at);
        t.backup_item_count = backup.item_count;
        t.expected = rp
            .table_checksum
            .as_ref()
            .map(|c| lifeboat_domain::dr::table_digest::TableContent {
                items: c.items,
                checksum: c.checksum.clone(),
            });
        t.reason = reason;
        t.phase = Phase::Chosen;
    }
    Ok(())
}

async fn choose(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> StepResult {
    let now = deps.clock.now();
    let site = deps.store.site(&plan.name).await?;
    let mut chosen = Vec::new();
    choose_tables(deps, plan, exec, &mut chosen).await?;
    for i in 0..exec.databases.len() {
        if exec.databases[i].phase != Phase::New {
            continue;
        }
        let db = exec.databases[i].db.clone();
        if exec.mode == Mode::Failback {
            let on_dr = site
                .as_ref()
                .and_then(|s| s.databases.iter().find(|d| d.db == db.id))
                .ok_or_else(|| FunctionError::not_found(format!("{}: no DR-side database recorded", db.id)))?;
            let info = deps.databases.describe(&on_dr.region, db.kind, &on_dr.id).await?;
            let d = &mut exec.databases[i];
            d.expect_engine = info.as_ref().and_then(|i| i.engine.clone());
            d.expect_class = db.instance_class.clone().or_else(|| info.and_then(|i| i.class));
            d.source = Some(Source::DrSide {
                resource: on_dr.id.clone(),
                snapshot: resource_name("lbfbs", &exec.execution, &db.id),
                taken_at: None,
            });
            d.reason = format!(
                "failback: a fresh snapshot of the DR-side database {} copied to {}",
                on_dr.id, plan.source_region
            );
            d.phase = Phase::Chosen;
            chosen.push(format!("{}: DR-side snapshot", db.id));
            continue;
        }
        let source_info = deps.databases.describe(&plan.source_region, db.kind, &db.id).await;
        let info = source_info.as_ref().ok().and_then(Option::as_ref);
        let healthy = info.is_some_and(lifeboat_ports::dr::DbInfo::is_available);
        let pitr_window = info.and_then(|i| {
            let latest = i.latest_restorable?;
            let days = i64::from(i.backup_retention_days.filter(|d| *d > 0)?);
            Some((latest - chrono::Duration::days(days), latest))
        });
        let replica_available = match &db.read_replica {
            Some(r) => deps
                .databases
                .describe(&plan.dr_region, db.kind, r)
                .await
                .ok()
                .flatten()
                .is_some(),
            None => false,
        };
        let dr_copy = newest_verified_point(deps, &db.arn, &plan.dr_region).await?;
        let facts = SourceFacts {
            source_healthy: healthy,
            pitr_window,
            replica_available,
            newest_dr_copy: dr_copy
                .as_ref()
                .map(|rp| (rp.id.to_string(), rp.snapshot_name.clone(), rp.created_at)),
        };
        let (source, reason) = choose_source(exec.mode, &db, &facts, exec.reference_time, now);
        let Some(source) = source else {
            return Err(FunctionError::not_found(format!("{}: {reason}", db.id)));
        };
        let d = &mut exec.databases[i];
        d.expect_engine = info.and_then(|i| i.engine.clone());
        // The writer class of a restored Aurora cluster: the plan's, else the source
        // writer's as read now, else as recorded with the snapshot when it was taken (the
        // source's region may be down).
        d.expect_class = db
            .instance_class
            .clone()
            .or_else(|| info.and_then(|i| i.class.clone()))
            .or_else(|| match &source {
                Source::DrSnapshot { .. } => dr_copy.as_ref().and_then(|rp| rp.writer_class.clone()),
                _ => None,
            });
        match &source {
            Source::PointInTime { .. } => d.target_region = plan.source_region.clone(),
            Source::PromoteReplica { replica, .. }
            | Source::GlobalCluster {
                global_cluster: replica,
                ..
            } => {
                d.target_id = db.read_replica.clone().unwrap_or_else(|| replica.clone());
            }
            _ => {}
        }
        chosen.push(format!("{}: {reason}", db.id));
        d.source = Some(source);
        d.reason = reason;
        d.phase = Phase::Chosen;
        // A failover first keeps what the source still has: a pre-failover recovery point.
        if exec.mode == Mode::Failover && healthy {
            let name = resource_name("lbpre", &exec.execution, &db.id);
            let exists = deps
                .snapshots
                .describe_snapshot(&plan.source_region, db.kind, &name)
                .await?
                .is_some();
            if !exists {
                let resource = ResourceRef {
                    kind: db.kind,
                    id: db.id.clone(),
                    arn: db.arn.clone(),
                    region: plan.source_region.clone(),
                };
                deps.snapshots
                    .create_snapshot(&resource, &name, &lifeboat_tags(exec))
                    .await?;
            }
            exec.databases[i].pre_failover_snapshot = Some(name);
        }
    }
    Ok((true, chosen.join("; ")))
}

fn restore_request<'a>(d: &'a DbRun, settings: &'a RestoreSettings, tags: &'a [Tag]) -> RestoreRequest<'a> {
    RestoreRequest {
        region: &d.target_region,
        kind: d.db.kind,
        target: &d.target_id,
        class: if d.db.kind == ResourceKind::RdsInstance {
            d.expect_class.as_deref()
        } else {
            None
        },
        settings,
        tags,
    }
}

/// What the restore of `d` carries: the plan's placement and groups, or, for a restore in
/// the source region, the source database's own as RDS describes it now. Refused (Invalid)
/// when it would land in the default VPC or security group and the plan does not allow it.
async fn restore_settings(deps: &Deps, plan: &DrPlan, d: &DbRun) -> Result<RestoreSettings, FunctionError> {
    let in_dr_region = d.target_region == plan.dr_region;
    let source = if in_dr_region {
        None
    } else {
        deps.databases
            .describe(&plan.source_region, d.db.kind, &d.db.id)
            .await?
            .map(|i| i.placement)
    };
    plan.restore_settings(&d.db, in_dr_region, source.as_ref())
        .map_err(|e| FunctionError::new(ErrorType::Invalid, e))
}

/// An Aurora cluster restored from a snapshot has no instance: its writer is created (the
/// class from the plan, else the source's writer's) and waited for. Answers whether the
/// writer is available.
async fn writer_ready(
    deps: &Deps,
    plan: &DrPlan,
    exec: &mut DrExecution,
    i: usize,
    action: Action,
    cluster: &lifeboat_ports::dr::DbInfo,
    notes: &mut Vec<String>,
) -> Result<bool, FunctionError> {
    let d = exec.databases[i].clone();
    let writer = writer_instance_name(&d.target_id);
    match deps
        .databases
        .describe(&d.target_region, ResourceKind::RdsInstance, &writer)
        .await?
    {
        Some(w) if w.is_available() => {
            exec.databases[i].writer = Some(writer);
            Ok(true)
        }
        Some(w) if w.status.contains("fail") || w.status.starts_with("incompatible") => {
            Err(internal(format!("writer {writer} ended in status {}", w.status)))
        }
        Some(_) => Ok(false),
        None => {
            let class = d.expect_class.clone().ok_or_else(|| {
                FunctionError::new(
                    ErrorType::Invalid,
                    format!(
                        "{}: no instance class for the writer of {} (the source's writer could not be read); set instance_class in the plan",
                        d.db.id, d.target_id
                    ),
                )
            })?;
            let engine = cluster
                .engine
                .clone()
                .ok_or_else(|| internal(format!("{} reports no engine", d.target_id)))?;
            let settings = restore_settings(deps, plan, &d).await?;
            let tags = lifeboat_tags(exec);
            exec.will_undo(
                action,
                Undo::DeleteInstance {
                    region: d.target_region.clone(),
                    id: writer.clone(),
                },
            );
            save(deps, exec).await?;
            deps.databases
                .create_cluster_instance(&WriterRequest {
                    region: &d.target_region,
                    cluster: &d.target_id,
                    instance: &writer,
                    class: &class,
                    engine: &engine,
                    parameter_group: settings.parameter_group.as_deref(),
                    tags: &tags,
                })
                .await?;
            exec.databases[i].writer = Some(writer.clone());
            notes.push(format!(
                "{}: writer {writer} ({class}) of {} started",
                d.db.id, d.target_id
            ));
            Ok(false)
        }
    }
}

fn delete_undo(d: &DbRun) -> Undo {
    match d.db.kind {
        // Plans name databases only (checked when a plan is parsed); the adapter refuses
        // anything else, so an S3 kind could never delete a database.
        ResourceKind::RdsInstance
        | ResourceKind::S3Prefix
        | ResourceKind::DynamoDbTable
        | ResourceKind::ConfigBundle => Undo::DeleteInstance {
            region: d.target_region.clone(),
            id: d.target_id.clone(),
        },
        ResourceKind::AuroraCluster => Undo::DeleteCluster {
            region: d.target_region.clone(),
            id: d.target_id.clone(),
        },
    }
}

/// Check before create: a retried step finds the database its earlier run started.
/// Whether the restore's target exists already as this execution's: a retried step finds
/// the database its earlier run started (it carries the execution's Lifeboat tags). A
/// database of that name that is not this execution's is never used, nor later deleted:
/// `Conflict`, left alone. One still being deleted keeps its name for minutes, as on AWS:
/// the step waits (`InvalidState`).
async fn exists(deps: &Deps, d: &DbRun, tags: &[Tag]) -> PortResult<bool> {
    let Some(db) = deps
        .databases
        .describe(&d.target_region, d.db.kind, &d.target_id)
        .await?
    else {
        return Ok(false);
    };
    let ours = tags
        .iter()
        .filter(|t| t.key.starts_with("lifeboat:"))
        .all(|t| db.tags.contains(t));
    if !ours {
        return Err(PortError::Conflict(format!(
            "a database named {} exists in {} and is not this execution's (its lifeboat tags differ); it is left alone",
            d.target_id, d.target_region
        )));
    }
    if db.status == "deleting" {
        return Err(PortError::InvalidState(format!(
            "{} is being deleted; the restore waits until its name is free",
            d.target_id
        )));
    }
    Ok(true)
}

/// Starts what can start and moves every database of the current plan step along.
/// Returns whether every database is ready.
async fn advance(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution, action: Action) -> StepResult {
    let now = deps.clock.now();
    if action == Action::Poll && (now - exec.triggered_at).to_std().unwrap_or_default() > plan.restore_deadline {
        return Err(FunctionError::new(
            ErrorType::Conflict,
            format!(
                "deadline passed: the databases were not all available within {}",
                humantime::format_duration(plan.restore_deadline)
            ),
        ));
    }
    let tags = lifeboat_tags(exec);
    let mut notes = Vec::new();
    advance_tables(deps, exec, action, &mut notes).await?;
    // A failback stops the writes to the DR side before any snapshot of it is taken.
    let snapshot_pending = exec
        .databases
        .iter()
        .any(|d| d.phase == Phase::Chosen && matches!(d.source, Some(Source::DrSide { .. })));
    if exec.mode == Mode::Failback && snapshot_pending && exec.quiesced_at.is_none() {
        notes.push(quiesce(deps, plan, exec, action).await?);
    }
    // Several rounds: a database that became ready may let the next plan step start.
    for _ in 0..4 {
        let Some(current) = exec.current_step() else { break };
        let mut moved = false;
        for i in 0..exec.databases.len() {
            if exec.databases[i].db.step != current {
                continue;
            }
            let d = exec.databases[i].clone();
            let source = d
                .source
                .clone()
                .ok_or_else(|| internal(format!("{}: no source chosen", d.db.id)))?;
            match (d.phase, &source) {
                (Phase::Chosen, Source::PointInTime { restore_time }) => {
                    let settings = restore_settings(deps, plan, &d).await?;
                    exec.will_undo(action, delete_undo(&d));
                    save(deps, exec).await?;
                    if !exists(deps, &d, &tags).await? {
                        deps.databases
                            .restore_to_time(&restore_request(&d, &settings, &tags), &d.db.id, *restore_time)
                            .await?;
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!("{}: point-in-time restore to {} started", d.db.id, d.target_id));
                }
                (Phase::Chosen, Source::DrSnapshot { snapshot, .. }) => {
                    let settings = restore_settings(deps, plan, &d).await?;
                    exec.will_undo(action, delete_undo(&d));
                    save(deps, exec).await?;
                    if !exists(deps, &d, &tags).await? {
                        deps.databases
                            .restore_from_snapshot(&restore_request(&d, &settings, &tags), snapshot)
                            .await?;
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!(
                        "{}: restore of {snapshot} into {} started",
                        d.db.id, d.target_id
                    ));
                }
                (Phase::Chosen, Source::PromoteReplica { replica, .. }) => {
                    // Not undoable: a promoted replica cannot be demoted. Recorded as such.
                    match deps.databases.promote_replica(&d.target_region, replica).await {
                        Ok(()) | Err(PortError::InvalidState(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!("{}: replica {replica} promoted (cannot be undone)", d.db.id));
                }
                (
                    Phase::Chosen,
                    Source::GlobalCluster {
                        global_cluster, method, ..
                    },
                ) => {
                    let target = deps
                        .databases
                        .describe(&d.target_region, ResourceKind::AuroraCluster, &d.target_id)
                        .await?
                        .and_then(|i| i.arn)
                        .ok_or_else(|| FunctionError::not_found(format!("secondary cluster {}", d.target_id)))?;
                    // Not undoable either: the secondary becomes the primary.
                    // A replayed step finds the move already under way (InvalidState).
                    let (moved, how) = match method {
                        GlobalMove::Outage => (
                            deps.databases
                                .failover_global_cluster(&d.target_region, global_cluster, &target)
                                .await,
                            "failing over (AllowDataLoss)",
                        ),
                        GlobalMove::Planned => (
                            deps.databases
                                .switchover_global_cluster(&d.target_region, global_cluster, &target)
                                .await,
                            "switching over (no data loss)",
                        ),
                    };
                    match moved {
                        Ok(()) | Err(PortError::InvalidState(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!(
                        "{}: global database {global_cluster} {how} to {}",
                        d.db.id, d.target_id
                    ));
                }
                (Phase::Chosen, Source::DrSide { resource, snapshot, .. }) => {
                    // Not before the writes have stopped: the snapshot must hold the last one.
                    match exec.writes_stopped_at {
                        None => return Err(internal("failback: the DR side was not quiesced")),
                        Some(stopped) if deps.clock.now() < stopped => {
                            notes.push(format!(
                                "{}: waiting until {stopped} for the last writes to the DR side to settle",
                                d.db.id
                            ));
                            continue;
                        }
                        Some(_) => {}
                    }
                    exec.will_undo(
                        action,
                        Undo::DeleteSnapshot {
                            region: plan.dr_region.clone(),
                            kind: d.db.kind,
                            name: snapshot.clone(),
                        },
                    );
                    save(deps, exec).await?;
                    if deps
                        .snapshots
                        .describe_snapshot(&plan.dr_region, d.db.kind, snapshot)
                        .await?
                        .is_none()
                    {
                        let r = ResourceRef {
                            kind: d.db.kind,
                            id: resource.clone(),
                            arn: String::new(),
                            region: plan.dr_region.clone(),
                        };
                        deps.snapshots.create_snapshot(&r, snapshot, &tags).await?;
                    }
                    exec.databases[i].phase = Phase::SnapshotDrSide;
                    notes.push(format!("{}: snapshot {snapshot} of the DR side started", d.db.id));
                }
                (Phase::SnapshotDrSide, Source::DrSide { resource, snapshot, .. }) => {
                    let Some(snap) = deps
                        .snapshots
                        .describe_snapshot(&plan.dr_region, d.db.kind, snapshot)
                        .await?
                    else {
                        return Err(FunctionError::not_found(format!("snapshot {snapshot} vanished")));
                    };
                    match snap.status {
                        SnapshotStatus::Available => {}
                        SnapshotStatus::Failed => return Err(internal(format!("snapshot {snapshot} failed"))),
                        _ => continue,
                    }
                    let key = plan
                        .prechecks
                        .source_kms_key_id
                        .clone()
                        .ok_or_else(|| FunctionError::misconfigured("prechecks.source_kms_key_id"))?;
                    exec.will_undo(
                        action,
                        Undo::DeleteSnapshot {
                            region: plan.source_region.clone(),
                            kind: d.db.kind,
                            name: snapshot.clone(),
                        },
                    );
                    save(deps, exec).await?;
                    if deps
                        .snapshots
                        .describe_snapshot(&plan.source_region, d.db.kind, snapshot)
                        .await?
                        .is_none()
                    {
                        deps.snapshots
                            .copy_snapshot(&snap, &plan.source_region, snapshot, &key, &tags)
                            .await?;
                    }
                    exec.databases[i].source = Some(Source::DrSide {
                        resource: resource.clone(),
                        snapshot: snapshot.clone(),
                        taken_at: snap.created_at,
                    });
                    exec.databases[i].phase = Phase::CopyToSource;
                    notes.push(format!(
                        "{}: copy of {snapshot} to {} started",
                        d.db.id, plan.source_region
                    ));
                }
                (Phase::CopyToSource, Source::DrSide { snapshot, .. }) => {
                    match deps
                        .snapshots
                        .describe_snapshot(&plan.source_region, d.db.kind, snapshot)
                        .await?
                        .map(|s| s.status)
                    {
                        Some(SnapshotStatus::Available) => {}
                        Some(SnapshotStatus::Failed) | None => {
                            return Err(internal(format!("copy of {snapshot} to {} failed", plan.source_region)));
                        }
                        Some(_) => continue,
                    }
                    let settings = restore_settings(deps, plan, &d).await?;
                    exec.will_undo(action, delete_undo(&d));
                    save(deps, exec).await?;
                    if !exists(deps, &d, &tags).await? {
                        deps.databases
                            .restore_from_snapshot(&restore_request(&d, &settings, &tags), snapshot)
                            .await?;
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!("{}: restore into {} started", d.db.id, d.target_id));
                }
                (Phase::Recovering, _) => {
                    match deps
                        .databases
                        .describe(&d.target_region, d.db.kind, &d.target_id)
                        .await?
                    {
                        Some(info) if info.is_available() => {
                            let from_snapshot = matches!(source, Source::DrSnapshot { .. } | Source::DrSide { .. });
                            if d.db.kind == ResourceKind::AuroraCluster
                                && from_snapshot
                                && !writer_ready(deps, plan, exec, i, action, &info, &mut notes).await?
                            {
                                continue;
                            }
                            let r = &mut exec.databases[i];
                            r.phase = Phase::Ready;
                            r.endpoint = info.endpoint;
                            r.ready_at = Some(deps.clock.now());
                            moved = true;
                            notes.push(format!("{}: {} available", d.db.id, d.target_id));
                        }
                        Some(info) if info.status.contains("fail") || info.status.starts_with("incompatible") => {
                            return Err(internal(format!("{} ended in status {}", d.target_id, info.status)));
                        }
                        Some(_) => {}
                        None => return Err(FunctionError::not_found(format!("{} vanished", d.target_id))),
                    }
                }
                _ => {}
            }
        }
        if !moved {
            break;
        }
    }
    let ready = exec.all_ready();
    if notes.is_empty() {
        notes.push("waiting".into());
    }
    Ok((ready, notes.join("; ")))
}

/// Whether the table's import has completed; a failed or cancelled import fails the step.
async fn import_done(deps: &Deps, t: &TableRun) -> Result<bool, FunctionError> {
    let arn = t.import_arn.as_deref().unwrap_or_default();
    match deps.tables.describe_import(&t.target_region, arn).await? {
        Some(i) if i.status == "COMPLETED" => Ok(true),
        Some(i) if i.status == "IN_PROGRESS" => Ok(false),
        Some(i) => Err(internal(format!(
            "table {}: import {arn} into {} ended {}{}",
            t.table.name,
            t.target_name,
            i.status,
            i.failure.map(|f| format!(": {f}")).unwrap_or_default()
        ))),
        None => Err(FunctionError::not_found(format!(
            "table {}: import {arn} into {} vanished",
            t.table.name, t.target_name
        ))),
    }
}

fn table_undo(t: &TableRun) -> Undo {
    Undo::DeleteTable {
        region: t.target_region.clone(),
        name: t.target_name.clone(),
        backup_arn: t.backup_arn.clone(),
    }
}

/// Tables restore independently of the plan's database steps: every chosen table starts
/// at once, each restored into its deterministic name (check before create: a table there
/// restored from the same backup is this execution's earlier start; any other table is
/// not Lifeboat's and stops the execution).
async fn advance_tables(
    deps: &Deps,
    exec: &mut DrExecution,
    action: Action,
    notes: &mut Vec<String>,
) -> Result<(), FunctionError> {
    for i in 0..exec.tables.len() {
        let t = exec.tables[i].clone();
        match t.phase {
            Phase::Chosen if t.copy.is_some() => {
                let copy = t.copy.clone().unwrap_or_default();
                if t.import_arn.is_none() {
                    // The same start again (a retried step) is the same import, whose ARN
                    // the undo then records: only that import's table is ever deleted.
                    let arn = match deps.tables.import_copy(&t.target_region, &copy, &t.target_name).await {
                        Ok(arn) => arn,
                        Err(PortError::AlreadyExists(_)) => {
                            return Err(FunctionError::new(
                                ErrorType::Conflict,
                                format!(
                                    "table {}: {} already exists in {} and is not this execution's import of {copy}; it is left alone",
                                    t.table.name, t.target_name, t.target_region
                                ),
                            ));
                        }
                        Err(e) => return Err(e.into()),
                    };
                    exec.tables[i].import_arn = Some(arn.clone());
                    let mut undo = table_undo(&t);
                    if let Undo::DeleteTable { backup_arn, .. } = &mut undo {
                        *backup_arn = Some(arn);
                    }
                    exec.will_undo(action, undo);
                }
                exec.tables[i].phase = Phase::Recovering;
                notes.push(format!(
                    "table {}: import of its copy {copy} into {} in {} started",
                    t.table.name, t.target_name, t.target_region
                ));
            }
            Phase::Chosen => {
                let backup = t
                    .backup_arn
                    .clone()
                    .ok_or_else(|| internal(format!("table {}: no backup chosen", t.table.name)))?;
                exec.will_undo(action, table_undo(&t));
                save(deps, exec).await?;
                let mut existing = deps.tables.describe_table(&t.target_region, &t.target_name).await?;
                if existing.is_none() {
                    match deps
                        .tables
                        .restore_from_backup(&t.target_region, &backup, &t.target_name)
                        .await
                    {
                        Ok(()) => {}
                        // Created since the look: read what is there now.
                        Err(PortError::AlreadyExists(_)) => {
                            existing = deps.tables.describe_table(&t.target_region, &t.target_name).await?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                if let Some(info) = existing
                    && info.restored_from.as_deref() != Some(backup.as_str())
                {
                    return Err(FunctionError::new(
                        ErrorType::Conflict,
                        format!(
                            "table {}: {} already exists in {} and was not restored from {backup}; it is not this execution's and is left alone",
                            t.table.name, t.target_name, t.target_region
                        ),
                    ));
                }
                exec.tables[i].phase = Phase::Recovering;
                notes.push(format!(
                    "table {}: restore of its backup into {} started",
                    t.table.name, t.target_name
                ));
            }
            Phase::Recovering if t.import_arn.is_some() && !import_done(deps, &t).await? => {}
            Phase::Recovering => match deps.tables.describe_table(&t.target_region, &t.target_name).await? {
                Some(info) if info.is_ready() => {
                    exec.tables[i].phase = Phase::Ready;
                    exec.tables[i].ready_at = Some(deps.clock.now());
                    notes.push(format!("table {}: {} active", t.table.name, t.target_name));
                }
                Some(info) if matches!(info.status.as_str(), "CREATING" | "UPDATING" | "ACTIVE") => {}
                Some(info) => {
                    return Err(internal(format!(
                        "table {} ended in status {}",
                        t.target_name, info.status
                    )));
                }
                None => return Err(FunctionError::not_found(format!("table {} vanished", t.target_name))),
            },
            _ => {}
        }
    }
    Ok(())
}

/// The newest completed backup run of a data set taken at or before `at`.
async fn newest_data_run(
    deps: &Deps,
    plan: &DrPlan,
    d: &lifeboat_domain::dr::plan::DataSet,
    at: DateTime<Utc>,
) -> PortResult<Option<lifeboat_domain::RecoveryPoint>> {
    let resource = s3_resource(&plan.source_region, &d.bucket, &d.prefix);
    Ok(completed_runs(deps.catalog.as_ref(), &resource.arn)
        .await?
        .into_iter()
        .filter(|rp| rp.created_at <= at)
        .max_by_key(|rp| rp.created_at))
}

/// Reads a sample of the data set's newest backup run back and compares every object with
/// its manifest; records the run (its time counts in the measured RPO) and what was found.
async fn validate_data(
    deps: &Deps,
    plan: &DrPlan,
    exec: &mut DrExecution,
    i: usize,
    problems: &mut Vec<String>,
) -> Result<(), FunctionError> {
    let Some(d) = plan.data.get(i) else { return Ok(()) };
    let what = format!("s3://{}/{}", d.bucket, d.prefix);
    let Some(store) = deps.backup.as_ref() else {
        problems.push(format!("{what}: S3 backups are not configured for DR (BACKUP_REGION)"));
        return Ok(());
    };
    let Some(rp) = newest_data_run(deps, plan, d, exec.reference_time).await? else {
        problems.push(format!("{what}: no completed backup run"));
        return Ok(());
    };
    let Some(mref) = rp.manifest.clone() else {
        problems.push(format!("{what}: {} has no manifest", rp.id));
        return Ok(());
    };
    let manifest = match load_current_manifest(store.as_ref(), deps.catalog.as_ref(), &rp.location, &mref).await {
        Ok(m) => m,
        Err(ManifestReadError::Port(e)) => return Err(e.into()),
        Err(ManifestReadError::Bad(e)) => {
            problems.push(format!("{what}: the manifest of {} failed its check ({e})", rp.id));
            return Ok(());
        }
    };
    let live: Vec<_> = manifest.live().collect();
    let objects = live.len() as u64;
    let chosen = lifeboat::verify::sample(live, d.sample, &exec.execution);
    let checked = lifeboat::verify::check_entries(store.as_ref(), &mref.backup_bucket, chosen).await?;
    let found: Vec<String> = checked
        .problems
        .iter()
        .map(|(key, p)| format!("{key}: {}", p.as_str()))
        .collect();
    if found.is_empty() {
        exec.checks.push(format!(
            "validate {what}: {} of {objects} object(s) of {} read back and matching the manifest",
            checked.objects, rp.id
        ));
    } else {
        problems.push(format!(
            "{what}: {} object(s) of {} do not match the manifest: {}",
            found.len(),
            rp.id,
            found.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let now = deps.clock.now();
    if let Some(run) = exec.data.get_mut(i) {
        run.recovery_point = Some(rp.id.to_string());
        run.run_at = Some(rp.created_at);
        run.backup_bucket = Some(mref.backup_bucket.clone());
        run.objects = objects;
        run.objects_checked = checked.objects;
        run.bytes_checked = checked.bytes;
        run.problems = found;
        run.validated_at = Some(now);
    }
    Ok(())
}

/// Records a backup's content on its recovery point, once: the first validated restore
/// writes it (version-checked); a restore that lost the race to record compares with what
/// the winner wrote. Returns what the recovery point holds afterwards.
async fn record_table_checksum(
    deps: &Deps,
    rp_id: &str,
    found: &lifeboat_domain::dr::table_digest::TableContent,
    restored_as: &str,
) -> Result<lifeboat_domain::TableChecksum, FunctionError> {
    let id = lifeboat_domain::RecoveryPointId::parse(rp_id).map_err(|e| internal(e.to_string()))?;
    let now = deps.clock.now();
    let record = lifeboat_domain::TableChecksum {
        items: found.items,
        checksum: found.checksum.clone(),
        restored_as: restored_as.to_owned(),
        at: now,
    };
    // What the point already holds, when another restore recorded it first.
    let mut existing = None;
    let written = lifeboat::app::update_point(deps.catalog.as_ref(), deps.clock.as_ref(), &id, 3, |rp| {
        if let Some(e) = &rp.table_checksum {
            existing = Some(e.clone());
            return None;
        }
        Some(RecoveryPoint {
            table_checksum: Some(record.clone()),
            verified_at: Some(now),
            ..rp.clone()
        })
    })
    .await;
    match written {
        Ok(Some(_)) => Ok(record),
        Ok(None) => existing.ok_or_else(|| internal(format!("recovery point {rp_id}: nothing recorded"))),
        Err(PointUpdateError::Missing) => Err(FunctionError::not_found(format!(
            "recovery point {rp_id} vanished from the catalog"
        ))),
        Err(PointUpdateError::KeptChanging) => Err(FunctionError::retryable(format!(
            "recovery point {rp_id} kept changing while its checksum was recorded"
        ))),
        Err(PointUpdateError::Port(e)) => Err(e.into()),
    }
}

/// Validates one restored table: active, the source's key schema and index names, and
/// the scan's item count and checksum against the backup's first validated restore (or
/// recorded as that first one). The verdict, the count and the checksum go into the
/// execution record.
async fn validate_table(
    deps: &Deps,
    exec: &mut DrExecution,
    i: usize,
    problems: &mut Vec<String>,
) -> Result<Option<Value>, FunctionError> {
    let t = exec.tables[i].clone();
    let name = &t.table.name;
    let mut mine = Vec::new();
    let mut ok = Vec::new();
    let Some(info) = deps.tables.describe_table(&t.target_region, &t.target_name).await? else {
        problems.push(format!("table {name}: {} does not exist", t.target_name));
        exec.tables[i].verdict = Some(format!("failed: {} does not exist", t.target_name));
        return Ok(None);
    };
    if info.is_ready() {
        ok.push(format!("{} active", t.target_name));
    } else {
        mine.push(format!("{} is {}", t.target_name, info.status));
    }
    // The shape: the source table's description when it can be read, else the backup's
    // (key schema only: a backup's description names no indexes).
    match deps.tables.describe_table(&t.table.region, name).await {
        Ok(Some(src)) => {
            if src.key_schema == info.key_schema {
                ok.push("key schema as the source's".into());
            } else {
                mine.push(format!(
                    "key schema {:?}, the source has {:?}",
                    info.key_schema, src.key_schema
                ));
            }
            if src.indexes == info.indexes {
                ok.push(format!("indexes {:?} as the source's", info.indexes));
            } else {
                mine.push(format!(
                    "global secondary indexes {:?}, the source has {:?}",
                    info.indexes, src.indexes
                ));
            }
        }
        source => {
            let why = match source {
                Err(e) => format!("source table unreadable ({e})"),
                _ => "source table gone".to_owned(),
            };
            let backup = match &t.backup_arn {
                Some(arn) => deps.tables.describe_backup(&t.table.region, arn).await?,
                None => None,
            };
            match backup {
                Some(b) if b.key_schema == info.key_schema => ok.push(format!("{why}: key schema as the backup's")),
                Some(b) => mine.push(format!(
                    "key schema {:?}, the backup has {:?}",
                    info.key_schema, b.key_schema
                )),
                None => ok.push(format!("{why}: shape not compared")),
            }
        }
    }
    let found = deps.tables.scan_content(&t.target_region, &t.target_name).await?;
    ok.push(format!("{} item(s) scanned, checksum {}", found.items, found.checksum));
    // DescribeBackup's count is the source table's ItemCount, which DynamoDB refreshes
    // about every 6 hours: a difference is reported, never failed on. The checksum is the
    // exact check.
    match t.backup_item_count {
        Some(n) if n == found.items => ok.push(format!("the backup's item count {n} matches")),
        Some(n) => ok.push(format!(
            "note: the backup's description says {n} item(s) (DynamoDB refreshes that figure about every 6 hours, so it may be stale); the scan found {}",
            found.items
        )),
        None => {}
    }
    let rp_id = t.recovery_point.clone().unwrap_or_default();
    // Read fresh: another execution may have recorded the backup's content since.
    let recorded = match lifeboat_domain::RecoveryPointId::parse(&rp_id) {
        Ok(id) => deps.catalog.get(&id).await?.and_then(|rp| rp.table_checksum),
        Err(_) => None,
    };
    let expected = match recorded {
        Some(c) => Some(c),
        None if mine.is_empty() => {
            let c = record_table_checksum(deps, &rp_id, &found, &t.target_name).await?;
            if c.restored_as == t.target_name {
                ok.push(format!(
                    "first validated restore of {rp_id}: count and checksum recorded"
                ));
            }
            Some(c)
        }
        None => None,
    };
    if let Some(c) = &expected {
        if c.items == found.items && c.checksum == found.checksum {
            if c.restored_as != t.target_name {
                ok.push(format!(
                    "count and checksum match the backup's first restore ({})",
                    c.restored_as
                ));
            }
        } else {
            mine.push(format!(
                "content differs from the backup's first validated restore ({}): {} item(s) {} then, {} item(s) {} now",
                c.restored_as, c.items, c.checksum, found.items, found.checksum
            ));
        }
    }
    let now = deps.clock.now();
    let run = &mut exec.tables[i];
    run.content = Some(found.clone());
    run.expected = expected.map(|c| lifeboat_domain::dr::table_digest::TableContent {
        items: c.items,
        checksum: c.checksum,
    });
    run.validated_at = Some(now);
    if mine.is_empty() {
        run.verdict = Some(format!("passed: {}", ok.join(", ")));
        exec.checks.push(format!("validate table {name}: {}", ok.join(", ")));
    } else {
        run.verdict = Some(format!("failed: {}", mine.join("; ")));
        problems.extend(mine.into_iter().map(|m| format!("table {name}: {m}")));
    }
    Ok(Some(json!({
        "table": name, "region": t.target_region, "id": t.target_name,
        "items": found.items, "checksum": found.checksum,
    })))
}

async fn validate(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> StepResult {
    let mut problems = Vec::new();
    let mut resources = Vec::new();
    for i in 0..plan.data.len() {
        validate_data(deps, plan, exec, i, &mut problems).await?;
    }
    for i in 0..exec.tables.len() {
        if let Some(r) = validate_table(deps, exec, i, &mut problems).await? {
            resources.push(r);
        }
    }
    for d in &exec.databases {
        let Some(info) = deps
            .databases
            .describe(&d.target_region, d.db.kind, &d.target_id)
            .await?
        else {
            problems.push(format!("{}: {} does not exist", d.db.id, d.target_id));
            continue;
        };
        let mut ok = vec![format!("{} available", d.target_id)];
        if !info.is_available() {
            problems.push(format!("{}: {} is {}", d.db.id, d.target_id, info.status));
        }
        if let (Some(want), Some(got)) = (&d.expect_engine, &info.engine) {
            if want == got {
                ok.push(format!("engine {got}"));
            } else {
                problems.push(format!("{}: engine {got}, expected {want}", d.db.id));
            }
        }
        if d.db.kind == ResourceKind::RdsInstance
            && let (Some(want), Some(got)) = (&d.expect_class, &info.class)
        {
            if want == got {
                ok.push(format!("class {got}"));
            } else {
                problems.push(format!("{}: class {got}, expected {want}", d.db.id));
            }
        }
        let created = !matches!(
            d.source,
            Some(Source::PromoteReplica { .. } | Source::GlobalCluster { .. })
        );
        let tag = |k: &str| info.tags.iter().find(|t| t.key == k).map(|t| t.value.as_str());
        if created {
            if tag(TAG_EXECUTION) == Some(exec.execution.as_str()) {
                ok.push("Lifeboat tags".into());
            } else {
                problems.push(format!("{}: {} lacks the execution tag", d.db.id, d.target_id));
            }
        }
        for (k, v) in &plan.validation.expect_tags {
            if tag(k) != Some(v.as_str()) {
                problems.push(format!("{}: tag {k}={v} missing", d.db.id));
            }
        }
        exec.checks.push(format!("validate {}: {}", d.db.id, ok.join(", ")));
        resources.push(json!({
            "database": d.db.id, "kind": d.db.kind, "region": d.target_region,
            "id": d.target_id, "endpoint": info.endpoint,
        }));
    }
    if problems.is_empty()
        && let Some(arn) = &plan.validation.lambda_arn
    {
        let payload = json!({
            "plan": exec.plan, "execution": exec.execution, "mode": exec.mode, "resources": resources,
        });
        match deps.validator.invoke(arn, &payload).await? {
            Err(e) => problems.push(format!("validation Lambda {arn} failed: {e}")),
            Ok(v) if v.get("ok") == Some(&Value::Bool(false)) => problems.push(format!(
                "validation Lambda {arn} says not ok: {}",
                v.get("reason").and_then(Value::as_str).unwrap_or("no reason given")
            )),
            Ok(_) => exec.checks.push(format!("validation Lambda {arn}: ok")),
        }
    }
    if !problems.is_empty() {
        return Err(FunctionError::new(
            ErrorType::Conflict,
            format!("validation failed: {}", problems.join("; ")),
        ));
    }
    if exec.validated_at.is_none() {
        exec.validated_at = Some(deps.clock.now());
    }
    let mut what = vec![format!("{} database(s)", exec.databases.len())];
    if !exec.data.is_empty() {
        what.push(format!("{} data set(s)", exec.data.len()));
    }
    if !exec.tables.is_empty() {
        what.push(format!("{} table(s)", exec.tables.len()));
    }
    Ok((true, format!("{} validated", what.join(" and "))))
}

async fn switch(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> StepResult {
    if exec.mode == Mode::Drill {
        return Ok((true, "drill: production endpoints untouched".into()));
    }
    // From here on the recovered databases are production's (pointed at by this step, or
    // by hand when the plan switches nothing): recorded before the first change, so no
    // later failure deletes them.
    if exec.switched_at.is_none() {
        exec.switched_at = Some(deps.clock.now());
        save(deps, exec).await?;
    }
    let Some(sw) = &plan.switch else {
        return Ok((
            true,
            "no endpoint switch configured: point the applications at the recovered databases".into(),
        ));
    };
    let mut done = Vec::new();
    for (name, db) in &sw.parameters {
        // A database's endpoint, or a table's restored name.
        let endpoint = exec
            .databases
            .iter()
            .find(|d| &d.db.id == db)
            .and_then(|d| d.endpoint.clone())
            .or_else(|| {
                exec.tables
                    .iter()
                    .find(|t| &t.table.name == db)
                    .map(|t| t.target_name.clone())
            })
            // Failback: applications go back to the original table.
            .or_else(|| {
                plan.tables
                    .iter()
                    .find(|t| exec.mode == Mode::Failback && &t.name == db)
                    .map(|t| t.name.clone())
            })
            .ok_or_else(|| internal(format!("{db}: no endpoint or table to switch {name} to")))?;
        let registered = exec
            .compensations
            .iter()
            .any(|c| matches!(&c.undo, Undo::RestoreParameter { name: n, .. } if n == name));
        if !registered {
            let previous = deps.parameters.get(&sw.region, name).await?;
            exec.will_undo(
                Action::Switch,
                Undo::RestoreParameter {
                    region: sw.region.clone(),
                    name: name.clone(),
                    previous,
                },
            );
            save(deps, exec).await?;
        }
        deps.parameters.put(&sw.region, name, &endpoint).await?;
        note_switched(exec, format!("parameter {name} → {endpoint}"));
        done.push(format!("{name} → {endpoint}"));
    }
    if let Some(zone) = &sw.hosted_zone_id {
        for (name, db) in &sw.records {
            let endpoint = exec
                .databases
                .iter()
                .find(|d| &d.db.id == db)
                .and_then(|d| d.endpoint.clone())
                .ok_or_else(|| internal(format!("{db}: no endpoint to point {name} at")))?;
            let registered = exec
                .compensations
                .iter()
                .any(|c| matches!(&c.undo, Undo::RestoreRecord { name: n, .. } if n == name));
            if !registered {
                let previous = deps.dns.cname(zone, name).await?;
                exec.will_undo(
                    Action::Switch,
                    Undo::RestoreRecord {
                        zone: zone.clone(),
                        name: name.clone(),
                        previous,
                        ttl: sw.ttl,
                    },
                );
                save(deps, exec).await?;
            }
            deps.dns.upsert_cname(zone, name, &endpoint, sw.ttl).await?;
            // Read back: the switch counts only once DNS says so.
            let now_points_at = deps.dns.cname(zone, name).await?;
            if now_points_at.as_deref() != Some(endpoint.as_str()) {
                return Err(internal(format!(
                    "{name} reads back as {now_points_at:?} after pointing it at {endpoint}"
                )));
            }
            note_switched(exec, format!("DNS record {name} → {endpoint}"));
            done.push(format!("{name} → {endpoint}"));
        }
    }
    if exec.mode == Mode::Failback {
        done.extend(resume_writes(deps, plan, exec).await?);
    }
    Ok((true, format!("switched {}", done.join(", "))))
}

/// Failback: points the plan's quiesce parameters and records at the values that stop
/// writes to the DR side (each change's undo recorded first: a failure before the switch
/// puts the DR side back in service), reads them back, and records when the writes are
/// taken to have stopped (after the settle time).
async fn quiesce(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution, action: Action) -> Result<String, FunctionError> {
    let (sw, q) = plan
        .switch
        .as_ref()
        .and_then(|sw| sw.quiesce.as_ref().map(|q| (sw, q)))
        .ok_or_else(|| FunctionError::misconfigured("failback needs switch.quiesce"))?;
    let mut done = Vec::new();
    for (name, value) in &q.parameters {
        let registered = exec
            .compensations
            .iter()
            .any(|c| matches!(&c.undo, Undo::RestoreParameter { name: n, .. } if n == name));
        if !registered {
            let previous = deps.parameters.get(&sw.region, name).await?;
            exec.will_undo(
                action,
                Undo::RestoreParameter {
                    region: sw.region.clone(),
                    name: name.clone(),
                    previous,
                },
            );
            save(deps, exec).await?;
        }
        deps.parameters.put(&sw.region, name, value).await?;
        let now_is = deps.parameters.get(&sw.region, name).await?;
        if now_is.as_deref() != Some(value.as_str()) {
            return Err(internal(format!(
                "{name} reads back as {now_is:?} after setting it to {value}"
            )));
        }
        done.push(format!("parameter {name} → {value}"));
    }
    for (name, value) in &q.records {
        let zone = sw
            .hosted_zone_id
            .as_deref()
            .ok_or_else(|| FunctionError::misconfigured("switch.quiesce.records need switch.hosted_zone_id"))?;
        let registered = exec
            .compensations
            .iter()
            .any(|c| matches!(&c.undo, Undo::RestoreRecord { name: n, .. } if n == name));
        if !registered {
            let previous = deps.dns.cname(zone, name).await?;
            exec.will_undo(
                action,
                Undo::RestoreRecord {
                    zone: zone.to_owned(),
                    name: name.clone(),
                    previous,
                    ttl: sw.ttl,
                },
            );
            save(deps, exec).await?;
        }
        deps.dns.upsert_cname(zone, name, value, sw.ttl).await?;
        let now_is = deps.dns.cname(zone, name).await?;
        if now_is.as_deref() != Some(value.as_str()) {
            return Err(internal(format!(
                "{name} reads back as {now_is:?} after pointing it at {value}"
            )));
        }
        done.push(format!("DNS record {name} → {value}"));
    }
    let now = deps.clock.now();
    let settle = chrono::Duration::from_std(q.settle).unwrap_or_else(|_| chrono::Duration::zero());
    exec.quiesced_at = Some(now);
    exec.writes_stopped_at = Some(now + settle);
    let note = format!(
        "failback: writes to the DR side stopped at {now} ({}); its snapshot waits {} for them to settle",
        done.join(", "),
        humantime::format_duration(q.settle)
    );
    exec.checks.push(note.clone());
    save(deps, exec).await?;
    Ok(note)
}

/// Failback, after the switch: the quiesce entries the switch did not repoint (a
/// read-only flag, a maintenance record) go back to what they were before the quiesce.
async fn resume_writes(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> Result<Vec<String>, FunctionError> {
    let Some((sw, q)) = plan.switch.as_ref().and_then(|sw| sw.quiesce.as_ref().map(|q| (sw, q))) else {
        return Ok(Vec::new());
    };
    let mut done = Vec::new();
    for name in q.parameters.keys().filter(|n| !sw.parameters.contains_key(*n)) {
        let before = exec.compensations.iter().find_map(|c| match &c.undo {
            Undo::RestoreParameter { name: n, previous, .. } if n == name => Some(previous.clone()),
            _ => None,
        });
        match before {
            Some(Some(v)) => deps.parameters.put(&sw.region, name, &v).await?,
            Some(None) => deps.parameters.delete(&sw.region, name).await?,
            None => continue,
        }
        note_switched(exec, format!("parameter {name} → as before the quiesce"));
        done.push(format!("{name} restored"));
    }
    if let Some(zone) = &sw.hosted_zone_id {
        for name in q.records.keys().filter(|n| !sw.records.contains_key(*n)) {
            let before = exec.compensations.iter().find_map(|c| match &c.undo {
                Undo::RestoreRecord { name: n, previous, .. } if n == name => Some(previous.clone()),
                _ => None,
            });
            match before {
                Some(Some(v)) => deps.dns.upsert_cname(zone, name, &v, sw.ttl).await?,
                Some(None) => {
                    if let Some(current) = deps.dns.cname(zone, name).await? {
                        deps.dns.delete_cname(zone, name, &current, sw.ttl).await?;
                    }
                }
                None => continue,
            }
            note_switched(exec, format!("DNS record {name} → as before the quiesce"));
            done.push(format!("{name} restored"));
        }
    }
    Ok(done)
}

fn note_switched(exec: &mut DrExecution, line: String) {
    if !exec.switched.contains(&line) {
        exec.switched.push(line);
    }
}

async fn undo(deps: &Deps, exec: &mut DrExecution, u: &Undo) -> PortResult<()> {
    match u {
        Undo::DeleteInstance { region, id } => {
            delete_owned_database(deps, exec, region, ResourceKind::RdsInstance, id).await
        }
        Undo::DeleteCluster { region, id } => {
            delete_owned_database(deps, exec, region, ResourceKind::AuroraCluster, id).await
        }
        Undo::DeleteSnapshot { region, kind, name } => deps.snapshots.delete_snapshot(region, *kind, name).await,
        Undo::DeleteTable {
            region,
            name,
            backup_arn,
        } => delete_owned_table(deps, region, name, backup_arn.as_deref()).await,
        Undo::RestoreParameter { region, name, previous } => match previous {
            Some(v) => deps.parameters.put(region, name, v).await,
            None => deps.parameters.delete(region, name).await,
        },
        Undo::RestoreRecord {
            zone,
            name,
            previous,
            ttl,
        } => match previous {
            Some(v) => deps.dns.upsert_cname(zone, name, v, *ttl).await,
            None => match deps.dns.cname(zone, name).await? {
                Some(current) => deps.dns.delete_cname(zone, name, &current, *ttl).await,
                None => Ok(()),
            },
        },
    }
}

/// Lifeboat made this database for `plan`: its name is a DR name (`lbdr-`, `lbfo-`,
/// `lbfb-`, then the hash of an execution) and its tags name that very execution and the
/// plan.
fn owned_database(info: &DbInfo, plan: &str) -> bool {
    let tag = |k: &str| info.tags.iter().find(|t| t.key == k).map(|t| t.value.as_str());
    let (Some(execution), Some(owner)) = (tag(TAG_EXECUTION), tag(TAG_PLAN)) else {
        return false;
    };
    owner == plan
        && DB_PREFIXES
            .iter()
            .any(|p| info.id.starts_with(&format!("{p}{}-", short_id(execution))))
}

/// Deletes a database only if Lifeboat made it for this plan ([`owned_database`]), read
/// again just before deleting. A drill's own copy goes as a throwaway; anything else
/// leaves a final snapshot (named and recorded in the execution before the delete) and
/// keeps its automated backups. A missing database, or one already being deleted, is what
/// was wanted; one that is not Lifeboat's is left alone and noted.
async fn delete_owned_database(
    deps: &Deps,
    exec: &mut DrExecution,
    region: &Region,
    kind: ResourceKind,
    id: &str,
) -> PortResult<()> {
    if !DB_PREFIXES.iter().any(|p| id.starts_with(p)) {
        tracing::warn!(database = id, %region, "not a Lifeboat database name: not deleted");
        return Ok(());
    }
    let Some(info) = deps.databases.describe(region, kind, id).await? else {
        return Ok(());
    };
    if info.status == "deleting" {
        return Ok(());
    }
    if !owned_database(&info, &exec.plan) {
        tracing::warn!(database = id, %region, tags = ?info.tags, "not made by Lifeboat for this plan: not deleted");
        let note = format!(
            "{kind} {id} in {region} left alone: its tags do not say Lifeboat made it for plan {}",
            exec.plan
        );
        if !exec.checks.contains(&note) {
            exec.checks.push(note);
        }
        return Ok(());
    }
    if exec.mode == Mode::Drill && id.starts_with("lbdr-") {
        return deps.databases.delete(region, kind, id, DeleteMode::Throwaway).await;
    }
    let snapshot = final_snapshot_name(id);
    if !exec
        .final_snapshots
        .iter()
        .any(|f| &f.region == region && f.snapshot == snapshot)
    {
        exec.final_snapshots.push(FinalSnapshot {
            region: region.clone(),
            kind,
            database: id.to_owned(),
            snapshot: snapshot.clone(),
            confirmed: false,
        });
    }
    deps.databases
        .delete(
            region,
            kind,
            id,
            DeleteMode::KeepData {
                final_snapshot: &snapshot,
            },
        )
        .await
}

/// Looks for the final snapshots not seen yet; records those RDS now shows.
async fn confirm_final_snapshots(deps: &Deps, exec: &mut DrExecution) -> PortResult<()> {
    for i in 0..exec.final_snapshots.len() {
        let f = exec.final_snapshots[i].clone();
        if f.confirmed {
            continue;
        }
        if deps
            .snapshots
            .describe_snapshot(&f.region, f.kind, &f.snapshot)
            .await?
            .is_some()
        {
            exec.final_snapshots[i].confirmed = true;
            exec.checks.push(format!(
                "final snapshot {} of {} in {} kept (the database's automated backups too)",
                f.snapshot, f.database, f.region
            ));
        }
    }
    Ok(())
}

/// Lifeboat made this table: its name has a drill or failover prefix and DynamoDB says it
/// was restored from the backup the execution recorded, or made by the import it recorded
/// (from a backup at all, when nothing was recorded).
async fn owned_table(
    deps: &Deps,
    region: &Region,
    info: &lifeboat_ports::dr::TableInfo,
    made_from: Option<&str>,
) -> PortResult<bool> {
    if !TABLE_PREFIXES.iter().any(|p| info.name.starts_with(p)) {
        return Ok(false);
    }
    Ok(match made_from {
        Some(arn) if info.restored_from.as_deref() == Some(arn) => true,
        Some(arn) if arn.contains("/import/") => deps
            .tables
            .describe_import(region, arn)
            .await?
            .is_some_and(|i| i.table_name.as_deref() == Some(info.name.as_str())),
        Some(_) => false,
        None => info.restored_from.is_some(),
    })
}

/// Deletes a table only if Lifeboat made it ([`owned_table`]), re-read just before
/// deleting. A missing table, or one already being deleted, is what was wanted; a table
/// that is not Lifeboat's is left alone (there is nothing of this execution's to undo).
async fn delete_owned_table(deps: &Deps, region: &Region, name: &str, backup_arn: Option<&str>) -> PortResult<()> {
    if !TABLE_PREFIXES.iter().any(|p| name.starts_with(p)) {
        tracing::warn!(table = name, %region, "not a Lifeboat table name: not deleted");
        return Ok(());
    }
    let Some(info) = deps.tables.describe_table(region, name).await? else {
        return Ok(());
    };
    if info.status == "DELETING" {
        return Ok(());
    }
    if !owned_table(deps, region, &info, backup_arn).await? {
        tracing::warn!(table = name, %region, restored_from = ?info.restored_from, "not restored by this execution: not deleted");
        return Ok(());
    }
    deps.tables.delete_table(region, name).await
}

async fn gone(deps: &Deps, plan: &str, u: &Undo) -> PortResult<bool> {
    Ok(match u {
        // Gone, or never Lifeboat's (left alone by `undo`).
        Undo::DeleteInstance { region, id } => deps
            .databases
            .describe(region, ResourceKind::RdsInstance, id)
            .await?
            .is_none_or(|info| !owned_database(&info, plan)),
        Undo::DeleteCluster { region, id } => deps
            .databases
            .describe(region, ResourceKind::AuroraCluster, id)
            .await?
            .is_none_or(|info| !owned_database(&info, plan)),
        Undo::DeleteSnapshot { region, kind, name } => {
            deps.snapshots.describe_snapshot(region, *kind, name).await?.is_none()
        }
        // Gone, or never Lifeboat's (left alone by `undo`).
        Undo::DeleteTable {
            region,
            name,
            backup_arn,
        } => match deps.tables.describe_table(region, name).await? {
            None => true,
            Some(info) => !owned_table(deps, region, &info, backup_arn.as_deref()).await?,
        },
        Undo::RestoreParameter { .. } | Undo::RestoreRecord { .. } => true,
    })
}

async fn teardown(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> StepResult {
    let mut targets: Vec<usize> = Vec::new();
    let mut waiting = Vec::new();
    match exec.mode {
        Mode::Drill => {
            targets.extend(
                exec.compensations
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.undo.removes_resource() && !c.done)
                    .map(|(i, _)| i),
            );
        }
        Mode::Failback => {
            // The failover's databases on the DR side, once production is back. Promoted
            // replicas are left (they hold the DR copy of the data) and reported.
            let site = deps.store.site(&plan.name).await?;
            for d in site.iter().flat_map(|s| s.databases.iter()) {
                if !d.id.starts_with("lbfo-") {
                    exec.checks.push(format!(
                        "teardown: {} in {} kept (not created by Lifeboat)",
                        d.id, d.region
                    ));
                    continue;
                }
                // A failover's table took the writes made while production ran on it:
                // it is deleted only once a final native backup of it is available.
                if d.kind == ResourceKind::DynamoDbTable && !final_table_backup(deps, exec, d).await? {
                    waiting.push(format!("final backup of table {} in {}", d.id, d.region));
                    continue;
                }
                let u = match d.kind {
                    // The failover's restored tables (ownership re-checked before deleting).
                    ResourceKind::DynamoDbTable => Undo::DeleteTable {
                        region: d.region.clone(),
                        name: d.id.clone(),
                        backup_arn: d.made_from.clone(),
                    },
                    // Databases only, as above.
                    ResourceKind::RdsInstance | ResourceKind::S3Prefix | ResourceKind::ConfigBundle => {
                        Undo::DeleteInstance {
                            region: d.region.clone(),
                            id: d.id.clone(),
                        }
                    }
                    ResourceKind::AuroraCluster => Undo::DeleteCluster {
                        region: d.region.clone(),
                        id: d.id.clone(),
                    },
                };
                exec.will_undo(Action::Teardown, u.clone());
                if let Some(i) = exec.compensations.iter().position(|c| c.undo == u && !c.done) {
                    targets.push(i);
                }
            }
        }
        Mode::Failover => return Ok((true, "failover: nothing to tear down".into())),
    }
    let mut left = waiting;
    for i in targets {
        let u = exec.compensations[i].undo.clone();
        undo(deps, exec, &u).await?;
        if gone(deps, &plan.name, &u).await? {
            exec.compensations[i].done = true;
        } else {
            left.push(u.describe());
        }
    }
    confirm_final_snapshots(deps, exec).await?;
    if left.is_empty() {
        Ok((true, "torn down".into()))
    } else {
        Ok((false, format!("still deleting: {}", left.join("; "))))
    }
}

/// Failback: a final native backup (`lbfb-…`, kept) of a failover's table before it is
/// deleted. True once the backup is available, or when there is nothing of Lifeboat's to
/// keep (the table is gone, or is not one Lifeboat restored, which teardown leaves alone).
async fn final_table_backup(deps: &Deps, exec: &mut DrExecution, d: &SiteDb) -> Result<bool, FunctionError> {
    let Some(info) = deps.tables.describe_table(&d.region, &d.id).await? else {
        return Ok(true);
    };
    if !owned_table(deps, &d.region, &info, d.made_from.as_deref()).await? {
        return Ok(true);
    }
    let name = lifeboat_domain::dr::execution::table_name("lbfb", &exec.execution, &d.db);
    let backup = deps.tables.create_backup(&d.region, &d.id, &name).await?;
    if backup.status != "AVAILABLE" {
        return Ok(false);
    }
    let note = format!(
        "teardown: final backup {name} ({}) of {} in {} kept before deleting the table",
        backup.backup_arn, d.id, d.region
    );
    if !exec.checks.contains(&note) {
        exec.checks.push(note);
    }
    Ok(true)
}

fn finish_output(exec: &DrExecution, plan: &DrPlan) -> Value {
    let m = exec.measurement.clone().unwrap_or_else(|| exec.measure(plan));
    let notice = (exec.mode != Mode::Drill).then(|| {
        let alert = Alert::new(
            AlertKind::DrCompleted,
            Severity::Info,
            format!("{} of plan {} completed", exec.mode, exec.plan),
            format!("{}#{}", exec.plan, exec.execution),
            exec.finished_at.unwrap_or(exec.triggered_at),
        )
        .detail("plan", &exec.plan)
        .detail("execution", &exec.execution)
        .detail("report", exec.report_key.clone().unwrap_or_default());
        serde_json::to_string(&alert).unwrap_or_default()
    });
    let failback = exec.failback_window().map_or_else(String::new, |w| {
        format!(
            "; failback: data loss window {}s, outage {}s",
            w.data_loss_window_secs.map_or_else(|| "?".into(), |v| v.to_string()),
            w.outage_secs.map_or_else(|| "?".into(), |v| v.to_string()),
        )
    });
    json!({
        "ready": true,
        "wait_seconds": 1,
        "summary": format!(
            "{} {}: RTO {}s (target {}s), RPO {}s (target {}s){failback}",
            exec.mode, exec.execution,
            m.rto_secs.map_or_else(|| "?".into(), |v| v.to_string()), m.rto_target_secs,
            m.rpo_secs.map_or_else(|| "?".into(), |v| v.to_string()), m.rpo_target_secs,
        ),
        "status": exec.status,
        "report": exec.report_key,
        "measurement": m,
        "failback": exec.failback_window(),
        "notice": notice,
    })
}

async fn write_report(deps: &Deps, exec: &mut DrExecution) -> Result<(), FunctionError> {
    let key = format!("dr-reports/{}/{}.json", exec.plan, exec.execution);
    // The report names its own location.
    exec.report_key = Some(key.clone());
    let body = serde_json::to_vec_pretty(&exec.report()).map_err(|e| internal(e.to_string()))?;
    let location = deps.reports.put(&key, &body).await?;
    exec.report_key = Some(location);
    Ok(())
}

/// Where production runs once `exec`'s switch is done: the DR side after a failover (its
/// databases and tables), the source side after a failback; `None` for a drill.
fn site_after(exec: &DrExecution, now: DateTime<Utc>) -> Option<Site> {
    let databases = exec.databases.iter().map(|d| SiteDb {
        db: d.db.id.clone(),
        kind: d.db.kind,
        region: d.target_region.clone(),
        id: d.target_id.clone(),
        made_from: None,
    });
    let (active, databases): (ActiveSide, Vec<SiteDb>) = match exec.mode {
        Mode::Drill => return None,
        Mode::Failover => (
            ActiveSide::Dr,
            databases
                .chain(exec.tables.iter().map(|t| SiteDb {
                    db: t.table.name.clone(),
                    kind: ResourceKind::DynamoDbTable,
                    region: t.target_region.clone(),
                    id: t.target_name.clone(),
                    made_from: t.import_arn.clone().or_else(|| t.backup_arn.clone()),
                }))
                .collect(),
        ),
        Mode::Failback => (ActiveSide::Source, databases.collect()),
    };
    Some(Site {
        active,
        since: now,
        execution: exec.execution.clone(),
        databases,
    })
}

async fn finish(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution, run_id: &str) -> StepResult {
    let now = deps.clock.now();
    let m = exec.measure(plan);
    exec.measurement = Some(m.clone());
    exec.status = ExecStatus::Succeeded;
    exec.finished_at = Some(now);
    // The finish step's own timing is in the report too.
    exec.end(Action::Finish, now, now, "finished");
    let recorded = async {
        write_report(deps, exec).await?;
        if let Some(site) = site_after(exec, now) {
            deps.store.put_site(&plan.name, &site).await?;
        }
        Ok::<(), FunctionError>(())
    }
    .await;
    if let Err(e) = recorded {
        // Not finished: the failed step is recorded as such, never as a success.
        exec.status = ExecStatus::Running;
        exec.finished_at = None;
        return Err(e);
    }
    let breaches = m.breaches();
    if !breaches.is_empty() {
        let alert = Alert::new(
            AlertKind::DrTargetMissed,
            Severity::High,
            format!(
                "{} of plan {} missed its targets: {}",
                exec.mode,
                plan.name,
                breaches.join(", ")
            ),
            format!("{}#{}", plan.name, exec.execution),
            now,
        )
        .location(&plan.dr_region)
        .detail("plan", &plan.name)
        .detail("execution", &exec.execution)
        .detail("report", exec.report_key.clone().unwrap_or_default());
        deps.alerter().raise_or_log(alert, run_id).await;
    }
    release(deps, &plan.name, &exec.execution).await;
    Ok((
        true,
        format!("report at {}", exec.report_key.clone().unwrap_or_default()),
    ))
}

// ---------------------------------------------------------------------------------------
// compensate
// ---------------------------------------------------------------------------------------

/// What a Catch put in `$.error`: the failed step's `errorType` and message.
fn caught(error: Option<&Value>) -> (String, String) {
    let Some(e) = error else {
        return ("Unknown".into(), "no error recorded".into());
    };
    let kind = e.get("Error").and_then(Value::as_str).unwrap_or("Unknown").to_owned();
    let cause = e.get("Cause").and_then(Value::as_str).unwrap_or_default();
    let message = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| c.get("errorMessage").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| cause.chars().take(500).collect());
    (kind, message)
}

async fn compensate(deps: &Deps, req: &StepRequest, run_id: &str) -> Result<Value, FunctionError> {
    let now = deps.clock.now();
    let (kind, message) = caught(req.input.error.as_ref());
    let input = &req.input;
    let exec = deps.store.get_execution(&input.plan, &input.execution).await?;
    let severity = if req.mode == Mode::Drill {
        Severity::High
    } else {
        Severity::Critical
    };
    let mut alert = Alert::new(
        AlertKind::DrFailed,
        severity,
        format!("{} of plan {} failed: {kind}: {message}", req.mode, input.plan),
        format!("{}#{}", input.plan, input.execution),
        now,
    )
    .detail("plan", &input.plan)
    .detail("execution", &input.execution)
    .detail("error", &kind);
    let Some(mut exec) = exec else {
        // Failed before anything was changed (the pre-check): nothing to undo.
        release(deps, &input.plan, &input.execution).await;
        deps.alerter()
            .raise_or_log(alert.detail("compensations", "none needed"), run_id)
            .await;
        return Ok(json!({"compensated": [], "left": [], "status": "failed"}));
    };
    // Once the switch began, the recovered databases may have taken writes: nothing is
    // deleted or pointed back; an operator takes over.
    if exec.endpoints_switched() || exec.status == ExecStatus::NeedsOperator {
        return hand_off(deps, exec, &kind, &message, alert, run_id).await;
    }
    let started = deps.clock.now();
    exec.begin(Action::Compensate, started);
    let mut undone = Vec::new();
    let mut left = Vec::new();
    for i in (0..exec.compensations.len()).rev() {
        if exec.compensations[i].done {
            continue;
        }
        let u = exec.compensations[i].undo.clone();
        match undo(deps, &mut exec, &u).await {
            Ok(()) => {
                exec.compensations[i].done = true;
                undone.push(u.describe());
            }
            Err(e) => left.push(format!("{}: {e}", u.describe())),
        }
    }
    if !left.is_empty() {
        exec.end(
            Action::Compensate,
            started,
            deps.clock.now(),
            format!("incomplete: {}", left.join("; ")),
        );
        save(deps, &mut exec).await?;
        // Transient failures are retried by the state machine; the alert waits for the end.
        return Err(FunctionError::retryable(format!(
            "compensation incomplete: {}",
            left.join("; ")
        )));
    }
    if let Err(e) = confirm_final_snapshots(deps, &mut exec).await {
        tracing::warn!(error = %e, "could not look for the final snapshots");
    }
    exec.status = ExecStatus::Failed;
    exec.error = Some(format!("{kind}: {message}"));
    exec.finished_at = Some(deps.clock.now());
    if let Ok(plan) = load_plan(deps, &exec.plan).await {
        exec.measurement = Some(exec.measure(&plan));
    }
    exec.end(
        Action::Compensate,
        started,
        deps.clock.now(),
        format!("undone: {}", undone.len()),
    );
    write_report(deps, &mut exec).await?;
    save(deps, &mut exec).await?;
    release(deps, &exec.plan, &exec.execution).await;
    alert = alert
        .detail("compensations", undone.join("; "))
        .detail("report", exec.report_key.clone().unwrap_or_default());
    deps.alerter().raise_or_log(alert, run_id).await;
    let compensated: BTreeMap<usize, String> = undone.into_iter().enumerate().collect();
    Ok(
        json!({"compensated": compensated.into_values().collect::<Vec<_>>(), "left": [], "status": "failed", "report": exec.report_key}),
    )
}

/// The step that failed: the last one whose outcome says so.
fn failed_step(exec: &DrExecution) -> Option<Action> {
    exec.steps
        .iter()
        .filter(|s| s.outcome.starts_with("failed"))
        .max_by_key(|s| s.ended_at)
        .map(|s| s.action)
}

/// The switch step ran to its end (every endpoint of the plan switched and read back).
fn switch_completed(exec: &DrExecution) -> bool {
    exec.steps
        .iter()
        .any(|s| s.action == Action::Switch && s.ended_at.is_some() && !s.outcome.starts_with("failed"))
}

/// What was done and what remains, for the operator of an execution stopped after its
/// switch began.
async fn handoff_lines(deps: &Deps, plan: Option<&DrPlan>, exec: &DrExecution) -> (Vec<String>, Vec<String>) {
    let mut done: Vec<String> = exec
        .steps
        .iter()
        .filter(|s| s.ended_at.is_some() && !s.outcome.starts_with("failed") && s.action != Action::NeedsOperator)
        .map(|s| format!("{}: {}", s.action, s.outcome))
        .collect();
    let mut remaining = Vec::new();
    for d in &exec.databases {
        if d.phase == Phase::Ready {
            done.push(format!(
                "{}: recovered as {} in {} ({}), left running: it may have taken writes",
                d.db.id,
                d.target_id,
                d.target_region,
                d.endpoint.as_deref().unwrap_or("no endpoint")
            ));
        } else {
            remaining.push(format!(
                "{}: {} in {} is not ready ({:?}); check it before pointing anything at it",
                d.db.id, d.target_id, d.target_region, d.phase
            ));
        }
    }
    for t in &exec.tables {
        done.push(format!(
            "table {}: restored as {} in {}, left in place",
            t.table.name, t.target_name, t.target_region
        ));
    }
    done.extend(exec.switched.iter().map(|line| format!("switched {line}")));
    if let Some(sw) = plan.and_then(|p| p.switch.as_ref()) {
        let switched = |what: &str, name: &str| {
            exec.switched
                .iter()
                .any(|l| l.starts_with(&format!("{what} {name} → ")))
        };
        for (name, db) in &sw.parameters {
            if !switched("parameter", name) {
                remaining.push(format!(
                    "parameter {name} in {} is not confirmed switched to {db}'s recovered endpoint: check it and set it by hand",
                    sw.region
                ));
            }
        }
        for (name, db) in &sw.records {
            if !switched("DNS record", name) {
                remaining.push(format!(
                    "DNS record {name} is not confirmed switched to {db}'s recovered endpoint: check it and set it by hand"
                ));
            }
        }
    }
    if exec.mode == Mode::Failback {
        // The failover's databases on the DR side: the teardown never deletes them now.
        let torn_down: Vec<&Undo> = exec
            .compensations
            .iter()
            .filter(|c| c.step == Action::Teardown && c.done)
            .map(|c| &c.undo)
            .collect();
        match deps.store.site(&exec.plan).await {
            Ok(Some(site)) if site.active == ActiveSide::Dr => {
                for d in site.databases.iter().filter(|d| d.id.starts_with("lbfo-")) {
                    if !torn_down.iter().any(|u| u.describe().contains(&d.id)) {
                        remaining.push(format!(
                            "the failover's {} {} in {} still runs: once production is confirmed back on the source side, keep a final snapshot and delete it",
                            d.kind, d.id, d.region
                        ));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => remaining.push(format!(
                "the site record could not be read ({e}): check the failover's DR-side databases"
            )),
        }
    }
    (done, remaining)
}

/// An execution that failed after its switch began: the recovered databases stay running
/// and the endpoints stay as they are (they may have taken writes); the record says what
/// was done and what remains, the site is recorded when the switch completed, the report
/// is written (best effort), the lease stays held (nothing else starts on a site waiting
/// for its operator) and one critical alert is raised.
async fn hand_off(
    deps: &Deps,
    mut exec: DrExecution,
    kind: &str,
    message: &str,
    failure: Alert,
    run_id: &str,
) -> Result<Value, FunctionError> {
    let now = deps.clock.now();
    let plan = load_plan(deps, &exec.plan).await.ok();
    if exec.status != ExecStatus::NeedsOperator {
        let started = now;
        let step = failed_step(&exec).map_or_else(|| "a step".to_owned(), |a| format!("step {a}"));
        let reason = format!("{step} failed after the endpoint switch began: {kind}: {message}");
        exec.begin(Action::NeedsOperator, started);
        let (mut done, mut remaining) = handoff_lines(deps, plan.as_ref(), &exec).await;
        if switch_completed(&exec)
            && exec.status != ExecStatus::Succeeded
            && let Some(site) = site_after(&exec, now)
        {
            match deps.store.put_site(&exec.plan, &site).await {
                Ok(()) => done.push(format!(
                    "site recorded: production runs on the {} side",
                    if site.active == ActiveSide::Dr { "DR" } else { "source" }
                )),
                Err(e) => remaining.push(format!("record the site (production's side) by hand: {e}")),
            }
        }
        remaining.push(format!(
            "the plan's DR lease stays held by {} until it expires ({LEASE_HOURS} h after the start): no other DR execution of plan {} starts meanwhile",
            exec.execution, exec.plan
        ));
        exec.status = ExecStatus::NeedsOperator;
        exec.error = Some(format!("{kind}: {message}"));
        exec.finished_at = Some(now);
        if let Some(plan) = &plan {
            exec.measurement = Some(exec.measure(plan));
        }
        exec.needs_operator = Some(lifeboat_domain::dr::execution::OperatorHandoff {
            reason,
            done,
            remaining,
            at: now,
        });
        exec.end(
            Action::NeedsOperator,
            started,
            deps.clock.now(),
            "handed to an operator: nothing deleted, endpoints left as they are",
        );
        if let Err(e) = write_report(deps, &mut exec).await {
            exec.report_key = None;
            if let Some(h) = exec.needs_operator.as_mut() {
                h.remaining.push(format!(
                    "the execution report could not be written ({}): read this record instead",
                    e.message
                ));
            }
        }
        save(deps, &mut exec).await?;
    }
    let handoff = exec.needs_operator.clone();
    let (reason, remaining) = handoff
        .as_ref()
        .map(|h| (h.reason.clone(), h.remaining.join("; ")))
        .unwrap_or_default();
    let alert = Alert {
        kind: AlertKind::DrNeedsOperator,
        severity: Severity::Critical,
        summary: format!(
            "{} of plan {} needs an operator: {reason}. The recovered databases were left running and the endpoints as they are",
            exec.mode, exec.plan
        ),
        ..failure
    }
    .detail("remaining", remaining)
    .detail("report", exec.report_key.clone().unwrap_or_default());
    deps.alerter().raise_or_log(alert, run_id).await;
    Ok(json!({
        "status": "needs-operator",
        "compensated": [],
        "done": handoff.as_ref().map(|h| h.done.clone()).unwrap_or_default(),
        "remaining": handoff.as_ref().map(|h| h.remaining.clone()).unwrap_or_default(),
        "report": exec.report_key,
    }))
}
