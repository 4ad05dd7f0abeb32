//! `GET /compliance`, `GET /metrics` and `GET /alerts`: RPO compliance and 3-2-1 per
//! resource, success rate, recovery point counts, recent failures, storage and its
//! estimated monthly cost, and the alerts sent.

use std::collections::BTreeMap;

use lifeboat::reports::{compliance_report, metrics_report, recorded_sizes};
use lifeboat_domain::{Policy, PolicyName, Status};

use crate::{ApiResponse, Call, Deps, Problem, limit, query};

/// The policies that load (invalid ones protect nothing and are alerted elsewhere).
async fn policies(deps: &Deps) -> Result<BTreeMap<PolicyName, Policy>, Problem> {
    Ok(deps
        .ports()
        .catalog
        .policies()
        .await
        .map_err(|e| Problem::from_port(&e))?
        .into_iter()
        .filter_map(Result::ok)
        .map(|p| (p.name.clone(), p))
        .collect())
}

/// `period` (default 24h, 1 hour to 90 days) for the success rate.
fn period(q: &[(&str, &str)]) -> Result<chrono::Duration, Problem> {
    let Some((_, raw)) = q.iter().find(|(k, _)| *k == "period") else {
        return Ok(chrono::Duration::hours(24));
    };
    humantime::parse_duration(raw)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .filter(|d| *d >= chrono::Duration::hours(1) && *d <= chrono::Duration::days(90))
        .ok_or_else(|| {
            Problem::bad_request("Invalid query parameters")
                .with_error("period", "a duration from 1h to 90days, e.g. 24h or 7days")
        })
}

pub async fn compliance(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    let q = query(call.req, &["period"])?;
    let period = period(&q)?;
    let policies = policies(deps).await?;
    let (resources, points, _) = lifeboat::app::gather_plan_input(deps.ports(), &deps.plan.config, &policies)
        .await
        .map_err(|e| Problem::from_port(&e))?;
    ApiResponse::ok(compliance_report(&resources, &policies, &points, deps.now(), period))
}

/// `GET /alerts?since=24h&limit=50`: the alerts sent in the period (at most 35 days, the
/// alert log's life), newest first, each with when it was sent.
pub async fn alerts(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    let q = query(call.req, &["since", "limit"])?;
    let since = match q.iter().find(|(k, _)| *k == "since") {
        None => chrono::Duration::hours(24),
        Some((_, raw)) => humantime::parse_duration(raw)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .filter(|d| *d >= chrono::Duration::minutes(1) && *d <= chrono::Duration::days(35))
            .ok_or_else(|| {
                Problem::bad_request("Invalid query parameters")
                    .with_error("since", "a duration from 1m to 35days, e.g. 24h or 7days")
            })?,
    };
    let limit = limit(&q, 50, 200)?;
    let now = deps.now();
    let from = now - since;
    let sent = deps
        .ports()
        .catalog
        .recent_alerts(from, now, limit)
        .await
        .map_err(|e| Problem::from_port(&e))?;
    let items: Vec<serde_json::Value> = sent
        .into_iter()
        .map(|(at, alert)| {
            let mut v = serde_json::to_value(&alert).unwrap_or(serde_json::Value::Null);
            v["sent_at"] = serde_json::json!(at);
            v
        })
        .collect();
    ApiResponse::ok(serde_json::json!({"since": from, "items": items}))
}

pub async fn metrics(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let policies = policies(deps).await?;
    let (_, mut points, _) = lifeboat::app::gather_plan_input(deps.ports(), &deps.plan.config, &policies)
        .await
        .map_err(|e| Problem::from_port(&e))?;
    // Failures of the last day, also of resources no policy protects any more.
    let known: std::collections::HashSet<_> = points.iter().map(|p| p.id.clone()).collect();
    let failed = deps
        .ports()
        .catalog
        .by_status(Status::Failed)
        .await
        .map_err(|e| Problem::from_port(&e))?;
    points.extend(failed.into_iter().filter(|p| !known.contains(&p.id)));
    let size_of = recorded_sizes(&points);
    ApiResponse::ok(metrics_report(&points, &size_of, &deps.admin.prices, deps.now()))
}
