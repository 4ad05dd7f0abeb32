//! Holds on the recovery points an execution restores from: set when they are chosen and
//! released when the execution ends (finished, compensated or handed to an operator), so
//! retention never deletes a snapshot or backup a restore is reading. A point another
//! holder holds already keeps that hold (it is theirs to release).

use lifeboat::app::{PointUpdateError, hold_point, release_point};
use lifeboat_domain::RecoveryPointId;
use lifeboat_domain::dr::{DrExecution, Source};

use crate::Deps;

/// What a point's `in_use_by` says while `exec` reads it.
pub(super) fn holder(exec: &DrExecution) -> String {
    format!("DR execution {}", exec.execution)
}

/// The recovery points `exec` restores from: its databases' DR snapshots and its tables'
/// chosen copies or backups.
fn read_points(exec: &DrExecution) -> Vec<RecoveryPointId> {
    let databases = exec.databases.iter().filter_map(|d| match &d.source {
        Some(Source::DrSnapshot { recovery_point, .. }) => Some(recovery_point.as_str()),
        _ => None,
    });
    let tables = exec.tables.iter().filter_map(|t| t.recovery_point.as_deref());
    databases
        .chain(tables)
        .filter_map(|id| RecoveryPointId::parse(id).ok())
        .collect()
}

/// Sets `exec`'s hold on every point it restores from (those held already stay as they are).
pub(super) async fn hold(deps: &Deps, exec: &DrExecution) -> Result<(), PointUpdateError> {
    let by = holder(exec);
    for id in read_points(exec) {
        match hold_point(deps.catalog.as_ref(), deps.clock.as_ref(), &id, &by).await {
            Ok(()) | Err(PointUpdateError::Missing) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Releases `exec`'s holds (best effort: a hold left behind keeps a point longer, never
/// shorter, and names the execution that set it).
pub(super) async fn release(deps: &Deps, exec: &DrExecution) {
    let by = holder(exec);
    for id in read_points(exec) {
        match release_point(deps.catalog.as_ref(), deps.clock.as_ref(), &id, &by).await {
            Ok(()) | Err(PointUpdateError::Missing) => {}
            Err(e) => tracing::warn!(recovery_point = %id, error = ?e, "could not release the DR hold"),
        }
    }
}
