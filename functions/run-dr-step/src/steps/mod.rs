//! The steps of a DR execution, one module each, and what they share.

mod choose;
mod compensate;
mod finish;
mod holds;
mod points;
mod precheck;
mod preview;
mod restore;
mod restore_tables;
mod switch;
mod teardown;
mod undo;
mod validate;

pub(crate) use compensate::compensate;
pub(crate) use precheck::precheck;
pub use preview::PreviewRequest;
pub(crate) use preview::preview;

use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::dr::{Action, DrExecution, DrPlan, ExecStatus, lease_name};
use lifeboat_ports::{PortError, Tag};
use serde_json::{Value, json};

use self::choose::choose;
use self::finish::{finish, finish_output};
use self::restore::advance;
use self::switch::switch;
use self::teardown::teardown;
use self::validate::validate;
use crate::request::StepRequest;
use crate::{Deps, TAG_EXECUTION, TAG_MODE, TAG_PLAN};

/// How long the plan's lease lasts at most (an execution that dies keeps it this long).
const LEASE_HOURS: i64 = 12;

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

/// Gives the plan's lease back (best effort: it expires by itself).
async fn release(deps: &Deps, plan: &str, execution: &str) {
    match deps.catalog.release_lease(&lease_name(plan), execution).await {
        Ok(()) | Err(PortError::Conflict(_) | PortError::NotFound(_)) => {}
        Err(e) => tracing::warn!(error = %e, "could not release the DR lease; it expires by itself"),
    }
}

fn age_text(d: chrono::Duration) -> String {
    humantime::format_duration(std::time::Duration::from_secs(
        u64::try_from(d.num_seconds()).unwrap_or(0),
    ))
    .to_string()
}

/// Runs one step after the pre-check: loads the plan and the running execution, runs the
/// step chosen by `action`, records its outcome (a failure too, with what it recorded) and
/// saves the execution. A replayed finish of a succeeded execution answers as it did.
pub(crate) async fn step(deps: &Deps, req: &StepRequest, action: Action, run_id: &str) -> Result<Value, FunctionError> {
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

/// What a step answers: whether it is done (`ready`), and its summary.
type StepResult = Result<(bool, String), FunctionError>;

/// The tags of everything `exec` creates.
fn lifeboat_tags(exec: &DrExecution) -> Vec<Tag> {
    vec![
        Tag::new(TAG_EXECUTION, &exec.execution),
        Tag::new(TAG_PLAN, &exec.plan),
        Tag::new(TAG_MODE, exec.mode.as_str()),
        Tag::new("lifeboat:created-by", "lifeboat"),
    ]
}
