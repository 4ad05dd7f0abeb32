//! Criticality windows on the local AWS stack: while a window is open the stricter rule
//! raises the snapshot frequency and nothing of the resource is expired; once it closes,
//! retention applies again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use chrono::{DateTime, Duration, DurationRound, Utc};
use lifeboat_domain::Status;
use lifeboat_tests::{PRIMARY, TestEnv};

async fn snapshot_names(env: &TestEnv, instance: &str) -> Vec<String> {
    let out = env
        .rds(PRIMARY)
        .describe_db_snapshots()
        .db_instance_identifier(instance)
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let mut names: Vec<_> = out
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_open_window_raises_frequency_and_blocks_expiry_until_it_closes() {
    let env = TestEnv::start().await.unwrap();
    // Snapshot times on the emulator are its wall clock, so the window is placed around now.
    let now = Utc::now();
    let slot: DateTime<Utc> = now.duration_trunc(Duration::minutes(15)).unwrap();
    let (from, to) = (slot - Duration::hours(1), slot + Duration::minutes(40));
    let policy = env
        .put_policy(&format!(
            r#"{{"name":"{{prefix}}-shop","every":"1day","rpo":"26h","retain":1,
                "windows":[{{"name":"launch","from":"{}","to":"{}"}}],
                "window_rule":{{"every":"15m","rpo":"15m"}}}}"#,
            from.to_rfc3339(),
            to.to_rfc3339()
        ))
        .await
        .unwrap();
    let db = env.name("shop");
    env.create_instance(&db, policy.name.as_str()).await.unwrap();
    let create = create_snapshots::Deps {
        ports: env.ports(),
        config: env.config(""),
        runs: create_snapshots::DataRuns::default(),
    };
    let expire = expire_recovery_points::Deps {
        ports: env.ports(),
        config: env.config(""),
        backups: None,
    };

    // Two ticks 15 minutes apart inside the window: two snapshots (daily outside it).
    let first = slot - Duration::minutes(15);
    let mut created = Vec::new();
    for (i, at) in [first, slot].iter().enumerate() {
        let report = create_snapshots::handle(&create, lifeboat_tests::tick_event(&at.to_rfc3339(), &format!("c{i}")))
            .await
            .unwrap();
        assert_eq!(report.created.len(), 1, "{report:#?}");
        created.extend(report.created);
    }
    // The snapshots take time, as on AWS: the tracker records when they are available.
    let track = track_recovery_points::Deps {
        ports: env.ports(),
        config: env.config(""),
    };
    lifeboat_tests::track_until(&env, &track, &slot.to_rfc3339(), &created, Status::Available)
        .await
        .unwrap();
    let names = snapshot_names(&env, &db).await;
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&format!("lb-{}-{db}-{}", policy.name, slot.format("%Y%m%d-%H%M"))));

    // Retention keeps only the last one, but the window is open: nothing is expired.
    let during = expire_recovery_points::handle(&expire, lifeboat_tests::tick_event(&slot.to_rfc3339(), "e1"))
        .await
        .unwrap();
    assert!(during.expired.is_empty(), "{during:#?}");
    assert_eq!(snapshot_names(&env, &db).await.len(), 2);

    // After the window closes, the older snapshot goes and the newest stays.
    let after = to + Duration::hours(1);
    let report = expire_recovery_points::handle(&expire, lifeboat_tests::tick_event(&after.to_rfc3339(), "e2"))
        .await
        .unwrap();
    assert_eq!(report.expired.len(), 1, "{report:#?}");
    let left = snapshot_names(&env, &db).await;
    assert_eq!(left.len(), 1);
    assert!(
        left[0].ends_with(&slot.format("%Y%m%d-%H%M").to_string()),
        "the newest is kept: {left:?}"
    );
}
