//! `admin-api`: Lifeboat's admin API behind API Gateway (AWS_IAM auth), one function.
//!
//! Every route is one row of [`ROUTES`]: method, path pattern, the least role that may
//! call it, and its handler. The caller's IAM principal maps to a role through
//! `ADMIN_ROLES`; an unknown principal gets 403. Errors are `application/problem+json`;
//! internal causes are logged with the request id, never sent. Every mutating request
//! appends an audit record before anything is done and another before the answer leaves.

// `Problem` is the problem+json body of a refused request, built at most once per
// request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod http;
mod route_table;
mod routes;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, LambdaEvent, Request, RequestExt, Response};
use lifeboat::app::Ports;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat_ports::admin::{ApprovalStore, AuditLog, AuditRecord, DbRestorer, RestoreStore};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use config::{AdminConfig, Role};
pub use http::{ApiRequest, ApiResponse, Problem};
pub use route_table::{Handler, Params, ROUTES, Route, match_path};

use lifeboat_ports::keys::SigningKeys;
use lifeboat_ports::lambda::{ExecutionStarter, Invoker};

/// Everything the handler talks to; each granted in template.yaml, no more.
#[derive(Clone)]
pub struct Deps {
    pub plan: lifeboat::planning::Planner,
    pub admin: AdminConfig,
    pub audit: Arc<dyn AuditLog>,
    pub restores: Arc<dyn RestoreStore>,
    /// Requests waiting for a second person's approval.
    pub approvals: Arc<dyn ApprovalStore>,
    pub rds: Arc<dyn DbRestorer>,
    pub invoker: Arc<dyn Invoker>,
    pub key: Arc<dyn SigningKeys>,
    /// DR plans and executions (the catalog table).
    pub dr: Arc<dyn lifeboat_ports::dr::DrStore>,
    /// Starts DR state machine executions.
    pub executions: Arc<dyn ExecutionStarter>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl Deps {
    pub fn ports(&self) -> &Ports {
        &self.plan.ports
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.plan.ports.clock.now()
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: String,
    pub role: Role,
}

/// Everything a handler gets.
#[derive(Debug)]
pub struct Call<'a> {
    pub req: &'a ApiRequest,
    pub caller: &'a Caller,
    pub params: Params,
}

impl Call<'_> {
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

pub const FUNCTION: &str = "admin-api";

/// admin-api as one invocation: an API Gateway (REST or HTTP API) or function URL event
/// in, the answer in the shape its origin expects out, and the request's metrics.
#[derive(Debug)]
pub struct AdminApi;

impl Function for AdminApi {
    const NAME: &'static str = FUNCTION;
    /// An HTTP request is answered within the API Gateway's own timeout; nothing to hand over.
    const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::ZERO;
    type Deps = Deps;
    type Request = LambdaRequest;
    type Output = Value;

    fn now(deps: &Deps) -> DateTime<Utc> {
        deps.now()
    }

    fn parse(_: &Deps, payload: &Value) -> Result<LambdaRequest, lifeboat::FunctionError> {
        serde_json::from_value(payload.clone()).map_err(|_| {
            lifeboat::FunctionError::invalid(
                "not an HTTP request: admin-api answers API Gateway (REST or HTTP API) and function URL events only",
            )
        })
    }

    async fn run(
        deps: &Deps,
        request: LambdaRequest,
        invocation: &mut Invocation,
    ) -> Result<Value, lifeboat::FunctionError> {
        let mut context = lambda_http::Context::default();
        invocation.run_id().clone_into(&mut context.request_id);
        let req = Request::from(request).with_lambda_context(context);
        let api = ApiRequest::from_lambda(&req);
        let (status, body, problem) = answer(deps, &api).await;
        let resp = http::render(status, &body, problem.as_ref(), deps.admin.dashboard_origin.as_deref());
        Ok(http::to_proxy_response(resp))
    }

    fn record_metrics(
        _: &Deps,
        result: &Result<Value, lifeboat::FunctionError>,
        took: std::time::Duration,
        metrics: &mut Metrics,
    ) {
        if let Ok(answer) = result {
            let status = answer
                .get("statusCode")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(500);
            record_metrics(status, took, metrics);
        }
    }
}

/// The Lambda entry point: any JSON event. An API Gateway (REST or HTTP API) or function
/// URL request is answered in the shape its origin expects; anything else is refused with
/// errorType `Invalid` (never the runtime's own deserializer error).
pub async fn handle_event(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, lifeboat::FunctionError> {
    invoke::<AdminApi>(deps, event, &StdoutSink).await
}

/// [`handle_event`], writing the request's metrics to `sink`.
pub async fn handle_event_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<Value, lifeboat::FunctionError> {
    invoke::<AdminApi>(deps, event, sink).await
}

/// An already-built HTTP request (`lambda_http`'s), answered in full.
pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    handle_with(deps, req, &StdoutSink).await
}

/// [`handle`], writing the request's metrics to `sink`.
pub async fn handle_with(deps: &Deps, req: Request, sink: &dyn MetricsSink) -> Response<Body> {
    let started = std::time::Instant::now();
    let api = ApiRequest::from_lambda(&req);
    let (status, body, problem) = answer(deps, &api).await;
    let mut metrics = Metrics::new(FUNCTION, &api.request_id, deps.now());
    record_metrics(status, started.elapsed(), &mut metrics);
    metrics.flush(sink);
    http::render(status, &body, problem.as_ref(), deps.admin.dashboard_origin.as_deref())
}

/// A request's metrics: `ApiRequests`, `ApiClientErrors` (4xx), `ApiServerErrors` (5xx),
/// all also when zero so the alarm sees data, and `ApiLatency`.
pub fn record_metrics(status: u16, took: std::time::Duration, metrics: &mut Metrics) {
    metrics.count(Metric::ApiRequests, 1);
    metrics.count(Metric::ApiClientErrors, u64::from((400..500).contains(&status)));
    metrics.count(Metric::ApiServerErrors, u64::from(status >= 500));
    metrics.sample(Metric::ApiLatency, u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
}

/// Routes, authorizes, audits and runs one request. Pure request handling over the ports:
/// tests call it with crafted requests.
pub async fn answer(deps: &Deps, req: &ApiRequest) -> (u16, Value, Option<Problem>) {
    let outcome = dispatch(deps, req).await;
    match outcome {
        Ok(r) => (r.status, r.body, None),
        Err(p) => {
            if let Some(cause) = &p.internal {
                tracing::error!(request_id = %req.request_id, status = p.status, cause = %cause, "request failed");
            } else {
                tracing::info!(request_id = %req.request_id, status = p.status, title = %p.title, "request refused");
            }
            (p.status, p.body(&req.request_id), Some(p))
        }
    }
}

fn find_route(req: &ApiRequest) -> Result<(&'static Route, Params), Problem> {
    if req.path.len() > 2048 {
        return Err(Problem::not_found("no such route"));
    }
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(params) = match_path(route.pattern, &req.path) {
            if route.method == req.method {
                return Ok((route, params));
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        return Err(Problem::not_found(format!(
            "no route {:.200}; see the OpenAPI document for the routes",
            req.path
        )));
    }
    let mut p = Problem::new(405, "Method not allowed").detail(format!("{:.10} is not allowed here", req.method));
    p.allow = Some(allowed.join(", "));
    Err(p)
}

async fn dispatch(deps: &Deps, req: &ApiRequest) -> Result<ApiResponse, Problem> {
    // Strangers learn nothing, not even which routes exist: identity and role are checked
    // before any route is matched.
    let principal = req
        .principal
        .clone()
        .ok_or_else(|| Problem::forbidden("the request carries no IAM identity (AWS_IAM authorization)"))?;
    let role = deps.admin.roles.role_of(&principal);
    if role.is_none() {
        if req.method != "GET" {
            audit_stranger(deps, req, &principal).await;
        }
        return Err(Problem::forbidden("this IAM principal has no Lifeboat role"));
    }
    let (route, params) = find_route(req)?;
    let mutating = route.method != "GET";
    let body_sha256 = hex(&Sha256::digest(&req.body));
    let audit = AuditRecord {
        request_id: req.request_id.clone(),
        phase: "requested".to_owned(),
        at: deps.now(),
        principal: principal.clone(),
        role: role.map_or("none", Role::as_str).to_owned(),
        method: route.method.to_owned(),
        route: route.pattern.to_owned(),
        path: req.path.chars().take(512).collect(),
        body_sha256,
        status: None,
        result: None,
    };
    if mutating {
        // Nothing is done unless the request is on record first.
        deps.audit.append(&audit).await.map_err(|e| {
            let mut p = Problem::from_port(&e);
            if p.status == 409 {
                p = Problem::conflict("this request id was already handled");
            }
            p
        })?;
    }
    let outcome = run(deps, req, route, params, &principal, role).await;
    if mutating {
        let (status, result) = match &outcome {
            Ok(r) => (r.status, "ok".to_owned()),
            Err(p) => (p.status, p.title.clone()),
        };
        let answered = AuditRecord {
            phase: "answered".to_owned(),
            at: deps.now(),
            status: Some(status),
            result: Some(result),
            ..audit
        };
        if let Err(e) = deps.audit.append(&answered).await {
            tracing::error!(request_id = %req.request_id, error = %e, "could not write the audit record of the answer");
        }
    }
    outcome
}

/// Puts a refused mutating request of a principal without a role on record (best effort:
/// the answer is 403 either way).
async fn audit_stranger(deps: &Deps, req: &ApiRequest, principal: &str) {
    let now = deps.now();
    let base = AuditRecord {
        request_id: req.request_id.clone(),
        phase: "requested".to_owned(),
        at: now,
        principal: principal.chars().take(512).collect(),
        role: "none".to_owned(),
        method: req.method.chars().take(10).collect(),
        route: "(not matched: no role)".to_owned(),
        path: req.path.chars().take(512).collect(),
        body_sha256: hex(&Sha256::digest(&req.body)),
        status: None,
        result: None,
    };
    let answered = AuditRecord {
        phase: "answered".to_owned(),
        status: Some(403),
        result: Some("Forbidden".to_owned()),
        ..base.clone()
    };
    for record in [base, answered] {
        if let Err(e) = deps.audit.append(&record).await {
            tracing::warn!(request_id = %req.request_id, error = %e, "could not audit a refused request");
        }
    }
}

async fn run(
    deps: &Deps,
    req: &ApiRequest,
    route: &Route,
    params: Params,
    principal: &str,
    role: Option<Role>,
) -> Result<ApiResponse, Problem> {
    let role = role.ok_or_else(|| Problem::forbidden("this IAM principal has no Lifeboat role"))?;
    if role < route.min_role {
        return Err(Problem::forbidden(format!(
            "{} {} needs the {} role; you have {}",
            route.method, route.pattern, route.min_role, role
        )));
    }
    if req.body.len() > http::MAX_BODY_BYTES {
        return Err(
            Problem::new(413, "Request body too large").detail(format!("at most {} bytes", http::MAX_BODY_BYTES))
        );
    }
    let caller = Caller {
        principal: principal.to_owned(),
        role,
    };
    let call = Call {
        req,
        caller: &caller,
        params,
    };
    match route.handler {
        Handler::ListResources => routes::catalog::list_resources(deps, &call).await,
        Handler::ListRecoveryPoints => routes::catalog::list_recovery_points(deps, &call).await,
        Handler::GetRecoveryPoint => routes::catalog::get_recovery_point(deps, &call).await,
        Handler::GetPolicy => routes::policies::get(deps, &call).await,
        Handler::PutPolicy => routes::policies::put(deps, &call).await,
        Handler::PolicyVersions => routes::policies::versions(deps, &call).await,
        Handler::Plan => routes::policies::plan(deps, &call).await,
        Handler::Backup => routes::backups::create(deps, &call).await,
        Handler::RestorePreview => routes::restores::preview(deps, &call).await,
        Handler::RestoreGet => routes::restores::get(deps, &call).await,
        Handler::RestoreConfirm => routes::restores::confirm(deps, &call).await,
        Handler::RestoreAdvance => routes::restores::advance(deps, &call).await,
        Handler::RestoreFinish => routes::restores::finish(deps, &call).await,
        Handler::RestoreRollback => routes::restores::rollback(deps, &call).await,
        Handler::Audit => routes::audit::list(deps, &call).await,
        Handler::DrStart => routes::dr::start(deps, &call).await,
        Handler::DrList => routes::dr::list(deps, &call).await,
        Handler::DrPlans => routes::dr::plans(deps, &call).await,
        Handler::DrPlanGet => routes::dr::get_plan(deps, &call).await,
        Handler::DrPlanPut => routes::dr::put_plan(deps, &call).await,
        Handler::DrGet => routes::dr::get(deps, &call).await,
        Handler::DrReport => routes::dr::report(deps, &call).await,
        Handler::Compliance => routes::reports::compliance(deps, &call).await,
        Handler::Metrics => routes::reports::metrics(deps, &call).await,
        Handler::Alerts => routes::reports::alerts(deps, &call).await,
        Handler::Approvals => routes::approvals::list(deps, &call).await,
        Handler::ApprovalGet => routes::approvals::get(deps, &call).await,
        Handler::Approve => routes::approvals::approve(deps, &call).await,
        Handler::Deny => routes::approvals::deny(deps, &call).await,
        Handler::ApprovalToken => routes::approvals::token(deps, &call).await,
        Handler::Confirmation => routes::confirmations::create(deps, &call).await,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Query parameters checked against the allowed names; unknown or repeated ones are a 400.
pub(crate) fn query<'a>(req: &'a ApiRequest, allowed: &[&str]) -> Result<Vec<(&'a str, &'a str)>, Problem> {
    let mut problem = Problem::bad_request("Invalid query parameters");
    let mut seen = Vec::new();
    for (k, v) in &req.query {
        if !allowed.contains(&k.as_str()) {
            problem = problem.with_error(
                k.chars().take(40).collect::<String>(),
                format!("unknown parameter; allowed: {}", allowed.join(", ")),
            );
        } else if seen.iter().any(|(s, _)| s == k) {
            problem = problem.with_error(k.clone(), "given more than once");
        } else {
            seen.push((k.as_str(), v.as_str()));
        }
    }
    if problem.errors.is_empty() {
        Ok(seen)
    } else {
        Err(problem)
    }
}

/// `limit` from the query: 1 to `max`, default `default`.
pub(crate) fn limit(q: &[(&str, &str)], default: usize, max: usize) -> Result<usize, Problem> {
    match q.iter().find(|(k, _)| *k == "limit") {
        None => Ok(default),
        Some((_, v)) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Problem::bad_request("Invalid query parameters")
                    .with_error("limit", format!("must be a number from 1 to {max}"))
            }),
    }
}
