//! Counting AWS calls: the adapters' SDK interceptor records each attempt (retries and
//! pages included) per `service:operation` here, and each run reports the difference in
//! its run record. A Lambda process serves one invocation at a time, so the difference is
//! that invocation's calls.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};

static CALLS: OnceLock<Mutex<BTreeMap<String, u64>>> = OnceLock::new();

fn calls() -> std::sync::MutexGuard<'static, BTreeMap<String, u64>> {
    CALLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Counts one attempt of `op` (`service:operation`); `true` the first time this process
/// makes it.
pub fn record(op: &str) -> bool {
    let mut calls = calls();
    let n = calls.entry(op.to_owned()).or_insert(0);
    *n += 1;
    *n == 1
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
