//! Lambda events for tests that go through a function's `handle`: the payload a trigger
//! sends (a sample from `events/<function>/` or a JSON value shaped like one) with the
//! context Lambda gives (a request id, which is the run id, and a deadline).

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

/// A request id of its own, as Lambda gives each invocation: `req-1`, `req-2`, ...
pub fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("req-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// How long an invocation built by [`event`] has before its deadline: a Lambda's longest
/// timeout, so no test runs short of time unless it says so.
pub const TIME_LEFT: chrono::Duration = chrono::Duration::minutes(15);

/// `payload` as Lambda delivers it: a request id of its own ([`request_id`]), deadline
/// [`TIME_LEFT`] from the wall clock.
pub fn event(payload: Value) -> LambdaEvent<Value> {
    event_for(payload, &request_id())
}

/// `payload` as Lambda delivers it to invocation `request_id` (the run id), deadline
/// [`TIME_LEFT`] from the wall clock.
pub fn event_for(payload: Value, request_id: &str) -> LambdaEvent<Value> {
    event_with(payload, request_id, Some(Utc::now() + TIME_LEFT))
}

/// `payload` with request id `request_id` and `deadline` (`None`: the context carries none).
///
/// A deadline already past on the wall clock is where the function stops taking work, with
/// no margin ([`lifeboat::app::stop_before`]): a test whose fake clock runs in the past
/// dates the deadline on that clock's time line (e.g. "now" on the fake clock: past its
/// deadline from the start).
pub fn event_with(payload: Value, request_id: &str, deadline: Option<DateTime<Utc>>) -> LambdaEvent<Value> {
    let mut context = Context::default();
    request_id.clone_into(&mut context.request_id);
    context.deadline = deadline.map_or(0, |d| u64::try_from(d.timestamp_millis()).unwrap_or(0));
    LambdaEvent::new(payload, context)
}

/// `json` (an event's text) as Lambda delivers it, like [`event`].
///
/// # Panics
/// When `json` is not JSON: a test's own input is wrong.
pub fn event_json(json: &str) -> LambdaEvent<Value> {
    event(parse(json))
}

/// `json` (an event's text) as Lambda delivers it to invocation `request_id`, like
/// [`event_for`].
///
/// # Panics
/// When `json` is not JSON: a test's own input is wrong.
pub fn event_json_for(json: &str, request_id: &str) -> LambdaEvent<Value> {
    event_for(parse(json), request_id)
}

/// The sample event `events/<function>/<name>` of the repository.
///
/// # Panics
/// When the sample is missing or not JSON: a test's own input is wrong.
pub fn sample(function: &str, name: &str) -> Value {
    let path = crate::repo_root().join("events").join(function).join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text),
        Err(e) => panic!("cannot read the sample event {}: {e}", path.display()),
    }
}

/// The sample event `events/<function>/<name>` as Lambda delivers it, like [`event`].
pub fn sample_event(function: &str, name: &str) -> LambdaEvent<Value> {
    event(sample(function, name))
}

fn parse(json: &str) -> Value {
    match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => panic!("not a JSON event ({e}): {json}"),
    }
}
