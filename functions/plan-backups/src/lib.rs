//! `plan-backups`: a dry run of the planner. Returns what Lifeboat would create, copy,
//! tier and expire right now (or at a given instant), each with its reason, plus what the
//! safety floor protects — as JSON and as a readable summary. No side effects: it only
//! reads. Tier moves are the S3 backup runs whose copies `tier-backups` would move to a
//! colder class by their policy's `tiers` (its dry run adds counts and the cost effect).

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::StdoutSink;
use lifeboat::planning::{PlanRequest, Planner, Report, run};
use serde_json::Value;

pub const FUNCTION: &str = "plan-backups";

/// What the handler needs: the planner's ports and configuration.
pub type Deps = Planner;

/// plan-backups as one invocation: a plan request in, the plan out. It records no metrics
/// and writes no run record.
#[derive(Debug)]
pub struct PlanBackups;

impl Function for PlanBackups {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = PlanRequest;
    type Output = Report;

    fn now(deps: &Deps) -> DateTime<Utc> {
        deps.ports.clock.now()
    }

    fn parse(_: &Deps, payload: &Value) -> Result<PlanRequest, FunctionError> {
        PlanRequest::parse(payload)
    }

    async fn run(deps: &Deps, request: PlanRequest, _: &mut Invocation) -> Result<Report, FunctionError> {
        run(deps, &request).await
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    invoke::<PlanBackups>(deps, event, &StdoutSink).await
}
