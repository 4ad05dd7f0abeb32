//! Behaviour of `verify-backups` against the in-memory fakes: intact runs are verified;
//! a byte flipped behind Lifeboat's back, a truncated or a missing object is found, the
//! recovery point marked unverified and one alert raised per run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat::object_store::settings::S3Settings;
use lifeboat::verify::Problem;
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::RecoveryPointId;
use lifeboat_domain::manifest::Manifest;
use lifeboat_ports::Catalog;
use lifeboat_testkit::objects::{InMemoryObjectStore, ObjectOp};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, RecordingNotifier, event_for, event_json, sample};
use serde_json::json;
use verify_backups::{Deps, VerifyReport, handle};

const FULL: &str = include_str!("../../../events/verify-backups/full.json");
const SAMPLED: &str = include_str!("../../../events/verify-backups/sampled.json");
const MALFORMED: &str = include_str!("../../../events/verify-backups/malformed.json");
const DUE: &str = include_str!("../../../events/verify-backups/due.json");

struct World {
    deps: Deps,
    /// backup-objects over the same buckets and catalog (the next runs).
    backups: backup_objects::Deps,
    store: Arc<InMemoryObjectStore>,
    catalog: Arc<InMemoryCatalog>,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<ManualClock>,
    rp: RecoveryPointId,
}

fn now() -> DateTime<Utc> {
    "2026-11-23T18:05:00Z".parse().unwrap()
}

async fn world(objects: usize) -> World {
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket("photos", true);
    store.create_bucket("vault", true);
    for i in 0..objects {
        let body: Vec<u8> = (0..(100 + i * 37)).map(|b| u8::try_from(b % 251).unwrap()).collect();
        store.insert("photos", &format!("p/{i:03}.bin"), &body);
    }
    let catalog = Arc::new(InMemoryCatalog::new());
    let clock = Arc::new(ManualClock::new(now()));
    let settings = S3Settings::from_lookup(|k| match k {
        "BACKUP_BUCKET_NAME" => Some("vault".into()),
        "AWS_REGION" => Some("us-west-2".into()),
        _ => None,
    })
    .unwrap();
    let notifier = Arc::new(RecordingNotifier::new());
    let backup_deps = backup_objects::Deps {
        catalog: catalog.clone(),
        notifier: notifier.clone(),
        clock: clock.clone(),
        source: store.clone(),
        backup: store.clone(),
        settings,
        changes: Arc::new(lifeboat_testkit::changes::InMemoryChangeFeed::new(
            "https://sqs.us-east-1.amazonaws.com/123456789012/photos-changes",
            now(),
        )),
    };
    // The backup run to verify, through backup-objects' handler.
    let req = json!({"bucket": "photos", "prefix": "p/", "policy": "gold", "scheduledTime": now()});
    let report = backup_objects::handle(&backup_deps, event_for(req, "backup"))
        .await
        .unwrap();
    World {
        deps: Deps {
            catalog: catalog.clone(),
            notifier: notifier.clone(),
            clock: clock.clone(),
            backup: store.clone(),
        },
        backups: backup_deps,
        store,
        catalog,
        notifier,
        clock,
        rp: report.recovery_point,
    }
}

async fn manifest(w: &World) -> Manifest {
    let mref = w
        .catalog
        .get(&w.rp)
        .await
        .unwrap()
        .unwrap()
        .manifest()
        .cloned()
        .unwrap();
    lifeboat::object_store::runs::load_manifest(w.store.as_ref(), &mref)
        .await
        .unwrap()
}

/// The full verification (`events/verify-backups/full.json`) as invocation `run_id`.
async fn full(deps: &Deps, run_id: &str) -> Result<VerifyReport, FunctionError> {
    handle(deps, event_for(sample("verify-backups", "full.json"), run_id)).await
}

#[tokio::test]
async fn an_intact_run_is_verified() {
    let w = world(6).await;
    let report = handle(&w.deps, event_json(FULL)).await.unwrap();
    assert_eq!(report.verified, vec![w.rp.clone()]);
    assert_eq!(report.objects_checked, 6);
    assert!(report.findings.is_empty());
    let rp = w.catalog.get(&w.rp).await.unwrap().unwrap();
    assert_eq!(rp.verified_at, Some(now()));
    assert!(w.notifier.alerts().is_empty());
}

#[tokio::test]
async fn a_whole_run_reads_each_object_once() {
    let w = world(12).await;
    let (gets, heads) = (w.store.calls(ObjectOp::Get), w.store.calls(ObjectOp::Head));
    let report = full(&w.deps, "calls").await.unwrap();
    assert_eq!(report.verified, vec![w.rp.clone()]);
    // One GET per object plus the manifest; no HEAD for an object S3 serves.
    assert_eq!(w.store.calls(ObjectOp::Get) - gets, 12 + 1);
    assert_eq!(w.store.calls(ObjectOp::Head) - heads, 0);
}

#[tokio::test]
async fn a_sample_finds_keys_written_over_and_checks_the_versions_the_manifest_names() {
    let w = world(6).await;
    let m = manifest(&w).await;
    for e in &m.entries {
        // Every key written over: whichever the sample picks is reported.
        w.store
            .insert("vault", &e.backup_key, b"written behind Lifeboat's back");
    }
    let (gets, heads) = (w.store.calls(ObjectOp::Get), w.store.calls(ObjectOp::Head));
    let report = handle(&w.deps, event_json(SAMPLED)).await.unwrap();
    assert_eq!(report.objects_checked, 2);
    // The manifest, then each sampled key's current version and its named one.
    assert_eq!(w.store.calls(ObjectOp::Get) - gets, 1 + 2 * 2);
    assert_eq!(w.store.calls(ObjectOp::Head) - heads, 0);
    let found: Vec<_> = report.findings.iter().map(|f| f.problem).collect();
    assert_eq!(found, [Problem::Replaced, Problem::Replaced]);
    assert_eq!(report.verified, vec![w.rp.clone()]);
}

#[tokio::test]
async fn a_sample_checks_only_that_many_objects() {
    let w = world(6).await;
    let report = handle(&w.deps, event_json(SAMPLED)).await.unwrap();
    assert_eq!(report.objects_checked, 2);
}

#[tokio::test]
async fn a_flipped_byte_is_found_in_every_trial_and_alerted_once_per_run() {
    let w = world(10).await;
    let m = manifest(&w).await;
    for trial in 0..20usize {
        let e = &m.entries[(trial * 7) % m.entries.len()];
        let original = w.store.bytes("vault", &e.backup_key).unwrap();
        // Bit rot in the very version the manifest names (what a restore reads).
        let at = (trial * 7919) % original.len();
        w.store.rot("vault", &e.backup_key, at);
        let report = full(&w.deps, &format!("trial-{trial}")).await.unwrap();
        assert_eq!(report.unverified, vec![w.rp.clone()], "trial {trial}");
        // The bytes differ from the manifest, and from the checksum S3 stored with them.
        let found: Vec<_> = report.findings.iter().map(|f| (f.key.as_str(), f.problem)).collect();
        assert_eq!(
            found,
            [
                (e.key.as_str(), Problem::Corrupted),
                (e.key.as_str(), Problem::StoreChecksum)
            ],
            "trial {trial}"
        );
        assert!(report.alerted);
        let rp = w.catalog.get(&w.rp).await.unwrap().unwrap();
        assert!(rp.verified_at.is_none());
        assert!(rp.verification_failed.unwrap().problems[0].contains(&e.key));
        // Flip it back for the next trial.
        w.store.rot("vault", &e.backup_key, at);
        assert_eq!(w.store.bytes("vault", &e.backup_key).unwrap(), original);
    }
}

#[tokio::test]
async fn a_version_written_over_a_backup_key_is_replaced_not_corrupted_and_the_run_stays_restorable() {
    let w = world(10).await;
    let m = manifest(&w).await;
    let e = &m.entries[3];
    let mut bad = w.store.bytes("vault", &e.backup_key).unwrap();
    bad[0] ^= 1;
    // Written behind Lifeboat's back: a new current version; the manifest's is untouched.
    w.store.insert("vault", &e.backup_key, &bad);
    let report = full(&w.deps, "overwritten").await.unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(report.findings[0].problem, Problem::Replaced);
    assert!(report.alerted, "someone writes into the backup bucket: alerted");
    assert_eq!(report.verified, vec![w.rp.clone()], "what a restore reads is intact");
    let rp = w.catalog.get(&w.rp).await.unwrap().unwrap();
    assert!(rp.verified_at.is_some() && rp.verification_failed.is_none());
}

#[tokio::test]
async fn the_next_run_heals_a_damaged_copy_from_the_source_and_names_what_is_lost() {
    let w = world(6).await;
    let m = manifest(&w).await;
    let (rotten, changed) = (&m.entries[1], &m.entries[4]);
    w.store.rot("vault", &rotten.backup_key, 3);
    w.store.rot("vault", &changed.backup_key, 3);
    // The source rewrites the second object meanwhile: the content the run copied is gone.
    w.store.insert("photos", &changed.key, b"new content");
    let found = full(&w.deps, "v1").await.unwrap();
    assert_eq!(found.unverified, vec![w.rp.clone()]);

    // The next run, an hour later: both are read from the source and copied again.
    let later = now() + chrono::Duration::hours(1);
    w.clock.set(later);
    let req = json!({"bucket": "photos", "prefix": "p/", "policy": "gold", "scheduledTime": later});
    let next = backup_objects::handle(&w.backups, event_for(req, "backup-2"))
        .await
        .unwrap();
    assert_eq!(
        next.healed,
        vec![rotten.key.clone()],
        "same content in the source: repaired"
    );
    assert_eq!(
        next.unrecoverable,
        vec![changed.key.clone()],
        "the source no longer has it"
    );
    assert_eq!(next.copied, 2, "{next:?}");
    let lost: Vec<_> = w
        .notifier
        .alerts()
        .into_iter()
        .filter(|a| a.dedupe_key.contains("unrecoverable"))
        .collect();
    assert_eq!(lost.len(), 1, "one alert names what cannot be repaired");
    assert!(lost[0].details["objects"].contains(&changed.key));
    // The healed run reads back intact: verified again.
    let check = json!({"mode": "full", "recoveryPoint": next.recovery_point});
    let again = handle(&w.deps, event_for(check, "v2")).await.unwrap();
    assert_eq!(again.verified, vec![next.recovery_point.clone()], "{again:?}");
}

#[tokio::test]
async fn a_run_from_the_change_queue_heals_a_damaged_copy_too() {
    let w = world(6).await;
    let m = manifest(&w).await;
    let rotten = &m.entries[2];
    w.store.rot("vault", &rotten.backup_key, 5);
    assert_eq!(full(&w.deps, "v1").await.unwrap().unverified, vec![w.rp.clone()]);

    // The next run reads only what its change queue names (nothing changed): the damaged
    // copy is read and copied again all the same.
    let later = now() + chrono::Duration::hours(1);
    w.clock.set(later);
    let req = json!({"bucket": "photos", "prefix": "p/", "policy": "gold", "scheduledTime": later,
                     "changeQueue": "https://sqs.us-east-1.amazonaws.com/123456789012/photos-changes"});
    let next = backup_objects::handle(&w.backups, event_for(req, "backup-2"))
        .await
        .unwrap();
    assert_eq!(next.listing, lifeboat_domain::manifest::Listing::Changes, "{next:?}");
    assert_eq!(next.healed, vec![rotten.key.clone()]);
    assert_eq!((next.copied, next.unchanged), (1, 5), "{next:?}");
    let check = json!({"mode": "full", "recoveryPoint": next.recovery_point});
    let again = handle(&w.deps, event_for(check, "v2")).await.unwrap();
    assert_eq!(again.verified, vec![next.recovery_point.clone()], "{again:?}");
}

#[tokio::test]
async fn a_sharded_run_heals_a_damaged_copy_too() {
    let w = world(6).await;
    let m = manifest(&w).await;
    let (rotten, changed) = (&m.entries[0], &m.entries[5]);
    w.store.rot("vault", &rotten.backup_key, 7);
    w.store.remove("vault", &changed.backup_key);
    w.store.insert("photos", &changed.key, b"rewritten since");
    assert_eq!(full(&w.deps, "v1").await.unwrap().unverified, vec![w.rp.clone()]);

    // The next run, sharded (every shard, then finish, in this process).
    let later = now() + chrono::Duration::hours(1);
    w.clock.set(later);
    let req = backup_objects::ShardedRequest {
        mode: backup_objects::Mode::Shards,
        bucket: "photos".into(),
        prefix: "p/".into(),
        policy: "gold".into(),
        scheduled_time: later,
        max_shards: Some(3),
        max_pages: None,
        shard: None,
        shards: None,
    };
    let next = backup_objects::run_sharded(&w.backups, &req, "sharded-2", 2)
        .await
        .unwrap();
    assert_eq!(next.healed, vec![rotten.key.clone()], "{next:?}");
    assert_eq!(next.unrecoverable, vec![changed.key.clone()], "{next:?}");
    assert_eq!(next.copied, 2, "{next:?}");
    assert!(
        w.notifier
            .alerts()
            .iter()
            .any(|a| a.dedupe_key.contains("unrecoverable") && a.details["objects"].contains(&changed.key))
    );
    let check = json!({"mode": "full", "recoveryPoint": next.recovery_point});
    let again = handle(&w.deps, event_for(check, "v2")).await.unwrap();
    assert_eq!(again.verified, vec![next.recovery_point.clone()], "{again:?}");
}

#[tokio::test]
async fn missing_and_truncated_objects_are_listed_in_one_alert() {
    let w = world(5).await;
    let m = manifest(&w).await;
    w.store.remove("vault", &m.entries[1].backup_key);
    let short = w.store.bytes("vault", &m.entries[3].backup_key).unwrap();
    w.store.truncate("vault", &m.entries[3].backup_key, short.len() / 2);
    let report = full(&w.deps, "r1").await.unwrap();
    let problems: Vec<_> = report.findings.iter().map(|f| (f.key.as_str(), f.problem)).collect();
    assert_eq!(
        problems,
        vec![
            (m.entries[1].key.as_str(), Problem::Missing),
            (m.entries[3].key.as_str(), Problem::Truncated),
            // Cut in place: S3's stored checksum no longer matches what it serves either.
            (m.entries[3].key.as_str(), Problem::StoreChecksum)
        ]
    );
    let alerts = w.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].details["objects"].contains(&m.entries[1].key));
    assert!(alerts[0].details["objects"].contains(&m.entries[3].key));
    // A replay of the same run id does not alert twice.
    full(&w.deps, "r1").await.unwrap();
    assert_eq!(w.notifier.alerts().len(), 1);
}

#[tokio::test]
async fn a_tampered_manifest_is_found() {
    let w = world(3).await;
    let mref = w
        .catalog
        .get(&w.rp)
        .await
        .unwrap()
        .unwrap()
        .manifest()
        .cloned()
        .unwrap();
    w.store.insert("vault", &mref.key, b"not the manifest");
    let report = full(&w.deps, "r1").await.unwrap();
    assert_eq!(report.findings[0].problem, Problem::Manifest);
    assert_eq!(report.unverified, vec![w.rp.clone()]);
}

#[tokio::test]
async fn a_manifest_rotted_at_rest_is_a_bad_manifest_not_a_failed_read() {
    let w = world(3).await;
    let rp = w.catalog.get(&w.rp).await.unwrap().unwrap();
    let mref = rp.manifest().cloned().unwrap();
    w.store.rot("vault", &mref.key, 5);
    // The store's own checksum no longer matches what it serves.
    let read = lifeboat::object_store::runs::load_manifest(w.store.as_ref(), &mref).await;
    assert!(
        matches!(
            read,
            Err(lifeboat::object_store::runs::ManifestReadError::Bad(
                lifeboat_domain::manifest::ManifestError::StoreChecksum(_)
            ))
        ),
        "{read:?}"
    );
    let report = full(&w.deps, "r1").await.unwrap();
    assert_eq!(report.findings[0].problem, Problem::Manifest);
    assert_eq!(report.unverified, vec![w.rp.clone()]);
}

#[tokio::test]
async fn mode_due_follows_each_policy_verify_rule() {
    let w = world(6).await;
    // Without a verify rule the default applies: 200 objects (here all 6) every day.
    let report = handle(&w.deps, event_json(DUE)).await.unwrap();
    assert_eq!((report.not_due, report.objects_checked), (0, 6));
    w.clock.advance(chrono::Duration::hours(1));
    let report = handle(&w.deps, event_json(DUE)).await.unwrap();
    assert_eq!((report.not_due, report.objects_checked), (1, 0));
    let w = world(6).await;
    w.catalog.put_policy_json(
        "gold",
        r#"{"name":"gold","every":"1day","rpo":"26h","retain":7,"verify":{"every":"7days","sample":3}}"#,
    );
    // Never verified: due, checked with the rule's sample size.
    let report = handle(&w.deps, event_json(DUE)).await.unwrap();
    assert_eq!((report.not_due, report.objects_checked), (0, 3));
    assert_eq!(report.verified, vec![w.rp.clone()]);
    // Verified just now: not due again for 7 days.
    let report = handle(&w.deps, event_json(DUE)).await.unwrap();
    assert_eq!((report.not_due, report.objects_checked), (1, 0));
    w.clock.advance(chrono::Duration::days(7));
    let report = handle(&w.deps, event_json(DUE)).await.unwrap();
    assert_eq!((report.not_due, report.objects_checked), (0, 3));
    let rp = w.catalog.get(&w.rp).await.unwrap().unwrap();
    assert_eq!(rp.verified_at, Some(now() + chrono::Duration::days(7)));
    // A policy without `sample` has every object checked.
    w.catalog.put_policy_json(
        "gold",
        r#"{"name":"gold","every":"1day","rpo":"26h","retain":7,"verify":{"every":"1day"}}"#,
    );
    w.clock.advance(chrono::Duration::days(1));
    let report = handle(&w.deps, event_json(DUE)).await.unwrap();
    assert_eq!(report.objects_checked, 6);
}

#[tokio::test]
async fn bad_requests_are_rejected() {
    let w = world(1).await;
    assert_eq!(
        handle(&w.deps, event_json(MALFORMED)).await.unwrap_err().kind,
        ErrorType::Invalid
    );
    for bad in [
        r#"{"mode":"sample"}"#,
        r#"{"recoveryPoint":"nope"}"#,
        r#"{"mode":"due","sample":3}"#,
        "[]",
    ] {
        assert_eq!(
            handle(&w.deps, event_json(bad)).await.unwrap_err().kind,
            ErrorType::Invalid,
            "{bad}"
        );
    }
    let missing = r#"{"recoveryPoint":"us-west-2/s3/lb-gold-x-00000000-20261123-1800"}"#;
    assert_eq!(
        handle(&w.deps, event_json(missing)).await.unwrap_err().kind,
        ErrorType::NotFound
    );
}
