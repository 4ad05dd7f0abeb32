//! Retrieving an archived bundle: a vault job started, polled, and its output read back
//! and checked against the tree hash recorded at upload.

use super::{
    Alert, AlertKind, ArchiveRef, Deps, FunctionError, JobStatus, LIVE, PortError, RecoveryPoint, Report, Retrieval,
    RetrievalStatus, RetrievalTier, RetrievalView, RunLog, Severity, load, parse_id, points_in, raise, read_back,
    record,
};

pub(crate) async fn retrieve(
    deps: &Deps,
    id: &str,
    tier: RetrievalTier,
    run_id: &str,
    log: &mut RunLog,
) -> Result<Report, FunctionError> {
    let mut report = Report::new("retrieve", run_id);
    let id = parse_id(id)?;
    let rp = load(deps, &id).await?;
    let Some(archive) = rp.archive().cloned() else {
        return Err(FunctionError::not_found(format!("{id} has no archive")));
    };
    check_vault(deps, &archive)?;
    let now = deps.clock.now();
    if let Some(current) = archive.retrieval.as_ref().filter(|r| r.is_current(now)) {
        log.action("retrieval-current", id.as_str(), current.job_id.clone());
        report.retrieval = Some(RetrievalView::of(&id, current));
        report.replay = true;
        return Ok(report);
    }
    let job_id = deps
        .vault
        .start_retrieval(
            &archive.vault,
            &archive.archive_id,
            tier,
            &format!("lifeboat {id} {run_id}"),
        )
        .await?;
    let started = Retrieval::started(&job_id, tier, now);
    let recorded = record(deps, &id, |current| {
        let a = current.archive()?;
        if a.retrieval.as_ref().is_some_and(|r| r.is_current(now)) {
            return None;
        }
        let archive = ArchiveRef {
            retrieval: Some(started.clone()),
            ..a.clone()
        };
        let mut next = current.clone();
        next.objects_mut()?.archive = Some(archive);
        Some(next)
    })
    .await?;
    if recorded.is_none() {
        // Another request started one meanwhile: that one is the retrieval of record.
        let current = load(deps, &id).await?;
        if let Some(r) = current.archive().and_then(|a| a.retrieval.as_ref()) {
            tracing::warn!(recovery_point = %id, job_id, recorded = %r.job_id, "a retrieval was started meanwhile; this job is not recorded");
            report.retrieval = Some(RetrievalView::of(&id, r));
            report.replay = true;
            return Ok(report);
        }
    }
    log.action("retrieval-started", id.as_str(), format!("{job_id} ({tier})"));
    tracing::info!(recovery_point = %id, job_id, tier = %tier, "archive retrieval started");
    report.retrieval = Some(RetrievalView::of(&id, &started));
    Ok(report)
}

/// This function's Glacier client and permissions cover one vault in one region.
pub(crate) fn check_vault(deps: &Deps, archive: &ArchiveRef) -> Result<(), FunctionError> {
    let s = &deps.settings;
    if archive.region != s.region || archive.vault != s.vault {
        return Err(FunctionError::misconfigured(format!(
            "the archive is in vault {} ({}); this function works on vault {} ({})",
            archive.vault, archive.region, s.vault, s.region
        )));
    }
    Ok(())
}

// --- poll ------------------------------------------------------------------------------

pub(crate) async fn poll(deps: &Deps, run_id: &str, log: &mut RunLog) -> Result<Report, FunctionError> {
    let mut report = Report::new("poll", run_id);
    let mut running = points_in(deps.catalog.as_ref(), &LIVE).await?;
    running.retain(|p| {
        p.archive()
            .as_ref()
            .and_then(|a| a.retrieval.as_ref())
            .is_some_and(|r| r.status == RetrievalStatus::InProgress)
    });
    for rp in running {
        let Some(archive) = rp.archive().cloned() else { continue };
        let Some(retrieval) = archive.retrieval.clone() else {
            continue;
        };
        if check_vault(deps, &archive).is_err() {
            log.action("other-vault", rp.id.as_str(), archive.vault.clone());
            continue;
        }
        let now = deps.clock.now();
        let job = deps.vault.describe_job(&archive.vault, &retrieval.job_id).await?;
        let next = match job {
            None => archive.with_failed_retrieval(
                &format!("Glacier no longer knows job {} (its record expired)", retrieval.job_id),
                now,
            ),
            Some(job) => match job.status {
                JobStatus::InProgress => {
                    report.pending += 1;
                    continue;
                }
                JobStatus::Failed => archive.with_failed_retrieval(
                    &format!(
                        "Glacier reports job {} failed: {}",
                        retrieval.job_id,
                        job.status_message.as_deref().unwrap_or("no reason given")
                    ),
                    now,
                ),
                JobStatus::Succeeded => match deps.vault.job_output(&archive.vault, &retrieval.job_id).await {
                    Ok(output) => {
                        let read = read_back(output, job.tree_hash.as_deref()).await?;
                        archive.with_read_back(&read, deps.clock.now())
                    }
                    Err(PortError::NotFound(m)) => {
                        archive.with_failed_retrieval(&format!("the job's output is gone: {m}"), now)
                    }
                    Err(PortError::InvalidState(_)) => {
                        report.pending += 1;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                },
            },
        };
        let Some(done) = next.retrieval.clone() else { continue };
        if done.status != RetrievalStatus::Verified && raise(deps, retrieval_alert(&rp, &done), run_id).await? {
            report.alerts += 1;
        }
        let job_id = done.job_id.clone();
        record(deps, &rp.id, |current| {
            let same_job = current
                .archive()?
                .retrieval
                .as_ref()
                .is_some_and(|r| r.job_id == job_id && r.status == RetrievalStatus::InProgress);
            if !same_job {
                return None;
            }
            let mut next = current.clone();
            next.objects_mut()?.archive.as_mut()?.retrieval = Some(done.clone());
            Some(next)
        })
        .await?;
        log.action(
            &format!("retrieval-{}", done.status.as_str()),
            rp.id.as_str(),
            done.job_id.clone(),
        );
        tracing::info!(recovery_point = %rp.id, job_id = %done.job_id, status = done.status.as_str(), "archive retrieval completed");
        report.completed.push(RetrievalView::of(&rp.id, &done));
    }
    Ok(report)
}

pub(crate) fn retrieval_alert(rp: &RecoveryPoint, done: &Retrieval) -> Alert {
    let (severity, what) = match done.status {
        RetrievalStatus::Mismatch => (Severity::Critical, "does not match its archive record"),
        _ => (Severity::High, "failed"),
    };
    Alert::new(
        AlertKind::VerificationFailed,
        severity,
        format!("{}: archive retrieval {} {what}", rp.id, done.job_id),
        format!("archive-retrieval#{}", done.job_id),
        done.completed_at.unwrap_or(done.started_at),
    )
    .resource(&rp.resource.arn)
    .recovery_point(&rp.id)
    .location(&rp.location)
    .detail("job_id", done.job_id.clone())
    .detail("status", done.status.as_str())
    .detail("problems", done.problems.join("\n"))
}
