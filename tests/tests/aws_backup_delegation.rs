//! Policies that delegate to AWS Backup, through create-snapshots, track-recovery-points
//! and expire-recovery-points. moto 5.2.5 has no AWS Backup jobs (StartBackupJob and
//! DescribeBackupJob are not implemented), so the functions run over the in-memory
//! `BackupService` fake here; the real adapter's requests and error mapping are tested
//! with aws-smithy-mocks in `shared/aws/tests/aws_backup.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use chrono::{DateTime, Utc};
use lifeboat_domain::{AlertKind, Region, ResourceKind, ResourceRef, Status};
use lifeboat_ports::{Catalog, Tag, VaultLock};
use lifeboat_testkit::{BackupServiceOp, Fakes};

const ROLE: &str = "arn:aws:iam::123456789012:role/backup";
const SLOT_TIME: &str = "2026-11-23T18:15:00Z";

fn now() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

fn setup(require_lock: bool) -> (Fakes, ResourceRef) {
    let fakes = Fakes::new(now());
    fakes.catalog.put_policy_json(
        "vaulted",
        &format!(
            r#"{{"name":"vaulted","every":"1h","rpo":"2h","retain":1,
                 "aws_backup":{{"vault":"lifeboat","role_arn":"{ROLE}","require_lock":{require_lock}}}}}"#
        ),
    );
    let orders = ResourceRef {
        kind: ResourceKind::RdsInstance,
        id: "orders".into(),
        arn: "arn:aws:rds:us-east-1:123456789012:db:orders".into(),
        region: Region::parse("us-east-1").unwrap(),
    };
    fakes
        .snapshots
        .add_resource(orders.clone(), vec![Tag::new("lifeboat:policy", "vaulted")]);
    (fakes, orders)
}

fn create(fakes: &Fakes) -> create_snapshots::Deps {
    create_snapshots::Deps {
        ports: fakes.ports(),
        config: lifeboat_tests::simulated_time(Fakes::config()),
        runs: create_snapshots::DataRuns::default(),
    }
}

#[tokio::test]
async fn a_delegated_backup_is_a_job_tracked_to_its_vault_recovery_point_and_expired_there() {
    let (fakes, orders) = setup(false);
    fakes.backup.add_unlocked_vault("lifeboat");

    // 1. The tick starts one job (no native snapshot), recorded as pending; a replay
    //    starts nothing more.
    let report = create_snapshots::handle(&create(&fakes), lifeboat_tests::tick_event(SLOT_TIME, "run-1"))
        .await
        .unwrap();
    assert_eq!(report.created.len(), 1, "{report:#?}");
    create_snapshots::handle(&create(&fakes), lifeboat_tests::tick_event(SLOT_TIME, "run-2"))
        .await
        .unwrap();
    let jobs = fakes.backup.jobs();
    assert_eq!(jobs.len(), 1);
    let request = &fakes.backup.requests()[0];
    assert_eq!(
        (
            request.vault.as_str(),
            request.resource_arn.as_str(),
            request.iam_role_arn.as_str()
        ),
        ("lifeboat", orders.arn.as_str(), ROLE)
    );
    assert_eq!(request.idempotency_token, "lb-vaulted-orders-20261123-1800");
    assert!(fakes.snapshots.snapshots().is_empty(), "no native snapshot");
    let id = report.created[0].clone();
    let rp = fakes.catalog.get(&id).await.unwrap().unwrap();
    assert_eq!(rp.status, Status::Pending);
    assert_eq!(rp.backup_job_id(), Some(jobs[0].job_id.as_str()));

    // 2. While the job runs the point stays pending; once it completes, it is complete
    //    (`copied`: the policy asks for no copies) with the vault's recovery point ARN.
    let track = track_recovery_points::Deps {
        ports: fakes.ports(),
        config: lifeboat_tests::simulated_time(Fakes::config()),
    };
    track_recovery_points::handle(&track, lifeboat_tests::tick_event("2026-11-23T18:25:00Z", "track-1"))
        .await
        .unwrap();
    assert_eq!(fakes.catalog.get(&id).await.unwrap().unwrap().status, Status::Pending);
    fakes.backup.complete_job(&jobs[0].job_id);
    track_recovery_points::handle(&track, lifeboat_tests::tick_event("2026-11-23T18:35:00Z", "track-2"))
        .await
        .unwrap();
    let rp = fakes.catalog.get(&id).await.unwrap().unwrap();
    assert_eq!(rp.status, Status::Copied);
    let rp_arn = rp.snapshot_arn.clone().unwrap();
    assert_eq!(Some(rp_arn.as_str()), jobs[0].recovery_point_arn.as_deref());
    // The size AWS Backup reported for the job (BackupSizeInBytes) is the point's.
    assert_eq!(rp.size_bytes, Some(lifeboat_testkit::backup::COMPLETED_JOB_BYTES));

    // 3. The next slot's backup makes this one surplus (retain 1): expiry deletes it from
    //    the vault, through AWS Backup.
    fakes.clock.set("2026-11-23T19:15:02Z".parse().unwrap());
    let next = create_snapshots::handle(
        &create(&fakes),
        lifeboat_tests::tick_event("2026-11-23T19:15:00Z", "run-3"),
    )
    .await
    .unwrap();
    let next_job = fakes
        .backup
        .jobs()
        .into_iter()
        .find(|j| j.job_id != jobs[0].job_id)
        .unwrap();
    fakes.backup.complete_job(&next_job.job_id);
    track_recovery_points::handle(&track, lifeboat_tests::tick_event("2026-11-23T19:25:00Z", "track-3"))
        .await
        .unwrap();
    assert_eq!(
        fakes.catalog.get(&next.created[0]).await.unwrap().unwrap().status,
        Status::Copied
    );
    let expire = expire_recovery_points::Deps {
        ports: fakes.ports(),
        config: lifeboat_tests::simulated_time(Fakes::config()),
        backups: None,
    };
    let report =
        expire_recovery_points::handle(&expire, lifeboat_tests::tick_event("2026-11-23T19:30:00Z", "expire-1"))
            .await
            .unwrap();
    assert_eq!(report.expired.len(), 1, "{report:#?}");
    assert_eq!(report.expired[0].id, id);
    assert_eq!(fakes.backup.calls(BackupServiceOp::DeleteRecoveryPoint), 1);
    let left: Vec<String> = fakes
        .backup
        .recovery_points_in("lifeboat")
        .into_iter()
        .map(|p| p.recovery_point_arn)
        .collect();
    assert!(!left.contains(&rp_arn) && left.len() == 1, "{left:?}");
    assert_eq!(fakes.catalog.get(&id).await.unwrap().unwrap().status, Status::Expired);
}

#[tokio::test]
async fn a_failed_job_fails_the_point_with_one_alert() {
    let (fakes, _) = setup(false);
    fakes.backup.add_unlocked_vault("lifeboat");
    let report = create_snapshots::handle(&create(&fakes), lifeboat_tests::tick_event(SLOT_TIME, "run-1"))
        .await
        .unwrap();
    let job = fakes.backup.jobs().remove(0);
    fakes
        .backup
        .fail_job(&job.job_id, "Insufficient privileges to perform this action");
    let track = track_recovery_points::Deps {
        ports: fakes.ports(),
        config: lifeboat_tests::simulated_time(Fakes::config()),
    };
    track_recovery_points::handle(&track, lifeboat_tests::tick_event("2026-11-23T18:25:00Z", "track-1"))
        .await
        .unwrap();
    let rp = fakes.catalog.get(&report.created[0]).await.unwrap().unwrap();
    assert_eq!(rp.status, Status::Failed);
    let failure = rp.failure.unwrap();
    assert_eq!(failure.code, "backup-job-failed");
    assert!(
        failure.message.contains("Insufficient privileges"),
        "{}",
        failure.message
    );
    let alerts = fakes.notifier.alerts();
    assert_eq!(
        alerts.iter().filter(|a| a.kind == AlertKind::BackupFailed).count(),
        1,
        "{alerts:#?}"
    );
}

#[tokio::test]
async fn a_policy_requiring_vault_lock_backs_up_nothing_into_an_unlocked_vault() {
    let (fakes, _) = setup(true);
    fakes.backup.add_unlocked_vault("lifeboat");
    let report = create_snapshots::handle(&create(&fakes), lifeboat_tests::tick_event(SLOT_TIME, "run-1"))
        .await
        .unwrap();
    assert!(report.created.is_empty());
    assert_eq!(report.failed.len(), 1, "{report:#?}");
    assert!(report.failed[0].message.contains("Vault Lock"), "{report:#?}");
    assert!(fakes.backup.jobs().is_empty(), "no job started");
    assert!(
        fakes
            .notifier
            .alerts()
            .iter()
            .any(|a| a.kind == AlertKind::BackupFailed && a.summary.contains("refused"))
    );

    // Once the vault is locked, the next slot is backed up.
    let (fakes, _) = setup(true);
    fakes.backup.add_vault(
        "lifeboat",
        VaultLock {
            locked: true,
            min_retention_days: Some(7),
            max_retention_days: None,
            lock_date: None,
        },
    );
    let report = create_snapshots::handle(&create(&fakes), lifeboat_tests::tick_event(SLOT_TIME, "run-2"))
        .await
        .unwrap();
    assert_eq!(report.created.len(), 1, "{report:#?}");
    assert_eq!(fakes.backup.jobs().len(), 1);
}

#[tokio::test]
async fn vault_recovery_points_made_outside_lifeboat_are_imported_once_and_never_expired_by_lifeboat() {
    let (fakes, orders) = setup(false);
    fakes.backup.add_unlocked_vault("lifeboat");
    // Lifeboat's own backup, completed.
    let report = create_snapshots::handle(&create(&fakes), lifeboat_tests::tick_event(SLOT_TIME, "run-1"))
        .await
        .unwrap();
    let own = report.created[0].clone();
    fakes.backup.complete_job(&fakes.backup.jobs()[0].job_id);
    // One made by an AWS Backup plan the day before, and one still being written.
    let made = |id: &str, status: &str| lifeboat_ports::VaultRecoveryPoint {
        recovery_point_arn: format!("arn:aws:backup:us-east-1:123456789012:recovery-point:{id}"),
        resource_arn: orders.arn.clone(),
        resource_type: "RDS".into(),
        status: status.into(),
        created_at: Some("2026-11-22T03:00:00Z".parse().unwrap()),
        completed_at: None,
        delete_at: None,
        encryption_key_arn: None,
        is_encrypted: true,
    };
    assert!(fakes.backup.add_recovery_point("lifeboat", made("PLAN-1", "COMPLETED")));
    assert!(fakes.backup.add_recovery_point("lifeboat", made("plan-2", "PARTIAL")));

    let track = track_recovery_points::Deps {
        ports: fakes.ports(),
        config: lifeboat_tests::simulated_time(Fakes::config()),
    };
    let first = track_recovery_points::handle(&track, lifeboat_tests::tick_event("2026-11-23T18:25:00Z", "track-1"))
        .await
        .unwrap();
    let imported: Vec<String> = first.imported.iter().map(ToString::to_string).collect();
    assert_eq!(imported, ["us-east-1/db/vault-plan-1"], "{first:#?}");
    let rp = fakes.catalog.get(&first.imported[0]).await.unwrap().unwrap();
    assert!(rp.adopted && rp.backup_job_id().is_none());
    assert_eq!(rp.backup_vault(), Some("lifeboat"));
    assert!(rp.is_restorable());
    // Lifeboat's own point is known by its recovery point ARN: not imported again.
    assert_eq!(fakes.catalog.points().len(), 2);
    let again = track_recovery_points::handle(&track, lifeboat_tests::tick_event("2026-11-23T18:35:00Z", "track-2"))
        .await
        .unwrap();
    assert!(again.imported.is_empty());

    // Retention (keep 1) would drop the older point; the vault's lifecycle owns it.
    let expire = expire_recovery_points::Deps {
        ports: fakes.ports(),
        config: lifeboat_tests::simulated_time(Fakes::config()),
        backups: None,
    };
    let report =
        expire_recovery_points::handle(&expire, lifeboat_tests::tick_event("2026-11-23T19:00:00Z", "expire-1"))
            .await
            .unwrap();
    assert!(report.expired.is_empty() && report.refused.is_empty(), "{report:#?}");
    assert_eq!(report.protected, 1);
    assert_eq!(fakes.backup.calls(BackupServiceOp::DeleteRecoveryPoint), 0);
    assert!(fakes.catalog.get(&own).await.unwrap().unwrap().is_restorable());
}

#[tokio::test]
async fn a_job_state_change_event_records_the_vault_recovery_point_at_once_and_once() {
    let (fakes, _orders) = setup(false);
    fakes.backup.add_unlocked_vault("lifeboat");
    let report = create_snapshots::handle(&create(&fakes), lifeboat_tests::tick_event(SLOT_TIME, "run-1"))
        .await
        .unwrap();
    let id = report.created[0].clone();
    let job = fakes.backup.jobs()[0].clone();
    fakes.backup.complete_job(&job.job_id);
    // AWS Backup announces the completed job (the sample, naming this job).
    let mut event = lifeboat_testkit::sample("track-recovery-points", "backup-job-completed.json");
    event["detail"]["backupJobId"] = serde_json::Value::from(job.job_id.clone());
    let track = track_recovery_points::Deps {
        ports: fakes.ports(),
        config: lifeboat_tests::simulated_time(Fakes::config()),
    };
    let moved = track_recovery_points::handle(&track, lifeboat_testkit::event_for(event.clone(), "e1"))
        .await
        .unwrap();
    assert_eq!(moved.transitions, vec![(id.clone(), Status::Available)], "{moved:#?}");
    let rp = fakes.catalog.get(&id).await.unwrap().unwrap();
    let done = fakes.backup.jobs()[0].clone();
    assert_eq!(rp.snapshot_arn.as_deref(), done.recovery_point_arn.as_deref());
    // Delivered again: no pending point names the job any more.
    let again = track_recovery_points::handle(&track, lifeboat_testkit::event_for(event, "e1"))
        .await
        .unwrap();
    assert!(again.transitions.is_empty() && again.ignored.is_some(), "{again:#?}");
}
