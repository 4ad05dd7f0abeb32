//! An emergency backup on the local AWS stack: requested outside any schedule (the event
//! the admin API sends), snapshotted at once, and its copy jumps the queue of routine
//! copies waiting for the region's budget.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use lifeboat::events::BackupRequest;
use lifeboat_domain::{RecoveryPointId, Region, ResourceKind, Status};
use lifeboat_ports::Catalog;
use lifeboat_tests::{DR, PRIMARY, TestEnv};
use serde_json::json;

const SLOT_TIME: &str = "2026-11-23T18:15:00Z";

#[tokio::test]
async fn an_emergency_backup_is_made_at_once_and_its_copy_jumps_the_queue() {
    let env = TestEnv::start().await.unwrap();
    let key = env.create_kms_key(DR).await.unwrap();
    let policy = env
        .put_policy(&format!(
            r#"{{"name":"{{prefix}}-gold","every":"1h","rpo":"2h","retain":24,"priority":1,
                "copies":[{{"region":"{DR}","kms_key_id":"{key}"}}]}}"#
        ))
        .await
        .unwrap();
    let dbs: Vec<String> = ["alpha", "bravo", "charlie"].iter().map(|n| env.name(n)).collect();
    for db in &dbs {
        env.create_instance(db, policy.name.as_str()).await.unwrap();
    }
    let create = create_snapshots::Deps {
        ports: env.ports(),
        config: env.config(""),
        runs: create_snapshots::DataRuns::default(),
    };
    let mut copy = copy_snapshots::Deps {
        ports: env.ports(),
        config: env.config(""),
    };
    copy.config.copy_budget_per_region = 1;

    // The scheduled snapshots: three routine copies will compete for one copy per run.
    let scheduled = create_snapshots::handle(&create, lifeboat_tests::tick_event(SLOT_TIME, "c1"))
        .await
        .unwrap();
    assert_eq!(scheduled.created.len(), 3, "{scheduled:#?}");

    // Then the on-call engineer asks for an emergency backup of "charlie".
    let charlie_arn = format!("arn:aws:rds:{PRIMARY}:123456789012:db:{}", dbs[2]);
    let request = BackupRequest::parse(&json!({
        "source": "lifeboat.admin", "detail-type": "Backup requested",
        "detail": {"resources": [charlie_arn], "emergency": true, "reason": "before the risky migration",
                   "requestedBy": "arn:aws:iam::123456789012:user/oncall", "requestId": format!("{}-req", env.prefix),
                   "requestedAt": "2026-11-23T18:20:05Z"}
    }))
    .unwrap();
    let made = create_snapshots::run_request(&create, &request, "c2").await.unwrap();
    let em_name = format!("lb-{}-{}-em-20261123-182005", policy.name, dbs[2]);
    assert_eq!(made.created.len(), 1, "{made:#?}");
    assert!(made.created[0].as_str().ends_with(&em_name));
    let primary = env
        .rds(PRIMARY)
        .describe_db_snapshots()
        .db_snapshot_identifier(&em_name)
        .send()
        .await
        .unwrap();
    assert_eq!(primary.db_snapshots().len(), 1, "the emergency snapshot exists in RDS");

    // A replay of the same request (API retry) changes nothing.
    let replay = create_snapshots::run_request(&create, &request, "c3").await.unwrap();
    assert!(replay.replayed && replay.created.is_empty());

    // The snapshots take time, as on AWS: the tracker records when they are available.
    let track = track_recovery_points::Deps {
        ports: env.ports(),
        config: env.config(""),
    };
    let all: Vec<_> = scheduled.created.iter().chain(&made.created).cloned().collect();
    lifeboat_tests::track_until(&env, &track, "2026-11-23T18:20:00Z", &all, Status::Available)
        .await
        .unwrap();

    // One copy fits this run: the emergency one, although the routine ones are older.
    let first = copy_snapshots::handle(&copy, lifeboat_tests::tick_event("2026-11-23T18:20:00Z", "k1"))
        .await
        .unwrap();
    let started: Vec<_> = first.started.iter().map(ToString::to_string).collect();
    assert_eq!(started, [format!("{DR}/db/{em_name}")], "{first:#?}");
    assert_eq!(first.waiting.len(), 3, "the three routine copies wait: {first:#?}");
    let copied = env
        .rds(DR)
        .describe_db_snapshots()
        .db_snapshot_identifier(&em_name)
        .send()
        .await
        .unwrap();
    assert_eq!(copied.db_snapshots().len(), 1, "the emergency copy exists in {DR}");
    let copy_id = RecoveryPointId::new(&Region::parse(DR).unwrap(), ResourceKind::RdsInstance, &em_name);
    let point = env
        .catalog()
        .get(&copy_id)
        .await
        .unwrap()
        .expect("the copy is cataloged");
    assert_eq!(
        point.source.as_ref().map(RecoveryPointId::as_str),
        Some(made.created[0].as_str())
    );
}
