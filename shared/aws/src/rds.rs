//! RDS DB instance and Aurora DB cluster snapshots, in any region.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbSnapshot, Tag as RdsTag};

use super::{PerRegion, port_error, rds_client, to_chrono};
use lifeboat_domain::naming::tags;
use lifeboat_domain::{Region, ResourceKind, ResourceRef};
use lifeboat_ports::{
    DiscoveredResource, PortError, PortResult, Snapshot, SnapshotStatus, SnapshotStore, Tag, tag_value,
};

/// [`SnapshotStore`] over the RDS API. Keeps one client per region, each built once from
/// the shared SDK configuration the first time that region is used.
pub struct RdsSnapshotStore {
    clients: PerRegion<Client>,
}

impl std::fmt::Debug for RdsSnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdsSnapshotStore").finish_non_exhaustive()
    }
}

impl RdsSnapshotStore {
    pub fn new(base: SdkConfig) -> Self {
        Self {
            clients: PerRegion::new(base, rds_client),
        }
    }

    /// A store over prebuilt clients (tests with mocked clients); no other region works.
    pub fn with_clients(clients: HashMap<Region, Client>) -> Self {
        Self {
            clients: PerRegion::with_clients(clients),
        }
    }

    fn client(&self, region: &Region) -> PortResult<Client> {
        self.clients.get(region)
    }
}

pub(crate) fn rds_tags(tags: &[Tag]) -> Vec<RdsTag> {
    tags.iter()
        .map(|t| RdsTag::builder().key(&t.key).value(&t.value).build())
        .collect()
}

pub(crate) fn our_tags(tags: &[RdsTag]) -> Vec<Tag> {
    tags.iter()
        .filter_map(|t| Some(Tag::new(t.key()?, t.value().unwrap_or_default())))
        .collect()
}

fn instance_snapshot(region: &Region, s: &DbSnapshot) -> Snapshot {
    Snapshot {
        kind: ResourceKind::RdsInstance,
        region: region.clone(),
        name: s.db_snapshot_identifier().unwrap_or_default().to_owned(),
        arn: s.db_snapshot_arn().map(str::to_owned),
        status: SnapshotStatus::from_aws(s.status().unwrap_or("creating")),
        created_at: s.snapshot_create_time().and_then(to_chrono),
        kms_key_id: s.kms_key_id().map(str::to_owned),
        tags: our_tags(s.tag_list()),
        size_bytes: gib_to_bytes(s.allocated_storage()),
    }
}

/// GiB as RDS reports allocated storage, in bytes (nothing for a missing or zero size).
fn gib_to_bytes(gib: Option<i32>) -> Option<u64> {
    gib.and_then(|g| u64::try_from(g).ok())
        .filter(|g| *g > 0)
        .map(|g| g << 30)
}

fn cluster_snapshot(region: &Region, s: &DbClusterSnapshot) -> Snapshot {
    Snapshot {
        kind: ResourceKind::AuroraCluster,
        region: region.clone(),
        name: s.db_cluster_snapshot_identifier().unwrap_or_default().to_owned(),
        arn: s.db_cluster_snapshot_arn().map(str::to_owned),
        status: SnapshotStatus::from_aws(s.status().unwrap_or("creating")),
        created_at: s.snapshot_create_time().and_then(to_chrono),
        kms_key_id: s.kms_key_id().map(str::to_owned),
        tags: our_tags(s.tag_list()),
        // Aurora reports no storage of its own for a cluster (`AllocatedStorage` is a
        // placeholder) and bills its snapshots by use: the size is unknown.
        size_bytes: None,
    }
}

/// The DB instance class of `cluster`'s writer instance as RDS describes it; `None` when
/// the cluster has no writer (a restored cluster before its writer exists) or the writer
/// is gone. The one place that reads a writer's class: snapshots record it, DR and admin
/// restores give a restored cluster's writer the same.
pub(crate) async fn class_of_writer(client: &Client, cluster: &DbCluster) -> PortResult<Option<String>> {
    let Some(writer) = cluster
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .and_then(|m| m.db_instance_identifier())
    else {
        return Ok(None);
    };
    match client
        .describe_db_instances()
        .db_instance_identifier(writer)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .db_instances()
            .first()
            .and_then(|i| i.db_instance_class())
            .map(str::to_owned)),
        Err(e) => match port_error("DescribeDBInstances", e) {
            PortError::NotFound(_) => Ok(None),
            other => Err(other),
        },
    }
}

/// The class of the cluster's writer when a snapshot of it is taken; `None` when it cannot
/// be read (the snapshot is taken anyway, without it).
async fn writer_class(client: &Client, cluster: &str) -> Option<String> {
    let described = client
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .send()
        .await
        .map_err(|e| port_error("DescribeDBClusters", e));
    let found = match described {
        Ok(out) => match out.db_clusters().first() {
            Some(c) => class_of_writer(client, c).await,
            None => Ok(None),
        },
        Err(e) => Err(e),
    };
    found.unwrap_or_else(|e| {
        tracing::warn!(cluster, error = %e, "writer class not recorded");
        None
    })
}

fn missing(what: &str, name: &str) -> PortError {
    PortError::Unavailable(format!("{what} {name}: response carried no snapshot"))
}

#[async_trait]
impl SnapshotStore for RdsSnapshotStore {
    async fn resources(&self, region: &Region) -> PortResult<Vec<DiscoveredResource>> {
        let client = self.client(region)?;
        let instances: Vec<_> = client
            .describe_db_instances()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| port_error("DescribeDBInstances", e))?;
        let clusters: Vec<_> = client
            .describe_db_clusters()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| port_error("DescribeDBClusters", e))?;
        let mut found = Vec::new();
        for i in instances {
            // Members of an Aurora cluster are protected through their cluster.
            if i.db_cluster_identifier().is_some() {
                continue;
            }
            let tags = our_tags(i.tag_list());
            if let (Some(id), Some(arn)) = (i.db_instance_identifier(), i.db_instance_arn()) {
                found.push(DiscoveredResource {
                    resource: ResourceRef {
                        kind: ResourceKind::RdsInstance,
                        id: id.to_owned(),
                        arn: arn.to_owned(),
                        region: region.clone(),
                    },
                    tags,
                });
            }
        }
        for c in clusters {
            let tags = our_tags(c.tag_list());
            if let (Some(id), Some(arn)) = (c.db_cluster_identifier(), c.db_cluster_arn()) {
                found.push(DiscoveredResource {
                    resource: ResourceRef {
                        kind: ResourceKind::AuroraCluster,
                        id: id.to_owned(),
                        arn: arn.to_owned(),
                        region: region.clone(),
                    },
                    tags,
                });
            }
        }
        Ok(found)
    }

    async fn create_snapshot(&self, resource: &ResourceRef, name: &str, tags: &[Tag]) -> PortResult<Snapshot> {
        let client = self.client(&resource.region)?;
        match resource.kind {
            ResourceKind::RdsInstance => {
                let out = client
                    .create_db_snapshot()
                    .db_snapshot_identifier(name)
                    .db_instance_identifier(&resource.id)
                    .set_tags(Some(rds_tags(tags)))
                    .send()
                    .await
                    .map_err(|e| port_error("CreateDBSnapshot", e))?;
                out.db_snapshot()
                    .map(|s| instance_snapshot(&resource.region, s))
                    .ok_or_else(|| missing("CreateDBSnapshot", name))
            }
            ResourceKind::AuroraCluster => {
                // The writer's class goes with the snapshot (and its copies): a restore in
                // a region whose source is down creates its writer with it.
                let mut tags = tags.to_vec();
                let class = writer_class(&client, &resource.id).await;
                if let Some(class) = &class {
                    tags.push(Tag::new(tags::WRITER_CLASS, class));
                }
                let out = client
                    .create_db_cluster_snapshot()
                    .db_cluster_snapshot_identifier(name)
                    .db_cluster_identifier(&resource.id)
                    .set_tags(Some(rds_tags(&tags)))
                    .send()
                    .await
                    .map_err(|e| port_error("CreateDBClusterSnapshot", e))?;
                let mut snapshot = out
                    .db_cluster_snapshot()
                    .map(|s| cluster_snapshot(&resource.region, s))
                    .ok_or_else(|| missing("CreateDBClusterSnapshot", name))?;
                if let Some(class) = class
                    && tag_value(&snapshot.tags, tags::WRITER_CLASS).is_none()
                {
                    snapshot.tags.push(Tag::new(tags::WRITER_CLASS, &class));
                }
                Ok(snapshot)
            }
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
                Err(not_rds(resource.kind))
            }
        }
    }

    async fn describe_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<Option<Snapshot>> {
        let client = self.client(region)?;
        let result = match kind {
            ResourceKind::RdsInstance => client
                .describe_db_snapshots()
                .db_snapshot_identifier(name)
                .send()
                .await
                .map(|o| o.db_snapshots().first().map(|s| instance_snapshot(region, s)))
                .map_err(|e| port_error("DescribeDBSnapshots", e)),
            ResourceKind::AuroraCluster => client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(name)
                .send()
                .await
                .map(|o| o.db_cluster_snapshots().first().map(|s| cluster_snapshot(region, s)))
                .map_err(|e| port_error("DescribeDBClusterSnapshots", e)),
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => Err(not_rds(kind)),
        };
        match result {
            Err(PortError::NotFound(_)) => Ok(None),
            other => other,
        }
    }

    async fn share_snapshot(&self, region: &Region, kind: ResourceKind, name: &str, account: &str) -> PortResult<()> {
        let client = self.client(region)?;
        match kind {
            ResourceKind::RdsInstance => client
                .modify_db_snapshot_attribute()
                .db_snapshot_identifier(name)
                .attribute_name("restore")
                .values_to_add(account)
                .send()
                .await
                .map(drop)
                .map_err(|e| port_error("ModifyDBSnapshotAttribute", e)),
            ResourceKind::AuroraCluster => client
                .modify_db_cluster_snapshot_attribute()
                .db_cluster_snapshot_identifier(name)
                .attribute_name("restore")
                .values_to_add(account)
                .send()
                .await
                .map(drop)
                .map_err(|e| port_error("ModifyDBClusterSnapshotAttribute", e)),
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => Err(not_rds(kind)),
        }
    }

    async fn lifeboat_snapshots(
        &self,
        region: &Region,
        kind: ResourceKind,
        resources: &[ResourceRef],
    ) -> PortResult<Vec<(usize, Snapshot)>> {
        let client = self.client(region)?;
        // Every manual snapshot of the region, 100 per page; no identifier filter.
        let all: Vec<(Option<String>, Snapshot)> = match kind {
            ResourceKind::RdsInstance => client
                .describe_db_snapshots()
                .snapshot_type("manual")
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(|e| port_error("DescribeDBSnapshots", e))?
                .iter()
                .map(|s| {
                    (
                        s.db_instance_identifier().map(str::to_owned),
                        instance_snapshot(region, s),
                    )
                })
                .collect(),
            ResourceKind::AuroraCluster => client
                .describe_db_cluster_snapshots()
                .snapshot_type("manual")
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(|e| port_error("DescribeDBClusterSnapshots", e))?
                .iter()
                .map(|s| {
                    (
                        s.db_cluster_identifier().map(str::to_owned),
                        cluster_snapshot(region, s),
                    )
                })
                .collect(),
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
                return Err(not_rds(kind));
            }
        };
        let by_id = lifeboat_ports::snapshots::index_by_id(resources, region, kind);
        Ok(all
            .into_iter()
            .filter(|(_, s)| tag_value(&s.tags, tags::CREATED_BY) == Some(tags::CREATED_BY_VALUE))
            .filter_map(|(source, s)| Some((*by_id.get(source?.as_str())?, s)))
            .collect())
    }

    async fn copy_snapshot(
        &self,
        source: &Snapshot,
        destination: &Region,
        name: &str,
        kms_key_id: &str,
        tags: &[Tag],
    ) -> PortResult<Snapshot> {
        let client = self.client(destination)?;
        let source_arn = source
            .arn
            .as_deref()
            .ok_or_else(|| PortError::Invalid(format!("snapshot {} has no ARN", source.name)))?;
        match source.kind {
            ResourceKind::RdsInstance => {
                let out = client
                    .copy_db_snapshot()
                    .source_db_snapshot_identifier(source_arn)
                    .target_db_snapshot_identifier(name)
                    .kms_key_id(kms_key_id)
                    .set_tags(Some(rds_tags(tags)))
                    .send()
                    .await
                    .map_err(|e| port_error("CopyDBSnapshot", e))?;
                out.db_snapshot()
                    .map(|s| instance_snapshot(destination, s))
                    .ok_or_else(|| missing("CopyDBSnapshot", name))
            }
            ResourceKind::AuroraCluster => {
                let out = client
                    .copy_db_cluster_snapshot()
                    .source_db_cluster_snapshot_identifier(source_arn)
                    .target_db_cluster_snapshot_identifier(name)
                    .kms_key_id(kms_key_id)
                    .set_tags(Some(rds_tags(tags)))
                    .send()
                    .await
                    .map_err(|e| port_error("CopyDBClusterSnapshot", e))?;
                out.db_cluster_snapshot()
                    .map(|s| cluster_snapshot(destination, s))
                    .ok_or_else(|| missing("CopyDBClusterSnapshot", name))
            }
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
                Err(not_rds(source.kind))
            }
        }
    }

    async fn delete_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<()> {
        let client = self.client(region)?;
        let result = match kind {
            ResourceKind::RdsInstance => client
                .delete_db_snapshot()
                .db_snapshot_identifier(name)
                .send()
                .await
                .map(drop)
                .map_err(|e| port_error("DeleteDBSnapshot", e)),
            ResourceKind::AuroraCluster => client
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(name)
                .send()
                .await
                .map(drop)
                .map_err(|e| port_error("DeleteDBClusterSnapshot", e)),
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => Err(not_rds(kind)),
        };
        match result {
            // Already gone: what deleting it would have achieved.
            Err(PortError::NotFound(_)) => Ok(()),
            other => other,
        }
    }
}

/// RDS has no snapshots of S3 prefixes or DynamoDB tables: asking is a routing mistake.
fn not_rds(kind: ResourceKind) -> PortError {
    PortError::Invalid(format!("{kind} resources have no RDS snapshots"))
}

/// [`SnapshotExporter`](lifeboat_ports::SnapshotExporter) over RDS's StartExportTask and
/// DescribeExportTasks, in one region (the backup bucket's: RDS exports a snapshot only
/// into a bucket of its own region).
#[derive(Debug, Clone)]
pub struct RdsSnapshotExporter {
    client: Client,
}

impl RdsSnapshotExporter {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A client for `region` from the shared SDK configuration.
    pub fn from_sdk(base: &SdkConfig, region: &Region) -> Self {
        Self::new(rds_client(base, region))
    }
}

#[allow(clippy::too_many_arguments)]
fn export_task(
    task_id: Option<&str>,
    source_arn: Option<&str>,
    bucket: Option<&str>,
    prefix: Option<&str>,
    status: Option<&str>,
    percent: Option<i32>,
    failure_cause: Option<&str>,
    warning: Option<&str>,
) -> lifeboat_ports::ExportTask {
    lifeboat_ports::ExportTask {
        task_id: task_id.unwrap_or_default().to_owned(),
        source_arn: source_arn.unwrap_or_default().to_owned(),
        bucket: bucket.unwrap_or_default().to_owned(),
        prefix: prefix.unwrap_or_default().to_owned(),
        state: lifeboat_ports::ExportTaskState::from_aws(status.unwrap_or("STARTING")),
        percent_progress: percent,
        failure_cause: failure_cause.map(str::to_owned),
        warning: warning.map(str::to_owned),
    }
}

#[async_trait]
impl lifeboat_ports::SnapshotExporter for RdsSnapshotExporter {
    async fn start_export(&self, r: &lifeboat_ports::ExportRequest) -> PortResult<lifeboat_ports::ExportTask> {
        let o = self
            .client
            .start_export_task()
            .export_task_identifier(&r.task_id)
            .source_arn(&r.source_arn)
            .s3_bucket_name(&r.bucket)
            .s3_prefix(&r.prefix)
            .iam_role_arn(&r.role_arn)
            .kms_key_id(&r.kms_key_id)
            .send()
            .await
            .map_err(|e| port_error("StartExportTask", e))?;
        Ok(export_task(
            o.export_task_identifier().or(Some(&r.task_id)),
            o.source_arn(),
            o.s3_bucket(),
            o.s3_prefix(),
            o.status(),
            o.percent_progress(),
            o.failure_cause(),
            o.warning_message(),
        ))
    }

    async fn describe_export(&self, task_id: &str) -> PortResult<Option<lifeboat_ports::ExportTask>> {
        match self
            .client
            .describe_export_tasks()
            .export_task_identifier(task_id)
            .send()
            .await
            .map_err(|e| port_error("DescribeExportTasks", e))
        {
            Ok(o) => Ok(o
                .export_tasks()
                .iter()
                .find(|t| t.export_task_identifier() == Some(task_id))
                .map(|t| {
                    export_task(
                        t.export_task_identifier(),
                        t.source_arn(),
                        t.s3_bucket(),
                        t.s3_prefix(),
                        t.status(),
                        t.percent_progress(),
                        t.failure_cause(),
                        t.warning_message(),
                    )
                })),
            Err(PortError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
