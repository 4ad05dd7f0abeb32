//! Restore and poll: starting what can start and moving every database and table along.

use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::dr::execution::TableRun;
use lifeboat_domain::dr::execution::{DbRun, writer_instance_name};
use lifeboat_domain::dr::plan::{GlobalMove, RestoreSettings};
use lifeboat_domain::dr::{Action, DrExecution, DrPlan, Mode, Phase, Source, Undo};
use lifeboat_domain::{ResourceKind, ResourceRef};
use lifeboat_ports::dr::{RestoreRequest, WriterRequest};
use lifeboat_ports::{PortError, PortResult, SnapshotStatus, Tag};

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

/// Starts what can start and moves every database of the current plan step along.
/// Returns whether every database is ready.
pub(super) async fn advance(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution, action: Action) -> StepResult {
    let now = deps.clock.now();
    if action == Action::Poll && (now - exec.triggered_at).to_std().unwrap_or_default() > plan.restore_deadline {
        return Err(FunctionError::new(
            ErrorType::Conflict,
            format!(
                "deadline passed: the databases were not all available within {}",
                humantime::format_duration(plan.restore_deadline)
            ),
        ));
    }
    let tags = lifeboat_tags(exec);
    let mut notes = Vec::new();
    advance_tables(deps, exec, action, &mut notes).await?;
    // A failback stops the writes to the DR side before any snapshot of it is taken.
    let snapshot_pending = exec
        .databases
        .iter()
        .any(|d| d.phase == Phase::Chosen && matches!(d.source, Some(Source::DrSide { .. })));
    if exec.mode == Mode::Failback && snapshot_pending && exec.quiesced_at.is_none() {
        notes.push(quiesce(deps, plan, exec, action).await?);
    }
    // Several rounds: a database that became ready may let the next plan step start.
    for _ in 0..4 {
        let Some(current) = exec.current_step() else { break };
        let mut moved = false;
        for i in 0..exec.databases.len() {
            if exec.databases[i].db.step != current {
                continue;
            }
            let d = exec.databases[i].clone();
            let source = d
                .source
                .clone()
                .ok_or_else(|| internal(format!("{}: no source chosen", d.db.id)))?;
            match (d.phase, &source) {
                (Phase::Chosen, Source::PointInTime { restore_time }) => {
                    let settings = restore_settings(deps, plan, &d).await?;
                    exec.will_undo(action, delete_undo(&d));
                    save(deps, exec).await?;
                    if !exists(deps, &d, &tags).await? {
                        deps.databases
                            .restore_to_time(&restore_request(&d, &settings, &tags), &d.db.id, *restore_time)
                            .await?;
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!("{}: point-in-time restore to {} started", d.db.id, d.target_id));
                }
                (Phase::Chosen, Source::DrSnapshot { snapshot, .. }) => {
                    let settings = restore_settings(deps, plan, &d).await?;
                    exec.will_undo(action, delete_undo(&d));
                    save(deps, exec).await?;
                    if !exists(deps, &d, &tags).await? {
                        deps.databases
                            .restore_from_snapshot(&restore_request(&d, &settings, &tags), snapshot)
                            .await?;
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!(
                        "{}: restore of {snapshot} into {} started",
                        d.db.id, d.target_id
                    ));
                }
                (Phase::Chosen, Source::PromoteReplica { replica, .. }) => {
                    // Not undoable: a promoted replica cannot be demoted. Recorded as such.
                    match deps.databases.promote_replica(&d.target_region, replica).await {
                        Ok(()) | Err(PortError::InvalidState(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!("{}: replica {replica} promoted (cannot be undone)", d.db.id));
                }
                (
                    Phase::Chosen,
                    Source::GlobalCluster {
                        global_cluster, method, ..
                    },
                ) => {
                    let target = deps
                        .databases
                        .describe(&d.target_region, ResourceKind::AuroraCluster, &d.target_id)
                        .await?
                        .and_then(|i| i.arn)
                        .ok_or_else(|| FunctionError::not_found(format!("secondary cluster {}", d.target_id)))?;
                    // Not undoable either: the secondary becomes the primary.
                    // A replayed step finds the move already under way (InvalidState).
                    let (moved, how) = match method {
                        GlobalMove::Outage => (
                            deps.databases
                                .failover_global_cluster(&d.target_region, global_cluster, &target)
                                .await,
                            "failing over (AllowDataLoss)",
                        ),
                        GlobalMove::Planned => (
                            deps.databases
                                .switchover_global_cluster(&d.target_region, global_cluster, &target)
                                .await,
                            "switching over (no data loss)",
                        ),
                    };
                    match moved {
                        Ok(()) | Err(PortError::InvalidState(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!(
                        "{}: global database {global_cluster} {how} to {}",
                        d.db.id, d.target_id
                    ));
                }
                (Phase::Chosen, Source::DrSide { resource, snapshot, .. }) => {
                    // Not before the writes have stopped: the snapshot must hold the last one.
                    match exec.writes_stopped_at {
                        None => return Err(internal("failback: the DR side was not quiesced")),
                        Some(stopped) if deps.clock.now() < stopped => {
                            notes.push(format!(
                                "{}: waiting until {stopped} for the last writes to the DR side to settle",
                                d.db.id
                            ));
                            continue;
                        }
                        Some(_) => {}
                    }
                    exec.will_undo(
                        action,
                        Undo::DeleteSnapshot {
                            region: plan.dr_region.clone(),
                            kind: d.db.kind,
                            name: snapshot.clone(),
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
                            id: resource.clone(),
                            arn: String::new(),
                            region: plan.dr_region.clone(),
                        };
                        deps.snapshots.create_snapshot(&r, snapshot, &tags).await?;
                    }
                    exec.databases[i].phase = Phase::SnapshotDrSide;
                    notes.push(format!("{}: snapshot {snapshot} of the DR side started", d.db.id));
                }
                (Phase::SnapshotDrSide, Source::DrSide { resource, snapshot, .. }) => {
                    let Some(snap) = deps
                        .snapshots
                        .describe_snapshot(&plan.dr_region, d.db.kind, snapshot)
                        .await?
                    else {
                        return Err(FunctionError::not_found(format!("snapshot {snapshot} vanished")));
                    };
                    match snap.status {
                        SnapshotStatus::Available => {}
                        SnapshotStatus::Failed => return Err(internal(format!("snapshot {snapshot} failed"))),
                        _ => continue,
                    }
                    let key = plan
                        .prechecks
                        .source_kms_key_id
                        .clone()
                        .ok_or_else(|| FunctionError::misconfigured("prechecks.source_kms_key_id"))?;
                    exec.will_undo(
                        action,
                        Undo::DeleteSnapshot {
                            region: plan.source_region.clone(),
                            kind: d.db.kind,
                            name: snapshot.clone(),
                        },
                    );
                    save(deps, exec).await?;
                    if deps
                        .snapshots
                        .describe_snapshot(&plan.source_region, d.db.kind, snapshot)
                        .await?
                        .is_none()
                    {
                        deps.snapshots
                            .copy_snapshot(&snap, &plan.source_region, snapshot, &key, &tags)
                            .await?;
                    }
                    exec.databases[i].source = Some(Source::DrSide {
                        resource: resource.clone(),
                        snapshot: snapshot.clone(),
                        taken_at: snap.created_at,
                    });
                    exec.databases[i].phase = Phase::CopyToSource;
                    notes.push(format!(
                        "{}: copy of {snapshot} to {} started",
                        d.db.id, plan.source_region
                    ));
                }
                (Phase::CopyToSource, Source::DrSide { snapshot, .. }) => {
                    match deps
                        .snapshots
                        .describe_snapshot(&plan.source_region, d.db.kind, snapshot)
                        .await?
                        .map(|s| s.status)
                    {
                        Some(SnapshotStatus::Available) => {}
                        Some(SnapshotStatus::Failed) | None => {
                            return Err(internal(format!("copy of {snapshot} to {} failed", plan.source_region)));
                        }
                        Some(_) => continue,
                    }
                    let settings = restore_settings(deps, plan, &d).await?;
                    exec.will_undo(action, delete_undo(&d));
                    save(deps, exec).await?;
                    if !exists(deps, &d, &tags).await? {
                        deps.databases
                            .restore_from_snapshot(&restore_request(&d, &settings, &tags), snapshot)
                            .await?;
                    }
                    exec.databases[i].phase = Phase::Recovering;
                    notes.push(format!("{}: restore into {} started", d.db.id, d.target_id));
                }
                (Phase::Recovering, _) => {
                    match deps
                        .databases
                        .describe(&d.target_region, d.db.kind, &d.target_id)
                        .await?
                    {
                        Some(info) if info.is_available() => {
                            let from_snapshot = matches!(source, Source::DrSnapshot { .. } | Source::DrSide { .. });
                            if d.db.kind == ResourceKind::AuroraCluster
                                && from_snapshot
                                && !writer_ready(deps, plan, exec, i, action, &info, &mut notes).await?
                            {
                                continue;
                            }
                            let r = &mut exec.databases[i];
                            r.phase = Phase::Ready;
                            r.endpoint = info.endpoint;
                            r.ready_at = Some(deps.clock.now());
                            moved = true;
                            notes.push(format!("{}: {} available", d.db.id, d.target_id));
                        }
                        Some(info) if info.status.contains("fail") || info.status.starts_with("incompatible") => {
                            return Err(internal(format!("{} ended in status {}", d.target_id, info.status)));
                        }
                        Some(_) => {}
                        None => return Err(FunctionError::not_found(format!("{} vanished", d.target_id))),
                    }
                }
                _ => {}
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

/// Whether the table's import has completed; a failed or cancelled import fails the step.
async fn import_done(deps: &Deps, t: &TableRun) -> Result<bool, FunctionError> {
    let arn = t.import_arn.as_deref().unwrap_or_default();
    match deps.tables.describe_import(&t.target_region, arn).await? {
        Some(i) if i.status == "COMPLETED" => Ok(true),
        Some(i) if i.status == "IN_PROGRESS" => Ok(false),
        Some(i) => Err(internal(format!(
            "table {}: import {arn} into {} ended {}{}",
            t.table.name,
            t.target_name,
            i.status,
            i.failure.map(|f| format!(": {f}")).unwrap_or_default()
        ))),
        None => Err(FunctionError::not_found(format!(
            "table {}: import {arn} into {} vanished",
            t.table.name, t.target_name
        ))),
    }
}

fn table_undo(t: &TableRun) -> Undo {
    Undo::DeleteTable {
        region: t.target_region.clone(),
        name: t.target_name.clone(),
        backup_arn: t.backup_arn.clone(),
    }
}

/// Tables restore independently of the plan's database steps: every chosen table starts
/// at once, each restored into its deterministic name (check before create: a table there
/// restored from the same backup is this execution's earlier start; any other table is
/// not Lifeboat's and stops the execution).
async fn advance_tables(
    deps: &Deps,
    exec: &mut DrExecution,
    action: Action,
    notes: &mut Vec<String>,
) -> Result<(), FunctionError> {
    for i in 0..exec.tables.len() {
        let t = exec.tables[i].clone();
        match t.phase {
            Phase::Chosen if t.copy.is_some() => {
                let copy = t.copy.clone().unwrap_or_default();
                if t.import_arn.is_none() {
                    // The same start again (a retried step) is the same import, whose ARN
                    // the undo then records: only that import's table is ever deleted.
                    let arn = match deps.tables.import_copy(&t.target_region, &copy, &t.target_name).await {
                        Ok(arn) => arn,
                        Err(PortError::AlreadyExists(_)) => {
                            return Err(FunctionError::new(
                                ErrorType::Conflict,
                                format!(
                                    "table {}: {} already exists in {} and is not this execution's import of {copy}; it is left alone",
                                    t.table.name, t.target_name, t.target_region
                                ),
                            ));
                        }
                        Err(e) => return Err(e.into()),
                    };
                    exec.tables[i].import_arn = Some(arn.clone());
                    let mut undo = table_undo(&t);
                    if let Undo::DeleteTable { backup_arn, .. } = &mut undo {
                        *backup_arn = Some(arn);
                    }
                    exec.will_undo(action, undo);
                }
                exec.tables[i].phase = Phase::Recovering;
                notes.push(format!(
                    "table {}: import of its copy {copy} into {} in {} started",
                    t.table.name, t.target_name, t.target_region
                ));
            }
            Phase::Chosen => {
                let backup = t
                    .backup_arn
                    .clone()
                    .ok_or_else(|| internal(format!("table {}: no backup chosen", t.table.name)))?;
                exec.will_undo(action, table_undo(&t));
                save(deps, exec).await?;
                let mut existing = deps.tables.describe_table(&t.target_region, &t.target_name).await?;
                if existing.is_none() {
                    match deps
                        .tables
                        .restore_from_backup(&t.target_region, &backup, &t.target_name)
                        .await
                    {
                        Ok(()) => {}
                        // Created since the look: read what is there now.
                        Err(PortError::AlreadyExists(_)) => {
                            existing = deps.tables.describe_table(&t.target_region, &t.target_name).await?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                if let Some(info) = existing
                    && info.restored_from.as_deref() != Some(backup.as_str())
                {
                    return Err(FunctionError::new(
                        ErrorType::Conflict,
                        format!(
                            "table {}: {} already exists in {} and was not restored from {backup}; it is not this execution's and is left alone",
                            t.table.name, t.target_name, t.target_region
                        ),
                    ));
                }
                exec.tables[i].phase = Phase::Recovering;
                notes.push(format!(
                    "table {}: restore of its backup into {} started",
                    t.table.name, t.target_name
                ));
            }
            Phase::Recovering if t.import_arn.is_some() && !import_done(deps, &t).await? => {}
            Phase::Recovering => match deps.tables.describe_table(&t.target_region, &t.target_name).await? {
                Some(info) if info.is_ready() => {
                    exec.tables[i].phase = Phase::Ready;
                    exec.tables[i].ready_at = Some(deps.clock.now());
                    notes.push(format!("table {}: {} active", t.table.name, t.target_name));
                }
                Some(info) if matches!(info.status.as_str(), "CREATING" | "UPDATING" | "ACTIVE") => {}
                Some(info) => {
                    return Err(internal(format!(
                        "table {} ended in status {}",
                        t.target_name, info.status
                    )));
                }
                None => return Err(FunctionError::not_found(format!("table {} vanished", t.target_name))),
            },
            _ => {}
        }
    }
    Ok(())
}
