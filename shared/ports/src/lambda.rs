//! Invoking Lambda functions and starting Step Functions executions.

use async_trait::async_trait;
use serde_json::Value;

use crate::PortResult;

/// What a synchronous invocation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `Some("Unhandled")` when the function returned an error.
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
}

/// Invokes a Lambda function and waits for its answer.
#[async_trait]
pub trait Invoker: Send + Sync {
    async fn invoke(&self, function: &str, payload: &[u8]) -> PortResult<Invocation>;
}

/// Queues a Lambda invocation without waiting for it (`InvocationType::Event`): Lambda
/// runs it, retries a failure and sends what still fails to the dead-letter queue.
#[async_trait]
pub trait AsyncInvoker: Send + Sync {
    async fn invoke_async(&self, function: &str, payload: &[u8]) -> PortResult<()>;
}

/// The user's validation Lambda: `Ok(Err(text))` is a function error.
#[async_trait]
pub trait ValidationLambda: Send + Sync + std::fmt::Debug {
    async fn invoke(&self, function_arn: &str, payload: &Value) -> PortResult<Result<Value, String>>;
}

/// Starts executions of a state machine.
#[async_trait]
pub trait ExecutionStarter: Send + Sync {
    /// Starts `name` with `input` (JSON); returns the execution ARN. `Conflict` when an
    /// execution of that name exists with another input.
    async fn start(&self, state_machine_arn: &str, name: &str, input: &str) -> PortResult<String>;
}
