//! `plan-backups`: a dry run of the planner. Returns what Lifeboat would create, copy,
//! tier and expire right now (or at a given instant), each with its reason, plus what the
//! safety floor protects — as JSON and as a readable summary. No side effects: it only
//! reads. Tier moves are the S3 backup runs whose copies `tier-backups` would move to a
//! colder class by their policy's `tiers` (its dry run adds counts and the cost effect).

use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::planning::{PlanRequest, Planner, Report, run};
use serde_json::Value;

/// What the handler needs: the planner's ports and configuration.
pub type Deps = Planner;

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    let request = PlanRequest::parse(&event.payload)?;
    run(deps, &request).await
}
