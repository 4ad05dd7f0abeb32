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

/// Invokes Lambda functions: Lifeboat's own (waiting for the answer, or queued) and the
/// user's validation functions ([`validate`]). The one port for Lambda's Invoke.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Invokes `function` and waits for its answer (`RequestResponse`). A refused call
    /// (`AccessDeniedException`) is `InvalidState`; a missing function `NotFound`.
    async fn invoke(&self, function: &str, payload: &[u8]) -> PortResult<Invocation>;
    /// Queues an invocation without waiting for it (`Event`): Lambda runs it, retries a
    /// failure and sends what still fails to the dead-letter queue.
    async fn invoke_async(&self, function: &str, payload: &[u8]) -> PortResult<()>;
}

/// The user's validation function `function_arn` given `payload`: `Ok(Ok(answer))`, or
/// `Ok(Err(why))` when the validation failed (a function error, or a function that is
/// missing or may not be invoked: a failed check, not an outage); `Err` only for an outage
/// (throttling, Lambda unavailable).
pub async fn validate(invoker: &dyn Invoker, function_arn: &str, payload: &Value) -> PortResult<Result<Value, String>> {
    let body = serde_json::to_vec(payload).map_err(|e| crate::PortError::Invalid(e.to_string()))?;
    match invoker.invoke(function_arn, &body).await {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.payload);
            if out.function_error.is_some() {
                return Ok(Err(text.chars().take(500).collect()));
            }
            Ok(Ok(serde_json::from_str(&text).unwrap_or(Value::Null)))
        }
        Err(e @ (crate::PortError::NotFound(_) | crate::PortError::InvalidState(_))) => {
            Ok(Err(format!("cannot invoke {function_arn}: {e}")))
        }
        Err(e) => Err(e),
    }
}

/// Starts executions of a state machine.
#[async_trait]
pub trait ExecutionStarter: Send + Sync {
    /// Starts `name` with `input` (JSON); returns the execution ARN. `Conflict` when an
    /// execution of that name exists with another input.
    async fn start(&self, state_machine_arn: &str, name: &str, input: &str) -> PortResult<String>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::PortError;

    /// Answers every invocation with `answer`.
    struct Answer(fn() -> PortResult<Invocation>);

    #[async_trait]
    impl Invoker for Answer {
        async fn invoke(&self, _: &str, _: &[u8]) -> PortResult<Invocation> {
            (self.0)()
        }

        async fn invoke_async(&self, _: &str, _: &[u8]) -> PortResult<()> {
            Ok(())
        }
    }

    async fn verdict(answer: fn() -> PortResult<Invocation>) -> PortResult<Result<Value, String>> {
        validate(
            &Answer(answer),
            "arn:aws:lambda:us-east-1:1:function:v",
            &serde_json::json!({"x": 1}),
        )
        .await
    }

    #[tokio::test]
    async fn a_validation_fails_on_a_function_error_or_a_function_it_may_not_call_and_errs_on_an_outage() {
        let ok = verdict(|| {
            Ok(Invocation {
                function_error: None,
                payload: br#"{"ok": true}"#.to_vec(),
            })
        })
        .await;
        assert_eq!(ok.unwrap().unwrap()["ok"], true);
        let failed = verdict(|| {
            Ok(Invocation {
                function_error: Some("Unhandled".into()),
                payload: b"boom".to_vec(),
            })
        })
        .await;
        assert_eq!(failed.unwrap().unwrap_err(), "boom");
        for refused in [
            || Err(PortError::NotFound("no such function".into())),
            || Err(PortError::InvalidState("AccessDeniedException".into())),
        ] {
            assert!(verdict(refused).await.unwrap().is_err());
        }
        assert!(verdict(|| Err(PortError::Throttled("rate".into()))).await.is_err());
    }
}
