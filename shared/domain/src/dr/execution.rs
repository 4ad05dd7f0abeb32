//! One DR execution (drill, failover or failback): its steps with timings, the source
//! chosen for each database and why, what each step changed and how to undo it, and the
//! measured RTO and RPO against the plan's targets. Pure: no I/O.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Region, ResourceKind};

use super::plan::{DrPlan, GlobalMove, ProtectedDb, ProtectedTable, is_table_name};
use super::table_digest::TableContent;
use crate::ids::is_rds_identifier;

mod names;
mod refusal;
mod report;
mod source;

pub use refusal::Refusal;

pub use names::{
    DB_PREFIXES, TABLE_PREFIXES, final_snapshot_name, is_execution_name, resource_name, short_id, table_name,
    writer_instance_name,
};
pub use source::{Source, SourceFacts, choose_source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Restore into isolated drill-named resources, validate, measure, tear down.
    Drill,
    /// Recover in the DR region and switch the endpoints there (needs a confirmation token).
    Failover,
    /// The reverse of a failover, once the source region is healthy again (token too).
    Failback,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "drill" => Some(Self::Drill),
            "failover" => Some(Self::Failover),
            "failback" => Some(Self::Failback),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drill => "drill",
            Self::Failover => "failover",
            Self::Failback => "failback",
        }
    }

    /// Changes production, so it needs a confirmation token.
    pub fn needs_confirmation(self) -> bool {
        !matches!(self, Self::Drill)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The steps of the state machine, one `action` of `run-dr-step` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Precheck,
    ChooseSource,
    Restore,
    Poll,
    Validate,
    Switch,
    Teardown,
    Finish,
    Compensate,
    /// A failure once the endpoints were switched: nothing is deleted or switched back;
    /// the execution is recorded as needing an operator and one critical alert is raised.
    NeedsOperator,
}

impl Action {
    pub const ALL: [Self; 10] = [
        Self::Precheck,
        Self::ChooseSource,
        Self::Restore,
        Self::Poll,
        Self::Validate,
        Self::Switch,
        Self::Teardown,
        Self::Finish,
        Self::Compensate,
        Self::NeedsOperator,
    ];
    /// The steps a rehearsal may make fail (after they did their work).
    pub const REHEARSABLE: [Self; 7] = [
        Self::ChooseSource,
        Self::Restore,
        Self::Poll,
        Self::Validate,
        Self::Switch,
        Self::Teardown,
        Self::Finish,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Precheck => "precheck",
            Self::ChooseSource => "choose-source",
            Self::Restore => "restore",
            Self::Poll => "poll",
            Self::Validate => "validate",
            Self::Switch => "switch",
            Self::Teardown => "teardown",
            Self::Finish => "finish",
            Self::Compensate => "compensate",
            Self::NeedsOperator => "needs-operator",
        }
    }

    pub fn can_fail_in_rehearsal(self) -> bool {
        Self::REHEARSABLE.contains(&self)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far along a database's recovery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Source not chosen yet.
    New,
    /// Source chosen, nothing started (waits for the earlier steps of the plan).
    Chosen,
    /// Failback: the DR-side snapshot is being taken.
    SnapshotDrSide,
    /// Failback: the DR-side snapshot is being copied to the source region.
    CopyToSource,
    /// The restore, promotion or global failover is under way.
    Recovering,
    /// The recovered database is available.
    Ready,
}

/// One S3 data set of the execution: the backup run it relies on and what validation
/// found when it read the run's objects back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRun {
    pub bucket: String,
    pub prefix: String,
    /// The backup run (recovery point id) and when it was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_bucket: Option<String>,
    /// Objects in the run, and those read back and hashed.
    #[serde(default)]
    pub objects: u64,
    #[serde(default)]
    pub objects_checked: u64,
    #[serde(default)]
    pub bytes_checked: u64,
    /// `key: problem` for every object that did not match its manifest.
    #[serde(default)]
    pub problems: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated_at: Option<DateTime<Utc>>,
}

/// One DynamoDB table of the execution: the backup restored and why, the restored table,
/// and what validation found in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRun {
    pub table: ProtectedTable,
    pub phase: Phase,
    /// The catalog's recovery point, the backup's ARN and when it was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reason: String,
    /// The table's copy in the DR region (an export) it is imported from, and the import:
    /// how a failover brings a table back without its own region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_arn: Option<String>,
    /// Where the table comes back (the DR region from a copy, else the backup's region)
    /// and its name.
    pub target_region: Region,
    pub target_name: String,
    /// The item count DynamoDB recorded for the source table in the backup's description
    /// (approximate on AWS: DynamoDB refreshes a table's item count about every 6 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_item_count: Option<u64>,
    /// What the scan of the restored table found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<TableContent>,
    /// What the backup's first validated restore found, if an earlier one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<TableContent>,
    /// `passed` or `failed: …`, with the notes of the validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated_at: Option<DateTime<Utc>>,
}

/// One database of the execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbRun {
    pub db: ProtectedDb,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default)]
    pub reason: String,
    /// Where the recovered database lives and its identifier.
    pub target_region: Region,
    pub target_id: String,
    /// Engine and class of the source, what validation expects of the recovered database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Aurora, restored from a snapshot: the writer instance created in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
    /// Failover: the recovery point taken of the source before failing over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_failover_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
}

/// How to undo one change. Recorded *before* the change is made, so a crash right after it
/// still leaves the way to undo it; undoing something that does not exist is a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Undo {
    DeleteInstance {
        region: Region,
        id: String,
    },
    DeleteCluster {
        region: Region,
        id: String,
    },
    DeleteSnapshot {
        region: Region,
        kind: ResourceKind,
        name: String,
    },
    /// A table restored or imported by the execution: deleted only if its name has a
    /// Lifeboat prefix and (when `backup_arn` is known) DynamoDB says it was restored from
    /// that backup, or made by that import (an import ARN).
    DeleteTable {
        region: Region,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup_arn: Option<String>,
    },
    /// Put the parameter back as it was (`None`: it did not exist).
    RestoreParameter {
        region: Region,
        name: String,
        previous: Option<String>,
    },
    /// Put the DNS record back as it was (`None`: it did not exist); `ttl` is the one the
    /// switch set.
    RestoreRecord {
        zone: String,
        name: String,
        previous: Option<String>,
        ttl: i64,
    },
}

impl Undo {
    pub fn describe(&self) -> String {
        match self {
            Self::DeleteInstance { region, id } => format!("delete DB instance {id} in {region}"),
            Self::DeleteCluster { region, id } => format!("delete DB cluster {id} in {region}"),
            Self::DeleteSnapshot { region, name, .. } => format!("delete snapshot {name} in {region}"),
            Self::DeleteTable { region, name, .. } => format!("delete DynamoDB table {name} in {region}"),
            Self::RestoreParameter { region, name, previous } => match previous {
                Some(_) => format!("restore parameter {name} in {region} to its previous value"),
                None => format!("delete parameter {name} in {region}"),
            },
            Self::RestoreRecord {
                zone, name, previous, ..
            } => match previous {
                Some(v) => format!("point DNS record {name} (zone {zone}) back to {v}"),
                None => format!("delete DNS record {name} (zone {zone})"),
            },
        }
    }

    /// Removes a resource the execution created (as opposed to restoring a setting).
    pub fn removes_resource(&self) -> bool {
        !matches!(self, Self::RestoreParameter { .. } | Self::RestoreRecord { .. })
    }
}

/// A final snapshot a delete of a database asked RDS for (kept; not part of any
/// retention schedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalSnapshot {
    pub region: Region,
    pub kind: ResourceKind,
    /// The database deleted.
    pub database: String,
    pub snapshot: String,
    /// Seen by a describe after the database was gone.
    #[serde(default)]
    pub confirmed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compensation {
    /// The step that made the change.
    pub step: Action,
    pub undo: Undo,
    /// Undone already (by teardown or compensation).
    #[serde(default)]
    pub done: bool,
}

/// One step's timing. A step run several times (poll, retries) keeps its first start, its
/// last end and the count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub action: Action,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    pub runs: u32,
    /// Time spent inside the function, summed over the runs (milliseconds).
    pub busy_ms: u64,
    #[serde(default)]
    pub outcome: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecStatus {
    Running,
    /// Refused at its pre-check, before anything was changed; [`DrExecution::refusal`]
    /// says why.
    Refused,
    Succeeded,
    /// Failed; the compensations ran.
    Failed,
    /// Failed after the endpoints were switched to the recovered databases: they may have
    /// taken writes, so nothing was deleted or switched back. An operator finishes (or
    /// reverses) the execution by hand; [`OperatorHandoff`] says what was done and what
    /// remains.
    NeedsOperator,
}

/// What an operator needs when an execution stops after its endpoint switch began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorHandoff {
    /// The step that failed and its error.
    pub reason: String,
    /// What the execution did, one line each (steps completed, endpoints switched,
    /// databases left running).
    pub done: Vec<String>,
    /// What is left for the operator, one line each.
    pub remaining: Vec<String>,
    pub at: DateTime<Utc>,
}

/// A failback's cost: the writes it lost and the time production could not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackWindow {
    /// Writes to the DR side stopped (the quiesce), and when they are taken to have
    /// stopped (after the settle time); `None`: not quiesced.
    pub quiesced_at: Option<DateTime<Utc>>,
    pub writes_stopped_at: Option<DateTime<Utc>>,
    /// The earliest start of the DR-side snapshots copied back.
    pub snapshot_at: Option<DateTime<Utc>>,
    /// The endpoints pointed at the source side again (the switch step's end).
    pub endpoints_back_at: Option<DateTime<Utc>>,
    /// Writes the DR side took after its snapshot began and before writes stopped (or,
    /// without a quiesce, before the switch): lost by the failback. Zero when quiesced.
    pub data_loss_window_secs: Option<u64>,
    /// From the quiesce until the endpoints pointed at the source side: production could
    /// not write. Zero without a quiesce (writes went on, and were lost instead).
    pub outage_secs: Option<u64>,
}

/// RTO and RPO as measured, against the plan's targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// Trigger → validated.
    pub rto_secs: Option<u64>,
    pub rto_target_secs: u64,
    pub rto_met: Option<bool>,
    /// Failure (or drill) time − the oldest data instant among the recovered databases.
    pub rpo_secs: Option<u64>,
    pub rpo_target_secs: u64,
    pub rpo_met: Option<bool>,
}

impl Measurement {
    pub fn breaches(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.rto_met == Some(false) {
            out.push(format!(
                "RTO {}s > target {}s",
                self.rto_secs.unwrap_or(0),
                self.rto_target_secs
            ));
        }
        if self.rpo_met == Some(false) {
            out.push(format!(
                "RPO {}s > target {}s",
                self.rpo_secs.unwrap_or(0),
                self.rpo_target_secs
            ));
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrExecution {
    pub plan: String,
    pub execution: String,
    pub mode: Mode,
    pub status: ExecStatus,
    /// When the execution was triggered (its pre-check ran).
    pub triggered_at: DateTime<Utc>,
    /// The failure time (failover) or the drill time: what the RPO is measured from.
    pub reference_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated_at: Option<DateTime<Utc>>,
    /// When the switch step began changing endpoints (recorded before the first change).
    /// From then on the recovered databases may take writes: no failure deletes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<DateTime<Utc>>,
    /// Failback: when the quiesce stopped the writes to the DR side, and when they are
    /// taken to have stopped (after the plan's settle time): the DR-side snapshot starts
    /// no earlier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiesced_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_stopped_at: Option<DateTime<Utc>>,
    /// The endpoints (parameter names, DNS records) the switch changed and read back,
    /// as `name → value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub switched: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Set when the execution stopped after its switch began ([`ExecStatus::NeedsOperator`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_operator: Option<OperatorHandoff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The second person who approved it, when its plan requires approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// The confirmation token's nonce (failover, failback): single use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_nonce: Option<String>,
    pub steps: Vec<StepRecord>,
    pub databases: Vec<DbRun>,
    /// The plan's S3 data sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataRun>,
    /// The plan's DynamoDB tables (drills and failovers; a failback restores none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableRun>,
    pub compensations: Vec<Compensation>,
    /// The final snapshots of the databases this execution deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub final_snapshots: Vec<FinalSnapshot>,
    /// Pre-check and validation results, one line each.
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<Measurement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the pre-check refused the execution ([`ExecStatus::Refused`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_key: Option<String>,
    pub version: u64,
}

impl DrExecution {
    /// A new record: every database planned with its deterministic target name.
    pub fn new(plan: &DrPlan, execution: &str, mode: Mode, now: DateTime<Utc>, reference_time: DateTime<Utc>) -> Self {
        let databases = plan
            .databases
            .iter()
            .map(|db| {
                let (region, id) = match mode {
                    Mode::Drill => (plan.dr_region.clone(), resource_name("lbdr", execution, &db.id)),
                    Mode::Failover => (plan.dr_region.clone(), resource_name("lbfo", execution, &db.id)),
                    Mode::Failback => (plan.source_region.clone(), resource_name("lbfb", execution, &db.id)),
                };
                DbRun {
                    db: db.clone(),
                    phase: Phase::New,
                    source: None,
                    reason: String::new(),
                    target_region: region,
                    target_id: id,
                    expect_engine: None,
                    expect_class: None,
                    endpoint: None,
                    writer: None,
                    pre_failover_snapshot: None,
                    ready_at: None,
                }
            })
            .collect();
        Self {
            plan: plan.name.clone(),
            execution: execution.to_owned(),
            mode,
            status: ExecStatus::Running,
            triggered_at: now,
            reference_time,
            validated_at: None,
            quiesced_at: None,
            writes_stopped_at: None,
            switched_at: None,
            switched: Vec::new(),
            finished_at: None,
            needs_operator: None,
            principal: None,
            approved_by: None,
            token_nonce: None,
            steps: Vec::new(),
            databases,
            data: plan
                .data
                .iter()
                .map(|d| DataRun {
                    bucket: d.bucket.clone(),
                    prefix: d.prefix.clone(),
                    ..DataRun::default()
                })
                .collect(),
            tables: plan
                .tables
                .iter()
                .filter_map(|t| {
                    let prefix = match mode {
                        Mode::Drill => "lbdr",
                        Mode::Failover => "lbfo",
                        Mode::Failback => return None,
                    };
                    Some(TableRun {
                        table: t.clone(),
                        phase: Phase::New,
                        recovery_point: None,
                        backup_arn: None,
                        backup_at: None,
                        copy: None,
                        import_arn: None,
                        reason: String::new(),
                        target_region: t.region.clone(),
                        target_name: table_name(prefix, execution, &t.name),
                        backup_item_count: None,
                        content: None,
                        expected: None,
                        verdict: None,
                        ready_at: None,
                        validated_at: None,
                    })
                })
                .collect(),
            compensations: Vec::new(),
            final_snapshots: Vec::new(),
            checks: Vec::new(),
            measurement: None,
            error: None,
            refusal: None,
            report_key: None,
            version: 1,
        }
    }

    /// Records the start of a run of `action`.
    pub fn begin(&mut self, action: Action, now: DateTime<Utc>) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.action == action) {
            s.runs += 1;
        } else {
            self.steps.push(StepRecord {
                action,
                started_at: now,
                ended_at: None,
                runs: 1,
                busy_ms: 0,
                outcome: String::new(),
            });
        }
    }

    /// Records the end of the current run of `action`.
    pub fn end(&mut self, action: Action, started: DateTime<Utc>, now: DateTime<Utc>, outcome: impl Into<String>) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.action == action) {
            s.ended_at = Some(now);
            s.busy_ms += u64::try_from((now - started).num_milliseconds()).unwrap_or(0);
            s.outcome = outcome.into();
        }
    }

    /// Registers how to undo a change about to be made, once.
    pub fn will_undo(&mut self, step: Action, undo: Undo) {
        if !self.compensations.iter().any(|c| c.undo == undo) {
            self.compensations.push(Compensation {
                step,
                undo,
                done: false,
            });
        }
    }

    /// The switch began changing endpoints: the recovered databases may have taken writes,
    /// so a failure from here on is handed to an operator and never compensated by
    /// deleting them or pointing the endpoints back.
    pub fn endpoints_switched(&self) -> bool {
        self.switched_at.is_some() || !self.switched.is_empty()
    }

    /// The step number whose databases may start: the lowest with a database not ready.
    pub fn current_step(&self) -> Option<u32> {
        self.databases
            .iter()
            .filter(|d| d.phase != Phase::Ready)
            .map(|d| d.db.step)
            .min()
    }

    pub fn all_ready(&self) -> bool {
        self.databases.iter().all(|d| d.phase == Phase::Ready) && self.tables.iter().all(|t| t.phase == Phase::Ready)
    }
}

#[cfg(test)]
mod tests;
