//! Backup policies are data: stored in the catalog, loaded and validated at run time.
//!
//! A policy is read from a loose [`PolicyDocument`] (what a user writes) into a [`Policy`]
//! (what the rest of Lifeboat trusts). Validation reports every problem at once.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::retention::Retention;
use super::schedule::Schedule;
use super::selection::{Selection, SelectionDocument};
use super::window::{Window, WindowDocument, WindowRule};
use super::{PolicyName, Region, Slot};

/// Default priority: 1 is the most critical, 9 the least.
pub const DEFAULT_PRIORITY: u8 = 5;

/// A validated backup policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: PolicyName,
    /// Time zone for cron schedules, weekly windows and GFS day/week/month boundaries.
    pub timezone: Tz,
    /// When backups are due: one per protected resource per slot.
    pub schedule: Schedule,
    /// Recovery point objective: the newest good recovery point in each location must be
    /// younger than this.
    pub rpo: Duration,
    /// What to keep per resource and location.
    pub retention: Retention,
    /// 1 (most critical) to 9: orders the copy queue.
    pub priority: u8,
    /// Where copies go, each with the KMS key of the destination region (or the one
    /// configured for that region when absent).
    pub copies: Vec<CopyTarget>,
    /// Busy periods: a stricter rule applies and nothing is expired.
    pub windows: Vec<Window>,
    /// The stricter rule while a window is open (absent: the base schedule and RPO).
    pub window_rule: Option<WindowRule>,
    /// Resources this policy protects without carrying its tag (by type, ids, tags,
    /// account); see [`super::selection`].
    pub select: Option<Selection>,
    /// Back up through AWS Backup jobs into this vault instead of native snapshots.
    pub aws_backup: Option<AwsBackupTarget>,
    /// How often recovery points that can be verified (S3 runs) are re-verified.
    pub verify: Option<VerifyRule>,
    /// Storage classes an S3 run's copies move to as the run ages.
    pub tiers: super::tiering::TierSchedule,
    /// RDS instances and Aurora clusters: a snapshot exported to S3 and moved to a
    /// Glacier class this often (the database long-term tier).
    pub export: Option<super::export::ExportRule>,
    /// RDS instances and Aurora clusters: how their snapshots are proven by restoring them.
    pub restore_tests: super::restore_test::RestoreTestRule,
    /// S3 buckets/prefixes this policy protects (see [`super::data_set`]).
    pub s3: Vec<super::data_set::S3DataSet>,
    /// Config bundles (SSM parameters, Secrets Manager secrets) this policy protects.
    pub config_bundles: Vec<super::data_set::ConfigBundleSet>,
    /// Whether overwrite restores of its resources and changes that weaken it wait for a
    /// second person's approval (see [`super::approval`]).
    pub approval: Option<super::approval::ApprovalRule>,
}

/// How often, and how thoroughly, a policy's recovery points are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyRule {
    pub every: Duration,
    /// Objects checked per recovery point; `None`: every object.
    pub sample: Option<u32>,
}

impl VerifyRule {
    /// The rule of a policy that names none: a sample of 200 objects every day.
    pub const DEFAULT: Self = Self {
        every: Duration::from_hours(24),
        sample: Some(200),
    };

    /// Due when never verified, or last verified `every` ago or longer.
    pub fn due(&self, verified_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        verified_at.is_none_or(|at| (now - at).to_std().is_ok_and(|age| age >= self.every))
    }
}

/// The written form of a [`VerifyRule`]: `{"every": "7days", "sample": 100}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRuleDocument {
    pub every: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u32>,
}

/// Where a policy that delegates to AWS Backup puts its recovery points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsBackupTarget {
    /// The backup vault (in the resources' region).
    pub vault: String,
    /// The role AWS Backup assumes to take the backup.
    pub role_arn: String,
    /// Refuse to back up into the vault unless Vault Lock protects it.
    #[serde(default)]
    pub require_lock: bool,
}

impl AwsBackupTarget {
    fn check(&self, problems: &mut Vec<String>) {
        let v = &self.vault;
        if !(2..=50).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            problems.push(format!(
                "aws_backup.vault: {v:.60?} is not a vault name (2-50 letters, digits, - and _)"
            ));
        }
        let role_ok = self.role_arn.strip_prefix("arn:").is_some_and(|rest| {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            parts.len() == 5
                && parts[1] == "iam"
                && parts[3].len() == 12
                && parts[3].bytes().all(|b| b.is_ascii_digit())
                && parts[4].starts_with("role/")
                && parts[4].len() > "role/".len()
        });
        if !role_ok {
            problems.push(format!(
                "aws_backup.role_arn: {:.80?} is not an IAM role ARN like arn:aws:iam::123456789012:role/backup",
                self.role_arn
            ));
        }
    }
}

/// A cross-region copy destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyTarget {
    pub region: Region,
    /// KMS key id, ARN or alias in the destination region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Another AWS account the copy is shared with once it is available (it can restore
    /// or copy it into its own vaults). Needs a customer managed `kms_key_id` that the
    /// account may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// The stored and user-written form of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub name: String,
    /// Fixed slot length, e.g. `15m`, `1h`, `1day` (or use `cron`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// 5-field cron expression in `timezone` (or use `every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA time zone, default `UTC`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// e.g. `2h`.
    pub rpo: String,
    /// Shorthand for `retention: {"last": n}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    #[serde(default = "default_priority")]
    pub priority: u8,
    #[serde(default)]
    pub copies: Vec<CopyTargetDocument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowDocument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_rule: Option<WindowRuleDocument>,
    /// Resources protected without the policy tag: `{"types": ["dynamodb-table"],
    /// "tags": {"env": "prod"}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<SelectionDocument>,
    /// `{"vault": "...", "role_arn": "...", "require_lock": true}`: back up through AWS
    /// Backup jobs instead of native snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_backup: Option<AwsBackupTarget>,
    /// `{"every": "7days", "sample": 100}`: re-verify each S3 run every 7 days, 100
    /// objects each time (omit `sample` to check every object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyRuleDocument>,
    /// `[{"after": "30d", "class": "GLACIER_IR"}, ...]`: S3 backup copies move to colder
    /// classes as their run ages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<super::tiering::TierStepDocument>,
    /// `{"every": "30d", "kms_key_id": "...", "role_arn": "...", "class": "DEEP_ARCHIVE",
    /// "keep": "7y"}`: RDS instances and Aurora clusters get a snapshot exported to S3
    /// (StartExportTask) and moved to the class this often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<super::export::ExportRuleDocument>,
    /// `{"every": "7days", "locations": ["source", "copies"], "networks": {...},
    /// "validation_lambda": "..."}`: how RDS instances and Aurora clusters are proven by
    /// restore tests (default: every 7 days, in every location, the smallest class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_tests: Option<super::restore_test::RestoreTestDocument>,
    /// `[{"bucket": "media", "prefix": "photos/", "change_queue": "...", "large": false}]`:
    /// S3 data sets backed up by this policy's schedule and kept by its retention.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub s3: Vec<super::data_set::S3DataSet>,
    /// `[{"name": "orders-config", "parameters": ["/orders/"], "secrets": ["orders/"]}]`:
    /// config bundles backed up by this policy's schedule and kept by its retention.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_bundles: Vec<super::data_set::ConfigBundleSet>,
    /// `{"required": true, "approvers": ["arn:aws:iam::123456789012:role/approver"],
    /// "expires": "4h"}`: overwrite restores and weakening changes wait for a second person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<super::approval::ApprovalDocument>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyTargetDocument {
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowRuleDocument {
    pub every: String,
    pub rpo: String,
}

fn default_priority() -> u8 {
    DEFAULT_PRIORITY
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

/// Every problem found in one policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyProblems {
    pub policy: String,
    pub problems: Vec<String>,
}

impl fmt::Display for PolicyProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy {:?} is invalid: {}", self.policy, self.problems.join("; "))
    }
}

/// The `name` of a JSON object that is not otherwise a policy document, if it is a string
/// (at most 80 characters of it: it is quoted in messages).
fn name_field(json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(value.get("name")?.as_str()?.chars().take(80).collect())
}

const MIN_EVERY: Duration = Duration::from_mins(1);
const MAX_EVERY: Duration = Duration::from_hours(744);

/// The rule in force at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective<'a> {
    /// The open criticality window, if any.
    pub window: Option<&'a str>,
    pub slot: Option<Slot>,
    pub rpo: Duration,
    /// How the slot was chosen, for plans.
    pub schedule: String,
}

impl Policy {
    /// Parses a JSON policy document, listing every problem. A document that does not
    /// parse is named by its `name` field when that is a string; stored policies are
    /// named by their key instead ([`Policy::from_stored`]).
    pub fn from_json(json: &str) -> Result<Self, PolicyProblems> {
        let doc: PolicyDocument = serde_json::from_str(json).map_err(|e| PolicyProblems {
            policy: name_field(json).unwrap_or_else(|| String::from("(unnamed document)")),
            problems: vec![format!("not a valid policy document: {e}")],
        })?;
        Self::from_document(&doc)
    }

    /// Parses the policy stored under `key`. Every problem is named by `key`, whatever the
    /// document says (a document that does not parse names nothing reliable): each broken
    /// policy is reported, and alerted, as the entry an operator has to fix.
    pub fn from_stored(key: &str, json: &str) -> Result<Self, PolicyProblems> {
        Self::from_json(json).map_err(|p| PolicyProblems {
            policy: key.to_owned(),
            ..p
        })
    }

    /// Validates a policy document, listing every problem.
    pub fn from_document(doc: &PolicyDocument) -> Result<Self, PolicyProblems> {
        let mut problems = Vec::new();
        let name = PolicyName::parse(&doc.name)
            .map_err(|e| problems.push(e.to_string()))
            .ok();
        let timezone = doc
            .timezone
            .parse::<Tz>()
            .map_err(|_| {
                problems.push(format!(
                    "timezone: {:.40?} is not an IANA time zone like Europe/Berlin",
                    doc.timezone
                ));
            })
            .ok();
        let schedule = parse_schedule(doc, timezone, &mut problems);
        let rpo = parse_duration("rpo", &doc.rpo, &mut problems);
        if let (Some(schedule), Some(rpo)) = (&schedule, rpo) {
            check_rpo(schedule, rpo, &mut problems);
        }
        let retention = parse_retention(doc, &mut problems);
        if retention.is_some_and(|r| !r.keeps_something()) {
            problems.push("retention keeps nothing; keep at least 1".into());
        }
        if !(1..=9).contains(&doc.priority) {
            problems.push(format!("priority: {} is outside 1 (most critical) to 9", doc.priority));
        }
        let copies = parse_copies(&doc.copies, &mut problems);
        let windows = parse_windows(doc, &mut problems);
        let window_rule = doc.window_rule.as_ref().and_then(|r| {
            let every = parse_duration("window_rule.every", &r.every, &mut problems)?;
            let rpo = parse_duration("window_rule.rpo", &r.rpo, &mut problems)?;
            check_every("window_rule.every", every, &mut problems);
            if rpo < every {
                problems.push("window_rule: rpo is shorter than every, so it can never be met".into());
            }
            Some(WindowRule { every, rpo })
        });
        let select = doc
            .select
            .as_ref()
            .and_then(|s| Selection::from_document(s, &mut problems));
        if let Some(target) = &doc.aws_backup {
            target.check(&mut problems);
            if !doc.copies.is_empty() {
                problems.push(
                    "copies: a policy that delegates to AWS Backup copies through the vault's copy rules; leave copies empty"
                        .into(),
                );
            }
        }
        let verify = doc.verify.as_ref().and_then(|v| parse_verify(v, &mut problems));
        let tiers = super::tiering::TierSchedule::from_documents(&doc.tiers)
            .map_err(|p| problems.extend(p))
            .unwrap_or_default();
        if doc.export.is_some() && doc.aws_backup.is_some() {
            problems.push(
                "export: a policy that delegates to AWS Backup keeps its recovery points in the vault; exports take Lifeboat's own snapshots (drop aws_backup or export)"
                    .into(),
            );
        }
        let export = doc.export.as_ref().and_then(|e| {
            super::export::ExportRule::from_document(e)
                .map_err(|p| problems.extend(p))
                .ok()
        });
        let restore_tests = match &doc.restore_tests {
            Some(d) => super::restore_test::RestoreTestRule::from_document(d, &mut problems).unwrap_or_default(),
            None => super::restore_test::RestoreTestRule::default(),
        };
        super::data_set::check_data_sets(&doc.s3, &doc.config_bundles, doc.aws_backup.is_some(), &mut problems);
        let approval = doc
            .approval
            .as_ref()
            .and_then(|a| super::approval::ApprovalRule::from_document(a, &mut problems));
        // A window rule without windows of its own is fine: resources bring windows in
        // their `lifeboat:critical-window` tag.
        match (name, timezone, schedule, rpo, retention, problems.is_empty()) {
            (Some(name), Some(timezone), Some(schedule), Some(rpo), Some(retention), true) => Ok(Self {
                name,
                timezone,
                schedule,
                rpo,
                retention,
                priority: doc.priority,
                copies,
                windows,
                window_rule,
                select,
                aws_backup: doc.aws_backup.clone(),
                verify,
                tiers,
                export,
                restore_tests,
                s3: doc.s3.clone(),
                config_bundles: doc.config_bundles.clone(),
                approval,
            }),
            _ => Err(PolicyProblems {
                policy: doc.name.chars().take(64).collect(),
                problems,
            }),
        }
    }

    /// The document form, for storage.
    pub fn to_document(&self) -> PolicyDocument {
        let (every, cron) = match &self.schedule {
            Schedule::Every(d) => (Some(humantime::format_duration(*d).to_string()), None),
            Schedule::Cron { expr, .. } => (None, Some(expr.clone())),
        };
        PolicyDocument {
            name: self.name.to_string(),
            every,
            cron,
            timezone: self.timezone.name().to_owned(),
            rpo: humantime::format_duration(self.rpo).to_string(),
            retain: None,
            retention: Some(self.retention),
            priority: self.priority,
            copies: self
                .copies
                .iter()
                .map(|c| CopyTargetDocument {
                    region: c.region.to_string(),
                    kms_key_id: c.kms_key_id.clone(),
                    account: c.account.clone(),
                })
                .collect(),
            windows: self.windows.iter().map(Window::to_document).collect(),
            window_rule: self.window_rule.map(|r| WindowRuleDocument {
                every: humantime::format_duration(r.every).to_string(),
                rpo: humantime::format_duration(r.rpo).to_string(),
            }),
            select: self.select.as_ref().map(Selection::to_document),
            aws_backup: self.aws_backup.clone(),
            verify: self.verify.map(|v| VerifyRuleDocument {
                every: humantime::format_duration(v.every).to_string(),
                sample: v.sample,
            }),
            tiers: self.tiers.to_documents(),
            export: self.export.as_ref().map(super::export::ExportRule::to_document),
            restore_tests: self.restore_tests.to_document(),
            s3: self.s3.clone(),
            config_bundles: self.config_bundles.clone(),
            approval: self.approval.as_ref().map(super::approval::ApprovalRule::to_document),
        }
    }

    /// Where recovery points of a `kind` resource are copied: the policy's copy targets
    /// for kinds Lifeboat copies (databases, and tables as exports), none for the others
    /// (S3 runs are written to the DR region directly).
    pub fn copies_for(&self, kind: super::ResourceKind) -> &[CopyTarget] {
        if kind.copied_by_lifeboat() { &self.copies } else { &[] }
    }

    /// The name of a criticality window open at `at` (the policy's, or one of `extra`,
    /// e.g. from the resource's tags).
    pub fn open_window<'a>(&'a self, at: DateTime<Utc>, extra: &'a [Window]) -> Option<&'a str> {
        self.windows
            .iter()
            .chain(extra)
            .find(|w| w.contains(at, self.timezone))
            .map(|w| w.name.as_str())
    }

    /// The rule in force at `at`: the window rule while a window is open, else the base.
    pub fn effective<'a>(&'a self, at: DateTime<Utc>, extra: &'a [Window]) -> Effective<'a> {
        let window = self.open_window(at, extra);
        match (window, self.window_rule) {
            (Some(name), Some(rule)) => Effective {
                window: Some(name),
                slot: Some(Slot::containing(at, rule.every)),
                rpo: rule.rpo.min(self.rpo),
                schedule: format!("every {} (window {name})", humantime::format_duration(rule.every)),
            },
            _ => Effective {
                window,
                slot: self.schedule.slot_at(at),
                rpo: self.rpo,
                schedule: self.schedule.describe(),
            },
        }
    }
}

/// A fixed instant for schedule checks, so validation does not depend on the clock.
fn reference_instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn check_every(field: &str, every: Duration, problems: &mut Vec<String>) {
    if every < MIN_EVERY || every > MAX_EVERY {
        problems.push(format!(
            "{field}: {} is outside 1 minute to 31 days",
            humantime::format_duration(every)
        ));
    } else if !every.as_secs().is_multiple_of(60) {
        problems.push(format!("{field}: must be a whole number of minutes"));
    }
}
/// The policy's schedule: `every` or `cron` (in `timezone`), exactly one of them.
fn parse_schedule(doc: &PolicyDocument, timezone: Option<Tz>, problems: &mut Vec<String>) -> Option<Schedule> {
    match (&doc.every, &doc.cron) {
        (Some(every), None) => parse_duration("every", every, problems).and_then(|every| {
            let before = problems.len();
            check_every("every", every, problems);
            (problems.len() == before).then_some(Schedule::Every(every))
        }),
        (None, Some(cron)) => timezone.and_then(|tz| {
            Schedule::cron(cron, tz)
                .map_err(|e| problems.push(format!("cron: {e}")))
                .ok()
        }),
        (Some(_), Some(_)) => {
            problems.push("give either every or cron, not both".into());
            None
        }
        (None, None) => {
            problems.push("a schedule is required: every (e.g. 1h) or cron (e.g. \"0 * * * *\")".into());
            None
        }
    }
}

/// An RPO the schedule can meet: not shorter than its longest gap.
fn check_rpo(schedule: &Schedule, rpo: Duration, problems: &mut Vec<String>) {
    match schedule.longest_gap(reference_instant()) {
        Some(gap) if rpo < gap => problems.push(format!(
            "rpo: {} is shorter than the schedule's longest gap ({}), so it can never be met",
            humantime::format_duration(rpo),
            humantime::format_duration(gap)
        )),
        None => problems.push("cron: the schedule never fires".into()),
        Some(_) => {}
    }
}

/// `retain: n` or `retention: {...}`, exactly one of them.
fn parse_retention(doc: &PolicyDocument, problems: &mut Vec<String>) -> Option<Retention> {
    match (doc.retain, doc.retention) {
        (Some(n), None) => Some(Retention::last(n)),
        (None, Some(r)) => Some(r),
        (Some(_), Some(_)) => {
            problems.push("give either retain or retention, not both".into());
            None
        }
        (None, None) => {
            problems.push("retention is required: retain: n, or retention: {daily: 7, ...}".into());
            None
        }
    }
}

/// The policy's criticality windows, each name once.
fn parse_windows(doc: &PolicyDocument, problems: &mut Vec<String>) -> Vec<Window> {
    let mut windows = Vec::new();
    let mut names = BTreeSet::new();
    for w in &doc.windows {
        match Window::from_document(w) {
            Ok(w) => {
                if !names.insert(w.name.clone()) {
                    problems.push(format!("windows: {:?} is listed twice", w.name));
                }
                windows.push(w);
            }
            Err(e) => problems.push(format!("windows: {e}")),
        }
    }
    windows
}

/// The verification rule: every 1 hour to 366 days, a sample of at least one object.
fn parse_verify(v: &VerifyRuleDocument, problems: &mut Vec<String>) -> Option<VerifyRule> {
    let every = parse_duration("verify.every", &v.every, problems)?;
    if every < Duration::from_hours(1) || every > Duration::from_hours(366 * 24) {
        problems.push(format!(
            "verify.every: {} is outside 1 hour to 366 days",
            humantime::format_duration(every)
        ));
        return None;
    }
    if v.sample == Some(0) {
        problems.push("verify.sample: check at least 1 object, or omit it to check every object".into());
        return None;
    }
    Some(VerifyRule {
        every,
        sample: v.sample,
    })
}

fn parse_copies(docs: &[CopyTargetDocument], problems: &mut Vec<String>) -> Vec<CopyTarget> {
    let mut seen = BTreeSet::new();
    let mut copies = Vec::new();
    for (i, c) in docs.iter().enumerate() {
        match Region::parse(&c.region) {
            Ok(region) => {
                if !seen.insert(region.clone()) {
                    problems.push(format!("copies[{i}]: region {region} is listed twice"));
                }
                if let Some(key) = &c.kms_key_id
                    && let Err(p) = check_kms_key(key, &region)
                {
                    problems.push(format!("copies[{i}].kms_key_id: {p}"));
                }
                if let Some(account) = &c.account {
                    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                        problems.push(format!(
                            "copies[{i}].account: {account:.40?} is not a 12-digit account id"
                        ));
                    }
                    // Snapshots encrypted with an AWS managed key cannot be shared.
                    if c.kms_key_id.as_deref().is_none_or(|k| k.starts_with("alias/aws/")) {
                        problems.push(format!(
                            "copies[{i}]: sharing with account {account:.40} needs kms_key_id, a customer managed key in {region} that the account may use (an AWS managed key cannot be shared)"
                        ));
                    }
                }
                copies.push(CopyTarget {
                    region,
                    kms_key_id: c.kms_key_id.clone(),
                    account: c.account.clone(),
                });
            }
            Err(e) => problems.push(format!("copies[{i}].region: {e}")),
        }
    }
    copies
}

fn parse_duration(field: &str, s: &str, problems: &mut Vec<String>) -> Option<Duration> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            problems.push(format!("{field}: must be longer than zero"));
            None
        }
        Err(e) => {
            let shown: String = s.chars().take(40).collect();
            problems.push(format!("{field}: {shown:?} is not a duration like 15m or 1h ({e})"));
            None
        }
    }
}

/// A KMS key reference must be a key id, a key ARN or an alias; an ARN must be in the
/// destination region (a key from another region is the classic cross-region copy failure).
pub fn check_kms_key(key: &str, region: &Region) -> Result<(), String> {
    if key.is_empty() || key.len() > 2048 {
        return Err("must be a key id, key ARN or alias".into());
    }
    if let Some(rest) = key.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || parts[1] != "kms" {
            return Err(format!("{key:.80} is not a KMS ARN"));
        }
        if parts[2] != region.as_str() {
            return Err(format!(
                "key {key:.80} is in region {}, but copies to {region} need a key in {region}",
                parts[2]
            ));
        }
        return Ok(());
    }
    if key.starts_with("alias/") || key.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(())
    } else {
        Err(format!("{key:.80} is not a key id, key ARN or alias"))
    }
}

#[cfg(test)]
mod tests;
