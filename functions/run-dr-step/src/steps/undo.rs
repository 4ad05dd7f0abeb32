//! Undoing a change, and deleting only what Lifeboat made.

use lifeboat_domain::dr::execution::TABLE_PREFIXES;
use lifeboat_domain::dr::execution::{DB_PREFIXES, FinalSnapshot, final_snapshot_name, short_id};
use lifeboat_domain::dr::{DrExecution, Mode, Undo};
use lifeboat_domain::{Region, ResourceKind};
use lifeboat_ports::PortResult;
use lifeboat_ports::dr::{DbInfo, DeleteMode};

use crate::{Deps, TAG_EXECUTION, TAG_PLAN};

pub(super) async fn undo(deps: &Deps, exec: &mut DrExecution, u: &Undo) -> PortResult<()> {
    match u {
        Undo::DeleteInstance { region, id } => {
            delete_owned_database(deps, exec, region, ResourceKind::RdsInstance, id).await
        }
        Undo::DeleteCluster { region, id } => {
            delete_owned_database(deps, exec, region, ResourceKind::AuroraCluster, id).await
        }
        Undo::DeleteSnapshot { region, kind, name } => deps.snapshots.delete_snapshot(region, *kind, name).await,
        Undo::DeleteTable {
            region,
            name,
            backup_arn,
        } => delete_owned_table(deps, region, name, backup_arn.as_deref()).await,
        Undo::RestoreParameter { region, name, previous } => match previous {
            Some(v) => deps.parameters.put(region, name, v).await,
            None => deps.parameters.delete(region, name).await,
        },
        Undo::RestoreRecord {
            zone,
            name,
            previous,
            ttl,
        } => match previous {
            Some(v) => deps.dns.upsert_cname(zone, name, v, *ttl).await,
            None => match deps.dns.cname(zone, name).await? {
                Some(current) => deps.dns.delete_cname(zone, name, &current, *ttl).await,
                None => Ok(()),
            },
        },
    }
}

/// Lifeboat made this database for `plan`: its name is a DR name (`lbdr-`, `lbfo-`,
/// `lbfb-`, then the hash of an execution) and its tags name that very execution and the
/// plan.
fn owned_database(info: &DbInfo, plan: &str) -> bool {
    let tag = |k: &str| info.tags.iter().find(|t| t.key == k).map(|t| t.value.as_str());
    let (Some(execution), Some(owner)) = (tag(TAG_EXECUTION), tag(TAG_PLAN)) else {
        return false;
    };
    owner == plan
        && DB_PREFIXES
            .iter()
            .any(|p| info.id.starts_with(&format!("{p}{}-", short_id(execution))))
}

/// Deletes a database only if Lifeboat made it for this plan ([`owned_database`]), read
/// again just before deleting. A drill's own copy goes as a throwaway; anything else
/// leaves a final snapshot (named and recorded in the execution before the delete) and
/// keeps its automated backups. A missing database, or one already being deleted, is what
/// was wanted; one that is not Lifeboat's is left alone and noted.
async fn delete_owned_database(
    deps: &Deps,
    exec: &mut DrExecution,
    region: &Region,
    kind: ResourceKind,
    id: &str,
) -> PortResult<()> {
    if !DB_PREFIXES.iter().any(|p| id.starts_with(p)) {
        tracing::warn!(database = id, %region, "not a Lifeboat database name: not deleted");
        return Ok(());
    }
    let Some(info) = deps.databases.describe(region, kind, id).await? else {
        return Ok(());
    };
    if info.status == "deleting" {
        return Ok(());
    }
    if !owned_database(&info, &exec.plan) {
        tracing::warn!(database = id, %region, tags = ?info.tags, "not made by Lifeboat for this plan: not deleted");
        let note = format!(
            "{kind} {id} in {region} left alone: its tags do not say Lifeboat made it for plan {}",
            exec.plan
        );
        if !exec.checks.contains(&note) {
            exec.checks.push(note);
        }
        return Ok(());
    }
    if exec.mode == Mode::Drill && id.starts_with("lbdr-") {
        return deps.databases.delete(region, kind, id, DeleteMode::Throwaway).await;
    }
    let snapshot = final_snapshot_name(id);
    if !exec
        .final_snapshots
        .iter()
        .any(|f| &f.region == region && f.snapshot == snapshot)
    {
        exec.final_snapshots.push(FinalSnapshot {
            region: region.clone(),
            kind,
            database: id.to_owned(),
            snapshot: snapshot.clone(),
            confirmed: false,
        });
    }
    deps.databases
        .delete(
            region,
            kind,
            id,
            DeleteMode::KeepData {
                final_snapshot: &snapshot,
            },
        )
        .await
}

/// Looks for the final snapshots not seen yet; records those RDS now shows.
pub(super) async fn confirm_final_snapshots(deps: &Deps, exec: &mut DrExecution) -> PortResult<()> {
    for i in 0..exec.final_snapshots.len() {
        let f = exec.final_snapshots[i].clone();
        if f.confirmed {
            continue;
        }
        if deps
            .snapshots
            .describe_snapshot(&f.region, f.kind, &f.snapshot)
            .await?
            .is_some()
        {
            exec.final_snapshots[i].confirmed = true;
            exec.checks.push(format!(
                "final snapshot {} of {} in {} kept (the database's automated backups too)",
                f.snapshot, f.database, f.region
            ));
        }
    }
    Ok(())
}

/// Lifeboat made this table: its name has a drill or failover prefix and DynamoDB says it
/// was restored from the backup the execution recorded, or made by the import it recorded
/// (from a backup at all, when nothing was recorded).
pub(super) async fn owned_table(
    deps: &Deps,
    region: &Region,
    info: &lifeboat_ports::dr::TableInfo,
    made_from: Option<&str>,
) -> PortResult<bool> {
    if !TABLE_PREFIXES.iter().any(|p| info.name.starts_with(p)) {
        return Ok(false);
    }
    Ok(match made_from {
        Some(arn) if info.restored_from.as_deref() == Some(arn) => true,
        Some(arn) if arn.contains("/import/") => deps
            .tables
            .describe_import(region, arn)
            .await?
            .is_some_and(|i| i.table_name.as_deref() == Some(info.name.as_str())),
        Some(_) => false,
        None => info.restored_from.is_some(),
    })
}

/// Deletes a table only if Lifeboat made it ([`owned_table`]), re-read just before
/// deleting. A missing table, or one already being deleted, is what was wanted; a table
/// that is not Lifeboat's is left alone (there is nothing of this execution's to undo).
async fn delete_owned_table(deps: &Deps, region: &Region, name: &str, backup_arn: Option<&str>) -> PortResult<()> {
    if !TABLE_PREFIXES.iter().any(|p| name.starts_with(p)) {
        tracing::warn!(table = name, %region, "not a Lifeboat table name: not deleted");
        return Ok(());
    }
    let Some(info) = deps.tables.describe_table(region, name).await? else {
        return Ok(());
    };
    if info.status == "DELETING" {
        return Ok(());
    }
    if !owned_table(deps, region, &info, backup_arn).await? {
        tracing::warn!(table = name, %region, restored_from = ?info.restored_from, "not restored by this execution: not deleted");
        return Ok(());
    }
    deps.tables.delete_table(region, name).await
}

pub(super) async fn gone(deps: &Deps, plan: &str, u: &Undo) -> PortResult<bool> {
    Ok(match u {
        // Gone, or never Lifeboat's (left alone by `undo`).
        Undo::DeleteInstance { region, id } => deps
            .databases
            .describe(region, ResourceKind::RdsInstance, id)
            .await?
            .is_none_or(|info| !owned_database(&info, plan)),
        Undo::DeleteCluster { region, id } => deps
            .databases
            .describe(region, ResourceKind::AuroraCluster, id)
            .await?
            .is_none_or(|info| !owned_database(&info, plan)),
        Undo::DeleteSnapshot { region, kind, name } => {
            deps.snapshots.describe_snapshot(region, *kind, name).await?.is_none()
        }
        // Gone, or never Lifeboat's (left alone by `undo`).
        Undo::DeleteTable {
            region,
            name,
            backup_arn,
        } => match deps.tables.describe_table(region, name).await? {
            None => true,
            Some(info) => !owned_table(deps, region, &info, backup_arn.as_deref()).await?,
        },
        Undo::RestoreParameter { .. } | Undo::RestoreRecord { .. } => true,
    })
}
