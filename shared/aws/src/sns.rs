//! Alerts on SNS: the message is the alert as JSON; severity, type, resource and location
//! travel as message attributes so subscribers can filter.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use super::port_error;
use lifeboat_domain::Alert;
use lifeboat_ports::{Notifier, PortError, PortResult};

#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

/// SNS subjects: ASCII, no control characters, fewer than 100 characters.
fn subject(alert: &Alert) -> String {
    let raw = format!("Lifeboat {} {}: {}", alert.severity.as_str(), alert.kind, alert.summary);
    raw.chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { ' ' })
        .take(99)
        .collect()
}

fn attribute(value: &str) -> PortResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| PortError::Invalid(e.to_string()))
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, alert: &Alert) -> PortResult<()> {
        let message = serde_json::to_string(alert).map_err(|e| PortError::Invalid(e.to_string()))?;
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(alert))
            .message(message)
            .message_attributes("severity", attribute(alert.severity.as_str())?)
            .message_attributes("event_type", attribute(alert.kind.as_str())?);
        if let Some(resource) = &alert.resource {
            req = req.message_attributes("resource", attribute(resource)?);
        }
        if let Some(location) = &alert.location {
            req = req.message_attributes("location", attribute(location.as_str())?);
        }
        req.send().await.map_err(|e| port_error("Publish", e))?;
        Ok(())
    }
}
