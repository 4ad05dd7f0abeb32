//! One invocation of a function, in the same steps for every function: parse the event,
//! work out when to stop taking work (the Lambda deadline less a margin), run with the
//! invocation's run id, metrics collector and call counter, record the metrics the result
//! means, flush them once (also when the run fails), and return the result, whose
//! [`FunctionError`] Lambda reports as `errorType`.
//!
//! A function implements [`Function`] (its name, request, output, run and metrics) and its
//! `handle` is one call of [`invoke`]:
//!
//! ```ignore
//! pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
//!     invoke::<CopySnapshots>(deps, event, &StdoutSink).await
//! }
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::FunctionError;
use crate::app::{RunLog, stop_taking_work_at};
use crate::calls::CallCounter;
use crate::metrics::{Metrics, MetricsSink};

/// What a function is, for [`invoke`]: its name, what it needs, what it takes and gives,
/// how it runs and what its result means for the metrics.
pub trait Function {
    /// The function's name: its run records and the `Function` dimension of its metrics.
    const NAME: &'static str;
    /// How long before the Lambda deadline the function stops taking new work
    /// ([`Invocation::stop_at`]).
    const DEADLINE_MARGIN: Duration = Duration::from_mins(1);

    /// What the handler needs: the ports its IAM role grants and its configuration.
    type Deps: Sync;
    /// The event, parsed and checked.
    type Request: Send;
    /// What the function returns (serialized as the invocation's result).
    type Output: Send;

    /// The time the invocation's metrics are stamped with (the function's clock).
    fn now(deps: &Self::Deps) -> DateTime<Utc>;

    /// Parses and checks the event's payload. Nothing is read or written before it passes.
    fn parse(deps: &Self::Deps, payload: &Value) -> Result<Self::Request, FunctionError>;

    /// Does the work. (No `Send` bound here: a caller that names the function, like its
    /// Lambda `main`, sees whether the future is `Send`.)
    fn run(
        deps: &Self::Deps,
        request: Self::Request,
        invocation: &mut Invocation,
    ) -> impl Future<Output = Result<Self::Output, FunctionError>>;

    /// Records what the result means for the metrics (after [`Function::run`], also when
    /// it failed; `took` is the time since the invocation began). Records nothing unless
    /// the function says otherwise.
    fn record_metrics(
        deps: &Self::Deps,
        result: &Result<Self::Output, FunctionError>,
        took: Duration,
        metrics: &mut Metrics,
    ) {
        let _ = (deps, result, took, metrics);
    }
}

/// One invocation, as its run sees it: its run id (the Lambda request id), when to stop
/// taking work, its metrics collector and the counter of its AWS calls.
#[derive(Debug)]
pub struct Invocation {
    run_id: String,
    stop_at: Option<DateTime<Utc>>,
    calls: CallCounter,
    /// The invocation's metrics, flushed once when it ends.
    pub metrics: Metrics,
}

impl Invocation {
    /// An invocation of `function` with run id `run_id`, stopping at `stop_at`, counting
    /// calls in `calls`, its metrics stamped `at`.
    pub fn new(
        function: &str,
        run_id: &str,
        stop_at: Option<DateTime<Utc>>,
        calls: CallCounter,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            run_id: run_id.to_owned(),
            stop_at,
            calls,
            metrics: Metrics::new(function, run_id, at),
        }
    }

    /// The run id: the Lambda request id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Start no new work at or after this instant (`None`: no deadline known).
    pub fn stop_at(&self) -> Option<DateTime<Utc>> {
        self.stop_at
    }

    /// The counter of this invocation's AWS calls.
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    /// A run log for `function`, counting this invocation's calls.
    pub fn run_log(&self, function: &'static str, now: DateTime<Utc>) -> RunLog {
        RunLog::counting(function, &self.run_id, now, self.calls.clone())
    }
}

/// One invocation of `F`: parse → deadline → run → metrics (flushed to `sink` once, also
/// when parsing or the run fails) → the result (its error carries the `errorType`).
/// AWS calls are counted in the process's [`CallCounter`].
pub async fn invoke<F: Function>(
    deps: &F::Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<F::Output, FunctionError> {
    invoke_counting::<F>(deps, event, sink, CallCounter::process()).await
}

/// [`invoke`], counting AWS calls in `calls`.
pub async fn invoke_counting<F: Function>(
    deps: &F::Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
    calls: CallCounter,
) -> Result<F::Output, FunctionError> {
    let started = Instant::now();
    let LambdaEvent { payload, context } = event;
    let mut invocation = Invocation::new(F::NAME, &context.request_id, None, calls, F::now(deps));
    let result = match F::parse(deps, &payload) {
        Ok(request) => {
            invocation.stop_at = stop_taking_work_at(context.deadline, F::DEADLINE_MARGIN);
            // Boxed: a function's run is a large future, and every handler awaits this one.
            Box::pin(F::run(deps, request, &mut invocation)).await
        }
        Err(e) => Err(e),
    };
    F::record_metrics(deps, &result, started.elapsed(), &mut invocation.metrics);
    invocation.metrics.flush(sink);
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

    use super::*;
    use crate::ErrorType;
    use crate::metrics::{MemorySink, Metric};
    use lambda_runtime::Context;

    struct Echo;
    struct NoDeps;

    impl Function for Echo {
        const NAME: &'static str = "echo";
        type Deps = NoDeps;
        type Request = u64;
        type Output = (String, bool, u64);

        fn now(_: &NoDeps) -> DateTime<Utc> {
            "2026-11-23T18:05:00Z".parse().unwrap()
        }

        fn parse(_: &NoDeps, payload: &Value) -> Result<u64, FunctionError> {
            payload
                .get("n")
                .and_then(Value::as_u64)
                .ok_or_else(|| FunctionError::invalid("expected {\"n\": a count}"))
        }

        async fn run(_: &NoDeps, n: u64, invocation: &mut Invocation) -> Result<Self::Output, FunctionError> {
            if n == 0 {
                return Err(FunctionError::retryable("nothing to do"));
            }
            invocation.calls().record("s3:GetObject");
            let log = invocation.run_log(Self::NAME, Self::now(&NoDeps));
            Ok((log.run_id, invocation.stop_at().is_some(), n))
        }

        fn record_metrics(
            _: &NoDeps,
            result: &Result<Self::Output, FunctionError>,
            _: Duration,
            metrics: &mut Metrics,
        ) {
            match result {
                Ok((_, _, n)) => metrics.count(Metric::ObjectsCopied, *n),
                Err(e) if e.kind == ErrorType::Invalid => {}
                Err(_) => metrics.count(Metric::BackupsFailed, 1),
            }
        }
    }

    fn event(payload: Value, deadline_ms: u64) -> LambdaEvent<Value> {
        let mut context = Context::default();
        context.request_id = "req-1".into();
        context.deadline = deadline_ms;
        LambdaEvent::new(payload, context)
    }

    #[tokio::test]
    async fn an_invocation_parses_runs_records_and_flushes_once() {
        let sink = MemorySink::new();
        let calls = CallCounter::new();
        let deadline = u64::try_from((Utc::now() + chrono::Duration::minutes(15)).timestamp_millis()).unwrap();
        let out = invoke_counting::<Echo>(
            &NoDeps,
            event(serde_json::json!({"n": 3}), deadline),
            &sink,
            calls.clone(),
        )
        .await
        .unwrap();
        assert_eq!(out, ("req-1".to_owned(), true, 3));
        assert_eq!(calls.so_far().get("s3:GetObject"), Some(&1));
        let lines = sink.json();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["ObjectsCopied"], 3);
        assert_eq!(lines[0]["Function"], "echo");
        assert_eq!(lines[0]["RunId"], "req-1");
    }

    #[tokio::test]
    async fn a_bad_event_is_invalid_and_a_failed_run_is_recorded() {
        let sink = MemorySink::new();
        let err = invoke::<Echo>(&NoDeps, event(serde_json::json!({}), 0), &sink)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid);
        assert!(sink.lines().is_empty(), "nothing to record");
        let err = invoke::<Echo>(&NoDeps, event(serde_json::json!({"n": 0}), 0), &sink)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorType::Retryable);
        assert_eq!(sink.json()[0]["BackupsFailed"], 1);
    }
}
