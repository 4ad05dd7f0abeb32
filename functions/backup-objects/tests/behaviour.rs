//! Behaviour of `backup-objects` against the in-memory fakes: incremental runs, no call
//! for unchanged objects, tombstones, resumption after an interruption or a crash without
//! copying twice, replays, and input checks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use backup_objects::{BackupReport, Deps, RunStatus, handle};
use chrono::{DateTime, Utc};
use lifeboat::object_store::settings::S3Settings;
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::manifest::Manifest;
use lifeboat_domain::{ResourceKind, Status};
use lifeboat_ports::{Catalog, PortError};
use lifeboat_testkit::objects::{InMemoryObjectStore, ObjectOp};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, event_for, event_json};
use serde_json::json;

const SHARD: &str = include_str!("../../../events/backup-objects/scheduled-shard.json");
const MALFORMED: &str = include_str!("../../../events/backup-objects/malformed.json");

struct World {
    deps: Deps,
    source: Arc<InMemoryObjectStore>,
    backup: Arc<InMemoryObjectStore>,
    catalog: Arc<InMemoryCatalog>,
    clock: Arc<ManualClock>,
}

fn now() -> DateTime<Utc> {
    "2026-11-23T18:05:00Z".parse().unwrap()
}

fn world(page_size: &str, threshold: u64) -> World {
    // One S3 namespace: server-side copies reach across regions.
    let source = Arc::new(InMemoryObjectStore::new().with_multipart_threshold(threshold));
    source.create_bucket("photos", true);
    let backup = source.clone();
    backup.create_bucket("vault", true);
    let catalog = Arc::new(InMemoryCatalog::new());
    let page = page_size.to_owned();
    let settings = S3Settings::from_lookup(move |k| match k {
        "BACKUP_BUCKET_NAME" => Some("vault".into()),
        "AWS_REGION" => Some("us-west-2".into()),
        "SOURCE_REGION" => Some("us-east-1".into()),
        "OBJECT_LOCK_MODE" => Some("COMPLIANCE".into()),
        "OBJECT_LOCK_DAYS" => Some("30".into()),
        "LIST_PAGE_SIZE" => Some(page.clone()),
        _ => None,
    })
    .unwrap();
    let clock = Arc::new(ManualClock::new(now()));
    let deps = Deps {
        catalog: catalog.clone(),
        notifier: Arc::new(lifeboat_testkit::RecordingNotifier::new()),
        clock: clock.clone(),
        source: source.clone(),
        backup: backup.clone(),
        settings,
        changes: Arc::new(lifeboat_testkit::changes::InMemoryChangeFeed::new("unused", now())),
    };
    World {
        deps,
        source,
        backup,
        catalog,
        clock,
    }
}

/// The scheduled backup of photos/2026/ at `hour` (shaped like
/// `events/backup-objects/scheduled-shard.json`), invoked as `run_id` with the clock five
/// minutes past that hour.
async fn backup(w: &World, hour: u32, max_pages: Option<u32>, run_id: &str) -> Result<BackupReport, FunctionError> {
    let at: DateTime<Utc> = format!("2026-11-23T{hour:02}:05:00Z").parse().unwrap();
    w.clock.set(at);
    let mut req = json!({
        "bucket": "photos",
        "prefix": "2026/",
        "policy": "gold",
        "scheduledTime": format!("2026-11-23T{hour:02}:00:00Z"),
    });
    if let Some(pages) = max_pages {
        req["maxPages"] = json!(pages);
    }
    handle(&w.deps, event_for(req, run_id)).await
}

async fn manifest_of(w: &World, rp: &lifeboat_domain::RecoveryPointId) -> Manifest {
    let point = w.catalog.get(rp).await.unwrap().unwrap();
    let mref = point.manifest().cloned().unwrap();
    lifeboat::object_store::runs::load_manifest(w.backup.as_ref(), &mref)
        .await
        .unwrap()
}

fn seed(w: &World, n: usize) {
    for i in 0..n {
        w.source
            .insert("photos", &format!("2026/{i:03}.jpg"), format!("photo {i}").as_bytes());
    }
    w.source.insert("photos", "other/skip.jpg", b"outside the shard");
}

#[tokio::test]
async fn the_sample_event_backs_up_the_shard_and_records_a_recovery_point() {
    let w = world("1000", u64::MAX);
    seed(&w, 5);
    let report = handle(&w.deps, event_json(SHARD)).await.unwrap();
    assert_eq!(report.status, RunStatus::Complete);
    assert_eq!((report.listed, report.copied, report.unchanged), (5, 5, 0));
    let rp = w.catalog.get(&report.recovery_point).await.unwrap().unwrap();
    assert_eq!(rp.status, Status::Available);
    assert_eq!(rp.resource.kind, ResourceKind::S3Prefix);
    assert_eq!(rp.location.as_str(), "us-west-2");
    assert!(rp.holds.locked_until.is_some());
    let m = manifest_of(&w, &report.recovery_point).await;
    assert_eq!(m.header.objects, 5);
    let e = &m.entries[0];
    assert_eq!(e.sha256, lifeboat_domain::manifest::sha256_hex(b"photo 0"));
    assert_eq!(w.backup.bytes("vault", &e.backup_key).unwrap(), b"photo 0");
    let head = lifeboat_ports::objects::ObjectStore::head(w.backup.as_ref(), "vault", &e.backup_key, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.lock.unwrap().mode, lifeboat_ports::objects::LockMode::Compliance);
    // No checkpoint is left behind.
    assert!(w.backup.keys("vault").iter().all(|k| !k.contains("/checkpoints/")));
}

#[tokio::test]
async fn unchanged_objects_cost_no_call_beyond_the_listing() {
    let w = world("1000", u64::MAX);
    seed(&w, 50);
    backup(&w, 18, None, "r1").await.unwrap();
    let (gets, copies, lists) = (
        w.source.calls(ObjectOp::Get),
        w.backup.calls(ObjectOp::Copy),
        w.source.calls(ObjectOp::List),
    );
    let second = backup(&w, 19, None, "r2").await.unwrap();
    assert_eq!((second.copied, second.unchanged, second.deleted), (0, 50, 0));
    // Reads: the checkpoint lookup and the previous manifest, no object.
    assert_eq!(w.source.calls(ObjectOp::Get), gets + 2);
    assert_eq!(w.backup.calls(ObjectOp::Copy), copies);
    assert_eq!(w.source.calls(ObjectOp::List), lists + 1);
    assert_eq!(w.source.calls(ObjectOp::Head), 0);
}

#[tokio::test]
async fn changes_additions_and_deletions_between_runs_are_tracked() {
    let w = world("1000", u64::MAX);
    seed(&w, 4);
    let first = backup(&w, 18, None, "r1").await.unwrap();
    w.source.insert("photos", "2026/001.jpg", b"edited");
    w.source.insert("photos", "2026/new.jpg", b"fresh");
    w.source.remove("photos", "2026/002.jpg");
    let second = backup(&w, 19, None, "r2").await.unwrap();
    assert_eq!((second.copied, second.unchanged, second.deleted), (2, 2, 1));
    let m1 = manifest_of(&w, &first.recovery_point).await;
    let m2 = manifest_of(&w, &second.recovery_point).await;
    let d = lifeboat_domain::manifest::diff(&m1, &m2);
    assert_eq!(d.new, vec!["2026/new.jpg"]);
    assert_eq!(d.changed, vec!["2026/001.jpg"]);
    assert_eq!(d.deleted, vec!["2026/002.jpg"]);
    assert_eq!(d.unchanged.len(), 2);
    // Both versions of the edited object stay restorable, each from its own run.
    let old = m1.entries.iter().find(|e| e.key == "2026/001.jpg").unwrap();
    let new = m2.entries.iter().find(|e| e.key == "2026/001.jpg").unwrap();
    assert_eq!(w.backup.bytes("vault", &old.backup_key).unwrap(), b"photo 1");
    assert_eq!(w.backup.bytes("vault", &new.backup_key).unwrap(), b"edited");
    let tomb = m2.entries.iter().find(|e| e.key == "2026/002.jpg").unwrap();
    assert!(tomb.deleted);
    assert_eq!(w.backup.bytes("vault", &tomb.backup_key).unwrap(), b"photo 2");
}

#[tokio::test]
async fn an_interrupted_run_resumes_from_its_checkpoint_without_copying_twice() {
    let w = world("3", u64::MAX);
    seed(&w, 10);
    let first = backup(&w, 18, Some(2), "a").await.unwrap();
    assert_eq!(first.status, RunStatus::InProgress);
    assert_eq!(first.copied, 6);
    assert!(
        w.catalog.get(&first.recovery_point).await.unwrap().is_none(),
        "no record before the end"
    );
    assert!(
        w.backup.keys("vault").iter().all(|k| !k.contains("/manifests/")),
        "no manifest before the end"
    );
    let second = backup(&w, 18, Some(2), "b").await.unwrap();
    assert_eq!((second.status, second.copied), (RunStatus::Complete, 4));
    assert_eq!(w.backup.calls(ObjectOp::Copy), 10);
    let m = manifest_of(&w, &second.recovery_point).await;
    assert_eq!(m.header.objects, 10);
    let keys: Vec<_> = m.entries.iter().map(|e| e.key.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "every key once, in order");
}

#[tokio::test]
async fn a_crash_mid_page_is_resumed_and_each_object_is_written_once() {
    let w = world("1000", u64::MAX);
    seed(&w, 8);
    w.backup
        .fail_next(ObjectOp::Copy, PortError::Unavailable("connection reset".into()));
    let err = backup(&w, 18, None, "a").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    let done = backup(&w, 18, None, "b").await.unwrap();
    assert_eq!(done.status, RunStatus::Complete);
    assert_eq!(done.copied + done.recovered, 8);
    for key in w.backup.all_keys("vault", "lifeboat/photos/") {
        if key.contains("/data/") {
            assert_eq!(w.backup.versions("vault", &key), 1, "{key} written twice");
        }
    }
    assert_eq!(manifest_of(&w, &done.recovery_point).await.header.objects, 8);
}

#[tokio::test]
async fn a_crash_pages_after_the_last_checkpoint_copies_nothing_twice() {
    // Pages of 3; the run crashes on its 8th copy (third page), with no checkpoint saved
    // since it started (they are timed, and the clock stands still).
    let w = world("3", u64::MAX);
    seed(&w, 10);
    w.backup
        .fail_after(ObjectOp::Copy, 7, PortError::Unavailable("connection reset".into()));
    let err = backup(&w, 18, None, "a").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    let done = backup(&w, 18, None, "b").await.unwrap();
    assert_eq!(done.status, RunStatus::Complete);
    // Copies in flight with the failed one may have finished: 7 or 8 are found done.
    assert_eq!(done.copied + done.recovered, 10, "{done:?}");
    assert!(done.recovered >= 7, "{done:?}");
    for key in w.backup.all_keys("vault", "lifeboat/photos/") {
        if key.contains("/data/") {
            assert_eq!(w.backup.versions("vault", &key), 1, "{key} written twice");
        }
    }
    assert_eq!(manifest_of(&w, &done.recovery_point).await.header.objects, 10);
}

#[tokio::test]
async fn a_replayed_trigger_does_nothing_twice() {
    let w = world("1000", u64::MAX);
    seed(&w, 3);
    backup(&w, 18, None, "a").await.unwrap();
    let calls = w.source.total_calls();
    let again = backup(&w, 18, None, "b").await.unwrap();
    assert!(again.replay);
    assert_eq!(w.source.total_calls(), calls);
}

/// A request for photos/2026/ at 18:00:`second` (clock 18:05), on demand when
/// `request_id` is given.
async fn request_at(
    w: &World,
    second: u32,
    request_id: Option<&str>,
    invocation: &str,
) -> Result<BackupReport, FunctionError> {
    w.clock.set(now());
    let mut req = json!({
        "bucket": "photos",
        "prefix": "2026/",
        "policy": "gold",
        "scheduledTime": format!("2026-11-23T18:00:{second:02}Z"),
    });
    if let Some(id) = request_id {
        req["requestId"] = json!(id);
    }
    handle(&w.deps, event_for(req, invocation)).await
}

/// The same scheduled event delivered twice (a retry, a replay) is one run: the second
/// delivery does nothing, and its answer says so and names the run it found complete.
#[tokio::test]
async fn a_replayed_scheduled_event_is_one_run_and_the_replay_says_which() {
    let w = world("1000", u64::MAX);
    seed(&w, 3);
    let event = r#"{"bucket": "photos", "prefix": "2026/", "policy": "gold", "scheduledTime": "2026-11-23T18:00:00Z"}"#;
    let first = handle(&w.deps, event_json(event)).await.unwrap();
    assert!(!first.replay && first.note.is_none());
    assert_eq!(first.copied, 3);
    let (calls, points) = (w.source.total_calls(), w.catalog.points().len());
    for _ in 0..2 {
        let again = handle(&w.deps, event_json(event)).await.unwrap();
        assert!(again.replay);
        assert_eq!((again.copied, again.listed), (0, 0));
        assert_eq!(again.run, first.run);
        assert_eq!(again.recovery_point, first.recovery_point);
        assert_eq!(again.manifest, first.manifest);
        let note = again.note.unwrap();
        assert!(note.contains(&first.run) && note.contains("already complete"), "{note}");
        assert!(note.contains("requestId"), "says how to get a run of its own: {note}");
    }
    assert_eq!(w.source.total_calls(), calls, "no S3 call for a replay");
    assert_eq!(w.catalog.points().len(), points, "nothing recorded twice");
    // Its JSON answer carries the note (and no request id: it had none).
    let answer = serde_json::to_value(handle(&w.deps, event_json(event)).await.unwrap()).unwrap();
    assert!(answer["note"].as_str().unwrap().contains(&first.run), "{answer}");
    assert!(answer.get("request_id").is_none(), "{answer}");
}

/// An on-demand request (its own `requestId`) in the same minute as a completed run is a
/// run of its own: it is not swallowed as a replay, and it backs up what changed since.
/// The same request retried stays one run.
#[tokio::test]
async fn a_distinct_request_in_the_same_minute_gets_a_run_of_its_own() {
    let w = world("1000", u64::MAX);
    seed(&w, 3);
    let scheduled = request_at(&w, 0, None, "tick").await.unwrap();
    assert!(scheduled.run.ends_with("-20261123-1800"), "{}", scheduled.run);

    // A new object, then "back up now" within the same minute.
    w.source.insert("photos", "2026/new.jpg", b"new photo");
    let first = request_at(&w, 30, Some("7d9c1a52-0b1e-4c1e-9d55-0c1d2e3f4a5b"), "now-1")
        .await
        .unwrap();
    assert!(!first.replay && first.note.is_none(), "{first:?}");
    assert_eq!(first.status, RunStatus::Complete);
    assert_ne!(first.run, scheduled.run);
    assert!(
        first.run.starts_with(&format!("{}-od-", scheduled.run)),
        "{}",
        first.run
    );
    assert_eq!(
        first.request_id.as_deref(),
        Some("7d9c1a52-0b1e-4c1e-9d55-0c1d2e3f4a5b")
    );
    assert_eq!(
        (first.copied, first.unchanged),
        (1, 3),
        "incremental on the scheduled run"
    );
    let m = manifest_of(&w, &first.recovery_point).await;
    assert_eq!(m.header.objects, 4);

    // Another request in that minute: another run.
    let second = request_at(&w, 45, Some("another-request"), "now-2").await.unwrap();
    assert!(!second.replay);
    assert_ne!(second.run, first.run);
    assert_eq!((second.copied, second.unchanged), (0, 4));
    assert_eq!(w.catalog.points().len(), 3, "three runs recorded in one minute");

    // The first request retried (a Lambda retry, another invocation): the same run, nothing twice.
    let calls = w.source.total_calls();
    let retried = request_at(&w, 30, Some("7d9c1a52-0b1e-4c1e-9d55-0c1d2e3f4a5b"), "now-1-retry")
        .await
        .unwrap();
    assert!(retried.replay);
    assert_eq!(retried.run, first.run);
    assert_eq!(retried.copied, 0);
    let note = retried.note.unwrap();
    assert!(note.contains(&first.run) && note.contains("7d9c1a52"), "{note}");
    assert_eq!(w.source.total_calls(), calls);
    assert_eq!(w.catalog.points().len(), 3);
}

#[tokio::test]
async fn a_bad_request_id_is_refused_and_sharded_steps_take_none() {
    let w = world("1000", u64::MAX);
    seed(&w, 1);
    let long = "x".repeat(129);
    for id in ["", "two words", "tab\there", long.as_str()] {
        let err = request_at(&w, 0, Some(id), "bad").await.unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid, "{id:?}");
        assert!(err.message.contains("requestId"), "{}", err.message);
    }
    let sharded = r#"{"mode":"shards","bucket":"photos","prefix":"2026/","policy":"gold","scheduledTime":"2026-11-23T18:00:00Z","requestId":"r-1"}"#;
    let err = handle(&w.deps, event_json(sharded)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("requestId"), "{}", err.message);
    assert_eq!(w.source.total_calls(), 0);
    assert!(w.catalog.points().is_empty());
}

#[tokio::test]
async fn large_objects_are_copied_in_parts() {
    let w = world("1000", 1024);
    w.source.insert("photos", "2026/big.bin", &vec![7u8; 5000]);
    let r = backup(&w, 18, None, "a").await.unwrap();
    assert_eq!(r.copied, 1);
    let m = manifest_of(&w, &r.recovery_point).await;
    assert_eq!(w.backup.bytes("vault", &m.entries[0].backup_key).unwrap().len(), 5000);
}

/// A tick dated outside MAX_EVENT_SKEW / MAX_EVENT_AGE of the clock is refused before
/// anything is read or written: the run's slot, name and recovery point come from it.
#[tokio::test]
async fn a_request_dated_outside_the_event_time_bounds_changes_nothing() {
    let w = world("1000", u64::MAX);
    w.source.insert("photos", "2026/a.jpg", b"a");
    for at in ["1996-11-23T18:00:00Z", "2036-11-23T18:00:00Z"] {
        let whole = format!(r#"{{"bucket":"photos","prefix":"2026/","policy":"gold","scheduledTime":"{at}"}}"#);
        let sharded = format!(
            r#"{{"mode":"shards","bucket":"photos","prefix":"2026/","policy":"gold","scheduledTime":"{at}","maxShards":2}}"#
        );
        for body in [whole, sharded] {
            let err = handle(&w.deps, event_json(&body)).await.unwrap_err();
            assert_eq!(err.kind, ErrorType::Invalid, "{body}");
            assert!(
                err.message.contains("scheduledTime") && err.message.contains(&at[..4]),
                "{}",
                err.message
            );
        }
    }
    assert_eq!(w.source.total_calls(), 0);
    assert!(w.catalog.points().is_empty(), "nothing cataloged");
}

#[tokio::test]
async fn bad_input_is_rejected_before_any_call() {
    let w = world("1000", u64::MAX);
    let err = handle(&w.deps, event_json(MALFORMED)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("bucket name"), "{}", err.message);
    for bad in [
        "[]",
        r#"{"bucket":"photos"}"#,
        r#"{"bucket":"photos","policy":"Gold!","scheduledTime":"2026-11-23T18:00:00Z"}"#,
    ] {
        assert_eq!(
            handle(&w.deps, event_json(bad)).await.unwrap_err().kind,
            ErrorType::Invalid,
            "{bad}"
        );
    }
    assert_eq!(w.source.total_calls(), 0);
}
