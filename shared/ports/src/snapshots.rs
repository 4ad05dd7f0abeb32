//! Snapshots of protected resources and the resources themselves.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeboat_domain::{Region, ResourceKind, ResourceRef, Status};
use serde::{Deserialize, Serialize};

use crate::{PortResult, Tag};

/// A resource found in AWS with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredResource {
    pub resource: ResourceRef,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    Creating,
    Available,
    Failed,
    /// Anything else AWS reports (e.g. `copying`, `deleting`), kept verbatim.
    Other(String),
}

impl SnapshotStatus {
    pub fn from_aws(s: &str) -> Self {
        match s {
            "creating" | "pending" | "copying" => Self::Creating,
            "available" => Self::Available,
            "failed" | "error" | "incompatible-restore" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The catalog state of a recovery point whose snapshot AWS reports in this state.
    pub fn recovery_status(&self) -> Status {
        match self {
            Self::Available => Status::Available,
            Self::Failed => Status::Failed,
            Self::Creating | Self::Other(_) => Status::Pending,
        }
    }
}

/// A snapshot as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub kind: ResourceKind,
    pub region: Region,
    pub name: String,
    pub arn: Option<String>,
    pub status: SnapshotStatus,
    pub created_at: Option<DateTime<Utc>>,
    pub kms_key_id: Option<String>,
    pub tags: Vec<Tag>,
    /// What it holds, in bytes, as far as AWS says: a DB snapshot's allocated storage (an
    /// upper bound: RDS snapshots are incremental), a DynamoDB backup's size.
    pub size_bytes: Option<u64>,
}

/// `resources` of `kind` in `region`, by identifier, to their index in `resources`: how a
/// [`SnapshotStore::lifeboat_snapshots`] listing names the resource each snapshot is of.
pub fn index_by_id<'a>(
    resources: &'a [ResourceRef],
    region: &Region,
    kind: ResourceKind,
) -> std::collections::HashMap<&'a str, usize> {
    resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == kind && &r.region == region)
        .map(|(i, r)| (r.id.as_str(), i))
        .collect()
}

/// Snapshots of protected resources, in any region: RDS DB instance and Aurora cluster
/// snapshots, DynamoDB table backups (`lifeboat::routing::RoutedSnapshots` sends each kind to
/// its adapter).
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Every resource of the kinds this store handles in `region`, with its tags (for RDS:
    /// every DB instance that is not an Aurora member, and every DB cluster). Which of them
    /// a policy protects is decided by `lifeboat::app::discover`.
    async fn resources(&self, region: &Region) -> PortResult<Vec<DiscoveredResource>>;
    /// Starts a manual snapshot named `name`. `AlreadyExists` when that name is taken.
    async fn create_snapshot(&self, resource: &ResourceRef, name: &str, tags: &[Tag]) -> PortResult<Snapshot>;
    /// The snapshot called `name` in `region`, if any.
    async fn describe_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<Option<Snapshot>>;
    /// Shares a snapshot with another account (RDS: the `restore` attribute). Idempotent:
    /// sharing again with the same account is `Ok`.
    async fn share_snapshot(&self, region: &Region, kind: ResourceKind, name: &str, account: &str) -> PortResult<()>;
    /// The manual snapshots Lifeboat created of `resources` (all of `kind`, in `region`),
    /// each with the index of its resource in `resources`: one paged listing of the
    /// region's snapshots of that kind, whatever the number of resources, not a call per
    /// resource. Snapshots of other resources are left out.
    async fn lifeboat_snapshots(
        &self,
        region: &Region,
        kind: ResourceKind,
        resources: &[ResourceRef],
    ) -> PortResult<Vec<(usize, Snapshot)>>;
    /// Starts a copy of `source` into `destination`, encrypted with `kms_key_id`.
    async fn copy_snapshot(
        &self,
        source: &Snapshot,
        destination: &Region,
        name: &str,
        kms_key_id: &str,
        tags: &[Tag],
    ) -> PortResult<Snapshot>;
    /// Deletes the manual snapshot called `name` in `region`. Idempotent: a snapshot that
    /// is already gone is `Ok`. `InvalidState` when AWS refuses (e.g. still being created,
    /// or in use by a copy or an export).
    async fn delete_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<()>;
}
