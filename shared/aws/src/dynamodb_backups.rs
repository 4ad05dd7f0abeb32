//! DynamoDB native on-demand backups, in one region (the caller builds one adapter per
//! region).
//!
//! DynamoDB identifies a backup by its ARN only: two `CreateBackup` calls with the same
//! name make two backups. Lifeboat names backups deterministically (resource, rule and
//! slot), so [`DynamoDbTableBackups::create_backup`] is made idempotent by looking first:
//! it lists the table's backups by that exact name and returns the one it finds instead of
//! creating a second. A race remains: two callers that list at the same moment both find
//! nothing and both create. That is acceptable because such a duplicate is never lost or
//! hidden: the next run's listing (`list_backups` by the `lb-` prefix) sees both backups
//! under one name, `create_backup` keeps returning the oldest of them, and retention
//! expires the extra one. The window is one ListBackups round trip, and only overlapping
//! runs for the same slot can hit it (a duplicate delivery, a retry racing a slow first
//! attempt); a caller that can serialize its runs (a catalog lease, as `copy-snapshots`
//! takes) closes it.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{BackupDescription, BackupDetails, BackupStatus, BackupSummary, BackupTypeFilter};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{port_error, to_chrono};
use lifeboat_ports::{PortError, PortResult, SnapshotStatus, TableBackup, TableBackups};

/// [`TableBackups`] over the DynamoDB API of one region.
#[derive(Debug, Clone)]
pub struct DynamoDbTableBackups {
    client: Client,
}

impl DynamoDbTableBackups {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// DynamoDB's errors in the domain's words. `LimitExceededException` here counts
/// concurrent control-plane operations of the account (table and backup operations in
/// flight), not backups: it clears as they finish, so it is transient (`Throttled`), unlike
/// the service quotas the shared table maps it to.
#[allow(clippy::needless_pass_by_value)]
fn backup_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match port_error(operation, err) {
        PortError::QuotaExceeded(message) => PortError::Throttled(message),
        other => other,
    }
}

fn status(s: &BackupStatus) -> SnapshotStatus {
    match s {
        BackupStatus::Creating => SnapshotStatus::Creating,
        BackupStatus::Available => SnapshotStatus::Available,
        other => SnapshotStatus::Other(other.as_str().to_ascii_lowercase()),
    }
}

fn is_deleted(s: &SnapshotStatus) -> bool {
    matches!(s, SnapshotStatus::Other(s) if s == "deleted")
}

/// `arn:aws:dynamodb:<region>:<account>:table/<table>/backup/<id>` → the table's ARN.
fn table_arn_of(backup_arn: &str) -> Option<String> {
    backup_arn
        .split_once("/backup/")
        .map(|(table, _)| table.to_owned())
        .filter(|table| table.contains(":table/"))
}

fn size(bytes: Option<i64>) -> Option<u64> {
    bytes.and_then(|b| u64::try_from(b).ok())
}

fn from_details(d: &BackupDetails, table_arn: String) -> TableBackup {
    TableBackup {
        table_arn,
        backup_arn: d.backup_arn().to_owned(),
        name: d.backup_name().to_owned(),
        status: status(d.backup_status()),
        created_at: to_chrono(d.backup_creation_date_time()),
        size_bytes: size(d.backup_size_bytes()),
    }
}

fn from_description(d: &BackupDescription) -> Option<TableBackup> {
    let details = d.backup_details()?;
    let table_arn = d
        .source_table_details()
        .and_then(|t| t.table_arn())
        .map(str::to_owned)
        .or_else(|| table_arn_of(details.backup_arn()))
        .unwrap_or_default();
    Some(from_details(details, table_arn))
}

pub(crate) fn from_summary(s: &BackupSummary) -> Option<TableBackup> {
    let backup_arn = s.backup_arn()?;
    Some(TableBackup {
        table_arn: s
            .table_arn()
            .map(str::to_owned)
            .or_else(|| table_arn_of(backup_arn))
            .unwrap_or_default(),
        backup_arn: backup_arn.to_owned(),
        name: s.backup_name().unwrap_or_default().to_owned(),
        status: s.backup_status().map_or(SnapshotStatus::Creating, status),
        created_at: s.backup_creation_date_time().and_then(to_chrono),
        size_bytes: size(s.backup_size_bytes()),
    })
}

#[async_trait]
impl TableBackups for DynamoDbTableBackups {
    async fn create_backup(&self, table_name: &str, backup_name: &str) -> PortResult<TableBackup> {
        // Idempotent by looking first (see the module's documentation for the race).
        let existing = self
            .list_backups(table_name, backup_name)
            .await?
            .into_iter()
            .filter(|b| b.name == backup_name && !is_deleted(&b.status))
            .min_by(|a, b| (a.created_at, &a.backup_arn).cmp(&(b.created_at, &b.backup_arn)));
        if let Some(backup) = existing {
            return Ok(backup);
        }
        let out = self
            .client
            .create_backup()
            .table_name(table_name)
            .backup_name(backup_name)
            .send()
            .await
            .map_err(|e| backup_error("CreateBackup", e))?;
        let details = out
            .backup_details()
            .ok_or_else(|| PortError::Unavailable(format!("CreateBackup {backup_name}: response carried no backup")))?;
        match table_arn_of(details.backup_arn()) {
            Some(table_arn) => Ok(from_details(details, table_arn)),
            // CreateBackup does not name the table's ARN; DescribeBackup does.
            None => Ok(self
                .describe_backup(details.backup_arn())
                .await?
                .unwrap_or_else(|| from_details(details, String::new()))),
        }
    }

    async fn describe_backup(&self, backup_arn: &str) -> PortResult<Option<TableBackup>> {
        match self.client.describe_backup().backup_arn(backup_arn).send().await {
            Ok(out) => Ok(out.backup_description().and_then(from_description)),
            Err(e) => match backup_error("DescribeBackup", e) {
                PortError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list_backups(&self, table_name: &str, prefix: &str) -> PortResult<Vec<TableBackup>> {
        // ListBackups has no paginator in the SDK: follow LastEvaluatedBackupArn by hand.
        let mut found = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .list_backups()
                .table_name(table_name)
                .backup_type(BackupTypeFilter::User)
                .set_exclusive_start_backup_arn(start.clone())
                .send()
                .await
                .map_err(|e| backup_error("ListBackups", e))?;
            found.extend(
                out.backup_summaries()
                    .iter()
                    .filter(|s| s.backup_name().is_some_and(|n| n.starts_with(prefix)))
                    .filter_map(from_summary),
            );
            match out.last_evaluated_backup_arn() {
                Some(next) if !next.is_empty() => {
                    if start.as_deref() == Some(next) {
                        return Err(PortError::Unavailable(format!(
                            "ListBackups {table_name}: the listing did not advance past {next}"
                        )));
                    }
                    start = Some(next.to_owned());
                }
                _ => return Ok(found),
            }
        }
    }

    async fn delete_backup(&self, backup_arn: &str) -> PortResult<()> {
        match self.client.delete_backup().backup_arn(backup_arn).send().await {
            Ok(_) => Ok(()),
            Err(e) => match backup_error("DeleteBackup", e) {
                PortError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_arn_is_the_backup_arn_up_to_backup() {
        assert_eq!(
            table_arn_of("arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/01489173575360-b308cd7d")
                .as_deref(),
            Some("arn:aws:dynamodb:us-east-1:123456789012:table/orders")
        );
        assert_eq!(
            table_arn_of("arn:aws:backup:us-east-1:123456789012:recovery-point:x"),
            None
        );
    }
}
