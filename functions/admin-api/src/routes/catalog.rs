//! `GET /resources`, `GET /recovery-points`, `GET /recovery-points/{id+}`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use lifeboat_domain::{RecoveryPoint, RecoveryPointId, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{ApiResponse, Call, Deps, Problem, hex, limit, query};

/// Recovery points read per resource when filtering by resource.
const MAX_PER_RESOURCE: usize = 5_000;
/// The storage tier of every recovery point the catalog holds today: RDS snapshots live
/// in RDS's snapshot storage. Archive tiers (snapshot exports in S3 Glacier) report `archive`.
pub const SNAPSHOT_TIER: &str = "standard";
const TIERS: [&str; 2] = ["standard", "archive"];

pub async fn list_resources(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let config = &deps.plan.config;
    let ports = deps.ports();
    // Invalid policies are alerted by the scheduled runs; here they protect nothing.
    let policies = ports
        .catalog
        .policies()
        .await
        .map_err(|e| Problem::from_port(&e))?
        .into_iter()
        .filter_map(Result::ok)
        .map(|p| (p.name.clone(), p))
        .collect();
    let found = lifeboat::app::discover(ports, config, &policies)
        .await
        .map_err(|e| Problem::from_port(&e))?;
    let item = |r: &lifeboat_domain::ResourceRef, policy: &str, valid: bool| {
        json!({
            "arn": r.arn,
            "id": r.id,
            "kind": r.kind.to_string(),
            "region": r.region.as_str(),
            "policy": policy,
            "policyValid": valid,
        })
    };
    let mut items: Vec<(String, Value)> = found
        .protected
        .iter()
        .map(|p| (p.resource.arn.clone(), item(&p.resource, p.policy.as_str(), true)))
        .chain(
            found
                .unknown_policy
                .iter()
                .map(|(r, tag)| (r.arn.clone(), item(r, tag, false))),
        )
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let problems: Vec<Value> = found
        .problems
        .iter()
        .map(|p| json!({"subject": p.subject, "code": p.code, "message": p.message}))
        .collect();
    ApiResponse::ok(json!({ "items": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "problems": problems }))
}

/// The recovery point as the API shows it: the catalog record plus its tier.
pub fn view(rp: &RecoveryPoint) -> Value {
    let mut v = serde_json::to_value(rp).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("tier".into(), Value::String(SNAPSHOT_TIER.into()));
        m.insert("restorable".into(), Value::Bool(rp.is_restorable()));
    }
    v
}

#[derive(Debug, Default)]
struct Filters {
    resource: Option<String>,
    kind: Option<String>,
    region: Option<String>,
    status: Option<Status>,
    tier: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Filters {
    fn matches(&self, rp: &RecoveryPoint) -> bool {
        self.resource.as_ref().is_none_or(|r| &rp.resource.arn == r)
            && self.kind.as_ref().is_none_or(|k| &rp.resource.kind.to_string() == k)
            && self.region.as_ref().is_none_or(|r| rp.location.as_str() == r)
            && self.status.is_none_or(|s| rp.status == s)
            && self.tier.as_ref().is_none_or(|t| t == SNAPSHOT_TIER)
            && self.from.is_none_or(|f| rp.created_at >= f)
            && self.to.is_none_or(|t| rp.created_at < t)
    }

    /// A digest of the filters, bound into cursors: a cursor only continues its own listing.
    fn digest(&self) -> String {
        let s = format!("{self:?}");
        hex(&Sha256::digest(s.as_bytes()))[..16].to_owned()
    }
}

const STATUSES: [Status; 7] = [
    Status::Pending,
    Status::Available,
    Status::Copying,
    Status::Copied,
    Status::Failed,
    Status::Expiring,
    Status::Expired,
];

fn parse_filters(q: &[(&str, &str)]) -> Result<Filters, Problem> {
    let mut f = Filters::default();
    let mut problem = Problem::bad_request("Invalid query parameters");
    let time = |field: &str, v: &str, problem: &mut Problem| {
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            Some(t.with_timezone(&Utc))
        } else {
            *problem = problem
                .clone()
                .with_error(field, "must be an RFC 3339 time like 2026-11-23T00:00:00Z");
            None
        }
    };
    for (k, v) in q {
        match *k {
            "resource" => {
                if v.starts_with("arn:") {
                    f.resource = Some((*v).to_owned());
                } else {
                    problem = problem.with_error("resource", "must be a resource ARN");
                }
            }
            "type" => {
                if ["rds-instance", "aurora-cluster"].contains(v) {
                    f.kind = Some((*v).to_owned());
                } else {
                    problem = problem.with_error("type", "must be rds-instance or aurora-cluster");
                }
            }
            "region" => match lifeboat_domain::Region::parse(v) {
                Ok(r) => f.region = Some(r.to_string()),
                Err(e) => problem = problem.with_error("region", e.to_string()),
            },
            "status" => match STATUSES.iter().find(|s| s.as_str() == *v) {
                Some(s) => f.status = Some(*s),
                None => {
                    problem = problem.with_error(
                        "status",
                        "must be pending, available, copying, copied, failed, expiring or expired",
                    );
                }
            },
            "tier" => {
                if TIERS.contains(v) {
                    f.tier = Some((*v).to_owned());
                } else {
                    problem = problem.with_error("tier", "must be standard or archive");
                }
            }
            "from" => f.from = time("from", v, &mut problem),
            "to" => f.to = time("to", v, &mut problem),
            _ => {}
        }
    }
    if let (Some(a), Some(b)) = (f.from, f.to)
        && a >= b
    {
        problem = problem.with_error("to", "must be after from");
    }
    if problem.errors.is_empty() { Ok(f) } else { Err(problem) }
}

/// Where a page ends: the sort key of its last item and the filters it belongs to.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Cursor {
    c: DateTime<Utc>,
    i: String,
    f: String,
}

/// `base64url(json).checksum`: opaque to callers; a changed or truncated cursor fails the
/// checksum (400). It is an integrity check, not a secret: a forged cursor could only
/// move the position inside a listing the caller may read anyway.
fn encode_cursor(c: &Cursor) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap_or_default());
    let sum = hex(&Sha256::digest(format!("lifeboat-cursor:{body}").as_bytes()));
    format!("{body}.{}", &sum[..16])
}

fn decode_cursor(s: &str, filters: &str) -> Result<Cursor, Problem> {
    let bad = || {
        Problem::bad_request("Invalid query parameters").with_error("cursor", "is not a cursor this listing returned")
    };
    let (body, sum) = s.split_once('.').ok_or_else(bad)?;
    let expected = hex(&Sha256::digest(format!("lifeboat-cursor:{body}").as_bytes()));
    if sum != &expected[..16] {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if c.f != filters {
        return Err(Problem::bad_request("Invalid query parameters")
            .with_error("cursor", "belongs to a listing with other filters"));
    }
    Ok(c)
}

/// Newest first; ties by id. Stable across pages.
fn order(a: &RecoveryPoint, b: &RecoveryPoint) -> std::cmp::Ordering {
    b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id))
}

pub async fn list_recovery_points(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    let q = query(
        call.req,
        &[
            "resource", "type", "region", "status", "tier", "from", "to", "limit", "cursor",
        ],
    )?;
    let filters = parse_filters(&q)?;
    let limit = limit(&q, 50, 200)?;
    let digest = filters.digest();
    let after = q
        .iter()
        .find(|(k, _)| *k == "cursor")
        .map(|(_, v)| decode_cursor(v, &digest))
        .transpose()?;
    let catalog = &deps.ports().catalog;
    let port = |e: lifeboat_ports::PortError| Problem::from_port(&e);
    let mut points = if let Some(r) = &filters.resource {
        catalog.by_resource(r, MAX_PER_RESOURCE).await.map_err(port)?
    } else if let Some(s) = filters.status {
        catalog.by_status(s).await.map_err(port)?
    } else {
        let mut all = Vec::new();
        for s in STATUSES {
            all.extend(catalog.by_status(s).await.map_err(port)?);
        }
        all
    };
    points.retain(|rp| filters.matches(rp));
    points.sort_by(order);
    points.dedup_by(|a, b| a.id == b.id);
    let start = after.map_or(0, |c| {
        points
            .iter()
            .position(|rp| rp.created_at < c.c || (rp.created_at == c.c && rp.id.as_str() > c.i.as_str()))
            .unwrap_or(points.len())
    });
    let page: Vec<&RecoveryPoint> = points.iter().skip(start).take(limit).collect();
    let next = (start + page.len() < points.len())
        .then(|| page.last())
        .flatten()
        .map(|rp| {
            encode_cursor(&Cursor {
                c: rp.created_at,
                i: rp.id.to_string(),
                f: digest.clone(),
            })
        });
    ApiResponse::ok(json!({
        "items": page.iter().map(|rp| view(rp)).collect::<Vec<_>>(),
        "nextCursor": next,
    }))
}

pub async fn get_recovery_point(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let id = RecoveryPointId::parse(call.param("id"))
        .map_err(|e| Problem::bad_request("Invalid recovery point id").with_error("id", e.to_string()))?;
    match deps
        .ports()
        .catalog
        .get(&id)
        .await
        .map_err(|e| Problem::from_port(&e))?
    {
        Some(rp) => ApiResponse::ok(view(&rp)),
        None => Err(Problem::not_found(format!("no recovery point {id}"))),
    }
}
