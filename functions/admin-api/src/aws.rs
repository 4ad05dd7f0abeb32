//! The admin API's own AWS adapters: invoking create-snapshots, and the signing key.

use async_trait::async_trait;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use lifeboat::confirm::SigningKey;
use lifeboat::ports::{PortError, PortResult};
use tokio::sync::OnceCell;

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

#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
}

impl LambdaInvoker {
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke(&self, function: &str, payload: &[u8]) -> PortResult<Invocation> {
        let out = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                let message = format!("Invoke {function}: {}", aws_sdk_lambda::error::DisplayErrorContext(&e));
                match e.code() {
                    Some("TooManyRequestsException" | "EC2ThrottledException") => PortError::Throttled(message),
                    Some("ResourceNotFoundException") => PortError::NotFound(message),
                    // ResourceConflict / ResourceNotReady (an update in progress) and the rest.
                    _ => PortError::Unavailable(message),
                }
            })?;
        Ok(Invocation {
            function_error: out.function_error().map(str::to_owned),
            payload: out.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default(),
        })
    }
}

/// Starts executions of a state machine.
#[async_trait]
pub trait ExecutionStarter: Send + Sync {
    /// Starts `name` with `input` (JSON); returns the execution ARN. `Conflict` when an
    /// execution of that name exists with another input.
    async fn start(&self, state_machine_arn: &str, name: &str, input: &str) -> PortResult<String>;
}

#[derive(Debug, Clone)]
pub struct SfnExecutions {
    client: aws_sdk_sfn::Client,
}

impl SfnExecutions {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ExecutionStarter for SfnExecutions {
    async fn start(&self, state_machine_arn: &str, name: &str, input: &str) -> PortResult<String> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(|e| {
                let message = format!(
                    "StartExecution {name}: {}: {}",
                    e.code().unwrap_or("error"),
                    e.message().unwrap_or("no message")
                );
                match e.code() {
                    Some("ExecutionAlreadyExists") => PortError::Conflict(message),
                    Some("StateMachineDoesNotExist") => PortError::NotFound(message),
                    Some("ThrottlingException" | "ExecutionLimitExceeded") => PortError::Throttled(message),
                    Some("InvalidName" | "InvalidExecutionInput" | "InvalidArn") => PortError::Invalid(message),
                    _ => PortError::Unavailable(message),
                }
            })?;
        Ok(out.execution_arn().to_owned())
    }
}

/// Where the confirmation-token signing key comes from.
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn key(&self) -> PortResult<SigningKey>;
}

/// A fixed key (tests).
#[derive(Debug, Clone)]
pub struct StaticKey(pub SigningKey);

#[async_trait]
impl KeySource for StaticKey {
    async fn key(&self) -> PortResult<SigningKey> {
        Ok(self.0.clone())
    }
}

/// The key from Secrets Manager, read on first use and kept for the life of the process
/// (a failed read is retried on the next request).
#[derive(Debug)]
pub struct SecretsManagerKey {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    cached: OnceCell<SigningKey>,
}

impl SecretsManagerKey {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            cached: OnceCell::new(),
        }
    }
}

#[async_trait]
impl KeySource for SecretsManagerKey {
    async fn key(&self) -> PortResult<SigningKey> {
        self.cached
            .get_or_try_init(|| lifeboat::aws::secrets::signing_key(&self.client, &self.secret_id))
            .await
            .cloned()
    }
}
