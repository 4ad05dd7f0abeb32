//! The alert log: one item per alert sent, in a partition per UTC day, kept
//! [`ALERT_LOG_DAYS`] (TTL), read newest first by the dashboard and the digest.

use chrono::{DateTime, Utc};
use lifeboat_domain::Alert;
use lifeboat_ports::{PortError, PortResult};

use super::{DynamoDbCatalog, TTL_ATTRIBUTE, n, s, ts};
use crate::port_error;

impl DynamoDbCatalog {
    /// Writes `alert` to the day's alert log (kept [`ALERT_LOG_DAYS`]).
    pub(super) async fn put_alert_log(&self, alert: &Alert, sent_at: DateTime<Utc>) -> PortResult<()> {
        let doc = serde_json::to_string(alert).map_err(|e| PortError::Invalid(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(alert_log_pk(sent_at)))
            .item("sk", s(format!("{}#{}", ts(sent_at), alert.dedupe_key)))
            .item("sent_at", s(ts(sent_at)))
            .item("document", s(doc))
            .item(
                TTL_ATTRIBUTE,
                n((sent_at + chrono::Duration::days(ALERT_LOG_DAYS)).timestamp()),
            )
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    /// The logged alerts sent between `since` and `until`, newest first, at most `limit`.
    pub(super) async fn alert_log_page(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<(DateTime<Utc>, Alert)>> {
        let since = since.max(until - chrono::Duration::days(ALERT_LOG_DAYS));
        let mut out = Vec::new();
        // One partition per UTC day, newest day first.
        let mut day = until.date_naive();
        while day >= since.date_naive() && out.len() < limit {
            let pk = format!("ALERTLOG#{day}"); // = alert_log_pk of any instant that day
            // One page (1 MB) per day is far more than a dashboard shows.
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":from", s(ts(since)))
                .expression_attribute_values(":to", s(format!("{}~", ts(until))))
                .scan_index_forward(false)
                .limit(i32::try_from(limit - out.len()).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
            for item in page.items() {
                let sent = item
                    .get("sent_at")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                    .map(|t| t.with_timezone(&Utc));
                let alert = item
                    .get("document")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|d| serde_json::from_str::<Alert>(d).ok());
                // An unreadable entry is skipped: the log is informational.
                if let (Some(sent), Some(alert)) = (sent, alert) {
                    out.push((sent, alert));
                }
            }
            let Some(previous) = day.pred_opt() else { break };
            day = previous;
        }
        Ok(out)
    }
}

/// Days the alert log keeps an entry (its TTL).
const ALERT_LOG_DAYS: i64 = 35;

fn alert_log_pk(sent_at: DateTime<Utc>) -> String {
    format!("ALERTLOG#{}", sent_at.date_naive())
}
