//! Damaged copies of earlier runs: which a run repaired, and the alert for those the
//! source can no longer repair.

use std::collections::{BTreeSet, HashMap};

use lifeboat::alerting::Alerter;
use lifeboat::app::RunLog;
use lifeboat_domain::manifest::{Manifest, ManifestEntry};
use lifeboat_domain::{Alert, AlertKind, Severity};

use crate::Deps;
use crate::request::{BackupRequest, RunId};

/// Logs and alerts (once per run) the damaged copies the source can no longer repair.
pub(crate) async fn report_unrecoverable(
    deps: &Deps,
    id: &RunId,
    req: &BackupRequest,
    keys: &[String],
    log: &mut RunLog,
) {
    for key in keys {
        tracing::error!(run = %id.run, key = %key, "damaged backup copy whose content the source no longer has");
        log.action(
            "unrecoverable",
            key.clone(),
            "the source no longer has the damaged copy's content",
        );
    }
    if !keys.is_empty() {
        alert_unrecoverable(deps, id, &req.bucket, &req.prefix, keys, &id.run).await;
    }
}

/// One alert per run: damaged copies of earlier runs that the source can no longer repair.
pub(crate) async fn alert_unrecoverable(
    deps: &Deps,
    id: &RunId,
    bucket: &str,
    prefix: &str,
    keys: &[String],
    run_id: &str,
) {
    let now = deps.clock.now();
    let alert = Alert::new(
        AlertKind::VerificationFailed,
        Severity::Critical,
        format!(
            "{} damaged backup cop(ies) of s3://{bucket}/{prefix} cannot be repaired: the source no longer has their content",
            keys.len()
        ),
        format!("unrecoverable/{}", id.run),
        now,
    )
    .resource(id.resource.arn.clone())
    .detail("run", id.run.clone())
    .detail("objects", keys.iter().take(100).cloned().collect::<Vec<_>>().join(", "));
    Alerter::new(deps.catalog.clone(), deps.notifier.clone(), deps.clock.clone())
        .raise_or_log(alert, run_id)
        .await;
}

/// Which damaged keys this run repaired (copied again with the content the previous run
/// recorded) and which it could not (the source changed or deleted them since).
pub(crate) fn healing(
    damaged: &BTreeSet<String>,
    prev: &HashMap<&str, &ManifestEntry>,
    entries: &[ManifestEntry],
) -> (Vec<String>, Vec<String>) {
    let now: HashMap<&str, &ManifestEntry> = entries.iter().map(|e| (e.key.as_str(), e)).collect();
    let mut healed = Vec::new();
    let mut lost = Vec::new();
    for key in damaged {
        let Some(was) = prev.get(key.as_str()) else { continue };
        match now.get(key.as_str()) {
            Some(e) if e.sha256 == was.sha256 && e.copied_in != was.copied_in => healed.push(key.clone()),
            _ => lost.push(key.clone()),
        }
    }
    (healed, lost)
}

/// The previous run's live entries by key (only those `keep` accepts).
pub(crate) fn previous_entries(
    previous: Option<&Manifest>,
    keep: impl Fn(&str) -> bool,
) -> HashMap<&str, &ManifestEntry> {
    previous
        .map(|m| m.live().filter(|e| keep(&e.key)).map(|e| (e.key.as_str(), e)).collect())
        .unwrap_or_default()
}
