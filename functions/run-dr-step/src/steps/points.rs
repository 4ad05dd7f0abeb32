//! The recovery points a DR execution restores from, read from the catalog.

use chrono::{DateTime, Utc};
use lifeboat::object_store::runs::completed_runs;
use lifeboat_domain::dr::DrPlan;
use lifeboat_domain::s3::s3_resource;
use lifeboat_domain::{Region, ResourceKind};
use lifeboat_ports::PortResult;

use crate::Deps;

/// The newest verified, restorable recovery point of `db` in `region`.
pub(super) async fn newest_verified_point(
    deps: &Deps,
    arn: &str,
    region: &Region,
) -> PortResult<Option<lifeboat_domain::RecoveryPoint>> {
    let points = deps.catalog.by_resource(arn, 200).await?;
    Ok(points
        .into_iter()
        .filter(|rp| &rp.location == region && rp.is_restorable() && rp.verified_at.is_some())
        .max_by_key(|rp| rp.created_at))
}

/// The newest usable native backup of `table` taken at or before `at`: a restorable
/// recovery point of the table, in the table's own region (native backups never leave
/// it), made by Lifeboat's native backups (not delegated to an AWS Backup vault), with
/// the backup's ARN recorded.
pub(super) async fn newest_table_backup(
    deps: &Deps,
    table: &lifeboat_domain::dr::plan::ProtectedTable,
    at: DateTime<Utc>,
) -> PortResult<Option<lifeboat_domain::RecoveryPoint>> {
    let points = deps.catalog.by_resource(&table.arn, 200).await?;
    Ok(points
        .into_iter()
        .filter(|rp| {
            rp.resource.kind == ResourceKind::DynamoDbTable
                && rp.location == table.region
                && rp.is_restorable()
                && rp.backup_vault().is_none()
                && rp.snapshot_arn.is_some()
                && rp.created_at <= at
        })
        .max_by_key(|rp| rp.created_at))
}

/// The newest usable copy of `table` in `region` (the DR region) taken at or before `at`:
/// an export of the table at its backup's time, held in the region's export bucket, which
/// the region can import with nothing of the table's own region.
pub(super) async fn newest_table_copy(
    deps: &Deps,
    table: &lifeboat_domain::dr::plan::ProtectedTable,
    region: &Region,
    at: DateTime<Utc>,
) -> PortResult<Option<lifeboat_domain::RecoveryPoint>> {
    if region == &table.region {
        return Ok(None);
    }
    let points = deps.catalog.by_resource(&table.arn, 200).await?;
    Ok(points
        .into_iter()
        .filter(|rp| {
            rp.resource.kind == ResourceKind::DynamoDbTable
                && &rp.location == region
                && rp.is_restorable()
                && rp.backup_vault().is_none()
                && rp.created_at <= at
        })
        .max_by_key(|rp| rp.created_at))
}

/// The newest completed backup run of a data set taken at or before `at`.
pub(super) async fn newest_data_run(
    deps: &Deps,
    plan: &DrPlan,
    d: &lifeboat_domain::dr::plan::DataSet,
    at: DateTime<Utc>,
) -> PortResult<Option<lifeboat_domain::RecoveryPoint>> {
    let resource = s3_resource(&plan.source_region, &d.bucket, &d.prefix);
    Ok(completed_runs(deps.catalog.as_ref(), &resource.arn)
        .await?
        .into_iter()
        .filter(|rp| rp.created_at <= at)
        .max_by_key(|rp| rp.created_at))
}
