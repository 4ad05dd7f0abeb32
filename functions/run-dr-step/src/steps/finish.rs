//! The finish: measurement, report, site record, the lease given back.

use chrono::{DateTime, Utc};
use lifeboat::FunctionError;
use lifeboat_domain::dr::{Action, DrExecution, DrPlan, ExecStatus, Mode};
use lifeboat_domain::{Alert, AlertKind, ResourceKind, Severity};
use lifeboat_ports::dr::Site;
use lifeboat_ports::dr::{ActiveSide, SiteDb};
use serde_json::{Value, json};

use super::{StepResult, internal, release};
use crate::Deps;

pub(super) fn finish_output(exec: &DrExecution, plan: &DrPlan) -> Value {
    let m = exec.measurement.clone().unwrap_or_else(|| exec.measure(plan));
    let notice = (exec.mode != Mode::Drill).then(|| {
        let alert = Alert::new(
            AlertKind::DrCompleted,
            Severity::Info,
            format!("{} of plan {} completed", exec.mode, exec.plan),
            format!("{}#{}", exec.plan, exec.execution),
            exec.finished_at.unwrap_or(exec.triggered_at),
        )
        .detail("plan", &exec.plan)
        .detail("execution", &exec.execution)
        .detail("report", exec.report_key.clone().unwrap_or_default());
        serde_json::to_string(&alert).unwrap_or_default()
    });
    let failback = exec.failback_window().map_or_else(String::new, |w| {
        format!(
            "; failback: data loss window {}s, outage {}s",
            w.data_loss_window_secs.map_or_else(|| "?".into(), |v| v.to_string()),
            w.outage_secs.map_or_else(|| "?".into(), |v| v.to_string()),
        )
    });
    json!({
        "ready": true,
        "wait_seconds": 1,
        "summary": format!(
            "{} {}: RTO {}s (target {}s), RPO {}s (target {}s){failback}",
            exec.mode, exec.execution,
            m.rto_secs.map_or_else(|| "?".into(), |v| v.to_string()), m.rto_target_secs,
            m.rpo_secs.map_or_else(|| "?".into(), |v| v.to_string()), m.rpo_target_secs,
        ),
        "status": exec.status,
        "report": exec.report_key,
        "measurement": m,
        "failback": exec.failback_window(),
        "notice": notice,
    })
}

pub(super) async fn write_report(deps: &Deps, exec: &mut DrExecution) -> Result<(), FunctionError> {
    let key = format!("dr-reports/{}/{}.json", exec.plan, exec.execution);
    // The report names its own location.
    exec.report_key = Some(key.clone());
    let body = serde_json::to_vec_pretty(&exec.report()).map_err(|e| internal(e.to_string()))?;
    let location = deps.reports.put(&key, &body).await?;
    exec.report_key = Some(location);
    Ok(())
}

/// Where production runs once `exec`'s switch is done: the DR side after a failover (its
/// databases and tables), the source side after a failback; `None` for a drill.
pub(super) fn site_after(exec: &DrExecution, now: DateTime<Utc>) -> Option<Site> {
    let databases = exec.databases.iter().map(|d| SiteDb {
        db: d.db.id.clone(),
        kind: d.db.kind,
        region: d.target_region.clone(),
        id: d.target_id.clone(),
        made_from: None,
    });
    let (active, databases): (ActiveSide, Vec<SiteDb>) = match exec.mode {
        Mode::Drill => return None,
        Mode::Failover => (
            ActiveSide::Dr,
            databases
                .chain(exec.tables.iter().map(|t| SiteDb {
                    db: t.table.name.clone(),
                    kind: ResourceKind::DynamoDbTable,
                    region: t.target_region.clone(),
                    id: t.target_name.clone(),
                    made_from: t.import_arn.clone().or_else(|| t.backup_arn.clone()),
                }))
                .collect(),
        ),
        Mode::Failback => (ActiveSide::Source, databases.collect()),
    };
    Some(Site {
        active,
        since: now,
        execution: exec.execution.clone(),
        databases,
    })
}

pub(super) async fn finish(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution, run_id: &str) -> StepResult {
    let now = deps.clock.now();
    let m = exec.measure(plan);
    exec.measurement = Some(m.clone());
    exec.status = ExecStatus::Succeeded;
    exec.finished_at = Some(now);
    // The finish step's own timing is in the report too.
    exec.end(Action::Finish, now, now, "finished");
    let recorded = async {
        write_report(deps, exec).await?;
        if let Some(site) = site_after(exec, now) {
            deps.store.put_site(&plan.name, &site).await?;
        }
        Ok::<(), FunctionError>(())
    }
    .await;
    if let Err(e) = recorded {
        // Not finished: the failed step is recorded as such, never as a success.
        exec.status = ExecStatus::Running;
        exec.finished_at = None;
        return Err(e);
    }
    let breaches = m.breaches();
    if !breaches.is_empty() {
        let alert = Alert::new(
            AlertKind::DrTargetMissed,
            Severity::High,
            format!(
                "{} of plan {} missed its targets: {}",
                exec.mode,
                plan.name,
                breaches.join(", ")
            ),
            format!("{}#{}", plan.name, exec.execution),
            now,
        )
        .location(&plan.dr_region)
        .detail("plan", &plan.name)
        .detail("execution", &exec.execution)
        .detail("report", exec.report_key.clone().unwrap_or_default());
        deps.alerter().raise_or_log(alert, run_id).await;
    }
    super::holds::release(deps, exec).await;
    release(deps, &plan.name, &exec.execution).await;
    Ok((
        true,
        format!("report at {}", exec.report_key.clone().unwrap_or_default()),
    ))
}
