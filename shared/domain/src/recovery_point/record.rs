//! A recovery point as the catalog stores it: one flat record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Detail, Failure, Holds, ObjectsDetail, RecoveryPoint, RecoveryPointId, SnapshotDetail, Status, TableBackupDetail,
    TableChecksum, VerificationFailure,
};
use crate::{PolicyName, Region, ResourceKind, ResourceRef, Slot};

/// A recovery point as the catalog stores it: one flat record, every kind's detail an
/// optional field. Reading picks the detail by the resource's kind (a vault point by its
/// vault); a field of another kind, which no writer produces, is ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    id: RecoveryPointId,
    resource: ResourceRef,
    policy: PolicyName,
    slot: Slot,
    location: Region,
    snapshot_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup_vault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    shared_with: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<RecoveryPointId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
    status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<Failure>,
    #[serde(default)]
    adopted: bool,
    #[serde(default)]
    emergency: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Holds::is_empty")]
    holds: Holds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifest: Option<crate::manifest::ManifestRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verification_failed: Option<VerificationFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restore_checked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tiering: Option<crate::tiering::TierRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    archive: Option<crate::archive::ArchiveRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    export: Option<crate::export::ExportRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table_checksum: Option<TableChecksum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    writer_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restore_test: Option<crate::restore_test::RestoreTest>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: u64,
}

impl From<Record> for RecoveryPoint {
    fn from(r: Record) -> Self {
        let objects = || ObjectsDetail {
            manifest: r.manifest.clone(),
            restore_checked_at: r.restore_checked_at,
            tiering: r.tiering.clone(),
            archive: r.archive.clone(),
        };
        let detail = match (&r.backup_vault, r.resource.kind) {
            (Some(vault), _) => Detail::vault(vault, r.backup_job_id.clone()),
            (None, ResourceKind::RdsInstance | ResourceKind::AuroraCluster) => Detail::Snapshot(SnapshotDetail {
                export: r.export.clone(),
                writer_class: r.writer_class.clone(),
                restore_test: r.restore_test.clone(),
            }),
            (None, ResourceKind::DynamoDbTable) => Detail::TableBackup(TableBackupDetail {
                table_checksum: r.table_checksum.clone(),
            }),
            (None, ResourceKind::S3Prefix) => Detail::S3Run(objects()),
            (None, ResourceKind::ConfigBundle) => Detail::ConfigBundle(objects()),
        };
        Self {
            id: r.id,
            resource: r.resource,
            policy: r.policy,
            slot: r.slot,
            location: r.location,
            snapshot_name: r.snapshot_name,
            snapshot_arn: r.snapshot_arn,
            shared_with: r.shared_with,
            source: r.source,
            kms_key_id: r.kms_key_id,
            status: r.status,
            failure: r.failure,
            adopted: r.adopted,
            emergency: r.emergency,
            verified_at: r.verified_at,
            verification_failed: r.verification_failed,
            holds: r.holds,
            size_bytes: r.size_bytes,
            detail,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

impl From<RecoveryPoint> for Record {
    fn from(p: RecoveryPoint) -> Self {
        let mut r = Self {
            id: p.id,
            resource: p.resource,
            policy: p.policy,
            slot: p.slot,
            location: p.location,
            snapshot_name: p.snapshot_name,
            snapshot_arn: p.snapshot_arn,
            backup_vault: None,
            backup_job_id: None,
            shared_with: p.shared_with,
            source: p.source,
            kms_key_id: p.kms_key_id,
            status: p.status,
            failure: p.failure,
            adopted: p.adopted,
            emergency: p.emergency,
            verified_at: p.verified_at,
            holds: p.holds,
            manifest: None,
            verification_failed: p.verification_failed,
            restore_checked_at: None,
            tiering: None,
            archive: None,
            export: None,
            table_checksum: None,
            writer_class: None,
            size_bytes: p.size_bytes,
            restore_test: None,
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
        };
        match p.detail {
            Detail::Snapshot(d) => {
                r.export = d.export;
                r.writer_class = d.writer_class;
                r.restore_test = d.restore_test;
            }
            Detail::TableBackup(d) => r.table_checksum = d.table_checksum,
            Detail::S3Run(d) | Detail::ConfigBundle(d) => {
                r.manifest = d.manifest;
                r.restore_checked_at = d.restore_checked_at;
                r.tiering = d.tiering;
                r.archive = d.archive;
            }
            Detail::Vault(d) => {
                r.backup_vault = Some(d.vault);
                r.backup_job_id = d.job_id;
            }
        }
        r
    }
}
