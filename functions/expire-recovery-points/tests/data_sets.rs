//! Expiring S3 data sets' runs, made by the real `backup-objects` on the in-memory
//! fakes: only the copies no kept run references are deleted (incremental runs share
//! copies), a version S3 refuses (legal hold) leaves the run `expiring` for a later run,
//! and a run whose copies are still locked is kept by the plan.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use backup_objects::RunStatus;
use chrono::{DateTime, Utc};
use expire_recovery_points::{BackupStore, Deps, handle};
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::{RecoveryPoint, RecoveryPointId, ResourceKind, Status};
use lifeboat_ports::Catalog;
use lifeboat_ports::objects::ObjectStore;
use lifeboat_testkit::objects::InMemoryObjectStore;
use lifeboat_testkit::{Fakes, event_for};
use serde_json::json;

const MEDIA: &str = r#"{"name": "media", "every": "1h", "rpo": "2h", "retain": 1,
    "s3": [{"bucket": "photos", "prefix": "2026/"}]}"#;

struct World {
    fakes: Fakes,
    store: Arc<InMemoryObjectStore>,
    backup: backup_objects::Deps,
    expire: Deps,
}

fn at(hh_mm: &str) -> DateTime<Utc> {
    format!("2026-11-23T{hh_mm}:00Z").parse().unwrap()
}

fn world(lock: &str) -> World {
    let fakes = Fakes::new(at("00:05"));
    fakes.catalog.put_policy_json("media", MEDIA);
    // One S3 namespace for both regions: server-side copies reach across.
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket("photos", true);
    store.create_bucket("vault", true);
    let lock = lock.to_owned();
    let settings = S3Settings::from_lookup(move |k| match k {
        "BACKUP_BUCKET_NAME" => Some("vault".into()),
        "AWS_REGION" | "BACKUP_REGION" => Some("us-west-2".into()),
        "SOURCE_REGION" => Some("us-east-1".into()),
        "OBJECT_LOCK_MODE" => Some("GOVERNANCE".into()),
        "OBJECT_LOCK_DURATION" => Some(lock.clone()),
        _ => None,
    })
    .unwrap();
    let backup = backup_objects::Deps {
        catalog: fakes.catalog.clone(),
        notifier: fakes.notifier.clone(),
        clock: fakes.clock.clone(),
        source: store.clone(),
        backup: store.clone(),
        settings,
        changes: Arc::new(lifeboat_testkit::changes::InMemoryChangeFeed::new(
            "unused",
            at("00:05"),
        )),
    };
    let expire = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        backups: Some(BackupStore(store.clone())),
    };
    World {
        fakes,
        store,
        backup,
        expire,
    }
}

impl World {
    fn set_clock(&self, t: DateTime<Utc>) {
        self.fakes.clock.set(t);
        self.store.set_now(t);
    }

    /// The scheduled run of `hour`, five minutes past it.
    async fn back_up(&self, hour: u32) -> RecoveryPointId {
        self.set_clock(at(&format!("{hour:02}:05")));
        let req = json!({"bucket": "photos", "prefix": "2026/", "policy": "media",
                         "scheduledTime": format!("2026-11-23T{hour:02}:00:00Z")});
        let report = backup_objects::handle(&self.backup, event_for(req, &format!("backup-{hour}")))
            .await
            .unwrap();
        assert_eq!(report.status, RunStatus::Complete);
        report.recovery_point
    }

    async fn expire(&self, hh_mm: &str) -> expire_recovery_points::Report {
        let t = at(hh_mm);
        self.set_clock(t + chrono::Duration::minutes(4));
        let tick = json!({"scheduledTime": t.to_rfc3339()});
        handle(&self.expire, event_for(tick, &format!("expire-{hh_mm}")))
            .await
            .unwrap()
    }

    async fn point(&self, id: &RecoveryPointId) -> RecoveryPoint {
        self.fakes.catalog.get(id).await.unwrap().unwrap()
    }

    /// The backup copies of the run named `run` that still have a version.
    fn copies_of(&self, run: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .store
            .all_keys("vault", "lifeboat/photos/")
            .into_iter()
            .filter(|k| k.contains(&format!("/data/{run}/")) && self.store.versions("vault", k) > 0)
            .map(|k| k.rsplit('/').next().unwrap_or_default().to_owned())
            .collect();
        keys.sort();
        keys
    }
}

fn run_name(id: &RecoveryPointId) -> String {
    id.as_str().rsplit('/').next().unwrap().to_owned()
}

/// Three hourly runs: a, b, c first; b changed before the second; c before the third.
async fn three_runs(w: &World) -> [RecoveryPointId; 3] {
    for k in ["a", "b", "c"] {
        w.store
            .insert("photos", &format!("2026/{k}"), format!("{k} v1").as_bytes());
    }
    let r0 = w.back_up(0).await;
    w.store.insert("photos", "2026/b", b"b v2");
    let r1 = w.back_up(1).await;
    w.store.insert("photos", "2026/c", b"c v2");
    let r2 = w.back_up(2).await;
    [r0, r1, r2]
}

#[tokio::test]
async fn an_expired_run_deletes_only_the_copies_no_kept_run_references() {
    let w = world("30m");
    let [r0, r1, r2] = three_runs(&w).await;
    assert_eq!(w.copies_of(&run_name(&r0)), ["a", "b", "c"]);

    let report = w.expire("02:30").await;
    let expired: Vec<&RecoveryPointId> = report.expired.iter().map(|e| &e.id).collect();
    assert_eq!(expired.len(), 2, "{report:?}");
    assert!(expired.contains(&&r0) && expired.contains(&&r1));
    for id in [&r0, &r1] {
        assert_eq!(w.point(id).await.status, Status::Expired);
    }
    assert_eq!(w.point(&r2).await.status, Status::Available);
    let deleted: u64 = report.expired.iter().filter_map(|e| e.copies_deleted).sum();
    assert_eq!(deleted, 2, "b and c of the first run");

    // The kept run still has every copy it names: a from the first run, b from the
    // second, c of its own.
    assert_eq!(w.copies_of(&run_name(&r0)), ["a"]);
    assert_eq!(w.copies_of(&run_name(&r1)), ["b"]);
    assert_eq!(w.copies_of(&run_name(&r2)), ["c"]);
    let kept = w.point(&r2).await.manifest().cloned().unwrap();
    let manifest = lifeboat::object_store::runs::load_manifest(w.store.as_ref(), &kept)
        .await
        .unwrap();
    for e in &manifest.entries {
        let head = w
            .store
            .head("vault", &e.backup_key, e.backup_version_id.as_deref())
            .await
            .unwrap();
        assert!(head.is_some(), "{} is restorable", e.key);
    }
    // The expired runs' manifests are gone too.
    for id in [&r0, &r1] {
        let mref = w.point(id).await.manifest().cloned().unwrap();
        assert_eq!(w.store.versions("vault", &mref.key), 0, "{}", mref.key);
    }

    // A replay of the tick finds nothing more to do.
    let again = w.expire("02:30").await;
    assert!(again.expired.is_empty() && again.failed.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_copy_under_legal_hold_keeps_its_run_expiring_until_the_hold_is_lifted() {
    let w = world("30m");
    let [r0, _r1, _r2] = three_runs(&w).await;
    // Someone puts the first run's copy of b under legal hold.
    let manifest =
        lifeboat::object_store::runs::load_manifest(w.store.as_ref(), &w.point(&r0).await.manifest().cloned().unwrap())
            .await
            .unwrap();
    let entry = manifest.entries.iter().find(|e| e.key == "2026/b").unwrap();
    assert!(entry.backup_key.contains(&run_name(&r0)));
    w.store
        .set_legal_hold("vault", &entry.backup_key, entry.backup_version_id.as_deref(), true)
        .await
        .unwrap();

    let report = w.expire("02:30").await;
    assert_eq!(w.point(&r0).await.status, Status::Expiring);
    let skipped = report.skipped.iter().find(|s| s.id == r0.to_string()).unwrap();
    assert!(skipped.reason.contains("legal hold"), "{}", skipped.reason);
    assert_eq!(w.store.versions("vault", &entry.backup_key), 1, "the held copy stays");

    w.store
        .set_legal_hold("vault", &entry.backup_key, entry.backup_version_id.as_deref(), false)
        .await
        .unwrap();
    let later = w.expire("03:30").await;
    assert!(later.resumed.iter().any(|e| e.id == r0), "{later:?}");
    assert_eq!(w.point(&r0).await.status, Status::Expired);
    assert_eq!(w.store.versions("vault", &entry.backup_key), 0);
}

#[tokio::test]
async fn a_run_whose_copies_are_still_locked_is_kept_by_the_plan() {
    let w = world("1day");
    let [r0, r1, _r2] = three_runs(&w).await;
    let report = w.expire("02:30").await;
    assert!(report.expired.is_empty(), "{report:?}");
    assert!(report.protected >= 2);
    assert_eq!(w.point(&r0).await.status, Status::Available);
    assert_eq!(w.point(&r1).await.status, Status::Available);
    assert_eq!(w.copies_of(&run_name(&r0)), ["a", "b", "c"]);
    assert_eq!(ResourceKind::S3Prefix, w.point(&r0).await.resource.kind);
}
