//! Tiering on the local stack (moto 5.2.5 S3 with versioning and Object Lock): a policy's
//! tiers become the backup bucket's lifecycle rules (other rules kept), copies move by
//! run age through CopyObject (GLACIER_IR, then GLACIER once GLACIER_IR's 90 days are
//! served), small objects stay, verification and restores follow the moved copies, and a
//! restore from GLACIER is started, then copied back with the backed-up bytes.
//!
//! The clock is injected: a month passes between two statements. moto never runs
//! lifecycle rules and drops their `ObjectSizeGreaterThan` filter when it stores them, so
//! the test checks the rules' prefixes and transitions, and the explicit moves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use backup_objects::BackupRequest;
use chrono::{DateTime, Duration, Utc};
use lifeboat::object_store::runs::load_current_manifest;
use lifeboat_domain::cost::PriceBook;
use lifeboat_domain::tiering::S3Class;
use lifeboat_ports::Catalog;
use lifeboat_ports::objects::CopyTuning;
use lifeboat_ports::objects::{ObjectStore, RestoreTier};
use lifeboat_testkit::ManualClock;
use lifeboat_tests::s3::{backup_bucket, client, get, put, restore_deps, settings, source_bucket, store};
use lifeboat_tests::{DR, PRIMARY, TestEnv};
use restore_objects::{RestoreRequest, RestoreStatus};
use tier_backups::TierRequest;
use verify_backups::VerifyRequest;

const KIB: usize = 1024;

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:05:00Z".parse().unwrap()
}

#[tokio::test]
async fn copies_move_down_the_tiers_and_come_back_from_glacier() {
    let env = TestEnv::start().await.unwrap();
    let (src, bak) = (env.name("tsrc"), env.name("tbak"));
    source_bucket(&env, &src).await.unwrap();
    backup_bucket(&env, &bak).await.unwrap();
    let policy = env
        .put_policy(
            r#"{"name": "{prefix}-tiers", "every": "1d", "timezone": "UTC", "rpo": "2d", "retain": 30,
                "tiers": [{"after": "30d", "class": "GLACIER_IR"}, {"after": "120d", "class": "GLACIER"}]}"#,
        )
        .await
        .unwrap();
    // Someone else's rule on the backup bucket survives Lifeboat's.
    let s3 = client(&env, DR);
    s3.put_bucket_lifecycle_configuration()
        .bucket(&bak)
        .lifecycle_configuration(
            aws_sdk_s3::types::BucketLifecycleConfiguration::builder()
                .rules(
                    aws_sdk_s3::types::LifecycleRule::builder()
                        .id("audit-logs")
                        .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
                        .filter(
                            aws_sdk_s3::types::LifecycleRuleFilter::builder()
                                .prefix("audit/")
                                .build(),
                        )
                        .expiration(aws_sdk_s3::types::LifecycleExpiration::builder().days(400).build())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // 1 MiB: large enough that GLACIER pays off after GLACIER_IR (below about 750 KB a
    // copy stays in GLACIER_IR, cheaper there with Glacier's per-object overheads).
    let big: Vec<u8> = (0..1024 * KIB).map(|i| u8::try_from(i % 251).unwrap()).collect();
    put(&env, PRIMARY, &src, "media/big.bin", &big).await.unwrap();
    put(&env, PRIMARY, &src, "media/note.txt", b"small stays")
        .await
        .unwrap();
    let s = settings(&bak, &[]);
    let clock = Arc::new(ManualClock::new(t0()));
    let backup = backup_objects::Deps {
        catalog: Arc::new(env.catalog()),
        notifier: env.ports().notifier,
        clock: clock.clone(),
        source: store(&env, PRIMARY, s.tuning),
        backup: store(&env, DR, s.tuning),
        settings: s.clone(),
        changes: Arc::new(lifeboat_aws::sqs::SqsChangeFeed::new(aws_sdk_sqs::Client::new(
            &env.primary,
        ))),
    };
    let run = backup_objects::handle(
        &backup,
        lifeboat_tests::request_event(
            &BackupRequest {
                bucket: src.clone(),
                prefix: "media/".into(),
                policy: policy.name.to_string(),
                scheduled_time: "2026-01-01T00:00:00Z".parse().unwrap(),
                request_id: None,
                max_pages: None,
                change_queue: None,
                full_listing: false,
            },
            "tier-run",
        ),
    )
    .await
    .unwrap();
    let tier = tier_backups::Deps {
        catalog: Arc::new(env.catalog()),
        clock: clock.clone(),
        backup: store(&env, DR, CopyTuning::default()),
        settings: s.clone(),
        prices: PriceBook::aws_list_prices(),
    };
    let only_ours = |r: &tier_backups::TierReport| {
        r.moves
            .iter()
            .filter(|m| m.recovery_point == run.recovery_point.to_string())
            .cloned()
            .collect::<Vec<_>>()
    };

    // Day 31: the dry run plans GLACIER_IR for the big copy only, with its cost effect.
    clock.set(t0() + Duration::days(31));
    let plan = tier_backups::handle(
        &tier,
        lifeboat_tests::request_event(
            &TierRequest {
                dry_run: true,
                max_objects: None,
            },
            "plan",
        ),
    )
    .await
    .unwrap();
    let planned = only_ours(&plan);
    assert_eq!(planned.len(), 1, "{plan:?}");
    assert_eq!(
        (planned[0].to, planned[0].objects, planned[0].small_kept),
        (S3Class::GlacierIr, 1, 1)
    );
    assert!(planned[0].cost.after_micro_usd < planned[0].cost.before_micro_usd);
    let moved = tier_backups::handle(&tier, lifeboat_tests::request_event(&TierRequest::default(), "move-1"))
        .await
        .unwrap();
    assert_eq!(only_ours(&moved)[0].outcome, "moved");

    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bak)
        .send()
        .await
        .unwrap()
        .rules
        .unwrap_or_default();
    assert!(rules.iter().any(|r| r.id() == Some("audit-logs")), "{rules:?}");
    let ours: Vec<_> = rules
        .iter()
        .filter(|r| r.id().is_some_and(|id| id.contains(&src)))
        .collect();
    assert_eq!(ours.len(), 2, "data/ and hashed/: {rules:?}");
    let t: Vec<(Option<i32>, String)> = ours[0]
        .transitions()
        .iter()
        .map(|t| {
            (
                t.days(),
                t.storage_class().map(|c| c.as_str().to_owned()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(t, vec![(Some(30), "GLACIER_IR".into()), (Some(120), "GLACIER".into())]);

    let backup_store = store(&env, DR, CopyTuning::default());
    let catalog = env.catalog();
    let class_of = |key: &'static str| {
        let (backup_store, catalog, rp_id) = (backup_store.clone(), catalog.clone(), run.recovery_point.clone());
        async move {
            let rp = catalog.get(&rp_id).await.unwrap().unwrap();
            let m = load_current_manifest(backup_store.as_ref(), &catalog, &rp.location, rp.manifest().unwrap())
                .await
                .unwrap();
            let e = m.live().find(|e| e.key == key).unwrap().clone();
            let head = backup_store
                .head(
                    &rp.manifest().unwrap().backup_bucket,
                    &e.backup_key,
                    e.backup_version_id.as_deref(),
                )
                .await
                .unwrap()
                .unwrap();
            (head.storage_class, e)
        }
    };
    let (class, e) = class_of("media/big.bin").await;
    assert_eq!(class, "GLACIER_IR");
    assert_eq!(
        get(&env, DR, &bak, &e.backup_key, e.backup_version_id.as_deref())
            .await
            .unwrap(),
        big
    );
    let (class, _) = class_of("media/note.txt").await;
    assert!(class.is_empty() || class == "STANDARD", "{class}");

    // Verification follows the moved copy and checks its bytes.
    let verify = verify_backups::handle(
        &lifeboat_tests::s3::verify_deps(&env),
        lifeboat_tests::request_event(&VerifyRequest::full(Some(&run.recovery_point)), "verify-tiered"),
    )
    .await
    .unwrap();
    assert!(verify.findings.is_empty(), "{verify:?}");
    assert_eq!((verify.objects_checked, verify.verified.len()), (2, 1), "{verify:?}");

    // Day 120: GLACIER is due by age but GLACIER_IR's 90 days run until day 121.
    clock.set(t0() + Duration::days(120));
    let early = tier_backups::handle(&tier, lifeboat_tests::request_event(&TierRequest::default(), "move-2"))
        .await
        .unwrap();
    assert!(only_ours(&early).is_empty());
    assert!(
        early
            .waiting
            .iter()
            .any(|w| w.reason.contains("minimum storage duration")),
        "{early:?}"
    );
    clock.set(t0() + Duration::days(122));
    tier_backups::handle(&tier, lifeboat_tests::request_event(&TierRequest::default(), "move-3"))
        .await
        .unwrap();
    assert_eq!(class_of("media/big.bin").await.0, "GLACIER");

    // A restore from GLACIER: started first, copied back once S3 has restored it.
    let req = RestoreRequest {
        bucket: src.clone(),
        prefix: "media/".into(),
        as_of: t0() + Duration::days(200),
        keys: None,
        target: None,
        overwrite: false,
        dry_run: false,
        tier: Some(RestoreTier::Bulk),
        confirmation: None,
        payload: serde_json::Value::Null,
    };
    let first = restore_objects::handle(
        &restore_deps(&env, s.clone()),
        lifeboat_tests::request_event(&req, "glacier-restore"),
    )
    .await
    .unwrap();
    assert_eq!(first.status, RestoreStatus::InProgress);
    assert_eq!(first.progress.archive_restores_started, 1);
    let big_item = first.items.iter().find(|i| i.key == "media/big.bin").unwrap();
    assert!(big_item.readiness.contains("Bulk"), "{big_item:?}");
    // moto finishes restores at once; on AWS this call would report in_progress for hours.
    let second = restore_objects::handle(
        &restore_deps(&env, s.clone()),
        lifeboat_tests::request_event(&req, "glacier-restore"),
    )
    .await
    .unwrap();
    assert_eq!(second.status, RestoreStatus::Complete, "{second:?}");
    let restored_bytes = get(
        &env,
        PRIMARY,
        &src,
        &format!("lifeboat-restore/{}/media/big.bin", second.run),
        None,
    )
    .await
    .unwrap();
    assert_eq!(restored_bytes, big);
    // Deep Archive offers no Expedited retrieval: refused before anything starts.
    assert!(restore_objects::readiness("DEEP_ARCHIVE", RestoreTier::Expedited).is_err());
}
