//! Restores: preview + confirmation token, confirm, progress, finish, rollback.
//!
//! `POST /restores` checks everything and answers with a preview and a token bound to
//! the restore (its digest), the caller and an expiry. Nothing touches RDS until
//! `POST /restores/{id}/confirm` brings the token back: it is verified, then consumed
//! (single use, conditional write) right before the first change.
//!
//! A restore to a new instance (operator) runs RestoreDBInstanceFromDBSnapshot under a
//! new identifier. A restore over an existing instance (admin) never deletes it: the
//! target is renamed to `<target>-lbpre-<short id>` (its data and automated backups go
//! with it), and once its identifier is free the recovery point is restored under it.
//! The original is kept until the restore is finished (`POST /restores/{id}/finish`: it is
//! deleted with a final snapshot, its automated backups kept) or rolled back
//! (`POST /restores/{id}/rollback`: the restored instance is renamed aside and the
//! original renamed back). RDS takes minutes for each rename and restore:
//! `POST /restores/{id}/advance` takes the next step once RDS is ready for it.
//!
//! The lifecycle is a state machine in the restore record ([`RestoreState`]); each step is
//! decided by [`next_restore_step`] from the record and what RDS shows, and claimed by a
//! conditional write before it is carried out, so a replayed request does nothing twice.

use chrono::Utc;
use lifeboat::restores::{RestoreError, Restores};
use lifeboat_domain::RecoveryPointId;
use lifeboat_domain::confirm::{self, TokenError};
use lifeboat_domain::ids::is_rds_identifier;
use lifeboat_domain::restore::{
    RestoreRecord, RestoreState, RestoreStep, SwapObserved, final_snapshot_name, next_restore_step, preserved_name,
    set_aside_name,
};
use lifeboat_ports::PortError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::routes::approvals;

mod placement;
use crate::{ApiResponse, Call, Deps, Problem, Role, query};
use lifeboat_domain::approval::{ApprovalRule, ApprovalSubject};
use placement::{PlacementRequest, check_target, placement, placement_view, restores_into_cluster};

/// Typical minutes for RDS to restore an instance from a snapshot (RDS publishes no
/// estimate; it grows with the allocated storage).
pub const ESTIMATED_RESTORE_MINUTES: u32 = 20;
/// Extra minutes an overwrite needs to rename the original out of the way.
pub const ESTIMATED_RENAME_MINUTES: u32 = 5;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PreviewRequest {
    recovery_point: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    overwrite: bool,
    #[serde(default)]
    placement: PlacementRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmRequest {
    token: String,
}

/// What the token is bound to: every fact the confirm step acts on.
fn digest(r: &RestoreRecord) -> String {
    confirm::request_digest(&json!({
        "restore": r.id,
        "recoveryPoint": r.recovery_point.as_str(),
        "region": r.region.as_str(),
        "snapshot": r.snapshot_name,
        "target": r.target,
        "overwrite": r.overwrite,
        "requestedBy": r.requested_by,
        "settings": r.settings,
        "writer": r.writer,
    }))
}

fn view(r: &RestoreRecord) -> Value {
    json!({
        "id": r.id,
        "recoveryPoint": r.recovery_point.as_str(),
        "region": r.region.as_str(),
        "snapshot": r.snapshot_name,
        "target": r.target,
        "overwrite": r.overwrite,
        "placement": placement_view(&r.settings),
        "writer": r.writer.as_ref().map(|w| json!({"instance": w.instance, "class": w.class})),
        "state": r.state,
        "approval": r.approval,
        "requestedBy": r.requested_by,
        "preservedAs": r.preserved_as,
        "setAsideAs": r.set_aside_as,
        "finalSnapshot": r.final_snapshot,
        "failure": r.failure,
        "estimatedMinutes": r.estimated_minutes,
        "createdAt": r.created_at,
        "updatedAt": r.updated_at,
    })
}

/// The approval rule of `policy` when it requires approval. A policy that is stored but
/// cannot be read leaves the question open: the restore is refused rather than let through.
pub(crate) async fn approval_rule(
    deps: &Deps,
    policy: &lifeboat_domain::PolicyName,
) -> Result<Option<ApprovalRule>, Problem> {
    let Some(stored) = deps
        .ports()
        .catalog
        .policy_document(policy.as_str())
        .await
        .map_err(|e| port(&e))?
    else {
        return Ok(None);
    };
    match lifeboat_domain::Policy::from_stored(policy.as_str(), &stored) {
        Ok(p) => Ok(p.approval.filter(|r| r.required)),
        Err(problems) => Err(Problem::conflict(format!(
            "policy {policy} is invalid ({}), so whether this request needs approval cannot be told; fix the policy first",
            problems.problems.join("; ")
        ))),
    }
}

/// The restore lifecycle over this deployment's restore records and RDS.
fn restores(deps: &Deps) -> Restores<'_> {
    Restores {
        store: deps.restores.as_ref(),
        rds: deps.rds.as_ref(),
        catalog: deps.ports().catalog.as_ref(),
        clock: deps.ports().clock.as_ref(),
    }
}

fn problem(e: RestoreError) -> Problem {
    match e {
        RestoreError::Changed => Problem::conflict("the restore changed meanwhile; read it again"),
        RestoreError::Port(e) => port(&e),
        RestoreError::Internal(cause) => Problem::internal(cause),
    }
}

fn port(e: &PortError) -> Problem {
    Problem::from_port(e)
}

fn needs_admin(r_overwrite: bool, role: Role) -> Result<(), Problem> {
    if r_overwrite && role < Role::Admin {
        return Err(Problem::forbidden(
            "a restore over an existing instance needs the admin role",
        ));
    }
    Ok(())
}

impl PreviewRequest {
    /// The recovery point asked for, or every problem of the request.
    fn check(&self) -> Result<RecoveryPointId, Problem> {
        let mut problem = Problem::bad_request("Invalid restore request");
        let id = RecoveryPointId::parse(&self.recovery_point)
            .map_err(|e| problem = problem.clone().with_error("recoveryPoint", e.to_string()))
            .ok();
        if let Some(t) = &self.target
            && !is_rds_identifier(t)
        {
            problem = problem.with_error(
                "target",
                "must be an RDS DB instance or cluster identifier (1-63 letters, digits, single hyphens, starting with a letter)",
            );
        }
        if self.overwrite && self.target.is_none() {
            problem = problem.with_error("target", "an overwrite names the instance it replaces");
        }
        id.filter(|_| problem.errors.is_empty()).ok_or(problem)
    }
}

/// What a previewed restore would do.
fn preview_view(record: &RestoreRecord, rp: &lifeboat_domain::RecoveryPoint) -> Value {
    json!({
        "recoveryPoint": record.recovery_point.as_str(),
        "resource": rp.resource.arn,
        "snapshot": record.snapshot_name,
        "region": record.region.as_str(),
        "tier": crate::routes::catalog::SNAPSHOT_TIER,
        "recoveryPointCreatedAt": rp.created_at,
        "target": record.target,
        "overwrite": record.overwrite,
        "preservedAs": record.overwrite.then(|| preserved_name(&record.target, &record.id)),
        "estimatedMinutes": record.estimated_minutes,
    })
}

pub async fn preview(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let r: PreviewRequest = call.req.parse()?;
    let id = r.check()?;
    needs_admin(r.overwrite, call.caller.role)?;
    let rp = deps
        .ports()
        .catalog
        .get(&id)
        .await
        .map_err(|e| port(&e))?
        .ok_or_else(|| Problem::not_found(format!("no recovery point {id}")))?;
    let cluster = restores_into_cluster(rp.resource.kind, r.overwrite)?;
    if !rp.is_restorable() {
        return Err(Problem::conflict(format!(
            "recovery point {id} is {} and cannot be restored",
            rp.status
        )));
    }
    let restore_id = uuid::Uuid::new_v4().to_string();
    let target = r.target.clone().unwrap_or_else(|| {
        let base: String = rp.resource.id.chars().take(45).collect();
        format!("{}-restore-{}", base.trim_end_matches('-'), &restore_id[..8])
    });
    check_target(deps, &rp.location, &target, cluster, r.overwrite).await?;
    let (settings, writer) = placement(deps, &r, &rp, &target, cluster).await?;
    let now = deps.now();
    let mut record = RestoreRecord {
        id: restore_id,
        recovery_point: id,
        region: rp.location.clone(),
        snapshot_name: rp.snapshot_name.clone(),
        target,
        overwrite: r.overwrite,
        requested_by: call.caller.principal.clone(),
        request_digest: String::new(),
        state: RestoreState::Previewed,
        preserved_as: None,
        set_aside_as: None,
        final_snapshot: None,
        failure: None,
        settings,
        writer,
        approval: None,
        estimated_minutes: ESTIMATED_RESTORE_MINUTES + if r.overwrite { ESTIMATED_RENAME_MINUTES } else { 0 },
        created_at: now,
        updated_at: now,
        version: 1,
    };
    record.request_digest = digest(&record);
    let preview = preview_view(&record, &rp);
    if record.overwrite
        && let Some(rule) = approval_rule(deps, &rp.policy).await?
    {
        // No token yet: a second person approves first (POST /approvals/{id}/approve), then
        // the requester takes the token (POST /approvals/{id}/token).
        let subject = ApprovalSubject::OverwriteRestore {
            restore: record.id.clone(),
            recovery_point: record.recovery_point.to_string(),
            target: record.target.clone(),
        };
        let approval = approvals::open(deps, call, subject, record.request_digest.clone(), &rule).await?;
        record.approval = Some(approval.id.clone());
        deps.restores.insert(&record).await.map_err(|e| port(&e))?;
        return ApiResponse::with_status(
            202,
            json!({
                "restore": view(&record),
                "preview": preview,
                "approval": approvals::view(&approval, now),
                "next": format!("a second person approves: POST /approvals/{}/approve; then POST /approvals/{}/token", approval.id, approval.id),
            }),
        );
    }
    let key = deps.key.key().await.map_err(|e| port(&e))?;
    let nonce = uuid::Uuid::new_v4().to_string();
    let (token, claims) = confirm::issue(
        &key,
        &record.request_digest,
        &record.requested_by,
        now,
        deps.admin.token_validity,
        &nonce,
    )
    .map_err(|e| Problem::internal(e.to_string()))?;
    deps.restores.insert(&record).await.map_err(|e| port(&e))?;
    ApiResponse::with_status(
        201,
        json!({
            "restore": view(&record),
            "preview": preview,
            "confirmationToken": token,
            "expiresAt": claims.expires_at,
        }),
    )
}

fn token_problem(e: &TokenError) -> Problem {
    match e {
        TokenError::Malformed => Problem::bad_request("Invalid confirmation token").with_error("token", e.to_string()),
        TokenError::BadSignature | TokenError::WrongRequest | TokenError::WrongCaller | TokenError::Expired(_) => {
            Problem::new(403, "Confirmation token refused").detail(format!("{e}; nothing was changed"))
        }
        TokenError::Reused => Problem::conflict(format!("{e}; nothing was changed")),
        TokenError::KeyTooShort | TokenError::ValidityTooLong | TokenError::Store(_) => {
            Problem::internal(e.to_string())
        }
    }
}

async fn load(deps: &Deps, call: &Call<'_>) -> Result<RestoreRecord, Problem> {
    let id = call.param("id");
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(Problem::bad_request("Invalid restore id").with_error("id", "must be a restore id (a UUID)"));
    }
    deps.restores
        .get(id)
        .await
        .map_err(|e| port(&e))?
        .ok_or_else(|| Problem::not_found(format!("no restore {id}")))
}

fn empty_body(call: &Call<'_>, what: &str) -> Result<(), Problem> {
    let body = call.req.json()?;
    if body.as_object().is_none_or(|m| !m.is_empty()) {
        return Err(Problem::bad_request(format!("Invalid {what} request"))
            .with_error("body", format!("a {what} takes no fields")));
    }
    Ok(())
}

pub async fn confirm(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let body: ConfirmRequest = call.req.parse()?;
    let record = load(deps, call).await?;
    needs_admin(record.overwrite, call.caller.role)?;
    if record.state != RestoreState::Previewed {
        return Err(Problem::conflict(format!(
            "restore {} is already confirmed ({}); nothing was changed",
            record.id,
            state_name(record.state)
        )));
    }
    let key = deps.key.key().await.map_err(|e| port(&e))?;
    let now = deps.now();
    let claims = confirm::verify(&key, &body.token, &digest(&record), &call.caller.principal, now)
        .map_err(|e| token_problem(&e))?;
    if let Some(approval) = &record.approval {
        approvals::approved(&claims, Some(approval))?;
    }
    // The recovery point must still be restorable (it may have expired since the preview).
    let rp = deps
        .ports()
        .catalog
        .get(&record.recovery_point)
        .await
        .map_err(|e| port(&e))?;
    if !rp.as_ref().is_some_and(lifeboat_domain::RecoveryPoint::is_restorable) {
        return Err(Problem::conflict(format!(
            "recovery point {} is no longer restorable; nothing was changed",
            record.recovery_point
        )));
    }
    let region = &record.region;
    // What holds the target's name now: a cluster restore needs the cluster name free, an
    // instance restore the instance name (an overwrite, the instance to set aside).
    let target_status = if record.is_cluster() {
        deps.rds.cluster_status(region, &record.target).await
    } else {
        deps.rds.instance_status(region, &record.target).await
    }
    .map_err(|e| port(&e))?;
    let mut next = record.clone();
    if record.overwrite {
        match target_status.as_deref() {
            None => {
                return Err(Problem::conflict(format!(
                    "instance {} no longer exists; nothing was changed",
                    record.target
                )));
            }
            Some("available") => {}
            Some(other) => {
                return Err(Problem::conflict(format!(
                    "instance {} is {other}; it can be renamed aside only when available. Nothing was changed",
                    record.target
                )));
            }
        }
        let preserved = preserved_name(&record.target, &record.id);
        if deps
            .rds
            .instance_status(region, &preserved)
            .await
            .map_err(|e| port(&e))?
            .is_some()
        {
            return Err(Problem::conflict(format!(
                "an instance {preserved} exists already; nothing was changed"
            )));
        }
        next.preserved_as = Some(preserved);
        next.state = RestoreState::PreservingOriginal;
    } else {
        if target_status.is_some() {
            return Err(Problem::conflict(format!(
                "{} {} exists now; nothing was changed",
                if record.is_cluster() { "cluster" } else { "instance" },
                record.target
            )));
        }
        next.state = RestoreState::Restoring;
    }
    lifeboat::confirm::consume(deps.ports().catalog.as_ref(), &claims, now)
        .await
        .map_err(|e| token_problem(&e))?;
    // Claim the restore before the first change: a concurrent confirm loses here.
    let claimed = restores(deps).save(next, record.version).await.map_err(problem)?;
    let (record, detail) = restores(deps).step(claimed).await.map_err(problem)?;
    ApiResponse::with_status(202, json!({"restore": view(&record), "detail": detail}))
}

fn state_name(s: RestoreState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `POST /restores/{id}/advance`: takes the next step once RDS is ready for it (the
/// original's identifier is free, the restore is available, a rename is applied).
pub async fn advance(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    empty_body(call, "advance")?;
    let record = load(deps, call).await?;
    needs_admin(record.overwrite, call.caller.role)?;
    let (record, detail) = restores(deps).step(record).await.map_err(problem)?;
    ApiResponse::ok(json!({"restore": view(&record), "detail": detail}))
}

/// `POST /restores/{id}/finish`: the restored instance is kept; the original, kept aside
/// since the restore, is deleted with a final snapshot and its automated backups kept.
pub async fn finish(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    empty_body(call, "finish")?;
    let record = load(deps, call).await?;
    if !record.overwrite {
        return Err(Problem::conflict(
            "this restore overwrote nothing; there is nothing to finish",
        ));
    }
    match record.state {
        RestoreState::Finished => {
            return ApiResponse::ok(
                json!({"restore": view(&record), "detail": "finished already; nothing was changed"}),
            );
        }
        RestoreState::Restored | RestoreState::Finishing => {}
        other => {
            return Err(Problem::conflict(format!(
                "restore {} is {}; only a restored instance can be finished. Nothing was changed",
                record.id,
                state_name(other)
            )));
        }
    }
    let target = deps
        .rds
        .instance_status(&record.region, &record.target)
        .await
        .map_err(|e| port(&e))?;
    if target.as_deref() != Some("available") {
        return Err(Problem::conflict(format!(
            "the restored instance {} is {}; nothing was changed",
            record.target,
            target.as_deref().unwrap_or("absent")
        )));
    }
    let mut next = record.clone();
    next.state = RestoreState::Finishing;
    next.final_snapshot = Some(final_snapshot_name(&record.id));
    let claimed = restores(deps).save(next, record.version).await.map_err(problem)?;
    let (record, detail) = restores(deps).step(claimed).await.map_err(problem)?;
    ApiResponse::with_status(202, json!({"restore": view(&record), "detail": detail}))
}

pub async fn get(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let record = load(deps, call).await?;
    let seen = if record.state == RestoreState::Previewed {
        SwapObserved::default()
    } else {
        restores(deps).observe(&record).await.map_err(problem)?
    };
    let final_snapshot = match &record.final_snapshot {
        Some(name) => deps
            .rds
            .snapshot_status(&record.region, name)
            .await
            .map_err(|e| port(&e))?,
        None => None,
    };
    let next = match next_restore_step(&record, &seen) {
        RestoreStep::Wait(why) => why,
        _ => "ready for the next step: POST /restores/{id}/advance".replace("{id}", &record.id),
    };
    let done = matches!(
        record.state,
        RestoreState::Restored | RestoreState::Finished | RestoreState::RolledBack
    );
    ApiResponse::ok(json!({
        "restore": view(&record),
        "progress": {
            "instanceStatus": seen.target,
            "preservedStatus": seen.preserved,
            "setAsideStatus": seen.set_aside,
            "finalSnapshotStatus": final_snapshot,
            "next": next,
            "done": done,
            "checkedAt": Utc::now(),
        }
    }))
}

/// `POST /restores/{id}/rollback`: the restored instance (if any) is renamed aside and the
/// original renamed back to its identifier; nothing is deleted. Asked again, it goes on
/// from where it is (also after a failed step).
pub async fn rollback(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    empty_body(call, "rollback")?;
    let record = load(deps, call).await?;
    if !record.overwrite {
        return Err(Problem::conflict(
            "this restore overwrote nothing; there is nothing to roll back",
        ));
    }
    let next = match record.state {
        RestoreState::PreservingOriginal
        | RestoreState::Restoring
        | RestoreState::Restored
        | RestoreState::Failed
        | RestoreState::RollbackFailed => {
            let mut next = record.clone();
            next.state = RestoreState::RollingBack;
            next.failure = None;
            // Named once and kept: every later step renames to the same identifier.
            next.set_aside_as = Some(set_aside_name(&record.target, &record.id));
            restores(deps).save(next, record.version).await.map_err(problem)?
        }
        RestoreState::RollingBack => record,
        other => {
            return Err(Problem::conflict(format!(
                "restore {} is {}; it cannot be rolled back",
                record.id,
                state_name(other)
            )));
        }
    };
    let (record, detail) = restores(deps).step(next).await.map_err(problem)?;
    ApiResponse::with_status(202, json!({"restore": view(&record), "detail": detail}))
}
