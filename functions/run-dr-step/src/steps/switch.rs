//! The endpoint switch, and a failback's quiesce and resume of writes.

use lifeboat::FunctionError;
use lifeboat_domain::dr::{Action, DrExecution, DrPlan, Mode, Undo};

use super::{StepResult, internal, save};
use crate::Deps;

pub(super) async fn switch(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> StepResult {
    if exec.mode == Mode::Drill {
        return Ok((true, "drill: production endpoints untouched".into()));
    }
    // From here on the recovered databases are production's (pointed at by this step, or
    // by hand when the plan switches nothing): recorded before the first change, so no
    // later failure deletes them.
    if exec.switched_at.is_none() {
        exec.switched_at = Some(deps.clock.now());
        save(deps, exec).await?;
    }
    let Some(sw) = &plan.switch else {
        return Ok((
            true,
            "no endpoint switch configured: point the applications at the recovered databases".into(),
        ));
    };
    let mut done = Vec::new();
    for (name, db) in &sw.parameters {
        let endpoint = parameter_target(plan, exec, name, db)?;
        let registered = exec
            .compensations
            .iter()
            .any(|c| matches!(&c.undo, Undo::RestoreParameter { name: n, .. } if n == name));
        if !registered {
            let previous = deps.parameters.get(&sw.region, name).await?;
            exec.will_undo(
                Action::Switch,
                Undo::RestoreParameter {
                    region: sw.region.clone(),
                    name: name.clone(),
                    previous,
                },
            );
            save(deps, exec).await?;
        }
        deps.parameters.put(&sw.region, name, &endpoint).await?;
        note_switched(exec, format!("parameter {name} → {endpoint}"));
        done.push(format!("{name} → {endpoint}"));
    }
    if let Some(zone) = &sw.hosted_zone_id {
        for (name, db) in &sw.records {
            let endpoint = exec
                .databases
                .iter()
                .find(|d| &d.db.id == db)
                .and_then(|d| d.endpoint.clone())
                .ok_or_else(|| internal(format!("{db}: no endpoint to point {name} at")))?;
            let registered = exec
                .compensations
                .iter()
                .any(|c| matches!(&c.undo, Undo::RestoreRecord { name: n, .. } if n == name));
            if !registered {
                let previous = deps.dns.cname(zone, name).await?;
                exec.will_undo(
                    Action::Switch,
                    Undo::RestoreRecord {
                        zone: zone.clone(),
                        name: name.clone(),
                        previous,
                        ttl: sw.ttl,
                    },
                );
                save(deps, exec).await?;
            }
            deps.dns.upsert_cname(zone, name, &endpoint, sw.ttl).await?;
            // Read back: the switch counts only once DNS says so.
            let now_points_at = deps.dns.cname(zone, name).await?;
            if now_points_at.as_deref() != Some(endpoint.as_str()) {
                return Err(internal(format!(
                    "{name} reads back as {now_points_at:?} after pointing it at {endpoint}"
                )));
            }
            note_switched(exec, format!("DNS record {name} → {endpoint}"));
            done.push(format!("{name} → {endpoint}"));
        }
    }
    if exec.mode == Mode::Failback {
        done.extend(resume_writes(deps, plan, exec).await?);
    }
    Ok((true, format!("switched {}", done.join(", "))))
}

/// What the switch points parameter `name` at for `db`: the recovered database's endpoint,
/// or a table's restored name (a failback: the original table's).
fn parameter_target(plan: &DrPlan, exec: &DrExecution, name: &str, db: &str) -> Result<String, FunctionError> {
    exec.databases
        .iter()
        .find(|d| d.db.id == db)
        .and_then(|d| d.endpoint.clone())
        .or_else(|| {
            exec.tables
                .iter()
                .find(|t| t.table.name == db)
                .map(|t| t.target_name.clone())
        })
        // Failback: applications go back to the original table.
        .or_else(|| {
            plan.tables
                .iter()
                .find(|t| exec.mode == Mode::Failback && t.name == db)
                .map(|t| t.name.clone())
        })
        .ok_or_else(|| internal(format!("{db}: no endpoint or table to switch {name} to")))
}

/// Failback: points the plan's quiesce parameters and records at the values that stop
/// writes to the DR side (each change's undo recorded first: a failure before the switch
/// puts the DR side back in service), reads them back, and records when the writes are
/// taken to have stopped (after the settle time).
pub(super) async fn quiesce(
    deps: &Deps,
    plan: &DrPlan,
    exec: &mut DrExecution,
    action: Action,
) -> Result<String, FunctionError> {
    let (sw, q) = plan
        .switch
        .as_ref()
        .and_then(|sw| sw.quiesce.as_ref().map(|q| (sw, q)))
        .ok_or_else(|| FunctionError::misconfigured("failback needs switch.quiesce"))?;
    let mut done = Vec::new();
    for (name, value) in &q.parameters {
        let registered = exec
            .compensations
            .iter()
            .any(|c| matches!(&c.undo, Undo::RestoreParameter { name: n, .. } if n == name));
        if !registered {
            let previous = deps.parameters.get(&sw.region, name).await?;
            exec.will_undo(
                action,
                Undo::RestoreParameter {
                    region: sw.region.clone(),
                    name: name.clone(),
                    previous,
                },
            );
            save(deps, exec).await?;
        }
        deps.parameters.put(&sw.region, name, value).await?;
        let now_is = deps.parameters.get(&sw.region, name).await?;
        if now_is.as_deref() != Some(value.as_str()) {
            return Err(internal(format!(
                "{name} reads back as {now_is:?} after setting it to {value}"
            )));
        }
        done.push(format!("parameter {name} → {value}"));
    }
    for (name, value) in &q.records {
        let zone = sw
            .hosted_zone_id
            .as_deref()
            .ok_or_else(|| FunctionError::misconfigured("switch.quiesce.records need switch.hosted_zone_id"))?;
        let registered = exec
            .compensations
            .iter()
            .any(|c| matches!(&c.undo, Undo::RestoreRecord { name: n, .. } if n == name));
        if !registered {
            let previous = deps.dns.cname(zone, name).await?;
            exec.will_undo(
                action,
                Undo::RestoreRecord {
                    zone: zone.to_owned(),
                    name: name.clone(),
                    previous,
                    ttl: sw.ttl,
                },
            );
            save(deps, exec).await?;
        }
        deps.dns.upsert_cname(zone, name, value, sw.ttl).await?;
        let now_is = deps.dns.cname(zone, name).await?;
        if now_is.as_deref() != Some(value.as_str()) {
            return Err(internal(format!(
                "{name} reads back as {now_is:?} after pointing it at {value}"
            )));
        }
        done.push(format!("DNS record {name} → {value}"));
    }
    let now = deps.clock.now();
    let settle = chrono::Duration::from_std(q.settle).unwrap_or_else(|_| chrono::Duration::zero());
    exec.quiesced_at = Some(now);
    exec.writes_stopped_at = Some(now + settle);
    let note = format!(
        "failback: writes to the DR side stopped at {now} ({}); its snapshot waits {} for them to settle",
        done.join(", "),
        humantime::format_duration(q.settle)
    );
    exec.checks.push(note.clone());
    save(deps, exec).await?;
    Ok(note)
}

/// Failback, after the switch: the quiesce entries the switch did not repoint (a
/// read-only flag, a maintenance record) go back to what they were before the quiesce.
async fn resume_writes(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> Result<Vec<String>, FunctionError> {
    let Some((sw, q)) = plan.switch.as_ref().and_then(|sw| sw.quiesce.as_ref().map(|q| (sw, q))) else {
        return Ok(Vec::new());
    };
    let mut done = Vec::new();
    for name in q.parameters.keys().filter(|n| !sw.parameters.contains_key(*n)) {
        let before = exec.compensations.iter().find_map(|c| match &c.undo {
            Undo::RestoreParameter { name: n, previous, .. } if n == name => Some(previous.clone()),
            _ => None,
        });
        match before {
            Some(Some(v)) => deps.parameters.put(&sw.region, name, &v).await?,
            Some(None) => deps.parameters.delete(&sw.region, name).await?,
            None => continue,
        }
        note_switched(exec, format!("parameter {name} → as before the quiesce"));
        done.push(format!("{name} restored"));
    }
    if let Some(zone) = &sw.hosted_zone_id {
        for name in q.records.keys().filter(|n| !sw.records.contains_key(*n)) {
            let before = exec.compensations.iter().find_map(|c| match &c.undo {
                Undo::RestoreRecord { name: n, previous, .. } if n == name => Some(previous.clone()),
                _ => None,
            });
            match before {
                Some(Some(v)) => deps.dns.upsert_cname(zone, name, &v, sw.ttl).await?,
                Some(None) => {
                    if let Some(current) = deps.dns.cname(zone, name).await? {
                        deps.dns.delete_cname(zone, name, &current, sw.ttl).await?;
                    }
                }
                None => continue,
            }
            note_switched(exec, format!("DNS record {name} → as before the quiesce"));
            done.push(format!("{name} restored"));
        }
    }
    Ok(done)
}

fn note_switched(exec: &mut DrExecution, line: String) {
    if !exec.switched.contains(&line) {
        exec.switched.push(line);
    }
}
