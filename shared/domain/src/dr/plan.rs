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

fn duration(field: &str, raw: &str, problems: &mut Vec<String>) -> Option<Duration> {
    match humantime::parse_duration(raw) {
        Ok(d) if d.is_zero() => {
            problems.push(format!("{field}: must be more than zero"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            problems.push(format!("{field}: {raw:.40?} is not a duration ({e})"));
            None
        }
    }
}

fn region(field: &str, raw: &str, problems: &mut Vec<String>) -> Option<Region> {
    Region::parse(raw)
        .map_err(|e| problems.push(format!("{field}: {e}")))
        .ok()
}

/// The plan's DynamoDB tables: valid ARNs, each once, in the source or DR region.
fn parse_tables(
    doc: &DrPlanDocument,
    source_region: Option<&Region>,
    dr_region: Option<&Region>,
    problems: &mut Vec<String>,
) -> Vec<ProtectedTable> {
    let mut tables: Vec<ProtectedTable> = Vec::new();
    for (i, t) in doc.tables.iter().enumerate() {
        let at = format!("tables[{i}]");
        match parse_table_arn(&t.arn) {
            None => problems.push(format!(
                "{at}.arn: {:.100?} is not a DynamoDB table ARN (arn:aws:dynamodb:<region>:<account>:table/<name>)",
                t.arn
            )),
            Some(_) if tables.iter().any(|p| p.arn == t.arn) => {
                problems.push(format!("{at}.arn: {} is listed twice", t.arn));
            }
            Some((region, _)) if ![source_region, dr_region].contains(&Some(&region)) => {
                problems.push(format!(
                    "{at}.arn: {} is in {region}, neither source_region nor dr_region (its backups, and so its restore, stay in its region)",
                    t.arn
                ));
            }
            Some((region, name)) => tables.push(ProtectedTable {
                arn: t.arn.clone(),
                region,
                name: name.to_owned(),
            }),
        }
    }
    tables
}

/// The plan's S3 data sets: valid bucket and prefix, a sample in range, each once.
fn parse_data(doc: &DrPlanDocument, problems: &mut Vec<String>) -> Vec<DataSet> {
    let mut data = Vec::new();
    for (i, d) in doc.data.iter().enumerate() {
        let at = format!("data[{i}]");
        if let Err(e) = crate::s3::check_bucket(&d.bucket) {
            problems.push(format!("{at}.bucket: {e}"));
        }
        if let Err(e) = crate::s3::check_prefix(&d.prefix) {
            problems.push(format!("{at}.prefix: {e}"));
        }
        let sample = d.sample.unwrap_or(DEFAULT_DATA_SAMPLE);
        if !(1..=MAX_DATA_SAMPLE).contains(&sample) {
            problems.push(format!("{at}.sample: {sample} is outside 1 to {MAX_DATA_SAMPLE}"));
        }
        if data
            .iter()
            .any(|x: &DataSet| x.bucket == d.bucket && x.prefix == d.prefix)
        {
            problems.push(format!("{at}: {}/{} is listed twice", d.bucket, d.prefix));
        }
        data.push(DataSet {
            bucket: d.bucket.clone(),
            prefix: d.prefix.clone(),
            sample,
        });
    }
    data
}

/// The plan's databases, and the identifiers of those that parsed (a switch may name
/// them).
fn parse_databases(
    doc: &DrPlanDocument,
    source_region: Option<&Region>,
    problems: &mut Vec<String>,
) -> (Vec<ProtectedDb>, std::collections::HashSet<String>) {
    let mut databases = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, d) in doc.databases.iter().enumerate() {
        let at = format!("databases[{i}]");
        let (kind, id) = if let Some((region, kind, id)) = parse_rds_arn(&d.arn) {
            if source_region.is_some_and(|r| r.as_str() != region) {
                problems.push(format!("{at}.arn: {} is not in source_region", d.arn));
            }
            (Some(kind), id.to_owned())
        } else {
            problems.push(format!(
                "{at}.arn: {:.100?} is not an RDS DB instance or cluster ARN",
                d.arn
            ));
            (None, String::new())
        };
        if kind.is_some() && !seen.insert(id.clone()) {
            problems.push(format!("{at}.arn: {id} is listed twice"));
        }
        if let Some(r) = &d.read_replica {
            if !is_rds_identifier(r) {
                problems.push(format!("{at}.read_replica: {r:.70?} is not an RDS identifier"));
            }
            if kind == Some(ResourceKind::AuroraCluster) && d.global_cluster.is_none() {
                problems.push(format!("{at}.read_replica: for a cluster, only with global_cluster"));
            }
        }
        if let Some(g) = &d.global_cluster {
            if !is_rds_identifier(g) {
                problems.push(format!("{at}.global_cluster: {g:.70?} is not an RDS identifier"));
            }
            if kind == Some(ResourceKind::RdsInstance) {
                problems.push(format!("{at}.global_cluster: only for aurora-cluster"));
            }
            if d.read_replica.is_none() {
                problems.push(format!(
                    "{at}.global_cluster: name the DR-region secondary cluster in read_replica"
                ));
            }
        }
        let global_move = match d.global_move.as_deref() {
            None => GlobalMove::default(),
            Some(m) => {
                if d.global_cluster.is_none() {
                    problems.push(format!("{at}.global_move: only with global_cluster"));
                }
                GlobalMove::parse(m).unwrap_or_else(|| {
                    problems.push(format!("{at}.global_move: {m:.40?} is not outage or planned"));
                    GlobalMove::default()
                })
            }
        };
        if d.instance_class.as_deref().is_some_and(|c| !c.starts_with("db.")) {
            problems.push(format!("{at}.instance_class: expected a class like db.r6g.large"));
        }
        for (field, v) in [
            ("parameter_group", &d.parameter_group),
            ("cluster_parameter_group", &d.cluster_parameter_group),
            ("option_group", &d.option_group),
        ] {
            if v.as_deref().is_some_and(|g| g.is_empty() || g.len() > 255) {
                problems.push(format!("{at}.{field}: expected a group name"));
            }
        }
        if d.cluster_parameter_group.is_some() && kind == Some(ResourceKind::RdsInstance) {
            problems.push(format!("{at}.cluster_parameter_group: only for aurora-cluster"));
        }
        if d.option_group.is_some() && kind == Some(ResourceKind::AuroraCluster) {
            problems.push(format!("{at}.option_group: Aurora clusters take no option group"));
        }
        if d.step == Some(0) {
            problems.push(format!("{at}.step: steps count from 1"));
        }
        if let Some(kind) = kind {
            databases.push(ProtectedDb {
                arn: d.arn.clone(),
                kind,
                id,
                step: d.step.unwrap_or(1),
                read_replica: d.read_replica.clone(),
                global_cluster: d.global_cluster.clone(),
                instance_class: d.instance_class.clone(),
                parameter_group: d.parameter_group.clone(),
                cluster_parameter_group: d.cluster_parameter_group.clone(),
                option_group: d.option_group.clone(),
                global_move,
            });
        }
    }
    (databases, seen)
}

/// The databases' steps run 1, 2, 3… without gaps.
fn check_steps(databases: &[ProtectedDb], problems: &mut Vec<String>) {
    let mut steps: Vec<u32> = databases.iter().map(|d| d.step).collect();
    steps.sort_unstable();
    steps.dedup();
    if steps
        .iter()
        .enumerate()
        .any(|(i, s)| usize::try_from(*s).ok() != Some(i + 1))
    {
        problems.push(format!(
            "databases: steps must run 1, 2, 3… without gaps (found {steps:?})"
        ));
    }
}

/// Where restored databases land: named prechecks, valid security groups, and no default
/// VPC or security group unless the plan allows it.
fn check_placement(doc: &DrPlanDocument, net: &NetworkDocument, problems: &mut Vec<String>) {
    let p = &doc.prechecks;
    if p.kms_key_id.as_deref().is_some_and(str::is_empty) {
        problems.push("prechecks.kms_key_id: empty".into());
    }
    if p.subnet_group.as_deref().is_some_and(str::is_empty) {
        problems.push("prechecks.subnet_group: empty".into());
    }
    for (field, groups) in [
        ("network.security_groups", &net.security_groups),
        ("network.source_security_groups", &net.source_security_groups),
    ] {
        for g in groups {
            if !is_security_group_id(g) {
                problems.push(format!(
                    "{field}: {g:.40?} is not a VPC security group id like sg-0123456789abcdef0"
                ));
            }
        }
    }
    if net.source_subnet_group.as_deref().is_some_and(str::is_empty) {
        problems.push("network.source_subnet_group: empty".into());
    }
    // Restores in the DR region are placed by the plan alone (a VPC's groups do not
    // cross regions); restores in the source region fall back to the source's own.
    if !doc.databases.is_empty() && !net.allow_default_network {
        let mut missing = Vec::new();
        if p.subnet_group.is_none() {
            missing.push("prechecks.subnet_group (the DR-region DB subnet group)");
        }
        if net.security_groups.is_empty() {
            missing.push("network.security_groups (the DR-region VPC security groups)");
        }
        if !missing.is_empty() {
            problems.push(format!(
                "network: restored databases would be placed in the default VPC or security group; name {} (or set network.allow_default_network: true)",
                missing.join(" and ")
            ));
        }
    }
}

/// The endpoint switch: parameters and DNS records that name this plan's databases or
/// tables, a valid hosted zone and TTL, and the quiesce that stops writes.
fn parse_switch(
    s: &SwitchDocument,
    seen: &std::collections::HashSet<String>,
    tables: &[ProtectedTable],
    problems: &mut Vec<String>,
) -> Option<Switch> {
    let r = region("switch.region", &s.region, problems);
    if s.parameters.is_empty() && s.records.is_empty() {
        problems.push("switch: name at least one parameter or DNS record".into());
    }
    if !s.records.is_empty() {
        match &s.hosted_zone_id {
            None => problems.push("switch.hosted_zone_id: DNS records need their hosted zone".into()),
            Some(z) if z.is_empty() || z.len() > 32 || !z.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                problems.push(format!(
                    "switch.hosted_zone_id: {z:.40?} is not a hosted zone id like Z0123456789ABC"
                ));
            }
            Some(_) => {}
        }
    }
    for (name, db) in &s.records {
        if !is_dns_name(name) {
            problems.push(format!(
                "switch.records: {name:.80?} is not a DNS name like db.example.com."
            ));
        }
        if !seen.contains(db) {
            problems.push(format!(
                "switch.records[{name:.80}]: {db:.70?} is not a database of this plan"
            ));
        }
    }
    if let Some(ttl) = s.ttl
        && !(1..=86_400).contains(&ttl)
    {
        problems.push(format!("switch.ttl: {ttl} is outside 1 to 86400 seconds"));
    }
    for (name, db) in &s.parameters {
        if !name.starts_with('/') || name.len() > 1011 {
            problems.push(format!("switch.parameters: {name:.80?} is not a parameter path (/…)"));
        }
        if !seen.contains(db) && !tables.iter().any(|t| &t.name == db) {
            problems.push(format!(
                "switch.parameters[{name}]: {db:.70?} is not a database or table of this plan"
            ));
        }
    }
    let ttl = s.ttl.unwrap_or(DEFAULT_SWITCH_TTL);
    let quiesce = s.quiesce.as_ref().and_then(|q| parse_quiesce(q, s, ttl, problems));
    r.map(|region| Switch {
        region,
        parameters: s.parameters.clone(),
        hosted_zone_id: s.hosted_zone_id.clone(),
        records: s.records.iter().map(|(name, db)| (fqdn(name), db.clone())).collect(),
        ttl,
        quiesce,
    })
}

/// What stops writes before a failback's final snapshot, and how long it settles
/// (default: the switch's TTL).
fn parse_quiesce(q: &QuiesceDocument, s: &SwitchDocument, ttl: i64, problems: &mut Vec<String>) -> Option<Quiesce> {
    let before = problems.len();
    if q.parameters.is_empty() && q.records.is_empty() {
        problems.push("switch.quiesce: name at least one parameter or DNS record that stops writes".into());
    }
    for (name, value) in &q.parameters {
        if !name.starts_with('/') || name.len() > 1011 {
            problems.push(format!(
                "switch.quiesce.parameters: {name:.80?} is not a parameter path (/…)"
            ));
        }
        if value.trim().is_empty() || value.len() > 4096 {
            problems.push(format!(
                "switch.quiesce.parameters[{name:.80}]: the value must be 1 to 4096 characters"
            ));
        }
    }
    if !q.records.is_empty() && s.hosted_zone_id.is_none() {
        problems.push("switch.quiesce.records: DNS records need the switch's hosted_zone_id".into());
    }
    for (name, value) in &q.records {
        if !is_dns_name(name) {
            problems.push(format!(
                "switch.quiesce.records: {name:.80?} is not a DNS name like db.example.com."
            ));
        }
        if !is_dns_name(value) {
            problems.push(format!(
                "switch.quiesce.records[{name:.80}]: {value:.80?} is not a host name to point at"
            ));
        }
    }
    let settle = match q.settle.as_deref() {
        None => Duration::from_secs(u64::try_from(ttl).unwrap_or(0)),
        Some(raw) => match humantime::parse_duration(raw) {
            Ok(d) if d <= MAX_SETTLE => d,
            Ok(_) => {
                problems.push("switch.quiesce.settle: at most 1h".into());
                Duration::ZERO
            }
            Err(e) => {
                problems.push(format!("switch.quiesce.settle: {raw:.40?} is not a duration ({e})"));
                Duration::ZERO
            }
        },
    };
    (problems.len() == before).then(|| Quiesce {
        parameters: q.parameters.clone(),
        records: q.records.iter().map(|(name, v)| (fqdn(name), v.clone())).collect(),
        settle,
    })
}

impl DrPlan {
    pub fn from_json(json: &str) -> Result<Self, DrPlanProblems> {
        let doc: DrPlanDocument = serde_json::from_str(json).map_err(|e| DrPlanProblems {
            plan: String::new(),
            problems: vec![format!("not a DR plan document: {e}")],
        })?;
        Self::from_document(&doc)
    }

    /// Checks every field and reports every problem.
    pub fn from_document(doc: &DrPlanDocument) -> Result<Self, DrPlanProblems> {
        let mut problems = Vec::new();
        if let Err(e) = PolicyName::parse(&doc.name) {
            problems.push(format!("name: {e}"));
        }
        let source_region = region("source_region", &doc.source_region, &mut problems);
        let dr_region = region("dr_region", &doc.dr_region, &mut problems);
        if source_region.is_some() && source_region == dr_region {
            problems.push("dr_region: must differ from source_region".into());
        }
        let rto = duration("rto", &doc.rto, &mut problems);
        let rpo = duration("rpo", &doc.rpo, &mut problems);
        for (field, d) in [("rto", rto), ("rpo", rpo)] {
            if d.is_some_and(|d| d > MAX_TARGET) {
                problems.push(format!("{field}: at most 72h"));
            }
        }
        let restore_deadline = doc
            .restore_deadline
            .as_deref()
            .map(|d| duration("restore_deadline", d, &mut problems));
        let poll_interval = doc
            .poll_interval
            .as_deref()
            .map(|d| duration("poll_interval", d, &mut problems));
        if poll_interval.flatten().is_some_and(|d| d > Duration::from_hours(1)) {
            problems.push("poll_interval: at most 1h".into());
        }

        if doc.databases.is_empty() && doc.data.is_empty() && doc.tables.is_empty() {
            problems.push("databases: at least one database (or S3 data set, or DynamoDB table) is required".into());
        }
        let tables = parse_tables(doc, source_region.as_ref(), dr_region.as_ref(), &mut problems);
        let data = parse_data(doc, &mut problems);
        let (databases, seen) = parse_databases(doc, source_region.as_ref(), &mut problems);
        check_steps(&databases, &mut problems);

        let p = &doc.prechecks;
        let net = doc.network.clone().unwrap_or_default();
        check_placement(doc, &net, &mut problems);
        let validation = doc.validation.clone().unwrap_or_default();
        if let Some(arn) = &validation.lambda_arn
            && !is_lambda_arn(arn)
        {
            problems.push(format!(
                "validation.lambda_arn: {arn:.100?} is not a Lambda function ARN"
            ));
        }
        let switch = doc
            .switch
            .as_ref()
            .and_then(|s| parse_switch(s, &seen, &tables, &mut problems));
        let rehearsal_fault = doc.rehearsal_fault.as_deref().and_then(|f| {
            Action::parse(f).filter(|a| a.can_fail_in_rehearsal()).or_else(|| {
                problems.push(format!(
                    "rehearsal_fault: {f:.40?} is not a step that can fail ({})",
                    Action::REHEARSABLE.map(Action::as_str).join(", ")
                ));
                None
            })
        });

        match (source_region, dr_region, rto, rpo, problems.is_empty()) {
            (Some(source_region), Some(dr_region), Some(rto), Some(rpo), true) => Ok(Self {
                name: doc.name.clone(),
                source_region,
                dr_region,
                databases,
                data,
                tables,
                rto,
                rpo,
                prechecks: Prechecks {
                    recovery_point: p.recovery_point,
                    kms_key_id: p.kms_key_id.clone(),
                    source_kms_key_id: p.source_kms_key_id.clone(),
                    subnet_group: p.subnet_group.clone(),
                    quotas: p.quotas,
                },
                validation: Validation {
                    expect_tags: validation.expect_tags,
                    lambda_arn: validation.lambda_arn,
                },
                switch,
                network: Network {
                    security_groups: net.security_groups,
                    source_subnet_group: net.source_subnet_group,
                    source_security_groups: net.source_security_groups,
                    allow_default_network: net.allow_default_network,
                },
                restore_deadline: restore_deadline.flatten().unwrap_or(rto),
                poll_interval: poll_interval.flatten().unwrap_or(DEFAULT_POLL),
                rehearsal_fault,
            }),
            _ => Err(DrPlanProblems {
                plan: doc.name.chars().take(64).collect(),
                problems,
            }),
        }
    }

    pub fn to_document(&self) -> DrPlanDocument {
        let fmt = |d: Duration| humantime::format_duration(d).to_string();
        DrPlanDocument {
            name: self.name.clone(),
            source_region: self.source_region.to_string(),
            dr_region: self.dr_region.to_string(),
            databases: self
                .databases
                .iter()
                .map(|d| DbDocument {
                    arn: d.arn.clone(),
                    step: Some(d.step),
                    read_replica: d.read_replica.clone(),
                    global_cluster: d.global_cluster.clone(),
                    global_move: d.global_cluster.as_ref().map(|_| d.global_move.as_str().to_owned()),
                    instance_class: d.instance_class.clone(),
                    parameter_group: d.parameter_group.clone(),
                    cluster_parameter_group: d.cluster_parameter_group.clone(),
                    option_group: d.option_group.clone(),
                })
                .collect(),
            data: self
                .data
                .iter()
                .map(|d| DataDocument {
                    bucket: d.bucket.clone(),
                    prefix: d.prefix.clone(),
                    sample: Some(d.sample),
                })
                .collect(),
            tables: self
                .tables
                .iter()
                .map(|t| TableDocument { arn: t.arn.clone() })
                .collect(),
            rto: fmt(self.rto),
            rpo: fmt(self.rpo),
            prechecks: PrechecksDocument {
                recovery_point: self.prechecks.recovery_point,
                kms_key_id: self.prechecks.kms_key_id.clone(),
                source_kms_key_id: self.prechecks.source_kms_key_id.clone(),
                subnet_group: self.prechecks.subnet_group.clone(),
                quotas: self.prechecks.quotas,
            },
            validation: Some(ValidationDocument {
                expect_tags: self.validation.expect_tags.clone(),
                lambda_arn: self.validation.lambda_arn.clone(),
            }),
            switch: self.switch.as_ref().map(|s| SwitchDocument {
                region: s.region.to_string(),
                parameters: s.parameters.clone(),
                hosted_zone_id: s.hosted_zone_id.clone(),
                records: s.records.clone(),
                ttl: Some(s.ttl),
                quiesce: s.quiesce.as_ref().map(|q| QuiesceDocument {
                    parameters: q.parameters.clone(),
                    records: q.records.clone(),
                    settle: Some(fmt(q.settle)),
                }),
            }),
            network: Some(NetworkDocument {
                security_groups: self.network.security_groups.clone(),
                source_subnet_group: self.network.source_subnet_group.clone(),
                source_security_groups: self.network.source_security_groups.clone(),
                allow_default_network: self.network.allow_default_network,
            }),
            restore_deadline: Some(fmt(self.restore_deadline)),
            poll_interval: Some(fmt(self.poll_interval)),
            rehearsal_fault: self.rehearsal_fault.map(|a| a.as_str().to_owned()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_document()).unwrap_or_default()
    }

    pub fn database(&self, id: &str) -> Option<&ProtectedDb> {
        self.databases.iter().find(|d| d.id == id)
    }

    /// What a restore of `db` carries. In the DR region: the plan's subnet group, security
    /// groups and groups. In the source region (point-in-time, failback): the plan's
    /// `source_*` placement, else the source database's own (`source`, as RDS describes it),
    /// and the plan's groups, else the source's. Refused (naming what is missing) when the
    /// restore would land in the default VPC or security group and the plan does not allow
    /// it explicitly.
    pub fn restore_settings(
        &self,
        db: &ProtectedDb,
        in_dr_region: bool,
        source: Option<&DbPlacement>,
    ) -> Result<RestoreSettings, String> {
        let own = |plan: &Option<String>, described: Option<&Option<String>>| {
            plan.clone().or_else(|| described.cloned().flatten())
        };
        let settings = if in_dr_region {
            RestoreSettings {
                subnet_group: self.prechecks.subnet_group.clone(),
                security_groups: self.network.security_groups.clone(),
                parameter_group: db.parameter_group.clone(),
                cluster_parameter_group: db.cluster_parameter_group.clone(),
                option_group: db.option_group.clone(),
            }
        } else {
            RestoreSettings {
                subnet_group: own(&self.network.source_subnet_group, source.map(|s| &s.subnet_group)),
                security_groups: if self.network.source_security_groups.is_empty() {
                    source.map(|s| s.security_groups.clone()).unwrap_or_default()
                } else {
                    self.network.source_security_groups.clone()
                },
                parameter_group: own(&db.parameter_group, source.map(|s| &s.parameter_group)),
                cluster_parameter_group: own(&db.cluster_parameter_group, source.map(|s| &s.cluster_parameter_group)),
                option_group: own(&db.option_group, source.map(|s| &s.option_group)),
            }
        };
        if !self.network.allow_default_network {
            let (subnet, groups) = if in_dr_region {
                ("prechecks.subnet_group", "network.security_groups")
            } else {
                ("network.source_subnet_group", "network.source_security_groups")
            };
            let mut missing = Vec::new();
            if settings.subnet_group.is_none() {
                missing.push(format!("a DB subnet group ({subnet}, or the source's)"));
            }
            if settings.security_groups.is_empty() {
                missing.push(format!("VPC security groups ({groups}, or the source's)"));
            }
            if !missing.is_empty() {
                return Err(format!(
                    "{}: the restore would be placed in the default VPC or security group; missing {} (or set network.allow_default_network: true)",
                    db.id,
                    missing.join(" and ")
                ));
            }
        }
        Ok(settings)
    }
}

/// `sg-` and 8 or 17 hex digits.
fn is_security_group_id(s: &str) -> bool {
    s.strip_prefix("sg-")
        .is_some_and(|h| matches!(h.len(), 8 | 17) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rds_default_groups_are_left_to_rds() {
        assert_eq!(named_group("default.postgres16"), None);
        assert_eq!(named_group("default:postgres-16"), None);
        assert_eq!(named_group(""), None);
        assert_eq!(named_group("orders-pg16").as_deref(), Some("orders-pg16"));
    }

    const GOOD: &str = r#"{
        "name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
        "databases": [
            {"arn": "arn:aws:rds:us-east-1:123456789012:db:orders", "read_replica": "orders-replica"},
            {"arn": "arn:aws:rds:us-east-1:123456789012:cluster:ledger", "step": 2,
             "global_cluster": "ledger-global", "read_replica": "ledger-west"}
        ],
        "rto": "30m", "rpo": "15m",
        "prechecks": {"kms_key_id": "arn:aws:kms:us-west-2:1:key/k", "subnet_group": "dr-private"},
        "network": {"security_groups": ["sg-0123456789abcdef0"]},
        "validation": {"expect_tags": {"app": "orders"}, "lambda_arn": "arn:aws:lambda:us-west-2:1:function:check"},
        "switch": {"region": "us-east-1", "parameters": {"/orders/db/endpoint": "orders"}}
    }"#;

    #[test]
    fn a_failback_quiesce_parses_round_trips_and_bad_ones_are_listed() {
        let with = |quiesce: &str| {
            GOOD.replace(
                r#""switch": {"region": "us-east-1", "parameters": {"/orders/db/endpoint": "orders"}}"#,
                &format!(
                    r#""switch": {{"region": "us-east-1", "parameters": {{"/orders/db/endpoint": "orders"}},
                                  "hosted_zone_id": "Z1", "quiesce": {quiesce}}}"#
                ),
            )
        };
        let plan = DrPlan::from_json(&with(
            r#"{"parameters": {"/orders/db/endpoint": "maintenance.invalid", "/orders/read-only": "true"},
                "records": {"orders-db.example.com": "maintenance.example.com"}, "settle": "90s"}"#,
        ))
        .unwrap();
        let q = plan.switch.as_ref().unwrap().quiesce.clone().unwrap();
        assert_eq!(q.settle, Duration::from_secs(90));
        assert_eq!(q.parameters["/orders/read-only"], "true");
        assert_eq!(q.records["orders-db.example.com."], "maintenance.example.com");
        assert_eq!(DrPlan::from_json(&plan.to_json()).unwrap(), plan);
        // The settle time defaults to the switch's TTL.
        let plan = DrPlan::from_json(&with(r#"{"parameters": {"/orders/read-only": "true"}}"#)).unwrap();
        assert_eq!(
            plan.switch.unwrap().quiesce.unwrap().settle,
            Duration::from_secs(DEFAULT_SWITCH_TTL.unsigned_abs())
        );
        let all = DrPlan::from_json(&with(
            r#"{"parameters": {"orders/x": "", "/ok": "v"}, "records": {"not a name": "also not"}, "settle": "3h"}"#,
        ))
        .unwrap_err()
        .problems
        .join("\n");
        for needle in [
            "switch.quiesce.parameters: \"orders/x\" is not a parameter path",
            "switch.quiesce.parameters[orders/x]: the value must be",
            "switch.quiesce.records: \"not a name\" is not a DNS name",
            "is not a host name to point at",
            "switch.quiesce.settle: at most 1h",
        ] {
            assert!(all.contains(needle), "{needle} not in:\n{all}");
        }
        let all = DrPlan::from_json(&with("{}")).unwrap_err().problems.join("\n");
        assert!(all.contains("switch.quiesce: name at least one"), "{all}");
        let all = DrPlan::from_json(&with(r#"{"parameter": {}}"#))
            .unwrap_err()
            .problems
            .join("\n");
        assert!(all.contains("parameter"), "unknown fields are refused: {all}");
    }

    #[test]
    fn a_good_plan_parses_and_round_trips() {
        let plan = DrPlan::from_json(GOOD).unwrap();
        assert_eq!(plan.rto, Duration::from_mins(30));
        assert_eq!(plan.restore_deadline, plan.rto, "the deadline defaults to the RTO");
        assert_eq!(plan.databases[1].step, 2);
        assert!(plan.prechecks.recovery_point);
        let again = DrPlan::from_json(&plan.to_json()).unwrap();
        assert_eq!(again, plan);
    }

    #[test]
    fn s3_data_sets_parse_with_their_sample_and_bad_ones_are_listed() {
        let only_data = r#"{"name": "media-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
            "data": [{"bucket": "media", "prefix": "photos/"}, {"bucket": "invoices", "sample": 50}],
            "rto": "1h", "rpo": "1h"}"#;
        let plan = DrPlan::from_json(only_data).unwrap();
        assert!(plan.databases.is_empty());
        assert_eq!(plan.data[0].sample, DEFAULT_DATA_SAMPLE);
        assert_eq!(
            (
                plan.data[1].bucket.as_str(),
                plan.data[1].prefix.as_str(),
                plan.data[1].sample
            ),
            ("invoices", "", 50)
        );
        assert_eq!(DrPlan::from_json(&plan.to_json()).unwrap(), plan);

        let bad = r#"{"name": "media-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
            "data": [{"bucket": "Media_Bucket"}, {"bucket": "media", "sample": 0},
                     {"bucket": "media", "sample": 20000}],
            "rto": "1h", "rpo": "1h"}"#;
        let all = DrPlan::from_json(bad).unwrap_err().problems.join("\n");
        for needle in [
            "data[0].bucket",
            "data[1].sample: 0",
            "data[2].sample: 20000",
            "data[2]: media/ is listed twice",
        ] {
            assert!(all.contains(needle), "{needle} not in:\n{all}");
        }
        let empty =
            r#"{"name": "x", "source_region": "us-east-1", "dr_region": "us-west-2", "rto": "1h", "rpo": "1h"}"#;
        let all = DrPlan::from_json(empty).unwrap_err().problems.join("\n");
        assert!(all.contains("at least one database (or S3 data set"), "{all}");
    }

    #[test]
    fn tables_parse_round_trip_and_bad_ones_are_all_listed() {
        let plan = DrPlan::from_json(
            r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
                "tables": [{"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders.v2_x"}],
                "rto": "1h", "rpo": "1h",
                "switch": {"region": "us-east-1", "parameters": {"/orders/table": "orders.v2_x"}}}"#,
        )
        .unwrap();
        assert_eq!(
            (plan.tables[0].name.as_str(), plan.tables[0].region.as_str()),
            ("orders.v2_x", "us-east-1")
        );
        assert_eq!(DrPlan::from_json(&plan.to_json()).unwrap(), plan);

        let bad = r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
            "tables": [{"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"},
                       {"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"},
                       {"arn": "arn:aws:dynamodb:mars-1:123456789012:table/x1y"},
                       {"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/no"},
                       {"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"},
                       {"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/a b c"},
                       {"arn": "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"},
                       {"table": "orders"}],
            "rto": "1h", "rpo": "1h",
            "switch": {"region": "us-east-1", "parameters": {"/orders/table": "carts"}}}"#;
        let all = DrPlan::from_json(bad).unwrap_err().problems.join("\n");
        assert!(all.contains("unknown field `table`"), "{all}");
        let bad = bad.replace(
            r#",
                       {"table": "orders"}"#,
            "",
        );
        let all = DrPlan::from_json(&bad).unwrap_err().problems.join("\n");
        for needle in [
            "tables[1].arn: arn:aws:dynamodb:us-east-1:123456789012:table/orders is listed twice",
            "tables[2].arn",
            "tables[3].arn",
            "tables[4].arn",
            "tables[5].arn",
            "tables[6].arn: arn:aws:dynamodb:eu-west-1:123456789012:table/orders is in eu-west-1, neither",
            "switch.parameters[/orders/table]: \"carts\" is not a database or table of this plan",
        ] {
            assert!(all.contains(needle), "{needle} not in:\n{all}");
        }
        assert!(!all.contains("tables[0]"), "{all}");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let bad = r#"{
            "name": "Orders DR", "source_region": "us-east-1", "dr_region": "us-east-1",
            "databases": [
                {"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"},
                {"arn": "arn:aws:rds:us-east-1:123456789012:db:ok", "step": 3, "global_cluster": "g"},
                {"arn": "arn:aws:rds:us-east-1:123456789012:cluster:c", "read_replica": "r", "global_move": "planned"},
                {"arn": "arn:aws:rds:eu-west-1:123456789012:db:elsewhere"},
                {"arn": "arn:aws:rds:us-east-1:123456789012:cluster:g", "global_cluster": "gg",
                 "read_replica": "g-west", "global_move": "whenever"}
            ],
            "rto": "soon", "rpo": "0s",
            "validation": {"lambda_arn": "arn:aws:s3:::bucket"},
            "switch": {"region": "mars", "parameters": {"x": "nope"}},
            "rehearsal_fault": "precheck"
        }"#;
        let err = DrPlan::from_json(bad).unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "name:",
            "dr_region: must differ",
            "rto:",
            "rpo: must be more than zero",
            "databases[0].arn",
            "databases[1].global_cluster: only for aurora-cluster",
            "databases[1].global_cluster: name the DR-region secondary",
            "databases[2].read_replica: for a cluster, only with global_cluster",
            "databases[3].arn: arn:aws:rds:eu-west-1:123456789012:db:elsewhere is not in source_region",
            "databases[2].global_move: only with global_cluster",
            "databases[4].global_move: \"whenever\" is not outage or planned",
            "steps must run",
            "validation.lambda_arn",
            "switch.region",
            "is not a parameter path",
            "is not a database or table of this plan",
            "rehearsal_fault",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn a_global_database_moves_by_outage_failover_unless_the_plan_says_planned() {
        let p = DrPlan::from_json(GOOD).unwrap();
        assert_eq!(p.databases[1].global_move, GlobalMove::Outage);
        let planned = GOOD.replace(
            r#""global_cluster": "ledger-global","#,
            r#""global_cluster": "ledger-global", "global_move": "planned","#,
        );
        let p = DrPlan::from_json(&planned).unwrap();
        assert_eq!(p.databases[1].global_move, GlobalMove::Planned);
        // The document round-trips, and names the move only where there is a global cluster.
        let doc = p.to_document();
        assert_eq!(doc.databases[1].global_move.as_deref(), Some("planned"));
        assert_eq!(doc.databases[0].global_move, None);
        assert_eq!(DrPlan::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn unknown_fields_and_garbage_are_refused_without_panicking() {
        assert!(DrPlan::from_json(r#"{"name":"a","surprise":1}"#).is_err());
        for junk in ["", "null", "[]", "{", "\"plan\""] {
            assert!(DrPlan::from_json(junk).is_err());
        }
    }

    #[test]
    fn rds_identifiers() {
        for ok in ["a", "orders-db", "a1"] {
            assert!(is_rds_identifier(ok), "{ok}");
        }
        for bad in ["", "1a", "a-", "a--b", "a_b", &"a".repeat(64)] {
            assert!(!is_rds_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn dns_records_in_a_switch_are_validated_and_round_trip() {
        let plan = DrPlan::from_json(
            r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
                "databases": [{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}],
                "rto": "30m", "rpo": "15m", "network": {"allow_default_network": true},
                "switch": {"region": "us-east-1", "hosted_zone_id": "Z0123456789ABC",
                           "records": {"Orders-DB.internal.example.com": "orders"}}}"#,
        )
        .unwrap();
        let sw = plan.switch.as_ref().unwrap();
        assert_eq!(
            sw.records.keys().collect::<Vec<_>>(),
            ["orders-db.internal.example.com."]
        );
        assert_eq!(sw.ttl, DEFAULT_SWITCH_TTL);
        assert_eq!(DrPlan::from_json(&plan.to_json()).unwrap(), plan);
        let err = DrPlan::from_json(
            r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
                "databases": [{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}],
                "rto": "30m", "rpo": "15m",
                "switch": {"region": "us-east-1", "ttl": 0,
                           "records": {"not a name": "orders", "ledger.example.com.": "ledger"}}}"#,
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "switch.hosted_zone_id",
            "is not a DNS name",
            "ledger\" is not a database",
            "switch.ttl",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
    }

    const PLACED: &str = r#"{
        "name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
        "databases": [
            {"arn": "arn:aws:rds:us-east-1:123456789012:db:orders", "parameter_group": "orders-pg16",
             "option_group": "orders-og"},
            {"arn": "arn:aws:rds:us-east-1:123456789012:cluster:ledger", "instance_class": "db.r6g.large",
             "cluster_parameter_group": "ledger-cpg", "parameter_group": "ledger-pg"}
        ],
        "rto": "30m", "rpo": "15m",
        "prechecks": {"subnet_group": "dr-private"},
        "network": {"security_groups": ["sg-0123456789abcdef0"], "source_subnet_group": "east-private",
                    "source_security_groups": ["sg-11111111"]}
    }"#;

    #[test]
    fn a_plan_that_would_restore_into_the_default_network_is_refused_naming_what_is_missing() {
        let bare = r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
            "databases": [{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}], "rto": "30m", "rpo": "15m"}"#;
        let all = DrPlan::from_json(bare).unwrap_err().problems.join("\n");
        assert!(all.contains("default VPC"), "{all}");
        assert!(
            all.contains("prechecks.subnet_group") && all.contains("network.security_groups"),
            "{all}"
        );
        let no_groups = bare.replace(
            r#""rpo": "15m""#,
            r#""rpo": "15m", "prechecks": {"subnet_group": "dr"}"#,
        );
        let all = DrPlan::from_json(&no_groups).unwrap_err().problems.join("\n");
        assert!(
            all.contains("network.security_groups") && !all.contains("prechecks.subnet_group ("),
            "{all}"
        );
        let bad_sg = bare.replace(
            r#""rpo": "15m""#,
            r#""rpo": "15m", "prechecks": {"subnet_group": "dr"}, "network": {"security_groups": ["default"]}"#,
        );
        let all = DrPlan::from_json(&bad_sg).unwrap_err().problems.join("\n");
        assert!(all.contains("is not a VPC security group id"), "{all}");
        // Said explicitly, it is allowed; a plan of tables only places no database.
        let allowed = bare.replace(
            r#""rpo": "15m""#,
            r#""rpo": "15m", "network": {"allow_default_network": true}"#,
        );
        assert!(DrPlan::from_json(&allowed).unwrap().network.allow_default_network);
        let placed = DrPlan::from_json(PLACED).unwrap();
        assert_eq!(DrPlan::from_json(&placed.to_json()).unwrap(), placed);
        let misplaced = PLACED.replace(
            r#""parameter_group": "orders-pg16""#,
            r#""cluster_parameter_group": "x""#,
        );
        let all = DrPlan::from_json(&misplaced).unwrap_err().problems.join("\n");
        assert!(
            all.contains("databases[0].cluster_parameter_group: only for aurora-cluster"),
            "{all}"
        );
    }

    #[test]
    fn restores_carry_the_plans_placement_or_the_sources_own_in_its_region() {
        let plan = DrPlan::from_json(PLACED).unwrap();
        let (orders, ledger) = (&plan.databases[0], &plan.databases[1]);
        let dr = plan.restore_settings(orders, true, None).unwrap();
        assert_eq!(
            dr,
            RestoreSettings {
                subnet_group: Some("dr-private".into()),
                security_groups: vec!["sg-0123456789abcdef0".into()],
                parameter_group: Some("orders-pg16".into()),
                cluster_parameter_group: None,
                option_group: Some("orders-og".into()),
            }
        );
        let dr = plan.restore_settings(ledger, true, None).unwrap();
        assert_eq!(dr.cluster_parameter_group.as_deref(), Some("ledger-cpg"));
        // In the source region: the plan's source placement wins over the source's.
        let source = DbPlacement {
            subnet_group: Some("east-default-ish".into()),
            security_groups: vec!["sg-22222222".into()],
            parameter_group: Some("source-pg".into()),
            cluster_parameter_group: None,
            option_group: Some("source-og".into()),
        };
        let east = plan.restore_settings(orders, false, Some(&source)).unwrap();
        assert_eq!(east.subnet_group.as_deref(), Some("east-private"));
        assert_eq!(east.security_groups, ["sg-11111111"]);
        assert_eq!(east.parameter_group.as_deref(), Some("orders-pg16"));

        // No source placement in the plan: the source database's own.
        let mut doc = plan.to_document();
        doc.network = Some(NetworkDocument {
            security_groups: vec!["sg-0123456789abcdef0".into()],
            ..NetworkDocument::default()
        });
        doc.databases[0].parameter_group = None;
        doc.databases[0].option_group = None;
        let plan = DrPlan::from_document(&doc).unwrap();
        let east = plan.restore_settings(&plan.databases[0], false, Some(&source)).unwrap();
        assert_eq!(
            east,
            RestoreSettings {
                subnet_group: Some("east-default-ish".into()),
                security_groups: vec!["sg-22222222".into()],
                parameter_group: Some("source-pg".into()),
                cluster_parameter_group: None,
                option_group: Some("source-og".into()),
            }
        );
        // Neither the plan nor a readable source: refused, naming what is missing.
        let err = plan.restore_settings(&plan.databases[0], false, None).unwrap_err();
        assert!(
            err.contains("orders") && err.contains("network.source_subnet_group") && err.contains("security groups"),
            "{err}"
        );
    }
}
