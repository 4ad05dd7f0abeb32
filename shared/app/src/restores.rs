//! The restore lifecycle carried out against the ports: each step decided by
//! [`next_restore_step`] from the record and what RDS shows, claimed by a conditional
//! write on the record, then started. A replayed request does nothing twice. Served by the
//! admin API's restore routes.

use lifeboat_domain::restore::{RestoreRecord, RestoreState, RestoreStep, SwapObserved, next_restore_step};
use lifeboat_ports::admin::{DbRestorer, RestoreStore};
use lifeboat_ports::{Catalog, Clock, PortError};

use crate::app::{PointUpdateError, hold_point, release_point};

/// Why a restore step did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The record changed since it was read (another request took the step).
    #[error("the restore changed meanwhile; read it again")]
    Changed,
    #[error(transparent)]
    Port(PortError),
    /// The record contradicts itself (a bug, never the caller's fault).
    #[error("{0}")]
    Internal(String),
}

/// The restore records, RDS, the catalog and the time.
#[derive(Clone, Copy)]
pub struct Restores<'a> {
    pub store: &'a dyn RestoreStore,
    pub rds: &'a dyn DbRestorer,
    /// The recovery point a restore reads is held (`in_use_by`) while RDS restores it, so
    /// retention never deletes the snapshot under it.
    pub catalog: &'a dyn Catalog,
    pub clock: &'a dyn Clock,
}

/// States in which RDS may still be reading the recovery point's snapshot.
fn reads_the_point(state: RestoreState) -> bool {
    matches!(
        state,
        RestoreState::Previewed | RestoreState::PreservingOriginal | RestoreState::Restoring
    )
}

impl std::fmt::Debug for Restores<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restores").finish_non_exhaustive()
    }
}

impl Restores<'_> {
    /// Writes `next` as the version after `previous_version` (a conditional write):
    /// `Changed` when the stored record moved on meanwhile.
    pub async fn save(&self, mut next: RestoreRecord, previous_version: u64) -> Result<RestoreRecord, RestoreError> {
        next.version = previous_version + 1;
        next.updated_at = self.clock.now();
        self.store.update(&next, previous_version).await.map_err(|e| match e {
            PortError::Conflict(_) => RestoreError::Changed,
            other => RestoreError::Port(other),
        })?;
        Ok(next)
    }

    /// What RDS shows under the identifiers the restore touches.
    pub async fn observe(&self, r: &RestoreRecord) -> Result<SwapObserved, RestoreError> {
        let status = |id: Option<String>| async move {
            match id {
                Some(id) => self
                    .rds
                    .instance_status(&r.region, &id)
                    .await
                    .map_err(RestoreError::Port),
                None => Ok(None),
            }
        };
        if let Some(writer) = &r.writer {
            return Ok(SwapObserved {
                target: self
                    .rds
                    .cluster_status(&r.region, &r.target)
                    .await
                    .map_err(RestoreError::Port)?,
                writer: status(Some(writer.instance.clone())).await?,
                ..SwapObserved::default()
            });
        }
        Ok(SwapObserved {
            target: status(Some(r.target.clone())).await?,
            preserved: status(r.preserved_as.clone()).await?,
            set_aside: status(r.set_aside_as.clone()).await?,
            writer: None,
        })
    }

    /// What the point's `in_use_by` says while `r` reads it.
    fn holder(r: &RestoreRecord) -> String {
        format!("restore {}", r.id)
    }

    /// Holds the recovery point `r` restores from (a hold someone else set stays theirs).
    async fn hold(&self, r: &RestoreRecord) -> Result<(), RestoreError> {
        match hold_point(self.catalog, self.clock, &r.recovery_point, &Self::holder(r)).await {
            Ok(()) => Ok(()),
            Err(PointUpdateError::Missing) => Err(RestoreError::Port(PortError::NotFound(format!(
                "recovery point {}",
                r.recovery_point
            )))),
            Err(PointUpdateError::KeptChanging) => Err(RestoreError::Changed),
            Err(PointUpdateError::Port(e)) => Err(RestoreError::Port(e)),
        }
    }

    /// Releases `r`'s hold once RDS reads the snapshot no more (best effort: a hold left
    /// behind keeps the point longer, never shorter, and names the restore).
    async fn release_when_read(&self, id: &str) {
        let Ok(Some(r)) = self.store.get(id).await else { return };
        if reads_the_point(r.state) {
            return;
        }
        if let Err(e) = release_point(self.catalog, self.clock, &r.recovery_point, &Self::holder(&r)).await {
            tracing::warn!(restore = %r.id, error = ?e, "could not release the restore's hold");
        }
    }

    /// Takes the restore's next steps: records state changes until a step needs RDS to work
    /// (a rename, a restore, a delete: claimed by a conditional write, then started) or
    /// there is nothing to do yet. Returns the record and what it waits for. The recovery
    /// point is held from the restore's start until RDS has made the database (or the
    /// restore failed).
    pub async fn step(&self, record: RestoreRecord) -> Result<(RestoreRecord, String), RestoreError> {
        let id = record.id.clone();
        let out = self.take_steps(record).await;
        self.release_when_read(&id).await;
        out
    }

    async fn take_steps(&self, mut record: RestoreRecord) -> Result<(RestoreRecord, String), RestoreError> {
        // A state change is at most a few steps away; the bound only guards against a loop.
        for _ in 0..4 {
            let seen = self.observe(&record).await?;
            let version = record.version;
            match next_restore_step(&record, &seen) {
                RestoreStep::Wait(why) => return Ok((record, why)),
                RestoreStep::Become(state) => {
                    let mut next = record.clone();
                    next.state = state;
                    record = self.save(next, version).await?;
                }
                RestoreStep::Rename { from, to } => {
                    let claimed = self.save(record.clone(), version).await?;
                    let result = self.rds.rename_instance(&claimed.region, &from, &to).await;
                    return match result {
                        Ok(()) => Ok((claimed, format!("renaming {from} to {to}"))),
                        Err(e) => self.failed(claimed, &format!("the rename of {from} to {to}"), e).await,
                    };
                }
                RestoreStep::Restore => {
                    self.hold(&record).await?;
                    let mut next = record.clone();
                    next.state = RestoreState::Restoring;
                    let claimed = self.save(next, version).await?;
                    let result = if claimed.is_cluster() {
                        self.rds
                            .restore_cluster(
                                &claimed.region,
                                &claimed.snapshot_name,
                                &claimed.target,
                                &claimed.settings,
                            )
                            .await
                    } else {
                        self.rds
                            .restore_instance(
                                &claimed.region,
                                &claimed.snapshot_name,
                                &claimed.target,
                                &claimed.settings,
                            )
                            .await
                    };
                    return match result {
                        Ok(()) | Err(PortError::AlreadyExists(_)) => Ok((
                            claimed.clone(),
                            format!("restoring {} into {}", claimed.snapshot_name, claimed.target),
                        )),
                        Err(e) => self.failed(claimed, "the restore", e).await,
                    };
                }
                RestoreStep::CreateWriter => {
                    let Some(writer) = record.writer.clone() else {
                        return Err(RestoreError::Internal("a cluster restore names no writer".into()));
                    };
                    let claimed = self.save(record.clone(), version).await?;
                    let result = self
                        .rds
                        .create_writer(&claimed.region, &claimed.target, &writer.instance, &writer.class)
                        .await;
                    return match result {
                        Ok(()) => Ok((
                            claimed.clone(),
                            format!(
                                "{} is available; creating its writer {} ({})",
                                claimed.target, writer.instance, writer.class
                            ),
                        )),
                        Err(e) => self.failed(claimed, "the writer's creation", e).await,
                    };
                }
                RestoreStep::DeletePreserved => {
                    let (Some(preserved), Some(snapshot)) =
                        (record.preserved_as.clone(), record.final_snapshot.clone())
                    else {
                        return Err(RestoreError::Internal(
                            "a finishing restore names no kept original or final snapshot".into(),
                        ));
                    };
                    let claimed = self.save(record.clone(), version).await?;
                    let result = self
                        .rds
                        .delete_instance_keeping_data(&claimed.region, &preserved, &snapshot)
                        .await;
                    return match result {
                        Ok(()) => {
                            let mut done = claimed.clone();
                            done.state = RestoreState::Finished;
                            done.failure = None;
                            let v = claimed.version;
                            let done = self.save(done, v).await?;
                            Ok((done, format!("deleting {preserved} with the final snapshot {snapshot}")))
                        }
                        Err(e) => self.failed(claimed, &format!("the deletion of {preserved}"), e).await,
                    };
                }
            }
        }
        Ok((record, "in progress".into()))
    }

    /// A step RDS refused. A transient error leaves the state as it is (ask again later);
    /// any other moves the restore to a state an operator can act from: a forward step to
    /// `failed` (rollback possible), a rollback step to `rollback-failed` (rollback can be
    /// asked for again), a finish stays `finishing` (finish can be asked for again).
    async fn failed(
        &self,
        claimed: RestoreRecord,
        what: &str,
        e: PortError,
    ) -> Result<(RestoreRecord, String), RestoreError> {
        if e.is_transient() {
            return Err(RestoreError::Port(e));
        }
        let next = claimed.refused(what, e.code());
        if let Err(failure) = self.save(next, claimed.version).await {
            tracing::error!(restore = %claimed.id, error = %failure, "could not record the failed step");
        }
        Err(RestoreError::Port(e))
    }
}
