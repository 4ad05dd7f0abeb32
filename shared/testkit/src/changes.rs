//! An in-memory change queue with SQS's visibility semantics (hidden while received,
//! back after the timeout or a release, gone when deleted), on a manual clock of its own.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use lifeboat_ports::changes::{BATCH, ChangeFeed, FeedMessage};
use lifeboat_ports::{PortError, PortResult};

#[derive(Debug)]
struct Stored {
    id: u64,
    body: String,
    sent_at: DateTime<Utc>,
    hidden_until: Option<DateTime<Utc>>,
    /// The receipt of the latest receive; older receipts no longer delete.
    receipt: Option<String>,
    receives: u32,
}

#[derive(Debug, Default)]
struct State {
    queue: String,
    now: DateTime<Utc>,
    next: u64,
    messages: Vec<Stored>,
    receive_calls: usize,
}

/// One queue, named by its URL; calls naming another queue are `NotFound`.
#[derive(Debug)]
pub struct InMemoryChangeFeed {
    state: Mutex<State>,
}

impl InMemoryChangeFeed {
    pub fn new(queue: &str, now: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new(State {
                queue: queue.to_owned(),
                now,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn send(&self, body: &str) {
        let mut s = self.lock();
        s.next += 1;
        let (id, sent_at) = (s.next, s.now);
        s.messages.push(Stored {
            id,
            body: body.to_owned(),
            sent_at,
            hidden_until: None,
            receipt: None,
            receives: 0,
        });
    }

    /// Sends an S3 event notification (`ObjectCreated:Put`) for `key`.
    pub fn send_s3_event(&self, bucket: &str, key: &str) {
        let encoded: String = key
            .bytes()
            .map(|b| match b {
                b' ' => "+".to_owned(),
                b if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect();
        let body = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": encoded}}}]});
        self.send(&body.to_string());
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut s = self.lock();
        s.now += by;
    }

    /// Messages still in the queue (visible or not).
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn receive_calls(&self) -> usize {
        self.lock().receive_calls
    }

    fn check(s: &State, queue: &str) -> PortResult<()> {
        if s.queue == queue {
            Ok(())
        } else {
            Err(PortError::NotFound(format!("queue {queue}")))
        }
    }
}

#[async_trait]
impl ChangeFeed for InMemoryChangeFeed {
    async fn backlog(&self, queue: &str) -> PortResult<u64> {
        let s = self.lock();
        Self::check(&s, queue)?;
        let now = s.now;
        Ok(s.messages
            .iter()
            .filter(|m| m.hidden_until.is_none_or(|h| h <= now))
            .count() as u64)
    }

    async fn receive(&self, queue: &str, hide_for: Duration, _wait: Duration) -> PortResult<Vec<FeedMessage>> {
        let mut s = self.lock();
        Self::check(&s, queue)?;
        s.receive_calls += 1;
        let now = s.now;
        let until = now + chrono::Duration::from_std(hide_for).map_err(|e| PortError::Invalid(e.to_string()))?;
        let mut out = Vec::new();
        for m in &mut s.messages {
            if out.len() == BATCH {
                break;
            }
            if m.hidden_until.is_some_and(|h| h > now) {
                continue;
            }
            m.receives += 1;
            let receipt = format!("r{}-{}", m.id, m.receives);
            m.hidden_until = Some(until);
            m.receipt = Some(receipt.clone());
            out.push(FeedMessage {
                receipt,
                body: m.body.clone(),
                sent_at: Some(m.sent_at),
            });
        }
        Ok(out)
    }

    async fn delete(&self, queue: &str, receipts: &[String]) -> PortResult<()> {
        let mut s = self.lock();
        Self::check(&s, queue)?;
        s.messages
            .retain(|m| !m.receipt.as_ref().is_some_and(|r| receipts.contains(r)));
        Ok(())
    }

    async fn release(&self, queue: &str, receipts: &[String]) -> PortResult<()> {
        let mut s = self.lock();
        Self::check(&s, queue)?;
        for m in &mut s.messages {
            if m.receipt.as_ref().is_some_and(|r| receipts.contains(r)) {
                m.hidden_until = None;
            }
        }
        Ok(())
    }
}
