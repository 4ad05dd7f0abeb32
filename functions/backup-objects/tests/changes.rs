//! Runs from the change feed, against the in-memory fakes: a run with a change queue reads
//! only the keys its messages name (no listing), builds the same manifest a full listing
//! would, deletes the messages only once the run is recorded, survives a crash without
//! losing a change or copying twice, and falls back to a full listing when the feed cannot
//! be trusted to be complete.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use backup_objects::{BackupReport, BackupRequest, Deps, RunStatus, handle};
use chrono::{DateTime, Duration, Utc};
use lifeboat::ErrorType;
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::manifest::{Listing, Manifest};
use lifeboat_ports::{Catalog, PortError};
use lifeboat_testkit::changes::InMemoryChangeFeed;
use lifeboat_testkit::objects::{InMemoryObjectStore, ObjectOp};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, event, event_for, event_json, event_with};
use serde_json::{Value, json};

const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/lifeboat-changes-photos";
const CHANGES: &str = include_str!("../../../events/backup-objects/from-change-queue.json");

struct World {
    deps: Deps,
    store: Arc<InMemoryObjectStore>,
    catalog: Arc<InMemoryCatalog>,
    clock: Arc<ManualClock>,
    feed: Arc<InMemoryChangeFeed>,
}

fn t0() -> DateTime<Utc> {
    "2026-11-23T18:00:30Z".parse().unwrap()
}

fn world(extra: &[(&str, &str)]) -> World {
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket("photos", true);
    store.create_bucket("vault", true);
    for i in 0..20 {
        store.insert("photos", &format!("2026/{i:03}.jpg"), format!("photo {i}").as_bytes());
    }
    let catalog = Arc::new(InMemoryCatalog::new());
    let clock = Arc::new(ManualClock::new(t0()));
    // The queue's clock runs a minute behind: messages sent "now" predate the run's slot.
    let feed = Arc::new(InMemoryChangeFeed::new(QUEUE, t0() - Duration::minutes(1)));
    let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    let settings = S3Settings::from_lookup(move |k| match k {
        "BACKUP_BUCKET_NAME" => Some("vault".into()),
        "AWS_REGION" => Some("us-west-2".into()),
        "SOURCE_REGION" => Some("us-east-1".into()),
        "CHANGE_WAIT_SECONDS" => Some("0".into()),
        _ => extra.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone()),
    })
    .unwrap();
    let deps = Deps {
        catalog: catalog.clone(),
        notifier: Arc::new(lifeboat_testkit::RecordingNotifier::new()),
        clock: clock.clone(),
        source: store.clone(),
        backup: store.clone(),
        settings,
        changes: feed.clone(),
    };
    World {
        deps,
        store,
        catalog,
        clock,
        feed,
    }
}

/// The backup of photos/2026/ scheduled at `hour`, from the change queue (shaped like
/// `events/backup-objects/from-change-queue.json`).
fn req(hour: u32) -> Value {
    json!({
        "bucket": "photos",
        "prefix": "2026/",
        "policy": "gold",
        "scheduledTime": format!("2026-11-23T{hour:02}:00:00Z"),
        "changeQueue": QUEUE,
    })
}

impl World {
    /// Runs the backup of `hour`, with the clocks at that hour (plus 30 s).
    async fn run_at(&self, hour: u32, r: Value) -> Result<BackupReport, lifeboat::FunctionError> {
        let at: DateTime<Utc> = format!("2026-11-23T{hour:02}:00:30Z").parse().unwrap();
        self.clock.set(at);
        handle(&self.deps, event_for(r, &format!("inv-{hour}"))).await
    }

    async fn manifest(&self, report: &BackupReport) -> Manifest {
        let point = self.catalog.get(&report.recovery_point).await.unwrap().unwrap();
        lifeboat::object_store::runs::load_manifest(self.store.as_ref(), point.manifest().unwrap())
            .await
            .unwrap()
    }

    /// Writes `key` and sends its change event.
    fn change(&self, key: &str, body: &[u8]) {
        self.store.insert("photos", key, body);
        self.feed.send_s3_event("photos", key);
    }

    fn delete(&self, key: &str) {
        self.store.remove("photos", key);
        self.feed.send_s3_event("photos", key);
    }
}

/// Live entries as (key, source ETag, SHA-256): what a restore would bring back.
fn live(m: &Manifest) -> Vec<(String, String, String)> {
    m.live()
        .map(|e| (e.key.clone(), e.etag.clone(), e.sha256.clone()))
        .collect()
}

#[tokio::test]
async fn the_first_run_lists_everything_and_settles_the_messages_it_covered() {
    let w = world(&[]);
    w.feed.send_s3_event("photos", "2026/000.jpg"); // sent before the run: covered by it
    let first = w.run_at(18, req(18)).await.unwrap();
    assert_eq!(first.listing, Listing::Full);
    assert_eq!(
        first.listing_reason.as_deref(),
        Some("no previous manifest to build on")
    );
    assert_eq!((first.copied, first.changes_received), (20, 1));
    assert!(w.feed.is_empty());
}

#[tokio::test]
async fn a_run_from_the_feed_reads_only_the_named_keys_and_matches_a_full_listing() {
    let w = world(&[]);
    w.run_at(18, req(18)).await.unwrap();
    w.change("2026/003.jpg", b"edited");
    w.change("2026/new file+1.jpg", b"fresh");
    w.delete("2026/007.jpg");
    w.feed.send_s3_event("photos", "2026/003.jpg"); // a duplicate event
    w.feed.send_s3_event("photos", "2026/011.jpg"); // an event for an unchanged object
    let (lists, heads, gets) = (
        w.store.calls(ObjectOp::List),
        w.store.calls(ObjectOp::Head),
        w.store.calls(ObjectOp::Get),
    );
    let second = w.run_at(19, req(19)).await.unwrap();
    assert_eq!(second.listing, Listing::Changes);
    assert_eq!(second.listing_reason, None);
    assert_eq!(w.store.calls(ObjectOp::List), lists, "no listing");
    assert_eq!(w.store.calls(ObjectOp::Head), heads, "no HEAD");
    // Reads: the checkpoint lookup, the previous manifest, and one GET per distinct key
    // (the changed, new, deleted and unchanged one).
    assert_eq!(w.store.calls(ObjectOp::Get), gets + 6);
    assert_eq!(
        (second.listed, second.copied, second.unchanged, second.deleted),
        (4, 2, 18, 1)
    );
    assert_eq!(second.changes_received, 5);
    assert!(w.feed.is_empty(), "messages deleted once the run is recorded");
    let from_feed = w.manifest(&second).await;
    assert_eq!(from_feed.header.listing, Listing::Changes);
    assert_eq!(
        from_feed.full_listing_at(),
        "2026-11-23T18:00:30Z".parse::<DateTime<Utc>>().unwrap()
    );
    let edited = from_feed.entries.iter().find(|e| e.key == "2026/003.jpg").unwrap();
    assert_eq!(w.store.bytes("vault", &edited.backup_key).unwrap(), b"edited");
    assert!(from_feed.entries.iter().any(|e| e.key == "2026/007.jpg" && e.deleted));
    // A full listing of the same source finds exactly the same objects.
    let mut full = req(20);
    full["fullListing"] = json!(true);
    let third = w.run_at(20, full).await.unwrap();
    assert_eq!(third.listing, Listing::Full);
    assert_eq!((third.copied, third.deleted), (0, 0));
    assert_eq!(live(&w.manifest(&third).await), live(&from_feed));
}

#[tokio::test]
async fn a_crash_loses_no_change_and_copies_nothing_twice() {
    let w = world(&[]);
    w.run_at(18, req(18)).await.unwrap();
    w.change("2026/001.jpg", b"one");
    w.change("2026/002.jpg", b"two");
    let copies = w.store.calls(ObjectOp::Copy);
    // The second copy fails: the first one is made, the run stops before its manifest.
    w.store
        .fail_after(ObjectOp::Copy, 1, PortError::Unavailable("connection reset".into()));
    let err = w.run_at(19, req(19)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    assert!(
        w.catalog
            .get(&backup_objects::run_id_of(&w.deps, &BackupRequest::parse(&req(19)).unwrap()).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(w.feed.len(), 2, "no message deleted before the run is recorded");
    // The retry finds the messages hidden, and the keys in its checkpoint.
    let retry = w.run_at(19, req(19)).await.unwrap();
    assert_eq!((retry.listing, retry.copied, retry.recovered), (Listing::Changes, 1, 1));
    // Three copy calls: the one made, the one that failed, the retried one.
    assert_eq!(w.store.calls(ObjectOp::Copy), copies + 3);
    let m = w.manifest(&retry).await;
    for (key, body) in [("2026/001.jpg", &b"one"[..]), ("2026/002.jpg", b"two")] {
        let e = m.entries.iter().find(|e| e.key == key).unwrap();
        assert_eq!(w.store.bytes("vault", &e.backup_key).unwrap(), body);
        assert_eq!(w.store.versions("vault", &e.backup_key), 1, "{key} copied once");
    }
    // The messages come back after their visibility timeout: found unchanged, deleted.
    w.feed.advance(Duration::minutes(17));
    let next = w.run_at(20, req(20)).await.unwrap();
    assert_eq!((next.listing, next.listed, next.copied), (Listing::Changes, 2, 0));
    assert!(w.feed.is_empty());
}

#[tokio::test]
async fn a_missed_event_is_caught_by_the_periodic_full_listing() {
    let w = world(&[("FULL_LISTING_EVERY_HOURS", "24")]);
    w.run_at(8, req(8)).await.unwrap();
    // Written while the notification was off: no event.
    w.store.insert("photos", "2026/005.jpg", b"silent edit");
    let by_feed = w.run_at(9, req(9)).await.unwrap();
    assert_eq!((by_feed.listing, by_feed.copied), (Listing::Changes, 0));
    // A day after the last full listing, the run lists everything again.
    w.clock.set("2026-11-24T08:00:30Z".parse().unwrap());
    let mut next_day = req(8);
    next_day["scheduledTime"] = json!("2026-11-24T08:00:00Z");
    let full = handle(&w.deps, event_for(next_day, "inv-next-day")).await.unwrap();
    assert_eq!(full.listing, Listing::Full);
    assert!(full.listing_reason.as_deref().unwrap().contains("24 h old"));
    assert_eq!(full.copied, 1);
    let e = w.manifest(&full).await;
    let e = e.entries.iter().find(|e| e.key == "2026/005.jpg").unwrap();
    assert_eq!(w.store.bytes("vault", &e.backup_key).unwrap(), b"silent edit");
}

#[tokio::test]
async fn a_large_backlog_makes_a_full_listing_that_settles_it() {
    let w = world(&[("MAX_CHANGES_PER_RUN", "5")]);
    w.run_at(18, req(18)).await.unwrap();
    for i in 0..8 {
        w.change(&format!("2026/{i:03}.jpg"), format!("v2 {i}").as_bytes());
    }
    let r = w.run_at(19, req(19)).await.unwrap();
    assert_eq!(r.listing, Listing::Full);
    assert!(
        r.listing_reason
            .as_deref()
            .unwrap()
            .contains("8 change messages waiting")
    );
    assert_eq!(r.copied, 8);
    // The listing saw those changes: their messages are settled, the next run is cheap.
    assert_eq!(r.changes_received, 8);
    assert!(w.feed.is_empty());
    let next = w.run_at(20, req(20)).await.unwrap();
    assert_eq!((next.listing, next.listed, next.copied), (Listing::Changes, 0, 0));
}

#[tokio::test]
async fn messages_sent_during_a_full_listing_wait_for_the_next_run() {
    let w = world(&[]);
    // Sent after the run began: the listing may have missed the change.
    w.feed.advance(Duration::minutes(5));
    w.change("2026/004.jpg", b"late");
    let first = w.run_at(18, req(18)).await.unwrap();
    assert_eq!((first.changes_received, first.changes_left), (0, 1));
    assert_eq!(w.feed.len(), 1, "released for the next run");
    let second = w.run_at(19, req(19)).await.unwrap();
    assert_eq!(
        (second.listing, second.listed, second.changes_received),
        (Listing::Changes, 1, 1)
    );
}

#[tokio::test]
async fn events_for_other_data_sets_and_unreadable_messages_are_left_alone() {
    let w = world(&[]);
    w.run_at(18, req(18)).await.unwrap();
    w.feed.send_s3_event("photos", "other/x.jpg");
    w.feed.send_s3_event("videos", "2026/a.mp4");
    w.feed.send("not json");
    w.feed
        .send(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"photos"}"#);
    let r = w.run_at(19, req(19)).await.unwrap();
    assert_eq!((r.listing, r.listed, r.copied), (Listing::Changes, 0, 0));
    assert_eq!((r.changes_received, r.changes_left), (1, 3));
    assert_eq!(w.feed.len(), 3, "only the test event is deleted");
    let m = w.manifest(&r).await;
    assert_eq!(m.header.objects, 20);
}

#[tokio::test]
async fn the_sample_event_names_a_change_queue_and_bad_queues_are_refused() {
    let w = world(&[]);
    let first = handle(&w.deps, event_json(CHANGES)).await.unwrap();
    assert_eq!(first.listing, Listing::Full);
    let mut bad: serde_json::Value = serde_json::from_str(CHANGES).unwrap();
    bad["changeQueue"] = "arn:aws:sqs:us-east-1:123456789012:q".into();
    let err = handle(&w.deps, event(bad)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("changeQueue"), "{}", err.message);
}

#[tokio::test]
async fn a_run_from_the_feed_stops_at_its_deadline_and_resumes_without_draining_again() {
    let w = world(&[("LIST_PAGE_SIZE", "2")]);
    w.run_at(18, req(18)).await.unwrap();
    for i in 0..4 {
        w.change(&format!("2026/{i:03}.jpg"), format!("v2 {i}").as_bytes());
    }
    w.delete("2026/009.jpg");
    w.clock.set("2026-11-23T19:00:30Z".parse().unwrap());
    // Past its deadline from the start: one step of two keys, then in progress.
    let past = Some("2026-11-23T19:00:00Z".parse().unwrap());
    let first = handle(&w.deps, event_with(req(19), "inv-a", past)).await.unwrap();
    assert_eq!(
        (first.status, first.listed, first.copied),
        (RunStatus::InProgress, 2, 2)
    );
    assert!(w.catalog.get(&first.recovery_point).await.unwrap().is_none());
    // Meanwhile an already backed-up key changes again: that is the next run's work.
    w.change("2026/000.jpg", b"v3 0");
    let second = handle(&w.deps, event_for(req(19), "inv-b")).await.unwrap();
    assert_eq!(
        (second.status, second.listed, second.copied, second.deleted),
        (RunStatus::Complete, 3, 2, 1)
    );
    let m = w.manifest(&second).await;
    let zero = m.entries.iter().find(|e| e.key == "2026/000.jpg").unwrap();
    assert_eq!(w.store.bytes("vault", &zero.backup_key).unwrap(), b"v2 0");
    assert!(m.entries.iter().any(|e| e.key == "2026/009.jpg" && e.deleted));
    assert_eq!(m.header.objects, 19);
    // The first invocation's messages come back later; the new one is waiting now.
    w.feed.advance(Duration::minutes(17));
    let next = w.run_at(20, req(20)).await.unwrap();
    assert_eq!((next.listing, next.copied), (Listing::Changes, 1));
    let m = w.manifest(&next).await;
    let zero = m.entries.iter().find(|e| e.key == "2026/000.jpg").unwrap();
    assert_eq!(w.store.bytes("vault", &zero.backup_key).unwrap(), b"v3 0");
    assert!(w.feed.is_empty());
}
