//! The pre-check: the confirmation token, the lease, and every check the plan asks for
//! before anything is changed.

use chrono::{DateTime, Utc};
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::ResourceKind;
use lifeboat_domain::confirm::{self, TokenError};
use lifeboat_domain::dr::{Action, DrExecution, DrPlan, ExecStatus, Mode, Refusal, lease_name};
use lifeboat_ports::PortError;
use lifeboat_ports::dr::ActiveSide;
use serde_json::{Value, json};

use super::points::{newest_data_run, newest_table_backup, newest_table_copy, newest_verified_point};
use super::{LEASE_HOURS, age_text, internal, load_plan, release, step_output};
use crate::Deps;
use crate::request::StepRequest;

pub(crate) async fn precheck(deps: &Deps, req: &StepRequest) -> Result<Value, FunctionError> {
    let now = deps.clock.now();
    let input = &req.input;
    let plan = load_plan(deps, &input.plan).await?;
    // A retried pre-check finds its record (read once): a refused execution is refused
    // again, the same way.
    let existing = deps.store.get_execution(&plan.name, &input.execution).await?;
    if let Some(exec) = existing.as_ref().filter(|e| e.status == ExecStatus::Refused) {
        return Err(refusal_error(exec));
    }

    // Failover and failback change production: a valid confirmation token first, before
    // anything else is touched. It is bound to the plan's content (a plan changed since the
    // token was issued is refused) and names who confirmed.
    let claims = if req.mode.needs_confirmation() {
        let Some(token) = input.token.as_deref() else {
            let why = format!("{} needs a confirmation token; refused before any change", req.mode);
            return Err(refuse(deps, req, &plan, Vec::new(), ErrorType::Invalid, vec![why]).await);
        };
        let key = deps
            .signing
            .key()
            .await
            .map_err(|e| FunctionError::misconfigured(format!("confirmation key: {e}")))?;
        let digest = confirm::dr_request_digest(&plan, req.mode.as_str())
            .map_err(|e| internal(format!("digest of plan {}: {e}", plan.name)))?;
        match confirm::verify_issued(&key, token, &digest, now) {
            // A plan that requires approval takes only a token issued after a second
            // person approved (the API hands such tokens out; they carry the approval).
            Ok(claims) if claims.approval.is_none() && plan.approval.as_ref().is_some_and(|r| r.required) => {
                let why = format!(
                    "{}: plan {} requires a second person's approval and the token carries none; refused before any change",
                    req.mode, plan.name
                );
                return Err(refuse(deps, req, &plan, Vec::new(), ErrorType::Invalid, vec![why]).await);
            }
            Ok(claims) => Some(claims),
            Err(e) => {
                let why = if e == TokenError::WrongRequest {
                    format!("{e} (or the plan changed since it was issued)")
                } else {
                    e.to_string()
                };
                let why = format!("{}: {why}; refused before any change", req.mode);
                return Err(refuse(deps, req, &plan, Vec::new(), ErrorType::Invalid, vec![why]).await);
            }
        }
    } else {
        None
    };

    let output = |exec: &DrExecution| {
        json!({
            "plan": exec.plan,
            "execution": exec.execution,
            "mode": exec.mode,
            "step": step_output(exec, &plan, true, format!("pre-checks passed: {}", exec.checks.join("; "))),
        })
    };
    // A retried pre-check finds its record. A record is only ever written after its token
    // was consumed, so finding it means the token is spent; it must be this token.
    if let Some(exec) = existing {
        if let Some(claims) = &claims
            && exec.token_nonce.as_deref() != Some(claims.nonce.as_str())
        {
            return Err(FunctionError::invalid(format!(
                "{}: execution {} was started with another confirmation token; refused",
                req.mode, input.execution
            )));
        }
        return Ok(output(&exec));
    }

    let leased = deps
        .catalog
        .acquire_lease(
            &lease_name(&plan.name),
            &input.execution,
            now + chrono::Duration::hours(LEASE_HOURS),
            now,
        )
        .await?;
    if !leased {
        let why = format!(
            "plan {}: another DR execution is running (it holds the lease); this start is refused",
            plan.name
        );
        return Err(refuse(deps, req, &plan, Vec::new(), ErrorType::Conflict, vec![why]).await);
    }
    match precheck_leased(deps, req, &plan, claims.as_ref(), now).await {
        Ok(exec) => Ok(output(&exec)),
        Err(e) => {
            // Nothing was changed: give the plan back.
            release(deps, &plan.name, &input.execution).await;
            Err(e)
        }
    }
}

/// Records that the pre-check refused this execution (so that it is listed, with its
/// reasons, like any other) and answers the refusal. Nothing was changed. A record that
/// cannot be written is logged: the refusal stands either way.
async fn refuse(
    deps: &Deps,
    req: &StepRequest,
    plan: &DrPlan,
    checks: Vec<String>,
    kind: ErrorType,
    reasons: Vec<String>,
) -> FunctionError {
    let now = deps.clock.now();
    let refusal = Refusal {
        kind: kind.as_str().to_owned(),
        reasons,
    };
    let mut exec = DrExecution::refused(plan, &req.input.execution, req.mode, now, checks, refusal);
    exec.reference_time = req.input.failure_time.unwrap_or(now);
    if let Err(e) = super::finish::write_report(deps, &mut exec).await {
        tracing::warn!(execution = %req.input.execution, error = %e, "could not write the refused execution's report");
    }
    let recorded = match deps.store.insert_execution(&exec).await {
        // Recorded first by another attempt: that record is the refusal of record.
        Err(PortError::Conflict(_)) => match deps.store.get_execution(&plan.name, &req.input.execution).await {
            Ok(Some(existing)) if existing.status == ExecStatus::Refused => existing,
            _ => exec,
        },
        Err(e) => {
            tracing::warn!(execution = %req.input.execution, error = %e, "could not record the refused execution");
            exec
        }
        Ok(()) => exec,
    };
    refusal_error(&recorded)
}

/// The error a refused execution answers with, every reason in its message.
fn refusal_error(exec: &DrExecution) -> FunctionError {
    let (kind, reasons) = exec.refusal.as_ref().map_or((ErrorType::Internal, String::new()), |r| {
        let kind = match r.kind.as_str() {
            "Invalid" => ErrorType::Invalid,
            "Conflict" => ErrorType::Conflict,
            _ => ErrorType::Misconfigured,
        };
        (kind, r.reasons.join("; "))
    });
    let message = if kind == ErrorType::Misconfigured {
        format!("pre-checks failed: {reasons}")
    } else {
        reasons
    };
    FunctionError::new(kind, message)
}

async fn precheck_leased(
    deps: &Deps,
    req: &StepRequest,
    plan: &DrPlan,
    claims: Option<&confirm::Claims>,
    now: DateTime<Utc>,
) -> Result<DrExecution, FunctionError> {
    let input = &req.input;
    let site = deps.store.site(&plan.name).await?;
    let on_dr = site.as_ref().is_some_and(|s| s.active == ActiveSide::Dr);
    let wrong_side = match req.mode {
        Mode::Failback if !on_dr => Some(format!(
            "plan {}: production is on the source side, which this plan's site does not allow failing back from; nothing to fail back",
            plan.name
        )),
        Mode::Failover if on_dr => Some(format!(
            "plan {}: already failed over, which this plan's site does not allow failing over from; fail back first",
            plan.name
        )),
        _ => None,
    };
    if let Some(why) = wrong_side {
        return Err(refuse(deps, req, plan, Vec::new(), ErrorType::Conflict, vec![why]).await);
    }

    let mut f = Findings::default();
    check_databases(deps, req, plan, now, &mut f).await?;
    check_tables(deps, req, plan, now, &mut f).await?;
    check_data(deps, plan, now, &mut f).await?;
    check_keys_and_capacity(deps, req, plan, &mut f).await?;
    let Findings { checks, problems } = f;
    if !problems.is_empty() {
        return Err(refuse(deps, req, plan, checks, ErrorType::Misconfigured, problems).await);
    }

    // The token is spent before the execution exists: every later step (all of which read
    // this record) runs on a consumed token. A crash between the two leaves the token spent
    // and no execution: the retry is refused and nothing was changed (ask for a new token).
    if let Some(claims) = claims {
        match lifeboat::confirm::consume(deps.catalog.as_ref(), claims, now).await {
            Ok(()) => {}
            Err(TokenError::Reused) => {
                let why = format!(
                    "{}: the confirmation token was already used; refused before any change",
                    req.mode
                );
                return Err(refuse(deps, req, plan, checks, ErrorType::Invalid, vec![why]).await);
            }
            Err(e) => return Err(FunctionError::retryable(e.to_string())),
        }
    }
    let mut exec = DrExecution::new(plan, &input.execution, req.mode, now, input.failure_time.unwrap_or(now));
    // Who confirmed, from the verified token (never from the step's input).
    exec.principal = claims.map(|c| c.principal.clone());
    exec.approved_by = claims.and_then(|c| c.approval.as_ref()).map(|a| a.approved_by.clone());
    exec.token_nonce = claims.map(|c| c.nonce.clone());
    exec.checks = checks;
    exec.begin(Action::Precheck, now);
    exec.end(Action::Precheck, now, deps.clock.now(), "passed");
    match deps.store.insert_execution(&exec).await {
        Ok(()) => {}
        Err(PortError::Conflict(_)) => {
            return deps
                .store
                .get_execution(&plan.name, &input.execution)
                .await?
                .ok_or_else(|| internal("execution record vanished"));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(exec)
}

/// What the pre-check found: what passed, and what refuses the start.
#[derive(Debug, Default)]
pub(super) struct Findings {
    pub(super) checks: Vec<String>,
    pub(super) problems: Vec<String>,
}

/// The databases: a verified recovery point within the RPO in the DR region, the class of
/// a restored Aurora cluster's writer; for a failback, the source region answering.
pub(super) async fn check_databases(
    deps: &Deps,
    req: &StepRequest,
    plan: &DrPlan,
    now: DateTime<Utc>,
    f: &mut Findings,
) -> Result<(), FunctionError> {
    for db in &plan.databases {
        // Failback needs the source region healthy again.
        if req.mode == Mode::Failback {
            match deps.databases.describe(&plan.source_region, db.kind, &db.id).await {
                Ok(_) => f
                    .checks
                    .push(format!("{}: source region {} answers", db.id, plan.source_region)),
                Err(e) => f.problems.push(format!(
                    "{}: source region {} is not healthy: {e}",
                    db.id, plan.source_region
                )),
            }
            continue;
        }
        let replica = req.mode == Mode::Failover && db.read_replica.is_some();
        // The newest verified copy in the DR region, read once: the RPO check and the
        // writer class of a restored Aurora cluster both use it.
        let aurora_restore = db.kind == ResourceKind::AuroraCluster && db.instance_class.is_none() && !replica;
        let newest = if (plan.prechecks.recovery_point || aurora_restore) && !replica {
            newest_verified_point(deps, &db.arn, &plan.dr_region).await?
        } else {
            None
        };
        if plan.prechecks.recovery_point && !replica {
            match newest.as_ref().map(|rp| (rp.id.to_string(), rp.created_at)) {
                Some((id, taken)) => {
                    let age = (now - taken).to_std().unwrap_or_default();
                    if age > plan.rpo {
                        f.problems.push(format!(
                            "{}: newest verified recovery point in {} ({id}) is {} old, older than the RPO {}",
                            db.id,
                            plan.dr_region,
                            humantime::format_duration(std::time::Duration::from_secs(age.as_secs())),
                            humantime::format_duration(plan.rpo)
                        ));
                    } else {
                        f.checks
                            .push(format!("{}: verified recovery point {id} in {}", db.id, plan.dr_region));
                    }
                }
                None => f
                    .problems
                    .push(format!("{}: no verified recovery point in {}", db.id, plan.dr_region)),
            }
        }
        // A restored Aurora cluster needs a writer, and its class: the plan's, the
        // source writer's (read now), or the one recorded with the snapshot. A failover
        // whose source cannot be read and whose copy records none is refused now rather
        // than halfway.
        if aurora_restore {
            let now_readable = deps
                .databases
                .describe(&plan.source_region, db.kind, &db.id)
                .await
                .ok()
                .flatten()
                .and_then(|i| i.class)
                .is_some();
            let recorded = newest.and_then(|rp| rp.writer_class().map(str::to_owned));
            match (now_readable, recorded) {
                (true, _) => {}
                (false, Some(class)) => f.checks.push(format!(
                    "{}: writer class {class}, as recorded with the recovery point (the source cannot be read)",
                    db.id
                )),
                (false, None) => f.problems.push(format!(
                    "{}: no instance class for the restored cluster's writer: the source's writer cannot be read and the recovery point records none; set instance_class in the plan",
                    db.id
                )),
            }
        }
    }
    Ok(())
}

pub(super) async fn check_tables(
    deps: &Deps,
    req: &StepRequest,
    plan: &DrPlan,
    now: DateTime<Utc>,
    f: &mut Findings,
) -> Result<(), FunctionError> {
    // DynamoDB tables (drills and failovers restore them): the newest usable backup taken
    // by the event (the failure time, or now) must exist and be within the RPO of it.
    if plan.prechecks.recovery_point && req.mode != Mode::Failback {
        let event = req.input.failure_time.unwrap_or(now);
        for t in &plan.tables {
            let copy = newest_table_copy(deps, t, &plan.dr_region, event).await?;
            let point = match copy {
                Some(rp) => Some(rp),
                // A failover comes back in the DR region: only a copy there will do.
                None if req.mode == Mode::Failover => {
                    f.problems.push(format!(
                        "table {}: no usable copy in {} (a table's copy is an export of it: give its policy a copy to {} and configure TABLE_EXPORT_BUCKET)",
                        t.name, plan.dr_region, plan.dr_region
                    ));
                    continue;
                }
                None => {
                    f.checks.push(format!(
                        "table {}: no copy in {}: the drill restores its native backup in {} and does not prove a failover",
                        t.name, plan.dr_region, t.region
                    ));
                    newest_table_backup(deps, t, event).await?
                }
            };
            match point {
                None => f.problems.push(format!(
                    "table {}: no usable backup in {} (native backups stay in the table's region)",
                    t.name, t.region
                )),
                Some(rp) => {
                    let age = (event - rp.created_at).to_std().unwrap_or_default();
                    if age > plan.rpo {
                        f.problems.push(format!(
                            "table {}: newest backup {} is {} old, older than the RPO {}",
                            t.name,
                            rp.snapshot_name,
                            age_text(event - rp.created_at),
                            humantime::format_duration(plan.rpo)
                        ));
                    } else {
                        f.checks.push(format!(
                            "table {}: backup {} in {}",
                            t.name, rp.snapshot_name, rp.location
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

pub(super) async fn check_data(
    deps: &Deps,
    plan: &DrPlan,
    now: DateTime<Utc>,
    f: &mut Findings,
) -> Result<(), FunctionError> {
    // S3 data: the newest backup run must exist, be verified and be within the RPO (a
    // failback reads the same backups: they live in the backup region).
    if plan.prechecks.recovery_point {
        for d in &plan.data {
            let what = format!("s3://{}/{}", d.bucket, d.prefix);
            if deps.backup.is_none() {
                f.problems
                    .push(format!("{what}: S3 backups are not configured for DR (BACKUP_REGION)"));
                continue;
            }
            match newest_data_run(deps, plan, d, now).await? {
                None => f.problems.push(format!("{what}: no completed backup run")),
                Some(rp) if rp.verified_at.is_none() => f.problems.push(format!(
                    "{what}: the newest backup run {} is not verified (run verify-backups)",
                    rp.id
                )),
                Some(rp) => {
                    let age = (now - rp.created_at).to_std().unwrap_or_default();
                    if age > plan.rpo {
                        f.problems.push(format!(
                            "{what}: newest verified backup run {} is {} old, older than the RPO {}",
                            rp.id,
                            humantime::format_duration(std::time::Duration::from_secs(age.as_secs())),
                            humantime::format_duration(plan.rpo)
                        ));
                    } else {
                        f.checks.push(format!("{what}: verified backup run {}", rp.id));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The KMS keys, a failback's quiesce, the switch's scope, the subnet group and the quotas.
pub(super) async fn check_keys_and_capacity(
    deps: &Deps,
    req: &StepRequest,
    plan: &DrPlan,
    f: &mut Findings,
) -> Result<(), FunctionError> {
    if let Some(key) = &plan.prechecks.kms_key_id {
        if deps.keys.usable(&plan.dr_region, key).await? {
            f.checks.push(format!("KMS key usable in {}", plan.dr_region));
        } else {
            f.problems
                .push(format!("KMS key {key} is missing or disabled in {}", plan.dr_region));
        }
    }
    // The failback copies the DR-side databases' snapshots to the source region (a plan
    // of tables and data alone copies nothing).
    if req.mode == Mode::Failback && !plan.databases.is_empty() {
        match &plan.prechecks.source_kms_key_id {
            Some(key) if deps.keys.usable(&plan.source_region, key).await? => {
                f.checks.push(format!("KMS key usable in {}", plan.source_region));
            }
            Some(key) => f.problems.push(format!(
                "KMS key {key} is missing or disabled in {}",
                plan.source_region
            )),
            None => f
                .problems
                .push("failback needs prechecks.source_kms_key_id (the copy to the source region)".into()),
        }
        // No write may be lost: the DR side stops taking writes before its final snapshot.
        if plan.switch.as_ref().and_then(|s| s.quiesce.as_ref()).is_none() {
            f.problems.push(
                "failback needs switch.quiesce (how writes to the DR side stop before its final snapshot: a maintenance endpoint or a read-only parameter); without it every write made after the snapshot would be lost".into(),
            );
        }
    }
    // The switch writes only what this deployment's role may write (a drill checks it too:
    // the drill is where a failover's problems should show).
    if let Some(sw) = &plan.switch {
        f.problems.extend(deps.switch_scope.problems(sw));
    }
    if let Some(group) = &plan.prechecks.subnet_group {
        if deps.databases.subnet_group_exists(&plan.dr_region, group).await? {
            f.checks.push(format!("subnet group {group} exists"));
        } else {
            f.problems
                .push(format!("DB subnet group {group} does not exist in {}", plan.dr_region));
        }
    }
    if plan.prechecks.quotas {
        let quotas = deps.databases.quotas(&plan.dr_region).await?;
        for (name, need) in [
            (
                "DBInstances",
                plan.databases
                    .iter()
                    .filter(|d| d.kind == ResourceKind::RdsInstance)
                    .count(),
            ),
            (
                "DBClusters",
                plan.databases
                    .iter()
                    .filter(|d| d.kind == ResourceKind::AuroraCluster)
                    .count(),
            ),
        ] {
            let need = i64::try_from(need).unwrap_or(i64::MAX);
            if let Some((_, used, max)) = quotas.iter().find(|(n, _, _)| n == name) {
                if used + need > *max {
                    f.problems
                        .push(format!("quota {name}: {used} of {max} used, {need} more needed"));
                } else {
                    f.checks.push(format!("quota {name}: {used}+{need} of {max}"));
                }
            }
        }
    }
    Ok(())
}
