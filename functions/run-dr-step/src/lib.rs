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

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use lifeboat::alerting::Alerter;
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::dr::execution::Measurement;
use lifeboat_domain::dr::{Action, Mode, SwitchScope};
use lifeboat_ports::dr::DrStore;
use lifeboat_ports::dr::{DnsRecords, DrDatabases, DrTables, Parameters, Reports};
use lifeboat_ports::keys::{KmsKeys, SigningKeys};
use lifeboat_ports::lambda::Invoker;
use lifeboat_ports::objects::ObjectStore;
use lifeboat_ports::{Catalog, Clock, Notifier, SnapshotStore};
use serde_json::Value;

mod config;
mod request;
mod steps;

pub use config::DrConfig;
pub use request::{ExecutionInput, StepRequest};
pub use steps::PreviewRequest;

pub const FUNCTION: &str = "run-dr-step";
/// Tags on everything a DR execution creates.
pub const TAG_EXECUTION: &str = "lifeboat:dr-execution";
pub const TAG_PLAN: &str = "lifeboat:dr-plan";
pub const TAG_MODE: &str = "lifeboat:dr-mode";

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
    pub validator: Arc<dyn Invoker>,
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

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the step's metrics to `sink` (once, also when it fails).
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<Value, FunctionError> {
    // The admin API's preview of a failover or failback: read only, no step.
    if let Some(preview) = event.payload.get("preview") {
        let request: steps::PreviewRequest = serde_json::from_value(preview.clone())
            .map_err(|e| FunctionError::invalid(format!("preview: expected {{\"plan\", \"mode\"}}: {e}")))?;
        return steps::preview(deps, &request).await;
    }
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
        Action::Precheck => steps::precheck(deps, req).await,
        Action::Compensate | Action::NeedsOperator => steps::compensate(deps, req, run_id).await,
        action => steps::step(deps, req, action, run_id).await,
    }
}
