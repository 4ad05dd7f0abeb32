//! Two-person approval: `GET /approvals`, `GET /approvals/{id}`,
//! `POST /approvals/{id}/approve|deny` (a second admin the rule names) and
//! `POST /approvals/{id}/token` (the requester, once approved).
//!
//! A request that needs approval (an overwrite restore of a resource whose policy says so, a
//! failover or failback of a plan that says so, a policy change that weakens a policy that
//! says so) is answered 202 with its approval request instead of a token. The token comes
//! only from `POST /approvals/{id}/token`, once, to the principal that asked, and carries
//! the approval: every step that checks tokens refuses one without it.

use lifeboat_domain::approval::{
    ApprovalError, ApprovalRequest, ApprovalRule, ApprovalState, ApprovalSubject, Verdict,
};
use lifeboat_domain::confirm;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiResponse, Call, Deps, Problem, Role, limit, query};

/// The approval request as the API shows it, its state as of `now`.
pub(crate) fn view(r: &ApprovalRequest, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut subject = serde_json::to_value(&r.subject).unwrap_or(Value::Null);
    if let (ApprovalSubject::PolicyChange { document, .. }, Value::Object(m)) = (&r.subject, &mut subject) {
        // Shown as JSON, not as a string of JSON.
        m.insert("document".into(), serde_json::from_str(document).unwrap_or(Value::Null));
    }
    json!({
        "id": r.id,
        "state": r.state_at(now).as_str(),
        "summary": r.subject.summary(),
        "subject": subject,
        "requestedBy": r.requested_by,
        "requestedAt": r.requested_at,
        "expiresAt": r.expires_at,
        "approvers": r.approvers,
        "decidedBy": r.decided_by,
        "decidedAt": r.decided_at,
        "reason": r.reason,
        "tokenIssuedAt": r.token_issued_at,
        "links": {
            "self": format!("/approvals/{}", r.id),
            "approve": format!("/approvals/{}/approve", r.id),
            "deny": format!("/approvals/{}/deny", r.id),
            "token": format!("/approvals/{}/token", r.id),
        },
    })
}

/// Puts a request that needs approval on record, pending; the answer's `approval` part.
pub(crate) async fn open(
    deps: &Deps,
    call: &Call<'_>,
    subject: ApprovalSubject,
    request_digest: String,
    rule: &ApprovalRule,
) -> Result<ApprovalRequest, Problem> {
    let request = ApprovalRequest::new(
        uuid::Uuid::new_v4().to_string(),
        subject,
        request_digest,
        &call.caller.principal,
        deps.now(),
        rule,
    );
    deps.approvals
        .insert(&request)
        .await
        .map_err(|e| Problem::from_port(&e))?;
    tracing::info!(approval = %request.id, subject = %request.subject.summary(), "waiting for approval");
    Ok(request)
}

/// A token for a request that needs approval must carry an approval of that request.
pub(crate) fn approved(claims: &confirm::Claims, expected: Option<&str>) -> Result<(), Problem> {
    let carried = claims.approval.as_ref().map(|a| a.id.as_str());
    match (carried, expected) {
        (Some(id), Some(want)) if id != want => Err(Problem::new(403, "Confirmation token refused")
            .detail("the token carries the approval of another request; nothing was changed")),
        (Some(_), _) => Ok(()),
        (None, _) => Err(Problem::new(403, "Approval required").detail(
            "this request needs a second person's approval: the token must come from POST /approvals/{id}/token; nothing was changed",
        )),
    }
}

fn refusal(e: &ApprovalError) -> Problem {
    match e {
        ApprovalError::SelfApproval | ApprovalError::NotAnApprover | ApprovalError::RoleTooLow => {
            Problem::forbidden(format!("{e}; nothing was changed"))
        }
        ApprovalError::NotRequester => Problem::forbidden(format!("{e}; nothing was changed")),
        ApprovalError::Expired(_) | ApprovalError::Decided(_) | ApprovalError::NotApproved(_) => {
            Problem::conflict(format!("{e}; nothing was changed"))
        }
    }
}

async fn load(deps: &Deps, call: &Call<'_>) -> Result<ApprovalRequest, Problem> {
    let id = call.param("id");
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(Problem::bad_request("Invalid approval id").with_error("id", "must be an approval id (a UUID)"));
    }
    deps.approvals
        .get(id)
        .await
        .map_err(|e| Problem::from_port(&e))?
        .ok_or_else(|| Problem::not_found(format!("no approval request {id}")))
}

async fn save(deps: &Deps, next: &ApprovalRequest, expected: u64) -> Result<(), Problem> {
    match deps.approvals.update(next, expected).await {
        Err(lifeboat_ports::PortError::Conflict(_)) => Err(Problem::conflict(
            "the approval request changed meanwhile; read it again. Nothing was changed",
        )),
        other => other.map_err(|e| Problem::from_port(&e)),
    }
}

/// `GET /approvals?state=pending-approval&limit=`: newest first.
pub async fn list(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    let q = query(call.req, &["state", "limit"])?;
    let limit = limit(&q, 50, 200)?;
    let state = match q.iter().find(|(k, _)| *k == "state") {
        None => None,
        Some((_, v)) => Some(ApprovalState::parse(v).ok_or_else(|| {
            Problem::bad_request("Invalid query parameters").with_error(
                "state",
                "one of pending-approval, approved, denied, token-issued, expired",
            )
        })?),
    };
    let now = deps.now();
    // Read past `limit` so that a state filter still fills the page.
    let all = deps
        .approvals
        .recent(if state.is_some() { 1000 } else { limit })
        .await
        .map_err(|e| Problem::from_port(&e))?;
    let items: Vec<Value> = all
        .iter()
        .filter(|r| state.is_none_or(|s| r.state_at(now) == s))
        .take(limit)
        .map(|r| view(r, now))
        .collect();
    ApiResponse::ok(json!({"total": items.len(), "items": items}))
}

/// `GET /approvals/{id}`.
pub async fn get(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let request = load(deps, call).await?;
    ApiResponse::ok(view(&request, deps.now()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn decide(deps: &Deps, call: &Call<'_>, approve: bool) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let body: DecisionBody = if call.req.body.iter().all(u8::is_ascii_whitespace) {
        DecisionBody::default()
    } else {
        call.req.parse()?
    };
    let reason: Option<String> = body.reason.map(|r| r.chars().take(500).collect());
    let verdict = if approve {
        Verdict::Approve
    } else {
        Verdict::Deny {
            reason: reason.ok_or_else(|| {
                Problem::bad_request("Invalid denial").with_error("reason", "say why the request is denied")
            })?,
        }
    };
    let request = load(deps, call).await?;
    let next = request
        .decide(
            &call.caller.principal,
            call.caller.role >= Role::Admin,
            verdict,
            deps.now(),
        )
        .map_err(|e| refusal(&e))?;
    save(deps, &next, request.version).await?;
    tracing::info!(approval = %next.id, state = %next.state, by = %call.caller.principal, "approval decided");
    ApiResponse::ok(view(&next, deps.now()))
}

/// `POST /approvals/{id}/approve`: a second admin, named by the rule.
pub async fn approve(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    decide(deps, call, true).await
}

/// `POST /approvals/{id}/deny` with `{"reason": "..."}`.
pub async fn deny(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    decide(deps, call, false).await
}

/// `POST /approvals/{id}/token`: the requester's confirmation token, once the request is
/// approved, and only once; it carries the approval.
pub async fn token(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let request = load(deps, call).await?;
    let now = deps.now();
    let next = request
        .hand_token(&call.caller.principal, now)
        .map_err(|e| refusal(&e))?;
    let key = deps.key.key().await.map_err(|e| Problem::from_port(&e))?;
    let (token, claims) = confirm::issue_approved(
        &key,
        &request.request_digest,
        &request.requested_by,
        now,
        deps.admin.token_validity,
        &uuid::Uuid::new_v4().to_string(),
        Some(next.claim()),
    )
    .map_err(|e| Problem::internal(e.to_string()))?;
    // Handed out once: a second call finds the request `token-issued`.
    save(deps, &next, request.version).await?;
    let confirm = match &request.subject {
        ApprovalSubject::OverwriteRestore { restore, .. } => {
            format!("POST /restores/{restore}/confirm with this token")
        }
        ApprovalSubject::Dr { .. } => "POST /dr/executions again with the same plan and mode and this token".to_owned(),
        ApprovalSubject::PolicyChange { policy, .. } => format!(
            "PUT /policies/{policy} again with the same document and this token in the Lifeboat-Confirmation header"
        ),
    };
    ApiResponse::ok(json!({
        "approval": view(&next, now),
        "token": token,
        "expiresAt": claims.expires_at,
        "confirm": confirm,
    }))
}
