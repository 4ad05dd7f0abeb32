//! Choosing where each database and table comes back from.

use lifeboat::app::PointUpdateError;
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::dr::execution::{SourceFacts, choose_source, resource_name};
use lifeboat_domain::dr::plan::ProtectedDb;
use lifeboat_domain::dr::{DrExecution, DrPlan, Mode, Phase, Source};
use lifeboat_domain::{RecoveryPoint, ResourceRef};
use lifeboat_ports::dr::DbInfo;
use lifeboat_ports::dr::Site;

use super::points::{newest_table_backup, newest_table_copy, newest_verified_point};
use super::{StepResult, age_text, lifeboat_tags};
use crate::Deps;

/// Chooses where each table comes back from: its newest usable copy in the DR region
/// taken at or before the reference time (the drill or failure time), imported there; a
/// drill of a table without a copy restores its newest usable native backup, confirmed
/// by DynamoDB, in the table's own region instead.
async fn choose_tables(
    deps: &Deps,
    plan: &DrPlan,
    exec: &mut DrExecution,
    chosen: &mut Vec<String>,
) -> Result<(), FunctionError> {
    let reference = exec.reference_time;
    let what = if exec.mode == Mode::Drill { "drill" } else { "failure" };
    for i in 0..exec.tables.len() {
        if exec.tables[i].phase != Phase::New {
            continue;
        }
        let table = exec.tables[i].table.clone();
        if let Some(rp) = newest_table_copy(deps, &table, &plan.dr_region, reference).await? {
            let reason = format!(
                "newest usable copy {} of {} in {} (an export of the table at {}): {} before the {what} time (the table's RPO); imported in {}",
                rp.snapshot_name,
                table.name,
                plan.dr_region,
                rp.created_at,
                age_text(reference - rp.created_at),
                plan.dr_region
            );
            chosen.push(format!("table {}: {reason}", table.name));
            let t = &mut exec.tables[i];
            t.recovery_point = Some(rp.id.to_string());
            t.copy = Some(rp.snapshot_name.clone());
            t.backup_at = Some(rp.created_at);
            t.target_region = plan.dr_region.clone();
            t.expected = rp
                .table_checksum()
                .as_ref()
                .map(|c| lifeboat_domain::dr::table_digest::TableContent {
                    items: c.items,
                    checksum: c.checksum.clone(),
                });
            t.reason = reason;
            t.phase = Phase::Chosen;
            continue;
        }
        if exec.mode == Mode::Failover {
            return Err(FunctionError::not_found(format!(
                "table {}: no usable copy in {} taken by {reference}: a failover brings tables back in the DR region, from their copies (exports)",
                table.name, plan.dr_region
            )));
        }
        let rp = newest_table_backup(deps, &table, reference).await?.ok_or_else(|| {
            FunctionError::not_found(format!(
                "table {}: no usable backup in {} taken by {reference}",
                table.name, table.region
            ))
        })?;
        let arn = rp.snapshot_arn.clone().unwrap_or_default();
        let backup = deps.tables.describe_backup(&table.region, &arn).await?.ok_or_else(|| {
            FunctionError::not_found(format!(
                "table {}: backup {} ({}) is recorded but DynamoDB no longer has it",
                table.name, rp.snapshot_name, rp.id
            ))
        })?;
        if backup.status != "AVAILABLE" {
            return Err(FunctionError::new(
                ErrorType::Conflict,
                format!(
                    "table {}: backup {} is {}, not AVAILABLE",
                    table.name, rp.snapshot_name, backup.status
                ),
            ));
        }
        let reason = format!(
            "newest usable native backup {} of {} in {}, taken at {}: {} before the {what} time (the table's RPO)",
            rp.snapshot_name,
            table.name,
            table.region,
            rp.created_at,
            age_text(reference - rp.created_at)
        );
        chosen.push(format!("table {}: {reason}", table.name));
        let t = &mut exec.tables[i];
        t.recovery_point = Some(rp.id.to_string());
        t.backup_arn = Some(arn);
        t.backup_at = Some(rp.created_at);
        t.backup_item_count = backup.item_count;
        t.expected = rp
            .table_checksum()
            .as_ref()
            .map(|c| lifeboat_domain::dr::table_digest::TableContent {
                items: c.items,
                checksum: c.checksum.clone(),
            });
        t.reason = reason;
        t.phase = Phase::Chosen;
    }
    Ok(())
}

pub(super) async fn choose(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> StepResult {
    let now = deps.clock.now();
    let site = deps.store.site(&plan.name).await?;
    let mut chosen = Vec::new();
    choose_tables(deps, plan, exec, &mut chosen).await?;
    for i in 0..exec.databases.len() {
        if exec.databases[i].phase != Phase::New {
            continue;
        }
        let db = exec.databases[i].db.clone();
        if exec.mode == Mode::Failback {
            choose_dr_side(deps, plan, exec, i, site.as_ref()).await?;
            chosen.push(format!("{}: DR-side snapshot", db.id));
            continue;
        }
        let (facts, source_info, dr_copy) = source_facts(deps, plan, &db).await?;
        let info = source_info.as_ref();
        let healthy = facts.source_healthy;
        let (source, reason) = choose_source(exec.mode, &db, &facts, exec.reference_time, now);
        let Some(source) = source else {
            return Err(FunctionError::not_found(format!("{}: {reason}", db.id)));
        };
        let d = &mut exec.databases[i];
        d.expect_engine = info.and_then(|i| i.engine.clone());
        // The writer class of a restored Aurora cluster: the plan's, else the source
        // writer's as read now, else as recorded with the snapshot when it was taken (the
        // source's region may be down).
        d.expect_class = db
            .instance_class
            .clone()
            .or_else(|| info.and_then(|i| i.class.clone()))
            .or_else(|| match &source {
                Source::DrSnapshot { .. } => dr_copy.as_ref().and_then(|rp| rp.writer_class().map(str::to_owned)),
                _ => None,
            });
        match &source {
            Source::PointInTime { .. } => d.target_region = plan.source_region.clone(),
            Source::PromoteReplica { replica, .. }
            | Source::GlobalCluster {
                global_cluster: replica,
                ..
            } => {
                d.target_id = db.read_replica.clone().unwrap_or_else(|| replica.clone());
            }
            _ => {}
        }
        chosen.push(format!("{}: {reason}", db.id));
        d.source = Some(source);
        d.reason = reason;
        d.phase = Phase::Chosen;
        if exec.mode == Mode::Failover && healthy {
            keep_pre_failover_point(deps, plan, exec, i).await?;
        }
    }
    // What the restores will read is held until the execution ends.
    super::holds::hold(deps, exec).await.map_err(|e| match e {
        PointUpdateError::Port(e) => FunctionError::from(e),
        PointUpdateError::KeptChanging => FunctionError::retryable("a chosen recovery point kept changing"),
        PointUpdateError::Missing => FunctionError::not_found("a chosen recovery point vanished"),
    })?;
    Ok((true, chosen.join("; ")))
}

/// What decides where `db` comes back from: the source as RDS describes it now (its health
/// and point-in-time window), its DR-region replica, its newest verified copy in the DR
/// region. Read only: the preview of a failover asks the same.
pub(super) async fn source_facts(
    deps: &Deps,
    plan: &DrPlan,
    db: &ProtectedDb,
) -> Result<(SourceFacts, Option<DbInfo>, Option<RecoveryPoint>), FunctionError> {
    let info = deps
        .databases
        .describe(&plan.source_region, db.kind, &db.id)
        .await
        .ok()
        .flatten();
    let pitr_window = info.as_ref().and_then(|i| {
        let latest = i.latest_restorable?;
        let days = i64::from(i.backup_retention_days.filter(|d| *d > 0)?);
        Some((latest - chrono::Duration::days(days), latest))
    });
    let replica_available = match &db.read_replica {
        Some(r) => deps
            .databases
            .describe(&plan.dr_region, db.kind, r)
            .await
            .ok()
            .flatten()
            .is_some(),
        None => false,
    };
    let dr_copy = newest_verified_point(deps, &db.arn, &plan.dr_region).await?;
    let facts = SourceFacts {
        source_healthy: info.as_ref().is_some_and(DbInfo::is_available),
        pitr_window,
        replica_available,
        newest_dr_copy: dr_copy
            .as_ref()
            .map(|rp| (rp.id.to_string(), rp.snapshot_name.clone(), rp.created_at)),
    };
    Ok((facts, info, dr_copy))
}

/// Failback: a fresh snapshot of database `i`'s DR-side database (as the site records
/// it), copied to the source region.
async fn choose_dr_side(
    deps: &Deps,
    plan: &DrPlan,
    exec: &mut DrExecution,
    i: usize,
    site: Option<&Site>,
) -> Result<(), FunctionError> {
    let db = exec.databases[i].db.clone();
    let on_dr = site
        .and_then(|s| s.databases.iter().find(|d| d.db == db.id))
        .ok_or_else(|| FunctionError::not_found(format!("{}: no DR-side database recorded", db.id)))?;
    let info = deps.databases.describe(&on_dr.region, db.kind, &on_dr.id).await?;
    let d = &mut exec.databases[i];
    d.expect_engine = info.as_ref().and_then(|i| i.engine.clone());
    d.expect_class = db.instance_class.clone().or_else(|| info.and_then(|i| i.class));
    d.source = Some(Source::DrSide {
        resource: on_dr.id.clone(),
        snapshot: resource_name("lbfbs", &exec.execution, &db.id),
        taken_at: None,
    });
    d.reason = format!(
        "failback: a fresh snapshot of the DR-side database {} copied to {}",
        on_dr.id, plan.source_region
    );
    d.phase = Phase::Chosen;
    Ok(())
}

/// A failover first keeps what the source still has: a pre-failover recovery point of
/// database `i`.
async fn keep_pre_failover_point(
    deps: &Deps,
    plan: &DrPlan,
    exec: &mut DrExecution,
    i: usize,
) -> Result<(), FunctionError> {
    let db = exec.databases[i].db.clone();
    let name = resource_name("lbpre", &exec.execution, &db.id);
    let exists = deps
        .snapshots
        .describe_snapshot(&plan.source_region, db.kind, &name)
        .await?
        .is_some();
    if !exists {
        let resource = ResourceRef {
            kind: db.kind,
            id: db.id.clone(),
            arn: db.arn.clone(),
            region: plan.source_region.clone(),
        };
        deps.snapshots
            .create_snapshot(&resource, &name, &lifeboat_tags(exec))
            .await?;
    }
    exec.databases[i].pre_failover_snapshot = Some(name);
    Ok(())
}
