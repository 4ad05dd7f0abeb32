//! Behaviour of `restore-objects` against the in-memory fakes: the run chosen as of an
//! instant, restores to a new prefix by default, overwrite only on request and keeping
//! the overwritten version, dry runs, replays, and tier checks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat::ErrorType;
use lifeboat::object_store::settings::S3Settings;
use lifeboat_ports::objects::RestoreTier;
use lifeboat_testkit::objects::{InMemoryObjectStore, ObjectOp};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, event, event_for, event_json, sample};
use restore_objects::{Deps, handle, readiness};
use serde_json::{Value, json};

const DRY_RUN: &str = include_str!("../../../events/restore-objects/dry-run.json");
const OVERWRITE_WITHOUT_FLAG: &str = include_str!("../../../events/restore-objects/overwrite-without-flag.json");

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Two runs: at 18:05 (a=1, b=1) and at 19:05 (a=2, c=new, b deleted).
async fn world() -> (Deps, Arc<InMemoryObjectStore>) {
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket("photos", true);
    store.create_bucket("vault", true);
    let catalog = Arc::new(InMemoryCatalog::new());
    let clock = Arc::new(ManualClock::new(t("2026-11-23T18:05:00Z")));
    let settings = S3Settings::from_lookup(|k| match k {
        "BACKUP_BUCKET_NAME" => Some("vault".into()),
        "AWS_REGION" => Some("us-west-2".into()),
        "SOURCE_REGION" => Some("us-east-1".into()),
        _ => None,
    })
    .unwrap();
    let backup = backup_objects::Deps {
        catalog: catalog.clone(),
        notifier: Arc::new(lifeboat_testkit::RecordingNotifier::new()),
        clock: clock.clone(),
        source: store.clone(),
        backup: store.clone(),
        settings: settings.clone(),
        changes: Arc::new(lifeboat_testkit::changes::InMemoryChangeFeed::new(
            "unused",
            t("2026-11-23T18:05:00Z"),
        )),
    };
    // Backups through backup-objects' handler.
    let req = |h: &str| json!({"bucket": "photos", "prefix": "2026/", "policy": "gold", "scheduledTime": h});
    store.insert("photos", "2026/a", b"a1");
    store.insert("photos", "2026/b", b"b1");
    backup_objects::handle(&backup, event_for(req("2026-11-23T18:00:00Z"), "r1"))
        .await
        .unwrap();
    clock.set(t("2026-11-23T19:05:00Z"));
    store.insert("photos", "2026/a", b"a2");
    store.insert("photos", "2026/c", b"c1");
    store.remove("photos", "2026/b");
    backup_objects::handle(&backup, event_for(req("2026-11-23T19:00:00Z"), "r2"))
        .await
        .unwrap();
    let deps = Deps {
        confirmations: lifeboat_testkit::keys::confirmations(catalog.clone()).0,
        catalog,
        target: store.clone(),
        backup: store.clone(),
        settings,
    };
    (deps, store)
}

/// A restore of photos/2026/ as of `as_of`, shaped like `events/restore-objects/`.
fn request(as_of: &str) -> Value {
    json!({"bucket": "photos", "prefix": "2026/", "asOf": as_of})
}

#[tokio::test]
async fn restores_each_instant_to_a_new_prefix() {
    let (deps, store) = world().await;
    let first = handle(&deps, event(request("2026-11-23T18:30:00Z"))).await.unwrap();
    let p = first.target.prefix.clone();
    assert!(p.starts_with("lifeboat-restore/"));
    assert_eq!(store.bytes("photos", &format!("{p}2026/a")).unwrap(), b"a1");
    assert_eq!(store.bytes("photos", &format!("{p}2026/b")).unwrap(), b"b1");
    assert!(store.bytes("photos", &format!("{p}2026/c")).is_none());
    let second = handle(&deps, event(request("2026-11-23T20:00:00Z"))).await.unwrap();
    let p = second.target.prefix.clone();
    assert_eq!(store.bytes("photos", &format!("{p}2026/a")).unwrap(), b"a2");
    assert_eq!(store.bytes("photos", &format!("{p}2026/c")).unwrap(), b"c1");
    assert!(store.bytes("photos", &format!("{p}2026/b")).is_none());
    // The originals are untouched.
    assert_eq!(store.bytes("photos", "2026/a").unwrap(), b"a2");
    // Nothing before the first run.
    let none = handle(&deps, event(request("2026-11-23T17:00:00Z"))).await.unwrap_err();
    assert_eq!(none.kind, ErrorType::NotFound);
}

#[tokio::test]
async fn a_dry_run_lists_what_where_and_how_long_and_writes_nothing() {
    let (deps, store) = world().await;
    let copies = store.calls(ObjectOp::Copy);
    let report = handle(&deps, event_json(DRY_RUN)).await.unwrap();
    assert!(report.dry_run);
    let keys: Vec<_> = report
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.readiness.as_str()))
        .collect();
    assert_eq!(keys, vec![("2026/a", "immediate"), ("2026/b", "immediate")]);
    assert_eq!(report.bytes, 4);
    assert_eq!(store.calls(ObjectOp::Copy), copies);
}

#[tokio::test]
async fn overwriting_needs_the_flag_and_an_api_token_and_keeps_the_overwritten_version() {
    let (mut deps, store) = world().await;
    let (confirmations, audit) = lifeboat_testkit::keys::confirmations(deps.catalog.clone());
    deps.confirmations = confirmations;
    let refused = handle(&deps, event_json(OVERWRITE_WITHOUT_FLAG)).await.unwrap_err();
    assert_eq!(refused.kind, ErrorType::Invalid);
    assert!(refused.message.contains("overwrite"));
    let mut req = sample("restore-objects", "overwrite-without-flag.json");
    req["overwrite"] = json!(true);
    req["keys"] = json!(["2026/a", "2026/zzz"]);
    let copies = store.calls(ObjectOp::Copy);
    // Flagged but not confirmed by the admin API: refused, nothing written.
    let refused = handle(&deps, event(req.clone())).await.unwrap_err();
    assert_eq!(refused.kind, ErrorType::Invalid);
    assert!(refused.message.contains("POST /confirmations"), "{}", refused.message);
    // A token for another request (other keys) does not confirm this one.
    let who = "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/alice";
    let mut other = req.clone();
    other["keys"] = json!(["2026/a"]);
    req["confirmation"] = json!(lifeboat_testkit::keys::token_for(
        "restore-objects",
        &other,
        who,
        Utc::now()
    ));
    let refused = handle(&deps, event(req.clone())).await.unwrap_err();
    assert!(refused.message.contains("different request"), "{}", refused.message);
    assert_eq!(store.calls(ObjectOp::Copy), copies);
    assert!(audit.records().is_empty());

    req["confirmation"] = json!(lifeboat_testkit::keys::token_for(
        "restore-objects",
        &req,
        who,
        Utc::now()
    ));
    let report = handle(&deps, event(req.clone())).await.unwrap();
    assert_eq!(report.not_in_backup, vec!["2026/zzz"]);
    assert_eq!(store.bytes("photos", "2026/a").unwrap(), b"a1");
    let previous = report.items[0].overwritten_version.clone().unwrap();
    let old = lifeboat::object_store::read_all(store.as_ref(), "photos", "2026/a", 1024)
        .await
        .unwrap();
    assert_eq!(old, b"a1");
    let body = lifeboat_ports::objects::ObjectStore::get(store.as_ref(), "photos", "2026/a", Some(&previous), None)
        .await
        .unwrap();
    let overwritten = lifeboat::object_store::digest(body).await.unwrap();
    assert_eq!(overwritten.sha256, lifeboat_domain::manifest::sha256_hex(b"a2"));
    // On the audit trail, with who confirmed it.
    let records = audit.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (
            records[0].phase.as_str(),
            records[0].principal.as_str(),
            records[0].route.as_str()
        ),
        ("confirmed", who, "restore-objects")
    );
    // A replay (the same token) is refused: nothing is written again.
    let copies = store.calls(ObjectOp::Copy);
    let again = handle(&deps, event(req)).await.unwrap_err();
    assert!(again.message.contains("already used"), "{}", again.message);
    assert_eq!(store.calls(ObjectOp::Copy), copies);
}

#[test]
fn tiers_are_checked_against_the_class() {
    assert!(readiness("DEEP_ARCHIVE", RestoreTier::Expedited).is_err());
    assert_eq!(readiness("GLACIER_IR", RestoreTier::Bulk).unwrap(), "immediate");
    assert!(readiness("GLACIER", RestoreTier::Bulk).unwrap().contains("5-12 hours"));
}
