//! Teardown: a drill's copies, or a failback's failover databases and tables.

use lifeboat::FunctionError;
use lifeboat_domain::ResourceKind;
use lifeboat_domain::dr::{Action, DrExecution, DrPlan, Mode, Undo};
use lifeboat_ports::dr::SiteDb;

use super::StepResult;
use super::undo::{confirm_final_snapshots, gone, owned_table, undo};
use crate::Deps;

pub(super) async fn teardown(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> StepResult {
    let mut targets: Vec<usize> = Vec::new();
    let mut waiting = Vec::new();
    match exec.mode {
        Mode::Drill => {
            targets.extend(
                exec.compensations
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.undo.removes_resource() && !c.done)
                    .map(|(i, _)| i),
            );
        }
        Mode::Failback => {
            // The failover's databases on the DR side, once production is back. Promoted
            // replicas are left (they hold the DR copy of the data) and reported.
            let site = deps.store.site(&plan.name).await?;
            for d in site.iter().flat_map(|s| s.databases.iter()) {
                if !d.id.starts_with("lbfo-") {
                    exec.checks.push(format!(
                        "teardown: {} in {} kept (not created by Lifeboat)",
                        d.id, d.region
                    ));
                    continue;
                }
                // A failover's table took the writes made while production ran on it:
                // it is deleted only once a final native backup of it is available.
                if d.kind == ResourceKind::DynamoDbTable && !final_table_backup(deps, exec, d).await? {
                    waiting.push(format!("final backup of table {} in {}", d.id, d.region));
                    continue;
                }
                let u = match d.kind {
                    // The failover's restored tables (ownership re-checked before deleting).
                    ResourceKind::DynamoDbTable => Undo::DeleteTable {
                        region: d.region.clone(),
                        name: d.id.clone(),
                        backup_arn: d.made_from.clone(),
                    },
                    // Databases only, as above.
                    ResourceKind::RdsInstance | ResourceKind::S3Prefix | ResourceKind::ConfigBundle => {
                        Undo::DeleteInstance {
                            region: d.region.clone(),
                            id: d.id.clone(),
                        }
                    }
                    ResourceKind::AuroraCluster => Undo::DeleteCluster {
                        region: d.region.clone(),
                        id: d.id.clone(),
                    },
                };
                exec.will_undo(Action::Teardown, u.clone());
                if let Some(i) = exec.compensations.iter().position(|c| c.undo == u && !c.done) {
                    targets.push(i);
                }
            }
        }
        Mode::Failover => return Ok((true, "failover: nothing to tear down".into())),
    }
    let mut left = waiting;
    for i in targets {
        let u = exec.compensations[i].undo.clone();
        undo(deps, exec, &u).await?;
        if gone(deps, &plan.name, &u).await? {
            exec.compensations[i].done = true;
        } else {
            left.push(u.describe());
        }
    }
    confirm_final_snapshots(deps, exec).await?;
    if left.is_empty() {
        Ok((true, "torn down".into()))
    } else {
        Ok((false, format!("still deleting: {}", left.join("; "))))
    }
}

/// Failback: a final native backup (`lbfb-…`, kept) of a failover's table before it is
/// deleted. True once the backup is available, or when there is nothing of Lifeboat's to
/// keep (the table is gone, or is not one Lifeboat restored, which teardown leaves alone).
async fn final_table_backup(deps: &Deps, exec: &mut DrExecution, d: &SiteDb) -> Result<bool, FunctionError> {
    let Some(info) = deps.tables.describe_table(&d.region, &d.id).await? else {
        return Ok(true);
    };
    if !owned_table(deps, &d.region, &info, d.made_from.as_deref()).await? {
        return Ok(true);
    }
    let name = lifeboat_domain::dr::execution::table_name("lbfb", &exec.execution, &d.db);
    let backup = deps.tables.create_backup(&d.region, &d.id, &name).await?;
    if backup.status != "AVAILABLE" {
        return Ok(false);
    }
    let note = format!(
        "teardown: final backup {name} ({}) of {} in {} kept before deleting the table",
        backup.backup_arn, d.id, d.region
    );
    if !exec.checks.contains(&note) {
        exec.checks.push(note);
    }
    Ok(true)
}
