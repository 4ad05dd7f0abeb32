//! The change feed on SQS: long-polled receives with an explicit visibility timeout,
//! batch deletes and releases (visibility 0), and the approximate backlog.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
    QueueAttributeName,
};
use chrono::{TimeZone, Utc};

use super::port_error;
use lifeboat_ports::changes::{BATCH, ChangeFeed, FeedMessage};
use lifeboat_ports::{PortError, PortResult};

#[derive(Debug, Clone)]
pub struct SqsChangeFeed {
    client: Client,
}

impl SqsChangeFeed {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn secs(d: Duration, max: u64) -> i32 {
    i32::try_from(d.as_secs().min(max)).unwrap_or(0)
}

fn batch_entries(receipts: &[String]) -> PortResult<()> {
    if receipts.len() > BATCH {
        return Err(PortError::Invalid(format!(
            "{} receipts in one batch; SQS takes at most {BATCH}",
            receipts.len()
        )));
    }
    Ok(())
}

/// A batch call answers 200 with per-entry failures: any failure is reported.
fn failed(op: &str, failures: &[aws_sdk_sqs::types::BatchResultErrorEntry]) -> PortResult<()> {
    match failures.first() {
        None => Ok(()),
        Some(f) => Err(PortError::Unavailable(format!(
            "{op}: {} of the batch failed, first {}: {}",
            failures.len(),
            f.code(),
            f.message().unwrap_or_default()
        ))),
    }
}

#[async_trait]
impl ChangeFeed for SqsChangeFeed {
    async fn backlog(&self, queue: &str) -> PortResult<u64> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| port_error("GetQueueAttributes", e))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn receive(&self, queue: &str, hide_for: Duration, wait: Duration) -> PortResult<Vec<FeedMessage>> {
        let out = self
            .client
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(i32::try_from(BATCH).unwrap_or(10))
            // SQS's limits: visibility up to 12 hours, a long poll up to 20 seconds.
            .visibility_timeout(secs(hide_for, 43_200))
            .wait_time_seconds(secs(wait, 20))
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| port_error("ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let sent_at = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|v| v.parse::<i64>().ok())
                    .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
                Some(FeedMessage {
                    receipt: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    sent_at,
                })
            })
            .collect())
    }

    async fn delete(&self, queue: &str, receipts: &[String]) -> PortResult<()> {
        batch_entries(receipts)?;
        if receipts.is_empty() {
            return Ok(());
        }
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .build()
                    .map_err(|e| PortError::Invalid(e.to_string()))
            })
            .collect::<PortResult<Vec<_>>>()?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| port_error("DeleteMessageBatch", e))?;
        failed("DeleteMessageBatch", out.failed())
    }

    async fn release(&self, queue: &str, receipts: &[String]) -> PortResult<()> {
        batch_entries(receipts)?;
        if receipts.is_empty() {
            return Ok(());
        }
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .visibility_timeout(0)
                    .build()
                    .map_err(|e| PortError::Invalid(e.to_string()))
            })
            .collect::<PortResult<Vec<_>>>()?;
        let out = self
            .client
            .change_message_visibility_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| port_error("ChangeMessageVisibilityBatch", e))?;
        failed("ChangeMessageVisibilityBatch", out.failed())
    }
}

/// An SQS client for the source region, counting its calls.
pub fn client(base: &aws_config::SdkConfig, region: &lifeboat_domain::Region) -> Client {
    Client::from_conf(
        aws_sdk_sqs::config::Builder::from(base)
            .region(aws_sdk_sqs::config::Region::new(region.to_string()))
            .interceptor(super::calls::CountCalls)
            .build(),
    )
}
