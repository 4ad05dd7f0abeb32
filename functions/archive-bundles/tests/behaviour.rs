//! Behaviour of `archive-bundles` against the in-memory fakes: bundles archived once with
//! Lifeboat's tree hash, corrupt or missing ones never archived, retrievals started once
//! and proved by reading the output back; a mismatch, a lying claim or a failed job raises
//! one alert.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;
use std::time::Duration;

use archive_bundles::{ArchiveSettings, Deps, Report, handle, handle_with};
use chrono::{DateTime, Utc};
use lifeboat::ErrorType;
use lifeboat::metrics::{MemorySink, Metric, validate_emf};
use lifeboat_domain::archive::{RetrievalStatus, RetrievalTier};
use lifeboat_domain::manifest::{ManifestRef, sha256_hex};
use lifeboat_domain::tree_hash::{MIB, PartSize, tree_hash};
use lifeboat_domain::{
    AlertKind, PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Severity, Slot, Status,
};
use lifeboat_ports::{Catalog, Clock, PortError};
use lifeboat_testkit::objects::InMemoryObjectStore;
use lifeboat_testkit::vault::{InMemoryArchiveVault, VaultOp};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, RecordingNotifier, event_for, event_json, event_with};

const ARCHIVE: &str = include_str!("../../../events/archive-bundles/archive.json");
const ARCHIVE_ONE: &str = include_str!("../../../events/archive-bundles/archive-one.json");
const RETRIEVE: &str = include_str!("../../../events/archive-bundles/retrieve.json");
const POLL: &str = include_str!("../../../events/archive-bundles/poll.json");

const BUCKET: &str = "lifeboat-backups";
const VAULT: &str = "lifeboat-archive";
/// The recovery points the sample events name.
const MEDIA: &str = "us-west-2/s3/lb-gold-media-3f2a9c1d-20261123-1800";
const ORDERS: &str = "us-west-2/config/lb-orders-config-20261123-1800";

struct World {
    deps: Deps,
    store: Arc<InMemoryObjectStore>,
    catalog: Arc<InMemoryCatalog>,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<ManualClock>,
    vault: Arc<InMemoryArchiveVault>,
}

fn now() -> DateTime<Utc> {
    "2026-11-24T04:30:00Z".parse().unwrap()
}

fn west() -> Region {
    Region::parse("us-west-2").unwrap()
}

fn settings() -> ArchiveSettings {
    ArchiveSettings::from_lookup(|k| match k {
        "ARCHIVE_VAULT_NAME" => Some(VAULT.into()),
        "BACKUP_REGION" => Some("us-west-2".into()),
        _ => None,
    })
    .unwrap()
}

fn world_with(vault: InMemoryArchiveVault) -> World {
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket(BUCKET, true);
    let catalog = Arc::new(InMemoryCatalog::new());
    let notifier = Arc::new(RecordingNotifier::new());
    let clock = Arc::new(ManualClock::new(now()));
    let vault = Arc::new(vault);
    World {
        deps: Deps {
            catalog: catalog.clone(),
            notifier: notifier.clone(),
            clock: clock.clone(),
            backup: store.clone(),
            vault: vault.clone(),
            settings: settings(),
        },
        store,
        catalog,
        notifier,
        clock,
        vault,
    }
}

fn world() -> World {
    world_with(InMemoryArchiveVault::with_vault(VAULT))
}

/// Bytes that stand for a bundle (`n` of them).
fn bundle_bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| u8::try_from(i % 251).unwrap() ^ seed).collect()
}

impl World {
    /// A recovery point `snapshot_name` of `kind` whose bundle (`body`) is stored in the
    /// backup bucket and recorded with its SHA-256, created `age` before now.
    async fn bundle(
        &self,
        kind: ResourceKind,
        snapshot_name: &str,
        body: &[u8],
        age: chrono::Duration,
    ) -> RecoveryPointId {
        let resource = ResourceRef {
            kind,
            id: snapshot_name.to_owned(),
            arn: format!("lifeboat:{}:{snapshot_name}", kind.short()),
            region: Region::parse("us-east-1").unwrap(),
        };
        let created = now() - age;
        let mut rp = RecoveryPoint::new(
            &resource,
            &PolicyName::parse("gold").unwrap(),
            Slot::containing(created, Duration::from_mins(1)),
            &west(),
            snapshot_name,
            Status::Available,
            created,
        );
        let key = format!("lifeboat/{}/{snapshot_name}.bundle", kind.short());
        self.store.insert(BUCKET, &key, body);
        rp.objects_mut().unwrap().manifest = Some(ManifestRef {
            source_bucket: String::new(),
            prefix: String::new(),
            backup_bucket: BUCKET.into(),
            key,
            sha256: sha256_hex(body),
            objects: 1,
            bytes: body.len() as u64,
            copied: 1,
            deleted: 0,
        });
        self.catalog.insert(&rp).await.unwrap();
        rp.id
    }

    /// The two recovery points the sample events name.
    async fn samples(&self) -> (RecoveryPointId, RecoveryPointId) {
        let media = self
            .bundle(
                ResourceKind::S3Prefix,
                "lb-gold-media-3f2a9c1d-20261123-1800",
                &bundle_bytes(5000, 1),
                chrono::Duration::hours(10),
            )
            .await;
        let orders = self
            .bundle(
                ResourceKind::ConfigBundle,
                "lb-orders-config-20261123-1800",
                &bundle_bytes(700, 2),
                chrono::Duration::hours(9),
            )
            .await;
        assert_eq!((media.as_str(), orders.as_str()), (MEDIA, ORDERS));
        (media, orders)
    }

    async fn point(&self, id: &RecoveryPointId) -> RecoveryPoint {
        self.catalog.get(id).await.unwrap().unwrap()
    }

    async fn send(&self, json: &str) -> Result<Report, lifeboat::FunctionError> {
        handle(&self.deps, event_json(json)).await
    }

    /// The vault's clock follows the test's.
    fn complete_jobs(&self) {
        *self.vault.now.lock().unwrap() = self.clock.now();
        self.vault.complete_jobs();
    }
}

fn only_job(w: &World) -> String {
    let jobs = w.vault.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs.into_keys().next().unwrap()
}

#[tokio::test]
async fn every_bundle_is_archived_once_with_lifeboats_tree_hash() {
    let w = world();
    let (media, orders) = w.samples().await;
    let report = w.send(ARCHIVE).await.unwrap();
    let archived: Vec<&str> = report.archived.iter().map(|a| a.recovery_point.as_str()).collect();
    assert_eq!(archived, [MEDIA, ORDERS], "oldest first");
    for (id, body) in [(&media, bundle_bytes(5000, 1)), (&orders, bundle_bytes(700, 2))] {
        let a = w.point(id).await.archive().cloned().expect("archive recorded");
        assert_eq!(a.tree_hash, tree_hash(&body).to_hex());
        assert_eq!(
            (a.size, a.parts, a.sha256.clone()),
            (body.len() as u64, 1, sha256_hex(&body))
        );
        assert_eq!((a.vault.as_str(), a.region.clone()), (VAULT, west()));
        let stored = &w.vault.archives()[&a.archive_id];
        assert_eq!(stored.bytes, body);
        assert!(stored.description.contains(id.as_str()), "{}", stored.description);
    }

    // Replayed: nothing is uploaded twice; named, it is reported as already archived.
    let again = w.send(ARCHIVE).await.unwrap();
    assert!(
        again.archived.is_empty() && again.already_archived.is_empty(),
        "{again:?}"
    );
    let one = w.send(ARCHIVE_ONE).await.unwrap();
    assert_eq!(one.already_archived, vec![media]);
    assert_eq!(w.vault.calls(VaultOp::Upload), 2);
    assert_eq!(w.vault.archives().len(), 2);
    assert!(w.notifier.alerts().is_empty());
    // Each run leaves a run record.
    assert!(w.catalog.runs().iter().all(|r| r.function == "archive-bundles"));
    assert_eq!(w.catalog.runs().len(), 3);
}

#[tokio::test]
async fn a_corrupt_bundle_is_never_archived_and_alerts_once() {
    let w = world();
    let (media, orders) = w.samples().await;
    // Bytes changed behind Lifeboat's back: a new version of the stored bundle.
    let key = w.point(&media).await.manifest().cloned().unwrap().key;
    let mut rotten = bundle_bytes(5000, 1);
    rotten[42] ^= 0x10;
    w.store.insert(BUCKET, &key, &rotten);

    let report = w.send(ARCHIVE).await.unwrap();
    assert_eq!(report.archived.len(), 1);
    assert_eq!(report.archived[0].recovery_point, orders);
    assert_eq!(report.refused.len(), 1);
    assert!(
        report.refused[0].reason.contains("does not match its recorded SHA-256"),
        "{:?}",
        report.refused
    );
    assert_eq!(report.alerts, 1);
    assert!(
        w.vault.archives().values().all(|a| a.bytes != rotten),
        "corrupt bytes archived"
    );
    let rp = w.point(&media).await;
    assert!(rp.archive().is_none() && rp.verified_at.is_none());
    assert!(rp.verification_failed.unwrap().problems[0].contains(&key));
    let alerts = w.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].kind, alerts[0].severity),
        (AlertKind::VerificationFailed, Severity::Critical)
    );
    assert_eq!(alerts[0].recovery_point.as_ref(), Some(&media));

    // The next run does not try it again; asked by name, it is refused as a conflict.
    let again = w.send(ARCHIVE).await.unwrap();
    assert!(again.refused.is_empty() && again.archived.is_empty(), "{again:?}");
    let err = w.send(ARCHIVE_ONE).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Conflict, "{err}");
    assert!(err.message.contains("not archived"), "{err}");
    assert_eq!(w.notifier.alerts().len(), 1, "the same finding is alerted once");
    assert_eq!(w.vault.calls(VaultOp::Upload), 1);
}

#[tokio::test]
async fn a_missing_bundle_is_refused_and_a_transient_failure_is_retried() {
    let w = world();
    let (media, _) = w.samples().await;
    w.store
        .remove(BUCKET, &w.point(&media).await.manifest().cloned().unwrap().key);
    w.vault
        .fail_next(VaultOp::Upload, PortError::Throttled("slow down".into()));
    let err = w.send(ARCHIVE).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable, "{err}");
    // The refusal was recorded before the throttled upload of the other bundle.
    assert!(w.point(&media).await.verification_failed.is_some());
    let report = w.send(ARCHIVE).await.unwrap();
    assert_eq!((report.archived.len(), report.refused.len()), (1, 0), "{report:?}");
    assert_eq!(w.notifier.alerts().len(), 1);
    assert!(w.notifier.alerts()[0].summary.contains("missing"));
}

#[tokio::test]
async fn a_run_takes_at_most_its_limit_and_skips_bundles_another_run_is_archiving() {
    let w = world();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            w.bundle(
                ResourceKind::S3Prefix,
                &format!("lb-gold-photos-0000000{i}-20261123-1800"),
                &bundle_bytes(100 + i, 3),
                chrono::Duration::hours(10 - i64::try_from(i).unwrap()),
            )
            .await,
        );
    }
    // Another invocation holds the oldest one's lease.
    let n = w.clock.now();
    assert!(
        w.catalog
            .acquire_lease(
                &format!("archive#{}", ids[0]),
                "other-run",
                n + chrono::Duration::minutes(15),
                n
            )
            .await
            .unwrap()
    );
    let payload = serde_json::json!({"mode": "archive", "limit": 2});
    let report = handle(&w.deps, event_for(payload.clone(), "r1")).await.unwrap();
    assert_eq!(report.busy, vec![ids[0].clone()]);
    assert_eq!(report.archived.len(), 1);
    assert_eq!(report.archived[0].recovery_point, ids[1]);
    assert_eq!(report.remaining, 2);
    // A run past its deadline takes nothing new.
    let late = handle(&w.deps, event_with(payload, "r2", Some(w.clock.now())))
        .await
        .unwrap();
    assert!(late.archived.is_empty());
    assert_eq!(late.remaining, 3);
}

#[tokio::test]
async fn large_bundles_are_uploaded_in_parts() {
    let w = world_with(InMemoryArchiveVault::with_vault(VAULT).with_multipart(MIB, PartSize::new(MIB).unwrap()));
    let body = bundle_bytes(usize::try_from(3 * MIB + 17).unwrap(), 4);
    let id = w
        .bundle(
            ResourceKind::S3Prefix,
            "lb-gold-big-00000000-20261123-1800",
            &body,
            chrono::Duration::hours(1),
        )
        .await;
    let report = w.send(ARCHIVE).await.unwrap();
    assert_eq!(report.archived[0].parts, 4);
    let a = w.point(&id).await.archive().cloned().unwrap();
    assert_eq!((a.parts, a.tree_hash), (4, tree_hash(&body).to_hex()));
}

#[tokio::test]
async fn a_retrieval_is_started_once_and_its_output_verified() {
    let w = world();
    let (_, orders) = w.samples().await;
    w.send(ARCHIVE).await.unwrap();

    let started = w.send(RETRIEVE).await.unwrap();
    let view = started.retrieval.clone().unwrap();
    assert_eq!(
        (view.tier, view.status, started.replay),
        (RetrievalTier::Expedited, RetrievalStatus::InProgress, false)
    );
    let job = only_job(&w);
    assert_eq!(view.job_id, job);
    assert_eq!(w.vault.jobs()[&job].tier, RetrievalTier::Expedited);
    // A replay reports the running job and starts nothing.
    let replay = w.send(RETRIEVE).await.unwrap();
    assert!(replay.replay);
    assert_eq!(replay.retrieval.unwrap().job_id, job);
    assert_eq!(w.vault.calls(VaultOp::StartRetrieval), 1);

    let pending = w.send(POLL).await.unwrap();
    assert_eq!((pending.pending, pending.completed.len()), (1, 0));
    w.clock.advance(chrono::Duration::minutes(5));
    w.complete_jobs();
    let polled = w.send(POLL).await.unwrap();
    assert_eq!(polled.completed.len(), 1);
    assert_eq!(polled.completed[0].status, RetrievalStatus::Verified);
    let a = w.point(&orders).await.archive().cloned().unwrap();
    let r = a.retrieval.clone().unwrap();
    assert_eq!(r.status, RetrievalStatus::Verified);
    assert_eq!(r.retrieved_tree_hash.as_deref(), Some(a.tree_hash.as_str()));
    assert_eq!(r.claimed_tree_hash.as_deref(), Some(a.tree_hash.as_str()));
    assert_eq!(r.retrieved_bytes, Some(700));
    assert_eq!(r.completed_at, Some(w.clock.now()));
    assert!(w.notifier.alerts().is_empty());
    // Polled again: nothing is running, nothing is read twice.
    let idle = w.send(POLL).await.unwrap();
    assert!(idle.completed.is_empty() && idle.pending == 0);
    assert_eq!(w.vault.calls(VaultOp::JobOutput), 1);

    // Within a day of completion, a request is answered with that retrieval; after, a new
    // one starts.
    w.clock.advance(chrono::Duration::hours(23));
    assert!(w.send(RETRIEVE).await.unwrap().replay);
    w.clock.advance(chrono::Duration::hours(2));
    let fresh = w.send(RETRIEVE).await.unwrap();
    assert!(!fresh.replay);
    assert_ne!(fresh.retrieval.unwrap().job_id, job);
    assert_eq!(w.vault.calls(VaultOp::StartRetrieval), 2);
}

#[tokio::test]
async fn rotten_archives_and_lying_claims_are_mismatches_alerted_once() {
    let w = world();
    let (media, orders) = w.samples().await;
    w.send(ARCHIVE).await.unwrap();
    for id in [&media, &orders] {
        let req = serde_json::json!({"mode": "retrieve", "recoveryPoint": id.as_str()});
        handle(&w.deps, event_for(req, "retrieve")).await.unwrap();
    }
    // The media archive rots in the vault; the orders job claims a hash its bytes lack.
    let media_archive = w.point(&media).await.archive().cloned().unwrap();
    w.vault.corrupt(&media_archive.archive_id);
    let orders_job = w
        .point(&orders)
        .await
        .archive()
        .cloned()
        .unwrap()
        .retrieval
        .unwrap()
        .job_id;
    w.complete_jobs();
    w.vault.set_claim(&orders_job, &"0".repeat(64));

    let report = w.send(POLL).await.unwrap();
    assert_eq!(report.completed.len(), 2);
    assert!(
        report.completed.iter().all(|c| c.status == RetrievalStatus::Mismatch),
        "{report:?}"
    );
    let media_r = w.point(&media).await.archive().cloned().unwrap().retrieval.unwrap();
    assert!(
        media_r
            .problems
            .iter()
            .any(|p| p.contains("tree hash of the bytes read back")),
        "{media_r:?}"
    );
    assert!(media_r.problems.iter().any(|p| p.contains("SHA-256")), "{media_r:?}");
    let orders_r = w.point(&orders).await.archive().cloned().unwrap().retrieval.unwrap();
    assert_eq!(orders_r.problems.len(), 1, "{orders_r:?}");
    assert!(orders_r.problems[0].contains("Glacier claims tree hash"));

    let alerts = w.notifier.alerts();
    assert_eq!(alerts.len(), 2);
    assert!(
        alerts
            .iter()
            .all(|a| a.kind == AlertKind::VerificationFailed && a.severity == Severity::Critical)
    );
    assert_eq!(report.alerts, 2);
    w.send(POLL).await.unwrap();
    assert_eq!(w.notifier.alerts().len(), 2);
}

#[tokio::test]
async fn failed_and_forgotten_jobs_are_recorded_as_failed() {
    let w = world();
    let (media, orders) = w.samples().await;
    w.send(ARCHIVE).await.unwrap();
    for id in [&media, &orders] {
        let req = serde_json::json!({"mode": "retrieve", "recoveryPoint": id.as_str(), "tier": "Bulk"});
        handle(&w.deps, event_for(req, "retrieve")).await.unwrap();
    }
    let job_of = |rp: RecoveryPoint| rp.archive().cloned().unwrap().retrieval.unwrap().job_id;
    w.vault.fail_job(&job_of(w.point(&media).await), "internal error");
    w.vault.forget_job(&job_of(w.point(&orders).await));
    let report = w.send(POLL).await.unwrap();
    assert!(
        report.completed.iter().all(|c| c.status == RetrievalStatus::Failed),
        "{report:?}"
    );
    let media_r = w.point(&media).await.archive().cloned().unwrap().retrieval.unwrap();
    assert!(media_r.problems[0].contains("internal error"));
    let orders_r = w.point(&orders).await.archive().cloned().unwrap().retrieval.unwrap();
    assert!(orders_r.problems[0].contains("no longer knows"));
    assert_eq!(w.notifier.alerts().len(), 2);
    assert!(w.notifier.alerts().iter().all(|a| a.severity == Severity::High));
}

#[tokio::test]
async fn an_alert_that_cannot_be_sent_leaves_the_retrieval_to_the_next_poll() {
    let w = world();
    let (_, orders) = w.samples().await;
    w.send(ARCHIVE).await.unwrap();
    w.send(RETRIEVE).await.unwrap();
    let a = w.point(&orders).await.archive().cloned().unwrap();
    w.vault.corrupt(&a.archive_id);
    w.complete_jobs();
    w.notifier.fail_next(PortError::Unavailable("sns down".into()));
    let err = w.send(POLL).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable, "{err}");
    let r = w.point(&orders).await.archive().cloned().unwrap().retrieval.unwrap();
    assert_eq!(
        r.status,
        RetrievalStatus::InProgress,
        "not recorded before the alert is out"
    );
    let report = w.send(POLL).await.unwrap();
    assert_eq!(report.completed[0].status, RetrievalStatus::Mismatch);
    assert_eq!(w.notifier.alerts().len(), 1);
}

#[tokio::test]
async fn requests_about_the_wrong_things_are_refused_clearly() {
    let w = world();
    let (media, _) = w.samples().await;
    let err = w.send(RETRIEVE).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::NotFound, "{err}");
    assert!(err.message.contains("has no archive"), "{err}");
    let err = w
        .send(r#"{"mode": "retrieve", "recoveryPoint": "us-west-2/s3/lb-gold-nothing-20261123-1800"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::NotFound, "{err}");
    // A database snapshot has no bundle.
    let db = ResourceRef {
        kind: ResourceKind::RdsInstance,
        id: "db1".into(),
        arn: "arn:aws:rds:us-west-2:123456789012:db:db1".into(),
        region: west(),
    };
    let rp = RecoveryPoint::new(
        &db,
        &PolicyName::parse("gold").unwrap(),
        Slot::containing(now(), Duration::from_hours(1)),
        &west(),
        "lb-gold-db1-20261124-0400",
        Status::Available,
        now(),
    );
    w.catalog.insert(&rp).await.unwrap();
    let err = w
        .send(r#"{"mode": "archive", "recoveryPoint": "us-west-2/db/lb-gold-db1-20261124-0400"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid, "{err}");
    assert!(err.message.contains("no bundle to archive"), "{err}");
    // An archive in a vault this function does not own.
    w.send(ARCHIVE_ONE).await.unwrap();
    let mut moved = w.point(&media).await;
    let expected = moved.version;
    moved.objects_mut().unwrap().archive.as_mut().unwrap().vault = "elsewhere".into();
    moved.version += 1;
    w.catalog.update(&moved, expected).await.unwrap();
    let req = serde_json::json!({"mode": "retrieve", "recoveryPoint": MEDIA});
    let err = handle(&w.deps, event_for(req, "r")).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Misconfigured, "{err}");
}

#[tokio::test]
async fn each_mode_emits_its_metrics() {
    let w = world();
    w.samples().await;
    let sink = MemorySink::new();
    handle_with(&w.deps, event_json(ARCHIVE), &sink).await.unwrap();
    handle_with(&w.deps, event_json(RETRIEVE), &sink).await.unwrap();
    w.complete_jobs();
    handle_with(&w.deps, event_json(POLL), &sink).await.unwrap();
    assert!(
        sink.lines().iter().all(|l| validate_emf(l).is_empty()),
        "{:?}",
        sink.lines()
    );
    assert_eq!(sink.sum(Metric::ArchivesUploaded, Some("us-west-2")), Some(2));
    assert_eq!(sink.total(Metric::BytesArchived), Some(5700));
    assert_eq!(sink.total(Metric::RetrievalsStarted), Some(1));
    assert_eq!(sink.total(Metric::VerificationsPassed), Some(1));
    assert_eq!(sink.total(Metric::VerificationMismatches), Some(0));
    assert_eq!(sink.total(Metric::ArchiveFailures), Some(0));
    // A malformed event emits nothing and is refused.
    let quiet = MemorySink::new();
    let err = handle_with(&w.deps, event_json(r#"{"mode": "poll", "x": 1}"#), &quiet)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(quiet.lines().is_empty());
}
