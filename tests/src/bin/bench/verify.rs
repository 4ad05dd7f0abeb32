//! Verification at the speed of reading: verify-backups checking every object of one S3
//! backup run on the local stack (read, SHA-256 and CRC64/NVME, compared with the manifest),
//! beside a plain concurrent GET of the same objects from the same store, discarding the
//! bytes, at the same concurrency. Alternated `ROUNDS` times in one process (which goes
//! first alternates too); the medians are compared (`--child verify [--objects N] [--kib K]`).

use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};
use lifeboat::object_store::runs::load_manifest;
use lifeboat_ports::objects::{CopyTuning, ObjectStore};
use lifeboat_ports::{Catalog as _, SystemClock};
use lifeboat_tests::TestEnv;
use lifeboat_tests::s3::{backup_bucket, backup_deps, client, put, settings, source_bucket, store};
use serde_json::{Value, json};

use super::{Figure, Result, err, median, num};

const ROUNDS: usize = 7;

pub fn child(objects: usize, kib: usize) -> Result<Value> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(measure(objects, kib))
}

async fn measure(objects: usize, kib: usize) -> Result<Value> {
    let env = TestEnv::start().await?;
    let (src, bak) = (env.name("vsrc"), env.name("vbak"));
    source_bucket(&env, &src).await?;
    backup_bucket(&env, &bak).await?;
    let body: Vec<u8> = (0..kib * 1024).map(|i| (i * 31 % 251) as u8).collect();
    for i in 0..objects {
        put(&env, lifeboat_tests::PRIMARY, &src, &format!("docs/{i:05}.bin"), &body).await?;
    }
    let backup = backup_deps(&env, settings(&bak, &[]));
    let req = backup_objects::BackupRequest {
        bucket: src.clone(),
        prefix: "docs/".into(),
        policy: "gold".into(),
        scheduled_time: chrono::Utc::now(),
        request_id: None,
        max_pages: None,
        change_queue: None,
        full_listing: false,
    };
    let report = backup_objects::run(&backup, &req, "bench-verify", None)
        .await
        .map_err(|e| err(e.to_string()))?;
    let point = env
        .catalog()
        .get(&report.recovery_point)
        .await?
        .ok_or_else(|| err("the run is not in the catalog"))?;
    let mref = point.manifest().ok_or_else(|| err("the run has no manifest"))?.clone();
    let s3: Arc<dyn ObjectStore> = store(&env, lifeboat_tests::DR, CopyTuning::default());
    let sdk = client(&env, lifeboat_tests::DR);
    let manifest = load_manifest(s3.as_ref(), &mref)
        .await
        .map_err(|e| err(e.to_string()))?;
    let copies: Vec<(String, Option<String>)> = manifest
        .live()
        .map(|e| (e.backup_key.clone(), e.backup_version_id.clone()))
        .collect();
    let verify = verify_backups::Deps {
        catalog: Arc::new(env.catalog()),
        notifier: Arc::new(lifeboat_testkit::RecordingNotifier::new()),
        clock: Arc::new(SystemClock),
        backup: s3.clone(),
    };
    let full = verify_backups::VerifyRequest {
        recovery_point: Some(report.recovery_point.to_string()),
        ..serde_json::from_value(json!({"mode": "full"}))?
    };
    let (mut raw, mut checked) = (Vec::new(), Vec::new());
    let mut bytes = 0u64;
    for round in 0..ROUNDS {
        // Alternated, and which goes first alternates too: the store's drift hits both.
        if round % 2 == 0 {
            let (seconds, read) = plain_gets(&sdk, &bak, &copies).await?;
            raw.push(seconds);
            bytes = read;
        }
        let started = Instant::now();
        let out = verify_backups::run(&verify, &full, &format!("bench-verify-{round}"))
            .await
            .map_err(|e| err(e.to_string()))?;
        checked.push(started.elapsed().as_secs_f64());
        if out.objects_checked != copies.len() as u64 || !out.findings.is_empty() {
            return Err(err(format!(
                "verify-backups checked {} of {} objects, findings {:?}",
                out.objects_checked,
                copies.len(),
                out.findings
            )));
        }
        if round % 2 == 1 {
            let (seconds, read) = plain_gets(&sdk, &bak, &copies).await?;
            raw.push(seconds);
            bytes = read;
        }
    }
    Ok(json!({
        "objects": copies.len(),
        "bytes": bytes,
        "raw_seconds": median(raw),
        "verify_seconds": median(checked),
    }))
}

/// The peer: a plain concurrent GetObject of every copy with the SDK's defaults (which check
/// S3's stored checksum as the bytes stream), bytes discarded; its time and the bytes read.
async fn plain_gets(sdk: &aws_sdk_s3::Client, bucket: &str, copies: &[(String, Option<String>)]) -> Result<(f64, u64)> {
    let started = Instant::now();
    let read: u64 = stream::iter(copies.iter().cloned())
        .map(|(key, version)| {
            let (sdk, bucket) = (sdk.clone(), bucket.to_owned());
            // A task per object, as verification reads them; the SDK's defaults check S3's
            // stored checksum as the bytes stream.
            tokio::spawn(async move {
                let out = sdk
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version)
                    .send()
                    .await
                    .map_err(|e| err(format!("GetObject: {e}")))?;
                let mut body = out.body;
                let mut n = 0u64;
                while let Some(chunk) = body.try_next().await.map_err(|e| err(e.to_string()))? {
                    n += chunk.len() as u64;
                }
                Ok::<u64, lifeboat_tests::BoxError>(n)
            })
        })
        .buffer_unordered(lifeboat::verify::CONCURRENCY)
        .map(|joined| joined.map_err(|e| err(e.to_string()))?)
        .try_fold(0u64, |n, b| async move { Ok(n + b) })
        .await?;
    Ok((started.elapsed().as_secs_f64(), read))
}

/// The figure: verification throughput beside the raw GET throughput of the same objects.
pub fn figure(v: &Value) -> Result<Figure> {
    let mib = num(v, "bytes")? / (1024.0 * 1024.0);
    let verify = mib / num(v, "verify_seconds")?;
    let raw = mib / num(v, "raw_seconds")?;
    let ratio = verify / raw;
    Ok(Figure {
        name: "S3 run verification, end to end (every object read, SHA-256 + CRC64/NVME, compared)".into(),
        value: Some(verify),
        unit: "MiB/s",
        peer: format!(
            "a plain concurrent GetObject (SDK defaults) of the same {} objects from the same store, bytes discarded (same concurrency)",
            num(v, "objects")?
        ),
        peer_value: Some(raw),
        target: "ratio >= 0.9".into(),
        met: Some(ratio >= 0.9),
        notes: vec![format!(
            "median of {ROUNDS} alternated rounds on the local stack (moto S3), {mib:.1} MiB; one GET per object"
        )],
    })
}
