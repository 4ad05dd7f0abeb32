//! Raising alerts exactly once per thing alerted about.
//!
//! A marker in the catalog is claimed before publishing and confirmed after. A replay
//! finds the confirmed marker and sends nothing; a crash between claim and publish leaves
//! an unconfirmed claim that a later run re-claims once it is stale, so no alert is lost.
//!
//! Optionally ([`Alerter::with_window`]), the same kind of alert about the same resource
//! and location is sent at most once per sliding window, whatever its dedupe key: a
//! window marker is claimed and deliberately left unconfirmed, so it becomes claimable
//! again exactly when it is older than the window. An alert suppressed this way is
//! marked handled (a replay does not send it later) and counted in the logs.

use std::sync::Arc;

use chrono::Duration;

use lifeboat_domain::Alert;
use lifeboat_ports::{Catalog, Clock, Notifier, PortResult};

/// An unconfirmed claim older than this is considered abandoned.
const STALE_CLAIM: Duration = Duration::minutes(5);

#[derive(Clone)]
pub struct Alerter {
    catalog: Arc<dyn Catalog>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    window: Option<Duration>,
}

/// The longest deduplication window: markers live 35 days in the catalog.
pub const MAX_DEDUPE_WINDOW: Duration = Duration::days(30);

/// Alert deduplication settings, from a lookup (the environment in production).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DedupeConfig {
    /// `ALERT_DEDUPE_WINDOW` (e.g. `1h`, `30m`; `0` or absent: off).
    pub window: Option<Duration>,
}

impl DedupeConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let Some(raw) = get("ALERT_DEDUPE_WINDOW").filter(|s| !s.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let raw = raw.trim();
        if raw == "0" {
            return Ok(Self::default());
        }
        let d = humantime::parse_duration(raw)
            .map_err(|e| format!("ALERT_DEDUPE_WINDOW: {raw:.40?} is not a duration like 1h: {e}"))?;
        let d = Duration::from_std(d).map_err(|_| format!("ALERT_DEDUPE_WINDOW: {raw:.40?} is too long"))?;
        if d > MAX_DEDUPE_WINDOW {
            return Err(format!("ALERT_DEDUPE_WINDOW: {raw:.40?} is longer than 30 days"));
        }
        Ok(Self {
            window: (d > Duration::zero()).then_some(d),
        })
    }
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
            window: None,
        }
    }

    /// Sends the same kind of alert about the same resource and location at most once per
    /// `window` (sliding). Alerts without a resource are not windowed. `None` or a zero
    /// window: exact-event deduplication only (the default).
    #[must_use]
    pub fn with_window(mut self, window: Option<Duration>) -> Self {
        self.window = window.filter(|w| *w > Duration::zero());
        self
    }

    fn window_key(alert: &Alert) -> Option<String> {
        let resource = alert.resource.as_deref()?;
        let location = alert.location.as_ref().map_or("-", |l| l.as_str());
        Some(format!("ALERTWIN#{}#{resource}#{location}", alert.kind))
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
        let window_key = self.window.and(Self::window_key(&alert));
        if let (Some(window), Some(wkey)) = (self.window, &window_key) {
            let claimed = match self.catalog.claim_marker(wkey, now, now - window).await {
                Ok(c) => c,
                Err(e) => {
                    self.release(&key).await;
                    return Err(e);
                }
            };
            if !claimed {
                tracing::info!(dedupe_key = %alert.dedupe_key, window_key = %wkey, "alert suppressed: the same alert was sent within the window");
                self.catalog.confirm_marker(&key).await?;
                return Ok(false);
            }
        }
        alert.run_id = run_id.to_owned();
        if let Err(e) = self.notifier.publish(&alert).await {
            // Let the next run try again rather than lose the alert.
            self.release(&key).await;
            if let Some(wkey) = &window_key {
                self.release(wkey).await;
            }
            return Err(e);
        }
        tracing::warn!(alert_type = %alert.kind, severity = alert.severity.as_str(), summary = %alert.summary, "alert raised");
        self.catalog.confirm_marker(&key).await?;
        // The log feeds the dashboard and GET /alerts; the alert itself is out already.
        if let Err(e) = self.catalog.log_alert(&alert, now).await {
            tracing::warn!(error = %e, "could not add the alert to the alert log");
        }
        Ok(true)
    }

    async fn release(&self, key: &str) {
        if let Err(release) = self.catalog.release_marker(key).await {
            tracing::warn!(error = %release, "could not release alert marker; it will go stale");
        }
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
