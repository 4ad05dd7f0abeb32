//! `POST /backups`: an on-demand or emergency backup of named resources, by invoking the
//! create-snapshots function with a `Backup requested` event.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiResponse, Call, Deps, Problem, query};

/// The most resources one request may name.
pub const MAX_RESOURCES: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupRequest {
    resources: Vec<String>,
    #[serde(default)]
    emergency: bool,
    reason: String,
}

fn is_rds_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 7
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "rds"
        && lifeboat_domain::Region::parse(parts[3]).is_ok()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && ["db", "cluster"].contains(&parts[5])
        && !parts[6].is_empty()
        && parts[6].len() <= 63
        && parts[6].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `arn:aws:dynamodb:<region>:<account>:table/<name>` (table names: 3-255 of `[A-Za-z0-9_.-]`).
fn is_table_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "dynamodb"
        && lifeboat_domain::Region::parse(parts[3]).is_ok()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("table/").is_some_and(|name| {
            (3..=255).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        })
}

/// The event create-snapshots receives.
pub fn event(resources: &[String], emergency: bool, reason: &str, principal: &str, request_id: &str) -> Value {
    json!({
        "source": "lifeboat.admin",
        "detail-type": "Backup requested",
        "detail": {
            "resources": resources,
            "emergency": emergency,
            "reason": reason,
            "requestedBy": principal,
            "requestId": request_id,
        }
    })
}

pub async fn create(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let r: BackupRequest = call.req.parse()?;
    let mut problem = Problem::bad_request("Invalid backup request");
    if r.resources.is_empty() || r.resources.len() > MAX_RESOURCES {
        problem = problem.with_error("resources", format!("name 1 to {MAX_RESOURCES} resources"));
    }
    for (i, arn) in r.resources.iter().enumerate() {
        if !is_rds_arn(arn) && !is_table_arn(arn) {
            problem = problem.with_error(
                format!("resources[{i}]"),
                "must be an RDS DB instance or cluster ARN, or a DynamoDB table ARN",
            );
        } else if r.resources[..i].contains(arn) {
            problem = problem.with_error(format!("resources[{i}]"), "named twice");
        }
    }
    let reason = r.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        problem = problem.with_error("reason", "must be 1 to 500 characters");
    }
    if !problem.errors.is_empty() {
        return Err(problem);
    }
    let payload = event(
        &r.resources,
        r.emergency,
        reason,
        &call.caller.principal,
        &call.req.request_id,
    );
    let bytes = serde_json::to_vec(&payload).map_err(|e| Problem::internal(e.to_string()))?;
    let out = deps
        .invoker
        .invoke(&deps.admin.create_snapshots_function, &bytes)
        .await
        .map_err(|e| Problem::from_port(&e))?;
    let answer: Value = serde_json::from_slice(&out.payload).unwrap_or(Value::Null);
    if out.function_error.is_some() {
        return Err(function_problem(&answer));
    }
    ApiResponse::with_status(
        202,
        json!({
            "requestId": call.req.request_id,
            "resources": r.resources,
            "emergency": r.emergency,
            "result": answer,
        }),
    )
}

/// Maps create-snapshots' `errorType` (the fixed vocabulary) to an HTTP problem. Its
/// message is shown for refusals of the input (it names the input), never for internals.
pub fn function_problem(answer: &Value) -> Problem {
    let kind = answer.get("errorType").and_then(Value::as_str).unwrap_or("");
    let message: String = answer
        .get("errorMessage")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    let mut p = match kind {
        "Invalid" => Problem::bad_request("The backup was refused").detail(message.clone()),
        "NotFound" => Problem::not_found(message.clone()),
        "Conflict" => Problem::conflict(message.clone()),
        "Retryable" => {
            let mut p = Problem::new(429, "Too many requests").detail("backups are throttled right now; retry later");
            p.retry_after = Some(30);
            p
        }
        _ => Problem::new(502, "The backup function failed"),
    };
    p.internal = Some(format!("create-snapshots answered {kind}: {message}"));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_and_table_arns_are_accepted_and_nothing_else() {
        assert!(is_rds_arn("arn:aws:rds:us-east-1:123456789012:db:orders"));
        assert!(is_table_arn(
            "arn:aws:dynamodb:us-east-1:123456789012:table/Carts_v2.prod"
        ));
        for bad in [
            "arn:aws:dynamodb:us-east-1:123456789012:table/ab",
            "arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/x",
            "arn:aws:dynamodb:us-east-1:1234:table/orders",
            "arn:aws:s3:::bucket",
            "orders",
        ] {
            assert!(!is_table_arn(bad) && !is_rds_arn(bad), "{bad}");
        }
    }
}
