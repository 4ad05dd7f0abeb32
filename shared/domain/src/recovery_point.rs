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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPoint {
    pub id: RecoveryPointId,
    /// The protected resource this is a backup of (for copies too).
    pub resource: ResourceRef,
    pub policy: PolicyName,
    pub slot: Slot,
    /// The region holding this recovery point.
    pub location: Region,
    pub snapshot_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_arn: Option<String>,
    /// For a backup delegated to AWS Backup: the vault holding it and the job making it
    /// (`snapshot_arn` is then the vault's recovery point ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_vault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_job_id: Option<String>,
    /// Accounts this copy is shared with (a copy target's `account`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
    /// For a cross-region copy: the recovery point it was copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RecoveryPointId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// True when the catalog learned of the snapshot by finding it in AWS (after a crash).
    #[serde(default)]
    pub adopted: bool,
    /// Taken on request, outside any schedule.
    #[serde(default)]
    pub emergency: bool,
    /// When Lifeboat last verified this point's content (checksums, restore test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    /// What forbids deleting it.
    #[serde(default, skip_serializing_if = "Holds::is_empty")]
    pub holds: Holds,
    // --- S3 backup runs (kind `s3-prefix`) ---
    /// The run's manifest in the backup bucket, with its SHA-256 and counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<super::manifest::ManifestRef>,
    /// The last verification found missing, truncated or corrupted objects (then
    /// `verified_at` is cleared until a verification passes again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_failed: Option<VerificationFailure>,
    /// When a sample of the run's archived copies (GLACIER, DEEP_ARCHIVE) was last
    /// restored and read back intact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_checked_at: Option<DateTime<Utc>>,
    /// Where the run's copies are after an explicit tier move (absent: still where the
    /// run wrote them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiering: Option<super::tiering::TierRecord>,
    /// The bundle (`manifest`) archived in a Glacier vault, and its latest retrieval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<super::archive::ArchiveRef>,
    // --- RDS / Aurora snapshots ---
    /// The snapshot's latest export to S3 (the database long-term tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<super::export::ExportRecord>,
    // --- DynamoDB backups (kind `dynamodb-table`) ---
    /// The backup's content as its first validated restore (a DR drill) found it: every
    /// later restore of this backup must find exactly the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_checksum: Option<TableChecksum>,
    // --- Aurora clusters ---
    /// The DB instance class of the cluster's writer when the snapshot was taken: the
    /// class of the writer a restore creates when the plan names none and the source
    /// cannot be read (its region is down). Copies carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_class: Option<String>,
    // --- RDS / Aurora snapshots ---
    /// What the point holds, in bytes, as AWS reported it when it became available: a DB
    /// snapshot's allocated storage (an upper bound: snapshots are incremental), a DynamoDB
    /// backup's size. Storage and cost figures count it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// The latest restore test of this point (in flight, or its evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<super::restore_test::RestoreTest>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped by every change.
    pub version: u64,
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
            backup_vault: None,
            backup_job_id: None,
            shared_with: Vec::new(),
            source: None,
            kms_key_id: None,
            status,
            failure: None,
            adopted: false,
            emergency: false,
            verified_at: None,
            holds: Holds::default(),
            manifest: None,
            verification_failed: None,
            restore_checked_at: None,
            tiering: None,
            archive: None,
            export: None,
            table_checksum: None,
            writer_class: None,
            size_bytes: None,
            restore_test: None,
            created_at,
            updated_at: created_at,
            version: 1,
        }
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
