//! `GET|PUT /policies/{name}` (with entity tags: a write over a stale read is 412) and
//! `POST /plans` (dry run).

use lifeboat::ErrorType;
use lifeboat_domain::approval::{ApprovalSubject, weakenings};
use lifeboat_domain::confirm;
use lifeboat_domain::etag::{etag, if_match_admits};
use lifeboat_domain::policy::PolicyDocument;
use lifeboat_domain::{Policy, PolicyName};
use lifeboat_ports::PolicyVersion;
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
        .policy_document(name.as_str())
        .await
        .map_err(|e| Problem::from_port(&e))?
        .ok_or_else(|| Problem::not_found(format!("no policy {name}")))?;
    let tag = etag(&stored);
    ApiResponse::ok(match Policy::from_stored(name.as_str(), &stored) {
        Ok(p) => {
            json!({"name": name.as_str(), "valid": true, "document": p.to_document(), "problems": [], "etag": tag})
        }
        Err(problems) => {
            json!({"name": name.as_str(), "valid": false, "document": Value::Null, "problems": problems.problems, "etag": tag})
        }
    })
}

/// `GET /policies/{name}/versions`: the policy's replaced versions, newest first (`limit`,
/// default 20, at most 100), each with who replaced it, when, and its entity tag.
pub async fn versions(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    let q = query(call.req, &["limit"])?;
    let name = name(call)?;
    let limit = crate::limit(&q, 20, 100)?;
    let versions = deps
        .ports()
        .catalog
        .policy_versions(name.as_str(), limit)
        .await
        .map_err(|e| Problem::from_port(&e))?;
    let items: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "replaced_at": v.replaced_at.to_rfc3339(),
                "replaced_by": v.replaced_by,
                "etag": etag(&v.document),
                "document": serde_json::from_str::<Value>(&v.document).unwrap_or(Value::Null),
            })
        })
        .collect();
    ApiResponse::ok(json!({"name": name.as_str(), "items": items}))
}

/// A write based on a stale read (`If-Match` names another version, or none is stored).
pub(crate) fn stale(what: &str, current: Option<&str>) -> Problem {
    Problem::new(412, "Precondition failed").detail(match current {
        Some(doc) => format!(
            "{what} changed since it was read: its entity tag is now {}; read it again and reapply the change",
            etag(doc)
        ),
        None => format!("{what} is not stored, so If-Match cannot match"),
    })
}

/// The field a policy or DR plan problem is about: the text before its first `:` when that
/// is a plain field path (`rpo`, `copies[0].region`), else `document`.
pub(crate) fn field_of(problem: &str) -> String {
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
    let catalog = &deps.ports().catalog;
    let port = |e: lifeboat_ports::PortError| Problem::from_port(&e);
    let what = format!("policy {name}");
    let current = catalog.policy_document(name.as_str()).await.map_err(port)?;
    // A stale If-Match is refused before anything else, so that no approval token is spent
    // on a write that cannot apply.
    if let Some(if_match) = &call.req.if_match
        && !current
            .as_deref()
            .is_some_and(|doc| if_match_admits(if_match, &etag(doc)))
    {
        return Err(stale(&what, current.as_deref()));
    }
    let approved = match needs_approval(deps, call, &policy, current.as_deref()).await? {
        Gate::Waiting(answer) => return Ok(answer),
        Gate::Clear => false,
        Gate::Approved => true,
    };
    if call.req.if_match.is_some() || approved {
        // Only over the version read (and approved against), atomically.
        match catalog.replace_policy(&policy, current.as_deref()).await {
            Err(lifeboat_ports::PortError::Conflict(_)) => {
                let now = catalog.policy_document(name.as_str()).await.map_err(port)?;
                return Err(stale(&what, now.as_deref()));
            }
            other => other.map_err(port)?,
        }
    } else {
        catalog.put_policy(&policy).await.map_err(port)?;
    }
    let stored = serde_json::to_string(&policy.to_document()).map_err(|e| Problem::internal(e.to_string()))?;
    // The replaced version is kept, listable with GET /policies/{name}/versions.
    if let Some(previous) = current.filter(|c| *c != stored) {
        let version = PolicyVersion {
            replaced_at: deps.now(),
            replaced_by: call.caller.principal.clone(),
            document: previous,
        };
        if let Err(e) = catalog.keep_policy_version(name.as_str(), &version).await {
            tracing::error!(policy = %name, error = %e, "could not keep the replaced version of the policy");
        }
    }
    ApiResponse::ok(
        json!({"name": name.as_str(), "valid": true, "document": policy.to_document(), "problems": [], "etag": etag(&stored)}),
    )
}

/// Whether a policy write may go ahead.
enum Gate {
    /// It waits for a second person: the answer (202) names the approval request.
    Waiting(ApiResponse),
    /// It needs no approval.
    Clear,
    /// Its approval's token was valid and is spent: it goes ahead, over the version it
    /// was approved against only.
    Approved,
}

/// A change that weakens a policy requiring approval waits for a second person: without a
/// token it opens an approval request; with the token the approval gave (header
/// `Lifeboat-Confirmation`), bound to this exact document over this exact stored version,
/// it goes ahead, the token spent.
async fn needs_approval(deps: &Deps, call: &Call<'_>, policy: &Policy, current: Option<&str>) -> Result<Gate, Problem> {
    let Some(stored) = current else { return Ok(Gate::Clear) };
    // A stored policy that no longer parses has no rule to enforce; it is replaced as is.
    let Ok(old) = Policy::from_stored(policy.name.as_str(), stored) else {
        return Ok(Gate::Clear);
    };
    let Some(rule) = old.approval.as_ref().filter(|r| r.required) else {
        return Ok(Gate::Clear);
    };
    let changes = weakenings(&old, policy);
    if changes.is_empty() {
        return Ok(Gate::Clear);
    }
    let document = serde_json::to_string(&policy.to_document()).map_err(|e| Problem::internal(e.to_string()))?;
    let digest = confirm::request_digest(&json!({
        "policy": policy.name.as_str(),
        "document": document,
        "base": etag(stored),
    }));
    let now = deps.now();
    match &call.req.confirmation {
        None => {
            let subject = ApprovalSubject::PolicyChange {
                policy: policy.name.to_string(),
                changes,
                document,
            };
            let request = super::approvals::open(deps, call, subject, digest, rule).await?;
            Ok(Gate::Waiting(ApiResponse::with_status(
                202,
                json!({
                    "name": policy.name.as_str(),
                    "approval": super::approvals::view(&request, now),
                    "next": format!("a second person approves: POST /approvals/{}/approve; then POST /approvals/{}/token, and PUT again with the token in the Lifeboat-Confirmation header", request.id, request.id),
                }),
            )?))
        }
        Some(token) => {
            let key = deps.key.key().await.map_err(|e| Problem::from_port(&e))?;
            let claims = confirm::verify(&key, token, &digest, &call.caller.principal, now).map_err(|e| {
                Problem::new(403, "Confirmation token refused").detail(format!(
                    "{e} (the token confirms one document over the version it was approved against); nothing was changed"
                ))
            })?;
            super::approvals::approved(&claims, None)?;
            lifeboat::confirm::consume(deps.ports().catalog.as_ref(), &claims, now)
                .await
                .map_err(|e| match e {
                    confirm::TokenError::Reused => Problem::conflict(format!("{e}; nothing was changed")),
                    other => Problem::internal(other.to_string()),
                })?;
            Ok(Gate::Approved)
        }
    }
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
