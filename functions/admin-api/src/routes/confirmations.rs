//! `POST /confirmations` (admin): a confirmation token for a destructive request that is
//! invoked directly rather than through this API: restore-objects writing over the
//! original keys, backup-config restoring items over themselves. The token is bound to the
//! function and its exact request, issued to the caller, single use; the function checks
//! it, spends it and puts the act on the audit trail with the caller's principal.

use lifeboat_domain::confirm::{self, CONFIRMED_FUNCTIONS};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiResponse, Call, Deps, Problem, query};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmationRequest {
    function: String,
    request: Value,
}

/// Whether `request` to `function` is one that needs a token: the other requests run
/// without one, and a token for them would only mislead.
fn destructive(function: &str, request: &Value) -> Result<(), String> {
    let overwrite = request.get("overwrite").and_then(Value::as_bool) == Some(true);
    let dry_run = request.get("dryRun").and_then(Value::as_bool) == Some(true);
    match function {
        "restore-objects" if overwrite && !dry_run => Ok(()),
        "backup-config"
            if request.get("action").and_then(Value::as_str) == Some("restore") && overwrite && !dry_run =>
        {
            Ok(())
        }
        "restore-objects" | "backup-config" => Err(format!(
            "this {function} request writes over nothing (no \"overwrite\": true, or a dry run): it needs no token"
        )),
        other => Err(format!(
            "{other:.40} takes no confirmation token; one of {}",
            CONFIRMED_FUNCTIONS.join(", ")
        )),
    }
}

pub async fn create(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let body: ConfirmationRequest = call.req.parse()?;
    let invalid =
        |field: &str, why: String| Problem::bad_request("Invalid confirmation request").with_error(field, why);
    if !body.request.is_object() {
        return Err(invalid("request", "the function's request, as a JSON object".into()));
    }
    if body.request.get("confirmation").is_some() {
        return Err(invalid(
            "request.confirmation",
            "the request the token is for has no token yet".into(),
        ));
    }
    destructive(&body.function, &body.request).map_err(|why| invalid("function", why))?;
    let key = deps.key.key().await.map_err(|e| Problem::from_port(&e))?;
    let now = deps.now();
    let (token, claims) = confirm::issue(
        &key,
        &confirm::invocation_digest(&body.function, &body.request),
        &call.caller.principal,
        now,
        deps.admin.token_validity,
        &uuid::Uuid::new_v4().to_string(),
    )
    .map_err(|e| Problem::internal(e.to_string()))?;
    let mut invoke = body.request.clone();
    invoke["confirmation"] = json!(token);
    ApiResponse::with_status(
        201,
        json!({
            "function": body.function,
            "token": token,
            "expiresAt": claims.expires_at,
            "invoke": invoke,
            "next": format!("invoke {} with this request (the token as \"confirmation\"); single use", body.function),
        }),
    )
}
