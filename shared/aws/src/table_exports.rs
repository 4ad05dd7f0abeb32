//! A DynamoDB table's cross-region copy: an export of the table at its backup's time
//! (`ExportTableToPointInTime`, DynamoDB JSON) into an S3 bucket of the destination
//! region, and the way back: `ImportTable` from that export into a new table of the
//! destination region, which needs nothing of the source region.
//!
//! Layout, under Lifeboat's prefix in the destination region's bucket:
//! `lifeboat-table-exports/<copy name>/lifeboat-export.json` (what Lifeboat knows of the
//! export: its ARN, the table, the export time and the table's key schema, attribute
//! types and global secondary indexes, which `ImportTable` needs and the source region may
//! not be there to tell) and `lifeboat-table-exports/<copy name>/AWSDynamoDB/<export
//! id>/…` (what DynamoDB writes: `data/*.json.gz` and, on AWS, manifest files). Only
//! objects under `lifeboat-table-exports/` are ever deleted.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, ExportFormat, GlobalSecondaryIndex, InputCompressionType, InputFormat,
    KeySchemaElement, KeyType, Projection, ProjectionType, S3BucketSource, S3SseAlgorithm, ScalarAttributeType,
    TableCreationParameters,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{PerRegion, port_error};
use lifeboat_domain::Region;
use lifeboat_domain::s3::ExportBuckets;
use lifeboat_ports::{PortError, PortResult, SnapshotStatus};

/// Every object Lifeboat writes for table exports is under this prefix.
pub const EXPORT_PREFIX: &str = "lifeboat-table-exports";
const MARKER: &str = "lifeboat-export.json";

/// The S3 prefix of the copy `name` (a recovery point's snapshot name: no `/`).
pub fn prefix(name: &str) -> PortResult<String> {
    if name.is_empty() || name.len() > 255 || name.contains('/') || name.starts_with('.') {
        return Err(PortError::Invalid(format!("{name:.80?} is not a table copy name")));
    }
    Ok(format!("{EXPORT_PREFIX}/{name}"))
}

/// A key attribute or an attribute type: (name, `HASH`/`RANGE` or `S`/`N`/`B`).
pub type Pair = (String, String);

/// A global secondary index as the table declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexShape {
    pub name: String,
    pub key_schema: Vec<Pair>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_key_attributes: Vec<String>,
}

/// What `ImportTable` needs to recreate the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableShape {
    pub key_schema: Vec<Pair>,
    pub attributes: Vec<Pair>,
    #[serde(default)]
    pub indexes: Vec<IndexShape>,
}

/// `lifeboat-export.json`: written next to the export once DynamoDB has accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportMarker {
    pub export_arn: String,
    pub table_arn: String,
    pub export_time: DateTime<Utc>,
    pub table: TableShape,
}

/// An export as DescribeExport reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportState {
    pub marker: ExportMarker,
    pub status: SnapshotStatus,
    pub failure: Option<String>,
}

/// An import as DescribeImport reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportState {
    pub import_arn: String,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`, `CANCELLING`, `CANCELLED`.
    pub status: String,
    pub table_arn: Option<String>,
    pub imported_items: Option<u64>,
    pub failure: Option<String>,
}

/// A 32-hex-digit client token derived from `parts`: the same request made again (a
/// retried step) is the same request to DynamoDB, which returns the first one's result.
pub fn client_token(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(16)
        .fold(String::with_capacity(32), |mut out, b| {
            use std::fmt::Write as _;
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// S3's errors, with a missing object or bucket as `NotFound`.
#[allow(clippy::needless_pass_by_value)]
fn s3_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    match (code.as_deref(), port_error(operation, err)) {
        (Some("NoSuchKey" | "NoSuchBucket" | "NotFound"), e) => PortError::NotFound(e.to_string()),
        (_, e) => e,
    }
}

/// DynamoDB's export and import errors in the domain's words.
#[allow(clippy::needless_pass_by_value)]
fn ddb_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    match (code.as_deref(), port_error(operation, err)) {
        // ImportTable: the target table exists.
        (Some("ResourceInUseException" | "TableAlreadyExistsException"), e) => PortError::AlreadyExists(e.to_string()),
        (Some("PointInTimeRecoveryUnavailableException"), e) => PortError::Invalid(format!(
            "{e} (a table's cross-region copy is an export to a point in time: enable point-in-time recovery on the table)"
        )),
        (Some("ExportConflictException" | "ImportConflictException" | "IdempotentParameterMismatchException"), e) => {
            PortError::Conflict(e.to_string())
        }
        (Some("LimitExceededException"), e) => PortError::Throttled(e.to_string()),
        (Some("TableNotFoundException" | "ExportNotFoundException" | "ImportNotFoundException"), e) => {
            PortError::NotFound(e.to_string())
        }
        (_, e) => e,
    }
}

fn region_of_arn(arn: &str) -> PortResult<Region> {
    arn.split(':')
        .nth(3)
        .and_then(|r| Region::parse(r).ok())
        .ok_or_else(|| PortError::Invalid(format!("{arn:.120?} is not a DynamoDB ARN")))
}

fn pairs_of_keys(k: &[KeySchemaElement]) -> Vec<Pair> {
    k.iter()
        .map(|e| (e.attribute_name().to_owned(), e.key_type().as_str().to_owned()))
        .collect()
}

fn keys_of_pairs(k: &[Pair]) -> PortResult<Vec<KeySchemaElement>> {
    k.iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(|e| PortError::Invalid(format!("key schema: {e}")))
        })
        .collect()
}

fn s3_client(base: &SdkConfig, region: &Region, path_style: bool) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(base)
            .region(aws_sdk_s3::config::Region::new(region.to_string()))
            .force_path_style(path_style)
            .interceptor(super::calls::CountCalls)
            .build(),
    )
}

fn s3_virtual_hosted(base: &SdkConfig, region: &Region) -> aws_sdk_s3::Client {
    s3_client(base, region, false)
}

fn s3_path_style(base: &SdkConfig, region: &Region) -> aws_sdk_s3::Client {
    s3_client(base, region, true)
}

/// Table exports and imports, with the export bucket of each region.
pub struct TableExports {
    dynamodb: PerRegion<aws_sdk_dynamodb::Client>,
    s3: PerRegion<aws_sdk_s3::Client>,
    buckets: ExportBuckets,
}

impl std::fmt::Debug for TableExports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableExports")
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

impl TableExports {
    /// `path_style` for the emulator (`S3_FORCE_PATH_STYLE`).
    pub fn new(base: SdkConfig, buckets: ExportBuckets, path_style: bool) -> Self {
        Self {
            dynamodb: PerRegion::new(base.clone(), super::table_snapshots::dynamodb_client),
            s3: PerRegion::new(base, if path_style { s3_path_style } else { s3_virtual_hosted }),
            buckets,
        }
    }

    /// Over prebuilt clients (tests with mocked clients).
    pub fn with_clients(
        dynamodb: std::collections::HashMap<Region, aws_sdk_dynamodb::Client>,
        s3: std::collections::HashMap<Region, aws_sdk_s3::Client>,
        buckets: ExportBuckets,
    ) -> Self {
        Self {
            dynamodb: PerRegion::with_clients(dynamodb),
            s3: PerRegion::with_clients(s3),
            buckets,
        }
    }

    pub fn bucket(&self, region: &Region) -> String {
        self.buckets.bucket(region)
    }

    /// The marker of the copy `name` in `region`'s bucket; `None` when there is none.
    pub async fn marker(&self, region: &Region, name: &str) -> PortResult<Option<ExportMarker>> {
        let key = format!("{}/{MARKER}", prefix(name)?);
        let out = match self
            .s3
            .get(region)?
            .get_object()
            .bucket(self.bucket(region))
            .key(&key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match s3_error("GetObject", e) {
                    PortError::NotFound(_) => Ok(None),
                    other => Err(other),
                };
            }
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::Unavailable(format!("GetObject {key}: {e}")))?
            .into_bytes();
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| PortError::Invalid(format!("{key}: not an export record ({e})")))
    }

    /// The table's shape, read in its own region.
    async fn shape(&self, region: &Region, table: &str) -> PortResult<(String, TableShape)> {
        let out = self
            .dynamodb
            .get(region)?
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| ddb_error("DescribeTable", e))?;
        let t = out
            .table()
            .ok_or_else(|| PortError::NotFound(format!("table {table} in {region}")))?;
        let arn = t
            .table_arn()
            .ok_or_else(|| PortError::Invalid(format!("table {table}: no ARN")))?
            .to_owned();
        let mut indexes: Vec<IndexShape> = t
            .global_secondary_indexes()
            .iter()
            .map(|i| IndexShape {
                name: i.index_name().unwrap_or_default().to_owned(),
                key_schema: pairs_of_keys(i.key_schema()),
                projection: i
                    .projection()
                    .and_then(|p| p.projection_type())
                    .map_or("ALL", |p| p.as_str())
                    .to_owned(),
                non_key_attributes: i
                    .projection()
                    .map(|p| p.non_key_attributes().to_vec())
                    .unwrap_or_default(),
            })
            .collect();
        indexes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((
            arn,
            TableShape {
                key_schema: pairs_of_keys(t.key_schema()),
                attributes: t
                    .attribute_definitions()
                    .iter()
                    .map(|a| (a.attribute_name().to_owned(), a.attribute_type().as_str().to_owned()))
                    .collect(),
                indexes,
            },
        ))
    }

    /// Exports `table` (in `source`) as it was at `at` into `destination`'s bucket as the
    /// copy `name`, encrypted with `kms_key_id` (a key of `destination`; `None`: the
    /// bucket's default encryption), and records the export next to it. A copy of that
    /// name already recorded is `AlreadyExists`; a retried start makes no second export
    /// (the client token names the copy).
    pub async fn start(
        &self,
        source: &Region,
        table: &str,
        at: DateTime<Utc>,
        destination: &Region,
        name: &str,
        kms_key_id: Option<&str>,
    ) -> PortResult<ExportMarker> {
        let base = prefix(name)?;
        if self.marker(destination, name).await?.is_some() {
            return Err(PortError::AlreadyExists(format!("table copy {name} in {destination}")));
        }
        let (table_arn, shape) = self.shape(source, table).await?;
        let bucket = self.bucket(destination);
        let out = self
            .dynamodb
            .get(source)?
            .export_table_to_point_in_time()
            .table_arn(&table_arn)
            .export_time(aws_smithy_types::DateTime::from_secs(at.timestamp()))
            .s3_bucket(&bucket)
            .s3_prefix(&base)
            .export_format(ExportFormat::DynamodbJson)
            .set_s3_sse_algorithm(kms_key_id.map(|_| S3SseAlgorithm::Kms))
            .set_s3_sse_kms_key_id(kms_key_id.map(str::to_owned))
            .client_token(client_token(&["export", &table_arn, name]))
            .send()
            .await
            .map_err(|e| ddb_error("ExportTableToPointInTime", e))?;
        let export_arn = out
            .export_description()
            .and_then(|d| d.export_arn())
            .ok_or_else(|| PortError::Unavailable("ExportTableToPointInTime: no export ARN".into()))?
            .to_owned();
        let marker = ExportMarker {
            export_arn,
            table_arn,
            export_time: at,
            table: shape,
        };
        let body = serde_json::to_vec(&marker).map_err(|e| PortError::Invalid(e.to_string()))?;
        self.s3
            .get(destination)?
            .put_object()
            .bucket(&bucket)
            .key(format!("{base}/{MARKER}"))
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", e))?;
        Ok(marker)
    }

    /// The copy `name` in `region`: its record and the export's state (DescribeExport, in
    /// the source table's region); `None` when there is no such copy.
    pub async fn describe(&self, region: &Region, name: &str) -> PortResult<Option<ExportState>> {
        let Some(marker) = self.marker(region, name).await? else {
            return Ok(None);
        };
        let source = region_of_arn(&marker.table_arn)?;
        let out = self
            .dynamodb
            .get(&source)?
            .describe_export()
            .export_arn(&marker.export_arn)
            .send()
            .await;
        let (status, failure) = match out {
            Ok(out) => {
                let d = out.export_description();
                let status = match d
                    .and_then(|d| d.export_status())
                    .map(aws_sdk_dynamodb::types::ExportStatus::as_str)
                {
                    Some("COMPLETED") => SnapshotStatus::Available,
                    Some("IN_PROGRESS") | None => SnapshotStatus::Creating,
                    Some("FAILED") => SnapshotStatus::Failed,
                    Some(other) => SnapshotStatus::Other(other.to_ascii_lowercase()),
                };
                let failure = d.and_then(|d| {
                    d.failure_message()
                        .map(|m| format!("{}: {m}", d.failure_code().unwrap_or("failed")))
                });
                (status, failure)
            }
            Err(e) => match ddb_error("DescribeExport", e) {
                PortError::NotFound(m) => (SnapshotStatus::Failed, Some(m)),
                other => return Err(other),
            },
        };
        Ok(Some(ExportState {
            marker,
            status,
            failure,
        }))
    }

    /// Every object key under `under` in `region`'s bucket.
    async fn keys(&self, region: &Region, under: &str) -> PortResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .get(region)?
            .list_objects_v2()
            .bucket(self.bucket(region))
            .prefix(under)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) => match s3_error("ListObjectsV2", e) {
                    // No export bucket in this region: no copies in it.
                    PortError::NotFound(_) => return Ok(Vec::new()),
                    other => return Err(other),
                },
            };
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        Ok(keys)
    }

    /// Deletes the copy `name` in `region` (its record and everything DynamoDB wrote for
    /// it, all under Lifeboat's prefix); a missing copy is fine.
    pub async fn delete(&self, region: &Region, name: &str) -> PortResult<()> {
        let base = format!("{}/", prefix(name)?);
        let s3 = self.s3.get(region)?;
        let bucket = self.bucket(region);
        // The record last, so that a copy half deleted is still found and deleted again.
        let mut keys = self.keys(region, &base).await?;
        keys.sort_by_key(|k| k.ends_with(MARKER));
        for key in keys.into_iter().filter(|k| k.starts_with(&base)) {
            match s3.delete_object().bucket(&bucket).key(&key).send().await {
                Ok(_) => {}
                Err(e) => match s3_error("DeleteObject", e) {
                    PortError::NotFound(_) => {}
                    other => return Err(other),
                },
            }
        }
        Ok(())
    }

    /// Starts `ImportTable` of the copy `name` (in `region`'s bucket) into the new table
    /// `target` of `region`, with the recorded key schema, attribute types and global
    /// secondary indexes, on-demand. `token` makes a retried start the same import; a
    /// target that exists already (and is not that import) is `AlreadyExists`. Returns the
    /// import's ARN.
    pub async fn import(&self, region: &Region, name: &str, target: &str, token: &str) -> PortResult<String> {
        let marker = self
            .marker(region, name)
            .await?
            .ok_or_else(|| PortError::NotFound(format!("table copy {name} in {region}")))?;
        // DynamoDB writes the items under `AWSDynamoDB/<export id>/data/`; the manifests
        // beside them are not items, so the import reads the data folder only.
        let base = format!("{}/AWSDynamoDB/", prefix(name)?);
        let data = self
            .keys(region, &base)
            .await?
            .into_iter()
            .find_map(|k| k.find("/data/").map(|at| k[..at + "/data/".len()].to_owned()))
            .ok_or_else(|| PortError::NotFound(format!("table copy {name} in {region}: no exported data")))?;
        let shape = &marker.table;
        let attributes = shape
            .attributes
            .iter()
            .map(|(n, t)| {
                AttributeDefinition::builder()
                    .attribute_name(n)
                    .attribute_type(ScalarAttributeType::from(t.as_str()))
                    .build()
                    .map_err(|e| PortError::Invalid(format!("attribute {n}: {e}")))
            })
            .collect::<PortResult<Vec<_>>>()?;
        let indexes = shape
            .indexes
            .iter()
            .map(|i| {
                let projection = Projection::builder()
                    .projection_type(ProjectionType::from(i.projection.as_str()))
                    .set_non_key_attributes((!i.non_key_attributes.is_empty()).then(|| i.non_key_attributes.clone()))
                    .build();
                GlobalSecondaryIndex::builder()
                    .index_name(&i.name)
                    .set_key_schema(Some(keys_of_pairs(&i.key_schema)?))
                    .projection(projection)
                    .build()
                    .map_err(|e| PortError::Invalid(format!("index {}: {e}", i.name)))
            })
            .collect::<PortResult<Vec<_>>>()?;
        let parameters = TableCreationParameters::builder()
            .table_name(target)
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(keys_of_pairs(&shape.key_schema)?))
            .billing_mode(BillingMode::PayPerRequest)
            .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
            .build()
            .map_err(|e| PortError::Invalid(format!("table {target}: {e}")))?;
        let source = S3BucketSource::builder()
            .s3_bucket(self.bucket(region))
            .s3_key_prefix(data)
            .build()
            .map_err(|e| PortError::Invalid(format!("import source: {e}")))?;
        let out = self
            .dynamodb
            .get(region)?
            .import_table()
            .client_token(token)
            .s3_bucket_source(source)
            .input_format(InputFormat::DynamodbJson)
            .input_compression_type(InputCompressionType::Gzip)
            .table_creation_parameters(parameters)
            .send()
            .await
            .map_err(|e| ddb_error("ImportTable", e))?;
        out.import_table_description()
            .and_then(|d| d.import_arn())
            .map(str::to_owned)
            .ok_or_else(|| PortError::Unavailable("ImportTable: no import ARN".into()))
    }

    /// `None` when DynamoDB has no such import.
    pub async fn describe_import(&self, region: &Region, import_arn: &str) -> PortResult<Option<ImportState>> {
        let out = match self
            .dynamodb
            .get(region)?
            .describe_import()
            .import_arn(import_arn)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match ddb_error("DescribeImport", e) {
                    PortError::NotFound(_) => Ok(None),
                    other => Err(other),
                };
            }
        };
        let Some(d) = out.import_table_description() else {
            return Ok(None);
        };
        Ok(Some(ImportState {
            import_arn: d.import_arn().unwrap_or(import_arn).to_owned(),
            status: d.import_status().map_or("UNKNOWN", |s| s.as_str()).to_owned(),
            table_arn: d.table_arn().map(str::to_owned),
            imported_items: u64::try_from(d.imported_item_count()).ok(),
            failure: d.failure_message().map(str::to_owned),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_names_stay_under_lifeboat_prefix() {
        assert_eq!(
            prefix("lb-p-t-20260101").unwrap(),
            "lifeboat-table-exports/lb-p-t-20260101"
        );
        assert!(prefix("../x").is_err());
        assert!(prefix("a/b").is_err());
        assert!(prefix("").is_err());
    }

    #[test]
    fn client_tokens_are_deterministic_and_short() {
        let a = client_token(&["import", "x"]);
        assert_eq!(a, client_token(&["import", "x"]));
        assert_ne!(a, client_token(&["import", "y"]));
        assert_eq!(a.len(), 32);
    }
}
