//! DynamoDB tables behind the [`SnapshotStore`] port: a table's native on-demand backup is
//! its snapshot, so create-snapshots, track-recovery-points and expire-recovery-points
//! protect tables exactly as they protect databases.
//!
//! What differs from RDS, and how it is handled here:
//! - A backup has no tags: its `lb-` name marks it as Lifeboat's, and its policy and slot
//!   are read back from that deterministic name
//!   ([`lifeboat_domain::naming::parse_scheduled_name`]) when adopting.
//! - A backup is identified by its ARN, not its name: lookups by name list the region's
//!   backups, and deleting by name deletes every backup of that name (the duplicates that
//!   the create race described in [`super::dynamodb_backups`] can leave).
//! - Native backups cannot be copied to another region. A table's copy in another region
//!   is an export of the table at the backup's time into that region's export bucket
//!   ([`super::table_exports`]), under the backup's name: it is described and deleted by
//!   that name in the destination region like an RDS copy. Without an export bucket
//!   (`TABLE_EXPORT_BUCKET`) a copy is refused as invalid.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::BackupTypeFilter;

use super::dynamodb_backups::{DynamoDbTableBackups, from_summary};
use super::{PerRegion, port_error};
use lifeboat_domain::naming::{SNAPSHOT_PREFIX, parse_scheduled_name, tags};
use lifeboat_domain::{Region, ResourceKind, ResourceRef};
use lifeboat_ports::{
    DiscoveredResource, PortError, PortResult, Snapshot, SnapshotStatus, SnapshotStore, TableBackup, TableBackups, Tag,
};

/// [`SnapshotStore`] for [`ResourceKind::DynamoDbTable`], in any region.
#[derive(Debug)]
pub struct DynamoDbTableSnapshots {
    clients: PerRegion<Client>,
    exports: Option<super::table_exports::TableExports>,
}

/// A DynamoDB client for `region`, counting its calls.
pub fn dynamodb_client(base: &SdkConfig, region: &Region) -> Client {
    Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(base)
            .region(aws_sdk_dynamodb::config::Region::new(region.to_string()))
            .interceptor(super::calls::CountCalls)
            .build(),
    )
}

impl DynamoDbTableSnapshots {
    pub fn new(base: SdkConfig) -> Self {
        Self {
            clients: PerRegion::new(base, dynamodb_client),
            exports: None,
        }
    }

    /// Copies to other regions are exports into their export buckets.
    #[must_use]
    pub fn with_exports(mut self, exports: super::table_exports::TableExports) -> Self {
        self.exports = Some(exports);
        self
    }

    pub fn with_clients(clients: std::collections::HashMap<Region, Client>) -> Self {
        Self {
            clients: PerRegion::with_clients(clients),
            exports: None,
        }
    }

    fn backups(&self, region: &Region) -> PortResult<DynamoDbTableBackups> {
        Ok(DynamoDbTableBackups::new(self.clients.get(region)?))
    }

    /// Every user backup in `region` called exactly `name`, oldest first.
    async fn by_name(&self, region: &Region, name: &str) -> PortResult<Vec<TableBackup>> {
        self.listed(region, |n| n == name).await
    }

    /// Every user backup in `region` (of any table) whose name `keep` accepts, not deleted,
    /// oldest first: one paged ListBackups.
    async fn listed(&self, region: &Region, keep: impl Fn(&str) -> bool) -> PortResult<Vec<TableBackup>> {
        let client = self.clients.get(region)?;
        let mut found = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = client
                .list_backups()
                .backup_type(BackupTypeFilter::User)
                .set_exclusive_start_backup_arn(start.clone())
                .send()
                .await
                .map_err(|e| port_error("ListBackups", e))?;
            found.extend(
                out.backup_summaries()
                    .iter()
                    .filter(|s| s.backup_name().is_some_and(&keep))
                    .filter_map(from_summary)
                    .filter(|b| !is_deleted(&b.status)),
            );
            match out.last_evaluated_backup_arn() {
                Some(next) if !next.is_empty() && start.as_deref() != Some(next) => start = Some(next.to_owned()),
                _ => break,
            }
        }
        found.sort_by(|a, b| (a.created_at, &a.backup_arn).cmp(&(b.created_at, &b.backup_arn)));
        Ok(found)
    }
}

/// A table backup as a snapshot; `tags` are what Lifeboat knows of it (backups carry none).
fn snapshot(region: &Region, b: TableBackup, tags: Vec<Tag>) -> Snapshot {
    Snapshot {
        kind: ResourceKind::DynamoDbTable,
        region: region.clone(),
        name: b.name,
        arn: Some(b.backup_arn),
        status: b.status,
        created_at: b.created_at,
        kms_key_id: None,
        tags,
        size_bytes: b.size_bytes,
    }
}

/// A backup cannot carry tags; Lifeboat's mark on it is its `lb-` name (the name the
/// catalog recorded), which stands for the `created-by` tag an RDS snapshot carries.
fn ownership(name: &str) -> Vec<Tag> {
    if name.starts_with(&format!("{SNAPSHOT_PREFIX}-")) {
        vec![Tag::new(tags::CREATED_BY, tags::CREATED_BY_VALUE)]
    } else {
        Vec::new()
    }
}

/// `arn:…:table/<name>/backup/<id>` → `<name>`.
fn table_of_backup_arn(arn: &str) -> Option<&str> {
    let rest = arn.split_once(":table/")?.1;
    let (name, _) = rest.split_once("/backup/")?;
    lifeboat_domain::dr::plan::is_table_name(name).then_some(name)
}

fn is_deleted(s: &SnapshotStatus) -> bool {
    matches!(s, SnapshotStatus::Other(s) if s == "deleted")
}

fn not_a_table(kind: ResourceKind) -> PortError {
    PortError::Invalid(format!("{kind} resources have no DynamoDB backups"))
}

#[async_trait]
impl SnapshotStore for DynamoDbTableSnapshots {
    /// Every table of `region` with its tags: ListTables, one DescribeTable (for the
    /// account part of the ARNs), then ListTagsOfResource per table. A table deleted while
    /// it is being listed is left out.
    async fn resources(&self, region: &Region) -> PortResult<Vec<DiscoveredResource>> {
        let client = self.clients.get(region)?;
        let names: Vec<String> = client
            .list_tables()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| port_error("ListTables", e))?;
        // The account part of table ARNs, from the first table that still exists.
        let mut arn_prefix = None;
        for name in &names {
            match client.describe_table().table_name(name).send().await {
                Ok(out) => {
                    arn_prefix = out
                        .table()
                        .and_then(|t| t.table_arn())
                        .and_then(|arn| arn.strip_suffix(name.as_str()))
                        .map(str::to_owned);
                    if arn_prefix.is_some() {
                        break;
                    }
                }
                Err(e) => match port_error("DescribeTable", e) {
                    // Deleted since the listing: not a resource any more.
                    PortError::NotFound(_) => {}
                    other => return Err(other),
                },
            }
        }
        let Some(arn_prefix) = arn_prefix else {
            return Ok(Vec::new());
        };
        let mut found = Vec::with_capacity(names.len());
        'tables: for name in names {
            let arn = format!("{arn_prefix}{name}");
            let mut tags = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = match client
                    .list_tags_of_resource()
                    .resource_arn(&arn)
                    .set_next_token(token.clone())
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(e) => match port_error("ListTagsOfResource", e) {
                        PortError::NotFound(_) => continue 'tables,
                        other => return Err(other),
                    },
                };
                tags.extend(out.tags().iter().map(|t| Tag::new(t.key(), t.value())));
                match out.next_token() {
                    Some(next) if !next.is_empty() && token.as_deref() != Some(next) => token = Some(next.to_owned()),
                    _ => break,
                }
            }
            found.push(DiscoveredResource {
                resource: ResourceRef {
                    kind: ResourceKind::DynamoDbTable,
                    id: name,
                    arn,
                    region: region.clone(),
                },
                tags,
            });
        }
        Ok(found)
    }

    async fn create_snapshot(&self, resource: &ResourceRef, name: &str, tags: &[Tag]) -> PortResult<Snapshot> {
        if resource.kind != ResourceKind::DynamoDbTable {
            return Err(not_a_table(resource.kind));
        }
        let backup = self
            .backups(&resource.region)?
            .create_backup(&resource.id, name)
            .await?;
        Ok(snapshot(&resource.region, backup, tags.to_vec()))
    }

    async fn describe_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<Option<Snapshot>> {
        if kind != ResourceKind::DynamoDbTable {
            return Err(not_a_table(kind));
        }
        if let Some(b) = self.by_name(region, name).await?.into_iter().next() {
            return Ok(Some(snapshot(region, b, ownership(name))));
        }
        // A copy in another region: an export of that name in the region's bucket.
        let Some(exports) = &self.exports else {
            return Ok(None);
        };
        Ok(exports.describe(region, name).await?.map(|e| Snapshot {
            kind: ResourceKind::DynamoDbTable,
            region: region.clone(),
            name: name.to_owned(),
            arn: Some(e.marker.export_arn),
            status: e.status,
            created_at: Some(e.marker.export_time),
            kms_key_id: None,
            tags: ownership(name),
            // An export's size is not what its marker records.
            size_bytes: None,
        }))
    }

    /// The tables' `lb-` backups, with the tags an RDS snapshot of Lifeboat's would carry,
    /// read back from their names: one paged ListBackups of the region.
    async fn lifeboat_snapshots(
        &self,
        region: &Region,
        kind: ResourceKind,
        resources: &[ResourceRef],
    ) -> PortResult<Vec<(usize, Snapshot)>> {
        if kind != ResourceKind::DynamoDbTable {
            return Err(not_a_table(kind));
        }
        let prefix = format!("{SNAPSHOT_PREFIX}-");
        let by_table = lifeboat_ports::snapshots::index_by_id(resources, region, kind);
        let backups = self.listed(region, |n| n.starts_with(&prefix)).await?;
        Ok(backups
            .into_iter()
            .filter_map(|b| {
                // arn:aws:dynamodb:<region>:<account>:table/<name>
                let table = b.table_arn.rsplit_once(":table/").map(|(_, t)| t)?;
                let i = *by_table.get(table)?;
                let resource = &resources[i];
                let mut t = ownership(&b.name);
                t.push(Tag::new(tags::SOURCE, &resource.arn));
                if let Some((policy, slot)) = parse_scheduled_name(&b.name, resource) {
                    t.push(Tag::new(tags::POLICY, policy.as_str()));
                    t.push(Tag::new(tags::SLOT, slot.compact()));
                }
                Some((i, snapshot(region, b, t)))
            })
            .collect())
    }

    async fn share_snapshot(&self, _region: &Region, _kind: ResourceKind, name: &str, account: &str) -> PortResult<()> {
        Err(PortError::Invalid(format!(
            "DynamoDB backup {name} cannot be shared with account {account}: native backups cannot (AWS Backup can copy to another account)"
        )))
    }

    /// Exports the table as it was when the backup `source` was taken (point-in-time
    /// recovery must be on) into `destination`'s export bucket as the copy `name`,
    /// encrypted with `kms_key_id` (SSE-KMS; empty: the bucket's default encryption).
    async fn copy_snapshot(
        &self,
        source: &Snapshot,
        destination: &Region,
        name: &str,
        kms_key_id: &str,
        tags: &[Tag],
    ) -> PortResult<Snapshot> {
        if source.kind != ResourceKind::DynamoDbTable {
            return Err(not_a_table(source.kind));
        }
        let Some(exports) = &self.exports else {
            return Err(PortError::Invalid(format!(
                "DynamoDB backup {} cannot be copied to {destination}: native backups stay in their region, and no export bucket is configured (TABLE_EXPORT_BUCKET)",
                source.name
            )));
        };
        let table = source
            .arn
            .as_deref()
            .and_then(table_of_backup_arn)
            .ok_or_else(|| PortError::Invalid(format!("backup {}: no table ARN in its ARN", source.name)))?;
        let at = source
            .created_at
            .ok_or_else(|| PortError::Invalid(format!("backup {}: no creation time", source.name)))?;
        let key = (!kms_key_id.is_empty()).then_some(kms_key_id);
        let marker = exports.start(&source.region, table, at, destination, name, key).await?;
        Ok(Snapshot {
            kind: ResourceKind::DynamoDbTable,
            region: destination.clone(),
            name: name.to_owned(),
            arn: Some(marker.export_arn),
            status: SnapshotStatus::Creating,
            created_at: Some(at),
            kms_key_id: key.map(str::to_owned),
            tags: tags.to_vec(),
            size_bytes: None,
        })
    }

    async fn delete_snapshot(&self, region: &Region, kind: ResourceKind, name: &str) -> PortResult<()> {
        if kind != ResourceKind::DynamoDbTable {
            return Err(not_a_table(kind));
        }
        let backups = self.backups(region)?;
        for b in self.by_name(region, name).await? {
            backups.delete_backup(&b.backup_arn).await?;
        }
        if let Some(exports) = &self.exports {
            exports.delete(region, name).await?;
        }
        Ok(())
    }
}
