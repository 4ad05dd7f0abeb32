//! Archived copies (here written straight into GLACIER) are checked by metadata on every
//! run, and proved by a sample restore once per period: the first run starts the restore,
//! runs while S3 works see it pending, the first run after S3 restored it reads it back
//! and records `restore_checked_at`; later runs of the period do nothing more. Bit rot in
//! an archived copy is found by the read-back, marks the run unverified and alerts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use lifeboat::FunctionError;
use lifeboat::object_store::settings::S3Settings;
use lifeboat::verify::Problem;
use lifeboat_domain::{AlertKind, RecoveryPointId};
use lifeboat_ports::Catalog;
use lifeboat_testkit::objects::{InMemoryObjectStore, ObjectOp};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, RecordingNotifier, event_for, sample};
use serde_json::json;
use verify_backups::{Deps, VerifyReport, VerifyRequest, handle};

struct World {
    deps: Deps,
    store: Arc<InMemoryObjectStore>,
    catalog: Arc<InMemoryCatalog>,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<ManualClock>,
    rp: RecoveryPointId,
}

fn now() -> DateTime<Utc> {
    "2026-11-23T18:05:00Z".parse().unwrap()
}

async fn world() -> World {
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket("photos", true);
    store.create_bucket("vault", true);
    for i in 0..6 {
        let body: Vec<u8> = (0..(300 + i * 41)).map(|b| u8::try_from(b % 251).unwrap()).collect();
        store.insert("photos", &format!("p/{i:03}.bin"), &body);
    }
    let catalog = Arc::new(InMemoryCatalog::new());
    let clock = Arc::new(ManualClock::new(now()));
    let settings = S3Settings::from_lookup(|k| match k {
        "BACKUP_BUCKET_NAME" => Some("vault".into()),
        "AWS_REGION" => Some("us-west-2".into()),
        "BACKUP_STORAGE_CLASS" => Some("GLACIER".into()),
        _ => None,
    })
    .unwrap();
    let backup_deps = backup_objects::Deps {
        catalog: catalog.clone(),
        notifier: Arc::new(lifeboat_testkit::RecordingNotifier::new()),
        clock: clock.clone(),
        source: store.clone(),
        backup: store.clone(),
        settings,
        changes: Arc::new(lifeboat_testkit::changes::InMemoryChangeFeed::new("unused", now())),
    };
    // The backup run to verify, through backup-objects' handler.
    let req = json!({"bucket": "photos", "prefix": "p/", "policy": "gold", "scheduledTime": now()});
    let report = backup_objects::handle(&backup_deps, event_for(req, "backup"))
        .await
        .unwrap();
    let notifier = Arc::new(RecordingNotifier::new());
    World {
        deps: Deps {
            catalog: catalog.clone(),
            notifier: notifier.clone(),
            clock: clock.clone(),
            backup: store.clone(),
        },
        store,
        catalog,
        notifier,
        clock,
        rp: report.recovery_point,
    }
}

/// The full verification (`events/verify-backups/full.json`) as invocation `run_id`.
async fn full(deps: &Deps, run_id: &str) -> Result<VerifyReport, FunctionError> {
    handle(deps, event_for(sample("verify-backups", "full.json"), run_id)).await
}

fn restores(r: &VerifyReport) -> (u64, u64, u64) {
    (r.restores_started, r.restores_pending, r.restores_verified)
}

#[tokio::test]
async fn archived_copies_are_proved_by_one_sample_restore_per_period() {
    let w = world().await;
    let first = full(&w.deps, "v1").await.unwrap();
    assert_eq!((first.objects_checked, first.metadata_only), (6, 6));
    assert_eq!(restores(&first), (1, 0, 0));
    assert_eq!(first.verified, vec![w.rp.clone()], "intact by metadata");
    assert_eq!(w.store.calls(ObjectOp::Restore), 1);
    // S3 is still restoring: nothing new is started.
    w.clock.advance(Duration::days(1));
    let second = full(&w.deps, "v2").await.unwrap();
    assert_eq!(restores(&second), (0, 1, 0));
    assert_eq!(w.store.calls(ObjectOp::Restore), 1);
    // Restored: read back against the manifest.
    w.store.complete_restores();
    w.clock.advance(Duration::days(1));
    let third = full(&w.deps, "v3").await.unwrap();
    assert_eq!(restores(&third), (0, 0, 1));
    assert!(third.findings.is_empty(), "{:?}", third.findings);
    let rp = w.catalog.get(&w.rp).await.unwrap().unwrap();
    assert_eq!(rp.restore_checked_at(), Some(w.clock_now()));
    // Proved for this period: later runs of it start nothing.
    w.clock.advance(Duration::days(2));
    let fourth = full(&w.deps, "v4").await.unwrap();
    assert_eq!(restores(&fourth), (0, 0, 0));
    assert_eq!(w.store.calls(ObjectOp::Restore), 1);
    // Next period: another sample restore.
    w.clock.advance(Duration::days(30));
    let next = full(&w.deps, "v5").await.unwrap();
    assert_eq!(next.restores_started, 1);
    assert!(w.notifier.alerts().is_empty());
}

#[tokio::test]
async fn bit_rot_in_an_archived_copy_is_found_by_the_restore() {
    let w = world().await;
    full(&w.deps, "v1").await.unwrap();
    // Which copy the period's sample restore chose: the one restore was asked for.
    let rp = w.catalog.get(&w.rp).await.unwrap().unwrap();
    let mref = rp.manifest().cloned().unwrap();
    let m = lifeboat::object_store::runs::load_manifest(w.store.as_ref(), &mref)
        .await
        .unwrap();
    let mut chosen = Vec::new();
    for e in m.live() {
        let head = lifeboat_ports::objects::ObjectStore::head(w.store.as_ref(), "vault", &e.backup_key, None)
            .await
            .unwrap()
            .unwrap();
        if head.restore.is_some() {
            chosen.push(e);
        }
    }
    assert_eq!(chosen.len(), 1);
    w.store.rot("vault", &chosen[0].backup_key, 17);
    w.store.complete_restores();
    w.clock.advance(Duration::days(1));
    let report = full(&w.deps, "v2").await.unwrap();
    let problems: Vec<_> = report.findings.iter().map(|f| (f.key.as_str(), f.problem)).collect();
    // Other bytes than the manifest's, and than the checksum S3 stored on upload.
    assert_eq!(
        problems,
        vec![
            (chosen[0].key.as_str(), Problem::Corrupted),
            (chosen[0].key.as_str(), Problem::StoreChecksum)
        ]
    );
    assert_eq!(report.unverified, vec![w.rp.clone()]);
    let alerts = w.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::VerificationFailed);
    let rp = w.catalog.get(&w.rp).await.unwrap().unwrap();
    assert!(rp.restore_checked_at().is_none() && rp.verified_at.is_none());
}

#[tokio::test]
async fn expedited_restores_and_odd_periods_are_refused() {
    for bad in [
        serde_json::json!({"mode": "full", "restoreTier": "Expedited"}),
        serde_json::json!({"mode": "full", "restoreEveryDays": 0}),
    ] {
        let err = VerifyRequest::parse(&bad).unwrap_err();
        assert_eq!(err.kind, lifeboat::ErrorType::Invalid, "{bad}");
    }
    let ok = VerifyRequest::parse(&serde_json::json!({"mode": "due", "restoreSample": 2, "restoreTier": "Standard"}))
        .unwrap();
    assert_eq!(ok.restore_sample, Some(2));
}

impl World {
    fn clock_now(&self) -> DateTime<Utc> {
        lifeboat_ports::Clock::now(self.clock.as_ref())
    }
}
