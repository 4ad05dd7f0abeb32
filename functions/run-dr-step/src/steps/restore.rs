//! Restore and poll: starting what can start and moving every database along (the tables
//! in [`super::restore_tables`]).

use chrono::{DateTime, Utc};
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::dr::execution::{DbRun, writer_instance_name};
use lifeboat_domain::dr::plan::{GlobalMove, RestoreSettings};
use lifeboat_domain::dr::step::{DbMove, Next, ROUNDS};
use lifeboat_domain::dr::{Action, DrExecution, DrPlan, Source, Undo};
use lifeboat_domain::{ResourceKind, ResourceRef};
use lifeboat_ports::dr::{RestoreRequest, WriterRequest};
use lifeboat_ports::{PortError, PortResult, SnapshotStatus, Tag};

use super::restore_tables::advance_tables;
use super::switch::quiesce;
use super::{StepResult, internal, lifeboat_tags, save};
use crate::Deps;

fn restore_request<'a>(d: &'a DbRun, settings: &'a RestoreSettings, tags: &'a [Tag]) -> RestoreRequest<'a> {
    RestoreRequest {
        region: &d.target_region,
        kind: d.db.kind,
        target: &d.target_id,
        class: if d.db.kind == ResourceKind::RdsInstance {
            d.expect_class.as_deref()
        } else {
            None
        },
        settings,
        tags,
    }
}

/// What the restore of `d` carries: the plan's placement and groups, or, for a restore in
/// the source region, the source database's own as RDS describes it now. Refused (Invalid)
/// when it would land in the default VPC or security group and the plan does not allow it.
async fn restore_settings(deps: &Deps, plan: &DrPlan, d: &DbRun) -> Result<RestoreSettings, FunctionError> {
    let in_dr_region = d.target_region == plan.dr_region;
    let source = if in_dr_region {
        None
    } else {
        deps.databases
            .describe(&plan.source_region, d.db.kind, &d.db.id)
            .await?
            .map(|i| i.placement)
    };
    plan.restore_settings(&d.db, in_dr_region, source.as_ref())
        .map_err(|e| FunctionError::new(ErrorType::Invalid, e))
}

/// An Aurora cluster restored from a snapshot has no instance: its writer is created (the
/// class from the plan, else the source's writer's) and waited for. Answers whether the
/// writer is available.
async fn writer_ready(
    deps: &Deps,
    plan: &DrPlan,
    exec: &mut DrExecution,
    i: usize,
    action: Action,
    cluster: &lifeboat_ports::dr::DbInfo,
    notes: &mut Vec<String>,
) -> Result<bool, FunctionError> {
    let d = exec.databases[i].clone();
    let writer = writer_instance_name(&d.target_id);
    match deps
        .databases
        .describe(&d.target_region, ResourceKind::RdsInstance, &writer)
        .await?
    {
        Some(w) if w.is_available() => {
            exec.databases[i].writer = Some(writer);
            Ok(true)
        }
        Some(w) if w.status.contains("fail") || w.status.starts_with("incompatible") => {
            Err(internal(format!("writer {writer} ended in status {}", w.status)))
        }
        Some(_) => Ok(false),
        None => {
            let class = d.expect_class.clone().ok_or_else(|| {
                FunctionError::new(
                    ErrorType::Invalid,
                    format!(
                        "{}: no instance class for the writer of {} (the source's writer could not be read); set instance_class in the plan",
                        d.db.id, d.target_id
                    ),
                )
            })?;
            let engine = cluster
                .engine
                .clone()
                .ok_or_else(|| internal(format!("{} reports no engine", d.target_id)))?;
            let settings = restore_settings(deps, plan, &d).await?;
            let tags = lifeboat_tags(exec);
            exec.will_undo(
                action,
                Undo::DeleteInstance {
                    region: d.target_region.clone(),
                    id: writer.clone(),
                },
            );
            save(deps, exec).await?;
            deps.databases
                .create_cluster_instance(&WriterRequest {
                    region: &d.target_region,
                    cluster: &d.target_id,
                    instance: &writer,
                    class: &class,
                    engine: &engine,
                    parameter_group: settings.parameter_group.as_deref(),
                    tags: &tags,
                })
                .await?;
            exec.databases[i].writer = Some(writer.clone());
            notes.push(format!(
                "{}: writer {writer} ({class}) of {} started",
                d.db.id, d.target_id
            ));
            Ok(false)
        }
    }
}

fn delete_undo(d: &DbRun) -> Undo {
    match d.db.kind {
        // Plans name databases only (checked when a plan is parsed); the adapter refuses
        // anything else, so an S3 kind could never delete a database.
        ResourceKind::RdsInstance
        | ResourceKind::S3Prefix
        | ResourceKind::DynamoDbTable
        | ResourceKind::ConfigBundle => Undo::DeleteInstance {
            region: d.target_region.clone(),
            id: d.target_id.clone(),
        },
        ResourceKind::AuroraCluster => Undo::DeleteCluster {
            region: d.target_region.clone(),
            id: d.target_id.clone(),
        },
    }
}

/// Check before create: a retried step finds the database its earlier run started.
/// Whether the restore's target exists already as this execution's: a retried step finds
/// the database its earlier run started (it carries the execution's Lifeboat tags). A
/// database of that name that is not this execution's is never used, nor later deleted:
/// `Conflict`, left alone. One still being deleted keeps its name for minutes, as on AWS:
/// the step waits (`InvalidState`).
async fn exists(deps: &Deps, d: &DbRun, tags: &[Tag]) -> PortResult<bool> {
    let Some(db) = deps
        .databases
        .describe(&d.target_region, d.db.kind, &d.target_id)
        .await?
    else {
        return Ok(false);
    };
    let ours = tags
        .iter()
        .filter(|t| t.key.starts_with("lifeboat:"))
        .all(|t| db.tags.contains(t));
    if !ours {
        return Err(PortError::Conflict(format!(
            "a database named {} exists in {} and is not this execution's (its lifeboat tags differ); it is left alone",
            d.target_id, d.target_region
        )));
    }
    if db.status == "deleting" {
        return Err(PortError::InvalidState(format!(
            "{} is being deleted; the restore waits until its name is free",
            d.target_id
        )));
    }
    Ok(true)
}

/// Starts what can start and moves every database of the current plan step along, as the
/// execution's phase machine says ([`DrExecution::next`]). Returns whether every database
/// is ready.
pub(super) async fn advance(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution, action: Action) -> StepResult {
    let (tables, quiesce_first) = match exec.next(plan, action, deps.clock.now()) {
        Next::Overdue { deadline } => {
            return Err(FunctionError::new(
                ErrorType::Conflict,
                format!(
                    "deadline passed: the databases were not all available within {}",
                    humantime::format_duration(deadline)
                ),
            ));
        }
        Next::Moves { tables, quiesce } => (tables, quiesce),
    };
    let tags = lifeboat_tags(exec);
    let mut notes = Vec::new();
    advance_tables(deps, exec, action, tables, &mut notes).await?;
    if quiesce_first {
        notes.push(quiesce(deps, plan, exec, action).await?);
    }
    let ports = Mover {
        deps,
        plan,
        action,
        tags: &tags,
    };
    // Several rounds: a database that became ready may let the next plan step start.
    for _ in 0..ROUNDS {
        let mut moved = false;
        for i in exec.current_databases() {
            let Some(next) = exec.database_move(i, deps.clock.now()) else {
                continue;
            };
            if ports.make(exec, i, &next, &mut notes).await? {
                if let Some(phase) = next.phase_after() {
                    exec.databases[i].phase = phase;
                }
                moved |= matches!(next, DbMove::AwaitAvailable { .. });
            }
        }
        if !moved {
            break;
        }
    }
    let ready = exec.all_ready();
    if notes.is_empty() {
        notes.push("waiting".into());
    }
    Ok((ready, notes.join("; ")))
}

/// What a database's move is made with.
struct Mover<'a> {
    deps: &'a Deps,
    plan: &'a DrPlan,
    action: Action,
    tags: &'a [Tag],
}

/// Where a restore into the target comes from.
enum RestoreFrom<'a> {
    Time(DateTime<Utc>),
    Snapshot(&'a str),
}

impl Mover<'_> {
    /// Makes database `i`'s move; whether it was made (a wait not yet over was not).
    async fn make(
        &self,
        exec: &mut DrExecution,
        i: usize,
        next: &DbMove,
        notes: &mut Vec<String>,
    ) -> Result<bool, FunctionError> {
        let d = exec.databases[i].clone();
        match next {
            DbMove::RestoreToTime { restore_time } => {
                self.start_restore(exec, &d, RestoreFrom::Time(*restore_time)).await?;
                notes.push(format!("{}: point-in-time restore to {} started", d.db.id, d.target_id));
            }
            DbMove::RestoreSnapshot { snapshot } => {
                self.start_restore(exec, &d, RestoreFrom::Snapshot(snapshot)).await?;
                notes.push(format!(
                    "{}: restore of {snapshot} into {} started",
                    d.db.id, d.target_id
                ));
            }
            DbMove::PromoteReplica { replica } => {
                // Not undoable: a promoted replica cannot be demoted. Recorded as such.
                match self.deps.databases.promote_replica(&d.target_region, replica).await {
                    Ok(()) | Err(PortError::InvalidState(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                notes.push(format!("{}: replica {replica} promoted (cannot be undone)", d.db.id));
            }
            DbMove::MoveGlobal { global_cluster, method } => {
                notes.push(self.move_global(&d, global_cluster, *method).await?);
            }
            DbMove::WaitForWrites { until } => {
                notes.push(format!(
                    "{}: waiting until {until} for the last writes to the DR side to settle",
                    d.db.id
                ));
                return Ok(false);
            }
            DbMove::SnapshotDrSide { resource, snapshot } => {
                self.snapshot_dr_side(exec, &d, resource, snapshot).await?;
                notes.push(format!("{}: snapshot {snapshot} of the DR side started", d.db.id));
            }
            DbMove::CopyToSource { resource, snapshot } => {
                return self.copy_to_source(exec, i, resource, snapshot, notes).await;
            }
            DbMove::RestoreCopy { snapshot } => {
                if !self.copied(&d, snapshot).await? {
                    return Ok(false);
                }
                self.start_restore(exec, &d, RestoreFrom::Snapshot(snapshot)).await?;
                notes.push(format!("{}: restore into {} started", d.db.id, d.target_id));
            }
            DbMove::AwaitAvailable { writer } => return self.available(exec, i, *writer, notes).await,
            DbMove::Fail(why) => return Err(internal(why.clone())),
        }
        Ok(true)
    }

    /// Restores into `d`'s target (its undo recorded first), unless a retried step finds
    /// its earlier start there.
    async fn start_restore(
        &self,
        exec: &mut DrExecution,
        d: &DbRun,
        from: RestoreFrom<'_>,
    ) -> Result<(), FunctionError> {
        let deps = self.deps;
        let settings = restore_settings(deps, self.plan, d).await?;
        exec.will_undo(self.action, delete_undo(d));
        save(deps, exec).await?;
        if !exists(deps, d, self.tags).await? {
            let request = restore_request(d, &settings, self.tags);
            match from {
                RestoreFrom::Time(at) => deps.databases.restore_to_time(&request, &d.db.id, at).await?,
                RestoreFrom::Snapshot(snapshot) => deps.databases.restore_from_snapshot(&request, snapshot).await?,
            }
        }
        Ok(())
    }

    /// Moves the global database to `d`'s target; the note saying how.
    async fn move_global(&self, d: &DbRun, global_cluster: &str, method: GlobalMove) -> Result<String, FunctionError> {
        let databases = &self.deps.databases;
        let target = databases
            .describe(&d.target_region, ResourceKind::AuroraCluster, &d.target_id)
            .await?
            .and_then(|i| i.arn)
            .ok_or_else(|| FunctionError::not_found(format!("secondary cluster {}", d.target_id)))?;
        // Not undoable either: the secondary becomes the primary.
        // A replayed step finds the move already under way (InvalidState).
        let (moved, how) = match method {
            GlobalMove::Outage => (
                databases
                    .failover_global_cluster(&d.target_region, global_cluster, &target)
                    .await,
                "failing over (AllowDataLoss)",
            ),
            GlobalMove::Planned => (
                databases
                    .switchover_global_cluster(&d.target_region, global_cluster, &target)
                    .await,
                "switching over (no data loss)",
            ),
        };
        match moved {
            Ok(()) | Err(PortError::InvalidState(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(format!(
            "{}: global database {global_cluster} {how} to {}",
            d.db.id, d.target_id
        ))
    }

    /// Failback: snapshots the DR-side database (the snapshot's undo recorded first).
    async fn snapshot_dr_side(
        &self,
        exec: &mut DrExecution,
        d: &DbRun,
        resource: &str,
        snapshot: &str,
    ) -> Result<(), FunctionError> {
        let (deps, plan) = (self.deps, self.plan);
        exec.will_undo(
            self.action,
            Undo::DeleteSnapshot {
                region: plan.dr_region.clone(),
                kind: d.db.kind,
                name: snapshot.to_owned(),
            },
        );
        save(deps, exec).await?;
        if deps
            .snapshots
            .describe_snapshot(&plan.dr_region, d.db.kind, snapshot)
            .await?
            .is_none()
        {
            let r = ResourceRef {
                kind: d.db.kind,
                id: resource.to_owned(),
                arn: String::new(),
                region: plan.dr_region.clone(),
            };
            deps.snapshots.create_snapshot(&r, snapshot, self.tags).await?;
        }
        Ok(())
    }

    /// Failback: once the DR-side snapshot is available, copies it to the source region
    /// (the copy's undo recorded first). Whether the copy started.
    async fn copy_to_source(
        &self,
        exec: &mut DrExecution,
        i: usize,
        resource: &str,
        snapshot: &str,
        notes: &mut Vec<String>,
    ) -> Result<bool, FunctionError> {
        let (deps, plan) = (self.deps, self.plan);
        let kind = exec.databases[i].db.kind;
        let Some(snap) = deps
            .snapshots
            .describe_snapshot(&plan.dr_region, kind, snapshot)
            .await?
        else {
            return Err(FunctionError::not_found(format!("snapshot {snapshot} vanished")));
        };
        match snap.status {
            SnapshotStatus::Available => {}
            SnapshotStatus::Failed => return Err(internal(format!("snapshot {snapshot} failed"))),
            _ => return Ok(false),
        }
        let key = plan
            .prechecks
            .source_kms_key_id
            .clone()
            .ok_or_else(|| FunctionError::misconfigured("prechecks.source_kms_key_id"))?;
        exec.will_undo(
            self.action,
            Undo::DeleteSnapshot {
                region: plan.source_region.clone(),
                kind,
                name: snapshot.to_owned(),
            },
        );
        save(deps, exec).await?;
        if deps
            .snapshots
            .describe_snapshot(&plan.source_region, kind, snapshot)
            .await?
            .is_none()
        {
            deps.snapshots
                .copy_snapshot(&snap, &plan.source_region, snapshot, &key, self.tags)
                .await?;
        }
        exec.databases[i].source = Some(Source::DrSide {
            resource: resource.to_owned(),
            snapshot: snapshot.to_owned(),
            taken_at: snap.created_at,
        });
        notes.push(format!(
            "{}: copy of {snapshot} to {} started",
            exec.databases[i].db.id, plan.source_region
        ));
        Ok(true)
    }

    /// Failback: whether the copy of the DR-side snapshot in the source region is available
    /// (a failed or missing copy fails the step).
    async fn copied(&self, d: &DbRun, snapshot: &str) -> Result<bool, FunctionError> {
        let source_region = &self.plan.source_region;
        match self
            .deps
            .snapshots
            .describe_snapshot(source_region, d.db.kind, snapshot)
            .await?
            .map(|s| s.status)
        {
            Some(SnapshotStatus::Available) => Ok(true),
            Some(SnapshotStatus::Failed) | None => {
                Err(internal(format!("copy of {snapshot} to {source_region} failed")))
            }
            Some(_) => Ok(false),
        }
    }

    /// Whether database `i`'s target is available (and its writer, when it needs one);
    /// records its endpoint and when it became ready.
    async fn available(
        &self,
        exec: &mut DrExecution,
        i: usize,
        writer: bool,
        notes: &mut Vec<String>,
    ) -> Result<bool, FunctionError> {
        let d = exec.databases[i].clone();
        match self
            .deps
            .databases
            .describe(&d.target_region, d.db.kind, &d.target_id)
            .await?
        {
            Some(info) if info.is_available() => {
                if writer && !writer_ready(self.deps, self.plan, exec, i, self.action, &info, notes).await? {
                    return Ok(false);
                }
                let r = &mut exec.databases[i];
                r.endpoint = info.endpoint;
                r.ready_at = Some(self.deps.clock.now());
                notes.push(format!("{}: {} available", d.db.id, d.target_id));
                Ok(true)
            }
            Some(info) if info.status.contains("fail") || info.status.starts_with("incompatible") => {
                Err(internal(format!("{} ended in status {}", d.target_id, info.status)))
            }
            Some(_) => Ok(false),
            None => Err(FunctionError::not_found(format!("{} vanished", d.target_id))),
        }
    }
}
