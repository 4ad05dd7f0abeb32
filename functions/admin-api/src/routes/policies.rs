//! `GET|PUT /policies/{name}` and `POST /plans` (dry run).

use lifeboat::ErrorType;
use lifeboat_domain::policy::PolicyDocument;
use lifeboat_domain::{Policy, PolicyName};
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
    let unusable = lifeboat::app::deployment_problems(&policy, &deps.plan.config);
    if !unusable.is_empty() {
        return Err(unusable.iter().fold(
            Problem::bad_request("The policy cannot work in this deployment"),
            |p, msg| p.with_error(field_of(msg), msg.clone()),
        ));
    }
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
    let request = lifeboat::planning::PlanRequest::parse(&body).map_err(|e| match e.kind {
        ErrorType::Invalid => Problem::bad_request("Invalid plan request").with_error("body", e.message),
        _ => Problem::internal(e.message),
    })?;
    let report = lifeboat::planning::run(&deps.plan, &request)
        .await
        .map_err(|e| match e.kind {
            ErrorType::NotFound => Problem::not_found(e.message),
            ErrorType::Retryable => {
                let mut p =
                    Problem::new(503, "Service unavailable").detail("an AWS service did not answer; retry later");
                p.retry_after = Some(5);
                p.internal = Some(e.message);
                p
            }
            _ => Problem::internal(e.message),
        })?;
    ApiResponse::ok(report)
}
