//! The runs of data sets (S3 prefixes and config bundles a policy names), started by the
//! same tick as database snapshots.
//!
//! A data set due in a slot gets its run started, not made here: `backup-objects` is
//! invoked asynchronously for an S3 prefix (or, for a `large` one, the S3 backup state
//! machine is started, one execution per run), `backup-config` for a bundle. The request
//! carries the slot's start as its `scheduledTime`, so the run is named by the slot, like a
//! snapshot: every tick of the slot asks for the same run, which the function answers as a
//! replay once it is recorded, resumes from its checkpoint while it is not, and leaves to
//! the invocation holding its lease while one is under way. The run's recovery point
//! appears in the catalog when the run completes.

use std::sync::Arc;

use async_trait::async_trait;
use lifeboat::app::ItemFailure;
use lifeboat_domain::data_set::{ConfigBundleSet, S3DataSet};
use lifeboat_domain::planner::CreateAction;
use lifeboat_domain::{Policy, ResourceKind};
use lifeboat_ports::lambda::{ExecutionStarter, Invocation, Invoker};
use lifeboat_ports::{PortError, PortResult};
use serde_json::{Value, json};

/// Where data-set runs are started: `BACKUP_OBJECTS_FUNCTION`,
/// `BACKUP_OBJECTS_STATE_MACHINE_ARN` and `BACKUP_CONFIG_FUNCTION` (each optional: a data
/// set whose target is not configured is reported, not backed up).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTargets {
    pub backup_objects_function: Option<String>,
    pub backup_objects_state_machine: Option<String>,
    pub backup_config_function: Option<String>,
}

impl RunTargets {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let read = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Self {
            backup_objects_function: read("BACKUP_OBJECTS_FUNCTION"),
            backup_objects_state_machine: read("BACKUP_OBJECTS_STATE_MACHINE_ARN"),
            backup_config_function: read("BACKUP_CONFIG_FUNCTION"),
        }
    }
}

/// What starts data-set runs.
#[derive(Clone)]
pub struct DataRuns {
    pub lambdas: Arc<dyn Invoker>,
    pub executions: Arc<dyn ExecutionStarter>,
    pub targets: RunTargets,
}

impl std::fmt::Debug for DataRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataRuns")
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

/// No target configured: every data set is reported as not backed up.
impl Default for DataRuns {
    fn default() -> Self {
        Self {
            lambdas: Arc::new(Unconfigured),
            executions: Arc::new(Unconfigured),
            targets: RunTargets::default(),
        }
    }
}

struct Unconfigured;

#[async_trait]
impl Invoker for Unconfigured {
    async fn invoke(&self, function: &str, _: &[u8]) -> PortResult<Invocation> {
        Err(PortError::Invalid(format!("no Lambda client to invoke {function}")))
    }

    async fn invoke_async(&self, function: &str, _: &[u8]) -> PortResult<()> {
        Err(PortError::Invalid(format!("no Lambda client to invoke {function}")))
    }
}

#[async_trait]
impl ExecutionStarter for Unconfigured {
    async fn start(&self, state_machine_arn: &str, _: &str, _: &str) -> PortResult<String> {
        Err(PortError::Invalid(format!(
            "no Step Functions client to start {state_machine_arn}"
        )))
    }
}

/// How a data set's run was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// An asynchronous invocation of the function was queued.
    Queued { function: String },
    /// An execution of the state machine was started (or was already running).
    Execution { arn: String },
    /// The run's execution exists already with another outcome (finished or failed):
    /// Step Functions keeps one execution per name.
    AlreadyRan,
}

/// Starts the run `w` names (a create of a data set).
pub async fn start(runs: &DataRuns, policy: &Policy, w: &CreateAction) -> Result<Started, ItemFailure> {
    let scheduled = w.slot.start().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let not_configured = |what: &str| ItemFailure {
        subject: w.id.to_string(),
        code: "not-configured".into(),
        message: format!("{what} is not set: the run of {} cannot be started", w.resource.id),
    };
    let gone = || ItemFailure {
        subject: w.id.to_string(),
        code: "not-in-policy".into(),
        message: format!("policy {} no longer names {}", policy.name, w.resource.id),
    };
    let port = |e: &PortError| ItemFailure::new(w.id.as_str(), e);
    match w.resource.kind {
        ResourceKind::S3Prefix => {
            let d = s3_set(policy, &w.resource.id).ok_or_else(gone)?;
            if d.large {
                let sm = runs
                    .targets
                    .backup_objects_state_machine
                    .as_deref()
                    .ok_or_else(|| not_configured("BACKUP_OBJECTS_STATE_MACHINE_ARN"))?;
                let input = json!({
                    "bucket": d.bucket, "prefix": d.prefix, "policy": policy.name.as_str(), "scheduledTime": scheduled,
                });
                match runs
                    .executions
                    .start(sm, &execution_name(&w.snapshot_name), &input.to_string())
                    .await
                {
                    Ok(arn) => Ok(Started::Execution { arn }),
                    Err(PortError::Conflict(_)) => Ok(Started::AlreadyRan),
                    Err(e) => Err(port(&e)),
                }
            } else {
                let function = runs
                    .targets
                    .backup_objects_function
                    .as_deref()
                    .ok_or_else(|| not_configured("BACKUP_OBJECTS_FUNCTION"))?;
                let mut request = json!({
                    "bucket": d.bucket, "prefix": d.prefix, "policy": policy.name.as_str(), "scheduledTime": scheduled,
                });
                if let (Some(q), Some(obj)) = (&d.change_queue, request.as_object_mut()) {
                    obj.insert("changeQueue".into(), Value::String(q.clone()));
                }
                queue(runs, function, &request).await.map_err(|e| port(&e))
            }
        }
        ResourceKind::ConfigBundle => {
            let c = config_set(policy, &w.resource.id).ok_or_else(gone)?;
            let function = runs
                .targets
                .backup_config_function
                .as_deref()
                .ok_or_else(|| not_configured("BACKUP_CONFIG_FUNCTION"))?;
            let request = json!({
                "action": "backup", "bundle": c.name, "policy": policy.name.as_str(),
                "parameters": c.parameters, "secrets": c.secrets, "scheduledTime": scheduled,
            });
            queue(runs, function, &request).await.map_err(|e| port(&e))
        }
        ResourceKind::RdsInstance | ResourceKind::AuroraCluster | ResourceKind::DynamoDbTable => Err(ItemFailure {
            subject: w.id.to_string(),
            code: "not-a-data-set".into(),
            message: format!("{} is backed up by a snapshot, not a run", w.resource.id),
        }),
    }
}

async fn queue(runs: &DataRuns, function: &str, request: &Value) -> PortResult<Started> {
    let bytes = serde_json::to_vec(request).map_err(|e| PortError::Invalid(e.to_string()))?;
    runs.lambdas.invoke_async(function, &bytes).await?;
    Ok(Started::Queued {
        function: function.to_owned(),
    })
}

fn s3_set<'a>(policy: &'a Policy, id: &str) -> Option<&'a S3DataSet> {
    policy.s3.iter().find(|d| format!("{}/{}", d.bucket, d.prefix) == id)
}

fn config_set<'a>(policy: &'a Policy, id: &str) -> Option<&'a ConfigBundleSet> {
    policy.config_bundles.iter().find(|c| c.name == id)
}

/// A Step Functions execution name for a run: the run's name when it fits the 80
/// characters allowed, else its first 63 characters and a digest of the whole.
pub fn execution_name(run: &str) -> String {
    if run.len() <= 80 {
        return run.to_owned();
    }
    let digest = lifeboat_domain::manifest::sha256_hex(run.as_bytes());
    let head: String = run.chars().take(63).collect();
    format!("{head}-{}", &digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_fit_step_functions() {
        assert_eq!(
            execution_name("lb-gold-media-x-20261207-1015"),
            "lb-gold-media-x-20261207-1015"
        );
        let long = format!("lb-gold-{}-20261207-1015", "b".repeat(90));
        let name = execution_name(&long);
        assert_eq!(name.len(), 80);
        assert_ne!(name, execution_name(&format!("{long}x")));
    }

    #[test]
    fn targets_come_from_the_environment() {
        let t = RunTargets::from_lookup(|k| (k == "BACKUP_CONFIG_FUNCTION").then(|| " lifeboat-backup-config ".into()));
        assert_eq!(t.backup_config_function.as_deref(), Some("lifeboat-backup-config"));
        assert_eq!(t.backup_objects_function, None);
    }
}
