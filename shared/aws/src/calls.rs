//! The SDK interceptor on every Lifeboat client: each attempt (retries and pages
//! included) is counted per `service:operation` in [`lifeboat::calls`].

use std::sync::OnceLock;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The Lambda function this process serves (`AWS_LAMBDA_FUNCTION_NAME`), if any.
fn function_name() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
        .as_deref()
}

/// The interceptor; add it to a client's config with `.interceptor(CountCalls)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountCalls;

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "LifeboatCountCalls"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg
            .load::<Metadata>()
            .map_or_else(|| "unknown".to_owned(), |m| format!("{}:{}", m.service(), m.name()));
        let first_use = lifeboat::calls::record(&op);
        // Once per operation and process: which operations a function uses, checked
        // against its role after the stack tests (infra/iam/calls.py).
        if first_use && let Some(function) = function_name() {
            tracing::info!(function, operation = %op, "aws operation");
        }
        Ok(())
    }
}
