//! Compensation of a failed execution, or its hand-off to an operator once the switch
//! began.

use std::collections::BTreeMap;

use lifeboat::FunctionError;
use lifeboat_domain::dr::{Action, DrExecution, DrPlan, ExecStatus, Mode, Phase, Undo};
use lifeboat_domain::{Alert, AlertKind, Severity};
use lifeboat_ports::dr::ActiveSide;
use serde_json::{Value, json};

use super::finish::{site_after, write_report};
use super::undo::{confirm_final_snapshots, undo};
use super::{LEASE_HOURS, load_plan, release, save};
use crate::Deps;
use crate::request::StepRequest;

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

pub(crate) async fn compensate(deps: &Deps, req: &StepRequest, run_id: &str) -> Result<Value, FunctionError> {
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
    if let Some(refused) = exec.as_ref().filter(|e| e.status == ExecStatus::Refused) {
        return Ok(refused_at_precheck(deps, refused, alert, run_id).await);
    }
    let Some(mut exec) = exec else {
        // Failed before anything was changed (the pre-check): nothing to undo.
        release(deps, &input.plan, &input.execution).await;
        deps.alerter()
            .raise_or_log(alert.detail("compensations", "none needed"), run_id)
            .await;
        return Ok(json!({"compensated": [], "left": [], "status": "failed"}));
    };
    // Nothing is restored any more: what the restores read may go by its retention again.
    super::holds::release(deps, &exec).await;
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

/// An execution refused at its pre-check (recorded with its reasons): nothing was
/// changed, nothing to undo; the alert names the reasons.
async fn refused_at_precheck(deps: &Deps, refused: &DrExecution, alert: Alert, run_id: &str) -> Value {
    let reasons = refused
        .refusal
        .as_ref()
        .map(|r| r.reasons.join("; "))
        .unwrap_or_default();
    deps.alerter()
        .raise_or_log(
            alert
                .detail("compensations", "none needed: refused before any change")
                .detail("reasons", reasons),
            run_id,
        )
        .await;
    json!({"compensated": [], "left": [], "status": "refused", "report": refused.report_key})
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
