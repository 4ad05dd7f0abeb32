//! Adapters of the admin API's ports: the audit trail and restore requests in the catalog
//! table, restores through the RDS API.
//!
//! | item          | pk             | sk                                   |
//! |---------------|----------------|--------------------------------------|
//! | audit record  | `AUDIT`        | `<at, ms>#<request id>#<phase>`      |
//! | restore       | `RESTORE#<id>` | `RESTORE`                            |
//! | approval      | `APPROVAL`     | `<id>` (`requested_at` beside it)    |
//!
//! Audit records are written with `attribute_not_exists(pk)`; this adapter has no update
//! and no delete for them, so a record once written is never overwritten.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::port_error;
use lifeboat_domain::Region;
use lifeboat_domain::approval::ApprovalRequest;
use lifeboat_domain::dr::plan::RestoreSettings;
use lifeboat_domain::dr::plan::named_group;
use lifeboat_domain::restore::RdsStatus;
use lifeboat_domain::restore::RestoreRecord;
use lifeboat_ports::admin::{ApprovalStore, AuditLog, AuditPage, AuditRecord, DbRestorer, RestoreStore};
use lifeboat_ports::{PortError, PortResult};

const AUDIT_PK: &str = "AUDIT";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// The audit trail and restore requests in the catalog table.
#[derive(Debug, Clone)]
pub struct DynamoDbAdminStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbAdminStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn encode<T: serde::Serialize>(v: &T) -> PortResult<String> {
    serde_json::to_string(v).map_err(|e| PortError::Invalid(format!("cannot encode: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(item: &HashMap<String, AttributeValue>) -> PortResult<T> {
    let doc = item
        .get("document")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| PortError::Invalid("stored item has no document".into()))?;
    serde_json::from_str(doc).map_err(|e| PortError::Invalid(format!("unreadable stored item: {e}")))
}

#[async_trait]
impl AuditLog for DynamoDbAdminStore {
    async fn append(&self, record: &AuditRecord) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(AUDIT_PK))
            .item("sk", s(record.sort_key()))
            .item("document", s(encode(record)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    async fn page(&self, limit: usize, after: Option<&str>) -> PortResult<AuditPage> {
        let mut records = Vec::new();
        let mut start = after.map(|a| HashMap::from([("pk".to_owned(), s(AUDIT_PK)), ("sk".to_owned(), s(a))]));
        let mut last_key = None;
        // Query's Limit counts items read; loop until the page is full or the log ends.
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(AUDIT_PK))
                .scan_index_forward(false)
                .limit(i32::try_from(limit - records.len()).unwrap_or(1000))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
            for item in out.items() {
                records.push(decode::<AuditRecord>(item)?);
                last_key = item.get("sk").and_then(|v| v.as_s().ok()).cloned();
            }
            match out.last_evaluated_key() {
                Some(k) if records.len() < limit => start = Some(k.clone()),
                Some(_) => break,
                None => {
                    last_key = None;
                    break;
                }
            }
        }
        Ok(AuditPage {
            records,
            next_after: last_key,
        })
    }
}

const APPROVAL_PK: &str = "APPROVAL";

impl DynamoDbAdminStore {
    /// The `document` of item (`pk`, `sk`), read consistently.
    async fn document<T: serde::de::DeserializeOwned>(&self, pk: &str, sk: &str) -> PortResult<Option<T>> {
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
        out.item.as_ref().map(decode).transpose()
    }

    /// Writes item (`pk`, `sk`): new (`expected_version` `None`) or over that version.
    async fn put<T: serde::Serialize>(
        &self,
        (pk, sk): (&str, &str),
        value: &T,
        version: u64,
        expected_version: Option<u64>,
    ) -> PortResult<()> {
        crate::dynamodb::put_versioned(
            &self.client,
            &self.table,
            (pk, sk),
            encode(value)?,
            version,
            expected_version,
        )
        .await
    }
}

fn restore_pk(id: &str) -> String {
    format!("RESTORE#{id}")
}

#[async_trait]
impl RestoreStore for DynamoDbAdminStore {
    async fn insert(&self, restore: &RestoreRecord) -> PortResult<()> {
        self.put((&restore_pk(&restore.id), "RESTORE"), restore, restore.version, None)
            .await
    }

    async fn get(&self, id: &str) -> PortResult<Option<RestoreRecord>> {
        self.document(&restore_pk(id), "RESTORE").await
    }

    async fn update(&self, restore: &RestoreRecord, expected_version: u64) -> PortResult<()> {
        self.put(
            (&restore_pk(&restore.id), "RESTORE"),
            restore,
            restore.version,
            Some(expected_version),
        )
        .await
    }
}

/// Approval requests share one partition: they are few (each is a person's act), and one
/// Query lists them.
#[async_trait]
impl ApprovalStore for DynamoDbAdminStore {
    async fn insert(&self, request: &ApprovalRequest) -> PortResult<()> {
        self.put((APPROVAL_PK, &request.id), request, request.version, None)
            .await
    }

    async fn get(&self, id: &str) -> PortResult<Option<ApprovalRequest>> {
        self.document(APPROVAL_PK, id).await
    }

    async fn update(&self, request: &ApprovalRequest, expected_version: u64) -> PortResult<()> {
        self.put(
            (APPROVAL_PK, &request.id),
            request,
            request.version,
            Some(expected_version),
        )
        .await
    }

    async fn recent(&self, limit: usize) -> PortResult<Vec<ApprovalRequest>> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(APPROVAL_PK))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
            for item in out.items() {
                all.push(decode::<ApprovalRequest>(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        all.sort_by(|a, b| (b.requested_at, &b.id).cmp(&(a.requested_at, &a.id)));
        all.truncate(limit);
        Ok(all)
    }
}

/// [`DbRestorer`] over the RDS API, one client per region built on first use.
pub struct RdsDbRestorer {
    clients: super::PerRegion<aws_sdk_rds::Client>,
}

impl std::fmt::Debug for RdsDbRestorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdsDbRestorer").finish_non_exhaustive()
    }
}

impl RdsDbRestorer {
    pub fn new(base: SdkConfig) -> Self {
        Self {
            clients: super::PerRegion::new(base, super::rds_client),
        }
    }

    /// A restorer over prebuilt clients (tests with mocked clients); no other region works.
    pub fn with_clients(clients: HashMap<Region, aws_sdk_rds::Client>) -> Self {
        Self {
            clients: super::PerRegion::with_clients(clients),
        }
    }

    fn client(&self, region: &Region) -> PortResult<aws_sdk_rds::Client> {
        self.clients.get(region)
    }
}

/// RDS names "already exists" for instances differently from snapshots.
fn rds_error<E>(
    operation: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if matches!(
        err.code(),
        Some("DBInstanceAlreadyExists" | "DBInstanceAlreadyExistsFault")
    ) {
        return PortError::AlreadyExists(format!("{operation}: DB instance already exists"));
    }
    port_error(operation, err)
}

#[async_trait]
impl DbRestorer for RdsDbRestorer {
    async fn restore_instance(
        &self,
        region: &Region,
        snapshot: &str,
        target: &str,
        settings: &RestoreSettings,
    ) -> PortResult<()> {
        self.client(region)?
            .restore_db_instance_from_db_snapshot()
            .db_snapshot_identifier(snapshot)
            .db_instance_identifier(target)
            .set_db_subnet_group_name(settings.subnet_group.clone())
            .set_vpc_security_group_ids(
                (!settings.security_groups.is_empty()).then(|| settings.security_groups.clone()),
            )
            .set_db_parameter_group_name(settings.parameter_group.clone())
            .set_option_group_name(settings.option_group.clone())
            .publicly_accessible(false)
            .tags(
                aws_sdk_rds::types::Tag::builder()
                    .key("lifeboat:restored-from")
                    .value(snapshot)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| rds_error("RestoreDBInstanceFromDBSnapshot", e))?;
        Ok(())
    }

    async fn placement(&self, region: &Region, instance: &str) -> PortResult<Option<RestoreSettings>> {
        let out = match self
            .client(region)?
            .describe_db_instances()
            .db_instance_identifier(instance)
            .send()
            .await
            .map_err(|e| rds_error("DescribeDBInstances", e))
        {
            Ok(out) => out,
            Err(PortError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(out.db_instances().first().map(|db| RestoreSettings {
            subnet_group: db
                .db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .map(str::to_owned),
            security_groups: db
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                .collect(),
            parameter_group: db
                .db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name())
                .and_then(named_group),
            cluster_parameter_group: None,
            option_group: db
                .option_group_memberships()
                .first()
                .and_then(|g| g.option_group_name())
                .and_then(named_group),
        }))
    }

    async fn restore_cluster(
        &self,
        region: &Region,
        snapshot: &str,
        target: &str,
        settings: &RestoreSettings,
    ) -> PortResult<()> {
        let client = self.client(region)?;
        let engine = client
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(snapshot)
            .send()
            .await
            .map_err(|e| rds_error("DescribeDBClusterSnapshots", e))?
            .db_cluster_snapshots()
            .first()
            .and_then(|s| s.engine())
            .map(str::to_owned)
            .ok_or_else(|| PortError::NotFound(format!("cluster snapshot {snapshot}")))?;
        client
            .restore_db_cluster_from_snapshot()
            .snapshot_identifier(snapshot)
            .db_cluster_identifier(target)
            .engine(engine)
            .set_db_subnet_group_name(settings.subnet_group.clone())
            .set_vpc_security_group_ids(
                (!settings.security_groups.is_empty()).then(|| settings.security_groups.clone()),
            )
            .set_db_cluster_parameter_group_name(settings.cluster_parameter_group.clone())
            .tags(
                aws_sdk_rds::types::Tag::builder()
                    .key("lifeboat:restored-from")
                    .value(snapshot)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("DBClusterAlreadyExistsFault") => {
                    PortError::AlreadyExists("RestoreDBClusterFromSnapshot: DB cluster already exists".into())
                }
                _ => rds_error("RestoreDBClusterFromSnapshot", e),
            })?;
        Ok(())
    }

    async fn create_writer(&self, region: &Region, cluster: &str, instance: &str, class: &str) -> PortResult<()> {
        let client = self.client(region)?;
        let engine = client
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .map_err(|e| rds_error("DescribeDBClusters", e))?
            .db_clusters()
            .first()
            .and_then(|c| c.engine())
            .map(str::to_owned)
            .ok_or_else(|| PortError::NotFound(format!("cluster {cluster}")))?;
        match client
            .create_db_instance()
            .db_instance_identifier(instance)
            .db_cluster_identifier(cluster)
            .db_instance_class(class)
            .engine(engine)
            .publicly_accessible(false)
            .send()
            .await
            .map_err(|e| rds_error("CreateDBInstance", e))
        {
            Ok(_) | Err(PortError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn cluster_status(&self, region: &Region, cluster: &str) -> PortResult<Option<RdsStatus>> {
        match self
            .client(region)?
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .map_err(|e| rds_error("DescribeDBClusters", e))
        {
            Ok(out) => Ok(out
                .db_clusters()
                .first()
                .map(|c| c.status().unwrap_or("unknown").to_owned())),
            Err(PortError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn cluster_placement(
        &self,
        region: &Region,
        cluster: &str,
    ) -> PortResult<Option<(RestoreSettings, Option<String>)>> {
        let client = self.client(region)?;
        let out = match client
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .map_err(|e| rds_error("DescribeDBClusters", e))
        {
            Ok(out) => out,
            Err(PortError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(c) = out.db_clusters().first() else {
            return Ok(None);
        };
        let settings = RestoreSettings {
            subnet_group: c.db_subnet_group().map(str::to_owned),
            security_groups: c
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                .collect(),
            parameter_group: None,
            cluster_parameter_group: c.db_cluster_parameter_group().and_then(named_group),
            option_group: None,
        };
        let class = super::rds::class_of_writer(&client, c).await?;
        Ok(Some((settings, class)))
    }

    async fn snapshot_status(&self, region: &Region, name: &str) -> PortResult<Option<RdsStatus>> {
        match self
            .client(region)?
            .describe_db_snapshots()
            .db_snapshot_identifier(name)
            .send()
            .await
            .map_err(|e| rds_error("DescribeDBSnapshots", e))
        {
            Ok(out) => Ok(out
                .db_snapshots()
                .first()
                .map(|s| s.status().unwrap_or("unknown").to_owned())),
            Err(PortError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn instance_status(&self, region: &Region, instance: &str) -> PortResult<Option<RdsStatus>> {
        match self
            .client(region)?
            .describe_db_instances()
            .db_instance_identifier(instance)
            .send()
            .await
            .map_err(|e| rds_error("DescribeDBInstances", e))
        {
            Ok(out) => Ok(out
                .db_instances()
                .first()
                .map(|i| i.db_instance_status().unwrap_or("unknown").to_owned())),
            Err(PortError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn rename_instance(&self, region: &Region, from: &str, to: &str) -> PortResult<()> {
        self.client(region)?
            .modify_db_instance()
            .db_instance_identifier(from)
            .new_db_instance_identifier(to)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| rds_error("ModifyDBInstance", e))?;
        Ok(())
    }

    async fn delete_instance_keeping_data(
        &self,
        region: &Region,
        instance: &str,
        final_snapshot: &str,
    ) -> PortResult<()> {
        self.client(region)?
            .delete_db_instance()
            .db_instance_identifier(instance)
            .skip_final_snapshot(false)
            .final_db_snapshot_identifier(final_snapshot)
            .delete_automated_backups(false)
            .send()
            .await
            .map_err(|e| rds_error("DeleteDBInstance", e))?;
        Ok(())
    }
}
