//! Behaviour of `tier-backups` against the in-memory fakes: lifecycle rules written
//! beside other rules, dry runs that change nothing, moves by run age with the ledger
//! that keeps restores and verification working, small objects left alone, waits for
//! locks and minimum storage durations, crash recovery with nothing copied twice, moves
//! that would cost more than they save left out, superseded versions swept by a later
//! run, and a restore from Glacier that is started, tracked and then copied back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use lifeboat::object_store::settings::S3Settings;
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::cost::PriceBook;
use lifeboat_domain::tiering::{LifecycleRule, S3Class};
use lifeboat_domain::{RecoveryPoint, Region, ResourceKind};
use lifeboat_ports::objects::{ObjectStore, RestoreTier};
use lifeboat_ports::{Catalog, PortError};
use lifeboat_testkit::objects::{InMemoryObjectStore, ObjectOp};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, event, event_for, event_json, sample};
use restore_objects::{RestoreReport, RestoreStatus};
use serde_json::{Value, json};
use tier_backups::{Deps, TierReport, handle};

const DRY_RUN: &str = include_str!("../../../events/tier-backups/dry-run.json");
const SCHEDULED: &str = include_str!("../../../events/tier-backups/scheduled.json");
const ZERO_BUDGET: &str = include_str!("../../../events/tier-backups/zero-budget.json");

const KIB: usize = 1024;
const POLICY: &str = r#"{"name": "gold", "every": "1d", "timezone": "UTC", "rpo": "2d", "retain": 30,
    "tiers": [{"after": "30d", "class": "GLACIER_IR"}, {"after": "120d", "class": "GLACIER"}]}"#;

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:05:00Z".parse().unwrap()
}

struct World {
    deps: Deps,
    store: Arc<InMemoryObjectStore>,
    catalog: Arc<InMemoryCatalog>,
    clock: Arc<ManualClock>,
    settings: S3Settings,
}

fn settings(extra: &[(&str, &str)]) -> S3Settings {
    let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    S3Settings::from_lookup(move |k| {
        extra
            .iter()
            .find(|(ek, _)| ek == k)
            .map(|(_, v)| v.clone())
            .or(match k {
                "BACKUP_BUCKET_NAME" => Some("vault".into()),
                "AWS_REGION" => Some("us-east-1".into()),
                _ => None,
            })
    })
    .unwrap()
}

/// One backup run at t0 of photos/: two copies over 128 KiB and one under.
async fn world(extra: &[(&str, &str)]) -> World {
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket("photos", true);
    store.create_bucket("vault", true);
    store.set_now(t0());
    let catalog = Arc::new(InMemoryCatalog::new());
    catalog.put_policy_json("gold", POLICY);
    let clock = Arc::new(ManualClock::new(t0()));
    let settings = settings(extra);
    store.insert("photos", "big-1.jpg", &vec![1u8; 1024 * KIB]);
    store.insert("photos", "big-2.jpg", &vec![2u8; 300 * KIB]);
    store.insert("photos", "small.txt", b"tiny");
    let backup = backup_objects::Deps {
        catalog: catalog.clone(),
        notifier: Arc::new(lifeboat_testkit::RecordingNotifier::new()),
        clock: clock.clone(),
        source: store.clone(),
        backup: store.clone(),
        settings: settings.clone(),
        changes: Arc::new(lifeboat_testkit::changes::InMemoryChangeFeed::new("unused", t0())),
    };
    let req = json!({"bucket": "photos", "prefix": "", "policy": "gold", "scheduledTime": "2026-01-01T00:00:00Z"});
    backup_objects::handle(&backup, event_for(req, "r1")).await.unwrap();
    let deps = Deps {
        catalog: catalog.clone(),
        clock: clock.clone(),
        backup: store.clone(),
        settings: settings.clone(),
        prices: PriceBook::aws_list_prices(),
    };
    World {
        deps,
        store,
        catalog,
        clock,
        settings,
    }
}

impl World {
    fn at(&self, days: i64) {
        let now = t0() + Duration::days(days);
        self.clock.set(now);
        self.store.set_now(now);
    }

    async fn run_point(&self) -> RecoveryPoint {
        let region = Region::parse("us-east-1").unwrap();
        let mut runs: Vec<RecoveryPoint> = self
            .catalog
            .by_resource("arn:aws:s3:::photos/", 10)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.resource.kind == ResourceKind::S3Prefix && p.location == region)
            .collect();
        assert_eq!(runs.len(), 1);
        runs.remove(0)
    }

    async fn class_of(&self, key: &str) -> String {
        let rp = self.run_point().await;
        let manifest = lifeboat::object_store::runs::load_current_manifest(
            self.store.as_ref(),
            self.catalog.as_ref(),
            &rp.location,
            rp.manifest().unwrap(),
        )
        .await
        .unwrap();
        let e = manifest.live().find(|e| e.key == key).unwrap();
        let head = self
            .store
            .head("vault", &e.backup_key, e.backup_version_id.as_deref())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(head.storage_class, e.storage_class, "{key}: ledger and S3 agree");
        head.storage_class
    }

    fn restore_deps(&self) -> restore_objects::Deps {
        restore_objects::Deps {
            catalog: self.catalog.clone(),
            target: self.store.clone(),
            backup: self.store.clone(),
            settings: self.settings.clone(),
            confirmations: lifeboat_testkit::keys::confirmations(self.catalog.clone()).0,
        }
    }
}

/// A restore-objects invocation with `req` (shaped like `events/restore-objects/`) over
/// the same stores.
async fn restore(w: &World, req: &Value) -> RestoreReport {
    restore_objects::handle(&w.restore_deps(), event(req.clone()))
        .await
        .unwrap()
}

/// The scheduled invocation (`events/tier-backups/scheduled.json`: move what is due),
/// with run id `run_id`.
async fn scheduled(deps: &Deps, run_id: &str) -> Result<TierReport, FunctionError> {
    handle(deps, event_for(sample("tier-backups", "scheduled.json"), run_id)).await
}

#[tokio::test]
async fn a_dry_run_shows_moves_waits_and_cost_and_changes_nothing() {
    let w = world(&[]).await;
    w.at(31);
    let copies_before = w.store.calls(ObjectOp::Copy);
    let r = handle(&w.deps, event_json(DRY_RUN)).await.unwrap();
    assert!(r.dry_run);
    assert_eq!(r.lifecycle_rules.len(), 2, "data/ and hashed/ of photos/");
    assert_eq!(r.moves.len(), 1);
    let m = &r.moves[0];
    assert_eq!(
        (m.from, m.to, m.outcome.as_str()),
        (S3Class::Standard, S3Class::GlacierIr, "planned")
    );
    assert_eq!((m.objects, m.bytes, m.small_kept), (2, 1324 * 1024, 1));
    assert!(m.reason.contains("31 days old"), "{}", m.reason);
    assert!(r.monthly_after_micro_usd < r.monthly_before_micro_usd, "{r:?}");
    assert_eq!(w.store.calls(ObjectOp::Copy), copies_before);
    assert!(w.store.lifecycle_rules("vault").is_empty());
    assert!(w.run_point().await.tiering().is_none());
    // Too young: nothing to plan.
    w.at(29);
    let r = handle(&w.deps, event_json(DRY_RUN)).await.unwrap();
    assert!(r.moves.is_empty() && r.waiting.is_empty());
}

#[tokio::test]
async fn a_superseded_copy_that_would_go_before_its_move_pays_off_stays() {
    let w = world(&[]).await;
    // Day 1: big-2 changes; the second run copies it, and big-1's copy stays run 1's.
    w.at(1);
    w.store.insert("photos", "big-2.jpg", &vec![9u8; 300 * KIB]);
    let backup = backup_objects::Deps {
        catalog: w.catalog.clone(),
        notifier: Arc::new(lifeboat_testkit::RecordingNotifier::new()),
        clock: w.clock.clone(),
        source: w.store.clone(),
        backup: w.store.clone(),
        settings: w.settings.clone(),
        changes: Arc::new(lifeboat_testkit::changes::InMemoryChangeFeed::new("unused", t0())),
    };
    let req = json!({"bucket": "photos", "prefix": "", "policy": "gold", "scheduledTime": "2026-01-02T00:00:00Z"});
    let second = backup_objects::handle(&backup, event_for(req, "r2")).await.unwrap();
    assert_eq!(second.copied, 1);
    // Day 31. `retain: 30` of daily runs with a 2-day RPO: a run is expected to stay
    // about 60 days, so run 1 has 29 days left. Its big-2 copy goes with it; moving it
    // to GLACIER_IR would bill 90 days there plus the copy request, more than 29 days
    // of STANDARD. Its big-1 copy is still the current backup of big-1: it moves.
    w.at(31);
    let r = scheduled(&w.deps, "m1").await.unwrap();
    let first = r.moves.iter().find(|m| m.run != second.run).unwrap();
    assert_eq!(
        (first.objects, first.bytes, first.uneconomic_kept),
        (1, 1024 * 1024, 1),
        "{r:?}"
    );
    // Run 2's own big-2 copy is current: it moves too.
    let newer = r.moves.iter().find(|m| m.run == second.run).unwrap();
    assert_eq!((newer.objects, newer.uneconomic_kept), (1, 0), "{r:?}");
}

#[tokio::test]
async fn superseded_versions_a_move_could_not_delete_are_swept_by_a_later_run() {
    let w = world(&[]).await;
    w.at(31);
    for _ in 0..2 {
        w.store
            .fail_next(ObjectOp::Delete, PortError::Unavailable("S3 went away".into()));
    }
    let r = scheduled(&w.deps, "m1").await.unwrap();
    assert_eq!(r.moves[0].superseded_pending, 2);
    assert_eq!(w.run_point().await.tiering().cloned().unwrap().superseded_pending, 2);
    let rp = w.run_point().await;
    let manifest = lifeboat::object_store::runs::load_manifest(w.store.as_ref(), rp.manifest().unwrap())
        .await
        .unwrap();
    let big: Vec<_> = manifest.live().filter(|e| e.size > 128 * 1024).collect();
    for e in &big {
        assert_eq!(w.store.versions("vault", &e.backup_key), 2, "{}", e.key);
    }
    w.at(32);
    let r = scheduled(&w.deps, "m2").await.unwrap();
    assert!(r.moves.is_empty(), "{r:?}");
    assert_eq!(r.superseded_swept, 2);
    assert_eq!(w.run_point().await.tiering().cloned().unwrap().superseded_pending, 0);
    for e in &big {
        assert_eq!(w.store.versions("vault", &e.backup_key), 1, "{}", e.key);
    }
    // The copies the ledger points at stay, and nothing is left to sweep.
    assert_eq!(w.class_of("big-1.jpg").await, "GLACIER_IR");
    assert_eq!(w.class_of("big-2.jpg").await, "GLACIER_IR");
    let r = scheduled(&w.deps, "m3").await.unwrap();
    assert_eq!(r.superseded_swept, 0);
}

#[tokio::test]
async fn moves_keep_other_lifecycle_rules_restores_and_verification_working() {
    let w = world(&[]).await;
    w.store.add_lifecycle_rule(
        "vault",
        LifecycleRule {
            id: "someone-elses-rule".into(),
            prefix: "logs/".into(),
            larger_than: 0,
            transitions: vec![],
        },
    );
    w.at(31);
    let r = handle(&w.deps, event_json(SCHEDULED)).await.unwrap();
    assert_eq!((r.objects_moved, r.bytes_moved), (2, 1324 * 1024));
    assert_eq!(r.moves[0].outcome, "moved");
    assert_eq!(r.moves[0].superseded_pending, 0);
    let rules = w.store.lifecycle_rules("vault");
    assert_eq!(rules.len(), 3, "ours replace ours only: {rules:?}");
    assert!(rules.iter().any(|r| r.id == "someone-elses-rule"));
    assert_eq!(w.class_of("big-1.jpg").await, "GLACIER_IR");
    assert_eq!(w.class_of("big-2.jpg").await, "GLACIER_IR");
    assert_eq!(w.class_of("small.txt").await, "STANDARD", "under 128 KiB stays");
    let rp = w.run_point().await;
    let t = rp.tiering().unwrap();
    assert_eq!((t.class, t.objects, t.small_kept), (S3Class::GlacierIr, 2, 1));
    // The superseded STANDARD versions are gone: one version per moved copy.
    let manifest = lifeboat::object_store::runs::load_manifest(w.store.as_ref(), rp.manifest().unwrap())
        .await
        .unwrap();
    for e in manifest.live() {
        assert_eq!(w.store.versions("vault", &e.backup_key), 1, "{}", e.key);
    }
    // A replay (same day) moves nothing again.
    let copies = w.store.calls(ObjectOp::Copy);
    let again = scheduled(&w.deps, "replay").await.unwrap();
    assert!(again.moves.is_empty(), "{again:?}");
    assert_eq!(w.store.calls(ObjectOp::Copy), copies);
    // GLACIER_IR restores immediately, with the backed-up bytes.
    let restored = restore(&w, &json!({"bucket": "photos", "prefix": "", "asOf": w.clock_now()})).await;
    assert_eq!(restored.status, RestoreStatus::Complete);
    assert_eq!(restored.progress.restored, 3);
    let back = w
        .store
        .bytes("photos", &format!("lifeboat-restore/{}/big-2.jpg", restored.run))
        .unwrap();
    assert_eq!(back, vec![2u8; 300 * KIB]);
}

impl World {
    fn clock_now(&self) -> DateTime<Utc> {
        use lifeboat_ports::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn a_glacier_restore_is_started_tracked_then_copied_back() {
    let w = world(&[]).await;
    w.at(31);
    scheduled(&w.deps, "m1").await.unwrap();
    // GLACIER_IR at day 31 must stay 90 days: GLACIER is due at day 120 but waits.
    w.at(120);
    let r = scheduled(&w.deps, "m2").await.unwrap();
    assert!(r.moves.is_empty());
    assert!(r.waiting[0].reason.contains("minimum storage duration"), "{r:?}");
    w.at(122);
    let r = scheduled(&w.deps, "m3").await.unwrap();
    assert_eq!((r.moves[0].from, r.moves[0].to), (S3Class::GlacierIr, S3Class::Glacier));
    // 1 MiB moves on. 300 KiB stays: a month in GLACIER (with its 40 KB per object, 8 KB
    // of it billed as STANDARD) costs more than a month in GLACIER_IR below ~750 KiB.
    assert_eq!((r.moves[0].objects, r.moves[0].uneconomic_kept), (1, 1), "{r:?}");
    assert_eq!(w.class_of("big-1.jpg").await, "GLACIER");
    // The new ledger still points at the GLACIER_IR copy the first move made (its
    // STANDARD original is gone).
    assert_eq!(w.class_of("big-2.jpg").await, "GLACIER_IR");
    // Now in GLACIER: copies move on to DEEP_ARCHIVE only through the lifecycle rule.
    let mut req = json!({
        "bucket": "photos",
        "prefix": "",
        "asOf": w.clock_now(),
        "keys": ["big-1.jpg", "small.txt"],
        "dryRun": true,
        "tier": RestoreTier::Expedited,
    });
    let plan = restore(&w, &req).await;
    let big = plan.items.iter().find(|i| i.key == "big-1.jpg").unwrap();
    assert_eq!(big.storage_class, "GLACIER");
    assert!(big.readiness.contains("Expedited"), "{big:?}");
    req["dryRun"] = json!(false);
    let first = restore(&w, &req).await;
    assert_eq!(first.status, RestoreStatus::InProgress);
    assert_eq!(
        (first.progress.archive_restores_started, first.progress.restored),
        (1, 1)
    );
    let second = restore(&w, &req).await;
    assert_eq!(second.status, RestoreStatus::InProgress);
    assert_eq!(
        (second.progress.archive_restores_in_progress, second.progress.unchanged),
        (1, 1)
    );
    w.store.complete_restores();
    let third = restore(&w, &req).await;
    assert_eq!(third.status, RestoreStatus::Complete);
    assert_eq!((third.progress.restored, third.progress.unchanged), (1, 1));
    let back = w
        .store
        .bytes("photos", &format!("lifeboat-restore/{}/big-1.jpg", third.run))
        .unwrap();
    assert_eq!(back, vec![1u8; 1024 * KIB]);
}

#[tokio::test]
async fn a_crash_mid_move_resumes_without_copying_twice() {
    let w = world(&[]).await;
    w.at(31);
    w.store
        .fail_after(ObjectOp::Copy, 1, PortError::Unavailable("S3 went away".into()));
    let copies = w.store.calls(ObjectOp::Copy);
    assert!(scheduled(&w.deps, "crashed").await.is_err());
    assert!(
        w.run_point().await.tiering().is_none(),
        "nothing recorded before all copies are made"
    );
    let r = scheduled(&w.deps, "resumed").await.unwrap();
    assert_eq!((r.moves[0].recovered, r.objects_moved), (1, 1));
    assert_eq!(
        r.bytes_moved + r.moves[0].recovered_bytes,
        1324 * 1024,
        "each byte counted once"
    );
    // Three copy calls: one made, one failed, one by the resumed run.
    assert_eq!(w.store.calls(ObjectOp::Copy) - copies, 3);
    assert_eq!(w.class_of("big-1.jpg").await, "GLACIER_IR");
    assert_eq!(w.class_of("big-2.jpg").await, "GLACIER_IR");
    let rp = w.run_point().await;
    let manifest = lifeboat::object_store::runs::load_manifest(w.store.as_ref(), rp.manifest().unwrap())
        .await
        .unwrap();
    for e in manifest.live().filter(|e| e.size > 1000) {
        assert_eq!(w.store.versions("vault", &e.backup_key), 1, "{}", e.key);
    }
}

#[tokio::test]
async fn locked_copies_wait_and_the_lease_keeps_runs_apart() {
    let w = world(&[("OBJECT_LOCK_MODE", "GOVERNANCE"), ("OBJECT_LOCK_DAYS", "45")]).await;
    w.at(31);
    let r = scheduled(&w.deps, "locked").await.unwrap();
    assert!(r.moves.is_empty());
    assert!(r.waiting[0].reason.contains("locked until 2026-02-15"), "{r:?}");
    assert_eq!(
        r.lifecycle_rules.len(),
        2,
        "the lifecycle rule moves locked copies in place"
    );
    w.at(46);
    let now = w.clock_now();
    assert!(
        w.catalog
            .acquire_lease("tier-backups", "someone", now + Duration::minutes(5), now)
            .await
            .unwrap()
    );
    let busy = scheduled(&w.deps, "second").await.unwrap();
    assert!(busy.busy && busy.moves.is_empty());
    w.catalog.release_lease("tier-backups", "someone").await.unwrap();
    let r = scheduled(&w.deps, "after-lock").await.unwrap();
    assert_eq!(r.objects_moved, 2);
    // The new versions keep the copies' lock.
    let rp = w.run_point().await;
    let manifest = lifeboat::object_store::runs::load_current_manifest(
        w.store.as_ref(),
        w.catalog.as_ref(),
        &rp.location,
        rp.manifest().unwrap(),
    )
    .await
    .unwrap();
    let e = manifest.live().find(|e| e.key == "big-1.jpg").unwrap();
    let head = w
        .store
        .head("vault", &e.backup_key, e.backup_version_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.lock.unwrap().retain_until, t0() + Duration::days(45));
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_error() {
    let w = world(&[]).await;
    let e = handle(&w.deps, event_json(ZERO_BUDGET)).await.unwrap_err();
    assert_eq!(e.kind, ErrorType::Invalid);
    assert!(e.message.contains("maxObjects"), "{e:?}");
    for bad in ["[1]", r#"{"dryrun": true}"#, r#"{"maxObjects": -1}"#] {
        let e = handle(&w.deps, event_json(bad)).await.unwrap_err();
        assert_eq!(e.kind, ErrorType::Invalid, "{bad}");
    }
}
