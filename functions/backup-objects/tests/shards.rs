//! Sharded runs of `backup-objects` against the in-memory fakes: `shards` → every
//! `shard` → `finish` gives the manifest a whole run gives (same entries, tombstones,
//! catalog record), incrementally; an interrupted or crashed shard resumes without
//! copying twice; `finish` waits for every part and does nothing when replayed; bad
//! shard input is refused before any call.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use backup_objects::{BackupReport, Deps, Mode, RunStatus, ShardedRequest, handle, run_sharded};
use chrono::{DateTime, Utc};
use lifeboat::object_store::settings::S3Settings;
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::manifest::{Manifest, ManifestEntry};
use lifeboat_domain::shards::Shard;
use lifeboat_domain::{RecoveryPoint, RecoveryPointId};
use lifeboat_ports::{Catalog, PortError};
use lifeboat_testkit::invocation::TIME_LEFT;
use lifeboat_testkit::objects::{InMemoryObjectStore, ObjectOp};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, event_json, event_with};
use serde_json::{Value, json};

const PLAN: &str = include_str!("../../../events/backup-objects/plan-shards.json");
const SHARD: &str = include_str!("../../../events/backup-objects/shard.json");
const FINISH_GAP: &str = include_str!("../../../events/backup-objects/finish-gap.json");

struct World {
    deps: Deps,
    store: Arc<InMemoryObjectStore>,
    catalog: Arc<InMemoryCatalog>,
    clock: Arc<ManualClock>,
}

fn now() -> DateTime<Utc> {
    "2026-11-23T18:05:00Z".parse().unwrap()
}

/// `photos` (not versioned, so that twin worlds list identical objects) and `vault`,
/// in one S3 namespace; listing pages of `page_size`.
fn world(page_size: u32) -> World {
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket("photos", false);
    store.create_bucket("vault", true);
    let catalog = Arc::new(InMemoryCatalog::new());
    let page = page_size.to_string();
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
        source: store.clone(),
        backup: store.clone(),
        settings,
        changes: Arc::new(lifeboat_testkit::changes::InMemoryChangeFeed::new("unused", now())),
    };
    World {
        deps,
        store,
        catalog,
        clock,
    }
}

/// Objects in five sub-prefixes (a nested one too), loose objects between and around
/// them, and keys just outside the protected prefix.
fn seed(w: &World) {
    for sub in ["a", "b", "c", "d", "e"] {
        for i in 0..3 {
            w.store.insert(
                "photos",
                &format!("2026/{sub}/{i}.jpg"),
                format!("{sub} {i}").as_bytes(),
            );
        }
    }
    w.store.insert("photos", "2026/c/deep/x.jpg", b"nested");
    for loose in ["2026/0-first.txt", "2026/b.txt", "2026/c-loose.txt", "2026/zz.txt"] {
        w.store.insert("photos", loose, loose.as_bytes());
    }
    w.store.insert("photos", "2025/old.jpg", b"outside");
    w.store.insert("photos", "2027/new.jpg", b"outside");
}

const SEEDED: u64 = 5 * 3 + 1 + 4;

fn at(hour: u32) -> DateTime<Utc> {
    format!("2026-11-23T{hour:02}:00:00Z").parse().unwrap()
}

fn step(mode: Mode, hour: u32) -> ShardedRequest {
    ShardedRequest {
        mode,
        bucket: "photos".into(),
        prefix: "2026/".into(),
        policy: "gold".into(),
        scheduled_time: at(hour),
        max_shards: None,
        max_pages: None,
        shard: None,
        shards: None,
    }
}

/// One invocation of the backup of photos/2026/ scheduled at `hour`, with `fields` added
/// (a `mode` and its fields, shaped like the `events/backup-objects/` samples), as
/// `run_id`, with the clock five minutes past that hour.
async fn invoke(w: &World, hour: u32, fields: Value, run_id: &str) -> Result<BackupReport, FunctionError> {
    invoke_until(w, hour, fields, run_id, Some(Utc::now() + TIME_LEFT)).await
}

/// [`invoke`] with the invocation's `deadline`.
async fn invoke_until(
    w: &World,
    hour: u32,
    fields: Value,
    run_id: &str,
    deadline: Option<DateTime<Utc>>,
) -> Result<BackupReport, FunctionError> {
    w.clock.set(at(hour) + chrono::Duration::minutes(5));
    let mut req = json!({"bucket": "photos", "prefix": "2026/", "policy": "gold", "scheduledTime": at(hour)});
    if let (Some(req), Some(fields)) = (req.as_object_mut(), fields.as_object()) {
        req.extend(fields.clone());
    }
    handle(&w.deps, event_with(req, run_id, deadline)).await
}

/// The fields of a `shard` step (`events/backup-objects/shard.json`).
fn shard_fields(shard: &Shard, max_pages: Option<u32>) -> Value {
    let mut fields = json!({"mode": "shard", "shard": shard});
    if let Some(pages) = max_pages {
        fields["maxPages"] = json!(pages);
    }
    fields
}

/// The fields of a `finish` step (`events/backup-objects/finish-gap.json`).
fn finish_fields(shards: &[Shard]) -> Value {
    json!({"mode": "finish", "shards": shards})
}

async fn plan(w: &World, hour: u32, max_shards: u32) -> Vec<Shard> {
    let r = invoke(w, hour, json!({"mode": "shards", "maxShards": max_shards}), "plan")
        .await
        .unwrap();
    r.shards.unwrap()
}

/// The state machine's flow, one step at a time: each shard invoked until complete.
async fn sharded(w: &World, hour: u32, max_shards: u32, max_pages: Option<u32>) -> BackupReport {
    let shards = plan(w, hour, max_shards).await;
    let mut copied = 0;
    for s in &shards {
        loop {
            let r = invoke(w, hour, shard_fields(s, max_pages), "req").await.unwrap();
            assert_eq!(r.shard, Some(s.index));
            copied += r.copied;
            if r.status == RunStatus::Complete {
                break;
            }
        }
    }
    let mut report = invoke(w, hour, finish_fields(&shards), "req").await.unwrap();
    report.copied += copied;
    report
}

async fn point(w: &World, rp: &RecoveryPointId) -> RecoveryPoint {
    w.catalog.get(rp).await.unwrap().unwrap()
}

async fn manifest_of(w: &World, rp: &RecoveryPointId) -> Manifest {
    let mref = point(w, rp).await.manifest().cloned().unwrap();
    lifeboat::object_store::runs::load_manifest(w.store.as_ref(), &mref)
        .await
        .unwrap()
}

/// Entries without the backup copy's version id (the stores number versions in the
/// order of their writes, which differ between a whole and a sharded run).
fn comparable(m: &Manifest) -> Vec<ManifestEntry> {
    m.entries
        .iter()
        .map(|e| ManifestEntry {
            backup_version_id: None,
            ..e.clone()
        })
        .collect()
}

fn scratch_left(w: &World) -> Vec<String> {
    w.store
        .keys("vault")
        .into_iter()
        .filter(|k| k.contains("/parts/") || k.contains("/checkpoints/"))
        .collect()
}

#[tokio::test]
async fn the_split_covers_every_sub_prefix_in_contiguous_ranges() {
    let w = world(2);
    seed(&w);
    let report = handle(&w.deps, event_json(PLAN)).await.unwrap();
    assert_eq!(report.status, RunStatus::InProgress);
    let shards = report.shards.unwrap();
    assert_eq!(shards.len(), 3);
    assert!(lifeboat_domain::shards::check_cover(&shards).is_ok());
    assert_eq!(shards[0].from, "");
    assert!(shards[1..].iter().all(|s| s.from.ends_with('/')), "{shards:?}");
    // Every object of the prefix is in exactly one shard.
    for key in w.store.keys("photos").iter().filter(|k| k.starts_with("2026/")) {
        assert_eq!(shards.iter().filter(|s| s.contains(key)).count(), 1, "{key}");
    }
    // The split is kept with the run's checkpoints, nothing else is written; a restarted
    // run is split the same way even if the bucket changed since.
    assert_eq!(w.store.keys("vault").len(), 1);
    assert!(w.store.keys("vault")[0].contains("/checkpoints/"));
    w.store.insert("photos", "2026/0/new.jpg", b"new sub-prefix");
    assert_eq!(plan(&w, 18, 3).await, shards);
    assert_eq!(plan(&w, 18, 16).await, shards);
    assert_eq!(plan(&w, 19, 16).await.len(), 6, "another run sees the new sub-prefix");
    // A flat prefix is one shard.
    let flat = world(2);
    flat.store.insert("photos", "2026/x.jpg", b"x");
    assert_eq!(plan(&flat, 18, 16).await, vec![Shard::whole()]);
}

#[tokio::test]
async fn a_sharded_run_writes_the_manifest_a_whole_run_writes_incrementally_with_tombstones() {
    let (single, split) = (world(2), world(2));
    seed(&single);
    seed(&split);
    let a = invoke(&single, 18, json!({}), "r").await.unwrap();
    let b = sharded(&split, 18, 3, None).await;
    assert_eq!(a.run, b.run);
    assert_eq!((b.status, b.copied, b.deleted), (RunStatus::Complete, SEEDED, 0));
    let (ma, mb) = (
        manifest_of(&single, &a.recovery_point).await,
        manifest_of(&split, &b.recovery_point).await,
    );
    assert_eq!(mb.header.objects, SEEDED);
    assert_eq!(comparable(&ma), comparable(&mb));
    assert_eq!(
        (ma.header.objects, ma.header.bytes),
        (mb.header.objects, mb.header.bytes)
    );
    for e in &mb.entries {
        assert_eq!(
            split.store.bytes("vault", &e.backup_key).unwrap(),
            single.store.bytes("vault", &e.backup_key).unwrap()
        );
    }
    let (pa, pb) = (
        point(&single, &a.recovery_point).await,
        point(&split, &b.recovery_point).await,
    );
    assert_eq!(
        (pa.status, pa.holds.clone(), pa.resource.clone()),
        (pb.status, pb.holds.clone(), pb.resource.clone())
    );
    let (ra, rb) = (pa.manifest().cloned().unwrap(), pb.manifest().cloned().unwrap());
    assert_eq!(
        (ra.key, ra.objects, ra.bytes, ra.copied, ra.deleted),
        (rb.key, rb.objects, rb.bytes, rb.copied, rb.deleted)
    );
    assert!(scratch_left(&split).is_empty(), "{:?}", scratch_left(&split));

    // The same changes in both worlds: one edited, one added (in a new sub-prefix), one
    // deleted, one loose object deleted.
    for w in [&single, &split] {
        w.store.insert("photos", "2026/b/1.jpg", b"edited");
        w.store.insert("photos", "2026/f/new.jpg", b"fresh");
        w.store.remove("photos", "2026/d/2.jpg");
        w.store.remove("photos", "2026/zz.txt");
    }
    let copies = split.store.calls(ObjectOp::Copy);
    let a2 = invoke(&single, 19, json!({}), "r").await.unwrap();
    let b2 = sharded(&split, 19, 4, None).await;
    assert_eq!((a2.copied, a2.deleted), (2, 2));
    assert_eq!((b2.copied, b2.deleted), (2, 2));
    assert_eq!(
        split.store.calls(ObjectOp::Copy),
        copies + 2,
        "only the changed objects are copied"
    );
    let (ma2, mb2) = (
        manifest_of(&single, &a2.recovery_point).await,
        manifest_of(&split, &b2.recovery_point).await,
    );
    assert_eq!(comparable(&ma2), comparable(&mb2));
    let tombs: Vec<_> = mb2
        .entries
        .iter()
        .filter(|e| e.deleted)
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(tombs, vec!["2026/d/2.jpg", "2026/zz.txt"]);
    let d = lifeboat_domain::manifest::diff(&mb, &mb2);
    assert_eq!(
        (d.new, d.changed),
        (vec!["2026/f/new.jpg".to_owned()], vec!["2026/b/1.jpg".to_owned()])
    );
    let rb2 = point(&split, &b2.recovery_point).await.manifest().cloned().unwrap();
    assert_eq!((rb2.copied, rb2.deleted), (2, 2));
}

#[tokio::test]
async fn an_interrupted_shard_resumes_from_its_own_checkpoint_without_copying_twice() {
    let w = world(2);
    seed(&w);
    let shards = plan(&w, 18, 3).await;
    let s = &shards[1];
    let in_range = w
        .store
        .keys("photos")
        .iter()
        .filter(|k| s.contains(k) && k.starts_with("2026/"))
        .count() as u64;
    assert!(in_range > 4, "the shard spans several pages: {in_range}");
    let first = invoke(&w, 18, shard_fields(s, Some(1)), "a").await.unwrap();
    assert_eq!(first.status, RunStatus::InProgress);
    assert!(first.copied >= 1);
    let part = lifeboat_domain::manifest::shard_part_key("photos", "2026/", &first.run, s.index);
    assert!(
        w.store.bytes("vault", &part).is_none(),
        "no part before the range is done"
    );
    let mut copied = first.copied;
    let mut invocations = 1;
    loop {
        let r = invoke(&w, 18, shard_fields(s, Some(1)), "b").await.unwrap();
        copied += r.copied;
        invocations += 1;
        if r.status == RunStatus::Complete {
            break;
        }
    }
    assert!(invocations >= 3);
    assert_eq!(copied, in_range);
    assert_eq!(w.store.calls(ObjectOp::Copy) as u64, in_range);
    assert!(w.store.bytes("vault", &part).is_some());
    // A replay of the finished shard does nothing.
    let calls = w.store.calls(ObjectOp::Copy);
    let again = invoke(&w, 18, shard_fields(s, None), "c").await.unwrap();
    assert!(again.replay);
    assert_eq!(w.store.calls(ObjectOp::Copy), calls);
}

#[tokio::test]
async fn a_shard_that_crashed_mid_page_copies_nothing_twice() {
    let w = world(3);
    seed(&w);
    let shards = plan(&w, 18, 2).await;
    w.store
        .fail_after(ObjectOp::Copy, 4, PortError::Unavailable("connection reset".into()));
    let err = invoke(&w, 18, shard_fields(&shards[0], None), "a").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    let done = sharded(&w, 18, 2, None).await;
    assert_eq!(done.status, RunStatus::Complete);
    for key in w.store.all_keys("vault", "lifeboat/photos/") {
        if key.contains("/data/") {
            assert_eq!(w.store.versions("vault", &key), 1, "{key} written twice");
        }
    }
    assert_eq!(manifest_of(&w, &done.recovery_point).await.header.objects, SEEDED);
}

#[tokio::test]
async fn finish_waits_for_every_part_and_a_replay_does_nothing() {
    let w = world(2);
    seed(&w);
    let shards = plan(&w, 18, 3).await;
    for s in &shards[..2] {
        invoke(&w, 18, shard_fields(s, None), "a").await.unwrap();
    }
    let err = invoke(&w, 18, finish_fields(&shards), "f").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    assert!(err.message.contains("shard 2"), "{}", err.message);
    assert!(
        w.store.keys("vault").iter().all(|k| !k.contains("/manifests/")),
        "no manifest"
    );
    let id = invoke(&w, 18, json!({"mode": "shards"}), "plan")
        .await
        .unwrap()
        .recovery_point;
    assert!(w.catalog.get(&id).await.unwrap().is_none(), "no recovery point");

    invoke(&w, 18, shard_fields(&shards[2], None), "a").await.unwrap();
    let done = invoke(&w, 18, finish_fields(&shards), "f").await.unwrap();
    assert!(!done.replay);
    assert_eq!(done.manifest.as_ref().unwrap().objects, SEEDED);
    let calls = w.store.total_calls();
    let again = invoke(&w, 18, finish_fields(&shards), "f").await.unwrap();
    assert!(again.replay);
    assert_eq!(again.manifest, done.manifest);
    assert_eq!(w.store.total_calls(), calls, "a replayed finish makes no S3 call");
    // Every step of the finished run is a replay.
    let replanned = invoke(&w, 18, json!({"mode": "shards"}), "plan").await.unwrap();
    assert!(replanned.replay && replanned.shards.unwrap().is_empty());
    let note = replanned.note.unwrap();
    assert!(note.contains(&done.run) && note.contains("already complete"), "{note}");
    assert!(!note.contains("requestId"), "a sharded step takes none: {note}");
    // The state machine passes that empty list on to finish, which replays the run.
    let replayed = invoke(&w, 18, finish_fields(&[]), "f").await.unwrap();
    assert!(replayed.replay);
    assert_eq!(replayed.manifest, done.manifest);
    assert!(
        invoke(&w, 18, shard_fields(&shards[0], None), "x")
            .await
            .unwrap()
            .replay
    );
    assert_eq!(w.store.total_calls(), calls);
}

#[tokio::test]
async fn a_shard_list_that_does_not_match_the_parts_is_refused() {
    let w = world(2);
    seed(&w);
    let shards = plan(&w, 18, 3).await;
    for s in &shards {
        invoke(&w, 18, shard_fields(s, None), "a").await.unwrap();
    }
    // Another split of the same run: well formed, but not what the parts cover.
    let other = vec![
        Shard {
            index: 0,
            from: String::new(),
            to: Some(shards[2].from.clone()),
        },
        Shard {
            index: 1,
            from: shards[2].from.clone(),
            to: None,
        },
    ];
    assert!(lifeboat_domain::shards::check_cover(&other).is_ok());
    let err = invoke(&w, 18, finish_fields(&other), "f").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("does not match"), "{}", err.message);
    // The right list still finishes.
    let done = invoke(&w, 18, finish_fields(&shards), "f").await.unwrap();
    assert_eq!(done.manifest.unwrap().objects, SEEDED);
}

#[tokio::test]
async fn bad_shard_input_is_refused_before_any_call() {
    let w = world(2);
    let err = handle(&w.deps, event_json(FINISH_GAP)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("bad shard list"), "{}", err.message);
    let base = r#""bucket":"photos","prefix":"2026/","policy":"gold","scheduledTime":"2026-11-23T18:00:00Z""#;
    for (bad, needle) in [
        (format!(r#"{{"mode":"everything",{base}}}"#), "unknown variant"),
        (format!(r#"{{"mode":"shard",{base}}}"#), "needs its shard"),
        (format!(r#"{{"mode":"finish",{base}}}"#), "needs the run's shards"),
        (format!(r#"{{"mode":"finish",{base},"shards":[]}}"#), "empty"),
        (format!(r#"{{"mode":"shards",{base},"maxShards":0}}"#), "maxShards"),
        (format!(r#"{{"mode":"shards",{base},"maxShards":101}}"#), "maxShards"),
        (
            format!(r#"{{"mode":"shards",{base},"shard":{{"index":0,"from":"","to":null}}}}"#),
            "does not belong",
        ),
        (
            format!(r#"{{"mode":"shard",{base},"shard":{{"index":1,"from":"2026/c/","to":"2026/b/"}}}}"#),
            "empty",
        ),
        (
            format!(r#"{{"mode":"shard",{base},"shard":{{"index":1,"from":"2026/c/","until":"x"}}}}"#),
            "unknown field",
        ),
        (
            format!(r#"{{"mode":"shard",{base},"shard":{{"index":0,"from":"","to":null}},"maxPages":0}}"#),
            "maxPages",
        ),
        (
            r#"{"mode":"shards","bucket":"Bad_Bucket","policy":"gold","scheduledTime":"2026-11-23T18:00:00Z"}"#
                .to_owned(),
            "bucket name",
        ),
    ] {
        let err = handle(&w.deps, event_json(&bad)).await.unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid, "{bad}");
        assert!(err.message.contains(needle), "{bad}: {}", err.message);
    }
    assert_eq!(w.store.total_calls(), 0);
}

#[tokio::test]
async fn the_sample_shard_event_backs_up_only_its_range() {
    let w = world(2);
    seed(&w);
    let r = handle(&w.deps, event_json(SHARD)).await.unwrap();
    assert_eq!((r.status, r.shard), (RunStatus::Complete, Some(1)));
    // [2026/c/, 2026/e/): c's 4 objects and d's 3; 2026/c-loose.txt sorts before 2026/c/
    // ('-' < '/') and belongs to the shard before.
    assert_eq!((r.listed, r.copied), (7, 7));
    let copies: Vec<_> = w
        .store
        .keys("vault")
        .into_iter()
        .filter(|k| k.contains("/data/"))
        .collect();
    assert!(
        copies.iter().all(|k| k.contains("/2026/c") || k.contains("/2026/d/")),
        "{copies:?}"
    );
}

#[tokio::test]
async fn run_sharded_runs_the_whole_flow_concurrently_in_process() {
    let (single, split) = (world(2), world(2));
    seed(&single);
    seed(&split);
    let a = invoke(&single, 18, json!({}), "r").await.unwrap();
    let req = ShardedRequest {
        max_shards: Some(4),
        max_pages: Some(1),
        ..step(Mode::Shards, 18)
    };
    let b = run_sharded(&split.deps, &req, "bench", 4).await.unwrap();
    assert_eq!((b.status, b.copied, b.listed), (RunStatus::Complete, SEEDED, SEEDED));
    assert_eq!(b.shards.as_ref().map(Vec::len), Some(4));
    assert_eq!(
        comparable(&manifest_of(&single, &a.recovery_point).await),
        comparable(&manifest_of(&split, &b.recovery_point).await)
    );
    assert!(scratch_left(&split).is_empty());
    let again = run_sharded(&split.deps, &req, "bench", 4).await.unwrap();
    assert!(again.replay);
}

#[tokio::test]
async fn an_invocation_that_starts_past_its_deadline_still_moves_its_shard_forward() {
    let w = world(2);
    seed(&w);
    let shards = plan(&w, 18, 1).await;
    let late = Some(now() - chrono::Duration::minutes(1));
    let mut invocations = 0;
    loop {
        let r = invoke_until(&w, 18, shard_fields(&shards[0], None), "late", late)
            .await
            .unwrap();
        invocations += 1;
        assert_eq!(r.listed, 2, "one page each time");
        if r.status == RunStatus::Complete {
            break;
        }
        assert!(invocations < 20, "no progress");
    }
    assert_eq!(invocations, SEEDED.div_ceil(2));
    let done = invoke(&w, 18, finish_fields(&shards), "f").await.unwrap();
    assert_eq!(done.manifest.unwrap().objects, SEEDED);
}
