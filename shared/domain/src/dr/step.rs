//! The phase machine of a DR execution's restore and poll steps: given the execution and
//! its plan, what comes next for each table and each database, and the phase a move leads
//! to once it is made. Pure: `run-dr-step` makes the moves against the ports and records
//! what they did.
//!
//! A table moves `Chosen → Recovering → Ready` on its own. A database moves with the
//! databases of its plan step (the lowest step with a database not ready):
//! `Chosen → Recovering → Ready`, or for a failback `Chosen → SnapshotDrSide →
//! CopyToSource → Recovering → Ready`, whose first move waits until the writes to the DR
//! side have stopped.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ResourceKind;

use super::execution::{Action, DbRun, DrExecution, Mode, Phase, Source, TableRun};
use super::plan::{DrPlan, GlobalMove};

/// How many times one run of the step looks at the databases again: a database that became
/// ready may let the plan's next step start in the same run.
pub const ROUNDS: usize = 4;

/// What the restore or poll step does first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A poll after the plan's restore deadline (counted from the trigger): the step fails.
    Overdue { deadline: Duration },
    /// Move every table along, then, when `quiesce`, stop the writes to the DR side (a
    /// failback about to snapshot it), then the databases of the current plan step
    /// ([`DrExecution::current_databases`], [`DrExecution::database_move`]).
    Moves {
        tables: Vec<(usize, TableMove)>,
        quiesce: bool,
    },
}

/// The next move of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableMove {
    /// Import the table's copy (an export) into its target; `started` when an earlier run
    /// of the step recorded the import already.
    Import { copy: String, started: bool },
    /// Restore the chosen native backup into the target.
    Restore { backup: String },
    /// Wait for the table to be active (after the import named by `import`, if any).
    Await { import: Option<String> },
    /// The record cannot move on: the step fails with this reason.
    Fail(String),
}

impl TableMove {
    /// The table's phase once the move is made (a wait: once it is over).
    pub fn phase_after(&self) -> Option<Phase> {
        match self {
            Self::Import { .. } | Self::Restore { .. } => Some(Phase::Recovering),
            Self::Await { .. } => Some(Phase::Ready),
            Self::Fail(_) => None,
        }
    }
}

/// The next move of one database of the current plan step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbMove {
    /// Point-in-time restore of the source into the target.
    RestoreToTime { restore_time: DateTime<Utc> },
    /// Restore the verified copy in the DR region into the target.
    RestoreSnapshot { snapshot: String },
    /// Promote the cross-region read replica (cannot be undone).
    PromoteReplica { replica: String },
    /// Fail the global database over, or switch it over, to the target (cannot be undone).
    MoveGlobal { global_cluster: String, method: GlobalMove },
    /// Failback: the writes to the DR side settle until `until`; nothing moves yet.
    WaitForWrites { until: DateTime<Utc> },
    /// Failback: snapshot the DR-side database.
    SnapshotDrSide { resource: String, snapshot: String },
    /// Failback: once the DR-side snapshot is available, copy it to the source region.
    CopyToSource { resource: String, snapshot: String },
    /// Failback: once the copy is available, restore it into the target.
    RestoreCopy { snapshot: String },
    /// Wait for the target to be available; `writer` when it is an Aurora cluster restored
    /// from a snapshot, which has no instance until its writer is created.
    AwaitAvailable { writer: bool },
    /// The record cannot move on: the step fails with this reason.
    Fail(String),
}

impl DbMove {
    /// The database's phase once the move is made (a wait: once it is over).
    pub fn phase_after(&self) -> Option<Phase> {
        match self {
            Self::RestoreToTime { .. }
            | Self::RestoreSnapshot { .. }
            | Self::PromoteReplica { .. }
            | Self::MoveGlobal { .. }
            | Self::RestoreCopy { .. } => Some(Phase::Recovering),
            Self::SnapshotDrSide { .. } => Some(Phase::SnapshotDrSide),
            Self::CopyToSource { .. } => Some(Phase::CopyToSource),
            Self::AwaitAvailable { .. } => Some(Phase::Ready),
            Self::WaitForWrites { .. } | Self::Fail(_) => None,
        }
    }
}

impl TableRun {
    /// The table's next move; `None` when it has none (not chosen yet, or ready).
    pub fn next_move(&self) -> Option<TableMove> {
        match self.phase {
            Phase::Chosen => Some(match (&self.copy, &self.backup_arn) {
                (Some(copy), _) => TableMove::Import {
                    copy: copy.clone(),
                    started: self.import_arn.is_some(),
                },
                (None, Some(backup)) => TableMove::Restore { backup: backup.clone() },
                (None, None) => TableMove::Fail(format!("table {}: no backup chosen", self.table.name)),
            }),
            Phase::Recovering => Some(TableMove::Await {
                import: self.import_arn.clone(),
            }),
            Phase::New | Phase::SnapshotDrSide | Phase::CopyToSource | Phase::Ready => None,
        }
    }
}

impl DbRun {
    /// The database's next move, `writes_stopped_at` being when the writes to the DR side
    /// are taken to have stopped (a failback) and `now` the time; `None` when it has none.
    pub fn next_move(&self, writes_stopped_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DbMove> {
        let Some(source) = &self.source else {
            return Some(DbMove::Fail(format!("{}: no source chosen", self.db.id)));
        };
        Some(match (self.phase, source) {
            (Phase::Chosen, Source::PointInTime { restore_time }) => DbMove::RestoreToTime {
                restore_time: *restore_time,
            },
            (Phase::Chosen, Source::DrSnapshot { snapshot, .. }) => DbMove::RestoreSnapshot {
                snapshot: snapshot.clone(),
            },
            (Phase::Chosen, Source::PromoteReplica { replica, .. }) => DbMove::PromoteReplica {
                replica: replica.clone(),
            },
            (
                Phase::Chosen,
                Source::GlobalCluster {
                    global_cluster, method, ..
                },
            ) => DbMove::MoveGlobal {
                global_cluster: global_cluster.clone(),
                method: *method,
            },
            // Not before the writes have stopped: the snapshot must hold the last one.
            (Phase::Chosen, Source::DrSide { resource, snapshot, .. }) => match writes_stopped_at {
                None => DbMove::Fail("failback: the DR side was not quiesced".into()),
                Some(until) if now < until => DbMove::WaitForWrites { until },
                Some(_) => DbMove::SnapshotDrSide {
                    resource: resource.clone(),
                    snapshot: snapshot.clone(),
                },
            },
            (Phase::SnapshotDrSide, Source::DrSide { resource, snapshot, .. }) => DbMove::CopyToSource {
                resource: resource.clone(),
                snapshot: snapshot.clone(),
            },
            (Phase::CopyToSource, Source::DrSide { snapshot, .. }) => DbMove::RestoreCopy {
                snapshot: snapshot.clone(),
            },
            (Phase::Recovering, source) => DbMove::AwaitAvailable {
                writer: self.db.kind == ResourceKind::AuroraCluster
                    && matches!(source, Source::DrSnapshot { .. } | Source::DrSide { .. }),
            },
            _ => return None,
        })
    }
}

impl DrExecution {
    /// What the restore or poll step (`action`) does first, at `now`.
    pub fn next(&self, plan: &DrPlan, action: Action, now: DateTime<Utc>) -> Next {
        if action == Action::Poll && (now - self.triggered_at).to_std().unwrap_or_default() > plan.restore_deadline {
            return Next::Overdue {
                deadline: plan.restore_deadline,
            };
        }
        let tables = self
            .tables
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.next_move().map(|m| (i, m)))
            .collect();
        // A failback stops the writes to the DR side before any snapshot of it is taken.
        let snapshot_pending = self
            .databases
            .iter()
            .any(|d| d.phase == Phase::Chosen && matches!(d.source, Some(Source::DrSide { .. })));
        Next::Moves {
            tables,
            quiesce: self.mode == Mode::Failback && snapshot_pending && self.quiesced_at.is_none(),
        }
    }

    /// The databases (indices) of the current plan step ([`Self::current_step`]), in order.
    pub fn current_databases(&self) -> Vec<usize> {
        let Some(current) = self.current_step() else {
            return Vec::new();
        };
        self.databases
            .iter()
            .enumerate()
            .filter(|(_, d)| d.db.step == current)
            .map(|(i, _)| i)
            .collect()
    }

    /// The next move of database `i` at `now` ([`DbRun::next_move`]).
    pub fn database_move(&self, i: usize, now: DateTime<Utc>) -> Option<DbMove> {
        self.databases.get(i)?.next_move(self.writes_stopped_at, now)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn plan(databases: &str, tables: &str) -> DrPlan {
        DrPlan::from_json(&format!(
            r#"{{"name":"p","source_region":"us-east-1","dr_region":"us-west-2","rto":"30m","rpo":"15m",
                "restore_deadline":"20m","network":{{"allow_default_network":true}},
                "databases":[{databases}],"tables":[{tables}]}}"#
        ))
        .unwrap()
    }

    const ORDERS: &str = r#"{"arn":"arn:aws:rds:us-east-1:123456789012:db:orders"}"#;
    const LEDGER: &str = r#"{"arn":"arn:aws:rds:us-east-1:123456789012:cluster:ledger","step":2}"#;
    const TABLE: &str = r#"{"arn":"arn:aws:dynamodb:us-east-1:123456789012:table/carts"}"#;

    fn snapshot(name: &str) -> Source {
        Source::DrSnapshot {
            recovery_point: format!("us-west-2/{name}"),
            snapshot: name.into(),
            taken_at: t("2026-11-23T02:50:00Z"),
        }
    }

    fn dr_side() -> Source {
        Source::DrSide {
            resource: "lbfo-orders".into(),
            snapshot: "lbfbs-orders".into(),
            taken_at: None,
        }
    }

    #[test]
    fn a_poll_after_the_restore_deadline_is_overdue_and_a_restore_never_is() {
        let p = plan(ORDERS, "");
        let start = t("2026-11-23T03:00:00Z");
        let exec = DrExecution::new(&p, "e1", Mode::Drill, start, start);
        let late = start + chrono::Duration::minutes(21);
        assert_eq!(
            exec.next(&p, Action::Poll, late),
            Next::Overdue {
                deadline: Duration::from_mins(20)
            }
        );
        assert!(matches!(exec.next(&p, Action::Restore, late), Next::Moves { .. }));
        assert!(matches!(
            exec.next(&p, Action::Poll, start + chrono::Duration::minutes(20)),
            Next::Moves { .. }
        ));
    }

    #[test]
    fn a_table_is_imported_from_its_copy_or_restored_from_its_backup_then_awaited() {
        let p = plan("", TABLE);
        let now = t("2026-11-23T03:00:00Z");
        let mut exec = DrExecution::new(&p, "e1", Mode::Drill, now, now);
        let moves = |e: &DrExecution| match e.next(&p, Action::Restore, now) {
            Next::Moves { tables, quiesce } => {
                assert!(!quiesce);
                tables
            }
            Next::Overdue { .. } => panic!("overdue"),
        };
        // Not chosen yet: nothing to do.
        assert_eq!(moves(&exec), Vec::new());
        exec.tables[0].phase = Phase::Chosen;
        assert_eq!(
            moves(&exec),
            vec![(0, TableMove::Fail("table carts: no backup chosen".into()))]
        );
        exec.tables[0].backup_arn = Some("arn:backup".into());
        let restore = TableMove::Restore {
            backup: "arn:backup".into(),
        };
        assert_eq!(moves(&exec), vec![(0, restore.clone())]);
        assert_eq!(restore.phase_after(), Some(Phase::Recovering));
        // A copy in the DR region wins over the backup.
        exec.tables[0].copy = Some("lb-gold-carts".into());
        let import = TableMove::Import {
            copy: "lb-gold-carts".into(),
            started: false,
        };
        assert_eq!(moves(&exec), vec![(0, import.clone())]);
        assert_eq!(import.phase_after(), Some(Phase::Recovering));
        exec.tables[0].import_arn = Some("arn:import".into());
        assert_eq!(
            moves(&exec),
            vec![(
                0,
                TableMove::Import {
                    copy: "lb-gold-carts".into(),
                    started: true
                }
            )]
        );
        exec.tables[0].phase = Phase::Recovering;
        let wait = TableMove::Await {
            import: Some("arn:import".into()),
        };
        assert_eq!(moves(&exec), vec![(0, wait.clone())]);
        assert_eq!(wait.phase_after(), Some(Phase::Ready));
        exec.tables[0].phase = Phase::Ready;
        assert_eq!(moves(&exec), Vec::new());
    }

    #[test]
    fn databases_move_by_their_source_one_plan_step_at_a_time() {
        let p = plan(&format!("{ORDERS},{LEDGER}"), "");
        let now = t("2026-11-23T03:00:00Z");
        let mut exec = DrExecution::new(&p, "e1", Mode::Drill, now, now);
        assert_eq!(exec.current_databases(), vec![0]);
        // Nothing chosen for the current step: the record is broken.
        assert_eq!(
            exec.database_move(0, now),
            Some(DbMove::Fail("orders: no source chosen".into()))
        );
        exec.databases[0].phase = Phase::Chosen;
        exec.databases[0].source = Some(Source::PointInTime { restore_time: now });
        let pitr = exec.database_move(0, now).unwrap();
        assert_eq!(pitr, DbMove::RestoreToTime { restore_time: now });
        assert_eq!(pitr.phase_after(), Some(Phase::Recovering));
        exec.databases[0].source = Some(snapshot("lb-orders"));
        assert_eq!(
            exec.database_move(0, now),
            Some(DbMove::RestoreSnapshot {
                snapshot: "lb-orders".into()
            })
        );
        exec.databases[0].phase = Phase::Recovering;
        let wait = exec.database_move(0, now).unwrap();
        // An instance needs no writer.
        assert_eq!(wait, DbMove::AwaitAvailable { writer: false });
        assert_eq!(wait.phase_after(), Some(Phase::Ready));
        // Step 2 starts once step 1 is ready.
        exec.databases[0].phase = Phase::Ready;
        assert_eq!(exec.database_move(0, now), None);
        assert_eq!(exec.current_databases(), vec![1]);
        exec.databases[1].phase = Phase::Recovering;
        exec.databases[1].source = Some(snapshot("lb-ledger"));
        // An Aurora cluster restored from a snapshot gets its writer.
        assert_eq!(
            exec.database_move(1, now),
            Some(DbMove::AwaitAvailable { writer: true })
        );
        exec.databases[1].phase = Phase::Ready;
        assert_eq!(exec.current_databases(), Vec::<usize>::new());
        assert_eq!(exec.database_move(7, now), None);
    }

    #[test]
    fn a_promoted_replica_and_a_moved_global_database_need_no_writer() {
        let p = plan(r#"{"arn":"arn:aws:rds:us-east-1:123456789012:cluster:ledger"}"#, "");
        let now = t("2026-11-23T03:00:00Z");
        let mut exec = DrExecution::new(&p, "e1", Mode::Failover, now, now);
        exec.databases[0].phase = Phase::Chosen;
        exec.databases[0].source = Some(Source::GlobalCluster {
            global_cluster: "ledger-global".into(),
            as_of: now,
            method: GlobalMove::Planned,
        });
        let moved = exec.database_move(0, now).unwrap();
        assert_eq!(
            moved,
            DbMove::MoveGlobal {
                global_cluster: "ledger-global".into(),
                method: GlobalMove::Planned
            }
        );
        assert_eq!(moved.phase_after(), Some(Phase::Recovering));
        exec.databases[0].phase = Phase::Recovering;
        assert_eq!(
            exec.database_move(0, now),
            Some(DbMove::AwaitAvailable { writer: false })
        );
        exec.databases[0].phase = Phase::Chosen;
        exec.databases[0].source = Some(Source::PromoteReplica {
            replica: "ledger-west".into(),
            as_of: now,
        });
        assert_eq!(
            exec.database_move(0, now),
            Some(DbMove::PromoteReplica {
                replica: "ledger-west".into()
            })
        );
        exec.databases[0].phase = Phase::Recovering;
        assert_eq!(
            exec.database_move(0, now),
            Some(DbMove::AwaitAvailable { writer: false })
        );
    }

    #[test]
    fn a_failback_quiesces_then_waits_for_the_writes_then_snapshots_copies_and_restores() {
        let p = plan(ORDERS, "");
        let now = t("2026-11-23T03:00:00Z");
        let mut exec = DrExecution::new(&p, "e1", Mode::Failback, now, now);
        exec.databases[0].phase = Phase::Chosen;
        exec.databases[0].source = Some(dr_side());
        assert_eq!(
            exec.next(&p, Action::Restore, now),
            Next::Moves {
                tables: Vec::new(),
                quiesce: true
            }
        );
        // Not quiesced: the snapshot would miss writes.
        assert_eq!(
            exec.database_move(0, now),
            Some(DbMove::Fail("failback: the DR side was not quiesced".into()))
        );
        let settled = now + chrono::Duration::seconds(30);
        exec.quiesced_at = Some(now);
        exec.writes_stopped_at = Some(settled);
        assert_eq!(
            exec.next(&p, Action::Poll, now),
            Next::Moves {
                tables: Vec::new(),
                quiesce: false
            }
        );
        let wait = exec.database_move(0, now).unwrap();
        assert_eq!(wait, DbMove::WaitForWrites { until: settled });
        assert_eq!(wait.phase_after(), None);
        let snap = exec.database_move(0, settled).unwrap();
        assert_eq!(
            snap,
            DbMove::SnapshotDrSide {
                resource: "lbfo-orders".into(),
                snapshot: "lbfbs-orders".into()
            }
        );
        assert_eq!(snap.phase_after(), Some(Phase::SnapshotDrSide));
        exec.databases[0].phase = Phase::SnapshotDrSide;
        let copy = exec.database_move(0, settled).unwrap();
        assert_eq!(
            copy,
            DbMove::CopyToSource {
                resource: "lbfo-orders".into(),
                snapshot: "lbfbs-orders".into()
            }
        );
        assert_eq!(copy.phase_after(), Some(Phase::CopyToSource));
        exec.databases[0].phase = Phase::CopyToSource;
        let restore = exec.database_move(0, settled).unwrap();
        assert_eq!(
            restore,
            DbMove::RestoreCopy {
                snapshot: "lbfbs-orders".into()
            }
        );
        assert_eq!(restore.phase_after(), Some(Phase::Recovering));
    }

    #[test]
    fn only_a_failback_with_a_dr_side_snapshot_pending_quiesces() {
        let p = plan(ORDERS, "");
        let now = t("2026-11-23T03:00:00Z");
        for mode in [Mode::Drill, Mode::Failover] {
            let mut exec = DrExecution::new(&p, "e1", mode, now, now);
            exec.databases[0].phase = Phase::Chosen;
            exec.databases[0].source = Some(dr_side());
            assert!(matches!(
                exec.next(&p, Action::Restore, now),
                Next::Moves { quiesce: false, .. }
            ));
        }
        // Already snapshotting: quiesced before.
        let mut exec = DrExecution::new(&p, "e1", Mode::Failback, now, now);
        exec.databases[0].phase = Phase::SnapshotDrSide;
        exec.databases[0].source = Some(dr_side());
        assert!(matches!(
            exec.next(&p, Action::Poll, now),
            Next::Moves { quiesce: false, .. }
        ));
    }
}
