//! AWS adapters of the DR ports: RDS (restore, promote, global failover, delete), SSM
//! parameters (the endpoint switch) and S3 (reports). Every SDK type stays in here.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use crate::aws::rds::{our_tags, rds_tags};
use crate::aws::{PerRegion, port_error, rds_client, to_chrono};
use crate::domain::{Region, ResourceKind};
use crate::ports::{PortError, PortResult};

use super::ports::{DbInfo, DnsRecords, DrDatabases, Parameters, Quota, Reports, RestoreRequest};

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

/// A missing resource, or one already being deleted: what deleting wanted.
fn gone_is_fine(r: PortResult<()>) -> PortResult<()> {
    match r {
        Err(PortError::NotFound(_) | PortError::InvalidState(_)) => Ok(()),
        other => other,
    }
}

/// An existing target (a retry after a crash) is what the restore wanted.
fn exists_is_fine<E>(
    operation: &str,
    r: Result<
        (),
        aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
) -> PortResult<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.code(),
                Some("DBInstanceAlreadyExists" | "DBInstanceAlreadyExistsFault" | "DBClusterAlreadyExistsFault")
            ) =>
        {
            Ok(())
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
                    })
                }),
            ResourceKind::AuroraCluster => client
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .map_err(|e| port_error("DescribeDBClusters", e))
                .map(|o| {
                    o.db_clusters().first().map(|c| DbInfo {
                        kind,
                        id: id.to_owned(),
                        arn: c.db_cluster_arn().map(str::to_owned),
                        status: c.status().unwrap_or("unknown").to_owned(),
                        engine: c.engine().map(str::to_owned),
                        engine_version: c.engine_version().map(str::to_owned),
                        class: None,
                        endpoint: c.endpoint().map(str::to_owned),
                        tags: our_tags(c.tag_list()),
                        latest_restorable: c.latest_restorable_time().and_then(to_chrono),
                        backup_retention_days: c.backup_retention_period(),
                    })
                }),
        };
        match result {
            Err(PortError::NotFound(_)) => Ok(None),
            other => other,
        }
    }

    async fn restore_from_snapshot(&self, req: &RestoreRequest<'_>, snapshot: &str) -> PortResult<()> {
        let client = self.client(req.region)?;
        match req.kind {
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
                Err(not_a_database(req.kind))
            }
            ResourceKind::RdsInstance => exists_is_fine(
                "RestoreDBInstanceFromDBSnapshot",
                client
                    .restore_db_instance_from_db_snapshot()
                    .db_instance_identifier(req.target)
                    .db_snapshot_identifier(snapshot)
                    .set_db_instance_class(req.class.map(str::to_owned))
                    .set_db_subnet_group_name(req.subnet_group.map(str::to_owned))
                    .set_tags(Some(rds_tags(req.tags)))
                    .send()
                    .await
                    .map(drop),
            ),
            ResourceKind::AuroraCluster => {
                let engine = self.cluster_snapshot_engine(req.region, snapshot).await?;
                exists_is_fine(
                    "RestoreDBClusterFromSnapshot",
                    client
                        .restore_db_cluster_from_snapshot()
                        .db_cluster_identifier(req.target)
                        .snapshot_identifier(snapshot)
                        .engine(engine)
                        .set_db_subnet_group_name(req.subnet_group.map(str::to_owned))
                        .set_tags(Some(rds_tags(req.tags)))
                        .send()
                        .await
                        .map(drop),
                )
            }
        }
    }

    async fn restore_to_time(&self, req: &RestoreRequest<'_>, source: &str, time: DateTime<Utc>) -> PortResult<()> {
        if req.kind != ResourceKind::RdsInstance {
            return Err(PortError::Invalid("point-in-time restore is for DB instances".into()));
        }
        exists_is_fine(
            "RestoreDBInstanceToPointInTime",
            self.client(req.region)?
                .restore_db_instance_to_point_in_time()
                .source_db_instance_identifier(source)
                .target_db_instance_identifier(req.target)
                .restore_time(smithy_time(time))
                .set_db_instance_class(req.class.map(str::to_owned))
                .set_db_subnet_group_name(req.subnet_group.map(str::to_owned))
                .set_tags(Some(rds_tags(req.tags)))
                .send()
                .await
                .map(drop),
        )
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
            .send()
            .await
            .map_err(|e| port_error("FailoverGlobalCluster", e))?;
        Ok(())
    }

    async fn delete(&self, region: &Region, kind: ResourceKind, id: &str) -> PortResult<()> {
        let client = self.client(region)?;
        gone_is_fine(match kind {
            ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
                Err(not_a_database(kind))
            }
            ResourceKind::RdsInstance => client
                .delete_db_instance()
                .db_instance_identifier(id)
                .skip_final_snapshot(true)
                .send()
                .await
                .map(drop)
                .map_err(|e| port_error("DeleteDBInstance", e)),
            ResourceKind::AuroraCluster => client
                .delete_db_cluster()
                .db_cluster_identifier(id)
                .skip_final_snapshot(true)
                .send()
                .await
                .map(drop)
                .map_err(|e| port_error("DeleteDBCluster", e)),
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
            .interceptor(crate::aws::calls::CountCalls)
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
                    .interceptor(crate::aws::calls::CountCalls)
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
        let want = crate::dr::plan::fqdn(name);
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|r| crate::dr::plan::fqdn(r.name()) == want && r.r#type() == &aws_sdk_route53::types::RrType::Cname)
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

/// DR steps restore databases; S3 data is restored by restore-objects and DynamoDB tables
/// from their backups, outside these steps.
fn not_a_database(kind: ResourceKind) -> PortError {
    PortError::Invalid(format!(
        "DR steps restore RDS and Aurora databases, not {kind} resources"
    ))
}
