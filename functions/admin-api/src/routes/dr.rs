//! `POST /dr/executions`, `GET /dr/executions?plan=`, `GET /dr/executions/{plan}/{execution}`:
//! DR drills, failovers and failbacks through the DR state machine. `GET /dr/plans`,
//! `GET|PUT /dr/plans/{name}`: the plans, checked when written, with entity tags.
//!
//! A drill (operator) starts at once. A failover or failback (admin) is two calls: the
//! first answers a preview and a confirmation token bound to the plan, the mode and the
//! caller; the second, with the token, starts the execution. The token is checked here
//! for a quick refusal and consumed (single use) by the state machine's pre-check, which
//! refuses the execution before any change if it is not valid.

use chrono::Utc;
use lifeboat_domain::confirm::{self, TokenError};
use lifeboat_domain::dr::{DrExecution, DrPlan, ExecStatus, Mode};
use lifeboat_domain::etag::{etag, if_match_admits};
use lifeboat_ports::dr::ActiveSide;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::routes::approvals;
use crate::{ApiResponse, Call, Deps, Problem, Role, limit, query};
use lifeboat_domain::approval::ApprovalSubject;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    plan: String,
    mode: String,
    #[serde(default)]
    token: Option<String>,
}

/// The request a failover or failback token is bound to (what run-dr-step verifies): the
/// plan's name and content, and the mode.
fn digest(plan: &DrPlan, mode: Mode) -> Result<String, Problem> {
    confirm::dr_request_digest(plan, mode.as_str()).map_err(|e| Problem::internal(e.to_string()))
}

fn token_problem(e: &TokenError) -> Problem {
    match e {
        TokenError::Malformed => Problem::bad_request("Invalid confirmation token").with_error("token", e.to_string()),
        TokenError::BadSignature | TokenError::WrongRequest | TokenError::WrongCaller | TokenError::Expired(_) => {
            Problem::new(403, "Confirmation token refused").detail(format!("{e}; nothing was started"))
        }
        TokenError::Reused => Problem::conflict(format!("{e}; nothing was started")),
        TokenError::KeyTooShort | TokenError::ValidityTooLong | TokenError::Store(_) => {
            Problem::internal(e.to_string())
        }
    }
}

async fn plan(deps: &Deps, name: &str) -> Result<DrPlan, Problem> {
    match deps.dr.get_plan(name).await.map_err(|e| Problem::from_port(&e))? {
        Some(Ok(plan)) => Ok(plan),
        Some(Err(problems)) => Err(Problem::new(409, "The DR plan is invalid")
            .detail(format!("plan {name} cannot run: {}", problems.problems.join("; ")))),
        None => Err(Problem::not_found(format!("no DR plan {name:.80}"))),
    }
}

/// A Step Functions execution name: `<plan>-<mode>-<UTC time>-<4 hex>` (at most 80
/// characters of letters, digits and hyphens).
fn execution_name(plan: &str, mode: Mode) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let mut plan: String = plan.chars().take(40).collect();
    plan.retain(|c| c.is_ascii_alphanumeric() || c == '-');
    format!(
        "{plan}-{}-{}-{}",
        mode.as_str(),
        Utc::now().format("%Y%m%dT%H%M%S"),
        &suffix[..4]
    )
}

/// The execution as the API shows it (the token's nonce left out).
fn view(exec: &DrExecution) -> Value {
    let mut v = serde_json::to_value(exec).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.remove("token_nonce");
        m.insert(
            "links".into(),
            json!({"self": format!("/dr/executions/{}/{}", exec.plan, exec.execution)}),
        );
    }
    v
}

/// Whether `mode` may start on `plan` now: no other execution running, and production on
/// the side the mode starts from. Checked before any token is issued (the state machine's
/// pre-check checks again); each refusal is its own 409.
async fn may_start(deps: &Deps, plan: &DrPlan, mode: Mode) -> Result<(), Problem> {
    // One execution per plan at a time (the state machine's lease refuses a second one
    // too; this answers before starting anything).
    let running = deps
        .dr
        .executions(&plan.name)
        .await
        .map_err(|e| Problem::from_port(&e))?
        .into_iter()
        .find(|e| e.status == ExecStatus::Running);
    if let Some(r) = running {
        return Err(
            Problem::new(409, "Another execution of the plan is running").detail(format!(
                "execution {} of plan {} is still running; one execution per plan at a time",
                r.execution, plan.name
            )),
        );
    }
    // Which side production is on decides what this mode may do: checked before any token
    // is issued (the pre-check checks again).
    let on_dr = deps
        .dr
        .site(&plan.name)
        .await
        .map_err(|e| Problem::from_port(&e))?
        .is_some_and(|s| s.active == ActiveSide::Dr);
    let wrong_side = match mode {
        Mode::Failover if on_dr => Some("production already runs on the DR side: fail back first"),
        Mode::Failback if !on_dr => Some("production runs on the source side: there is nothing to fail back"),
        _ => None,
    };
    if let Some(why) = wrong_side {
        return Err(
            Problem::new(409, "The plan's site does not allow this mode").detail(format!(
                "plan {}: a {} is refused: {why}",
                plan.name,
                mode.as_str()
            )),
        );
    }
    Ok(())
}

/// run-dr-step's preview of `mode` on `plan`: every check its pre-check makes, read only,
/// and where each database would come back from. A problem refuses the request here,
/// before any token (409, each problem listed).
async fn precheck(deps: &Deps, plan: &DrPlan, mode: Mode) -> Result<Value, Problem> {
    let function = deps.admin.dr_step_function.as_deref().ok_or_else(|| {
        Problem::new(503, "DR is not configured").detail("this deployment has no DR step function (DR_STEP_FUNCTION)")
    })?;
    let payload = json!({"preview": {"plan": plan.name, "mode": mode.as_str()}}).to_string();
    let out = deps
        .invoker
        .invoke(function, payload.as_bytes())
        .await
        .map_err(|e| Problem::from_port(&e))?;
    let answer: Value = serde_json::from_slice(&out.payload).unwrap_or(Value::Null);
    if out.function_error.is_some() {
        let message = answer["errorMessage"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>();
        return Err(match answer["errorType"].as_str() {
            Some("NotFound" | "Misconfigured" | "Invalid") => {
                Problem::new(409, format!("The pre-check refuses this {}", mode.as_str())).detail(message)
            }
            _ => Problem::internal(format!("DR preview failed: {answer}")),
        });
    }
    let (Some(checks), Some(problems)) = (answer["checks"].as_array(), answer["problems"].as_array()) else {
        return Err(Problem::internal(format!(
            "DR preview answered without checks and problems: {answer}"
        )));
    };
    if !problems.is_empty() {
        let refused = Problem::new(409, format!("The pre-check refuses this {}", mode.as_str())).detail(format!(
            "plan {}: {} problem(s); nothing was started and no token issued",
            plan.name,
            problems.len()
        ));
        return Err(problems.iter().fold(refused, |p, why| {
            p.with_error("precheck", why.as_str().unwrap_or_default())
        }));
    }
    tracing::info!(plan = %plan.name, mode = mode.as_str(), checks = checks.len(), "DR preview passed");
    Ok(answer)
}

/// What a failover or failback would do, shown before its token.
fn preview_of(plan: &DrPlan, mode: Mode) -> Value {
    let databases: Vec<Value> = plan
        .databases
        .iter()
        .map(|d| json!({"id": d.id, "kind": d.kind.to_string(), "arn": d.arn}))
        .collect();
    json!({
        "plan": plan.name,
        "mode": mode.as_str(),
        "source_region": plan.source_region.as_str(),
        "dr_region": plan.dr_region.as_str(),
        "databases": databases,
        "switch": plan.switch.as_ref().map(|s| json!({
            "parameters": s.parameters.keys().collect::<Vec<_>>(),
            "records": s.records.keys().collect::<Vec<_>>(),
        })),
        "rto_target_s": plan.rto.as_secs(),
        "rpo_target_s": plan.rpo.as_secs(),
        "approval_required": plan.approval.as_ref().is_some_and(|r| r.required),
    })
}

pub async fn start(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let body: StartRequest = call.req.parse()?;
    let mode = Mode::parse(&body.mode).ok_or_else(|| {
        Problem::bad_request("Invalid DR request").with_error("mode", "one of drill, failover, failback")
    })?;
    if mode != Mode::Drill && call.caller.role < Role::Admin {
        return Err(Problem::forbidden(format!(
            "a {} needs the admin role; you have {}",
            mode.as_str(),
            call.caller.role
        )));
    }
    if mode == Mode::Drill && body.token.is_some() {
        return Err(Problem::bad_request("Invalid DR request").with_error("token", "a drill needs no token"));
    }
    let plan = plan(deps, &body.plan).await?;
    let state_machine = deps.admin.dr_state_machine_arn.as_deref().ok_or_else(|| {
        Problem::new(503, "DR is not configured")
            .detail("this deployment has no DR state machine (DR_STATE_MACHINE_ARN)")
    })?;
    may_start(deps, &plan, mode).await?;
    let principal = &call.caller.principal;
    let mut input = json!({"plan": plan.name, "mode": mode.as_str()});
    let approval = plan.approval.as_ref().filter(|r| r.required);
    if mode != Mode::Drill {
        let key = deps.key.key().await.map_err(|e| Problem::from_port(&e))?;
        let now = deps.now();
        // Before any token or approval request: the pre-check's own checks, read only.
        let checked = if body.token.is_none() {
            precheck(deps, &plan, mode).await?
        } else {
            Value::Null
        };
        let preview = |plan: &DrPlan| {
            let mut p = preview_of(plan, mode);
            p["checks"] = checked["checks"].clone();
            p["sources"] = checked["sources"].clone();
            p
        };
        match (&body.token, approval) {
            (None, Some(rule)) => {
                let subject = ApprovalSubject::Dr {
                    plan: plan.name.clone(),
                    mode: mode.as_str().to_owned(),
                };
                let request = approvals::open(deps, call, subject, digest(&plan, mode)?, rule).await?;
                // The preview, as without approval, with the approval request instead of a token.
                return ApiResponse::ok(json!({
                    "preview": preview(&plan),
                    "approval": approvals::view(&request, now),
                    "next": format!("a second person approves: POST /approvals/{}/approve; then POST /approvals/{}/token", request.id, request.id),
                }));
            }
            (None, None) => {
                let nonce = uuid::Uuid::new_v4().to_string();
                let (token, claims) = confirm::issue(
                    &key,
                    &digest(&plan, mode)?,
                    principal,
                    now,
                    deps.admin.token_validity,
                    &nonce,
                )
                .map_err(|e| Problem::internal(e.to_string()))?;
                return ApiResponse::ok(json!({
                    "preview": preview(&plan),
                    "token": token,
                    "expires_at": claims.expires_at,
                    "confirm": "POST /dr/executions again with the same plan and mode and this token",
                }));
            }
            (Some(token), _) => {
                let claims = confirm::verify(&key, token, &digest(&plan, mode)?, principal, now)
                    .map_err(|e| token_problem(&e))?;
                if approval.is_some() {
                    approvals::approved(&claims, None)?;
                }
                // The state machine reads who confirmed from the token itself.
                input["token"] = json!(token);
                input["failure_time"] = json!(now.to_rfc3339());
            }
        }
    }
    let name = execution_name(&plan.name, mode);
    input["execution"] = json!(name);
    let arn = deps
        .executions
        .start(state_machine, &name, &input.to_string())
        .await
        .map_err(|e| Problem::from_port(&e))?;
    ApiResponse::with_status(
        202,
        json!({
            "plan": plan.name,
            "mode": mode.as_str(),
            "execution": name,
            "execution_arn": arn,
            "links": {"self": format!("/dr/executions/{}/{name}", plan.name)},
        }),
    )
}

/// `GET /dr/plans`: every DR plan with its targets, which side is active, and its newest
/// execution and newest drill (what the dashboard shows).
pub async fn plans(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let names = deps.dr.plan_names().await.map_err(|e| Problem::from_port(&e))?;
    let mut items = Vec::with_capacity(names.len());
    for name in &names {
        let mut item = match deps.dr.get_plan(name).await.map_err(|e| Problem::from_port(&e))? {
            None => continue,
            Some(Ok(plan)) => json!({
                "name": plan.name,
                "valid": true,
                "source_region": plan.source_region.as_str(),
                "dr_region": plan.dr_region.as_str(),
                "databases": plan.databases.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
                "rto_target_s": plan.rto.as_secs(),
                "rpo_target_s": plan.rpo.as_secs(),
            }),
            Some(Err(problems)) => json!({"name": name, "valid": false, "problems": problems.problems}),
        };
        let mut executions = deps.dr.executions(name).await.map_err(|e| Problem::from_port(&e))?;
        executions.sort_by(|a, b| (b.triggered_at, &b.execution).cmp(&(a.triggered_at, &a.execution)));
        item["last_execution"] = executions.first().map_or(Value::Null, view);
        item["last_drill"] = executions
            .iter()
            .find(|e| e.mode == Mode::Drill)
            .map_or(Value::Null, view);
        item["executions"] = json!(executions.len());
        item["active_side"] = match deps.dr.site(name).await.map_err(|e| Problem::from_port(&e))? {
            Some(site) => serde_json::to_value(site.active).unwrap_or(Value::Null),
            None => json!("source"),
        };
        item["links"] = json!({"executions": format!("/dr/executions?plan={name}")});
        items.push(item);
    }
    ApiResponse::ok(json!({"items": items, "total": items.len()}))
}

/// A stored plan document as the API shows it: parsed and checked, with its entity tag.
fn plan_view(name: &str, stored: &str) -> Value {
    let tag = etag(stored);
    match DrPlan::from_json(stored) {
        Ok(plan) => {
            let document: Value = serde_json::from_str(&plan.to_json()).unwrap_or(Value::Null);
            json!({"name": name, "valid": true, "document": document, "problems": [], "etag": tag})
        }
        Err(problems) => {
            let document: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
            json!({"name": name, "valid": false, "document": document, "problems": problems.problems, "etag": tag})
        }
    }
}

/// `GET /dr/plans/{name}`: the stored plan, checked, with its entity tag (`ETag`).
pub async fn get_plan(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let name = call.param("name");
    let stored = deps
        .dr
        .plan_document(name)
        .await
        .map_err(|e| Problem::from_port(&e))?
        .ok_or_else(|| Problem::not_found(format!("no DR plan {name:.80}")))?;
    ApiResponse::ok(plan_view(name, &stored))
}

/// `PUT /dr/plans/{name}` (admin): stores a plan after the same checks every DR step makes,
/// every problem listed at once (400). With `If-Match`, only over the version the caller
/// read (412 otherwise, atomically).
pub async fn put_plan(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let name = call.param("name");
    let text = std::str::from_utf8(&call.req.body)
        .map_err(|_| Problem::bad_request("The DR plan is invalid").with_error("body", "not UTF-8 text"))?;
    let plan = DrPlan::from_json(text).map_err(|problems| {
        problems
            .problems
            .iter()
            .fold(Problem::bad_request("The DR plan is invalid"), |p, msg| {
                p.with_error(super::policies::field_of(msg), msg.clone())
            })
    })?;
    if plan.name != name {
        return Err(Problem::bad_request("The DR plan is invalid").with_error(
            "name",
            format!("the document names {:.40?}, the path {name:.40}", plan.name),
        ));
    }
    let port = |e: lifeboat_ports::PortError| Problem::from_port(&e);
    let what = format!("DR plan {name}");
    if let Some(if_match) = &call.req.if_match {
        let current = deps.dr.plan_document(name).await.map_err(port)?;
        if !current
            .as_deref()
            .is_some_and(|doc| if_match_admits(if_match, &etag(doc)))
        {
            return Err(super::policies::stale(&what, current.as_deref()));
        }
        match deps.dr.replace_plan(&plan, current.as_deref()).await {
            Err(lifeboat_ports::PortError::Conflict(_)) => {
                let now = deps.dr.plan_document(name).await.map_err(port)?;
                return Err(super::policies::stale(&what, now.as_deref()));
            }
            other => other.map_err(port)?,
        }
    } else {
        deps.dr.put_plan(&plan).await.map_err(port)?;
    }
    ApiResponse::ok(plan_view(name, &plan.to_json()))
}

pub async fn list(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    let q = query(call.req, &["plan", "limit"])?;
    let name = q.iter().find(|(k, _)| *k == "plan").map(|(_, v)| *v).ok_or_else(|| {
        Problem::bad_request("Invalid query parameters").with_error("plan", "required: the DR plan's name")
    })?;
    let limit = limit(&q, 20, 100)?;
    let mut all = deps.dr.executions(name).await.map_err(|e| Problem::from_port(&e))?;
    all.sort_by(|a, b| (b.triggered_at, &b.execution).cmp(&(a.triggered_at, &a.execution)));
    let items: Vec<Value> = all.iter().take(limit).map(view).collect();
    ApiResponse::ok(json!({"plan": name, "items": items, "total": all.len()}))
}

/// The execution the path names, or 404.
async fn execution(deps: &Deps, call: &Call<'_>) -> Result<DrExecution, Problem> {
    query(call.req, &[])?;
    let (plan, execution) = (call.param("plan"), call.param("execution"));
    deps.dr
        .get_execution(plan, execution)
        .await
        .map_err(|e| Problem::from_port(&e))?
        .ok_or_else(|| Problem::not_found(format!("no execution {execution:.80} of DR plan {plan:.80}")))
}

pub async fn get(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    ApiResponse::ok(view(&execution(deps, call).await?))
}

/// `GET /dr/executions/{plan}/{execution}/report`: the execution's report (the one written
/// to the reports bucket when it ends), as it stands now: steps with timings, sources,
/// measured RTO/RPO against the targets, who confirmed and approved, refusal reasons,
/// compensations.
pub async fn report(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    ApiResponse::ok(execution(deps, call).await?.report())
}
