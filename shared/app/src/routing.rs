//! One [`SnapshotStore`] over several: each resource kind goes to the adapter that backs
//! it up (RDS and Aurora to RDS snapshots, DynamoDB tables to native table backups).

use std::sync::Arc;

use async_trait::async_trait;

use lifeboat_domain::{Region, ResourceKind, ResourceRef};
use lifeboat_ports::{DiscoveredResource, PortResult, Snapshot, SnapshotStore, Tag};

/// Routes every call to the store of the resource's kind; listing resources asks both.
#[derive(Clone)]
pub struct RoutedSnapshots {
    pub databases: Arc<dyn SnapshotStore>,
    pub tables: Arc<dyn SnapshotStore>,
}

impl std::fmt::Debug for RoutedSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedSnapshots").finish_non_exhaustive()
    }
}

impl RoutedSnapshots {
    fn store(&self, kind: ResourceKind) -> &dyn SnapshotStore {
        match kind {
            ResourceKind::DynamoDbTable => self.tables.as_ref(),
            // S3 prefixes and config bundles have no snapshots: the RDS adapter refuses them.
            ResourceKind::RdsInstance
            | ResourceKind::AuroraCluster
            | ResourceKind::S3Prefix
            | ResourceKind::ConfigBundle => self.databases.as_ref(),
        }
    }
}

#[async_trait]
impl SnapshotStore for RoutedSnapshots {
    async fn resources(&self, region: &Region) -> PortResult<Vec<DiscoveredResource>> {
        let (mut databases, tables) =
            tokio::try_join!(self.databases.resources(region), self.tables.resources(region))?;
        databases.extend(tables);
        Ok(databases)
    }

    async fn create_snapshot(&self, resource: &ResourceRef, name: &str, tags: &[Tag]) -> PortResult<Snapshot> {
        self.store(resource.kind).create_snapshot(resource, name, tags).await
    }

    async fn describe_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<Option<Snapshot>> {
        self.store(kind).describe_snapshot(region, kind, name).await
    }

    async fn share_snapshot(&self, region: &Region, kind: ResourceKind, name: &str, account: &str) -> PortResult<()> {
        self.store(kind).share_snapshot(region, kind, name, account).await
    }

    async fn lifeboat_snapshots(
        &self,
        region: &Region,
        kind: ResourceKind,
        resources: &[ResourceRef],
    ) -> PortResult<Vec<(usize, Snapshot)>> {
        self.store(kind).lifeboat_snapshots(region, kind, resources).await
    }

    async fn copy_snapshot(
        &self,
        source: &Snapshot,
        destination: &Region,
        name: &str,
        kms_key_id: &str,
        tags: &[Tag],
    ) -> PortResult<Snapshot> {
        self.store(source.kind)
            .copy_snapshot(source, destination, name, kms_key_id, tags)
            .await
    }

    async fn delete_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<()> {
        self.store(kind).delete_snapshot(region, kind, name).await
    }
}
