//! A data set a policy names, in the demo: policy `media` protects a bucket prefix; the
//! deployed create-snapshots, ticked for three hourly slots, starts each slot's run (an
//! asynchronous invocation of the deployed backup-objects through the local Lambda
//! bridge); at the end of the demo, once the copies' one-minute locks (the local stack's
//! `OBJECT_LOCK_DURATION`) have lapsed, the deployed expire-recovery-points lets the two
//! older runs go under `retain: 1` and deletes only the copies the kept run does not
//! reference.

use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use lifeboat_domain::{RecoveryPoint, RecoveryPointId};
use lifeboat_ports::Catalog;
use lifeboat_tests::s3::{ensure_backup_bucket, put, source_bucket};
use lifeboat_tests::{PRIMARY, Result, TestEnv};
use serde_json::{Value, json};

/// The backup bucket the deployed S3 functions write (`infra/local/functions.env`).
const BACKUP_BUCKET: &str = "lifeboat-backups";

pub struct Scheduled {
    runs: Vec<RecoveryPointId>,
    last_run_at: DateTime<Utc>,
    lock: Duration,
}

async fn invoke(env: &TestEnv, function: &str, payload: &Value) -> Result<Value> {
    let (error, out) = env.invoke(function, &payload.to_string()).await?;
    match error {
        Some(e) => Err(format!("{function} failed ({e}): {out}").into()),
        None => Ok(out),
    }
}

fn tick(at: DateTime<Utc>, policy: &str) -> Value {
    json!({"scheduledTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "policy": policy})
}

async fn wait_for(env: &TestEnv, id: &RecoveryPointId) -> Result<RecoveryPoint> {
    let started = Instant::now();
    loop {
        if let Some(rp) = env.catalog().get(id).await? {
            return Ok(rp);
        }
        if started.elapsed() > Duration::from_mins(2) {
            return Err(format!("run {id} was never recorded").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Three scheduled runs of policy `media`'s data set, one per hourly slot.
pub async fn scheduled(env: &TestEnv) -> Result<Scheduled> {
    let src = env.name("media");
    source_bucket(env, &src).await?;
    ensure_backup_bucket(env, BACKUP_BUCKET).await?;
    env.put_policy(&format!(
        r#"{{"name": "media", "every": "1h", "rpo": "2h", "retain": 1, "s3": [{{"bucket": "{src}", "prefix": "photos/"}}]}}"#
    ))
    .await?;
    println!("Data sets a policy names: policy media (every 1h, retain 1) protects s3://{src}/photos/ ({PRIMARY})");
    for i in 0..12 {
        put(
            env,
            PRIMARY,
            &src,
            &format!("photos/{i:02}.jpg"),
            format!("photo {i}\n").repeat(100).as_bytes(),
        )
        .await?;
    }
    let hour = Utc::now().duration_trunc(chrono::Duration::hours(1))?;
    let mut runs = Vec::new();
    let mut last_run_at = Utc::now();
    for (i, changed) in [0usize, 3, 1].into_iter().enumerate() {
        for k in 0..changed {
            put(
                env,
                PRIMARY,
                &src,
                &format!("photos/{k:02}.jpg"),
                format!("photo {k}, edit {i}\n").as_bytes(),
            )
            .await?;
        }
        let at = hour - chrono::Duration::hours(2 - i64::try_from(i)?) + chrono::Duration::seconds(5);
        let started = Instant::now();
        let report = invoke(env, "create-snapshots", &tick(at, "media")).await?;
        let id: RecoveryPointId = serde_json::from_value(
            report["started"]
                .get(0)
                .cloned()
                .ok_or_else(|| format!("the {at} tick started no run: {report}"))?,
        )?;
        let rp = wait_for(env, &id).await?;
        last_run_at = Utc::now();
        let m = rp.manifest().ok_or("the run has no manifest")?;
        let shared = m.objects.saturating_sub(m.copied);
        println!(
            "  tick of slot {} started run {} (backup-objects, asynchronously): recorded after {} ms, {} objects: {} copied{}",
            at.format("%H:00"),
            rp.snapshot_name,
            started.elapsed().as_millis(),
            m.objects,
            m.copied,
            if shared > 0 {
                format!(", {shared} unchanged sharing the previous run's copies")
            } else {
                String::new()
            }
        );
        runs.push(id);
    }
    println!();
    Ok(Scheduled {
        runs,
        last_run_at,
        lock: Duration::from_mins(1),
    })
}

/// Retention, once the copies' locks have lapsed: the two older runs expire.
pub async fn expire(env: &TestEnv, s: Scheduled) -> Result<()> {
    let lapse = s.last_run_at + chrono::Duration::from_std(s.lock)? + chrono::Duration::seconds(2);
    let wait = (lapse - Utc::now()).to_std().unwrap_or_default();
    println!(
        "\nRetention of policy media (keep 1): waiting {} s for the runs' Object Lock (a minute on the local stack) to lapse",
        wait.as_secs()
    );
    tokio::time::sleep(wait).await;
    let report = invoke(env, "expire-recovery-points", &tick(Utc::now(), "media")).await?;
    for e in report["expired"].as_array().into_iter().flatten() {
        println!(
            "  expired {}: {} copy versions deleted, {} left for the run that still references them",
            e["id"].as_str().unwrap_or("?"),
            e["copies_deleted"],
            e["copies_shared"]
        );
    }
    let catalog = env.catalog();
    for id in &s.runs {
        let rp = catalog.get(id).await?.ok_or("run gone from the catalog")?;
        println!("  {:<64} {}", rp.snapshot_name, rp.status);
    }
    Ok(())
}
