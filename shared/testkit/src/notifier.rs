//! A notifier that records what it published.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use lifeboat_domain::Alert;
use lifeboat_ports::{Notifier, PortError, PortResult};

use crate::lock;

/// Records published alerts; can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    alerts: Mutex<Vec<Alert>>,
    failures: Mutex<VecDeque<PortError>>,
}

impl RecordingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        lock(&self.alerts).clone()
    }

    pub fn fail_next(&self, error: PortError) {
        lock(&self.failures).push_back(error);
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn publish(&self, alert: &Alert) -> PortResult<()> {
        if let Some(e) = lock(&self.failures).pop_front() {
            return Err(e);
        }
        lock(&self.alerts).push(alert.clone());
        Ok(())
    }
}
