//! Recovery points and their lifecycle.
//!
//! `pending → available → copying → copied`, or `failed` from any non-terminal state.
//! Every change goes through [`RecoveryPoint::transition`], which checks the move is legal
//! and bumps the version that the catalog's conditional write compares.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ParseError, PolicyName, Region, ResourceKind, ResourceRef, Slot};

mod record;
use record::Record;

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
pub(crate) mod tests;

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
