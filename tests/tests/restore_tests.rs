//! Restore tests of databases on the strict local stack (restores, instances and deletes
//! take time; an Aurora cluster has no endpoint until it has an instance): snapshots made
//! and copied by the backup functions are restored into throwaway databases by
//! test-restores, judged, recorded as verified and deleted; a test database whose tags no
//! longer say it is the test's is never deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use lifeboat_domain::AlertKind;
use lifeboat_domain::restore_test::{Phase, TAG_RESTORE_TEST};
use lifeboat_ports::Catalog;
use lifeboat_tests::proof::{back_up, copy_of, prove, restore_test_deps};
use lifeboat_tests::{DR, PRIMARY, TestEnv};

async fn db_exists(env: &TestEnv, region: &str, id: &str) -> bool {
    env.rds(region)
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .is_ok_and(|o| !o.db_instances().is_empty())
}

async fn cluster_exists(env: &TestEnv, region: &str, id: &str) -> bool {
    env.rds(region)
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .is_ok_and(|o| !o.db_clusters().is_empty())
}

/// Policy `<prefix>-gold`: hourly, copies to the DR region with a key of its own.
async fn gold(env: &TestEnv) -> lifeboat_domain::Policy {
    let key = env.create_kms_key(DR).await.unwrap();
    env.put_policy(&format!(
        r#"{{"name":"{{prefix}}-gold","every":"1h","rpo":"2h","retain":24,"copies":[{{"region":"{DR}","kms_key_id":"{key}"}}]}}"#
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn snapshots_and_their_copies_are_proven_by_restoring_them_and_the_test_databases_go() {
    let env = TestEnv::start().await.unwrap();
    let policy = gold(&env).await;
    let orders = env.name("orders");
    let ledger = env.name("ledger");
    let orders_arn = env.create_instance(&orders, policy.name.as_str()).await.unwrap();
    let ledger_arn = env.create_cluster(&ledger, policy.name.as_str()).await.unwrap();

    let sources = back_up(&env, &env.config(""), &[orders_arn, ledger_arn]).await.unwrap();
    let mut ids = sources.clone();
    for s in &sources {
        ids.push(copy_of(&env, s, DR).await.unwrap());
    }
    let points = prove(&env, &ids).await.unwrap();

    for p in &points {
        let test = p.restore_test().unwrap();
        assert!(test.problems.is_empty(), "{}: {:?}", p.id, test.problems);
        assert!(p.verified_at.is_some(), "{} verified by its restore test", p.id);
        assert!(
            test.restore_secs().is_some(),
            "the restore's duration is the RTO evidence"
        );
        assert!(
            test.checks.iter().any(|c| c.starts_with("engine ")),
            "{:?}",
            test.checks
        );
        assert!(test.by.starts_with("test-restores/"));
        assert_eq!(test.phase, Phase::Done);
        // Gone (the strict stack keeps a deleted name for a while, as AWS does; the test
        // is done only once RDS no longer knows it).
        let region = p.location.as_str();
        assert!(!db_exists(&env, region, &test.target).await, "{}", test.target);
        assert!(!db_exists(&env, region, &test.writer()).await, "{}", test.writer());
        assert!(!cluster_exists(&env, region, &test.target).await, "{}", test.target);
    }
    // Sizes as RDS reported them when the points became available; storage and cost count
    // them. By hand: the instance's snapshot and its copy, 20 GiB each, at $0.095 per
    // GB-month (us-east-1 and us-west-2 list price) = $3.80 a month; Aurora reports no
    // size of its own (billed by use), so the cluster's two points are unsized.
    let instances: Vec<_> = points
        .iter()
        .filter(|p| p.resource.kind == lifeboat_domain::ResourceKind::RdsInstance)
        .collect();
    assert_eq!(instances.len(), 2);
    assert!(
        instances.iter().all(|p| p.size_bytes == Some(20 << 30)),
        "{instances:#?}"
    );
    let report = lifeboat::reports::metrics_report(
        &points,
        &lifeboat::reports::recorded_size,
        &lifeboat_domain::cost::PriceBook::aws_list_prices(),
        chrono::Utc::now(),
    );
    let json = serde_json::to_value(&report).unwrap();
    let rds_micro_usd: u64 = json["storage"]["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["tier"] == "rds-snapshot")
        .map(|t| t["total_micro_usd"].as_u64().unwrap())
        .sum();
    assert_eq!(rds_micro_usd, 3_800_000, "{json:#}");
    assert_eq!(json["storage"]["unsized_points"], 2, "{json:#}");
    let copy = points.iter().find(|p| p.location.as_str() == DR).unwrap();
    assert!(
        copy.restore_test()
            .as_ref()
            .unwrap()
            .checks
            .iter()
            .any(|c| c.starts_with("encryption key")),
        "the copy restored with the DR key: {:?}",
        copy.restore_test()
    );
    // The protected databases were only read.
    assert!(db_exists(&env, PRIMARY, &orders).await);
    assert!(cluster_exists(&env, PRIMARY, &ledger).await);
    let failed = env
        .alerts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.alert.kind == AlertKind::RestoreTestFailed)
        .count();
    assert_eq!(failed, 0);
}

#[tokio::test]
async fn a_test_database_whose_tag_no_longer_names_the_test_is_left_alone() {
    let env = TestEnv::start().await.unwrap();
    let policy = gold(&env).await;
    let orders = env.name("orders");
    let arn = env.create_instance(&orders, policy.name.as_str()).await.unwrap();
    let source = back_up(&env, &env.config(""), &[arn]).await.unwrap().remove(0);

    let deps = restore_test_deps(&env).unwrap();
    let started = test_restores::handle(
        &deps,
        lifeboat_testkit::event(serde_json::json!({"recoveryPoint": source})),
    )
    .await
    .unwrap();
    assert_eq!(started.started.len(), 1, "{started:?}");
    let target = started.started[0].target.clone();
    // Someone takes the database over (its Lifeboat tag removed) while it is restoring.
    let rds = env.rds(PRIMARY);
    let db_arn = rds
        .describe_db_instances()
        .db_instance_identifier(&target)
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .db_instance_arn()
        .unwrap()
        .to_owned();
    rds.remove_tags_from_resource()
        .resource_name(&db_arn)
        .tag_keys(TAG_RESTORE_TEST)
        .send()
        .await
        .unwrap();

    let mut rounds = 0;
    let test = loop {
        test_restores::handle(&deps, lifeboat_testkit::event(serde_json::json!({"mode": "advance"})))
            .await
            .unwrap();
        let point = env.catalog().get(&source).await.unwrap().unwrap();
        let test = point.restore_test().cloned().unwrap();
        if test.phase == Phase::Done {
            assert!(point.verified_at.is_none());
            break test;
        }
        rounds += 1;
        assert!(rounds < 200, "{test:?}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(test.problems.iter().any(|p| p.contains("did not make")), "{test:?}");
    assert!(db_exists(&env, PRIMARY, &target).await, "never deleted");
    let alerts = env.alerts().await.unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.alert.kind == AlertKind::RestoreTestFailed
                && a.alert.details.get("test_database") == Some(&target)),
        "{alerts:#?}"
    );
    // The test's own leftovers are the test's to clean up.
    rds.delete_db_instance()
        .db_instance_identifier(&target)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_point_under_test_survives_its_retention_until_the_test_ends() {
    let env = TestEnv::start().await.unwrap();
    let key = env.create_kms_key(DR).await.unwrap();
    let policy = env
        .put_policy(&format!(
            r#"{{"name":"{{prefix}}-one","every":"1h","rpo":"2h","retain":1,"copies":[{{"region":"{DR}","kms_key_id":"{key}"}}]}}"#
        ))
        .await
        .unwrap();
    let arn = env
        .create_instance(&env.name("orders"), policy.name.as_str())
        .await
        .unwrap();
    let older = back_up(&env, &env.config(""), std::slice::from_ref(&arn))
        .await
        .unwrap()
        .remove(0);
    let newer = back_up(&env, &env.config(""), std::slice::from_ref(&arn))
        .await
        .unwrap()
        .remove(0);

    // Both sources' restore tests start: each point is held while its test reads it.
    let deps = restore_test_deps(&env).unwrap();
    for id in [&older, &newer] {
        test_restores::handle(&deps, lifeboat_testkit::event(serde_json::json!({"recoveryPoint": id})))
            .await
            .unwrap();
        let held = env.catalog().get(id).await.unwrap().unwrap();
        assert!(
            held.holds.in_use_by.is_some(),
            "{id} is held during its test: {:?}",
            held.holds
        );
    }

    // Retention (keep 1) would let the older source go: its test holds it.
    let expire = expire_recovery_points::Deps {
        ports: env.ports(),
        config: env.config(""),
        backups: None,
    };
    let tick =
        || serde_json::json!({"scheduledTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)});
    expire_recovery_points::handle(&expire, lifeboat_testkit::event(tick()))
        .await
        .unwrap();
    let during = env.catalog().get(&older).await.unwrap().unwrap();
    assert!(
        !matches!(
            during.status,
            lifeboat_domain::Status::Expiring | lifeboat_domain::Status::Expired
        ),
        "a point in use is never expired: {during:?}"
    );

    // The tests end (both pass): the holds are released and retention takes its course.
    let done = prove(&env, &[older.clone(), newer.clone()]).await.unwrap();
    assert!(
        done.iter()
            .all(|p| p.holds.in_use_by.is_none() && p.verified_at.is_some()),
        "{done:#?}"
    );
    let after = expire_recovery_points::handle(&expire, lifeboat_testkit::event(tick()))
        .await
        .unwrap();
    assert!(
        after.expired.iter().any(|e| e.id == older && e.snapshot_deleted),
        "{after:?}"
    );
    assert_eq!(
        env.catalog().get(&newer).await.unwrap().unwrap().status,
        lifeboat_domain::Status::Copied
    );
}
