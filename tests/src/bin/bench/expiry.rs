//! Expiring S3 runs: the calls one hourly expiry makes for the run retention lets go,
//! beside the least any expiry needs (one delete per copy version that no kept run
//! references). 100 hourly runs of a 10,000-object prefix with 1% of the objects changed
//! before each run, made by the real backup-objects; the real expire-recovery-points runs
//! after each backup under `retain: 10`, so each tick expires one run in steady state.
//! Both on the in-memory fakes, which count every call (S3, catalog, discovery) as the
//! adapters would make it: the figure is calls, not time.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use expire_recovery_points::{BackupStore, Deps};
use lifeboat::object_store::settings::S3Settings;
use lifeboat_testkit::Fakes;
use lifeboat_testkit::objects::InMemoryObjectStore;
use serde_json::json;

use super::{Figure, Result, err};

const OBJECTS: usize = 10_000;
const RUNS: usize = 100;
const CHURN: usize = OBJECTS / 100;
const KEEP: usize = 10;

pub fn expiry_figure() -> Result<Figure> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(measure())
}

fn hour(h: usize) -> DateTime<Utc> {
    let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap_or_default();
    start + chrono::Duration::hours(i64::try_from(h).unwrap_or(0))
}

async fn measure() -> Result<Figure> {
    eprintln!("expiring S3 runs: {RUNS} runs of {OBJECTS} objects, {CHURN} changed before each, keep {KEEP}…");
    let fakes = Fakes::new(hour(0));
    fakes.catalog.put_policy_json(
        "media",
        &format!(r#"{{"name": "media", "every": "1h", "rpo": "2h", "retain": {KEEP}, "s3": [{{"bucket": "photos", "prefix": "p/"}}]}}"#),
    );
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket("photos", true);
    store.create_bucket("vault", true);
    let settings = S3Settings::from_lookup(|k| match k {
        "BACKUP_BUCKET_NAME" => Some("vault".into()),
        "AWS_REGION" | "BACKUP_REGION" => Some("us-west-2".into()),
        "SOURCE_REGION" => Some("us-east-1".into()),
        "OBJECT_LOCK_MODE" => Some("GOVERNANCE".into()),
        "OBJECT_LOCK_DURATION" => Some("30m".into()),
        _ => None,
    })
    .map_err(|e| err(e.to_string()))?;
    let backup = backup_objects::Deps {
        catalog: fakes.catalog.clone(),
        notifier: fakes.notifier.clone(),
        clock: fakes.clock.clone(),
        source: store.clone(),
        backup: store.clone(),
        settings,
        changes: Arc::new(lifeboat_testkit::changes::InMemoryChangeFeed::new("unused", hour(0))),
    };
    let expire = Deps {
        ports: fakes.ports(),
        config: lifeboat_testkit::Fakes::config(),
        backups: Some(BackupStore(store.clone())),
    };
    for i in 0..OBJECTS {
        store.insert("photos", &format!("p/{i:05}"), format!("object {i}").as_bytes());
    }
    let (mut calls, mut minimum, mut expired, mut shared) = (0usize, 0u64, 0usize, 0u64);
    for h in 0..RUNS {
        if h > 0 {
            for j in 0..CHURN {
                let i = (h * CHURN + j * 97) % OBJECTS;
                store.insert("photos", &format!("p/{i:05}"), format!("object {i} at {h}").as_bytes());
            }
        }
        fakes.clock.set(hour(h) + chrono::Duration::minutes(5));
        store.set_now(hour(h) + chrono::Duration::minutes(5));
        let req = json!({"bucket": "photos", "prefix": "p/", "policy": "media",
                         "scheduledTime": hour(h).to_rfc3339()});
        backup_objects::handle(&backup, lifeboat_testkit::event(req))
            .await
            .map_err(|e| err(format!("backup {h}: {e}")))?;

        let tick = hour(h) + chrono::Duration::minutes(30);
        fakes.clock.set(tick + chrono::Duration::minutes(1));
        store.set_now(tick + chrono::Duration::minutes(1));
        let before = fakes.catalog.calls() + store.total_calls() + fakes.snapshots.total_calls();
        let deletes_before = store.calls(lifeboat_testkit::objects::ObjectOp::Delete);
        let report = expire_recovery_points::handle(
            &expire,
            lifeboat_testkit::event(json!({"scheduledTime": tick.to_rfc3339()})),
        )
        .await
        .map_err(|e| err(format!("expire {h}: {e}")))?;
        if !report.failed.is_empty() || !report.skipped.is_empty() {
            return Err(err(format!("expiry after run {h} did not finish: {report:?}")));
        }
        if report.expired.is_empty() {
            continue;
        }
        calls += fakes.catalog.calls() + store.total_calls() + fakes.snapshots.total_calls() - before;
        // The least: one delete per copy version (and the manifest) this run alone held.
        let deletes = store.calls(lifeboat_testkit::objects::ObjectOp::Delete) - deletes_before;
        minimum += u64::try_from(deletes).unwrap_or(0);
        expired += report.expired.len();
        shared += report.expired.iter().filter_map(|e| e.copies_shared).sum::<u64>();
    }
    if expired == 0 {
        return Err(err("no run expired"));
    }
    #[allow(clippy::cast_precision_loss)]
    let (per_run, least) = (calls as f64 / expired as f64, minimum as f64 / expired as f64);
    let ratio = per_run / least;
    Ok(Figure {
        name: format!("expiring S3 runs ({RUNS} runs of {OBJECTS} objects, 1% churn, keep {KEEP})"),
        value: Some(per_run),
        unit: "calls per expired run",
        peer: "the least: one delete per copy no kept run references".into(),
        peer_value: Some(least),
        target: "≤ 1.5× the least".into(),
        met: Some(ratio <= 1.5),
        notes: vec![
            format!("{expired} runs expired, one per hourly tick; {minimum} versions deleted in all"),
            format!("{shared} copy references left for the kept runs that still name them"),
            "calls counted on the in-memory fakes: catalog reads and writes, S3 gets, heads and deletes, discovery"
                .into(),
        ],
    })
}
