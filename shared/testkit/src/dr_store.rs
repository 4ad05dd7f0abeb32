//! [`DrStore`] in memory, with the same conditional-write contract.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use lifeboat_domain::dr::{DrExecution, DrPlan, DrPlanProblems};
use lifeboat_ports::dr::{DrStore, Site};
use lifeboat_ports::{PortError, PortResult};

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
    /// The names of the stored plans, now.
    pub fn plan_names_now(&self) -> Vec<String> {
        lock(&self.plans).keys().cloned().collect()
    }

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

    async fn plan_document(&self, name: &str) -> PortResult<Option<String>> {
        Ok(lock(&self.plans).get(name).cloned())
    }

    async fn replace_plan(&self, plan: &DrPlan, expected: Option<&str>) -> PortResult<()> {
        let mut plans = lock(&self.plans);
        if plans.get(&plan.name).map(String::as_str) != expected {
            return Err(PortError::Conflict(format!("DR plan {} changed meanwhile", plan.name)));
        }
        plans.insert(plan.name.clone(), plan.to_json());
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
