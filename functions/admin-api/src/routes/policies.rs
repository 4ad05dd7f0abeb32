//! `GET|PUT /policies/{name}` and `POST /plans` (dry run).

use std::collections::BTreeMap;

use lifeboat::app::{ItemFailure, PLAN_POINTS_PER_RESOURCE, tag_window};
use lifeboat::domain::planner::{EmergencyRequest, PlanInput, ProtectedResource, plan as planner};
use lifeboat::domain::policy::PolicyDocument;
use lifeboat::domain::{Policy, PolicyName};
use lifeboat::ports::tag_value;
use lifeboat::{ErrorType, FunctionError};
use serde_json::{Value, json};

use crate::{ApiResponse, Call, Deps, Problem, query};

fn name(call: &Call<'_>) -> Result<PolicyName, Problem> {
    PolicyName::parse(call.param("name"))
        .map_err(|e| Problem::bad_request("Invalid policy name").with_error("name", e.to_string()))
}

pub async fn get(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let name = name(call)?;
    let stored = deps
        .ports()
        .catalog
        .policies()
        .await
        .map_err(|e| Problem::from_port(&e))?;
    for p in stored {
        match p {
            Ok(p) if p.name == name => {
                return ApiResponse::ok(
                    json!({"name": name.as_str(), "valid": true, "document": p.to_document(), "problems": []}),
                );
            }
            Err(problems) if problems.policy == name.as_str() => {
                return ApiResponse::ok(
                    json!({"name": name.as_str(), "valid": false, "document": Value::Null, "problems": problems.problems}),
                );
            }
            _ => {}
        }
    }
    Err(Problem::not_found(format!("no policy {name}")))
}

/// The field a policy problem is about: the text before its first `:` when that is a
/// plain field path (`rpo`, `copies[0].region`), else `document`.
fn field_of(problem: &str) -> String {
    problem
        .split_once(':')
        .map(|(f, _)| f.trim())
        .filter(|f| {
            !f.is_empty() && f.len() <= 40 && f.chars().all(|c| c.is_ascii_alphanumeric() || "_.[]-".contains(c))
        })
        .unwrap_or("document")
        .to_owned()
}

pub async fn put(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let name = name(call)?;
    let doc: PolicyDocument = call.req.parse()?;
    if doc.name != name.as_str() {
        return Err(Problem::bad_request("The policy is invalid")
            .with_error("name", format!("the document names {:.40?}, the path {name}", doc.name)));
    }
    let policy = Policy::from_document(&doc).map_err(|problems| {
        problems
            .problems
            .iter()
            .fold(Problem::bad_request("The policy is invalid"), |p, msg| {
                p.with_error(field_of(msg), msg.clone())
            })
    })?;
    deps.ports()
        .catalog
        .put_policy(&policy)
        .await
        .map_err(|e| Problem::from_port(&e))?;
    ApiResponse::ok(json!({"name": name.as_str(), "valid": true, "document": policy.to_document(), "problems": []}))
}

pub async fn plan(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let body = call.req.json()?;
    let request = plan_backups::PlanRequest::parse(&body).map_err(|e| match e.kind {
        ErrorType::Invalid => Problem::bad_request("Invalid plan request").with_error("body", e.message),
        _ => Problem::internal(e.message),
    })?;
    let report = dry_run(deps, &request).await.map_err(|e| match e.kind {
        ErrorType::NotFound => Problem::not_found(e.message),
        ErrorType::Retryable => {
            let mut p = Problem::new(503, "Service unavailable").detail("an AWS service did not answer; retry later");
            p.retry_after = Some(5);
            p.internal = Some(e.message);
            p
        }
        _ => Problem::internal(e.message),
    })?;
    ApiResponse::ok(report)
}

/// plan-backups' dry run, with the catalog read resource by resource.
///
/// `lifeboat::app::gather_plan_input` reads the resources' recovery points through a
/// `buffer_unordered` stream whose closure borrows; its future is not `Send` for every
/// lifetime, which lambda_http's service needs (rustc's higher-ranked lifetime limits).
/// This reads the same input sequentially and feeds the same pure planner.
async fn dry_run(deps: &Deps, request: &plan_backups::PlanRequest) -> Result<plan_backups::Report, FunctionError> {
    let ports = deps.ports();
    let config = &deps.plan.config;
    let at = request.at.unwrap_or_else(|| ports.clock.now());
    let mut problems = Vec::new();
    let mut policies: BTreeMap<PolicyName, Policy> = BTreeMap::new();
    for loaded in ports.catalog.policies().await? {
        match loaded {
            Ok(p) => {
                policies.insert(p.name.clone(), p);
            }
            Err(e) => problems.push(ItemFailure {
                subject: e.policy.clone(),
                code: "invalid-policy".into(),
                message: e.to_string(),
            }),
        }
    }
    if let Some(p) = &request.policy {
        if !policies.contains_key(p) {
            return Err(FunctionError::not_found(format!(
                "policy {p} does not exist or is invalid"
            )));
        }
        policies.retain(|name, _| name == p);
    }
    let discovered = ports
        .snapshots
        .protected_resources(&config.primary_region, &config.policy_tag_key)
        .await?;
    let mut resources = Vec::new();
    for d in discovered {
        let tag = tag_value(&d.tags, &config.policy_tag_key).unwrap_or_default();
        let Some(policy) = PolicyName::parse(tag).ok().filter(|p| policies.contains_key(p)) else {
            continue;
        };
        let windows = match tag_window(&d.tags) {
            Ok(w) => w.into_iter().collect(),
            Err(e) => {
                problems.push(ItemFailure {
                    subject: d.resource.arn.clone(),
                    code: "bad-window-tag".into(),
                    message: e,
                });
                Vec::new()
            }
        };
        resources.push(ProtectedResource {
            resource: d.resource,
            policy,
            windows,
        });
    }
    let mut points = Vec::new();
    for r in &resources {
        points.extend(
            ports
                .catalog
                .by_resource(&r.resource.arn, PLAN_POINTS_PER_RESOURCE)
                .await?,
        );
    }
    let emergencies: Vec<EmergencyRequest> = request
        .emergencies
        .iter()
        .map(|(arn, reason)| EmergencyRequest {
            resource_arn: arn.clone(),
            requested_at: at,
            reason: reason.clone(),
            emergency: true,
        })
        .collect();
    for e in &emergencies {
        if !resources.iter().any(|r| r.resource.arn == e.resource_arn) {
            problems.push(ItemFailure {
                subject: e.resource_arn.clone(),
                code: "not-protected".into(),
                message: "emergency backup requested for a resource no policy protects".into(),
            });
        }
    }
    let plan = planner(&PlanInput {
        policies: &policies,
        resources: &resources,
        points: &points,
        emergencies: &emergencies,
        copy_budget_per_region: config.copy_budget_per_region,
        dr_kms_keys: &config.dr_kms_keys,
        now: at,
        force: request.force,
    });
    Ok(plan_backups::Report {
        at,
        summary: plan.summary(),
        plan,
        problems,
    })
}
