//! The daily digest on the local AWS stack: real RDS snapshots and copies in moto, the
//! DynamoDB catalog, and the digest read back from the SQS queue subscribed to the alerts
//! topic, once per day however often the tick is delivered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use lifeboat_domain::{AlertKind, Status};
use lifeboat_tests::{DR, TestEnv};

#[tokio::test]
async fn the_daily_digest_reaches_the_topic_once_with_rpo_and_storage_sections() {
    let env = TestEnv::start().await.unwrap();
    let key = env.create_kms_key(DR).await.unwrap();
    let gold = env
        .put_policy(&format!(
            r#"{{"name":"{{prefix}}-gold","every":"1h","rpo":"2h","retain":24,"copies":[{{"region":"{DR}","kms_key_id":"{key}"}}]}}"#
        ))
        .await
        .unwrap();
    let bronze = env
        .put_policy(
            r#"{"name":"{prefix}-bronze","every":"1day","rpo":"26h","retain":7,"copies":[{"region":"eu-west-1"}]}"#,
        )
        .await
        .unwrap();
    let (orders, reports) = (env.name("orders"), env.name("reports"));
    env.create_instance(&orders, gold.name.as_str()).await.unwrap();
    env.create_instance(&reports, bronze.name.as_str()).await.unwrap();

    let now = chrono::Utc::now();
    let at = now.to_rfc3339();
    let ports = env.ports();
    let config = env.config("");
    let created = create_snapshots::handle(
        &create_snapshots::Deps {
            ports: ports.clone(),
            config: config.clone(),
            runs: create_snapshots::DataRuns::default(),
        },
        lifeboat_tests::tick_event(&at, "create"),
    )
    .await
    .unwrap();
    // Snapshots and copies take time (as on AWS); the tracker records when they are done.
    let track = track_recovery_points::Deps {
        ports: ports.clone(),
        config: config.clone(),
    };
    lifeboat_tests::track_until(&env, &track, &at, &created.created, Status::Available)
        .await
        .unwrap();
    copy_snapshots::handle(
        &copy_snapshots::Deps {
            ports: ports.clone(),
            config: config.clone(),
        },
        lifeboat_tests::tick_event(&at, "copy"),
    )
    .await
    .unwrap();
    let copied: Vec<_> = created
        .created
        .iter()
        .filter(|id| id.as_str().contains(&orders))
        .cloned()
        .collect();
    lifeboat_tests::track_until(&env, &track, &at, &copied, Status::Copied)
        .await
        .unwrap();

    let deps = send_digest::Deps {
        ports,
        config,
        digest: send_digest::DigestConfig::from_lookup(|_| None).unwrap(),
    };
    let later = (now + chrono::Duration::minutes(5)).to_rfc3339();
    let first = send_digest::handle(&deps, lifeboat_tests::tick_event(&later, "digest-1"))
        .await
        .unwrap();
    assert!(first.sent);
    // The same day's tick again (a retry, a replay): nothing more is sent.
    let again = send_digest::handle(&deps, lifeboat_tests::tick_event(&later, "digest-2"))
        .await
        .unwrap();
    assert!(!again.sent);

    let digests: Vec<_> = env
        .alerts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.alert.kind == AlertKind::Digest)
        .collect();
    assert_eq!(digests.len(), 1, "one digest per day");
    let digest = &digests[0].alert;
    assert_eq!(digest.summary, first.summary);
    let detail = |k: &str| digest.details.get(k).cloned().unwrap_or_default();
    // Both resources appear in the RPO section: orders met in both regions; reports has no
    // copy in eu-west-1 (no KMS key there), which the digest names.
    let rpo = detail("rpo");
    assert!(rpo.contains(&reports), "{rpo}");
    assert!(rpo.contains("eu-west-1"), "{rpo}");
    assert!(detail("storage").contains("us-east-1"), "{}", detail("storage"));
    assert!(!detail("backups_24h").is_empty());
    assert_eq!(first.compliance.resources, 2, "{:?}", first.compliance);
}
