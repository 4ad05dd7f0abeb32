//! The change-feed port: a queue of S3 change events for one protected bucket/prefix
//! (an SQS queue fed by S3 event notifications or by EventBridge). The AWS adapter is
//! `lifeboat_aws::sqs::SqsChangeFeed`; the in-memory fake is
//! `lifeboat_testkit::changes::InMemoryChangeFeed`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::PortResult;

/// SQS answers at most ten messages per receive, and takes ten per batch call.
pub const BATCH: usize = 10;

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMessage {
    /// Deletes (or releases) this receipt of the message.
    pub receipt: String,
    pub body: String,
    /// When the queue got the message.
    pub sent_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Messages waiting in `queue` (an approximation on SQS).
    async fn backlog(&self, queue: &str) -> PortResult<u64>;
    /// Up to [`BATCH`] messages, hidden from other readers for `hide_for`; waits up to
    /// `wait` for one when the queue is empty.
    async fn receive(&self, queue: &str, hide_for: Duration, wait: Duration) -> PortResult<Vec<FeedMessage>>;
    /// Deletes received messages (at most [`BATCH`] receipts).
    async fn delete(&self, queue: &str, receipts: &[String]) -> PortResult<()>;
    /// Makes received messages visible again at once (at most [`BATCH`] receipts).
    async fn release(&self, queue: &str, receipts: &[String]) -> PortResult<()>;
}

/// Checks a queue URL from a request: `http(s)://host/account/name`, nothing else.
pub fn check_queue_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("changeQueue {url:.80?} is not an http(s) SQS queue URL"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let ok = parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts[1].bytes().all(|b| b.is_ascii_digit())
        && (1..=80).contains(&parts[2].len())
        && parts[2]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "changeQueue {url:.80?} is not a queue URL (expected https://sqs.<region>.amazonaws.com/<account>/<name>)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls() {
        assert!(check_queue_url("https://sqs.us-east-1.amazonaws.com/123456789012/lifeboat-changes-photos").is_ok());
        assert!(check_queue_url("http://localhost:5000/123456789012/q.fifo").is_ok());
        for bad in [
            "sqs://x/1/q",
            "https://sqs.us-east-1.amazonaws.com/q",
            "https://h/abc/q",
            "https://h/1/q/extra",
            "https://h/1/q?x=1",
        ] {
            assert!(check_queue_url(bad).is_err(), "{bad}");
        }
    }
}
