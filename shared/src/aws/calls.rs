//! Counting AWS calls: an SDK interceptor on every Lifeboat client counts each attempt
//! (retries and pages included) per `service:operation`, and each run reports the
//! difference in its run record. A Lambda process serves one invocation at a time, so
//! the difference is that invocation's calls.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

static CALLS: OnceLock<Mutex<BTreeMap<String, u64>>> = OnceLock::new();

fn calls() -> std::sync::MutexGuard<'static, BTreeMap<String, u64>> {
    CALLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

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
        let first_use = {
            let mut calls = calls();
            let n = calls.entry(op.clone()).or_insert(0);
            *n += 1;
            *n == 1
        };
        // Once per operation and process: which operations a function uses, checked
        // against its role after the stack tests (infra/iam/calls.py).
        if first_use && let Some(function) = function_name() {
            tracing::info!(function, operation = %op, "aws operation");
        }
        Ok(())
    }
}

/// Every call counted so far in this process.
pub fn so_far() -> BTreeMap<String, u64> {
    calls().clone()
}

/// The calls made since `before` (a value of [`so_far`]).
pub fn since(before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    so_far()
        .into_iter()
        .filter_map(|(op, n)| {
            let d = n.saturating_sub(before.get(&op).copied().unwrap_or(0));
            (d > 0).then_some((op, d))
        })
        .collect()
}
