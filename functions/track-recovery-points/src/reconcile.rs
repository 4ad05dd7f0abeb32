//! Step 3 of a cycle: what AWS has that the catalog does not. Lifeboat's tagged snapshots
//! without a record are adopted (one listing per region and kind, not per resource); a
//! delegated resource's vault recovery points without a record are imported.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use lifeboat::app::{ItemFailure, RunLog};
use lifeboat_domain::naming::tags;
use lifeboat_domain::planner::ProtectedResource;
use lifeboat_domain::{
    Failure, Policy, PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Slot, Status, Step,
};
use lifeboat_ports::{PortError, Snapshot, tag_value};

use crate::{Deps, Report};

/// Tagged snapshots without a record are adopted; a delegated resource's vault recovery
/// points without a record are imported.
pub(crate) async fn reconcile(
    deps: &Deps,
    policies: &BTreeMap<PolicyName, Policy>,
    resources: &[ProtectedResource],
    report: &mut Report,
    log: &mut RunLog,
    now: DateTime<Utc>,
) {
    let ports = &deps.ports;
    let mut found: Vec<(&ProtectedResource, Snapshot)> = Vec::new();
    // Snapshot-backed resources, by region and kind: one listing each, not one per resource.
    let mut listed: BTreeMap<(Region, ResourceKind), Vec<&ProtectedResource>> = BTreeMap::new();
    // Data sets' runs are recorded by the functions that make them; there is no snapshot
    // to find.
    for d in resources.iter().filter(|d| !d.resource.kind.is_data_set()) {
        if let Some(target) = policies.get(&d.policy).and_then(|p| p.aws_backup.as_ref()) {
            // Delegated: the vault's recovery points are what there is to reconcile.
            match import_vault_points(deps, d, &policies[&d.policy], target, now).await {
                Ok(ids) => {
                    for id in ids {
                        log.action("imported", id.as_str(), "vault recovery point had no record");
                        report.imported.push(id);
                    }
                }
                Err(e) => report.errors.push(ItemFailure::new(d.resource.arn.clone(), &e)),
            }
            continue;
        }
        listed
            .entry((d.resource.region.clone(), d.resource.kind))
            .or_default()
            .push(d);
    }
    for ((region, kind), group) in listed {
        let refs: Vec<ResourceRef> = group.iter().map(|d| d.resource.clone()).collect();
        match ports.snapshots.lifeboat_snapshots(&region, kind, &refs).await {
            Ok(snapshots) => found.extend(snapshots.into_iter().map(|(i, s)| (group[i], s))),
            // The region's listing failed: every resource in it goes unreconciled this cycle.
            Err(e) => report
                .errors
                .extend(group.iter().map(|d| ItemFailure::new(d.resource.arn.clone(), &e))),
        }
    }
    match adopt_orphans(deps, found, now).await {
        Ok(ids) => {
            for id in ids {
                log.action("adopted", id.as_str(), "tagged snapshot had no record");
                report.adopted.push(id);
            }
        }
        Err(e) => report.errors.push(ItemFailure::new("catalog", &e)),
    }
}

/// Records the completed recovery points of `d` in the policy's vault that the catalog
/// does not know (compared by recovery point ARN).
async fn import_vault_points(
    deps: &Deps,
    d: &ProtectedResource,
    policy: &Policy,
    target: &lifeboat_domain::AwsBackupTarget,
    now: DateTime<Utc>,
) -> Result<Vec<RecoveryPointId>, PortError> {
    let ports = &deps.ports;
    let in_vault = ports
        .backup
        .recovery_points(&target.vault, Some(&d.resource.arn))
        .await?;
    if in_vault.is_empty() {
        return Ok(Vec::new());
    }
    let known: HashSet<String> = ports
        .catalog
        .by_resource(&d.resource.arn, lifeboat::app::PLAN_POINTS_PER_RESOURCE)
        .await?
        .into_iter()
        .filter_map(|p| p.snapshot_arn)
        .collect();
    let mut imported = Vec::new();
    for vp in in_vault {
        if vp.status != "COMPLETED" || known.contains(&vp.recovery_point_arn) {
            continue;
        }
        let created = vp.created_at.unwrap_or(now);
        let name = lifeboat_domain::naming::vault_point_name(&vp.recovery_point_arn);
        let slot = policy
            .schedule
            .slot_at(created)
            .unwrap_or_else(|| Slot::containing(created, std::time::Duration::from_hours(1)));
        let rp = RecoveryPoint {
            snapshot_arn: Some(vp.recovery_point_arn.clone()),
            detail: lifeboat_domain::Detail::vault(&target.vault, None),
            kms_key_id: vp.encryption_key_arn.clone(),
            adopted: true,
            updated_at: now,
            ..RecoveryPoint::new(
                &d.resource,
                &d.policy,
                slot,
                &d.resource.region,
                &name,
                Status::Available,
                created,
            )
        };
        match ports.catalog.insert(&rp).await {
            Ok(()) => imported.push(rp.id),
            Err(PortError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(imported)
}

/// Records the Lifeboat-tagged snapshots (of every protected resource) the catalog does
/// not know, after one batched read of the catalog.
async fn adopt_orphans(
    deps: &Deps,
    found: Vec<(&ProtectedResource, Snapshot)>,
    now: DateTime<Utc>,
) -> Result<Vec<RecoveryPointId>, PortError> {
    let ports = &deps.ports;
    let ids: Vec<_> = found
        .iter()
        .map(|(d, s)| RecoveryPointId::new(&d.resource.region, d.resource.kind, &s.name))
        .collect();
    let known = lifeboat::app::recorded(ports.catalog.as_ref(), &ids).await?;
    let mut adopted = Vec::new();
    for ((d, s), id) in found.into_iter().zip(ids) {
        if known.contains(&id) {
            continue;
        }
        let policy = tag_value(&s.tags, tags::POLICY).and_then(|p| PolicyName::parse(p).ok());
        let slot = tag_value(&s.tags, tags::SLOT).and_then(Slot::parse_compact);
        let (Some(policy), Some(slot)) = (policy, slot) else {
            tracing::warn!(snapshot = %s.name, "Lifeboat-tagged snapshot without policy/slot tags: not adopted");
            continue;
        };
        let status = s.status.recovery_status();
        let rp = RecoveryPoint {
            snapshot_arn: s.arn.clone(),
            kms_key_id: s.kms_key_id.clone(),
            size_bytes: s.size_bytes,
            failure: (status == Status::Failed).then(|| Failure {
                step: Step::Create,
                code: "snapshot-failed".into(),
                message: "AWS reports the snapshot as failed".into(),
            }),
            adopted: true,
            updated_at: now,
            ..RecoveryPoint::new(
                &d.resource,
                &policy,
                slot,
                &d.resource.region,
                &s.name,
                status,
                s.created_at.unwrap_or_else(|| slot.start()),
            )
        }
        .with_writer_class(tag_value(&s.tags, tags::WRITER_CLASS).map(str::to_owned));
        match ports.catalog.insert(&rp).await {
            Ok(()) => adopted.push(id),
            Err(PortError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(adopted)
}
