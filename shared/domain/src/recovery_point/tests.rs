//! Recovery points: lifecycle, ids, and the catalog record.

use super::*;
use std::time::Duration;

pub(crate) fn sample(status: Status) -> RecoveryPoint {
    let region = Region::parse("us-east-1").unwrap();
    let now: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    let resource = ResourceRef {
        kind: ResourceKind::RdsInstance,
        id: "db1".into(),
        arn: "arn:aws:rds:us-east-1:123456789012:db:db1".into(),
        region: region.clone(),
    };
    let slot = Slot::containing(now, Duration::from_hours(1));
    let policy = PolicyName::parse("gold").unwrap();
    RecoveryPoint::new(
        &resource,
        &policy,
        slot,
        &region,
        "lb-gold-db1-20261123-1800",
        status,
        now,
    )
}

#[test]
fn lifecycle_allows_only_forward_moves() {
    let rp = sample(Status::Pending);
    let a = rp.transition(Status::Available, rp.created_at).unwrap();
    assert_eq!(a.version, 2);
    let c = a.transition(Status::Copying, a.created_at).unwrap();
    assert!(c.transition(Status::Pending, c.created_at).is_err());
    assert!(c.transition(Status::Copied, c.created_at).is_ok());
    assert!(
        sample(Status::Copied)
            .transition(Status::Failed, rp.created_at)
            .is_err()
    );
}

#[test]
fn expiry_keeps_a_failure_as_history_and_never_starts_from_work_in_flight() {
    let at = sample(Status::Pending).created_at;
    let failure = Failure {
        step: Step::Create,
        code: "quota".into(),
        message: "x".into(),
    };
    let failed = sample(Status::Pending).fail(failure, at).unwrap();
    let expiring = failed.transition(Status::Expiring, at).unwrap();
    let expired = expiring.transition(Status::Expired, at).unwrap();
    assert_eq!(expired.failure.as_ref().map(|f| f.code.as_str()), Some("quota"));
    assert!(sample(Status::Pending).transition(Status::Expiring, at).is_err());
    assert!(sample(Status::Copying).transition(Status::Expiring, at).is_err());
    assert!(sample(Status::Available).transition(Status::Expired, at).is_err());
}

#[test]
fn a_point_is_stored_as_the_flat_record_written_before_its_detail_was_typed() {
    let mut rp = sample(Status::Copied);
    rp.snapshot_mut().unwrap().writer_class = Some("db.r6g.large".into());
    let json = serde_json::to_value(&rp).unwrap();
    assert_eq!(json["writer_class"], "db.r6g.large");
    assert!(json.get("detail").is_none() && json.get("backup_vault").is_none());
    let back: RecoveryPoint = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, rp);

    // A vault point: its vault and job, and nothing of a snapshot's detail.
    let mut in_vault = json;
    in_vault["backup_vault"] = "lifeboat".into();
    in_vault["backup_job_id"] = "job-1".into();
    let read: RecoveryPoint = serde_json::from_value(in_vault).unwrap();
    assert_eq!(read.backup_vault(), Some("lifeboat"));
    assert_eq!(read.backup_job_id(), Some("job-1"));
    assert!(read.snapshot().is_none() && read.writer_class().is_none());
    let again = serde_json::to_value(&read).unwrap();
    assert_eq!(again["backup_vault"], "lifeboat");
    assert!(again.get("writer_class").is_none());

    // A field of another kind, which no writer produces, is ignored.
    let mut foreign = serde_json::to_value(&rp).unwrap();
    foreign["table_checksum"] =
        serde_json::json!({"items": 1, "checksum": "x", "restored_as": "t", "at": "2026-11-23T18:00:00Z"});
    let read: RecoveryPoint = serde_json::from_value(foreign).unwrap();
    assert_eq!(read, rp);
}

#[test]
fn ids_parse_and_reject_garbage() {
    assert!(RecoveryPointId::parse("us-east-1/db/lb-gold-db1-20261123-1800").is_ok());
    for bad in [
        "",
        "us-east-1/db/",
        "us-east-1/xx/n",
        "nowhere/db/n",
        "us-east-1/db/a b",
    ] {
        assert!(RecoveryPointId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_source_with_a_failed_copy_is_still_restorable_where_it_is() {
    let src = sample(Status::Available);
    let failed = src
        .fail(
            Failure {
                step: Step::Copy,
                code: "kms-key".into(),
                message: "x".into(),
            },
            src.created_at,
        )
        .unwrap();
    assert!(failed.is_restorable());
    let created_failed = sample(Status::Pending)
        .fail(
            Failure {
                step: Step::Create,
                code: "snapshot-failed".into(),
                message: "x".into(),
            },
            src.created_at,
        )
        .unwrap();
    assert!(!created_failed.is_restorable());
}
