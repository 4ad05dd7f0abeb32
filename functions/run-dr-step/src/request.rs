//! What the state machine sends: the action and the execution's input.

use chrono::{DateTime, Utc};
use lifeboat::FunctionError;
use lifeboat_domain::dr::{Action, Mode};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionInput {
    pub plan: String,
    pub execution: String,
    pub mode: String,
    /// Failover and failback: the confirmation token. Who confirmed is read from the
    /// verified token, never from this input.
    #[serde(default)]
    pub token: Option<String>,
    /// Failover: when the failure happened (RFC 3339); the RPO is measured from it.
    #[serde(default)]
    pub failure_time: Option<DateTime<Utc>>,
    /// Set by a Catch: `{"Error": …, "Cause": …}`.
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    action: String,
    request: Value,
}

/// A parsed step request.
#[derive(Debug, Clone)]
pub struct StepRequest {
    pub action: Action,
    pub input: ExecutionInput,
    pub mode: Mode,
}

impl StepRequest {
    pub fn parse(payload: &Value) -> Result<Self, FunctionError> {
        let env: Envelope = serde_json::from_value(payload.clone())
            .map_err(|e| FunctionError::invalid(format!("expected {{\"action\", \"request\"}}: {e}")))?;
        let action = Action::parse(&env.action).ok_or_else(|| {
            FunctionError::invalid(format!(
                "unknown action {:.40?}; expected one of {}",
                env.action,
                Action::ALL.map(Action::as_str).join(", ")
            ))
        })?;
        let input: ExecutionInput = serde_json::from_value(env.request)
            .map_err(|e| FunctionError::invalid(format!("request: expected plan, execution and mode: {e}")))?;
        let mode = Mode::parse(&input.mode).ok_or_else(|| {
            FunctionError::invalid(format!("mode {:.20?} is not drill, failover or failback", input.mode))
        })?;
        if !lifeboat_domain::dr::execution::is_execution_name(&input.execution) {
            return Err(FunctionError::invalid(
                "execution: 1-80 letters, digits, '-' or '_' (the Step Functions execution name)",
            ));
        }
        Ok(Self { action, input, mode })
    }
}
