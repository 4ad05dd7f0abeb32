//! Disaster recovery: plans as data ([`plan`]), the execution model with measured RTO and
//! RPO ([`execution`]), their store in the catalog table ([`store`]), the ports a DR
//! execution talks to ([`ports`]) and their AWS adapters ([`aws`]). The state machine
//! (`infra/state-machines/dr.asl.json`) drives the steps through `run-dr-step`.

pub mod aws;
pub mod execution;
pub mod plan;
pub mod ports;
pub mod store;
pub mod switch_scope;
pub mod table_digest;

pub use execution::{Action, DrExecution, ExecStatus, Mode, Phase, Source, Undo};
pub use plan::{DrPlan, DrPlanProblems};
pub use store::{DrStore, DynamoDbDrStore, Site};
pub use switch_scope::SwitchScope;

/// The catalog lease that lets one execution of `plan` run at a time.
pub fn lease_name(plan: &str) -> String {
    format!("DR#{plan}")
}
