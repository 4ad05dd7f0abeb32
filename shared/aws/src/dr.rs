//! AWS adapters of the DR ports: RDS (restore, promote, global failover, delete), SSM
//! parameters (the endpoint switch) and S3 (reports). Every SDK type stays in here.

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
use lifeboat_ports::dr::{
    DbInfo, DeleteMode, DnsRecords, DrDatabases, Parameters, Quota, Reports, RestoreRequest, WriterRequest,
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

fn ssm_client(base: &SdkConfig, region: &Region) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(base)
            .region(aws_sdk_ssm::config::Region::new(region.to_string()))
            .interceptor(crate::calls::CountCalls)
            .build(),
    )
}

/// [`DnsRecords`] over Route 53 (a global service: one client).
pub struct Route53Records {
    client: aws_sdk_route53::Client,
}

impl std::fmt::Debug for Route53Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route53Records").finish_non_exhaustive()
    }
}

impl Route53Records {
    pub fn new(base: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::config::Builder::from(base)
                    .interceptor(crate::calls::CountCalls)
                    .build(),
            ),
        }
    }

    async fn change(
        &self,
        zone: &str,
        action: aws_sdk_route53::types::ChangeAction,
        name: &str,
        value: &str,
        ttl: i64,
    ) -> PortResult<()> {
        use aws_sdk_route53::types::{Change, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
        let invalid = |e: aws_sdk_route53::error::BuildError| PortError::Invalid(format!("DNS change for {name}: {e}"));
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Cname)
            .ttl(ttl)
            .resource_records(ResourceRecord::builder().value(value).build().map_err(invalid)?)
            .build()
            .map_err(invalid)?;
        let batch = ChangeBatch::builder()
            .comment("Lifeboat DR endpoint switch")
            .changes(
                Change::builder()
                    .action(action)
                    .resource_record_set(set)
                    .build()
                    .map_err(invalid)?,
            )
            .build()
            .map_err(invalid)?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| port_error("ChangeResourceRecordSets", e))?;
        Ok(())
    }
}

#[async_trait]
impl DnsRecords for Route53Records {
    async fn cname(&self, zone: &str, name: &str) -> PortResult<Option<String>> {
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(name)
            .start_record_type(aws_sdk_route53::types::RrType::Cname)
            .send()
            .await
            .map_err(|e| port_error("ListResourceRecordSets", e))?;
        let want = lifeboat_domain::dr::plan::fqdn(name);
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|r| {
                lifeboat_domain::dr::plan::fqdn(r.name()) == want
                    && r.r#type() == &aws_sdk_route53::types::RrType::Cname
            })
            .and_then(|r| r.resource_records().first())
            .map(|v| v.value().to_owned()))
    }

    async fn upsert_cname(&self, zone: &str, name: &str, value: &str, ttl: i64) -> PortResult<()> {
        self.change(zone, aws_sdk_route53::types::ChangeAction::Upsert, name, value, ttl)
            .await
    }

    async fn delete_cname(&self, zone: &str, name: &str, value: &str, ttl: i64) -> PortResult<()> {
        match self
            .change(zone, aws_sdk_route53::types::ChangeAction::Delete, name, value, ttl)
            .await
        {
            // Already gone (Route 53 answers InvalidChangeBatch: not found).
            Err(PortError::Invalid(m) | PortError::NotFound(m)) if m.contains("not found") => Ok(()),
            other => other,
        }
    }
}

/// [`Parameters`] over SSM Parameter Store.
pub struct SsmParameters {
    clients: PerRegion<aws_sdk_ssm::Client>,
}

impl std::fmt::Debug for SsmParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmParameters").finish_non_exhaustive()
    }
}

impl SsmParameters {
    pub fn new(base: SdkConfig) -> Self {
        Self {
            clients: PerRegion::new(base, ssm_client),
        }
    }

    fn client(&self, region: &Region) -> PortResult<aws_sdk_ssm::Client> {
        self.clients.get(region)
    }
}

#[async_trait]
impl Parameters for SsmParameters {
    async fn get(&self, region: &Region, name: &str) -> PortResult<Option<String>> {
        match self.client(region)?.get_parameter().name(name).send().await {
            Ok(o) => Ok(o.parameter().and_then(|p| p.value()).map(str::to_owned)),
            Err(e) if e.code() == Some("ParameterNotFound") => Ok(None),
            Err(e) => Err(port_error("GetParameter", e)),
        }
    }

    async fn put(&self, region: &Region, name: &str, value: &str) -> PortResult<()> {
        self.client(region)?
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| port_error("PutParameter", e))?;
        Ok(())
    }

    async fn delete(&self, region: &Region, name: &str) -> PortResult<()> {
        match self.client(region)?.delete_parameter().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ParameterNotFound") => Ok(()),
            Err(e) => Err(port_error("DeleteParameter", e)),
        }
    }
}

/// [`Reports`] in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Reports {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Reports {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl Reports for S3Reports {
    async fn put(&self, key: &str, body: &[u8]) -> PortResult<String> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
            .send()
            .await
            .map_err(|e| port_error("PutObject", e))?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }
}

/// The database adapter restores databases; S3 data is restored by restore-objects and
/// DynamoDB tables by [`DynamoDbDrTables`].
fn not_a_database(kind: ResourceKind) -> PortError {
    PortError::Invalid(format!(
        "DR steps restore RDS and Aurora databases, not {kind} resources"
    ))
}

// ---------------------------------------------------------------------------------------
// DynamoDB tables
// ---------------------------------------------------------------------------------------

/// [`DrTables`] over the DynamoDB API, one client per region.
pub struct DynamoDbDrTables {
    clients: PerRegion<aws_sdk_dynamodb::Client>,
    exports: Option<crate::table_exports::TableExports>,
}

impl std::fmt::Debug for DynamoDbDrTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbDrTables").finish_non_exhaustive()
    }
}

impl DynamoDbDrTables {
    pub fn new(base: SdkConfig) -> Self {
        Self {
            clients: PerRegion::new(base, crate::table_snapshots::dynamodb_client),
            exports: None,
        }
    }

    /// Table copies are read from the regions' export buckets.
    #[must_use]
    pub fn with_exports(mut self, exports: crate::table_exports::TableExports) -> Self {
        self.exports = Some(exports);
        self
    }

    fn exports(&self) -> PortResult<&crate::table_exports::TableExports> {
        self.exports.as_ref().ok_or_else(|| {
            PortError::Invalid("no export bucket is configured (TABLE_EXPORT_BUCKET): tables have no copies".into())
        })
    }

    /// Over prebuilt clients (tests with mocked clients); no other region works.
    pub fn with_clients(clients: HashMap<Region, aws_sdk_dynamodb::Client>) -> Self {
        Self {
            clients: PerRegion::with_clients(clients),
            exports: None,
        }
    }
}

/// DynamoDB's errors for table operations in the domain's words: `ResourceInUseException`
/// (the table is being created, restored or deleted) and `LimitExceededException` (too
/// many table operations in flight in the account) clear by themselves: `Throttled`;
/// `TableAlreadyExistsException` is `AlreadyExists`.
#[allow(clippy::needless_pass_by_value)]
fn table_error<E>(
    operation: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    match (code.as_deref(), port_error(operation, err)) {
        (Some("TableAlreadyExistsException"), e) => PortError::AlreadyExists(e.to_string()),
        (Some("ResourceInUseException" | "LimitExceededException"), e) => PortError::Throttled(e.to_string()),
        (_, e) => e,
    }
}

fn key_schema(k: &[aws_sdk_dynamodb::types::KeySchemaElement]) -> Vec<(String, String)> {
    k.iter()
        .map(|e| (e.attribute_name().to_owned(), e.key_type().as_str().to_owned()))
        .collect()
}

fn count(n: Option<i64>) -> Option<u64> {
    n.and_then(|n| u64::try_from(n).ok())
}

/// An attribute value in the domain's words. A type this SDK does not know is refused
/// (a checksum that skipped it would not cover the item).
fn value(v: &aws_sdk_dynamodb::types::AttributeValue) -> PortResult<lifeboat_domain::dr::table_digest::Value> {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use lifeboat_domain::dr::table_digest::Value;
    Ok(match v {
        A::S(s) => Value::S(s.clone()),
        A::N(n) => Value::N(n.clone()),
        A::B(b) => Value::B(b.as_ref().to_vec()),
        A::Bool(b) => Value::Bool(*b),
        A::Null(_) => Value::Null,
        A::Ss(v) => Value::Ss(v.clone()),
        A::Ns(v) => Value::Ns(v.clone()),
        A::Bs(v) => Value::Bs(v.iter().map(|b| b.as_ref().to_vec()).collect()),
        A::L(v) => Value::L(v.iter().map(value).collect::<PortResult<_>>()?),
        A::M(m) => Value::M(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), value(v)?)))
                .collect::<PortResult<_>>()?,
        ),
        _ => {
            return Err(PortError::Invalid(
                "Scan: an attribute of a type unknown to Lifeboat".into(),
            ));
        }
    })
}

#[async_trait]
impl lifeboat_ports::dr::DrTables for DynamoDbDrTables {
    async fn import_copy(&self, region: &Region, copy: &str, target: &str) -> PortResult<String> {
        let token = crate::table_exports::client_token(&["import", region.as_str(), copy, target]);
        self.exports()?.import(region, copy, target, &token).await
    }

    async fn describe_import(
        &self,
        region: &Region,
        import_arn: &str,
    ) -> PortResult<Option<lifeboat_ports::dr::ImportInfo>> {
        Ok(self
            .exports()?
            .describe_import(region, import_arn)
            .await?
            .map(|i| lifeboat_ports::dr::ImportInfo {
                table_name: i
                    .table_arn
                    .as_deref()
                    .and_then(|a| a.rsplit_once(":table/"))
                    .map(|(_, n)| n.split('/').next().unwrap_or(n).to_owned()),
                import_arn: i.import_arn,
                status: i.status,
                imported_items: i.imported_items,
                failure: i.failure,
            }))
    }

    async fn describe_table(&self, region: &Region, name: &str) -> PortResult<Option<lifeboat_ports::dr::TableInfo>> {
        let out = match self.clients.get(region)?.describe_table().table_name(name).send().await {
            Ok(out) => out,
            Err(e) => {
                return match table_error("DescribeTable", e) {
                    PortError::NotFound(_) => Ok(None),
                    other => Err(other),
                };
            }
        };
        let Some(t) = out.table() else { return Ok(None) };
        let mut indexes: Vec<String> = t
            .global_secondary_indexes()
            .iter()
            .filter_map(|i| i.index_name().map(str::to_owned))
            .collect();
        indexes.sort();
        Ok(Some(lifeboat_ports::dr::TableInfo {
            name: t.table_name().unwrap_or(name).to_owned(),
            arn: t.table_arn().map(str::to_owned),
            status: t.table_status().map_or("UNKNOWN", |s| s.as_str()).to_owned(),
            key_schema: key_schema(t.key_schema()),
            indexes,
            restored_from: t
                .restore_summary()
                .and_then(|r| r.source_backup_arn())
                .map(str::to_owned),
            restore_in_progress: t
                .restore_summary()
                .is_some_and(aws_sdk_dynamodb::types::RestoreSummary::restore_in_progress),
        }))
    }

    async fn describe_backup(
        &self,
        region: &Region,
        backup_arn: &str,
    ) -> PortResult<Option<lifeboat_ports::dr::BackupInfo>> {
        let out = match self
            .clients
            .get(region)?
            .describe_backup()
            .backup_arn(backup_arn)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match table_error("DescribeBackup", e) {
                    PortError::NotFound(_) => Ok(None),
                    other => Err(other),
                };
            }
        };
        let Some(d) = out.backup_description() else {
            return Ok(None);
        };
        let details = d.backup_details();
        let source = d.source_table_details();
        Ok(Some(lifeboat_ports::dr::BackupInfo {
            backup_arn: details.map_or(backup_arn, |b| b.backup_arn()).to_owned(),
            status: details.map_or("UNKNOWN", |b| b.backup_status().as_str()).to_owned(),
            created_at: details.and_then(|b| to_chrono(b.backup_creation_date_time())),
            item_count: source.and_then(|s| count(s.item_count())),
            key_schema: source.map(|s| key_schema(s.key_schema())).unwrap_or_default(),
        }))
    }

    async fn restore_from_backup(&self, region: &Region, backup_arn: &str, target: &str) -> PortResult<()> {
        self.clients
            .get(region)?
            .restore_table_from_backup()
            .backup_arn(backup_arn)
            .target_table_name(target)
            .send()
            .await
            .map(drop)
            .map_err(|e| table_error("RestoreTableFromBackup", e))
    }

    async fn scan_content(
        &self,
        region: &Region,
        name: &str,
    ) -> PortResult<lifeboat_domain::dr::table_digest::TableContent> {
        let client = self.clients.get(region)?;
        let mut digest = lifeboat_domain::dr::table_digest::TableDigest::new();
        let mut start: Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> = None;
        loop {
            let out = client
                .scan()
                .table_name(name)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| table_error("Scan", e))?;
            for item in out.items() {
                let item = item
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), value(v)?)))
                    .collect::<PortResult<lifeboat_domain::dr::table_digest::Item>>()?;
                digest.add(&item);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(digest.content()),
            }
        }
    }

    async fn create_backup(
        &self,
        region: &Region,
        table: &str,
        name: &str,
    ) -> PortResult<lifeboat_ports::dr::BackupInfo> {
        use lifeboat_ports::TableBackups as _;
        let b = crate::DynamoDbTableBackups::new(self.clients.get(region)?)
            .create_backup(table, name)
            .await?;
        Ok(lifeboat_ports::dr::BackupInfo {
            status: match &b.status {
                lifeboat_ports::SnapshotStatus::Available => "AVAILABLE".to_owned(),
                lifeboat_ports::SnapshotStatus::Creating => "CREATING".to_owned(),
                lifeboat_ports::SnapshotStatus::Failed => "FAILED".to_owned(),
                lifeboat_ports::SnapshotStatus::Other(s) => s.to_ascii_uppercase(),
            },
            backup_arn: b.backup_arn,
            created_at: b.created_at,
            item_count: None,
            key_schema: Vec::new(),
        })
    }

    async fn delete_table(&self, region: &Region, name: &str) -> PortResult<()> {
        match self.clients.get(region)?.delete_table().table_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => match table_error("DeleteTable", e) {
                PortError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}
