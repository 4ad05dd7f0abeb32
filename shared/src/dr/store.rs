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
//! (`LEASE#DR#<plan>`, [`crate::ports::Catalog::acquire_lease`]).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::port_error;
use crate::domain::{Region, ResourceKind};
use crate::ports::{PortError, PortResult};

use super::execution::DrExecution;
use super::plan::{DrPlan, DrPlanProblems};

/// Which side serves production, and what the last failover created there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub active: ActiveSide,
    pub since: DateTime<Utc>,
    /// The execution that made this side active.
    pub execution: String,
    /// The databases serving on this side: (plan database id, kind, region, identifier).
    pub databases: Vec<SiteDb>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActiveSide {
    Source,
    Dr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDb {
    pub db: String,
    pub kind: ResourceKind,
    pub region: Region,
    pub id: String,
    /// A table's: the backup it was restored from or the import that made it (ARN), what
    /// proves it Lifeboat's when a failback tears it down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_from: Option<String>,
}

#[async_trait]
pub trait DrStore: Send + Sync + std::fmt::Debug {
    async fn put_plan(&self, plan: &DrPlan) -> PortResult<()>;
    /// The stored plan, or the problems that make it unusable.
    async fn get_plan(&self, name: &str) -> PortResult<Option<Result<DrPlan, DrPlanProblems>>>;
    /// The names of every stored plan, sorted.
    async fn plan_names(&self) -> PortResult<Vec<String>>;
    async fn get_execution(&self, plan: &str, execution: &str) -> PortResult<Option<DrExecution>>;
    /// Stores a new execution; `Conflict` if one with that name exists.
    async fn insert_execution(&self, exec: &DrExecution) -> PortResult<()>;
    /// Stores `exec` if the stored version is `expected_version` (`Conflict` otherwise).
    async fn update_execution(&self, exec: &DrExecution, expected_version: u64) -> PortResult<()>;
    async fn executions(&self, plan: &str) -> PortResult<Vec<DrExecution>>;
    async fn site(&self, plan: &str) -> PortResult<Option<Site>>;
    async fn put_site(&self, plan: &str, site: &Site) -> PortResult<()>;
}

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
}

#[async_trait]
impl DrStore for DynamoDbDrStore {
    async fn put_plan(&self, plan: &DrPlan) -> PortResult<()> {
        self.put("DRPLAN".into(), &plan.name, plan.to_json()).await
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
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("DREXEC#{}", exec.plan)))
            .item("sk", s(&exec.execution))
            .item("document", s(encode(exec)?))
            .item("version", AttributeValue::N(exec.version.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    async fn update_execution(&self, exec: &DrExecution, expected_version: u64) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("DREXEC#{}", exec.plan)))
            .item("sk", s(&exec.execution))
            .item("document", s(encode(exec)?))
            .item("version", AttributeValue::N(exec.version.to_string()))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
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

#[cfg(any(test, feature = "test-util"))]
pub mod fake {
    //! [`DrStore`] in memory, with the same conditional-write contract.

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::{DrExecution, DrPlan, DrPlanProblems, DrStore, PortError, PortResult, Site, async_trait};

    #[derive(Debug, Default)]
    pub struct InMemoryDrStore {
        plans: Mutex<BTreeMap<String, String>>,
        executions: Mutex<BTreeMap<(String, String), DrExecution>>,
        sites: Mutex<BTreeMap<String, Site>>,
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    impl InMemoryDrStore {
        /// Stores a raw plan document as is (to test how invalid stored plans are handled).
        pub fn put_raw_plan(&self, name: &str, json: &str) {
            lock(&self.plans).insert(name.to_owned(), json.to_owned());
        }
    }

    #[async_trait]
    impl DrStore for InMemoryDrStore {
        async fn put_plan(&self, plan: &DrPlan) -> PortResult<()> {
            lock(&self.plans).insert(plan.name.clone(), plan.to_json());
            Ok(())
        }

        async fn get_plan(&self, name: &str) -> PortResult<Option<Result<DrPlan, DrPlanProblems>>> {
            Ok(lock(&self.plans).get(name).map(|j| DrPlan::from_json(j)))
        }

        async fn plan_names(&self) -> PortResult<Vec<String>> {
            Ok(lock(&self.plans).keys().cloned().collect())
        }

        async fn get_execution(&self, plan: &str, execution: &str) -> PortResult<Option<DrExecution>> {
            Ok(lock(&self.executions)
                .get(&(plan.to_owned(), execution.to_owned()))
                .cloned())
        }

        async fn insert_execution(&self, exec: &DrExecution) -> PortResult<()> {
            let mut all = lock(&self.executions);
            let key = (exec.plan.clone(), exec.execution.clone());
            if all.contains_key(&key) {
                return Err(PortError::Conflict(format!("execution {} exists", exec.execution)));
            }
            all.insert(key, exec.clone());
            Ok(())
        }

        async fn update_execution(&self, exec: &DrExecution, expected_version: u64) -> PortResult<()> {
            let mut all = lock(&self.executions);
            let key = (exec.plan.clone(), exec.execution.clone());
            match all.get(&key) {
                Some(e) if e.version == expected_version => {
                    all.insert(key, exec.clone());
                    Ok(())
                }
                _ => Err(PortError::Conflict(format!("execution {} changed", exec.execution))),
            }
        }

        async fn executions(&self, plan: &str) -> PortResult<Vec<DrExecution>> {
            Ok(lock(&self.executions)
                .values()
                .filter(|e| e.plan == plan)
                .cloned()
                .collect())
        }

        async fn site(&self, plan: &str) -> PortResult<Option<Site>> {
            Ok(lock(&self.sites).get(plan).cloned())
        }

        async fn put_site(&self, plan: &str, site: &Site) -> PortResult<()> {
            lock(&self.sites).insert(plan.to_owned(), site.clone());
            Ok(())
        }
    }
}
