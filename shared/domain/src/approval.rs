//! Two-person approval of the requests that can lose data or move production: a restore
//! over an existing instance, a failover, a failback, and a policy change that weakens
//! protection (shorter retention, a copy removed, an account share added, approval relaxed).
//!
//! A policy or DR plan with
//! `"approval": {"required": true, "approvers": ["arn:aws:iam::123456789012:role/dr-approver"], "expires": "4h"}`
//! makes such a request wait as an [`ApprovalRequest`] in `pending-approval`. Another
//! principal, whose ARN starts with one of `approvers` and who has the admin role, approves
//! or denies it ([`ApprovalRequest::decide`]). Only then, and only once, does the principal
//! that asked get the confirmation token ([`ApprovalRequest::hand_token`]); the token
//! carries the approval ([`crate::confirm::ApprovalClaim`]), so every step that checks
//! tokens can tell an approved request from one that was not.
//!
//! "Another principal" compares identities, not session names: for an assumed role
//! (`arn:aws:sts::<account>:assumed-role/<role>/<session>`) the identity is the role, since
//! a caller chooses its own session name.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::Policy;

/// How long a request waits for its decision unless the rule says otherwise.
pub const DEFAULT_EXPIRY: Duration = Duration::from_hours(24);
const MIN_EXPIRY: Duration = Duration::from_mins(5);
const MAX_EXPIRY: Duration = Duration::from_hours(7 * 24);

/// `approval` as written in a policy or DR plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDocument {
    pub required: bool,
    /// ARN prefixes of the principals that may approve, each naming its account:
    /// `arn:aws:iam::123456789012:role/dr-approver`, `arn:aws:sts::123456789012:assumed-role/dr-approver/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// How long a request waits for its decision, e.g. `4h` (default 24h, 5m to 7d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A checked approval rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    pub required: bool,
    pub approvers: Vec<String>,
    pub expires: Duration,
}

impl ApprovalRule {
    /// Checks `doc`, pushing every problem (prefixed `approval`) onto `problems`.
    pub fn from_document(doc: &ApprovalDocument, problems: &mut Vec<String>) -> Option<Self> {
        let before = problems.len();
        if doc.required && doc.approvers.is_empty() {
            problems.push(
                "approval.approvers: name at least one approver (an IAM ARN prefix) when approval is required".into(),
            );
        }
        for (i, a) in doc.approvers.iter().enumerate() {
            if !is_principal_prefix(a) {
                problems.push(format!(
                    "approval.approvers[{i}]: {a:.100?} is not an IAM ARN prefix naming its account, like arn:aws:iam::123456789012:role/dr-approver"
                ));
            }
        }
        let expires = match doc.expires.as_deref().map(humantime::parse_duration) {
            None => DEFAULT_EXPIRY,
            Some(Ok(d)) if (MIN_EXPIRY..=MAX_EXPIRY).contains(&d) => d,
            Some(Ok(_)) => {
                problems.push("approval.expires: must be 5m to 7d".into());
                DEFAULT_EXPIRY
            }
            Some(Err(e)) => {
                problems.push(format!("approval.expires: not a duration like 4h ({e})"));
                DEFAULT_EXPIRY
            }
        };
        (problems.len() == before).then(|| Self {
            required: doc.required,
            approvers: doc.approvers.clone(),
            expires,
        })
    }

    pub fn to_document(&self) -> ApprovalDocument {
        ApprovalDocument {
            required: self.required,
            approvers: self.approvers.clone(),
            expires: (self.expires != DEFAULT_EXPIRY).then(|| humantime::format_duration(self.expires).to_string()),
        }
    }

    /// Whether `principal` is one of the approvers the rule names.
    pub fn names(&self, principal: &str) -> bool {
        self.approvers.iter().any(|p| principal.starts_with(p.as_str()))
    }
}

/// `arn:<partition>:<iam|sts>::<12 digits>:<something>`: a prefix that cannot match
/// principals of every account.
fn is_principal_prefix(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam" | "sts", "", account, rest]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && !rest.is_empty()
            && s.len() <= 2048
            && !s.contains('*'))
}

/// Who a principal is, for "a different person": an assumed role's session name is left
/// out (the caller chose it).
pub fn identity(principal: &str) -> &str {
    match principal.split_once(":assumed-role/") {
        Some((head, rest)) => match rest.find('/') {
            Some(i) => &principal[..head.len() + ":assumed-role/".len() + i],
            None => principal,
        },
        None => principal,
    }
}

/// What is waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ApprovalSubject {
    /// `POST /restores` over an existing instance.
    OverwriteRestore {
        restore: String,
        recovery_point: String,
        target: String,
    },
    /// `POST /dr/executions` with mode `failover` or `failback`.
    Dr { plan: String, mode: String },
    /// `PUT /policies/{name}` with a change that weakens protection.
    PolicyChange {
        policy: String,
        /// What the change weakens, one line each.
        changes: Vec<String>,
        /// The proposed document (JSON), shown to the approver.
        document: String,
    },
}

impl ApprovalSubject {
    /// One line for lists and alerts.
    pub fn summary(&self) -> String {
        match self {
            Self::OverwriteRestore {
                recovery_point, target, ..
            } => format!("restore {recovery_point} over instance {target}"),
            Self::Dr { plan, mode } => format!("{mode} of DR plan {plan}"),
            Self::PolicyChange { policy, changes, .. } => {
                format!("change to policy {policy}: {}", changes.join("; "))
            }
        }
    }
}

/// Where an approval request stands (as stored; [`ApprovalRequest::state_at`] adds
/// `expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalState {
    PendingApproval,
    Approved,
    Denied,
    /// Approved, and its confirmation token handed to the requester (once).
    TokenIssued,
    /// Pending past its expiry (never stored).
    Expired,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending-approval",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::TokenIssued => "token-issued",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::PendingApproval,
            Self::Approved,
            Self::Denied,
            Self::TokenIssued,
            Self::Expired,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The approver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny { reason: String },
}

/// Why an approval act was refused. Each means "nothing was changed".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("the approver asked for this request: a second person must decide it")]
    SelfApproval,
    #[error("the approval request expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("this principal is not among the approvers the rule names")]
    NotAnApprover,
    #[error("deciding an approval request needs the admin role")]
    RoleTooLow,
    #[error("the approval request is {0} already")]
    Decided(ApprovalState),
    #[error("only the principal that asked for the request gets its token")]
    NotRequester,
    #[error("the approval request is {0}: a token is issued only once it is approved, and only once")]
    NotApproved(ApprovalState),
}

/// A request waiting for (or past) its second person's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: String,
    pub subject: ApprovalSubject,
    /// The digest of the exact request approved ([`crate::confirm::request_digest`]): the
    /// token handed out is bound to it.
    pub request_digest: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The rule's approvers when the request was made.
    pub approvers: Vec<String>,
    pub state: ApprovalState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_issued_at: Option<DateTime<Utc>>,
    /// Bumped by every change; writes are conditional on it.
    pub version: u64,
}

impl ApprovalRequest {
    pub fn new(
        id: String,
        subject: ApprovalSubject,
        request_digest: String,
        requested_by: &str,
        now: DateTime<Utc>,
        rule: &ApprovalRule,
    ) -> Self {
        Self {
            id,
            subject,
            request_digest,
            requested_by: requested_by.to_owned(),
            requested_at: now,
            expires_at: now + chrono::Duration::from_std(rule.expires).unwrap_or(chrono::Duration::hours(24)),
            approvers: rule.approvers.clone(),
            state: ApprovalState::PendingApproval,
            decided_by: None,
            decided_at: None,
            reason: None,
            token_issued_at: None,
            version: 1,
        }
    }

    /// The state as of `now`: a pending request past its expiry is `expired`.
    pub fn state_at(&self, now: DateTime<Utc>) -> ApprovalState {
        if self.state == ApprovalState::PendingApproval && now >= self.expires_at {
            ApprovalState::Expired
        } else {
            self.state
        }
    }

    /// `principal` (with `is_admin`) approves or denies the request at `now`: the request
    /// as it is after the decision, or why the decision is refused.
    pub fn decide(
        &self,
        principal: &str,
        is_admin: bool,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> Result<Self, ApprovalError> {
        match self.state_at(now) {
            ApprovalState::PendingApproval => {}
            ApprovalState::Expired => return Err(ApprovalError::Expired(self.expires_at)),
            decided => return Err(ApprovalError::Decided(decided)),
        }
        if identity(principal) == identity(&self.requested_by) {
            return Err(ApprovalError::SelfApproval);
        }
        if !self.approvers.iter().any(|p| principal.starts_with(p.as_str())) {
            return Err(ApprovalError::NotAnApprover);
        }
        if !is_admin {
            return Err(ApprovalError::RoleTooLow);
        }
        let mut next = self.clone();
        (next.state, next.reason) = match verdict {
            Verdict::Approve => (ApprovalState::Approved, None),
            Verdict::Deny { reason } => (ApprovalState::Denied, Some(reason)),
        };
        next.decided_by = Some(principal.to_owned());
        next.decided_at = Some(now);
        next.version += 1;
        Ok(next)
    }

    /// The requester takes the token of an approved request, once: the request as it is
    /// after (token issued), or why no token is issued.
    pub fn hand_token(&self, principal: &str, now: DateTime<Utc>) -> Result<Self, ApprovalError> {
        if principal != self.requested_by {
            return Err(ApprovalError::NotRequester);
        }
        if self.state != ApprovalState::Approved {
            return Err(ApprovalError::NotApproved(self.state_at(now)));
        }
        if now >= self.expires_at {
            return Err(ApprovalError::Expired(self.expires_at));
        }
        let mut next = self.clone();
        next.state = ApprovalState::TokenIssued;
        next.token_issued_at = Some(now);
        next.version += 1;
        Ok(next)
    }

    /// What the token handed out carries.
    pub fn claim(&self) -> crate::confirm::ApprovalClaim {
        crate::confirm::ApprovalClaim {
            id: self.id.clone(),
            approved_by: self.decided_by.clone().unwrap_or_default(),
        }
    }
}

/// What a change from `old` to `new` weakens, one line each (empty: nothing): retention
/// kept shorter, a copy removed, an account share added, approval relaxed.
pub fn weakenings(old: &Policy, new: &Policy) -> Vec<String> {
    let mut found = Vec::new();
    let (o, n) = (&old.retention, &new.retention);
    for (field, before, after) in [
        ("last", o.last, n.last),
        ("hourly", o.hourly, n.hourly),
        ("daily", o.daily, n.daily),
        ("weekly", o.weekly, n.weekly),
        ("monthly", o.monthly, n.monthly),
        ("yearly", o.yearly, n.yearly),
    ] {
        if after < before {
            found.push(format!("retention.{field}: {before} → {after} (kept shorter)"));
        }
    }
    if let Some(before) = o.min_age
        && n.min_age.is_none_or(|after| after < before)
    {
        found.push(format!(
            "retention.min_age: {} → {} (kept shorter)",
            humantime::format_duration(before),
            n.min_age
                .map_or("none".into(), |a| humantime::format_duration(a).to_string())
        ));
    }
    for c in &old.copies {
        if !new.copies.iter().any(|d| d.region == c.region) {
            found.push(format!("copies: the copy to {} is removed", c.region));
        }
    }
    for c in &new.copies {
        if let Some(a) = &c.account
            && !old.copies.iter().any(|o| o.account.as_deref() == Some(a.as_str()))
        {
            found.push(format!("copies: copies in {} are shared with account {a}", c.region));
        }
    }
    if let Some(rule) = old.approval.as_ref().filter(|r| r.required) {
        match new.approval.as_ref().filter(|r| r.required) {
            None => found.push("approval: no longer required".into()),
            Some(next) if next.approvers != rule.approvers || next.expires > rule.expires => {
                found.push("approval: approvers or expiry changed".into());
            }
            Some(_) => {}
        }
    }
    found
}

#[cfg(test)]
mod tests;
