//! Raising alerts exactly once per thing alerted about.
//!
//! A marker in the catalog is claimed before publishing and confirmed after. A replay
//! finds the confirmed marker and sends nothing; a crash between claim and publish leaves
//! an unconfirmed claim that a later run re-claims once it is stale, so no alert is lost.

use std::sync::Arc;

use chrono::Duration;

use crate::domain::Alert;
use crate::ports::{Catalog, Clock, Notifier, PortResult};

/// An unconfirmed claim older than this is considered abandoned.
const STALE_CLAIM: Duration = Duration::minutes(5);

#[derive(Clone)]
pub struct Alerter {
    catalog: Arc<dyn Catalog>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter").finish_non_exhaustive()
    }
}

impl Alerter {
    pub fn new(catalog: Arc<dyn Catalog>, notifier: Arc<dyn Notifier>, clock: Arc<dyn Clock>) -> Self {
        Self {
            catalog,
            notifier,
            clock,
        }
    }

    /// Publishes `alert` unless an alert with the same dedupe key was already sent.
    /// Returns whether it was published by this call.
    pub async fn raise(&self, mut alert: Alert, run_id: &str) -> PortResult<bool> {
        let now = self.clock.now();
        let key = format!("ALERT#{}", alert.dedupe_key);
        if !self.catalog.claim_marker(&key, now, now - STALE_CLAIM).await? {
            tracing::debug!(dedupe_key = %alert.dedupe_key, "alert already sent");
            return Ok(false);
        }
        alert.run_id = run_id.to_owned();
        if let Err(e) = self.notifier.publish(&alert).await {
            // Let the next run try again rather than lose the alert.
            if let Err(release) = self.catalog.release_marker(&key).await {
                tracing::warn!(error = %release, "could not release alert marker; it will go stale");
            }
            return Err(e);
        }
        tracing::warn!(alert_type = %alert.kind, severity = alert.severity.as_str(), summary = %alert.summary, "alert raised");
        self.catalog.confirm_marker(&key).await?;
        Ok(true)
    }

    /// [`Alerter::raise`] for unattended runs: a failure to publish is logged, not
    /// returned. The condition stays in the catalog and the run record, and the unconfirmed
    /// marker lets the next run send the alert.
    pub async fn raise_or_log(&self, alert: Alert, run_id: &str) {
        if let Err(e) = self.raise(alert, run_id).await {
            tracing::error!(error = %e, "could not publish alert");
        }
    }
}
