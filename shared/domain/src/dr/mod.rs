//! Disaster recovery as data: plans ([`plan`]), the execution model with measured RTO and
//! RPO ([`execution`]), its phase machine ([`step`]), what a switch covers
//! ([`switch_scope`]) and table content digests ([`table_digest`]). The state machine
//! (`infra/state-machines/dr.asl.json`) drives the steps through `run-dr-step`.

pub mod execution;
pub mod plan;
pub mod step;
pub mod switch_scope;
pub mod table_digest;

pub use execution::{Action, DrExecution, ExecStatus, Mode, Phase, Refusal, Source, Undo};
pub use plan::{DrPlan, DrPlanProblems};
pub use switch_scope::SwitchScope;

/// The catalog lease that lets one execution of `plan` run at a time.
pub fn lease_name(plan: &str) -> String {
    format!("DR#{plan}")
}
