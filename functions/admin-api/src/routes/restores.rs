//! Restores: preview + confirmation token, confirm, progress, rollback.
//!
//! `POST /restores` checks everything and answers with a preview and a token bound to
//! the restore (its digest), the caller and an expiry. Nothing touches RDS until
//! `POST /restores/{id}/confirm` brings the token back: it is verified, then consumed
//! (single use, conditional write) right before the first destructive step.
//!
//! A restore to a new instance (operator) runs RestoreDBInstanceFromDBSnapshot under a
//! new identifier. A restore over an existing instance (admin) first takes a pre-restore
//! snapshot of it; while that snapshot is not yet available, confirm answers 202 without
//! consuming the token (confirm again later). Once it is available the token is consumed,
//! the instance is deleted (its data is in the pre-restore snapshot) and the recovery point
//! restored under its identifier. `POST /restores/{id}/rollback` restores the pre-restore
//! snapshot in its place.

use chrono::Utc;
use lifeboat::admin::{RestoreRecord, RestoreState};
use lifeboat::confirm::{self, TokenError};
use lifeboat::domain::{RecoveryPointId, ResourceKind};
use lifeboat::ports::PortError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiResponse, Call, Deps, Problem, Role, query};

/// Typical minutes for RDS to restore an instance from a snapshot (RDS publishes no
/// estimate; it grows with the allocated storage).
pub const ESTIMATED_RESTORE_MINUTES: u32 = 20;
/// Extra minutes an overwrite needs for the pre-restore snapshot.
pub const ESTIMATED_PRE_SNAPSHOT_MINUTES: u32 = 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PreviewRequest {
    recovery_point: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    overwrite: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmRequest {
    token: String,
}

/// RDS DB instance identifier rules: 1-63 letters, digits, hyphens; starts with a letter;
/// no trailing or double hyphen.
fn valid_instance_id(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn pre_restore_name(restore_id: &str) -> String {
    format!("lb-pre-{restore_id}")
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
        "state": r.state,
        "requestedBy": r.requested_by,
        "preRestoreSnapshot": r.pre_restore_snapshot,
        "failure": r.failure,
        "estimatedMinutes": r.estimated_minutes,
        "createdAt": r.created_at,
        "updatedAt": r.updated_at,
    })
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

pub async fn preview(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let r: PreviewRequest = call.req.parse()?;
    let mut problem = Problem::bad_request("Invalid restore request");
    let id = RecoveryPointId::parse(&r.recovery_point)
        .map_err(|e| problem = problem.clone().with_error("recoveryPoint", e.to_string()))
        .ok();
    if let Some(t) = &r.target
        && !valid_instance_id(t)
    {
        problem = problem.with_error(
            "target",
            "must be an RDS DB instance identifier (1-63 letters, digits, single hyphens, starting with a letter)",
        );
    }
    if r.overwrite && r.target.is_none() {
        problem = problem.with_error("target", "an overwrite names the instance it replaces");
    }
    let Some(id) = id.filter(|_| problem.errors.is_empty()) else {
        return Err(problem);
    };
    needs_admin(r.overwrite, call.caller.role)?;
    let rp = deps
        .ports()
        .catalog
        .get(&id)
        .await
        .map_err(|e| port(&e))?
        .ok_or_else(|| Problem::not_found(format!("no recovery point {id}")))?;
    if rp.resource.kind != ResourceKind::RdsInstance {
        return Err(Problem::bad_request("Invalid restore request").with_error(
            "recoveryPoint",
            "only RDS DB instance snapshots can be restored through this API",
        ));
    }
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
    let exists = deps
        .rds
        .instance_status(&rp.location, &target)
        .await
        .map_err(|e| port(&e))?
        .is_some();
    match (r.overwrite, exists) {
        (true, false) => {
            return Err(Problem::not_found(format!(
                "instance {target} does not exist; restore without overwrite to create it"
            )));
        }
        (false, true) => {
            return Err(Problem::conflict(format!(
                "instance {target} exists; choose another target, or overwrite (admin)"
            )));
        }
        _ => {}
    }
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
        pre_restore_snapshot: None,
        failure: None,
        estimated_minutes: ESTIMATED_RESTORE_MINUTES + if r.overwrite { ESTIMATED_PRE_SNAPSHOT_MINUTES } else { 0 },
        created_at: now,
        updated_at: now,
        version: 1,
    };
    record.request_digest = digest(&record);
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
            "preview": {
                "recoveryPoint": record.recovery_point.as_str(),
                "resource": rp.resource.arn,
                "snapshot": record.snapshot_name,
                "region": record.region.as_str(),
                "tier": crate::routes::catalog::SNAPSHOT_TIER,
                "recoveryPointCreatedAt": rp.created_at,
                "target": record.target,
                "overwrite": record.overwrite,
                "preRestoreSnapshot": record.overwrite.then(|| pre_restore_name(&record.id)),
                "estimatedMinutes": record.estimated_minutes,
            },
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

async fn save(deps: &Deps, mut next: RestoreRecord, previous_version: u64) -> Result<RestoreRecord, Problem> {
    next.version = previous_version + 1;
    next.updated_at = deps.now();
    deps.restores
        .update(&next, previous_version)
        .await
        .map_err(|e| match e {
            PortError::Conflict(_) => Problem::conflict("the restore changed meanwhile; read it again"),
            other => port(&other),
        })?;
    Ok(next)
}

pub async fn confirm(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let body: ConfirmRequest = call.req.parse()?;
    let record = load(deps, call).await?;
    needs_admin(record.overwrite, call.caller.role)?;
    let resumable = record.overwrite && record.state == RestoreState::PreRestoreSnapshot;
    if record.state != RestoreState::Previewed && !resumable {
        return Err(Problem::conflict(format!(
            "restore {} is already {:?}; nothing was changed",
            record.id, record.state
        )));
    }
    let key = deps.key.key().await.map_err(|e| port(&e))?;
    let now = deps.now();
    let claims = confirm::verify(&key, &body.token, &digest(&record), &call.caller.principal, now)
        .map_err(|e| token_problem(&e))?;
    // The recovery point must still be restorable (it may have expired since the preview).
    let rp = deps
        .ports()
        .catalog
        .get(&record.recovery_point)
        .await
        .map_err(|e| port(&e))?;
    if !rp.as_ref().is_some_and(lifeboat::domain::RecoveryPoint::is_restorable) {
        return Err(Problem::conflict(format!(
            "recovery point {} is no longer restorable; nothing was changed",
            record.recovery_point
        )));
    }
    let region = record.region.clone();
    if record.overwrite {
        let pre = pre_restore_name(&record.id);
        let target_status = deps
            .rds
            .instance_status(&region, &record.target)
            .await
            .map_err(|e| port(&e))?;
        if target_status.is_none() {
            return Err(Problem::conflict(format!(
                "instance {} no longer exists; nothing was changed",
                record.target
            )));
        }
        let mut status = deps.rds.snapshot_status(&region, &pre).await.map_err(|e| port(&e))?;
        if status.is_none() {
            match deps.rds.snapshot_instance(&region, &record.target, &pre).await {
                Ok(()) | Err(PortError::AlreadyExists(_)) => {}
                Err(e) => return Err(port(&e)),
            }
            status = deps.rds.snapshot_status(&region, &pre).await.map_err(|e| port(&e))?;
        }
        let mut next = record.clone();
        next.pre_restore_snapshot = Some(pre.clone());
        if status.as_deref() != Some("available") {
            next.state = RestoreState::PreRestoreSnapshot;
            let version = record.version;
            let saved = if record.state == next.state && record.pre_restore_snapshot == next.pre_restore_snapshot {
                record
            } else {
                save(deps, next, version).await?
            };
            return ApiResponse::with_status(
                202,
                json!({
                    "restore": view(&saved),
                    "detail": format!("the pre-restore snapshot {pre} is {}; confirm again with the same token once it is available", status.unwrap_or_else(|| "not visible yet".into())),
                }),
            );
        }
        confirm::consume(deps.ports().catalog.as_ref(), &claims, now)
            .await
            .map_err(|e| token_problem(&e))?;
        // Claim the restore before the destructive step: a concurrent confirm loses here.
        next.state = RestoreState::Restoring;
        let claimed = save(deps, next, record.version).await?;
        deps.rds
            .delete_instance(&region, &claimed.target)
            .await
            .map_err(|e| port(&e))?;
        let result = deps
            .rds
            .restore_instance(&region, &claimed.snapshot_name, &claimed.target)
            .await;
        return finish_start(deps, claimed, result).await;
    }
    confirm::consume(deps.ports().catalog.as_ref(), &claims, now)
        .await
        .map_err(|e| token_problem(&e))?;
    let mut next = record.clone();
    next.state = RestoreState::Restoring;
    let claimed = save(deps, next, record.version).await?;
    let result = deps
        .rds
        .restore_instance(&region, &claimed.snapshot_name, &claimed.target)
        .await;
    finish_start(deps, claimed, result).await
}

async fn finish_start(
    deps: &Deps,
    claimed: RestoreRecord,
    result: Result<(), PortError>,
) -> Result<ApiResponse, Problem> {
    match result {
        Ok(()) => ApiResponse::with_status(202, json!({"restore": view(&claimed)})),
        Err(e) => {
            let mut failed = claimed.clone();
            failed.state = RestoreState::Failed;
            failed.failure = Some(format!("the restore could not start ({})", e.code()));
            let version = claimed.version;
            if let Err(p) = save(deps, failed, version).await {
                tracing::error!(restore = %claimed.id, status = p.status, "could not record the failed restore");
            }
            Err(port(&e))
        }
    }
}

pub async fn get(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let record = load(deps, call).await?;
    let instance = match record.state {
        RestoreState::Previewed => None,
        _ => deps
            .rds
            .instance_status(&record.region, &record.target)
            .await
            .map_err(|e| port(&e))?,
    };
    let pre = match &record.pre_restore_snapshot {
        Some(name) => deps
            .rds
            .snapshot_status(&record.region, name)
            .await
            .map_err(|e| port(&e))?,
        None => None,
    };
    let done = matches!(record.state, RestoreState::Restoring | RestoreState::RolledBack)
        && instance.as_deref() == Some("available");
    ApiResponse::ok(json!({
        "restore": view(&record),
        "progress": {
            "instanceStatus": instance,
            "preRestoreSnapshotStatus": pre,
            "done": done,
            "checkedAt": Utc::now(),
        }
    }))
}

pub async fn rollback(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    query(call.req, &[])?;
    let body = call.req.json()?;
    if body.as_object().is_none_or(|m| !m.is_empty()) {
        return Err(Problem::bad_request("Invalid rollback request").with_error("body", "a rollback takes no fields"));
    }
    let record = load(deps, call).await?;
    let Some(pre) = record.pre_restore_snapshot.clone().filter(|_| record.overwrite) else {
        return Err(Problem::conflict(
            "this restore overwrote nothing; there is nothing to roll back",
        ));
    };
    if !matches!(record.state, RestoreState::Restoring | RestoreState::Failed) {
        return Err(Problem::conflict(format!(
            "restore {} is {:?}; it cannot be rolled back",
            record.id, record.state
        )));
    }
    let status = deps
        .rds
        .snapshot_status(&record.region, &pre)
        .await
        .map_err(|e| port(&e))?;
    if status.as_deref() != Some("available") {
        return Err(Problem::conflict(format!(
            "the pre-restore snapshot {pre} is not available; nothing was changed"
        )));
    }
    let mut next = record.clone();
    next.state = RestoreState::RolledBack;
    next.failure = None;
    let claimed = save(deps, next, record.version).await?;
    deps.rds
        .delete_instance(&claimed.region, &claimed.target)
        .await
        .map_err(|e| port(&e))?;
    deps.rds
        .restore_instance(&claimed.region, &pre, &claimed.target)
        .await
        .map_err(|e| port(&e))?;
    ApiResponse::with_status(202, json!({"restore": view(&claimed)}))
}
