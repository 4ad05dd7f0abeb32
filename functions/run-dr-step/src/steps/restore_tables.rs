//! Restore and poll, for the tables: every chosen table imported from its copy or
//! restored from its native backup, then waited for.

use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::dr::execution::TableRun;
use lifeboat_domain::dr::step::TableMove;
use lifeboat_domain::dr::{Action, DrExecution, Undo};
use lifeboat_ports::PortError;

use super::{internal, save};
use crate::Deps;

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
pub(super) async fn advance_tables(
    deps: &Deps,
    exec: &mut DrExecution,
    action: Action,
    moves: Vec<(usize, TableMove)>,
    notes: &mut Vec<String>,
) -> Result<(), FunctionError> {
    for (i, next) in moves {
        let t = exec.tables[i].clone();
        let made = match &next {
            TableMove::Import { copy, started } => {
                if !started {
                    import_table(deps, exec, i, action, copy).await?;
                }
                notes.push(format!(
                    "table {}: import of its copy {copy} into {} in {} started",
                    t.table.name, t.target_name, t.target_region
                ));
                true
            }
            TableMove::Restore { backup } => {
                restore_table(deps, exec, &t, action, backup).await?;
                notes.push(format!(
                    "table {}: restore of its backup into {} started",
                    t.table.name, t.target_name
                ));
                true
            }
            TableMove::Await { import } => {
                let ready = table_ready(deps, &t, import.is_some()).await?;
                if ready {
                    exec.tables[i].ready_at = Some(deps.clock.now());
                    notes.push(format!("table {}: {} active", t.table.name, t.target_name));
                }
                ready
            }
            TableMove::Fail(why) => return Err(internal(why.clone())),
        };
        if made && let Some(phase) = next.phase_after() {
            exec.tables[i].phase = phase;
        }
    }
    Ok(())
}

/// Starts the import of table `i`'s copy. The same start again (a retried step) is the
/// same import, whose ARN the undo then records: only that import's table is ever deleted.
async fn import_table(
    deps: &Deps,
    exec: &mut DrExecution,
    i: usize,
    action: Action,
    copy: &str,
) -> Result<(), FunctionError> {
    let t = exec.tables[i].clone();
    let arn = match deps.tables.import_copy(&t.target_region, copy, &t.target_name).await {
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
    Ok(())
}

/// Restores `t`'s native backup into its target (the undo recorded first); a table of
/// that name not restored from the backup is not this execution's and stops it.
async fn restore_table(
    deps: &Deps,
    exec: &mut DrExecution,
    t: &TableRun,
    action: Action,
    backup: &str,
) -> Result<(), FunctionError> {
    exec.will_undo(action, table_undo(t));
    save(deps, exec).await?;
    let mut existing = deps.tables.describe_table(&t.target_region, &t.target_name).await?;
    if existing.is_none() {
        match deps
            .tables
            .restore_from_backup(&t.target_region, backup, &t.target_name)
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
        && info.restored_from.as_deref() != Some(backup)
    {
        return Err(FunctionError::new(
            ErrorType::Conflict,
            format!(
                "table {}: {} already exists in {} and was not restored from {backup}; it is not this execution's and is left alone",
                t.table.name, t.target_name, t.target_region
            ),
        ));
    }
    Ok(())
}

/// Whether `t` is active (after its import, when `imported`); a failed import or table
/// fails the step.
async fn table_ready(deps: &Deps, t: &TableRun, imported: bool) -> Result<bool, FunctionError> {
    if imported && !import_done(deps, t).await? {
        return Ok(false);
    }
    match deps.tables.describe_table(&t.target_region, &t.target_name).await? {
        Some(info) if info.is_ready() => Ok(true),
        Some(info) if matches!(info.status.as_str(), "CREATING" | "UPDATING" | "ACTIVE") => Ok(false),
        Some(info) => Err(internal(format!(
            "table {} ended in status {}",
            t.target_name, info.status
        ))),
        None => Err(FunctionError::not_found(format!("table {} vanished", t.target_name))),
    }
}
