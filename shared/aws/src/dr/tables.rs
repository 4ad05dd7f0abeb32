//! DynamoDB tables: restored from their native backups or imported from their exported
//! copies, scanned, deleted.

use super::{
    HashMap, PerRegion, PortError, PortResult, ProvideErrorMetadata, Region, SdkConfig, async_trait, port_error,
    to_chrono,
};

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
