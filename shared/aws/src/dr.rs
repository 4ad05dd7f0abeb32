//! AWS adapters of the DR ports: RDS (restore, promote, global failover, delete) here;
//! the endpoint switch (SSM parameters, Route 53 records) and reports (S3) in [`switch`];
//! DynamoDB tables in [`tables`]. Every SDK type stays in here.

mod switch;
mod tables;

pub use switch::{Route53Records, S3Reports, SsmParameters};
pub use tables::DynamoDbDrTables;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use crate::rds::{class_of_writer, our_tags, rds_tags};
use crate::{PerRegion, port_error, rds_client, to_chrono};
use lifeboat_domain::{Region, ResourceKind};
use lifeboat_ports::{PortError, PortResult};

use lifeboat_domain::dr::plan::{DbPlacement, named_group};
use lifeboat_domain::restore_test::Facts;
use lifeboat_ports::dr::{
    DbInfo, DeleteMode, DnsRecords, DrDatabases, Parameters, Quota, Reports, RestoreRequest, WriterRequest, user_tags,
};

/// One client per region, built on first use from the shared SDK configuration.
fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
}

/// [`DrDatabases`] over the RDS API.
pub struct RdsDrDatabases {
    clients: PerRegion<aws_sdk_rds::Client>,
}

impl std::fmt::Debug for RdsDrDatabases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdsDrDatabases").finish_non_exhaustive()
    }
}

impl RdsDrDatabases {
    /// A restore found its target existing. A retried step (after a crash or a timeout)
    /// finds the database its earlier run started: it carries this restore's Lifeboat tags
    /// (the execution and the plan), and is used. Anything else of that name is not this
    /// restore's to use: `Conflict`, and it is left alone. One still being deleted keeps
    /// its name for minutes: the restore waits (`InvalidState`).
    async fn adopt_existing(&self, req: &RestoreRequest<'_>) -> PortResult<()> {
        let Some(db) = self.describe(req.region, req.kind, req.target).await? else {
            return Err(PortError::Throttled(format!(
                "{} exists but cannot be described yet; try again",
                req.target
            )));
        };
        let ours = req
            .tags
            .iter()
            .filter(|t| t.key.starts_with("lifeboat:"))
            .all(|t| db.tags.contains(t));
        if !ours {
            return Err(PortError::Conflict(format!(
                "a database named {} exists in {} and was not made by this restore (its lifeboat tags differ); it is left alone",
                req.target, req.region
            )));
        }
        if db.status == "deleting" {
            return Err(PortError::InvalidState(format!(
                "{} is being deleted; the restore waits until its name is free",
                req.target
            )));
        }
        Ok(())
    }

    pub fn new(base: SdkConfig) -> Self {
        Self {
            clients: PerRegion::new(base, rds_client),
        }
    }

    /// Over prebuilt clients (tests with mocked clients); no other region works.
    pub fn with_clients(clients: HashMap<Region, aws_sdk_rds::Client>) -> Self {
        Self {
            clients: PerRegion::with_clients(clients),
        }
    }

    fn client(&self, region: &Region) -> PortResult<aws_sdk_rds::Client> {
        self.clients.get(region)
    }

    async fn cluster_snapshot_engine(&self, region: &Region, snapshot: &str) -> PortResult<String> {
        let out = self
            .client(region)?
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(snapshot)
            .send()
            .await
            .map_err(|e| port_error("DescribeDBClusterSnapshots", e))?;
        out.db_cluster_snapshots()
            .first()
            .and_then(|s| s.engine())
            .map(str::to_owned)
            .ok_or_else(|| PortError::NotFound(format!("cluster snapshot {snapshot} in {region}")))
    }
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// A missing resource, or one already being deleted: what deleting wanted.
fn gone_is_fine(r: PortResult<()>) -> PortResult<()> {
    match r {
        Err(PortError::NotFound(_) | PortError::InvalidState(_)) => Ok(()),
        other => other,
    }
}

/// Whether the target existed already (`true`: a retry after a crash, or a name taken by
/// something else; the caller tells them apart).
fn already_exists<E>(
    operation: &str,
    r: Result<
        (),
        aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
) -> PortResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(()) => Ok(false),
        Err(e)
            if matches!(
                e.code(),
                Some("DBInstanceAlreadyExists" | "DBInstanceAlreadyExistsFault" | "DBClusterAlreadyExistsFault")
            ) =>
        {
            Ok(true)
        }
        Err(e) => Err(port_error(operation, e)),
    }
}

#[async_trait]
impl DrDatabases for RdsDrDatabases {
    async fn describe(&self, region: &Region, kind: ResourceKind, id: &str) -> PortResult<Option<DbInfo>> {
        let client = self.client(region)?;
        let result = match kind {
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
                Err(not_a_database(kind))
            }
            ResourceKind::RdsInstance => client
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .map_err(|e| port_error("DescribeDBInstances", e))
                .map(|o| {
                    o.db_instances().first().map(|i| DbInfo {
                        kind,
                        id: id.to_owned(),
                        arn: i.db_instance_arn().map(str::to_owned),
                        status: i.db_instance_status().unwrap_or("unknown").to_owned(),
                        engine: i.engine().map(str::to_owned),
                        engine_version: i.engine_version().map(str::to_owned),
                        class: i.db_instance_class().map(str::to_owned),
                        endpoint: i.endpoint().and_then(|e| e.address()).map(str::to_owned),
                        tags: our_tags(i.tag_list()),
                        latest_restorable: i.latest_restorable_time().and_then(to_chrono),
                        backup_retention_days: i.backup_retention_period(),
                        storage_gb: i.allocated_storage(),
                        encrypted: i.storage_encrypted(),
                        kms_key_id: i.kms_key_id().map(str::to_owned),
                        placement: DbPlacement {
                            subnet_group: i
                                .db_subnet_group()
                                .and_then(|g| g.db_subnet_group_name())
                                .map(str::to_owned),
                            security_groups: i
                                .vpc_security_groups()
                                .iter()
                                .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                                .collect(),
                            parameter_group: i
                                .db_parameter_groups()
                                .first()
                                .and_then(|g| g.db_parameter_group_name())
                                .and_then(named_group),
                            cluster_parameter_group: None,
                            option_group: i
                                .option_group_memberships()
                                .first()
                                .and_then(|g| g.option_group_name())
                                .and_then(named_group),
                        },
                    })
                }),
            ResourceKind::AuroraCluster => {
                match client
                    .describe_db_clusters()
                    .db_cluster_identifier(id)
                    .send()
                    .await
                    .map_err(|e| port_error("DescribeDBClusters", e))
                {
                    Ok(o) => match o.db_clusters().first() {
                        Some(c) => {
                            // The class of its writer: what a restored cluster's writer gets.
                            let class = class_of_writer(&client, c).await?;
                            Ok(Some(DbInfo {
                                kind,
                                id: id.to_owned(),
                                arn: c.db_cluster_arn().map(str::to_owned),
                                status: c.status().unwrap_or("unknown").to_owned(),
                                engine: c.engine().map(str::to_owned),
                                engine_version: c.engine_version().map(str::to_owned),
                                class,
                                endpoint: c.endpoint().map(str::to_owned),
                                tags: our_tags(c.tag_list()),
                                latest_restorable: c.latest_restorable_time().and_then(to_chrono),
                                backup_retention_days: c.backup_retention_period(),
                                storage_gb: None,
                                encrypted: c.storage_encrypted(),
                                kms_key_id: c.kms_key_id().map(str::to_owned),
                                placement: DbPlacement {
                                    subnet_group: c.db_subnet_group().map(str::to_owned),
                                    security_groups: c
                                        .vpc_security_groups()
                                        .iter()
                                        .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                                        .collect(),
                                    parameter_group: None,
                                    cluster_parameter_group: c.db_cluster_parameter_group().and_then(named_group),
                                    option_group: None,
                                },
                            }))
                        }
                        None => Ok(None),
                    },
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Err(PortError::NotFound(_)) => Ok(None),
            other => other,
        }
    }

    async fn restore_from_snapshot(&self, req: &RestoreRequest<'_>, snapshot: &str) -> PortResult<()> {
        let client = self.client(req.region)?;
        let existed = match req.kind {
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
                Err(not_a_database(req.kind))
            }
            ResourceKind::RdsInstance => already_exists(
                "RestoreDBInstanceFromDBSnapshot",
                client
                    .restore_db_instance_from_db_snapshot()
                    .db_instance_identifier(req.target)
                    .db_snapshot_identifier(snapshot)
                    .set_db_instance_class(req.class.map(str::to_owned))
                    .set_db_subnet_group_name(req.settings.subnet_group.clone())
                    .set_vpc_security_group_ids(non_empty(&req.settings.security_groups))
                    .set_db_parameter_group_name(req.settings.parameter_group.clone())
                    .set_option_group_name(req.settings.option_group.clone())
                    .publicly_accessible(false)
                    .set_tags(Some(rds_tags(req.tags)))
                    .send()
                    .await
                    .map(drop),
            ),
            ResourceKind::AuroraCluster => {
                let engine = self.cluster_snapshot_engine(req.region, snapshot).await?;
                already_exists(
                    "RestoreDBClusterFromSnapshot",
                    client
                        .restore_db_cluster_from_snapshot()
                        .db_cluster_identifier(req.target)
                        .snapshot_identifier(snapshot)
                        .engine(engine)
                        .set_db_subnet_group_name(req.settings.subnet_group.clone())
                        .set_vpc_security_group_ids(non_empty(&req.settings.security_groups))
                        .set_db_cluster_parameter_group_name(req.settings.cluster_parameter_group.clone())
                        .set_tags(Some(rds_tags(req.tags)))
                        .send()
                        .await
                        .map(drop),
                )
            }
        }?;
        if existed {
            self.adopt_existing(req).await?;
        }
        Ok(())
    }

    async fn restore_to_time(&self, req: &RestoreRequest<'_>, source: &str, time: DateTime<Utc>) -> PortResult<()> {
        if req.kind != ResourceKind::RdsInstance {
            return Err(PortError::Invalid("point-in-time restore is for DB instances".into()));
        }
        let existed = already_exists(
            "RestoreDBInstanceToPointInTime",
            self.client(req.region)?
                .restore_db_instance_to_point_in_time()
                .source_db_instance_identifier(source)
                .target_db_instance_identifier(req.target)
                .restore_time(smithy_time(time))
                .set_db_instance_class(req.class.map(str::to_owned))
                .set_db_subnet_group_name(req.settings.subnet_group.clone())
                .set_vpc_security_group_ids(non_empty(&req.settings.security_groups))
                .set_db_parameter_group_name(req.settings.parameter_group.clone())
                .set_option_group_name(req.settings.option_group.clone())
                .publicly_accessible(false)
                .set_tags(Some(rds_tags(req.tags)))
                .send()
                .await
                .map(drop),
        )?;
        if existed {
            self.adopt_existing(req).await?;
        }
        Ok(())
    }

    async fn create_cluster_instance(&self, req: &WriterRequest<'_>) -> PortResult<()> {
        // The writer's name is derived from the cluster's, itself adopted only when it
        // carries this restore's tags: an existing writer is the earlier run's.
        already_exists(
            "CreateDBInstance",
            self.client(req.region)?
                .create_db_instance()
                .db_instance_identifier(req.instance)
                .db_cluster_identifier(req.cluster)
                .db_instance_class(req.class)
                .engine(req.engine)
                .set_db_parameter_group_name(req.parameter_group.map(str::to_owned))
                .publicly_accessible(false)
                .set_tags(Some(rds_tags(req.tags)))
                .send()
                .await
                .map(drop),
        )
        .map(drop)
    }

    async fn promote_replica(&self, region: &Region, id: &str) -> PortResult<()> {
        self.client(region)?
            .promote_read_replica()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| port_error("PromoteReadReplica", e))?;
        Ok(())
    }

    async fn failover_global_cluster(&self, region: &Region, global: &str, target_cluster_arn: &str) -> PortResult<()> {
        self.client(region)?
            .failover_global_cluster()
            .global_cluster_identifier(global)
            .target_db_cluster_identifier(target_cluster_arn)
            .allow_data_loss(true)
            .send()
            .await
            .map_err(|e| port_error("FailoverGlobalCluster", e))?;
        Ok(())
    }

    async fn switchover_global_cluster(
        &self,
        region: &Region,
        global: &str,
        target_cluster_arn: &str,
    ) -> PortResult<()> {
        self.client(region)?
            .switchover_global_cluster()
            .global_cluster_identifier(global)
            .target_db_cluster_identifier(target_cluster_arn)
            .send()
            .await
            .map_err(|e| port_error("SwitchoverGlobalCluster", e))?;
        Ok(())
    }

    async fn delete(&self, region: &Region, kind: ResourceKind, id: &str, mode: DeleteMode<'_>) -> PortResult<()> {
        let client = self.client(region)?;
        // A throwaway goes whole; anything else leaves its final snapshot and keeps its
        // automated backups (the point-in-time history).
        let (skip, final_snapshot, drop_backups) = match mode {
            DeleteMode::Throwaway => (true, None, true),
            DeleteMode::KeepData { final_snapshot } => (false, Some(final_snapshot.to_owned()), false),
        };
        gone_is_fine(match kind {
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
                Err(not_a_database(kind))
            }
            ResourceKind::RdsInstance => client
                .delete_db_instance()
                .db_instance_identifier(id)
                .skip_final_snapshot(skip)
                .set_final_db_snapshot_identifier(final_snapshot)
                .delete_automated_backups(drop_backups)
                .send()
                .await
                .map(drop)
                .map_err(|e| port_error("DeleteDBInstance", e)),
            ResourceKind::AuroraCluster => {
                // RDS refuses to delete a cluster that still has instances (a restored
                // cluster's writer): they are deleted first. The cluster holds the data, so
                // its members go without a snapshot of their own (RDS takes none for a
                // cluster member); the cluster's final snapshot, if asked, keeps it.
                let members: Vec<String> = match client.describe_db_clusters().db_cluster_identifier(id).send().await {
                    Ok(o) => o
                        .db_clusters()
                        .iter()
                        .flat_map(aws_sdk_rds::types::DbCluster::db_cluster_members)
                        .filter_map(|m| m.db_instance_identifier().map(str::to_owned))
                        .collect(),
                    Err(e) => match port_error("DescribeDBClusters", e) {
                        PortError::NotFound(_) => Vec::new(),
                        other => return Err(other),
                    },
                };
                for member in &members {
                    gone_is_fine(
                        client
                            .delete_db_instance()
                            .db_instance_identifier(member)
                            .skip_final_snapshot(true)
                            .send()
                            .await
                            .map(drop)
                            .map_err(|e| port_error("DeleteDBInstance", e)),
                    )?;
                }
                client
                    .delete_db_cluster()
                    .db_cluster_identifier(id)
                    .skip_final_snapshot(skip)
                    .set_final_db_snapshot_identifier(final_snapshot)
                    .delete_automated_backups(drop_backups)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| {
                        let code = e.code().map(str::to_owned);
                        match (code.as_deref(), port_error("DeleteDBCluster", e)) {
                            // Its instances are still being deleted: try again later.
                            (Some("DBClusterToBeDeletedHasActiveMembers"), PortError::Invalid(m)) => {
                                PortError::InvalidState(m)
                            }
                            (_, other) => other,
                        }
                    })
            }
        })
    }

    async fn subnet_group_exists(&self, region: &Region, name: &str) -> PortResult<bool> {
        match self
            .client(region)?
            .describe_db_subnet_groups()
            .db_subnet_group_name(name)
            .send()
            .await
        {
            Ok(o) => Ok(!o.db_subnet_groups().is_empty()),
            Err(e) if e.code() == Some("DBSubnetGroupNotFoundFault") => Ok(false),
            Err(e) => Err(port_error("DescribeDBSubnetGroups", e)),
        }
    }

    async fn snapshot_facts(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<Option<Facts>> {
        let client = self.client(region)?;
        let found = match kind {
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
                Err(not_a_database(kind))
            }
            ResourceKind::RdsInstance => client
                .describe_db_snapshots()
                .db_snapshot_identifier(name)
                .send()
                .await
                .map_err(|e| port_error("DescribeDBSnapshots", e))
                .map(|o| {
                    o.db_snapshots().first().map(|s| Facts {
                        engine: s.engine().map(str::to_owned),
                        engine_version: s.engine_version().map(str::to_owned),
                        storage_gb: s.allocated_storage(),
                        encrypted: s.encrypted(),
                        kms_key_id: s.kms_key_id().map(str::to_owned),
                        tags: user_tags(&our_tags(s.tag_list())),
                    })
                }),
            ResourceKind::AuroraCluster => client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(name)
                .send()
                .await
                .map_err(|e| port_error("DescribeDBClusterSnapshots", e))
                .map(|o| {
                    o.db_cluster_snapshots().first().map(|s| Facts {
                        engine: s.engine().map(str::to_owned),
                        engine_version: s.engine_version().map(str::to_owned),
                        // Aurora storage grows with the data: there is no size to compare.
                        storage_gb: None,
                        encrypted: s.storage_encrypted(),
                        kms_key_id: s.kms_key_id().map(str::to_owned),
                        tags: user_tags(&our_tags(s.tag_list())),
                    })
                }),
        };
        match found {
            Err(PortError::NotFound(_)) => Ok(None),
            other => other,
        }
    }

    async fn quotas(&self, region: &Region) -> PortResult<Vec<Quota>> {
        let out = self
            .client(region)?
            .describe_account_attributes()
            .send()
            .await
            .map_err(|e| port_error("DescribeAccountAttributes", e))?;
        Ok(out
            .account_quotas()
            .iter()
            .filter_map(|q| Some((q.account_quota_name()?.to_owned(), q.used()?, q.max()?)))
            .collect())
    }
}

/// The database adapter restores databases; S3 data is restored by restore-objects and
/// DynamoDB tables by [`DynamoDbDrTables`].
fn not_a_database(kind: ResourceKind) -> PortError {
    PortError::Invalid(format!(
        "DR steps restore RDS and Aurora databases, not {kind} resources"
    ))
}
