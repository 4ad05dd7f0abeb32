//! [`Invoker`] and [`ExecutionStarter`] in memory: every invocation and started execution
//! is recorded (an invocation waited for answers `{}`); a failure can be scripted. Executions keep AWS's rule: a second
//! start of a name answers the same execution when the input is the same, and conflicts
//! when it is not.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use lifeboat_ports::lambda::{ExecutionStarter, Invocation, Invoker};
use lifeboat_ports::{PortError, PortResult};
use serde_json::Value;

use crate::lock;

#[derive(Debug, Default)]
pub struct RecordingLambdas {
    invoked: Mutex<Vec<(String, Value)>>,
    queued: Mutex<Vec<(String, Value)>>,
    executions: Mutex<BTreeMap<String, (String, Value)>>,
    fail_next: Mutex<Option<PortError>>,
}

impl RecordingLambdas {
    /// (function, payload) of every invocation waited for, in order.
    pub fn invoked(&self) -> Vec<(String, Value)> {
        lock(&self.invoked).clone()
    }

    /// (function, payload) of every queued invocation, in order.
    pub fn queued(&self) -> Vec<(String, Value)> {
        lock(&self.queued).clone()
    }

    /// Execution name → (state machine ARN, input) of every started execution.
    pub fn executions(&self) -> BTreeMap<String, (String, Value)> {
        lock(&self.executions).clone()
    }

    /// The next call (invocation or start) fails with `e`.
    pub fn fail_next(&self, e: PortError) {
        *lock(&self.fail_next) = Some(e);
    }

    fn failure(&self) -> PortResult<()> {
        lock(&self.fail_next).take().map_or(Ok(()), Err)
    }
}

fn json(bytes: &[u8]) -> PortResult<Value> {
    serde_json::from_slice(bytes).map_err(|e| PortError::Invalid(format!("payload is not JSON: {e}")))
}

#[async_trait]
impl Invoker for RecordingLambdas {
    async fn invoke(&self, function: &str, payload: &[u8]) -> PortResult<Invocation> {
        self.failure()?;
        let payload = json(payload)?;
        lock(&self.invoked).push((function.to_owned(), payload));
        Ok(Invocation {
            function_error: None,
            payload: b"{}".to_vec(),
        })
    }

    async fn invoke_async(&self, function: &str, payload: &[u8]) -> PortResult<()> {
        self.failure()?;
        let payload = json(payload)?;
        lock(&self.queued).push((function.to_owned(), payload));
        Ok(())
    }
}

#[async_trait]
impl ExecutionStarter for RecordingLambdas {
    async fn start(&self, state_machine_arn: &str, name: &str, input: &str) -> PortResult<String> {
        self.failure()?;
        let input = json(input.as_bytes())?;
        let arn = format!(
            "{}:{name}",
            state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
        );
        let mut executions = lock(&self.executions);
        match executions.get(name) {
            Some((sm, earlier)) if sm == state_machine_arn && *earlier == input => Ok(arn),
            Some(_) => Err(PortError::Conflict(format!(
                "execution {name} exists with another input"
            ))),
            None => {
                executions.insert(name.to_owned(), (state_machine_arn.to_owned(), input));
                Ok(arn)
            }
        }
    }
}
