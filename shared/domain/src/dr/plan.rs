//! DR plans as data: what is protected, where it fails over to, in which order, the RTO and
//! RPO targets, the pre-checks, the validation checks and the endpoint switch. A plan is a
//! JSON document parsed once at the boundary ([`DrPlan::from_json`]); every problem is
//! listed at once, and past the boundary a plan is always valid.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::is_rds_identifier;
use crate::{PolicyName, Region, ResourceKind};

use super::execution::Action;

/// The longest RTO or RPO target a plan may state.
const MAX_TARGET: Duration = Duration::from_hours(72);
const DEFAULT_POLL: Duration = Duration::from_secs(30);

/// Why a plan document was refused: every problem found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DrPlanProblems {
    pub plan: String,
    pub problems: Vec<String>,
}

impl fmt::Display for DrPlanProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DR plan {:?} is invalid: {}", self.plan, self.problems.join("; "))
    }
}

/// One protected database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedDb {
    /// `arn:<partition>:rds:<source region>:<account>:db|cluster:<id>`: what the catalog
    /// knows the database's recovery points by.
    pub arn: String,
    pub kind: ResourceKind,
    /// The DB instance or cluster identifier in the source region.
    pub id: String,
    /// The plan's ordered steps: databases of step N are recovered once every database of
    /// the earlier steps is available (e.g. a primary store before the services' stores).
    pub step: u32,
    /// The DR-region replica: a cross-region read replica (instances), promoted on
    /// failover, or the global database's secondary cluster (Aurora, with `global_cluster`).
    pub read_replica: Option<String>,
    /// The Aurora global database this cluster belongs to (failover by the global cluster,
    /// to the `read_replica` cluster).
    pub global_cluster: Option<String>,
    /// The DB instance class of restored instances and of the writer instance of a
    /// restored Aurora cluster (default: the source's).
    pub instance_class: Option<String>,
    /// The DB parameter group of restored instances (and of an Aurora writer), in the
    /// region restored into (default: the source's for a restore in its own region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    /// Aurora: the DB cluster parameter group of the restored cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_parameter_group: Option<String>,
    /// Instances: the option group of restored instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
    /// How a failover moves the global database (with `global_cluster` only).
    #[serde(default)]
    pub global_move: GlobalMove,
}

/// Where restored databases are placed. RDS puts a restore without a DB subnet group into
/// the default VPC and one without security groups into the VPC's default security group:
/// a plan must name both unless it says `allow_default_network` explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// VPC security groups (in the DR region) of restores there; the subnet group is
    /// `prechecks.subnet_group`.
    pub security_groups: Vec<String>,
    /// Restores in the source region (point-in-time, failback): the DB subnet group and
    /// security groups (default: the source database's, as RDS describes it).
    pub source_subnet_group: Option<String>,
    pub source_security_groups: Vec<String>,
    /// Restores may go into the default VPC and security group.
    pub allow_default_network: bool,
}

/// The settings one restore carries: placement, parameter groups, option group, and the
/// class of an Aurora writer instance. Restores are never publicly accessible.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_group: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_parameter_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
}

/// A parameter, cluster parameter or option group a restore should carry: `None` for
/// RDS's own defaults (`default.<family>`, `default:<engine>-<version>`), which a restore
/// without one gets anyway, and which an emulator need not model.
pub fn named_group(name: &str) -> Option<String> {
    (!name.is_empty() && !name.starts_with("default.") && !name.starts_with("default:")).then(|| name.to_owned())
}

/// A database's placement and groups as RDS describes it (the source of a restore in its
/// own region).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbPlacement {
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
    pub cluster_parameter_group: Option<String>,
    pub option_group: Option<String>,
}

/// How a failover moves an Aurora global database to its DR-region cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GlobalMove {
    /// The primary region is impaired: `FailoverGlobalCluster` with `AllowDataLoss`. Writes
    /// the secondary had not yet received (the replication lag, usually under a second) are
    /// lost.
    #[default]
    Outage,
    /// A planned move with a healthy primary: `SwitchoverGlobalCluster`, which waits for the
    /// secondary to catch up, so nothing is lost. Refused when the primary is not available.
    Planned,
}

impl GlobalMove {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "outage" => Some(Self::Outage),
            "planned" => Some(Self::Planned),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outage => "outage",
            Self::Planned => "planned",
        }
    }
}

/// One protected DynamoDB table. A drill or failover imports the table's newest usable
/// copy in the DR region (an export of it) into a new Lifeboat-named table there, and
/// validates it by item count and content checksum; a drill of a table without a copy
/// restores its newest native backup in the table's own region instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedTable {
    /// `arn:<partition>:dynamodb:<region>:<account>:table/<name>`: what the catalog knows
    /// the table's backups by.
    pub arn: String,
    /// The table's region (from the ARN): where its native backups are.
    pub region: Region,
    pub name: String,
}

/// DynamoDB table names: 3–255 of letters, digits, `_`, `-` and `.`.
pub fn is_table_name(s: &str) -> bool {
    (3..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `arn:<partition>:dynamodb:<region>:<account>:table/<name>` → (region, name).
pub fn parse_table_arn(arn: &str) -> Option<(Region, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "dynamodb" || parts[4].len() != 12 {
        return None;
    }
    let name = parts[5].strip_prefix("table/")?;
    let region = Region::parse(parts[3]).ok()?;
    is_table_name(name).then_some((region, name))
}

/// What the pre-check verifies before anything is changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prechecks {
    /// A verified recovery point newer than the RPO exists in the DR region for every
    /// database without a read replica.
    pub recovery_point: bool,
    /// The KMS key (in the DR region) that restored resources are encrypted with.
    pub kms_key_id: Option<String>,
    /// Failback: the KMS key in the source region for the copy of the DR-side snapshot.
    pub source_kms_key_id: Option<String>,
    /// The DB subnet group (in the DR region) restored resources are placed in.
    pub subnet_group: Option<String>,
    /// The account's RDS quotas leave room for the restored instances and clusters.
    pub quotas: bool,
}

/// How restored resources are judged fit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    /// Tags every restored resource must carry (besides Lifeboat's own).
    pub expect_tags: BTreeMap<String, String>,
    /// A Lambda function for application-level checks: invoked with the restored
    /// resources; a function error or `{"ok": false}` fails the validation.
    pub lambda_arn: Option<String>,
}

/// The endpoint switch of a failover or failback: SSM parameters and/or DNS CNAME records
/// set to the endpoint of a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switch {
    /// The region holding the parameters (usually the applications' region).
    pub region: Region,
    /// Parameter name → the id of the database whose endpoint it receives, or the name of
    /// a table of the plan whose restored table's name it receives.
    pub parameters: BTreeMap<String, String>,
    /// The Route 53 hosted zone of `records`.
    pub hosted_zone_id: Option<String>,
    /// CNAME record name (`orders-db.internal.example.com.`) → the id of the database
    /// whose endpoint it receives.
    pub records: BTreeMap<String, String>,
    /// TTL of the switched records, seconds.
    pub ttl: i64,
    /// How a failback stops the writes to the DR side before its final snapshot.
    pub quiesce: Option<Quiesce>,
}

/// How writes to the DR side stop before a failback's final DR-side snapshot: parameters
/// and CNAME records set to literal values (a maintenance endpoint, a read-only flag),
/// then a wait for clients to notice. Compensation before the switch puts them back;
/// after the switch, entries the switch does not repoint are put back as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiesce {
    /// Parameter name (in the switch's region) → the value that stops writes.
    pub parameters: BTreeMap<String, String>,
    /// CNAME record name (in the switch's hosted zone) → the maintenance host it points at.
    pub records: BTreeMap<String, String>,
    /// How long after the change the snapshot waits (clients' caches, the records' TTL).
    pub settle: Duration,
}

/// TTL of switched DNS records unless the plan says otherwise: short, so clients follow a
/// failover within a minute.
pub const DEFAULT_SWITCH_TTL: i64 = 60;

/// S3 data the plan protects: a bucket (prefix) backed up by `backup-objects`. Its newest
/// backup run is checked by the pre-check (exists, verified, within the RPO) and verified
/// object by object against its manifest by the validation step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSet {
    pub bucket: String,
    pub prefix: String,
    /// Objects read back and hashed at validation (a deterministic sample; all when the
    /// run holds fewer).
    pub sample: usize,
}

/// Objects a validation reads back per data set unless the plan says otherwise.
pub const DEFAULT_DATA_SAMPLE: usize = 200;
/// The most a validation reads per data set (the step must finish well inside its timeout).
pub const MAX_DATA_SAMPLE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrPlan {
    pub name: String,
    pub source_region: Region,
    pub dr_region: Region,
    pub databases: Vec<ProtectedDb>,
    pub data: Vec<DataSet>,
    /// DynamoDB tables, restored from their native backups.
    pub tables: Vec<ProtectedTable>,
    pub rto: Duration,
    pub rpo: Duration,
    pub prechecks: Prechecks,
    pub validation: Validation,
    pub switch: Option<Switch>,
    /// Where restored databases are placed.
    pub network: Network,
    /// Restores still not available after this fail the execution (default: the RTO).
    pub restore_deadline: Duration,
    /// The Wait between two polls of a long operation.
    pub poll_interval: Duration,
    /// Fault injection for rehearsals: the named step fails right after doing its work, so
    /// that a team can watch compensation undo it. Never set it on a production plan.
    pub rehearsal_fault: Option<Action>,
    /// Whether a failover or failback waits for a second person's approval (see
    /// [`crate::approval`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::ApprovalRule>,
}

/// The plan as stored and exchanged: durations as text (`"30m"`), optional fields omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrPlanDocument {
    pub name: String,
    pub source_region: String,
    pub dr_region: String,
    #[serde(default)]
    pub databases: Vec<DbDocument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataDocument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableDocument>,
    pub rto: String,
    pub rpo: String,
    #[serde(default)]
    pub prechecks: PrechecksDocument,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationDocument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<SwitchDocument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkDocument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal_fault: Option<String>,
    /// `{"required": true, "approvers": [...], "expires": "4h"}`: failovers and failbacks
    /// wait for a second person's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::ApprovalDocument>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbDocument {
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_replica: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_cluster: Option<String>,
    /// `outage` (default) or `planned`: see [`GlobalMove`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_move: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_parameter_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDocument {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_subnet_group: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_security_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_default_network: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDocument {
    pub bucket: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDocument {
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrechecksDocument {
    #[serde(default = "yes")]
    pub recovery_point: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_group: Option<String>,
    #[serde(default)]
    pub quotas: bool,
}

impl Default for PrechecksDocument {
    fn default() -> Self {
        Self {
            recovery_point: true,
            kms_key_id: None,
            source_kms_key_id: None,
            subnet_group: None,
            quotas: false,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationDocument {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expect_tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchDocument {
    pub region: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub records: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiesce: Option<QuiesceDocument>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuiesceDocument {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub records: BTreeMap<String, String>,
    /// A duration (`30s`, `2m`); default: the switch's TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<String>,
}

/// A DNS name: dot-separated labels of 1–63 letters, digits, `-` or `_`, 253 at most.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The longest a failback waits for writes to settle.
const MAX_SETTLE: Duration = Duration::from_hours(1);

/// A DNS name with its final dot, lowercase: how Route 53 returns names.
pub fn fqdn(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// `arn:<partition>:rds:<region>:<account>:db|cluster:<id>` → (region, kind, id).
pub fn parse_rds_arn(arn: &str) -> Option<(&str, ResourceKind, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 7 || parts[0] != "arn" || parts[2] != "rds" || parts[4].len() != 12 {
        return None;
    }
    let kind = match parts[5] {
        "db" => ResourceKind::RdsInstance,
        "cluster" => ResourceKind::AuroraCluster,
        _ => return None,
    };
    (Region::parse(parts[3]).is_ok() && is_rds_identifier(parts[6])).then_some((parts[3], kind, parts[6]))
}

fn is_lambda_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() >= 7
        && parts.len() <= 8
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "function"
        && !parts[6].is_empty()
}

mod check;
#[cfg(test)]
mod tests;
