//! Recovery points and their lifecycle.
//!
//! `pending → available → copying → copied`, or `failed` from any non-terminal state.
//! Every change goes through [`RecoveryPoint::transition`], which checks the move is legal
//! and bumps the version that the catalog's conditional write compares.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ParseError, PolicyName, Region, ResourceKind, ResourceRef, Slot};

/// `<region>/<db|cluster>/<snapshot name>`: unique, deterministic, readable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecoveryPointId(String);

impl RecoveryPointId {
    pub fn new(location: &Region, kind: ResourceKind, snapshot_name: &str) -> Self {
        Self(format!("{location}/{}/{snapshot_name}", kind.short()))
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut parts = s.splitn(3, '/');
        let ok = matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some(r), Some(k), Some(n))
                if Region::parse(r).is_ok() && ResourceKind::from_short(k).is_some()
                    && !n.is_empty() && n.len() <= 255
                    && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError {
                what: "recovery point id",
                value: s.chars().take(80).collect(),
                reason: "expected <region>/<db|cluster|s3|table>/<snapshot name>",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RecoveryPointId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<RecoveryPointId> for String {
    fn from(id: RecoveryPointId) -> Self {
        id.0
    }
}

impl fmt::Display for RecoveryPointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Requested; AWS is still creating the snapshot or copy.
    Pending,
    /// The snapshot exists and is usable in its location.
    Available,
    /// Copies to the policy's DR regions are in flight.
    Copying,
    /// Every copy the policy asks for is available.
    Copied,
    /// A step failed; see `failure`.
    Failed,
    /// Chosen for expiry; the snapshot is being deleted.
    Expiring,
    /// Deleted by retention; the record stays as history.
    Expired,
}

impl Status {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Available,
        Self::Copying,
        Self::Copied,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Available => "available",
            Self::Copying => "copying",
            Self::Copied => "copied",
            Self::Failed => "failed",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
        }
    }

    /// The lifecycle's legal moves. Staying put is not a transition.
    pub fn can_become(self, next: Self) -> bool {
        use Status::{Available, Copied, Copying, Expired, Expiring, Failed, Pending};
        matches!(
            (self, next),
            (Pending, Available | Failed)
                | (Available, Copying | Copied | Failed)
                | (Copying, Copied | Failed)
                | (Available | Copied | Failed, Expiring)
                | (Expiring, Expired)
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which step of the backup pipeline failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Create,
    Copy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub step: Step,
    /// A stable code, e.g. `snapshot-failed`, `kms-key`, `quota`, `vanished`.
    pub code: String,
    pub message: String,
}

/// One restorable copy of one resource at one instant, in one location.
///
/// The facts every kind shares are fields; what only one kind has is its [`Detail`]. The
/// catalog stores a point as one flat record ([`Record`]), so records written before the
/// detail was typed read back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Record", into = "Record")]
pub struct RecoveryPoint {
    pub id: RecoveryPointId,
    /// The protected resource this is a backup of (for copies too).
    pub resource: ResourceRef,
    pub policy: PolicyName,
    pub slot: Slot,
    /// The region holding this recovery point.
    pub location: Region,
    pub snapshot_name: String,
    /// The snapshot's ARN (for a point in an AWS Backup vault, the vault's recovery point ARN).
    pub snapshot_arn: Option<String>,
    /// Accounts this copy is shared with (a copy target's `account`).
    pub shared_with: Vec<String>,
    /// For a cross-region copy: the recovery point it was copied from.
    pub source: Option<RecoveryPointId>,
    pub kms_key_id: Option<String>,
    pub status: Status,
    pub failure: Option<Failure>,
    /// True when the catalog learned of the snapshot by finding it in AWS (after a crash).
    pub adopted: bool,
    /// Taken on request, outside any schedule.
    pub emergency: bool,
    /// When Lifeboat last verified this point's content (checksums, restore test).
    pub verified_at: Option<DateTime<Utc>>,
    /// The last verification or restore test found problems (missing, truncated or
    /// corrupted objects; a restored database unlike the one backed up): `verified_at` is
    /// then cleared until a verification passes again.
    pub verification_failed: Option<VerificationFailure>,
    /// What forbids deleting it.
    pub holds: Holds,
    /// What the point holds, in bytes, as AWS reported it when it became available: a DB
    /// snapshot's allocated storage (an upper bound: snapshots are incremental), a DynamoDB
    /// backup's size, an S3 run's or bundle's objects. Storage and cost figures count it.
    pub size_bytes: Option<u64>,
    /// What only this kind of point has.
    pub detail: Detail,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped by every change.
    pub version: u64,
}

/// What only one kind of recovery point has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// An RDS DB snapshot or an Aurora cluster snapshot.
    Snapshot(SnapshotDetail),
    /// A DynamoDB on-demand backup.
    TableBackup(TableBackupDetail),
    /// An S3 backup run: object copies in the backup bucket and their manifest.
    S3Run(ObjectsDetail),
    /// A sealed bundle of SSM parameters and secrets in the backup bucket.
    ConfigBundle(ObjectsDetail),
    /// A recovery point in an AWS Backup vault, of any resource kind.
    Vault(VaultDetail),
}

impl Detail {
    /// The empty detail of a point of `kind` made by Lifeboat itself (not in a vault).
    pub fn of(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::RdsInstance | ResourceKind::AuroraCluster => Self::Snapshot(SnapshotDetail::default()),
            ResourceKind::DynamoDbTable => Self::TableBackup(TableBackupDetail::default()),
            ResourceKind::S3Prefix => Self::S3Run(ObjectsDetail::default()),
            ResourceKind::ConfigBundle => Self::ConfigBundle(ObjectsDetail::default()),
        }
    }

    /// A point in AWS Backup vault `vault`, made by job `job_id` (`None`: adopted).
    pub fn vault(vault: &str, job_id: Option<String>) -> Self {
        Self::Vault(VaultDetail {
            vault: vault.to_owned(),
            job_id,
        })
    }
}

/// An RDS or Aurora snapshot's own facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotDetail {
    /// The snapshot's latest export to S3 (the database long-term tier).
    pub export: Option<super::export::ExportRecord>,
    /// Aurora: the DB instance class of the cluster's writer when the snapshot was taken,
    /// the class of the writer a restore creates when the plan names none and the source
    /// cannot be read (its region is down). Copies carry it.
    pub writer_class: Option<String>,
    /// The latest restore test of this snapshot (in flight, or its evidence).
    pub restore_test: Option<super::restore_test::RestoreTest>,
}

/// A DynamoDB backup's own facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableBackupDetail {
    /// The backup's content as its first validated restore (a DR drill) found it: every
    /// later restore of this backup must find exactly the same.
    pub table_checksum: Option<TableChecksum>,
}

/// An S3 run's or a config bundle's own facts: objects in the backup bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectsDetail {
    /// The manifest in the backup bucket, with its SHA-256 and counts.
    pub manifest: Option<super::manifest::ManifestRef>,
    /// When a sample of the archived copies (GLACIER, DEEP_ARCHIVE) was last restored and
    /// read back intact.
    pub restore_checked_at: Option<DateTime<Utc>>,
    /// Where the copies are after an explicit tier move (absent: still where they were
    /// written).
    pub tiering: Option<super::tiering::TierRecord>,
    /// The objects archived in a Glacier vault, and their latest retrieval.
    pub archive: Option<super::archive::ArchiveRef>,
}

/// A recovery point in an AWS Backup vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultDetail {
    pub vault: String,
    /// The backup job that made it (`None` when the catalog adopted it from the vault).
    pub job_id: Option<String>,
}

/// A recovery point as the catalog stores it: one flat record, every kind's detail an
/// optional field. Reading picks the detail by the resource's kind (a vault point by its
/// vault); a field of another kind, which no writer produces, is ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
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
    manifest: Option<super::manifest::ManifestRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verification_failed: Option<VerificationFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restore_checked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tiering: Option<super::tiering::TierRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    archive: Option<super::archive::ArchiveRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    export: Option<super::export::ExportRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table_checksum: Option<TableChecksum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    writer_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restore_test: Option<super::restore_test::RestoreTest>,
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

/// A DynamoDB backup's item count and content checksum (see `dr::table_digest`), as the
/// first validated restore of it found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChecksum {
    pub items: u64,
    pub checksum: String,
    /// The restored table that was scanned, and when.
    pub restored_as: String,
    pub at: DateTime<Utc>,
}

/// What a failed verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationFailure {
    pub at: DateTime<Utc>,
    /// Objects checked and found bad.
    pub checked: u64,
    /// One line per bad object: `<problem>: <key>` (capped).
    pub problems: Vec<String>,
}

/// Reasons a recovery point must not be deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holds {
    /// A legal hold: never deleted until it is lifted.
    #[serde(default)]
    pub legal_hold: bool,
    /// Locked (e.g. vault or object lock) until this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<DateTime<Utc>>,
    /// In use by a restore or DR execution (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use_by: Option<String>,
    /// Deleting before this instant is billed anyway (minimum storage duration of its tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_storage_until: Option<DateTime<Utc>>,
}

impl Holds {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("recovery point {id}: cannot go from {from} to {to}")]
pub struct TransitionError {
    pub id: RecoveryPointId,
    pub from: Status,
    pub to: Status,
}

impl RecoveryPoint {
    /// A new record (version 1) of `snapshot_name`, a backup of `resource` held in
    /// `location` and captured at `created_at`; the optional facts (source, key, failure,
    /// holds, …) start empty and can be set with struct update syntax.
    pub fn new(
        resource: &ResourceRef,
        policy: &PolicyName,
        slot: Slot,
        location: &Region,
        snapshot_name: &str,
        status: Status,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: RecoveryPointId::new(location, resource.kind, snapshot_name),
            resource: resource.clone(),
            policy: policy.clone(),
            slot,
            location: location.clone(),
            snapshot_name: snapshot_name.to_owned(),
            snapshot_arn: None,
            shared_with: Vec::new(),
            source: None,
            kms_key_id: None,
            status,
            failure: None,
            adopted: false,
            emergency: false,
            verified_at: None,
            verification_failed: None,
            holds: Holds::default(),
            size_bytes: None,
            detail: Detail::of(resource.kind),
            created_at,
            updated_at: created_at,
            version: 1,
        }
    }

    /// This point with an Aurora writer's class recorded (a snapshot's only: ignored by
    /// other kinds).
    #[must_use]
    pub fn with_writer_class(mut self, class: Option<String>) -> Self {
        if let Some(d) = self.snapshot_mut() {
            d.writer_class = class;
        }
        self
    }

    /// This point with its objects' manifest recorded (an S3 run's or a config bundle's
    /// only: ignored by other kinds).
    #[must_use]
    pub fn with_manifest(mut self, manifest: super::manifest::ManifestRef) -> Self {
        if let Some(d) = self.objects_mut() {
            d.manifest = Some(manifest);
        }
        self
    }

    /// The point's objects (an S3 run or a config bundle).
    pub fn objects(&self) -> Option<&ObjectsDetail> {
        match &self.detail {
            Detail::S3Run(d) | Detail::ConfigBundle(d) => Some(d),
            _ => None,
        }
    }

    /// [`RecoveryPoint::objects`], to change.
    pub fn objects_mut(&mut self) -> Option<&mut ObjectsDetail> {
        match &mut self.detail {
            Detail::S3Run(d) | Detail::ConfigBundle(d) => Some(d),
            _ => None,
        }
    }

    /// The point's snapshot facts (RDS or Aurora, not in a vault).
    pub fn snapshot(&self) -> Option<&SnapshotDetail> {
        match &self.detail {
            Detail::Snapshot(d) => Some(d),
            _ => None,
        }
    }

    /// [`RecoveryPoint::snapshot`], to change.
    pub fn snapshot_mut(&mut self) -> Option<&mut SnapshotDetail> {
        match &mut self.detail {
            Detail::Snapshot(d) => Some(d),
            _ => None,
        }
    }

    /// The point's DynamoDB backup facts (not in a vault).
    pub fn table_backup(&self) -> Option<&TableBackupDetail> {
        match &self.detail {
            Detail::TableBackup(d) => Some(d),
            _ => None,
        }
    }

    /// [`RecoveryPoint::table_backup`], to change.
    pub fn table_backup_mut(&mut self) -> Option<&mut TableBackupDetail> {
        match &mut self.detail {
            Detail::TableBackup(d) => Some(d),
            _ => None,
        }
    }

    /// The AWS Backup vault holding the point, and the job that made it.
    pub fn vault(&self) -> Option<&VaultDetail> {
        match &self.detail {
            Detail::Vault(d) => Some(d),
            _ => None,
        }
    }

    /// The manifest of an S3 run or a config bundle.
    pub fn manifest(&self) -> Option<&super::manifest::ManifestRef> {
        self.objects().and_then(|d| d.manifest.as_ref())
    }

    /// When archived copies of an S3 run or config bundle were last read back intact.
    pub fn restore_checked_at(&self) -> Option<DateTime<Utc>> {
        self.objects().and_then(|d| d.restore_checked_at)
    }

    /// Where an S3 run's or config bundle's copies were moved.
    pub fn tiering(&self) -> Option<&super::tiering::TierRecord> {
        self.objects().and_then(|d| d.tiering.as_ref())
    }

    /// The Glacier archive of an S3 run or config bundle.
    pub fn archive(&self) -> Option<&super::archive::ArchiveRef> {
        self.objects().and_then(|d| d.archive.as_ref())
    }

    /// A snapshot's latest export to S3.
    pub fn export(&self) -> Option<&super::export::ExportRecord> {
        self.snapshot().and_then(|d| d.export.as_ref())
    }

    /// An Aurora snapshot's writer class.
    pub fn writer_class(&self) -> Option<&str> {
        self.snapshot().and_then(|d| d.writer_class.as_deref())
    }

    /// A snapshot's latest restore test.
    pub fn restore_test(&self) -> Option<&super::restore_test::RestoreTest> {
        self.snapshot().and_then(|d| d.restore_test.as_ref())
    }

    /// A DynamoDB backup's content as its first validated restore found it.
    pub fn table_checksum(&self) -> Option<&TableChecksum> {
        self.table_backup().and_then(|d| d.table_checksum.as_ref())
    }

    /// The AWS Backup vault holding the point.
    pub fn backup_vault(&self) -> Option<&str> {
        self.vault().map(|d| d.vault.as_str())
    }

    /// The AWS Backup job that made the point.
    pub fn backup_job_id(&self) -> Option<&str> {
        self.vault().and_then(|d| d.job_id.as_deref())
    }

    /// True for a cross-region copy.
    pub fn is_copy(&self) -> bool {
        self.source.is_some()
    }

    /// The snapshot in this point's own location exists and can be restored. A source
    /// whose *copy* failed is still a good recovery point where it is.
    pub fn is_restorable(&self) -> bool {
        match self.status {
            Status::Available | Status::Copying | Status::Copied => true,
            Status::Failed => self.failure.as_ref().is_some_and(|f| f.step == Step::Copy) && !self.is_copy(),
            Status::Pending | Status::Expiring | Status::Expired => false,
        }
    }

    /// The next version of this point in state `to`, or an error if the lifecycle forbids it.
    pub fn transition(&self, to: Status, now: DateTime<Utc>) -> Result<Self, TransitionError> {
        if !self.status.can_become(to) {
            return Err(TransitionError {
                id: self.id.clone(),
                from: self.status,
                to,
            });
        }
        let mut next = self.clone();
        next.status = to;
        next.updated_at = now;
        next.version += 1;
        // A failure is cleared when work succeeds, and kept as history through expiry.
        if matches!(to, Status::Available | Status::Copying | Status::Copied) {
            next.failure = None;
        }
        Ok(next)
    }

    /// The next version, failed with `failure`.
    pub fn fail(&self, failure: Failure, now: DateTime<Utc>) -> Result<Self, TransitionError> {
        let mut next = self.transition(Status::Failed, now)?;
        next.failure = Some(failure);
        Ok(next)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn sample(status: Status) -> RecoveryPoint {
        let region = Region::parse("us-east-1").unwrap();
        let now: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
        let resource = ResourceRef {
            kind: ResourceKind::RdsInstance,
            id: "db1".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:db:db1".into(),
            region: region.clone(),
        };
        let slot = Slot::containing(now, Duration::from_hours(1));
        let policy = PolicyName::parse("gold").unwrap();
        RecoveryPoint::new(
            &resource,
            &policy,
            slot,
            &region,
            "lb-gold-db1-20261123-1800",
            status,
            now,
        )
    }

    #[test]
    fn lifecycle_allows_only_forward_moves() {
        let rp = sample(Status::Pending);
        let a = rp.transition(Status::Available, rp.created_at).unwrap();
        assert_eq!(a.version, 2);
        let c = a.transition(Status::Copying, a.created_at).unwrap();
        assert!(c.transition(Status::Pending, c.created_at).is_err());
        assert!(c.transition(Status::Copied, c.created_at).is_ok());
        assert!(
            sample(Status::Copied)
                .transition(Status::Failed, rp.created_at)
                .is_err()
        );
    }

    #[test]
    fn expiry_keeps_a_failure_as_history_and_never_starts_from_work_in_flight() {
        let at = sample(Status::Pending).created_at;
        let failure = Failure {
            step: Step::Create,
            code: "quota".into(),
            message: "x".into(),
        };
        let failed = sample(Status::Pending).fail(failure, at).unwrap();
        let expiring = failed.transition(Status::Expiring, at).unwrap();
        let expired = expiring.transition(Status::Expired, at).unwrap();
        assert_eq!(expired.failure.as_ref().map(|f| f.code.as_str()), Some("quota"));
        assert!(sample(Status::Pending).transition(Status::Expiring, at).is_err());
        assert!(sample(Status::Copying).transition(Status::Expiring, at).is_err());
        assert!(sample(Status::Available).transition(Status::Expired, at).is_err());
    }

    #[test]
    fn a_point_is_stored_as_the_flat_record_written_before_its_detail_was_typed() {
        let mut rp = sample(Status::Copied);
        rp.snapshot_mut().unwrap().writer_class = Some("db.r6g.large".into());
        let json = serde_json::to_value(&rp).unwrap();
        assert_eq!(json["writer_class"], "db.r6g.large");
        assert!(json.get("detail").is_none() && json.get("backup_vault").is_none());
        let back: RecoveryPoint = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, rp);

        // A vault point: its vault and job, and nothing of a snapshot's detail.
        let mut in_vault = json;
        in_vault["backup_vault"] = "lifeboat".into();
        in_vault["backup_job_id"] = "job-1".into();
        let read: RecoveryPoint = serde_json::from_value(in_vault).unwrap();
        assert_eq!(read.backup_vault(), Some("lifeboat"));
        assert_eq!(read.backup_job_id(), Some("job-1"));
        assert!(read.snapshot().is_none() && read.writer_class().is_none());
        let again = serde_json::to_value(&read).unwrap();
        assert_eq!(again["backup_vault"], "lifeboat");
        assert!(again.get("writer_class").is_none());

        // A field of another kind, which no writer produces, is ignored.
        let mut foreign = serde_json::to_value(&rp).unwrap();
        foreign["table_checksum"] =
            serde_json::json!({"items": 1, "checksum": "x", "restored_as": "t", "at": "2026-11-23T18:00:00Z"});
        let read: RecoveryPoint = serde_json::from_value(foreign).unwrap();
        assert_eq!(read, rp);
    }

    #[test]
    fn ids_parse_and_reject_garbage() {
        assert!(RecoveryPointId::parse("us-east-1/db/lb-gold-db1-20261123-1800").is_ok());
        for bad in [
            "",
            "us-east-1/db/",
            "us-east-1/xx/n",
            "nowhere/db/n",
            "us-east-1/db/a b",
        ] {
            assert!(RecoveryPointId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_source_with_a_failed_copy_is_still_restorable_where_it_is() {
        let src = sample(Status::Available);
        let failed = src
            .fail(
                Failure {
                    step: Step::Copy,
                    code: "kms-key".into(),
                    message: "x".into(),
                },
                src.created_at,
            )
            .unwrap();
        assert!(failed.is_restorable());
        let created_failed = sample(Status::Pending)
            .fail(
                Failure {
                    step: Step::Create,
                    code: "snapshot-failed".into(),
                    message: "x".into(),
                },
                src.created_at,
            )
            .unwrap();
        assert!(!created_failed.is_restorable());
    }
}

/// Where a source recovery point stands with its copies, given the copy destinations its
/// policy names and the copy records found so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyProgress {
    /// Some destinations have no copy yet and none is in flight.
    Waiting,
    /// At least one copy is in flight.
    InFlight,
    /// Every destination has an available copy (or the policy names none).
    Done,
    /// Nothing is in flight or missing, but these copies failed.
    Failed(Vec<(Region, String)>),
}

/// Decides a source's copy progress from its copies' records.
pub fn copy_progress(destinations: &[Region], copies: &[RecoveryPoint]) -> CopyProgress {
    let mut missing = false;
    let mut in_flight = false;
    let mut failed = Vec::new();
    for region in destinations {
        match copies.iter().find(|c| &c.location == region) {
            None => missing = true,
            Some(c) => match c.status {
                Status::Pending => in_flight = true,
                Status::Failed => failed.push((
                    region.clone(),
                    c.failure
                        .as_ref()
                        .map_or_else(|| "failed".to_owned(), |f| format!("{}: {}", f.code, f.message)),
                )),
                Status::Available | Status::Copying | Status::Copied | Status::Expiring | Status::Expired => {}
            },
        }
    }
    if in_flight {
        CopyProgress::InFlight
    } else if missing {
        CopyProgress::Waiting
    } else if failed.is_empty() {
        CopyProgress::Done
    } else {
        CopyProgress::Failed(failed)
    }
}
