//! Starting exports and following them until RDS finishes or fails them.

use super::{
    Alert, AlertKind, BTreeMap, DateTime, Deps, ErrorType, ExportRecord, ExportRequest, ExportRule, ExportStatus,
    ExportTask, ExportTaskState, Failed, FunctionError, PolicyName, PortError, RecoveryPoint, Report, Running,
    Severity, Started, Utc, Waiting, export_prefix, move_export, raise, save_export, task_id,
};

pub(crate) async fn start(
    deps: &Deps,
    points: &[RecoveryPoint],
    rules: &BTreeMap<PolicyName, ExportRule>,
    dry_run: bool,
    run_id: &str,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let now = deps.clock.now();
    let mut by_resource: BTreeMap<&str, Vec<&RecoveryPoint>> = BTreeMap::new();
    for p in points {
        by_resource.entry(p.resource.arn.as_str()).or_default().push(p);
    }
    for (arn, pts) in by_resource {
        // Oldest first: the last is the newest.
        let Some(newest) = pts.last() else { continue };
        let Some(rule) = rules.get(&newest.policy) else {
            continue;
        };
        let wait = |reason: String| Waiting {
            resource: arn.to_owned(),
            reason,
        };
        if let Some(busy) = pts.iter().find(|p| p.export().is_some_and(|e| e.status.in_flight())) {
            let e = busy.export().map_or("", |e| e.task_id.as_str());
            report
                .waiting
                .push(wait(format!("export {e} of {} is still in flight", busy.id)));
            continue;
        }
        let last = pts
            .iter()
            .filter_map(|p| p.export())
            .filter(|e| e.status != ExportStatus::Failed)
            .map(|e| e.started_at)
            .max();
        if !rule.due(last, now) {
            let next = last.map_or(now, |l| {
                l + chrono::Duration::from_std(rule.every).unwrap_or(chrono::Duration::MAX)
            });
            report.waiting.push(wait(format!(
                "last export started {}; the next is due {}",
                last.map_or_else(String::new, |l| l.format("%Y-%m-%d %H:%M").to_string()),
                next.format("%Y-%m-%d %H:%M")
            )));
            continue;
        }
        let Some(candidate) = pts
            .iter()
            .rev()
            .find(|p| p.is_restorable() && p.snapshot_arn.is_some() && p.backup_vault().is_none())
        else {
            report.waiting.push(wait(format!(
                "no available snapshot in {} (the backup bucket's region) to export",
                deps.settings.backup_region
            )));
            continue;
        };
        if candidate
            .export()
            .as_ref()
            .is_some_and(|e| matches!(e.status, ExportStatus::Archived | ExportStatus::Expired))
        {
            report.waiting.push(wait(format!(
                "the newest snapshot {} is already exported; waiting for a newer one",
                candidate.snapshot_name
            )));
            continue;
        }
        let attempt = candidate.export().map_or(1, |e| e.attempt.saturating_add(1));
        let reason = match last {
            None => format!(
                "never exported; policy {} exports every {}",
                newest.policy,
                humantime::format_duration(rule.every)
            ),
            Some(l) => format!(
                "last export started {}; policy {} exports every {}",
                l.format("%Y-%m-%d"),
                newest.policy,
                humantime::format_duration(rule.every)
            ),
        };
        if dry_run {
            report.started.push(Started {
                recovery_point: candidate.id.clone(),
                task_id: task_id(&candidate.id, &candidate.snapshot_name, attempt),
                prefix: export_prefix(&candidate.resource, &candidate.snapshot_name),
                attempt,
                adopted: false,
                reason,
            });
            continue;
        }
        start_one(deps, candidate, rule, attempt, reason, run_id, report).await?;
    }
    Ok(())
}

pub(crate) async fn start_one(
    deps: &Deps,
    rp: &RecoveryPoint,
    rule: &ExportRule,
    attempt: u32,
    reason: String,
    run_id: &str,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let s = &deps.settings;
    let now = deps.clock.now();
    let request = ExportRequest {
        task_id: task_id(&rp.id, &rp.snapshot_name, attempt),
        source_arn: rp.snapshot_arn.clone().unwrap_or_default(),
        bucket: s.backup_bucket.clone(),
        prefix: export_prefix(&rp.resource, &rp.snapshot_name),
        role_arn: rule.role_arn.clone(),
        kms_key_id: rule.kms_key_id.clone(),
    };
    let mut record = ExportRecord {
        task_id: request.task_id.clone(),
        attempt,
        bucket: request.bucket.clone(),
        prefix: request.prefix.clone(),
        status: ExportStatus::Started,
        class: rule.class,
        started_at: now,
        completed_at: None,
        archived_at: None,
        objects: 0,
        bytes: 0,
        manifest_key: None,
        manifest_sha256: None,
        superseded_pending: 0,
        failure: None,
        expired_at: None,
    };
    let adopted = match deps.exporter.start_export(&request).await {
        Ok(_) => false,
        Err(PortError::AlreadyExists(_)) => {
            let task = deps.exporter.describe_export(&request.task_id).await?.ok_or_else(|| {
                FunctionError::retryable(format!(
                    "export task {} exists but cannot be described yet; try again",
                    request.task_id
                ))
            })?;
            if task.source_arn != request.source_arn {
                return Err(FunctionError::new(
                    ErrorType::Conflict,
                    format!(
                        "export task {} exists for {}, not for {}; it is not adopted",
                        request.task_id, task.source_arn, request.source_arn
                    ),
                ));
            }
            true
        }
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            // Refused for good (role, key, bucket, snapshot state): one alert, recorded
            // failed; the next start tries again under a new task id.
            let why = e.to_string();
            let alerted = raise(deps, failure_alert(rp, &request.task_id, &why, now), run_id).await?;
            report.alerts += usize::from(alerted);
            record.status = ExportStatus::Failed;
            record.failure = Some(why.clone());
            save_export(deps, &rp.id, |_| Some(record.clone())).await?;
            report.failed.push(Failed {
                recovery_point: rp.id.clone(),
                task_id: request.task_id,
                reason: why,
                alerted,
            });
            return Ok(());
        }
    };
    save_export(deps, &rp.id, |current| {
        // A replay that finds the record already written keeps it (and its start time).
        match current {
            Some(e) if e.task_id == record.task_id => None,
            _ => Some(record.clone()),
        }
    })
    .await?;
    tracing::info!(recovery_point = %rp.id, task_id = %request.task_id, adopted, "export started");
    report.started.push(Started {
        recovery_point: rp.id.clone(),
        task_id: request.task_id,
        prefix: request.prefix,
        attempt,
        adopted,
        reason,
    });
    Ok(())
}

pub(crate) fn failure_alert(rp: &RecoveryPoint, task_id: &str, why: &str, at: DateTime<Utc>) -> Alert {
    Alert::new(
        AlertKind::BackupFailed,
        Severity::High,
        format!("{}: snapshot export {task_id} failed: {why}", rp.id),
        format!("export-failed#{task_id}"),
        at,
    )
    .resource(&rp.resource.arn)
    .recovery_point(&rp.id)
    .location(&rp.location)
    .detail("step", "export")
    .detail("task_id", task_id)
    .detail("reason", why)
}

// --- poll ------------------------------------------------------------------------------

pub(crate) async fn poll_one(
    deps: &Deps,
    rp: &RecoveryPoint,
    run_id: &str,
    stop_at: Option<DateTime<Utc>>,
    budget: &mut u64,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let Some(export) = rp.export().cloned() else {
        return Ok(());
    };
    let mut rp = rp.clone();
    if export.status == ExportStatus::Started {
        let task = deps.exporter.describe_export(&export.task_id).await?;
        match task.as_ref().map(|t| &t.state) {
            None => {
                return fail(
                    deps,
                    &rp,
                    &export,
                    "RDS no longer knows the export task",
                    run_id,
                    report,
                )
                .await;
            }
            Some(ExportTaskState::Failed | ExportTaskState::Canceled) => {
                let why = task.as_ref().map_or_else(String::new, failure_reason);
                return fail(deps, &rp, &export, &why, run_id, report).await;
            }
            Some(ExportTaskState::Complete) => {
                let now = deps.clock.now();
                let Some(next) = save_export(deps, &rp.id, |current| {
                    let mut e = current?.clone();
                    (e.task_id == export.task_id && e.status == ExportStatus::Started).then(|| {
                        e.status = ExportStatus::Moving;
                        e.completed_at = Some(now);
                        e
                    })
                })
                .await?
                else {
                    return Ok(());
                };
                rp = next;
            }
            Some(other) => {
                report.running.push(Running {
                    recovery_point: rp.id.clone(),
                    task_id: export.task_id.clone(),
                    state: other.as_str().to_owned(),
                    percent_progress: task.as_ref().and_then(|t| t.percent_progress),
                });
                return Ok(());
            }
        }
    }
    // RDS writes at least its export_info JSON under the task's prefix: nothing there
    // means the export went elsewhere or was removed, and is not recorded as archived.
    let first = deps
        .backup
        .list_page(&export.bucket, &export.data_prefix(), None, 1)
        .await?;
    if first.objects.is_empty() {
        let why = format!(
            "RDS reports the export COMPLETE but nothing is under s3://{}/{}",
            export.bucket,
            export.data_prefix()
        );
        return fail(deps, &rp, &export, &why, run_id, report).await;
    }
    move_export(deps, &rp, stop_at, budget, report).await
}

pub(crate) fn failure_reason(t: &ExportTask) -> String {
    match &t.failure_cause {
        Some(cause) => format!("{}: {cause}", t.state.as_str()),
        None => t.state.as_str().to_owned(),
    }
}

/// Alert once, then record the export failed (a crash in between: the rerun finds the
/// alert sent and records).
pub(crate) async fn fail(
    deps: &Deps,
    rp: &RecoveryPoint,
    export: &ExportRecord,
    why: &str,
    run_id: &str,
    report: &mut Report,
) -> Result<(), FunctionError> {
    let alerted = raise(deps, failure_alert(rp, &export.task_id, why, deps.clock.now()), run_id).await?;
    report.alerts += usize::from(alerted);
    save_export(deps, &rp.id, |current| {
        let mut e = current?.clone();
        (e.task_id == export.task_id && e.status.in_flight()).then(|| {
            e.status = ExportStatus::Failed;
            e.failure = Some(why.to_owned());
            e
        })
    })
    .await?;
    report.failed.push(Failed {
        recovery_point: rp.id.clone(),
        task_id: export.task_id.clone(),
        reason: why.to_owned(),
        alerted,
    });
    Ok(())
}
