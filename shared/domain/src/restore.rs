//! The restore lifecycle of the admin API: a restore request's states and the pure
//! decision of its next step.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dr::plan::RestoreSettings;
use crate::{RecoveryPointId, Region};

/// The state of a DB instance or snapshot as RDS reports it (`available`, `creating`, ...).
pub type RdsStatus = String;

/// Where a restore stands. A restore over an existing instance never deletes it: the
/// original is renamed aside (`preserved_as`), the recovery point restored under the
/// original identifier, and the original kept until the operator finishes the restore
/// (then deleted with a final snapshot, its automated backups kept) or rolls it back (the
/// restored instance renamed aside, the original renamed back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreState {
    /// Previewed, a token issued; nothing done yet.
    Previewed,
    /// Overwrite: the target is being renamed to `preserved_as`; the restore starts once
    /// its identifier is free.
    PreservingOriginal,
    /// RDS is restoring the recovery point.
    Restoring,
    /// The restored instance is available. Overwrite: the original is still kept under
    /// `preserved_as` until the restore is finished or rolled back.
    Restored,
    /// Overwrite, finishing: the kept original is being deleted with a final snapshot.
    Finishing,
    /// Done; for an overwrite, the original's final snapshot is `final_snapshot`.
    Finished,
    /// Rolling back: the restored instance is renamed to `set_aside_as`, then the original
    /// back to its identifier.
    RollingBack,
    /// The original is back under its identifier; the restored instance (if any) is kept
    /// under `set_aside_as`.
    RolledBack,
    /// A rollback step failed (`failure` says which); nothing was deleted and the rollback
    /// can be asked for again.
    RollbackFailed,
    /// The restore could not go on (`failure` says why); nothing was deleted. An overwrite
    /// can be rolled back from here.
    Failed,
}

impl RestoreState {
    /// Nothing more happens to the restore.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Finished | Self::RolledBack)
    }
}

/// One restore request, from preview to completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecord {
    pub id: String,
    pub recovery_point: RecoveryPointId,
    /// Region of the recovery point, where the restore runs.
    pub region: Region,
    pub snapshot_name: String,
    /// The DB instance identifier the restore creates (or replaces, when `overwrite`).
    pub target: String,
    pub overwrite: bool,
    /// The principal who asked for the preview (the only one who may confirm it).
    pub requested_by: String,
    /// The digest the confirmation token is bound to.
    pub request_digest: String,
    pub state: RestoreState,
    /// Overwrite only: the identifier the original instance is kept under
    /// (`<target>-lbpre-<short restore id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserved_as: Option<String>,
    /// Rollback only: the identifier the restored instance is kept under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_aside_as: Option<String>,
    /// Finish only: the final snapshot of the original, taken as it is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Where the restored instance goes and with which groups: the subnet group, VPC
    /// security groups, parameter and option groups (never publicly accessible).
    #[serde(default)]
    pub settings: RestoreSettings,
    /// An Aurora cluster restore (into a new cluster): the writer instance the restored
    /// cluster gets, which it needs to serve. `None` for a DB instance restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<WriterSpec>,
    /// The approval request this restore waits for, when its policy requires a second
    /// person's approval of an overwrite (see [`crate::approval`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    pub estimated_minutes: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped by every change.
    pub version: u64,
}

/// The writer instance of an Aurora cluster restored through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterSpec {
    /// `<cluster>-w1`.
    pub instance: String,
    /// The DB instance class: the request's, else as recorded with the snapshot, else
    /// the source writer's.
    pub class: String,
}

impl RestoreRecord {
    /// The restore makes an Aurora cluster (and its writer), not a DB instance.
    pub fn is_cluster(&self) -> bool {
        self.writer.is_some()
    }
}

/// The short form of a restore id used in identifiers: its first 8 characters.
pub fn short_id(restore_id: &str) -> &str {
    restore_id.get(..8).unwrap_or(restore_id)
}

/// `<target>-lbpre-<short id>`: where an overwrite keeps the original. RDS identifiers
/// are at most 63 characters: a long target is cut (and a trailing hyphen dropped) to fit.
pub fn preserved_name(target: &str, restore_id: &str) -> String {
    suffixed(target, "lbpre", restore_id)
}

/// `<target>-lbrb-<short id>`: where a rollback keeps the restored instance.
pub fn set_aside_name(target: &str, restore_id: &str) -> String {
    suffixed(target, "lbrb", restore_id)
}

fn suffixed(target: &str, tag: &str, restore_id: &str) -> String {
    let suffix = format!("-{tag}-{}", short_id(restore_id));
    let room = 63usize.saturating_sub(suffix.len());
    let base: String = target.chars().take(room).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// What RDS shows under the three identifiers an overwrite touches (`None`: absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwapObserved {
    pub target: Option<RdsStatus>,
    pub preserved: Option<RdsStatus>,
    pub set_aside: Option<RdsStatus>,
    /// An Aurora cluster restore: its writer instance.
    pub writer: Option<RdsStatus>,
}

/// The one next step of a restore, decided from its state and what RDS shows. Every step
/// re-checks its preconditions here, so a replayed request does nothing twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreStep {
    /// Nothing to do now; why (and what is awaited).
    Wait(String),
    /// ModifyDBInstance `from` → `to` (ApplyImmediately).
    Rename { from: String, to: String },
    /// Restore the recovery point under the target identifier.
    Restore,
    /// An Aurora cluster restore: create the restored cluster's writer instance.
    CreateWriter,
    /// Delete the kept original with a final snapshot, keeping its automated backups.
    DeletePreserved,
    /// Record the new state; nothing to call.
    Become(RestoreState),
}

fn show(status: Option<&RdsStatus>) -> &str {
    status.map_or("absent", String::as_str)
}

/// Decides the next step of `r` given what RDS shows. Pure: no I/O.
pub fn next_restore_step(r: &RestoreRecord, seen: &SwapObserved) -> RestoreStep {
    let target = &r.target;
    let preserved = r.preserved_as.clone().unwrap_or_default();
    let (t, p) = (seen.target.as_ref(), seen.preserved.as_ref());
    match r.state {
        RestoreState::Previewed => RestoreStep::Wait("not confirmed yet".into()),
        RestoreState::PreservingOriginal => match (t, p) {
            (None, Some(_)) => RestoreStep::Restore,
            (Some(s), None) if s == "available" => RestoreStep::Rename {
                from: target.clone(),
                to: preserved,
            },
            _ => RestoreStep::Wait(format!(
                "renaming {target} ({}) to {preserved} ({}); the restore starts once {target} is free",
                show(t),
                show(p)
            )),
        },
        RestoreState::Restoring => match (t, &r.writer) {
            (None, _) => RestoreStep::Restore,
            (Some(s), None) if s == "available" => RestoreStep::Become(RestoreState::Restored),
            // A restored Aurora cluster serves only through an instance: its writer.
            (Some(s), Some(writer)) if s == "available" => match seen.writer.as_ref() {
                None => RestoreStep::CreateWriter,
                Some(ws) if ws == "available" => RestoreStep::Become(RestoreState::Restored),
                Some(ws) => RestoreStep::Wait(format!("{target} is available; its writer {} is {ws}", writer.instance)),
            },
            (Some(s), _) => RestoreStep::Wait(format!("{target} is {s}")),
        },
        RestoreState::Restored => RestoreStep::Wait(if r.overwrite {
            format!("restored; the original is kept as {preserved}: finish or roll back")
        } else {
            "restored".into()
        }),
        RestoreState::Finishing => match p {
            None => RestoreStep::Become(RestoreState::Finished),
            Some(s) if s == "deleting" => RestoreStep::Become(RestoreState::Finished),
            Some(s) if s == "available" => RestoreStep::DeletePreserved,
            Some(s) => RestoreStep::Wait(format!("{preserved} is {s}; it is deleted once available")),
        },
        RestoreState::RollingBack => {
            let aside = r.set_aside_as.clone().unwrap_or_else(|| set_aside_name(target, &r.id));
            match (t, p) {
                // The restored instance still holds the name: move it aside first.
                (Some(s), Some(_)) if s == "available" => RestoreStep::Rename {
                    from: target.clone(),
                    to: aside,
                },
                (Some(s), Some(_)) => {
                    RestoreStep::Wait(format!("{target} is {s}; it is renamed to {aside} once available"))
                }
                (None, Some(s)) if s == "available" => RestoreStep::Rename {
                    from: preserved,
                    to: target.clone(),
                },
                (Some(s), None) if s == "available" => RestoreStep::Become(RestoreState::RolledBack),
                _ => RestoreStep::Wait(format!(
                    "renaming: {target} is {}, {preserved} is {}, {aside} is {}",
                    show(t),
                    show(p),
                    show(seen.set_aside.as_ref())
                )),
            }
        }
        RestoreState::RollbackFailed => RestoreStep::Wait(format!(
            "the rollback failed ({}); ask for the rollback again, or act on {target} and {preserved} by hand",
            r.failure.as_deref().unwrap_or("no detail")
        )),
        RestoreState::Failed => RestoreStep::Wait(format!(
            "failed ({}); nothing was deleted{}",
            r.failure.as_deref().unwrap_or("no detail"),
            if r.overwrite {
                "; roll back to put the original back"
            } else {
                ""
            }
        )),
        RestoreState::Finished | RestoreState::RolledBack => RestoreStep::Wait("done".into()),
    }
}

/// The final snapshot of an overwritten original, taken when the restore is finished.
pub fn final_snapshot_name(restore_id: &str) -> String {
    format!("lb-pre-{restore_id}")
}

impl RestoreRecord {
    /// The record after RDS refused a step (`what`, with RDS's error `code`): a forward
    /// step becomes `failed` (rollback possible), a rollback step `rollback-failed`
    /// (rollback can be asked for again), a finish stays `finishing` (finish can be asked
    /// for again). Nothing was deleted.
    #[must_use]
    pub fn refused(&self, what: &str, code: &str) -> Self {
        let mut next = self.clone();
        next.state = match self.state {
            RestoreState::RollingBack => RestoreState::RollbackFailed,
            RestoreState::Finishing => RestoreState::Finishing,
            _ => RestoreState::Failed,
        };
        next.failure = Some(format!("{what} was refused ({code}); nothing was deleted"));
        next
    }
}
