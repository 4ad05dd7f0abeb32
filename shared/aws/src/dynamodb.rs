//! The catalog in one DynamoDB table.
//!
//! | item            | pk                  | sk                      | indexes                                   |
//! |-----------------|---------------------|-------------------------|-------------------------------------------|
//! | recovery point  | `RP#<id>`           | `RP`                    | by-resource, by-status, by-location       |
//! | policy          | `POLICY`            | `<name>`                |                                           |
//! | lease           | `LEASE#<name>`      | `LEASE`                 | (TTL `expires_at`)                        |
//! | marker (alerts) | `MARKER#<key>`      | `MARKER`                | (TTL `expires_at`)                        |
//! | run             | `RUN#<function>`    | `<started>#<run id>`    | (TTL `expires_at`)                        |
//! | run action      | `RUN#<run id>`      | `ACTION#<nnnnn>`        | (TTL `expires_at`)                        |
//!
//! Index keys: `by-resource` = (`gsi1pk` `RES#<arn>`, `gsi1sk` `<created>#<id>`),
//! `by-status` = (`gsi2pk` `STATUS#<status>`, `gsi2sk` `<updated>#<id>`),
//! `by-location` = (`gsi3pk` `LOC#<region>`, `gsi3sk` `<created>#<id>`: a region's points in
//! time order, read by `created_since`). The same schema is declared in template.yaml
//! (`CatalogTable`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use chrono::{DateTime, SecondsFormat, Utc};

use super::port_error;
use lifeboat_domain::{Alert, Policy, PolicyProblems, RecoveryPoint, RecoveryPointId, Region, Status};
use lifeboat_ports::{Catalog, PolicyVersion, PortError, PortResult, RunRecord};

pub const INDEX_BY_RESOURCE: &str = "by-resource";
pub const INDEX_BY_STATUS: &str = "by-status";
pub const INDEX_BY_LOCATION: &str = "by-location";
const TTL_ATTRIBUTE: &str = "expires_at";
const MARKER_TTL_DAYS: i64 = 35;
const RUN_TTL_DAYS: i64 = 90;
const MAX_BATCH_ROUNDS: u32 = 8;

mod alert_log;
mod schema;

#[derive(Debug, Clone)]
pub struct DynamoDbCatalog {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Writes the `document` of item (`pk`, `sk`) only if the stored one is still `expected`
/// (`None`: only if the item does not exist), in one conditional write; `Conflict`
/// otherwise.
pub(crate) async fn replace_document(
    client: &Client,
    table: &str,
    pk: &str,
    sk: &str,
    document: String,
    expected: Option<&str>,
) -> PortResult<()> {
    let put = client
        .put_item()
        .table_name(table)
        .item("pk", s(pk))
        .item("sk", s(sk))
        .item("document", s(document));
    let put = match expected {
        None => put.condition_expression("attribute_not_exists(pk)"),
        Some(old) => put
            .condition_expression("#d = :old")
            .expression_attribute_names("#d", "document")
            .expression_attribute_values(":old", s(old)),
    };
    put.send().await.map_err(|e| port_error("PutItem", e))?;
    Ok(())
}

/// Writes item (`pk`, `sk`) with its `document` and `version`: only if it does not exist
/// (`expected_version` `None`), else only over the stored `expected_version`; `Conflict`
/// otherwise.
pub(crate) async fn put_versioned(
    client: &Client,
    table: &str,
    (pk, sk): (&str, &str),
    document: String,
    version: u64,
    expected_version: Option<u64>,
) -> PortResult<()> {
    let put = client
        .put_item()
        .table_name(table)
        .item("pk", s(pk))
        .item("sk", s(sk))
        .item("document", s(document))
        .item("version", AttributeValue::N(version.to_string()));
    let put = match expected_version {
        None => put.condition_expression("attribute_not_exists(pk)"),
        Some(v) => put
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
    };
    put.send().await.map_err(|e| port_error("PutItem", e))?;
    Ok(())
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn rp_key(id: &RecoveryPointId) -> Item {
    HashMap::from([("pk".to_owned(), s(format!("RP#{id}"))), ("sk".to_owned(), s("RP"))])
}

fn rp_item(rp: &RecoveryPoint) -> PortResult<Item> {
    let mut item: Item =
        serde_dynamo::to_item(rp).map_err(|e| PortError::Invalid(format!("cannot encode {}: {e}", rp.id)))?;
    item.extend(rp_key(&rp.id));
    item.insert("gsi1pk".into(), s(format!("RES#{}", rp.resource.arn)));
    item.insert("gsi1sk".into(), s(format!("{}#{}", ts(rp.created_at), rp.id)));
    item.insert("gsi2pk".into(), s(format!("STATUS#{}", rp.status)));
    item.insert("gsi2sk".into(), s(format!("{}#{}", ts(rp.updated_at), rp.id)));
    item.insert("gsi3pk".into(), s(format!("LOC#{}", rp.location)));
    item.insert("gsi3sk".into(), s(format!("{}#{}", ts(rp.created_at), rp.id)));
    Ok(item)
}

fn from_item(item: Item) -> PortResult<RecoveryPoint> {
    serde_dynamo::from_item(item).map_err(|e| PortError::Invalid(format!("unreadable catalog record: {e}")))
}

impl DynamoDbCatalog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Every item of `index` whose `pk_attr` is `pk` (and, with `sk_from`, whose sort key
    /// attribute is at least the value given), in sort-key order (`forward`) or reversed,
    /// at most `limit`; paged internally.
    async fn query_all(
        &self,
        index: &str,
        (pk_attr, pk): (&str, String),
        sk_from: Option<(&str, String)>,
        forward: bool,
        limit: Option<usize>,
    ) -> PortResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk_attr)
                .expression_attribute_values(":pk", s(pk.clone()));
            if let Some((sk_attr, from)) = &sk_from {
                query = query
                    .key_condition_expression("#pk = :pk AND #sk >= :from")
                    .expression_attribute_names("#sk", *sk_attr)
                    .expression_attribute_values(":from", s(from.clone()));
            }
            let page = query
                .scan_index_forward(forward)
                .set_limit(limit.map(|l| i32::try_from(l.min(1000)).unwrap_or(1000)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if limit.is_none_or(|l| items.len() < l) => start = Some(k.clone()),
                _ => break,
            }
        }
        if let Some(l) = limit {
            items.truncate(l);
        }
        Ok(items)
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> PortResult<()> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for round in 0..MAX_BATCH_ROUNDS {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| port_error("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if round + 1 == MAX_BATCH_ROUNDS {
                    return Err(PortError::Throttled(format!(
                        "BatchWriteItem: {} items still unprocessed",
                        pending.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
        }
        Ok(())
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(build_err)`
fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> PortError {
    PortError::Invalid(e.to_string())
}

#[async_trait]
impl Catalog for DynamoDbCatalog {
    async fn policies(&self) -> PortResult<Vec<Result<Policy, PolicyProblems>>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s("POLICY"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
            for item in page.items() {
                let name = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                out.push(match item.get("document").and_then(|v| v.as_s().ok()) {
                    // A broken policy is named by the key it is stored under, whatever its
                    // document says (a document that does not parse names nothing).
                    Some(doc) => Policy::from_stored(&name, doc),
                    None => Err(PolicyProblems {
                        policy: name,
                        problems: vec!["stored policy has no document".into()],
                    }),
                });
            }
            match page.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        Ok(out)
    }

    async fn put_policy(&self, policy: &Policy) -> PortResult<()> {
        let doc = serde_json::to_string(&policy.to_document()).map_err(|e| PortError::Invalid(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("POLICY"))
            .item("sk", s(policy.name.to_string()))
            .item("document", s(doc))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    async fn policy_document(&self, name: &str) -> PortResult<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("POLICY"))
            .key("sk", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        Ok(out.item.map(|item| {
            item.get("document")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        }))
    }

    async fn replace_policy(&self, policy: &Policy, expected: Option<&str>) -> PortResult<()> {
        let doc = serde_json::to_string(&policy.to_document()).map_err(|e| PortError::Invalid(e.to_string()))?;
        replace_document(
            &self.client,
            &self.table,
            "POLICY",
            &policy.name.to_string(),
            doc,
            expected,
        )
        .await
    }

    async fn keep_policy_version(&self, name: &str, version: &PolicyVersion) -> PortResult<()> {
        let at = version.replaced_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("POLICYVERSION#{name}")))
            .item("sk", s(at))
            .item("replaced_by", s(version.replaced_by.clone()))
            .item("document", s(version.document.clone()))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    async fn policy_versions(&self, name: &str, limit: usize) -> PortResult<Vec<PolicyVersion>> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("POLICYVERSION#{name}")))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| port_error("Query", e))?;
        let text = |item: &Item, k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        Ok(page
            .items()
            .iter()
            .filter_map(|item| {
                Some(PolicyVersion {
                    replaced_at: text(item, "sk").parse().ok()?,
                    replaced_by: text(item, "replaced_by"),
                    document: text(item, "document"),
                })
            })
            .collect())
    }

    async fn get(&self, id: &RecoveryPointId) -> PortResult<Option<RecoveryPoint>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(rp_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn get_many(&self, ids: &[RecoveryPointId]) -> PortResult<Vec<RecoveryPoint>> {
        let mut found = Vec::new();
        // BatchGetItem refuses a request whose keys repeat, so ask for each id once (an
        // id repeated anywhere in `ids`, not only next to itself).
        let mut seen = HashSet::new();
        let unique: Vec<&RecoveryPointId> = ids.iter().filter(|id| seen.insert(*id)).collect();
        for chunk in unique.chunks(100) {
            let mut keys: Vec<Item> = chunk.iter().map(|id| rp_key(id)).collect();
            for round in 0..MAX_BATCH_ROUNDS {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(build_err)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| port_error("BatchGetItem", e))?;
                if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                    for item in items {
                        found.push(from_item(item.clone())?);
                    }
                }
                keys = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if keys.is_empty() {
                    break;
                }
                if round + 1 == MAX_BATCH_ROUNDS {
                    return Err(PortError::Throttled(format!(
                        "BatchGetItem: {} keys still unprocessed",
                        keys.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
        }
        Ok(found)
    }

    async fn insert(&self, rp: &RecoveryPoint) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(rp_item(rp)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))
            .map_err(|e| match e {
                PortError::Conflict(_) => PortError::Conflict(format!("{} is already recorded", rp.id)),
                other => other,
            })?;
        Ok(())
    }

    async fn update(&self, rp: &RecoveryPoint, expected_version: u64) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(rp_item(rp)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))
            .map_err(|e| match e {
                PortError::Conflict(_) => {
                    PortError::Conflict(format!("{} changed since version {expected_version}", rp.id))
                }
                other => other,
            })?;
        Ok(())
    }

    async fn by_status(&self, status: Status) -> PortResult<Vec<RecoveryPoint>> {
        self.query_all(
            INDEX_BY_STATUS,
            ("gsi2pk", format!("STATUS#{status}")),
            None,
            true,
            None,
        )
        .await?
        .into_iter()
        .map(from_item)
        .collect()
    }

    async fn by_resource(&self, resource_arn: &str, limit: usize) -> PortResult<Vec<RecoveryPoint>> {
        self.query_all(
            INDEX_BY_RESOURCE,
            ("gsi1pk", format!("RES#{resource_arn}")),
            None,
            false,
            Some(limit),
        )
        .await?
        .into_iter()
        .map(from_item)
        .collect()
    }

    async fn created_since(&self, location: &Region, since: DateTime<Utc>) -> PortResult<Vec<RecoveryPoint>> {
        self.query_all(
            INDEX_BY_LOCATION,
            ("gsi3pk", format!("LOC#{location}")),
            Some(("gsi3sk", ts(since))),
            true,
            None,
        )
        .await?
        .into_iter()
        .map(from_item)
        .collect()
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("LEASE#{name}")))
            .item("sk", s("LEASE"))
            .item("holder", s(holder))
            .item(TTL_ATTRIBUTE, n(until.timestamp()))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now OR holder = :holder")
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e));
        match result {
            Ok(_) => Ok(true),
            Err(PortError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("LEASE#{name}")))
            .key("sk", s("LEASE"))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await
            .map_err(|e| port_error("DeleteItem", e));
        match result {
            Ok(_) | Err(PortError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn claim_marker(&self, key: &str, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> PortResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("MARKER#{key}")))
            .item("sk", s("MARKER"))
            .item("confirmed", AttributeValue::Bool(false))
            .item("claimed_at", n(now.timestamp_millis()))
            .item(
                TTL_ATTRIBUTE,
                n((now + chrono::Duration::days(MARKER_TTL_DAYS)).timestamp()),
            )
            .condition_expression("attribute_not_exists(pk) OR (confirmed = :false AND claimed_at < :stale)")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":stale", n(stale_before.timestamp_millis()))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e));
        match result {
            Ok(_) => Ok(true),
            Err(PortError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn confirm_marker(&self, key: &str) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("MARKER#{key}")))
            .key("sk", s("MARKER"))
            .update_expression("SET confirmed = :true")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| port_error("UpdateItem", e))?;
        Ok(())
    }

    async fn release_marker(&self, key: &str) -> PortResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("MARKER#{key}")))
            .key("sk", s("MARKER"))
            .condition_expression("confirmed = :false")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .send()
            .await
            .map_err(|e| port_error("DeleteItem", e));
        match result {
            Ok(_) | Err(PortError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn record_run(&self, run: &RunRecord) -> PortResult<()> {
        let expires = n((run.started_at + chrono::Duration::days(RUN_TTL_DAYS)).timestamp());
        let summary = serde_json::to_string(&run.summary).map_err(|e| PortError::Invalid(e.to_string()))?;
        let mut items = vec![HashMap::from([
            ("pk".to_owned(), s(format!("RUN#{}", run.function))),
            ("sk".to_owned(), s(format!("{}#{}", ts(run.started_at), run.run_id))),
            ("run_id".to_owned(), s(&run.run_id)),
            ("started_at".to_owned(), s(ts(run.started_at))),
            ("finished_at".to_owned(), s(ts(run.finished_at))),
            ("summary".to_owned(), s(summary)),
            (
                "actions".to_owned(),
                n(i64::try_from(run.actions.len()).unwrap_or(i64::MAX)),
            ),
            (TTL_ATTRIBUTE.to_owned(), expires.clone()),
        ])];
        for (i, (subject, outcome)) in run.actions.iter().enumerate() {
            items.push(HashMap::from([
                ("pk".to_owned(), s(format!("RUN#{}", run.run_id))),
                ("sk".to_owned(), s(format!("ACTION#{i:05}"))),
                ("subject".to_owned(), s(subject)),
                ("outcome".to_owned(), s(outcome)),
                (TTL_ATTRIBUTE.to_owned(), expires.clone()),
            ]));
        }
        let requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(build_err)?;
        self.batch_write(requests).await
    }

    async fn log_alert(&self, alert: &Alert, sent_at: DateTime<Utc>) -> PortResult<()> {
        self.put_alert_log(alert, sent_at).await
    }

    async fn recent_alerts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<(DateTime<Utc>, Alert)>> {
        self.alert_log_page(since, until, limit).await
    }
}
