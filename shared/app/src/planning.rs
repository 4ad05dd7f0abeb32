//! The dry run of the planner: what Lifeboat would create, copy, tier and expire right now
//! (or at a given instant), each with its reason, plus what the safety floor protects, as
//! JSON and as a readable summary. No side effects: it only reads. Tier moves are the S3
//! backup runs whose copies `tier-backups` would move to a colder class by their policy's
//! `tiers`. Served by `plan-backups` and by the admin API's `GET /plan`.

use std::collections::BTreeMap;

use crate::FunctionError;
use crate::app::{ItemFailure, Ports, plan_by_resource, protected_resources};
use crate::config::Config;
use crate::object_store::runs::kept_runs;
use chrono::{DateTime, Utc};
use lifeboat_domain::planner::{EmergencyRequest, Plan, PlanInput};
use lifeboat_domain::tiering::{DueMove, S3Class, TierSchedule, TierWait, plan_moves};
use lifeboat_domain::{Policy, PolicyName, RecoveryPointId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The class S3 backup copies are written in: `BACKUP_STORAGE_CLASS` (default STANDARD),
/// as `backup-objects` reads it.
pub fn tier_base(get: impl Fn(&str) -> Option<String>) -> Result<S3Class, String> {
    let class = get("BACKUP_STORAGE_CLASS").unwrap_or_default();
    S3Class::parse(class.trim())
        .ok_or_else(|| format!("BACKUP_STORAGE_CLASS: {class:.20?} is not an S3 storage class Lifeboat tiers"))
}

#[derive(Debug, Clone)]
pub struct Planner {
    pub ports: Ports,
    pub config: Config,
    /// The class S3 backup copies are written in (`BACKUP_STORAGE_CLASS`, default STANDARD).
    pub tier_base: S3Class,
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
    /// S3 backup runs whose copies are due a colder class, and those that wait.
    pub tiering: Tiering,
    /// Invalid policies and malformed tags, which the plan leaves out.
    pub problems: Vec<ItemFailure>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tiering {
    pub moves: Vec<TierMove>,
    pub waiting: Vec<TierWait>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierMove {
    pub recovery_point: RecoveryPointId,
    #[serde(flatten)]
    pub due: DueMove,
}

pub async fn run(deps: &Planner, request: &PlanRequest) -> Result<Report, FunctionError> {
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
    let schedules: BTreeMap<PolicyName, TierSchedule> = policies
        .iter()
        .filter(|(_, p)| !p.tiers.is_empty())
        .map(|(n, p)| (n.clone(), p.tiers.clone()))
        .collect();
    let runs = if schedules.is_empty() {
        Vec::new()
    } else {
        kept_runs(ports.catalog.as_ref()).await?
    };
    let tiers = plan_moves(&runs, &schedules, deps.tier_base, at);
    let summary = format!(
        "{}{} runs' copies to move to a colder class, {} waiting\n{}",
        plan.summary(),
        tiers.moves.len(),
        tiers.waiting.len(),
        tiers.summary()
    );
    let tiering = Tiering {
        moves: tiers
            .moves
            .into_iter()
            .map(|(rp, due)| TierMove {
                recovery_point: rp.id.clone(),
                due,
            })
            .collect(),
        waiting: tiers.waiting,
    };
    Ok(Report {
        at,
        summary,
        plan,
        tiering,
        problems,
    })
}
