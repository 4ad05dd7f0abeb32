//! What a DR execution talks to, by role. AWS adapters in [`super::aws`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Region, ResourceKind};
use crate::ports::{PortResult, Tag};

/// A DB instance or cluster as RDS describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbInfo {
    pub kind: ResourceKind,
    pub id: String,
    pub arn: Option<String>,
    pub status: String,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    /// Instances only.
    pub class: Option<String>,
    pub endpoint: Option<String>,
    pub tags: Vec<Tag>,
    pub latest_restorable: Option<DateTime<Utc>>,
    pub backup_retention_days: Option<i32>,
}

impl DbInfo {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }
}

/// One RDS quota: (name, used, max).
pub type Quota = (String, i64, i64);

/// A restore request: everything RDS needs, in the domain's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest<'a> {
    pub region: &'a Region,
    pub kind: ResourceKind,
    pub target: &'a str,
    /// Instances only (default: the snapshot's).
    pub class: Option<&'a str>,
    pub subnet_group: Option<&'a str>,
    pub tags: &'a [Tag],
}

#[async_trait]
pub trait DrDatabases: Send + Sync + std::fmt::Debug {
    /// `None` when it does not exist.
    async fn describe(&self, region: &Region, kind: ResourceKind, id: &str) -> PortResult<Option<DbInfo>>;
    /// Restores a DB instance or cluster from a snapshot held in `req.region`.
    async fn restore_from_snapshot(&self, req: &RestoreRequest<'_>, snapshot: &str) -> PortResult<()>;
    /// RDS point-in-time restore of instance `source` (same region) to `time`.
    async fn restore_to_time(&self, req: &RestoreRequest<'_>, source: &str, time: DateTime<Utc>) -> PortResult<()>;
    async fn promote_replica(&self, region: &Region, id: &str) -> PortResult<()>;
    /// Fails the global database over to the member cluster `target_cluster_arn`.
    async fn failover_global_cluster(&self, region: &Region, global: &str, target_cluster_arn: &str) -> PortResult<()>;
    /// Deletes without a final snapshot; a missing resource is fine.
    async fn delete(&self, region: &Region, kind: ResourceKind, id: &str) -> PortResult<()>;
    async fn subnet_group_exists(&self, region: &Region, name: &str) -> PortResult<bool>;
    async fn quotas(&self, region: &Region) -> PortResult<Vec<Quota>>;
}

/// The endpoint switch: SSM parameters.
#[async_trait]
pub trait Parameters: Send + Sync + std::fmt::Debug {
    async fn get(&self, region: &Region, name: &str) -> PortResult<Option<String>>;
    async fn put(&self, region: &Region, name: &str, value: &str) -> PortResult<()>;
    /// A missing parameter is fine.
    async fn delete(&self, region: &Region, name: &str) -> PortResult<()>;
}

/// The DNS side of the endpoint switch: CNAME records in a hosted zone.
#[async_trait]
pub trait DnsRecords: Send + Sync + std::fmt::Debug {
    /// The value of the CNAME `name` in `zone`, if there is one.
    async fn cname(&self, zone: &str, name: &str) -> PortResult<Option<String>>;
    /// Creates or replaces the CNAME `name` → `value` (UPSERT).
    async fn upsert_cname(&self, zone: &str, name: &str, value: &str, ttl: i64) -> PortResult<()>;
    /// Deletes the CNAME `name` if it has `value`; a missing record is fine.
    async fn delete_cname(&self, zone: &str, name: &str, value: &str, ttl: i64) -> PortResult<()>;
}

/// Where execution reports go (an S3 bucket).
#[async_trait]
pub trait Reports: Send + Sync + std::fmt::Debug {
    /// Writes `body` (JSON) under `key`; returns the location (`s3://bucket/key`).
    async fn put(&self, key: &str, body: &[u8]) -> PortResult<String>;
}
