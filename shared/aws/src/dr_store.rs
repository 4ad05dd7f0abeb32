//! Where DR plans, executions and the active site are kept: items of their own in the
//! catalog table.
//!
//! | item      | pk                 | sk            | attributes            |
//! |-----------|--------------------|---------------|-----------------------|
//! | plan      | `DRPLAN`           | `<plan>`      | `document`            |
//! | execution | `DREXEC#<plan>`    | `<execution>` | `document`, `version` |
//! | site      | `DRSITE#<plan>`    | `SITE`        | `document`            |
//!
//! The lease that lets one execution of a plan run at a time is the catalog's own lease
//! (`LEASE#DR#<plan>`, [`lifeboat_ports::Catalog::acquire_lease`]).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::port_error;
use lifeboat_domain::dr::{DrExecution, DrPlan, DrPlanProblems};
use lifeboat_ports::dr::{DrStore, Site};
use lifeboat_ports::{PortError, PortResult};

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn encode<T: Serialize>(v: &T) -> PortResult<String> {
    serde_json::to_string(v).map_err(|e| PortError::Invalid(format!("cannot encode: {e}")))
}

fn document<T: for<'de> Deserialize<'de>>(item: &Item) -> PortResult<T> {
    let raw = item
        .get("document")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| PortError::Invalid("DR item without a document".into()))?;
    serde_json::from_str(raw).map_err(|e| PortError::Invalid(format!("unreadable DR item: {e}")))
}

/// [`DrStore`] in the catalog table.
#[derive(Debug, Clone)]
pub struct DynamoDbDrStore {
    client: Client,
    table: String,
}

impl DynamoDbDrStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get(&self, pk: String, sk: &str) -> PortResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        Ok(out.item)
    }

    async fn put(&self, pk: String, sk: &str, doc: String) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("document", s(doc))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    /// Writes a DR execution: new (`expected_version` `None`) or over that stored version.
    async fn put_execution(&self, exec: &DrExecution, expected_version: Option<u64>) -> PortResult<()> {
        let pk = format!("DREXEC#{}", exec.plan);
        crate::dynamodb::put_versioned(
            &self.client,
            &self.table,
            (&pk, &exec.execution),
            encode(exec)?,
            exec.version,
            expected_version,
        )
        .await
    }
}

#[async_trait]
impl DrStore for DynamoDbDrStore {
    async fn put_plan(&self, plan: &DrPlan) -> PortResult<()> {
        self.put("DRPLAN".into(), &plan.name, plan.to_json()).await
    }

    async fn plan_document(&self, name: &str) -> PortResult<Option<String>> {
        let Some(item) = self.get("DRPLAN".into(), name).await? else {
            return Ok(None);
        };
        Ok(Some(
            item.get("document")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default(),
        ))
    }

    async fn replace_plan(&self, plan: &DrPlan, expected: Option<&str>) -> PortResult<()> {
        crate::dynamodb::replace_document(
            &self.client,
            &self.table,
            "DRPLAN",
            &plan.name,
            plan.to_json(),
            expected,
        )
        .await
    }

    async fn get_plan(&self, name: &str) -> PortResult<Option<Result<DrPlan, DrPlanProblems>>> {
        let Some(item) = self.get("DRPLAN".into(), name).await? else {
            return Ok(None);
        };
        let raw = item
            .get("document")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        Ok(Some(DrPlan::from_json(&raw)))
    }

    async fn plan_names(&self) -> PortResult<Vec<String>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s("DRPLAN"))
            .projection_expression("sk")
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| port_error("Query", e))?;
        let mut names: Vec<String> = items
            .iter()
            .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn get_execution(&self, plan: &str, execution: &str) -> PortResult<Option<DrExecution>> {
        self.get(format!("DREXEC#{plan}"), execution)
            .await?
            .map(|i| document(&i))
            .transpose()
    }

    async fn insert_execution(&self, exec: &DrExecution) -> PortResult<()> {
        self.put_execution(exec, None).await
    }

    async fn update_execution(&self, exec: &DrExecution, expected_version: u64) -> PortResult<()> {
        self.put_execution(exec, Some(expected_version)).await
    }

    async fn executions(&self, plan: &str) -> PortResult<Vec<DrExecution>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("DREXEC#{plan}")))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| port_error("Query", e))?;
        items.iter().map(document).collect()
    }

    async fn site(&self, plan: &str) -> PortResult<Option<Site>> {
        self.get(format!("DRSITE#{plan}"), "SITE")
            .await?
            .map(|i| document(&i))
            .transpose()
    }

    async fn put_site(&self, plan: &str, site: &Site) -> PortResult<()> {
        self.put(format!("DRSITE#{plan}"), "SITE", encode(site)?).await
    }
}
