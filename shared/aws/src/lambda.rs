//! Lambda `Invoke` (a function of Lifeboat, or the user's validation Lambda) and Step
//! Functions `StartExecution`.

use async_trait::async_trait;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use lifeboat_ports::lambda::{ExecutionStarter, Invocation, Invoker};
use lifeboat_ports::{PortError, PortResult};

#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
}

impl LambdaInvoker {
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }
}

impl LambdaInvoker {
    async fn send(
        &self,
        function: &str,
        payload: &[u8],
        kind: InvocationType,
    ) -> PortResult<aws_sdk_lambda::operation::invoke::InvokeOutput> {
        self.client
            .invoke()
            .function_name(function)
            .invocation_type(kind)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                let message = format!("Invoke {function}: {}", aws_sdk_lambda::error::DisplayErrorContext(&e));
                match e.code() {
                    Some("TooManyRequestsException" | "EC2ThrottledException") => PortError::Throttled(message),
                    Some("ResourceNotFoundException") => PortError::NotFound(message),
                    Some("AccessDeniedException") => PortError::InvalidState(message),
                    // ResourceConflict / ResourceNotReady (an update in progress) and the rest.
                    _ => PortError::Unavailable(message),
                }
            })
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke(&self, function: &str, payload: &[u8]) -> PortResult<Invocation> {
        let out = self.send(function, payload, InvocationType::RequestResponse).await?;
        Ok(Invocation {
            function_error: out.function_error().map(str::to_owned),
            payload: out.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default(),
        })
    }

    async fn invoke_async(&self, function: &str, payload: &[u8]) -> PortResult<()> {
        self.send(function, payload, InvocationType::Event).await.map(|_| ())
    }
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
