//! Alerts out.

use async_trait::async_trait;
use lifeboat_domain::Alert;

use crate::PortResult;

/// Publishes alerts.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, alert: &Alert) -> PortResult<()>;
}
