//! `create-snapshots`: on each schedule tick, one manual snapshot per protected resource
//! per schedule slot, recorded in the catalog.
//!
//! Idempotent by construction: the snapshot name is derived from resource + policy + slot,
//! so a replayed tick finds the snapshot (or the record) it already made. A crash between
//! `CreateDBSnapshot` and the catalog write is healed by the next tick of the same slot
//! (`AlreadyExists` → adopt) or, for an older slot, by `track-recovery-points`.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::app::{ItemFailure, Ports, RunLog, load_policies};
use lifeboat::config::Config;
use lifeboat::domain::naming::{snapshot_name, tags};
use lifeboat::domain::{
    Alert, AlertKind, Failure, Policy, PolicyName, RecoveryPoint, RecoveryPointId, ResourceRef, Severity, Slot, Status,
    Step,
};
use lifeboat::events::ScheduleTick;
use lifeboat::ports::{PortError, Snapshot, SnapshotStatus, Tag, tag_value};
use serde::Serialize;
use serde_json::Value;

pub const FUNCTION: &str = "create-snapshots";
/// Snapshots started concurrently within one run.
const CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub struct Deps {
    pub ports: Ports,
    pub config: Config,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub run_id: String,
    /// The slot each policy's tick fell into.
    pub slots: BTreeMap<String, String>,
    pub created: Vec<RecoveryPointId>,
    /// Snapshots found in AWS that the catalog did not know (after a crash).
    pub adopted: Vec<RecoveryPointId>,
    /// Already recorded for this slot: nothing done.
    pub already_recorded: usize,
    pub failed: Vec<ItemFailure>,
    /// Resources not backed up this tick, and why.
    pub skipped: Vec<ItemFailure>,
}

/// The Lambda entry point.
pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    let tick = ScheduleTick::parse(&event.payload)?;
    run(deps, &tick, &event.context.request_id).await
}

struct Wanted {
    resource: ResourceRef,
    policy: PolicyName,
    slot: Slot,
    name: String,
    id: RecoveryPointId,
}

enum Outcome {
    Created(RecoveryPointId),
    Adopted(RecoveryPointId),
    AlreadyRecorded,
    Failed(ItemFailure, bool),
}

pub async fn run(deps: &Deps, tick: &ScheduleTick, run_id: &str) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let alerter = ports.alerter();
    let now = ports.clock.now();
    let mut log = RunLog::start(FUNCTION, run_id, now);
    let mut report = Report {
        run_id: run_id.to_owned(),
        ..Report::default()
    };

    let policies = load_policies(ports.catalog.as_ref(), &alerter, run_id, now).await?;
    if let Some(p) = &tick.policy
        && !policies.contains_key(p)
    {
        return Err(FunctionError::not_found(format!(
            "policy {p} does not exist or is invalid"
        )));
    }
    let discovered = ports
        .snapshots
        .protected_resources(&deps.config.primary_region, &deps.config.policy_tag_key)
        .await?;

    let mut wanted = Vec::new();
    for d in discovered {
        let tag = tag_value(&d.tags, &deps.config.policy_tag_key)
            .unwrap_or_default()
            .to_owned();
        let policy = PolicyName::parse(&tag).ok().and_then(|n| policies.get(&n));
        let Some(policy) = policy else {
            report
                .skipped
                .push(unknown_policy(&alerter, &d.resource, &tag, run_id, now).await);
            log.action("skipped", &d.resource.arn, "unknown policy");
            continue;
        };
        if tick.policy.as_ref().is_some_and(|p| p != &policy.name) {
            continue;
        }
        // The rule in force at the scheduled time: the window rule while a window is open.
        let effective = policy.effective(tick.scheduled_time, &[]);
        let Some(slot) = effective.slot else {
            report.skipped.push(ItemFailure {
                subject: d.resource.arn.clone(),
                code: "no-slot".into(),
                message: format!("{} has not fired yet", effective.schedule),
            });
            continue;
        };
        wanted.push(want(&d.resource, policy, slot));
        report.slots.insert(policy.name.to_string(), slot.to_string());
    }

    let ids: Vec<_> = wanted.iter().map(|w| w.id.clone()).collect();
    let recorded: HashSet<_> = ports
        .catalog
        .get_many(&ids)
        .await?
        .into_iter()
        .map(|rp| rp.id)
        .collect();
    report.already_recorded = wanted.iter().filter(|w| recorded.contains(&w.id)).count();
    let todo: Vec<_> = wanted.into_iter().filter(|w| !recorded.contains(&w.id)).collect();

    let outcomes: Vec<Outcome> = stream::iter(todo)
        .map(|w| ensure(deps, &alerter, w, run_id))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut transient = 0usize;
    for outcome in outcomes {
        match outcome {
            Outcome::Created(id) => {
                log.action("created", id.as_str(), "snapshot started and recorded");
                report.created.push(id);
            }
            Outcome::Adopted(id) => {
                log.action("adopted", id.as_str(), "existing snapshot recorded");
                report.adopted.push(id);
            }
            Outcome::AlreadyRecorded => report.already_recorded += 1,
            Outcome::Failed(f, is_transient) => {
                transient += usize::from(is_transient);
                log.action("failed", &f.subject, format!("{}: {}", f.code, f.message));
                report.failed.push(f);
            }
        }
    }
    report.created.sort();
    report.adopted.sort();
    log.finish(ports.catalog.as_ref(), ports.clock.now()).await;
    if transient > 0 {
        // Everything else is done; a retry of this tick redoes only what failed.
        return Err(FunctionError::retryable(format!(
            "{transient} snapshot(s) hit throttling or service errors after retries; the tick is safe to retry"
        )));
    }
    Ok(report)
}

fn want(resource: &ResourceRef, policy: &Policy, slot: Slot) -> Wanted {
    let name = snapshot_name(&policy.name, resource, slot);
    let id = RecoveryPointId::new(&resource.region, resource.kind, &name);
    Wanted {
        resource: resource.clone(),
        policy: policy.name.clone(),
        slot,
        name,
        id,
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

/// Makes sure the slot's snapshot exists and is recorded.
async fn ensure(deps: &Deps, alerter: &lifeboat::alerting::Alerter, w: Wanted, run_id: &str) -> Outcome {
    let ports = &deps.ports;
    let tags = snapshot_tags(&w.policy, w.slot, &w.resource);
    let (snapshot, adopted) = match ports.snapshots.create_snapshot(&w.resource, &w.name, &tags).await {
        Ok(s) => (s, false),
        Err(PortError::AlreadyExists(_)) => match ports
            .snapshots
            .describe_snapshot(&w.resource.region, w.resource.kind, &w.name)
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
            format!("snapshot {} of {} failed", w.name, w.resource.id),
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
    w: &Wanted,
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
        updated_at: now,
        ..RecoveryPoint::new(
            &w.resource,
            &w.policy,
            w.slot,
            &w.resource.region,
            &w.name,
            status,
            snapshot.created_at.unwrap_or(now),
        )
    }
}

fn failed(w: &Wanted, e: &PortError) -> Outcome {
    tracing::warn!(recovery_point = %w.id, error = %e, "snapshot not made");
    Outcome::Failed(ItemFailure::new(w.id.as_str(), e), e.is_transient())
}

/// A refusal that retrying will not cure (quota, KMS, resource gone): recorded as a failed
/// recovery point so the catalog shows it, and alerted once.
async fn record_failure(
    deps: &Deps,
    alerter: &lifeboat::alerting::Alerter,
    w: &Wanted,
    e: &PortError,
    run_id: &str,
) -> Outcome {
    let now = deps.ports.clock.now();
    let empty = Snapshot {
        kind: w.resource.kind,
        region: w.resource.region.clone(),
        name: w.name.clone(),
        arn: None,
        status: SnapshotStatus::Failed,
        created_at: None,
        kms_key_id: None,
        tags: Vec::new(),
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

async fn unknown_policy(
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
