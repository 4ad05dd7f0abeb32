//! Incremental S3 backup against `aws s3 sync`: the same source bucket, the same change
//! (1% of the objects rewritten), the same emulator, one after the other. Lifeboat is the
//! `backup-objects` code path in process (what the Lambda runs), measured both ways it
//! runs: from the bucket's change queue (read the keys the events name, copy what changed,
//! carry the rest over from the previous manifest), and with the periodic full listing
//! (list the source, compare with the previous manifest, copy what changed); each writes
//! the manifest and the catalog record. The peer is `aws s3 sync s3://src s3://dst` (AWS
//! CLI v1 from the bench venv), which lists both buckets and copies what differs. The
//! first, full pass of each is not counted.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use lifeboat_domain::manifest::Listing;
use lifeboat_tests::s3::{backup_bucket, backup_deps, change_queue, client, settings, source_bucket};
use lifeboat_tests::{DR, PRIMARY, TestEnv, endpoint};

use super::{Figure, Result, err};

const PREFIX: &str = "media/";
const TARGET_RATIO: f64 = 3.0;

pub fn sync_figures(objects: usize, python: &Path) -> Result<Vec<Figure>> {
    let aws = python.with_file_name("aws");
    if !aws.exists() {
        return Err(err(format!(
            "{} is missing: run make bench (it installs awscli)",
            aws.display()
        )));
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(measure(objects, &aws))
}

async fn put_all(env: &TestEnv, bucket: &str, keys: &[String], version: u32) -> Result<()> {
    let s3 = client(env, PRIMARY);
    stream::iter(keys.iter().cloned())
        .map(|k| {
            let s3 = s3.clone();
            let bucket = bucket.to_owned();
            async move {
                let body = format!("{k} version {version} ").repeat(40).into_bytes();
                s3.put_object()
                    .bucket(bucket)
                    .key(k)
                    .body(body.into())
                    .send()
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| err(format!("uploading the source objects: {e}")))?;
    Ok(())
}

fn aws_sync(aws: &Path, src: &str, dst: &str) -> Result<Duration> {
    let started = Instant::now();
    let out = Command::new(aws)
        .args([
            "--endpoint-url",
            &endpoint(),
            "--region",
            DR,
            "s3",
            "sync",
            &format!("s3://{src}/{PREFIX}"),
            &format!("s3://{dst}/{PREFIX}"),
            // No --source-region: AWS CLI v1 gives the source client no --endpoint-url then.
            "--only-show-errors",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()?;
    let took = started.elapsed();
    if !out.status.success() {
        return Err(err(format!(
            "aws s3 sync failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(took)
}

async fn lifeboat_run(
    deps: &backup_objects::Deps,
    request: backup_objects::BackupRequest,
) -> Result<(Duration, backup_objects::BackupReport)> {
    let started = Instant::now();
    let report = backup_objects::run(deps, &request, "bench-sync", None).await?;
    let took = started.elapsed();
    if report.status != backup_objects::RunStatus::Complete {
        return Err(err(format!("the backup run did not complete: {report:?}")));
    }
    Ok((took, report))
}

fn request(src: &str, queue: &str, at: chrono::DateTime<chrono::Utc>, full: bool) -> backup_objects::BackupRequest {
    backup_objects::BackupRequest {
        bucket: src.to_owned(),
        prefix: PREFIX.to_owned(),
        policy: "bench".to_owned(),
        scheduled_time: at,
        request_id: None,
        max_pages: None,
        change_queue: Some(queue.to_owned()),
        full_listing: full,
    }
}

/// One paged listing of the source prefix through Lifeboat's object store adapter.
async fn list_only(deps: &backup_objects::Deps, src: &str) -> Result<Duration> {
    let started = Instant::now();
    let mut token: Option<String> = None;
    loop {
        let page = deps
            .source
            .list_page(src, PREFIX, token.as_deref(), deps.settings.page_size)
            .await?;
        token = page.next_token;
        if token.is_none() {
            return Ok(started.elapsed());
        }
    }
}

async fn measure(objects: usize, aws: &Path) -> Result<Vec<Figure>> {
    let env = TestEnv::start().await?;
    let (src, bak, dst) = (env.name("sync-src"), env.name("sync-bak"), env.name("sync-dst"));
    source_bucket(&env, &src).await?;
    backup_bucket(&env, &bak).await?;
    client(&env, DR)
        .create_bucket()
        .bucket(&dst)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(DR))
                .build(),
        )
        .send()
        .await?;
    let keys: Vec<String> = (0..objects)
        .map(|i| format!("{PREFIX}{:03}/{i:07}.jpg", i % 256))
        .collect();
    eprintln!("[s3 sync] uploading {objects} objects…");
    put_all(&env, &src, &keys, 1).await?;
    // The bucket's event notifications feed the change queue from here on.
    let queue = change_queue(&env, &src, PREFIX).await?;
    let deps = backup_deps(&env, settings(&bak, &[]));
    // Slots a minute apart, ahead of the clock (each run is its own recovery point).
    let first = chrono::Utc::now() + chrono::Duration::minutes(1);
    eprintln!("[s3 sync] first full pass of each (not counted)…");
    let (lb_full, report) = lifeboat_run(&deps, request(&src, &queue, first, false)).await?;
    if report.copied != objects as u64 {
        return Err(err(format!("the full run copied {} of {objects}", report.copied)));
    }
    let aws_full = aws_sync(aws, &src, &dst)?;

    // 1% changed; Lifeboat's run from the change queue, then the peer.
    let changed: Vec<String> = keys.iter().step_by(100).cloned().collect();
    put_all(&env, &src, &changed, 2).await?;
    eprintln!(
        "[s3 sync] {} objects changed; the incremental pass of each (Lifeboat from the change queue)…",
        changed.len()
    );
    let (lb, report) = lifeboat_run(
        &deps,
        request(&src, &queue, first + chrono::Duration::minutes(1), false),
    )
    .await?;
    if report.listing != Listing::Changes || report.copied != changed.len() as u64 {
        return Err(err(format!(
            "the run from the change queue copied {} ({:?} listing), not {}",
            report.copied,
            report.listing,
            changed.len()
        )));
    }
    let (feed_copied, feed_keys) = (report.copied, report.listed);
    let peer = aws_sync(aws, &src, &dst)?;

    // Another 1%; Lifeboat's periodic full listing this time, then the peer.
    let changed2: Vec<String> = keys.iter().skip(50).step_by(100).cloned().collect();
    put_all(&env, &src, &changed2, 3).await?;
    eprintln!("[s3 sync] another 1% changed; the incremental pass of each (Lifeboat with a full listing)…");
    let (lb_listed, report) =
        lifeboat_run(&deps, request(&src, &queue, first + chrono::Duration::minutes(2), true)).await?;
    if report.listing != Listing::Full || report.copied != changed2.len() as u64 {
        return Err(err(format!(
            "the full-listing run copied {}, not {}",
            report.copied,
            changed2.len()
        )));
    }
    let peer2 = aws_sync(aws, &src, &dst)?;
    // The floor of a full listing: one paged listing of the source, nothing else.
    let listing = list_only(&deps, &src).await?;

    let (feed_s, feed_peer_s) = (lb.as_secs_f64(), peer.as_secs_f64());
    let (listed_s, listed_peer_s) = (lb_listed.as_secs_f64(), peer2.as_secs_f64());
    let wait = deps.settings.change_wait.as_secs_f64();
    Ok(vec![
        Figure {
            name: format!("S3 incremental backup: {objects} objects, 1% changed (from the change queue)"),
            value: Some(feed_s),
            unit: "s",
            peer: "aws s3 sync (AWS CLI 1.46.2), same buckets and emulator".into(),
            peer_value: Some(feed_peer_s),
            target: format!(">= {TARGET_RATIO}x faster than the peer"),
            met: Some(feed_peer_s >= feed_s * TARGET_RATIO),
            notes: vec![
                format!(
                    "{:.1}x faster; Lifeboat read the {} keys the bucket's events named (no listing), copied {feed_copied}, carried the rest over from the previous manifest, wrote the manifest and catalog record and deleted the messages",
                    feed_peer_s / feed_s,
                    feed_keys
                ),
                format!(
                    "the drain ends once the messages waiting at the start (GetQueueAttributes) are in hand; otherwise a {wait:.0} s long poll (CHANGE_WAIT_SECONDS) confirms the queue is empty"
                ),
                format!(
                    "first full pass (not counted): Lifeboat {:.1} s, aws s3 sync {:.1} s",
                    lb_full.as_secs_f64(),
                    aws_full.as_secs_f64()
                ),
            ],
        },
        Figure {
            name: format!("S3 incremental backup: {objects} objects, 1% changed (full listing, the periodic check)"),
            value: Some(listed_s),
            unit: "s",
            peer: "aws s3 sync (AWS CLI 1.46.2), same buckets and emulator".into(),
            peer_value: Some(listed_peer_s),
            target: format!(">= {TARGET_RATIO}x faster than the peer"),
            met: Some(listed_peer_s >= listed_s * TARGET_RATIO),
            notes: vec![
                format!(
                    "{:.1}x faster; Lifeboat listed the source, compared it with the previous manifest and copied {}",
                    listed_peer_s / listed_s,
                    changed2.len()
                ),
                format!(
                    "one paged listing of the source alone: {:.2} s ({:.0}% of Lifeboat's run; the peer lists two buckets), so on this emulator no tool that lists the source reaches much more than {:.1}x",
                    listing.as_secs_f64(),
                    100.0 * listing.as_secs_f64() / listed_s,
                    listed_peer_s / listing.as_secs_f64()
                ),
                "made every FULL_LISTING_EVERY_HOURS (default 168) when runs come from the change queue, and on every run without one".into(),
            ],
        },
    ])
}
