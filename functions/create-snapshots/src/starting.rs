//! Starting what a run decided: a snapshot, an AWS Backup job or a data set's run per
//! create action, a few at a time, each recorded in the catalog (or adopted when AWS
//! already has it) and every failure recorded and alerted once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use lifeboat::app::ItemFailure;
use lifeboat_domain::naming::tags;
use lifeboat_domain::planner::CreateAction;
use lifeboat_domain::{
    Alert, AlertKind, AwsBackupTarget, Failure, Policy, PolicyName, RecoveryPoint, ResourceRef, Severity, Slot, Status,
    Step,
};
use lifeboat_ports::{PortError, Snapshot, SnapshotStatus, Tag};

use crate::{CONCURRENCY, Deps, Outcome, data_runs};

/// Starts one chunk of creates, a few at a time.
pub(crate) async fn start_chunk(
    deps: &Deps,
    policies: &BTreeMap<PolicyName, Policy>,
    alerter: &lifeboat::alerting::Alerter,
    chunk: Vec<CreateAction>,
    run_id: &str,
) -> Vec<Outcome> {
    stream::iter(chunk)
        .map(|c| {
            let policy = policies.get(&c.policy);
            let delegated = policy.and_then(|p| p.aws_backup.as_ref());
            async move {
                match (policy, delegated) {
                    (Some(p), _) if c.resource.kind.is_data_set() => start_run(deps, p, c).await,
                    (_, Some(target)) => ensure_job(deps, alerter, c, target, run_id).await,
                    _ => ensure(deps, alerter, c, run_id).await,
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// Starts a data set's run; its record appears when the run completes.
async fn start_run(deps: &Deps, policy: &Policy, w: CreateAction) -> Outcome {
    match data_runs::start(&deps.runs, policy, &w).await {
        Ok(how) => Outcome::Started(w.id, how),
        Err(f) => {
            let transient = matches!(f.code.as_str(), "throttled" | "unavailable");
            tracing::warn!(recovery_point = %w.id, code = %f.code, message = %f.message, "run not started");
            Outcome::Failed(f, transient)
        }
    }
}

/// The tags every Lifeboat snapshot carries; they let a later run adopt it.
pub fn snapshot_tags(policy: &PolicyName, slot: Slot, resource: &ResourceRef) -> Vec<Tag> {
    vec![
        Tag::new(tags::CREATED_BY, tags::CREATED_BY_VALUE),
        Tag::new(tags::POLICY, policy.as_str()),
        Tag::new(tags::SLOT, slot.compact()),
        Tag::new(tags::SOURCE, &resource.arn),
    ]
}

/// For a policy that delegates to AWS Backup: makes sure the slot's backup job is started
/// (StartBackupJob's idempotency token is the slot's name, so a replay gets the same job)
/// and recorded as pending; track-recovery-points follows the job. A vault that the
/// policy requires to be locked but is not gets no backup, a failed record and an alert.
async fn ensure_job(
    deps: &Deps,
    alerter: &lifeboat::alerting::Alerter,
    w: CreateAction,
    target: &AwsBackupTarget,
    run_id: &str,
) -> Outcome {
    let ports = &deps.ports;
    if target.require_lock {
        match ports.backup.vault_lock(&target.vault).await {
            Ok(lock) if lock.locked => {}
            Ok(_) => {
                let e = PortError::InvalidState(format!(
                    "backup vault {} is not protected by Vault Lock, which policy {} requires",
                    target.vault, w.policy
                ));
                return record_failure(deps, alerter, &w, &e, run_id).await;
            }
            Err(e) if e.is_transient() => return failed(&w, &e),
            Err(e) => return record_failure(deps, alerter, &w, &e, run_id).await,
        }
    }
    let job = match ports
        .backup
        .start_backup_job(&target.vault, &w.resource.arn, &target.role_arn, &w.snapshot_name, None)
        .await
    {
        Ok(job) => job,
        Err(e) if e.is_transient() => return failed(&w, &e),
        Err(e) => return record_failure(deps, alerter, &w, &e, run_id).await,
    };
    let now = ports.clock.now();
    let rp = RecoveryPoint {
        snapshot_arn: job.recovery_point_arn,
        detail: lifeboat_domain::Detail::vault(&target.vault, Some(job.job_id)),
        emergency: w.emergency,
        ..RecoveryPoint::new(
            &w.resource,
            &w.policy,
            w.slot,
            &w.resource.region,
            &w.snapshot_name,
            Status::Pending,
            now,
        )
    };
    match ports.catalog.insert(&rp).await {
        Ok(()) => Outcome::Created(w.id),
        Err(PortError::Conflict(_)) => Outcome::AlreadyRecorded,
        Err(e) => failed(&w, &e),
    }
}

/// Makes sure the slot's snapshot exists and is recorded.
async fn ensure(deps: &Deps, alerter: &lifeboat::alerting::Alerter, w: CreateAction, run_id: &str) -> Outcome {
    let ports = &deps.ports;
    let tags = snapshot_tags(&w.policy, w.slot, &w.resource);
    let (snapshot, adopted) = match ports
        .snapshots
        .create_snapshot(&w.resource, &w.snapshot_name, &tags)
        .await
    {
        Ok(s) => (s, false),
        Err(PortError::AlreadyExists(_)) => match ports
            .snapshots
            .describe_snapshot(&w.resource.region, w.resource.kind, &w.snapshot_name)
            .await
        {
            Ok(Some(s)) => (s, true),
            Ok(None) => {
                return failed(
                    &w,
                    &PortError::Unavailable("snapshot exists but cannot be described yet".into()),
                );
            }
            Err(e) => return failed(&w, &e),
        },
        Err(e) if e.is_transient() => return failed(&w, &e),
        Err(e @ PortError::InvalidState(_)) => {
            // The resource is busy (e.g. modifying): later ticks of this slot try again.
            let alert = Alert::new(
                AlertKind::BackupFailed,
                Severity::Warning,
                format!("cannot snapshot {} now: {e}", w.resource.id),
                w.id.as_str(),
                ports.clock.now(),
            )
            .resource(&w.resource.arn)
            .recovery_point(&w.id);
            alerter.raise_or_log(alert, run_id).await;
            return failed(&w, &e);
        }
        Err(e) => return record_failure(deps, alerter, &w, &e, run_id).await,
    };
    let now = ports.clock.now();
    let status = snapshot.status.recovery_status();
    let failure = (status == Status::Failed).then(|| Failure {
        step: Step::Create,
        code: "snapshot-failed".into(),
        message: "AWS reports the snapshot as failed".into(),
    });
    let rp = record(&w, &snapshot, status, failure, adopted, now);
    match ports.catalog.insert(&rp).await {
        Ok(()) => {}
        Err(PortError::Conflict(_)) => return Outcome::AlreadyRecorded,
        Err(e) => return failed(&w, &e),
    }
    if status == Status::Failed {
        let alert = Alert::new(
            AlertKind::BackupFailed,
            Severity::High,
            format!("snapshot {} of {} failed", w.snapshot_name, w.resource.id),
            w.id.as_str(),
            now,
        )
        .resource(&w.resource.arn)
        .recovery_point(&w.id);
        alerter.raise_or_log(alert, run_id).await;
    }
    if adopted {
        Outcome::Adopted(w.id)
    } else {
        Outcome::Created(w.id)
    }
}

fn record(
    w: &CreateAction,
    snapshot: &Snapshot,
    status: Status,
    failure: Option<Failure>,
    adopted: bool,
    now: DateTime<Utc>,
) -> RecoveryPoint {
    RecoveryPoint {
        snapshot_arn: snapshot.arn.clone(),
        kms_key_id: snapshot.kms_key_id.clone(),
        failure,
        adopted,
        emergency: w.emergency,
        updated_at: now,
        ..RecoveryPoint::new(
            &w.resource,
            &w.policy,
            w.slot,
            &w.resource.region,
            &w.snapshot_name,
            status,
            snapshot.created_at.unwrap_or(now),
        )
    }
    .with_writer_class(
        lifeboat_ports::tag_value(&snapshot.tags, lifeboat_domain::naming::tags::WRITER_CLASS).map(str::to_owned),
    )
}

fn failed(w: &CreateAction, e: &PortError) -> Outcome {
    tracing::warn!(recovery_point = %w.id, error = %e, "snapshot not made");
    Outcome::Failed(ItemFailure::new(w.id.as_str(), e), e.is_transient())
}

/// A refusal that retrying will not cure (quota, KMS, resource gone): recorded as a failed
/// recovery point so the catalog shows it, and alerted once.
async fn record_failure(
    deps: &Deps,
    alerter: &lifeboat::alerting::Alerter,
    w: &CreateAction,
    e: &PortError,
    run_id: &str,
) -> Outcome {
    let now = deps.ports.clock.now();
    let empty = Snapshot {
        kind: w.resource.kind,
        region: w.resource.region.clone(),
        name: w.snapshot_name.clone(),
        arn: None,
        status: SnapshotStatus::Failed,
        created_at: None,
        kms_key_id: None,
        tags: Vec::new(),
        size_bytes: None,
    };
    let failure = Failure {
        step: Step::Create,
        code: e.code().into(),
        message: e.to_string(),
    };
    let rp = record(w, &empty, Status::Failed, Some(failure), false, now);
    match deps.ports.catalog.insert(&rp).await {
        Ok(()) => {
            let severity = if matches!(e, PortError::QuotaExceeded(_)) {
                Severity::Critical
            } else {
                Severity::High
            };
            let alert = Alert::new(
                AlertKind::BackupFailed,
                severity,
                format!("snapshot of {} refused: {}", w.resource.id, e.code()),
                w.id.as_str(),
                now,
            )
            .resource(&w.resource.arn)
            .recovery_point(&w.id)
            .detail("error", e.to_string());
            alerter.raise_or_log(alert, run_id).await;
            failed(w, e)
        }
        Err(PortError::Conflict(_)) => Outcome::AlreadyRecorded,
        Err(write) => failed(w, &write),
    }
}

pub(crate) async fn unknown_policy(
    alerter: &lifeboat::alerting::Alerter,
    resource: &ResourceRef,
    tag: &str,
    run_id: &str,
    now: DateTime<Utc>,
) -> ItemFailure {
    let shown: String = tag.chars().take(64).collect();
    let message = format!("tagged with policy {shown:?}, which does not exist or is invalid: not backed up");
    let alert = Alert::new(
        AlertKind::UnknownPolicy,
        Severity::High,
        format!("{} is {message}", resource.id),
        format!("{}#{shown}#{}", resource.arn, now.format("%Y-%m-%d")),
        now,
    )
    .resource(&resource.arn);
    alerter.raise_or_log(alert, run_id).await;
    ItemFailure {
        subject: resource.arn.clone(),
        code: "unknown-policy".into(),
        message,
    }
}
