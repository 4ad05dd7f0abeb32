//! Glacier archive on the local stack (moto's Glacier vaults): S3 run manifests made by
//! `backup-objects` archived by `archive-bundles` with the tree hash Lifeboat computed,
//! retrieved (moto completes an Expedited job after about 2 s) and read back against it.
//!
//! What moto cannot show is tested elsewhere: it never checks a tree hash on upload (it
//! answers with the plain SHA-256, equal to the tree hash only up to 1 MiB, which is why
//! the bundles here are small), has no multipart upload (404), and claims no tree hash
//! for a job (`SHA256TreeHash` is null); see shared/aws/tests/glacier.rs (aws-smithy-mocks)
//! and functions/archive-bundles/tests/behaviour.rs (fakes: rot, lying claims, failed jobs).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;
use std::time::Duration;

use archive_bundles::{ArchiveSettings, Deps, Report};
use backup_objects::BackupRequest;
use chrono::{DateTime, Utc};
use lifeboat_aws::glacier::GlacierArchiveVault;
use lifeboat_domain::RecoveryPointId;
use lifeboat_domain::archive::RetrievalStatus;
use lifeboat_domain::tree_hash::tree_hash;
use lifeboat_ports::vault::ArchiveTuning;
use lifeboat_ports::{Catalog, SystemClock};
use lifeboat_tests::s3::{backup_bucket, backup_deps, get, put, settings, source_bucket, store};
use lifeboat_tests::{DR, PRIMARY, TestEnv};

fn at(hour: u32) -> DateTime<Utc> {
    format!("2026-11-23T{hour:02}:00:00Z").parse().unwrap()
}

async fn backup_run(env: &TestEnv, src: &str, bak: &str, hour: u32) -> RecoveryPointId {
    let req = BackupRequest {
        bucket: src.to_owned(),
        prefix: "docs/".to_owned(),
        policy: "gold".to_owned(),
        scheduled_time: at(hour),
        request_id: None,
        max_pages: None,
        change_queue: None,
        full_listing: false,
    };
    backup_objects::handle(
        &backup_deps(env, settings(bak, &[])),
        lifeboat_tests::request_event(&req, &format!("run-{hour}")),
    )
    .await
    .unwrap()
    .recovery_point
}

async fn send(deps: &Deps, event: serde_json::Value) -> Report {
    archive_bundles::handle(deps, lifeboat_testkit::event(event))
        .await
        .unwrap()
}

/// Three S3 runs: two archived (their manifests' bytes, with Lifeboat's tree hash, which
/// moto's answer agrees with), one whose manifest was replaced behind Lifeboat's back and
/// is never archived (one alert). A replay uploads nothing. Both archives retrieved
/// (Expedited), a replayed request starts no second job; polled until done: the first
/// reads back verified; the second's record was made to disagree with the vault, and the
/// read-back finds the mismatch and alerts once, through SNS.
#[tokio::test]
async fn manifests_are_archived_retrieved_and_read_back_against_their_tree_hash() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak, vault) = (env.name("src"), env.name("bak"), env.name("vault"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    for i in 0..4 {
        put(
            &env,
            PRIMARY,
            &src,
            &format!("docs/{i}.txt"),
            format!("document {i}").as_bytes(),
        )
        .await
        .unwrap();
    }
    let (good, rotten, tampered) = (
        backup_run(&env, &src, &bak, 10).await,
        backup_run(&env, &src, &bak, 11).await,
        backup_run(&env, &src, &bak, 12).await,
    );
    let catalog = env.catalog();
    let manifest_key = |id: RecoveryPointId| {
        let catalog = catalog.clone();
        async move {
            catalog
                .get(&id)
                .await
                .unwrap()
                .unwrap()
                .manifest()
                .map(|m| m.key.clone())
                .unwrap()
        }
    };
    put(&env, DR, &bak, &manifest_key(rotten.clone()).await, b"not the manifest")
        .await
        .unwrap();

    let glacier = aws_sdk_glacier::Client::new(&env.dr);
    glacier.create_vault().vault_name(&vault).send().await.unwrap();
    let ports = env.ports();
    let v = vault.clone();
    let deps = Deps {
        catalog: ports.catalog.clone(),
        notifier: ports.notifier.clone(),
        clock: Arc::new(SystemClock),
        backup: store(&env, DR, lifeboat_ports::objects::CopyTuning::default()),
        vault: Arc::new(GlacierArchiveVault::new(glacier.clone(), ArchiveTuning::default())),
        settings: ArchiveSettings::from_lookup(move |k| match k {
            "ARCHIVE_VAULT_NAME" => Some(v.clone()),
            "BACKUP_REGION" => Some(DR.into()),
            _ => None,
        })
        .unwrap(),
    };

    let report = send(&deps, serde_json::json!({"mode": "archive"})).await;
    let archived: Vec<&RecoveryPointId> = report.archived.iter().map(|a| &a.recovery_point).collect();
    assert_eq!(archived, [&good, &tampered], "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].recovery_point, rotten);
    for id in [&good, &tampered] {
        let bytes = get(&env, DR, &bak, &manifest_key(id.clone()).await, None)
            .await
            .unwrap();
        let a = catalog.get(id).await.unwrap().unwrap().archive().cloned().unwrap();
        assert_eq!(a.tree_hash, tree_hash(&bytes).to_hex());
        assert_eq!(
            (a.size, a.parts, a.vault.as_str()),
            (bytes.len() as u64, 1, vault.as_str())
        );
    }
    let described = glacier.describe_vault().vault_name(&vault).send().await.unwrap();
    assert_eq!(described.number_of_archives(), 2);

    // Replayed: nothing uploaded, nothing alerted again.
    let again = send(&deps, serde_json::json!({"mode": "archive"})).await;
    assert!(again.archived.is_empty() && again.refused.is_empty(), "{again:?}");
    let described = glacier.describe_vault().vault_name(&vault).send().await.unwrap();
    assert_eq!(described.number_of_archives(), 2);

    // Retrievals, once each.
    for id in [&good, &tampered] {
        let retrieve = serde_json::json!({"mode": "retrieve", "recoveryPoint": id.as_str(), "tier": "Expedited"});
        let started = send(&deps, retrieve.clone()).await;
        assert!(!started.replay);
        let replay = send(&deps, retrieve).await;
        assert!(replay.replay);
        assert_eq!(replay.retrieval.unwrap().job_id, started.retrieval.unwrap().job_id);
    }
    // The second archive's record no longer matches what the vault holds.
    let mut point = catalog.get(&tampered).await.unwrap().unwrap();
    let expected = point.version;
    point.objects_mut().unwrap().archive.as_mut().unwrap().tree_hash = "0".repeat(64);
    point.version += 1;
    catalog.update(&point, expected).await.unwrap();

    let mut completed = Vec::new();
    for _ in 0..40 {
        let polled = send(&deps, serde_json::json!({"mode": "poll"})).await;
        completed.extend(polled.completed);
        if completed.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(completed.len(), 2, "{completed:?}");
    let good_r = catalog.get(&good).await.unwrap().unwrap().archive().cloned().unwrap();
    let r = good_r.retrieval.as_ref().unwrap();
    assert_eq!(r.status, RetrievalStatus::Verified, "{r:?}");
    assert_eq!(r.retrieved_tree_hash.as_deref(), Some(good_r.tree_hash.as_str()));
    let bad_r = catalog
        .get(&tampered)
        .await
        .unwrap()
        .unwrap()
        .archive()
        .cloned()
        .unwrap();
    let r = bad_r.retrieval.unwrap();
    assert_eq!(r.status, RetrievalStatus::Mismatch, "{r:?}");
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("tree hash of the bytes read back")),
        "{r:?}"
    );

    // One alert for the refused manifest, one for the mismatch; a later poll adds none.
    send(&deps, serde_json::json!({"mode": "poll"})).await;
    let alerts = env.alerts().await.unwrap();
    let mut about: Vec<(String, Option<RecoveryPointId>)> = alerts
        .iter()
        .map(|a| (a.event_type.clone().unwrap_or_default(), a.alert.recovery_point.clone()))
        .collect();
    about.sort();
    let mut expected = vec![
        ("verification-failed".to_owned(), Some(rotten)),
        ("verification-failed".to_owned(), Some(tampered)),
    ];
    expected.sort();
    assert_eq!(about, expected);
}

/// A run that crashed between Glacier's answer and its catalog write left an archive
/// nobody recorded (uploaded here the way archive-bundles uploads it). Reconcile takes a
/// vault inventory (moto completes a Standard job after about 5 s), finds the archive by
/// its description and tree hash, and records it: the next archive run uploads nothing.
/// (moto names an archive by the MD5 of its bytes, so a second upload of the same bundle
/// cannot make the duplicate reconcile deletes: that case is tested on the fakes, in
/// functions/archive-bundles/tests/reconcile.rs.)
#[tokio::test]
async fn an_archive_left_by_a_crashed_run_is_adopted_from_the_vault_inventory() {
    use lifeboat_ports::vault::ArchiveVault;
    let env = TestEnv::start().await.unwrap();
    let (src, bak, vault) = (env.name("src"), env.name("bak"), env.name("vault"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    put(&env, PRIMARY, &src, "docs/a.txt", b"a document").await.unwrap();
    let id = backup_run(&env, &src, &bak, 14).await;
    let catalog = env.catalog();
    let mref = catalog.get(&id).await.unwrap().unwrap().manifest().cloned().unwrap();
    let bytes = get(&env, DR, &bak, &mref.key, None).await.unwrap();

    let glacier = aws_sdk_glacier::Client::new(&env.dr);
    glacier.create_vault().vault_name(&vault).send().await.unwrap();
    let adapter = Arc::new(GlacierArchiveVault::new(glacier.clone(), ArchiveTuning::default()));
    let orphan = adapter
        .upload(&vault, &format!("lifeboat {id} sha256 {}", mref.sha256), bytes.clone())
        .await
        .unwrap()
        .archive_id;
    let ports = env.ports();
    let v = vault.clone();
    let deps = Deps {
        catalog: ports.catalog.clone(),
        notifier: ports.notifier.clone(),
        clock: Arc::new(SystemClock),
        backup: store(&env, DR, lifeboat_ports::objects::CopyTuning::default()),
        vault: adapter,
        settings: ArchiveSettings::from_lookup(move |k| match k {
            "ARCHIVE_VAULT_NAME" => Some(v.clone()),
            "BACKUP_REGION" => Some(DR.into()),
            _ => None,
        })
        .unwrap(),
    };
    let started = send(&deps, serde_json::json!({"mode": "reconcile"})).await;
    assert!(started.in_progress, "{started:?}");
    let mut done = started.clone();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        done = send(&deps, serde_json::json!({"mode": "reconcile"})).await;
        if !done.in_progress {
            break;
        }
    }
    assert_eq!(done.inventory_job, started.inventory_job, "the same inventory job");
    assert_eq!(done.adopted.len(), 1, "{done:?}");
    assert_eq!(done.adopted[0].archive_id, orphan);
    let a = catalog.get(&id).await.unwrap().unwrap().archive().cloned().unwrap();
    assert_eq!(
        (a.archive_id.as_str(), a.tree_hash),
        (orphan.as_str(), tree_hash(&bytes).to_hex())
    );
    let archive = send(&deps, serde_json::json!({"mode": "archive"})).await;
    assert!(archive.archived.is_empty(), "{archive:?}");
    let described = glacier.describe_vault().vault_name(&vault).send().await.unwrap();
    assert_eq!(described.number_of_archives(), 1);
}
