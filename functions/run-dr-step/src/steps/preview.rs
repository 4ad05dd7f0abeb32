//! The preview of a failover or failback, before any token is issued (admin-api asks for
//! it, `{"preview": {"plan", "mode"}}`): every check the pre-check makes, and where each
//! database would come back from. Read only: no lease, no record, no token, nothing held.

use lifeboat::FunctionError;
use lifeboat_domain::dr::execution::choose_source;
use lifeboat_domain::dr::{Action, DrPlan, Mode};
use lifeboat_ports::dr::ActiveSide;
use serde_json::{Value, json};

use super::choose::source_facts;
use super::load_plan;
use super::precheck::{Findings, check_data, check_databases, check_keys_and_capacity, check_tables};
use crate::Deps;
use crate::request::{ExecutionInput, StepRequest};

/// What `{"preview": …}` asks.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub plan: String,
    pub mode: String,
}

pub(crate) async fn preview(deps: &Deps, request: &PreviewRequest) -> Result<Value, FunctionError> {
    let mode = Mode::parse(&request.mode)
        .filter(|m| *m != Mode::Drill)
        .ok_or_else(|| FunctionError::invalid("preview: mode must be failover or failback"))?;
    let now = deps.clock.now();
    let plan = load_plan(deps, &request.plan).await?;
    let req = StepRequest {
        action: Action::Precheck,
        input: ExecutionInput {
            plan: plan.name.clone(),
            execution: "preview".into(),
            mode: mode.as_str().into(),
            token: None,
            failure_time: None,
            error: None,
        },
        mode,
    };
    let mut f = Findings::default();
    let site = deps.store.site(&plan.name).await?;
    let on_dr = site.as_ref().is_some_and(|s| s.active == ActiveSide::Dr);
    match mode {
        Mode::Failover if on_dr => f
            .problems
            .push(format!("plan {}: already failed over; fail back first", plan.name)),
        Mode::Failback if !on_dr => f.problems.push(format!(
            "plan {}: production is on the source side; nothing to fail back",
            plan.name
        )),
        _ => {}
    }
    check_databases(deps, &req, &plan, now, &mut f).await?;
    check_tables(deps, &req, &plan, now, &mut f).await?;
    check_data(deps, &plan, now, &mut f).await?;
    check_keys_and_capacity(deps, &req, &plan, &mut f).await?;
    let sources = sources(deps, &plan, mode, site.as_ref(), &mut f).await?;
    Ok(json!({
        "plan": plan.name,
        "mode": mode.as_str(),
        "checks": f.checks,
        "problems": f.problems,
        "sources": sources,
    }))
}

/// Where each database would come back from, as choose-source would decide now.
async fn sources(
    deps: &Deps,
    plan: &DrPlan,
    mode: Mode,
    site: Option<&lifeboat_ports::dr::Site>,
    f: &mut Findings,
) -> Result<Vec<Value>, FunctionError> {
    let now = deps.clock.now();
    let mut out = Vec::with_capacity(plan.databases.len());
    for db in &plan.databases {
        if mode == Mode::Failback {
            let on_dr = site.and_then(|s| s.databases.iter().find(|d| d.db == db.id));
            let reason = if let Some(on_dr) = on_dr {
                format!(
                    "a fresh snapshot of the DR-side database {} ({}) copied to {}",
                    on_dr.id, on_dr.region, plan.source_region
                )
            } else {
                f.problems.push(format!("{}: no DR-side database recorded", db.id));
                "no DR-side database recorded".to_owned()
            };
            out.push(json!({"database": db.id, "source": "dr-side", "reason": reason}));
            continue;
        }
        let (facts, _, _) = source_facts(deps, plan, db).await?;
        let (source, reason) = choose_source(mode, db, &facts, now, now);
        if source.is_none() {
            f.problems.push(format!("{}: {reason}", db.id));
        }
        out.push(json!({"database": db.id, "source": source, "reason": reason}));
    }
    Ok(out)
}
