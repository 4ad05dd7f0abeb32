//! Runs from the change feed on the local stack: the source bucket's event notifications
//! feed an SQS queue (moto 5.2.5 sends them), and backup-objects reads only the keys
//! they name. Checked: the first run lists everything and settles the messages it
//! covered; the next run does no listing, backs up exactly the changes (a key with a
//! space, `+` and a non-ASCII letter included), restores byte for byte, and empties the
//! queue; a full listing afterwards finds the same objects.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeMap;

use backup_objects::{BackupRequest, RunStatus};
use chrono::{DateTime, Duration, DurationRound, Utc};
use lifeboat::object_store::runs::load_manifest;
use lifeboat_domain::RecoveryPointId;
use lifeboat_domain::manifest::{Listing, Manifest};
use lifeboat_ports::Catalog;
use lifeboat_tests::s3::{
    backup_bucket, backup_deps, change_queue, get, put, queue_depth, settings, source_bucket, store,
};
use lifeboat_tests::{DR, PRIMARY, TestEnv};

fn req(bucket: &str, queue: &str, at: DateTime<Utc>) -> BackupRequest {
    BackupRequest {
        bucket: bucket.to_owned(),
        prefix: "docs/".to_owned(),
        policy: "gold".to_owned(),
        scheduled_time: at,
        request_id: None,
        max_pages: None,
        change_queue: Some(queue.to_owned()),
        full_listing: false,
    }
}

async fn manifest(env: &TestEnv, rp: &RecoveryPointId) -> Manifest {
    let point = env.catalog().get(rp).await.unwrap().unwrap();
    let s = store(env, DR, lifeboat_ports::objects::CopyTuning::default());
    load_manifest(s.as_ref(), point.manifest().unwrap()).await.unwrap()
}

async fn restored(env: &TestEnv, backup: &str, m: &Manifest) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in m.live() {
        let bytes = get(env, DR, backup, &e.backup_key, e.backup_version_id.as_deref())
            .await
            .unwrap();
        out.insert(e.key.clone(), bytes);
    }
    out
}

#[tokio::test]
async fn a_run_from_the_change_queue_backs_up_exactly_what_changed() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("chg-src"), env.name("chg-bak"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    let queue = change_queue(&env, &src, "docs/").await.unwrap();
    let deps = backup_deps(&env, settings(&bak, &[]));

    let mut live: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..8 {
        let (k, v) = (format!("docs/{i}.txt"), format!("version 1 of {i}").into_bytes());
        put(&env, PRIMARY, &src, &k, &v).await.unwrap();
        live.insert(k, v);
    }
    // Slots ahead of the clock: the listing's start, not the slot, is then what separates
    // the messages it covered from later ones.
    let t = Utc::now().duration_trunc(Duration::minutes(1)).unwrap() + Duration::minutes(1);
    let first = backup_objects::handle(&deps, lifeboat_tests::request_event(&req(&src, &queue, t), "chg-1"))
        .await
        .unwrap();
    assert_eq!(
        (first.status, first.listing, first.copied),
        (RunStatus::Complete, Listing::Full, 8)
    );
    // The eight object events and S3's test event were sent before the listing began.
    assert_eq!(first.changes_received, 9);
    assert_eq!(queue_depth(&env, &queue).await.unwrap(), 0);

    put(&env, PRIMARY, &src, "docs/1.txt", b"version 2 of 1").await.unwrap();
    live.insert("docs/1.txt".into(), b"version 2 of 1".to_vec());
    let odd = "docs/with space+plus é.txt";
    put(&env, PRIMARY, &src, odd, b"odd name").await.unwrap();
    live.insert(odd.into(), b"odd name".to_vec());
    lifeboat_tests::s3::client(&env, PRIMARY)
        .delete_object()
        .bucket(&src)
        .key("docs/2.txt")
        .send()
        .await
        .unwrap();
    live.remove("docs/2.txt");
    // moto 5.2.5 sends no event for a delete marker (S3 sends
    // `ObjectRemoved:DeleteMarkerCreated`): the test sends the message S3 would.
    let marker = serde_json::json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "eventName": "ObjectRemoved:DeleteMarkerCreated",
        "s3": {"bucket": {"name": src}, "object": {"key": "docs/2.txt", "sequencer": "0066F1C5D2E1A5B6C7"}}}]});
    aws_sdk_sqs::Client::new(&env.primary)
        .send_message()
        .queue_url(&queue)
        .message_body(marker.to_string())
        .send()
        .await
        .unwrap();
    put(&env, PRIMARY, &src, "elsewhere/x.txt", b"outside the prefix")
        .await
        .unwrap();

    let second = backup_objects::handle(
        &deps,
        lifeboat_tests::request_event(&req(&src, &queue, t + Duration::minutes(1)), "chg-2"),
    )
    .await
    .unwrap();
    assert_eq!(second.listing, Listing::Changes, "{second:?}");
    assert_eq!(
        (second.listed, second.copied, second.unchanged, second.deleted),
        (3, 2, 6, 1)
    );
    assert_eq!(
        queue_depth(&env, &queue).await.unwrap(),
        0,
        "messages deleted after the run"
    );
    let m2 = manifest(&env, &second.recovery_point).await;
    assert_eq!(m2.header.listing, Listing::Changes);
    assert_eq!(restored(&env, &bak, &m2).await, live);

    let mut full = req(&src, &queue, t + Duration::minutes(2));
    full.full_listing = true;
    let third = backup_objects::handle(&deps, lifeboat_tests::request_event(&full, "chg-3"))
        .await
        .unwrap();
    assert_eq!((third.listing, third.copied, third.deleted), (Listing::Full, 0, 0));
    let m3 = manifest(&env, &third.recovery_point).await;
    let keys = |m: &Manifest| m.live().map(|e| (e.key.clone(), e.etag.clone())).collect::<Vec<_>>();
    assert_eq!(keys(&m3), keys(&m2));
}
