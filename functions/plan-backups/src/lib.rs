//! `plan-backups`: a dry run of the planner. Returns what Lifeboat would create, copy and
//! expire right now (or at a given instant), each with its reason, plus what the safety
//! floor protects — as JSON and as a readable summary. No side effects: it only reads.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::app::{ItemFailure, Ports, plan_by_resource, protected_resources};
use lifeboat::config::Config;
use lifeboat::domain::planner::{EmergencyRequest, Plan, PlanInput};
use lifeboat::domain::{Policy, PolicyName};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Deps {
    pub ports: Ports,
    pub config: Config,
}

/// `{"at"?: RFC 3339, "policy"?: name, "force"?: bool, "emergencies"?: [{"resource_arn", "reason"}]}`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    emergencies: Vec<EmergencyInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmergencyInput {
    resource_arn: String,
    reason: String,
}

/// A validated dry-run request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRequest {
    pub at: Option<DateTime<Utc>>,
    pub policy: Option<PolicyName>,
    pub force: bool,
    pub emergencies: Vec<(String, String)>,
}

impl PlanRequest {
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        if !event.is_object() {
            return Err(FunctionError::invalid(
                "expected a plan request object like {\"policy\": \"gold\"}",
            ));
        }
        let r: Request = serde_json::from_value(event.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed plan request: {e}")))?;
        let at =
            r.at.map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|e| FunctionError::invalid(format!("at: {s:.40?} is not an RFC 3339 time ({e})")))
            })
            .transpose()?;
        let policy = r
            .policy
            .map(|p| PolicyName::parse(&p))
            .transpose()
            .map_err(|e| FunctionError::invalid(e.to_string()))?;
        let mut emergencies = Vec::new();
        for (i, e) in r.emergencies.into_iter().enumerate() {
            if !e.resource_arn.starts_with("arn:") || e.reason.trim().is_empty() {
                return Err(FunctionError::invalid(format!(
                    "emergencies[{i}]: needs a resource_arn (an ARN) and a non-empty reason"
                )));
            }
            emergencies.push((e.resource_arn, e.reason.chars().take(500).collect()));
        }
        Ok(Self {
            at,
            policy,
            force: r.force,
            emergencies,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub at: DateTime<Utc>,
    pub summary: String,
    pub plan: Plan,
    /// Invalid policies and malformed tags, which the plan leaves out.
    pub problems: Vec<ItemFailure>,
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    let request = PlanRequest::parse(&event.payload)?;
    run(deps, &request).await
}

pub async fn run(deps: &Deps, request: &PlanRequest) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let at = request.at.unwrap_or_else(|| ports.clock.now());
    let mut problems = Vec::new();
    let mut policies: BTreeMap<PolicyName, Policy> = BTreeMap::new();
    for loaded in ports.catalog.policies().await? {
        match loaded {
            Ok(p) => {
                policies.insert(p.name.clone(), p);
            }
            // Reported, not alerted: a dry run has no side effects.
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
    let (resources, tag_problems) = protected_resources(ports, &deps.config, &policies).await?;
    problems.extend(tag_problems);
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
    // Resource by resource: memory holds a few histories and the plan, not the catalog.
    let settings = PlanInput {
        policies: &policies,
        resources: &[],
        points: &[],
        emergencies: &emergencies,
        copy_budget_per_region: deps.config.copy_budget_per_region,
        dr_kms_keys: &deps.config.dr_kms_keys,
        now: at,
        force: request.force,
    };
    let plan = plan_by_resource(ports, &resources, &settings).await?;
    Ok(Report {
        at,
        summary: plan.summary(),
        plan,
        problems,
    })
}
