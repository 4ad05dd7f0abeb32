//! `archive-bundles` reconcile mode against the in-memory fakes: after a crash between
//! Glacier's answer and the catalog write, the vault inventory lets Lifeboat adopt the
//! unrecorded archive instead of uploading again, delete duplicate archives of recorded
//! bundles, and leave alone an archive described as a bundle but holding other bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;
use std::time::Duration;

use archive_bundles::{ArchiveSettings, Deps, Report, handle};
use chrono::{DateTime, Utc};
use lifeboat_domain::manifest::{ManifestRef, sha256_hex};
use lifeboat_domain::tree_hash::tree_hash;
use lifeboat_domain::{PolicyName, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef, Slot, Status};
use lifeboat_ports::vault::ArchiveVault;
use lifeboat_ports::{Catalog, Clock, PortError};
use lifeboat_testkit::objects::InMemoryObjectStore;
use lifeboat_testkit::vault::{InMemoryArchiveVault, VaultOp};
use lifeboat_testkit::{InMemoryCatalog, ManualClock, RecordingNotifier, event_json};

const RECONCILE: &str = include_str!("../../../events/archive-bundles/reconcile.json");
const ARCHIVE: &str = include_str!("../../../events/archive-bundles/archive.json");
const BUCKET: &str = "lifeboat-backups";
const VAULT: &str = "lifeboat-archive";

struct World {
    deps: Deps,
    store: Arc<InMemoryObjectStore>,
    catalog: Arc<InMemoryCatalog>,
    vault: Arc<InMemoryArchiveVault>,
    clock: Arc<ManualClock>,
}

fn now() -> DateTime<Utc> {
    "2026-11-24T04:30:00Z".parse().unwrap()
}

fn world() -> World {
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket(BUCKET, true);
    let catalog = Arc::new(InMemoryCatalog::new());
    let clock = Arc::new(ManualClock::new(now()));
    let vault = Arc::new(InMemoryArchiveVault::with_vault(VAULT));
    let settings = ArchiveSettings::from_lookup(|k| match k {
        "ARCHIVE_VAULT_NAME" => Some(VAULT.into()),
        "BACKUP_REGION" => Some("us-west-2".into()),
        _ => None,
    })
    .unwrap();
    World {
        deps: Deps {
            catalog: catalog.clone(),
            notifier: Arc::new(RecordingNotifier::new()),
            clock: clock.clone(),
            backup: store.clone(),
            vault: vault.clone(),
            settings,
        },
        store,
        catalog,
        vault,
        clock,
    }
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| u8::try_from(i % 251).unwrap() ^ seed).collect()
}

impl World {
    async fn bundle(&self, name: &str, body: &[u8]) -> RecoveryPointId {
        let resource = ResourceRef {
            kind: ResourceKind::S3Prefix,
            id: name.to_owned(),
            arn: format!("arn:aws:s3:::{name}/"),
            region: Region::parse("us-east-1").unwrap(),
        };
        let mut rp = RecoveryPoint::new(
            &resource,
            &PolicyName::parse("gold").unwrap(),
            Slot::containing(now(), Duration::from_mins(1)),
            &Region::parse("us-west-2").unwrap(),
            name,
            Status::Available,
            now() - chrono::Duration::hours(3),
        );
        let key = format!("lifeboat/manifests/{name}.jsonl.zst");
        self.store.insert(BUCKET, &key, body);
        rp.objects_mut().unwrap().manifest = Some(ManifestRef {
            source_bucket: name.into(),
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

    async fn send(&self, json: &str) -> Report {
        handle(&self.deps, event_json(json)).await.unwrap()
    }

    /// What an archive run uploads for `id`, uploaded behind the catalog's back (the run
    /// crashed before its record).
    async fn orphan_upload(&self, id: &RecoveryPointId, body: &[u8]) -> String {
        let description = format!("lifeboat {id} sha256 {}", sha256_hex(body));
        self.vault
            .upload(VAULT, &description, body.to_vec())
            .await
            .unwrap()
            .archive_id
    }

    /// Runs reconcile until the inventory it starts is ready.
    async fn reconcile(&self) -> Report {
        let first = self.send(RECONCILE).await;
        assert!(first.in_progress, "{first:?}");
        // Asked again before it is ready: the same job, not another one.
        let again = self.send(RECONCILE).await;
        assert_eq!(again.inventory_job, first.inventory_job);
        *self.vault.now.lock().unwrap() = self.clock.now();
        self.vault.complete_jobs();
        let done = self.send(RECONCILE).await;
        assert!(!done.in_progress);
        assert_eq!(done.inventory_job, first.inventory_job);
        done
    }
}

#[tokio::test]
async fn an_archive_left_by_a_crash_is_adopted_instead_of_uploaded_again() {
    let w = world();
    let body = bytes(4000, 3);
    let id = w.bundle("lb-gold-media-20261123-1800", &body).await;
    let orphan = w.orphan_upload(&id, &body).await;
    let report = w.reconcile().await;
    assert_eq!(report.adopted.len(), 1, "{report:?}");
    assert_eq!(report.adopted[0].archive_id, orphan);
    let a = w.catalog.get(&id).await.unwrap().unwrap().archive().cloned().unwrap();
    assert_eq!(
        (a.archive_id.as_str(), a.tree_hash.clone()),
        (orphan.as_str(), tree_hash(&body).to_hex())
    );
    // The archive run now finds the bundle archived: no second upload.
    let uploads = w.vault.calls(VaultOp::Upload);
    let archive = w.send(ARCHIVE).await;
    assert!(archive.archived.is_empty(), "{archive:?}");
    assert_eq!(w.vault.calls(VaultOp::Upload), uploads);
    assert_eq!(w.vault.archives().len(), 1);
}

#[tokio::test]
async fn duplicates_of_a_recorded_bundle_are_deleted_and_strangers_left_alone() {
    let w = world();
    let body = bytes(4000, 5);
    let id = w.bundle("lb-gold-docs-20261123-1800", &body).await;
    // A crashed run uploaded it; the next run uploaded it again and recorded that one.
    let orphan = w.orphan_upload(&id, &body).await;
    let archived = w.send(ARCHIVE).await;
    let recorded = archived.archived[0].archive_id.clone();
    assert_ne!(orphan, recorded);
    // An archive with the bundle's description but other bytes.
    let stranger = w
        .vault
        .upload(
            VAULT,
            &format!("lifeboat {id} sha256 {}", sha256_hex(&body)),
            bytes(4000, 9),
        )
        .await
        .unwrap()
        .archive_id;
    let report = w.reconcile().await;
    assert_eq!(report.duplicates_deleted, vec![orphan.clone()]);
    assert_eq!(report.unmatched, vec![stranger.clone()]);
    let left: Vec<String> = w.vault.archives().into_keys().collect();
    assert!(left.contains(&recorded) && left.contains(&stranger) && !left.contains(&orphan));
    assert_eq!(
        w.catalog
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .archive()
            .cloned()
            .unwrap()
            .archive_id,
        recorded
    );
    // Replayed: nothing more to do.
    let again = w.send(RECONCILE).await;
    assert!(
        again.duplicates_deleted.is_empty() && again.adopted.is_empty(),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_stale_inventory_is_not_used_and_a_vault_error_is_reported() {
    let w = world();
    let first = w.send(RECONCILE).await;
    *w.vault.now.lock().unwrap() = w.clock.now();
    w.vault.complete_jobs();
    // A day later its output is gone: a new inventory is started.
    w.clock.advance(chrono::Duration::hours(25));
    let later = w.send(RECONCILE).await;
    assert!(later.in_progress);
    assert_ne!(later.inventory_job, first.inventory_job);
    w.vault
        .fail_next(VaultOp::ListJobs, PortError::Unavailable("glacier down".into()));
    let err = handle(&w.deps, event_json(RECONCILE)).await.unwrap_err();
    assert_eq!(err.kind, lifeboat::ErrorType::Retryable);
}
