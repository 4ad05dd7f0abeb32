//! Counting AWS calls: the adapters' SDK interceptor records each attempt (retries and
//! pages included) per `service:operation` in the process's [`CallCounter`], and each run
//! reports the difference in its run record. A Lambda process serves one invocation at a
//! time, so the difference is that invocation's calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Calls counted per `service:operation`. Cheap to clone: clones share their counts.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

static PROCESS: OnceLock<CallCounter> = OnceLock::new();

impl CallCounter {
    /// A counter of its own, starting at zero (tests).
    pub fn new() -> Self {
        Self::default()
    }

    /// The process's counter: the one the adapters' interceptor records into.
    pub fn process() -> Self {
        PROCESS.get_or_init(Self::default).clone()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one attempt of `op` (`service:operation`); `true` the first time this
    /// counter sees it.
    pub fn record(&self, op: &str) -> bool {
        let mut calls = self.counts();
        let n = calls.entry(op.to_owned()).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Every call counted so far.
    pub fn so_far(&self) -> BTreeMap<String, u64> {
        self.counts().clone()
    }

    /// The calls made since `before` (a value of [`CallCounter::so_far`]).
    pub fn since(&self, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        self.so_far()
            .into_iter()
            .filter_map(|(op, n)| {
                let d = n.saturating_sub(before.get(&op).copied().unwrap_or(0));
                (d > 0).then_some((op, d))
            })
            .collect()
    }
}

/// Counts one attempt of `op` in the process's counter; `true` the first time this
/// process makes it.
pub fn record(op: &str) -> bool {
    CallCounter::process().record(op)
}

/// Every call counted so far in this process.
pub fn so_far() -> BTreeMap<String, u64> {
    CallCounter::process().so_far()
}

/// The calls this process made since `before` (a value of [`so_far`]).
pub fn since(before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    CallCounter::process().since(before)
}

#[cfg(test)]
mod tests {
    use super::CallCounter;

    #[test]
    fn a_counter_of_its_own_counts_apart_from_the_process() {
        let mine = CallCounter::new();
        let before = mine.so_far();
        assert!(mine.record("s3:GetObject"));
        assert!(!mine.record("s3:GetObject"));
        let since = mine.since(&before);
        assert_eq!(since.get("s3:GetObject"), Some(&2));
        assert_eq!(since.len(), 1);
        assert!(!CallCounter::process().so_far().contains_key("s3:GetObject"));
    }
}
