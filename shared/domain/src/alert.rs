//! Alerts: one structured message per event, with attributes subscribers can filter on.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RecoveryPointId, Region};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// A snapshot could not be created, or AWS reports it failed.
    BackupFailed,
    /// A cross-region copy failed or was rejected for good.
    CopyFailed,
    /// A copy cannot start: missing configuration or a quota; it will be retried.
    CopyBlocked,
    /// Work is still pending past its deadline.
    Stuck,
    /// The newest good recovery point of a resource in a location is older than its RPO.
    RpoBreach,
    /// A resource is tagged with a policy that does not exist.
    UnknownPolicy,
    /// A stored policy failed validation and is not applied.
    InvalidPolicy,
    /// A recovery point chosen for expiry could not be deleted, or Lifeboat refused to
    /// delete its snapshot (e.g. not created by Lifeboat).
    ExpiryFailed,
    /// Backup objects are missing, truncated or corrupted, or a manifest does not match
    /// its catalog record: the recovery points concerned are marked unverified.
    VerificationFailed,
    /// A database restore test failed (the snapshot did not restore, or the restored
    /// database differs from it, or the validation Lambda said no), or cannot run (no
    /// isolated network named for its region).
    RestoreTestFailed,
    /// The daily digest (one a day; informational).
    Digest,
    /// A DR execution failed; its compensations ran.
    DrFailed,
    /// A DR execution measured an RTO or RPO beyond the plan's target.
    DrTargetMissed,
    /// A failover or failback completed.
    DrCompleted,
    /// A failover or failback failed after its endpoint switch began: the recovered
    /// databases were left running and an operator must finish or reverse it.
    DrNeedsOperator,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BackupFailed => "backup-failed",
            Self::CopyFailed => "copy-failed",
            Self::CopyBlocked => "copy-blocked",
            Self::Stuck => "stuck",
            Self::RpoBreach => "rpo-breach",
            Self::UnknownPolicy => "unknown-policy",
            Self::InvalidPolicy => "invalid-policy",
            Self::ExpiryFailed => "expiry-failed",
            Self::VerificationFailed => "verification-failed",
            Self::RestoreTestFailed => "restore-test-failed",
            Self::Digest => "digest",
            Self::DrFailed => "dr-failed",
            Self::DrTargetMissed => "dr-target-missed",
            Self::DrCompleted => "dr-completed",
            Self::DrNeedsOperator => "dr-needs-operator",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// One alert. `dedupe_key` names the *thing* being alerted about, so that a replayed
/// event or a rerun never sends the same alert twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    #[serde(rename = "type")]
    pub kind: AlertKind,
    pub severity: Severity,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point: Option<RecoveryPointId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Region>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    pub dedupe_key: String,
    /// The function invocation that raised it.
    #[serde(default)]
    pub run_id: String,
    pub at: DateTime<Utc>,
}

impl Alert {
    pub fn new(
        kind: AlertKind,
        severity: Severity,
        summary: impl Into<String>,
        dedupe_key: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            kind,
            severity,
            summary: summary.into(),
            resource: None,
            recovery_point: None,
            location: None,
            details: BTreeMap::new(),
            dedupe_key: format!("{kind}#{}", dedupe_key.into()),
            run_id: String::new(),
            at,
        }
    }

    #[must_use]
    pub fn resource(mut self, arn: impl Into<String>) -> Self {
        self.resource = Some(arn.into());
        self
    }

    #[must_use]
    pub fn recovery_point(mut self, id: &RecoveryPointId) -> Self {
        self.recovery_point = Some(id.clone());
        self
    }

    #[must_use]
    pub fn location(mut self, region: &Region) -> Self {
        self.location = Some(region.clone());
        self
    }

    #[must_use]
    pub fn detail(mut self, key: &str, value: impl Into<String>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}
