//! The fakes of the table tests: no databases at all, and parameters, DNS records and
//! reports kept in maps the tests read.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeboat_domain::{Region, ResourceKind};
use lifeboat_ports::dr::{DbInfo, DeleteMode, DnsRecords, DrDatabases, Parameters, Quota, Reports, RestoreRequest};
use lifeboat_ports::{PortError, PortResult};
use serde_json::Value;

/// The plan names no database: the database port answers that nothing exists.
#[derive(Debug)]
pub struct NoDatabases;

#[async_trait]
impl DrDatabases for NoDatabases {
    async fn describe(&self, _: &Region, _: ResourceKind, _: &str) -> PortResult<Option<DbInfo>> {
        Ok(None)
    }
    async fn restore_from_snapshot(&self, _: &RestoreRequest<'_>, _: &str) -> PortResult<()> {
        Err(PortError::Invalid("no databases in these plans".into()))
    }
    async fn restore_to_time(&self, _: &RestoreRequest<'_>, _: &str, _: DateTime<Utc>) -> PortResult<()> {
        Err(PortError::Invalid("no databases in these plans".into()))
    }
    async fn promote_replica(&self, _: &Region, _: &str) -> PortResult<()> {
        Err(PortError::Invalid("no databases in these plans".into()))
    }
    async fn create_cluster_instance(&self, _: &lifeboat_ports::dr::WriterRequest<'_>) -> PortResult<()> {
        Err(PortError::Invalid("no databases in these plans".into()))
    }
    async fn failover_global_cluster(&self, _: &Region, _: &str, _: &str) -> PortResult<()> {
        Err(PortError::Invalid("no databases in these plans".into()))
    }
    async fn switchover_global_cluster(&self, _: &Region, _: &str, _: &str) -> PortResult<()> {
        Err(PortError::Invalid("no databases in these plans".into()))
    }
    async fn delete(&self, _: &Region, _: ResourceKind, _: &str, _: DeleteMode<'_>) -> PortResult<()> {
        Ok(())
    }
    async fn subnet_group_exists(&self, _: &Region, _: &str) -> PortResult<bool> {
        Ok(false)
    }
    async fn snapshot_facts(
        &self,
        _: &Region,
        _: ResourceKind,
        _: &str,
    ) -> PortResult<Option<lifeboat_domain::restore_test::Facts>> {
        Ok(None)
    }
    async fn quotas(&self, _: &Region) -> PortResult<Vec<Quota>> {
        Ok(Vec::new())
    }
}

#[derive(Debug, Default)]
pub struct MemParameters(pub Mutex<BTreeMap<String, String>>);

#[async_trait]
impl Parameters for MemParameters {
    async fn get(&self, _: &Region, name: &str) -> PortResult<Option<String>> {
        Ok(self.0.lock().unwrap().get(name).cloned())
    }
    async fn put(&self, _: &Region, name: &str, value: &str) -> PortResult<()> {
        self.0.lock().unwrap().insert(name.into(), value.into());
        Ok(())
    }
    async fn delete(&self, _: &Region, name: &str) -> PortResult<()> {
        self.0.lock().unwrap().remove(name);
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct MemDns(pub Mutex<BTreeMap<String, String>>);

#[async_trait]
impl DnsRecords for MemDns {
    async fn cname(&self, _: &str, name: &str) -> PortResult<Option<String>> {
        Ok(self.0.lock().unwrap().get(name).cloned())
    }
    async fn upsert_cname(&self, _: &str, name: &str, value: &str, _: i64) -> PortResult<()> {
        self.0.lock().unwrap().insert(name.into(), value.into());
        Ok(())
    }
    async fn delete_cname(&self, _: &str, name: &str, _: &str, _: i64) -> PortResult<()> {
        self.0.lock().unwrap().remove(name);
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct MemReports(pub Mutex<BTreeMap<String, Value>>);

#[async_trait]
impl Reports for MemReports {
    async fn put(&self, key: &str, body: &[u8]) -> PortResult<String> {
        self.0
            .lock()
            .unwrap()
            .insert(key.into(), serde_json::from_slice(body).unwrap());
        Ok(format!("s3://reports/{key}"))
    }
}
