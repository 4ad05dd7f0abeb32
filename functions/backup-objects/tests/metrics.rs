//! The EMF line an incremental run emits, in the backup region.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use backup_objects::{BackupReport, RunStatus, record_metrics};
use chrono::{DateTime, Utc};
use lifeboat::metrics::{MemorySink, Metric, Metrics, validate_emf};
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::{RecoveryPointId, Region};

fn at() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

fn report(status: RunStatus, replay: bool) -> BackupReport {
    BackupReport {
        status,
        run: "lb-gold-media-20261123-1800".into(),
        recovery_point: RecoveryPointId::parse("us-west-2/s3/lb-gold-media-20261123-1800").unwrap(),
        listed: 100,
        copied: 3,
        bytes_copied: 3_000,
        unchanged: 97,
        recovered: 0,
        deleted: 0,
        replay,
        request_id: None,
        note: None,
        listing: lifeboat_domain::manifest::Listing::Full,
        listing_reason: None,
        changes_received: 0,
        changes_left: 0,
        manifest: None,
        shards: None,
        shard: None,
        healed: Vec::new(),
        unrecoverable: Vec::new(),
    }
}

fn emitted(result: &Result<BackupReport, FunctionError>) -> MemorySink {
    let region = Region::parse("us-west-2").unwrap();
    let sink = MemorySink::new();
    let mut m = Metrics::new("backup-objects", "run-1", at());
    record_metrics(result, &region, &mut m);
    m.flush(&sink);
    assert!(sink.lines().iter().all(|l| validate_emf(l).is_empty()));
    sink
}

#[test]
fn a_completed_run_counts_one_backup_and_what_it_copied() {
    let sink = emitted(&Ok(report(RunStatus::Complete, false)));
    assert_eq!(sink.sum(Metric::BackupsSucceeded, Some("us-west-2")), Some(1));
    assert_eq!(sink.sum(Metric::ObjectsCopied, Some("us-west-2")), Some(3));
    assert_eq!(sink.sum(Metric::BytesCopied, Some("us-west-2")), Some(3_000));
    assert_eq!(sink.sum(Metric::BackupsFailed, Some("us-west-2")), Some(0));
}

#[test]
fn an_unfinished_run_or_a_replay_is_not_a_backup_yet() {
    for (status, replay) in [(RunStatus::InProgress, false), (RunStatus::Complete, true)] {
        let sink = emitted(&Ok(report(status, replay)));
        assert_eq!(sink.total(Metric::BackupsSucceeded), Some(0), "{status:?} {replay}");
    }
}

#[test]
fn a_finished_shard_counts_its_copies_but_only_the_finish_counts_the_backup() {
    let shard = BackupReport {
        shard: Some(2),
        ..report(RunStatus::Complete, false)
    };
    let sink = emitted(&Ok(shard));
    assert_eq!(sink.total(Metric::BackupsSucceeded), Some(0));
    assert_eq!(sink.sum(Metric::ObjectsCopied, Some("us-west-2")), Some(3));
    let split = BackupReport {
        shards: Some(Vec::new()),
        ..report(RunStatus::InProgress, false)
    };
    assert_eq!(emitted(&Ok(split)).total(Metric::BackupsSucceeded), Some(0));
    let finish = BackupReport {
        copied: 0,
        bytes_copied: 0,
        ..report(RunStatus::Complete, false)
    };
    assert_eq!(emitted(&Ok(finish)).total(Metric::BackupsSucceeded), Some(1));
}

#[test]
fn a_failed_run_counts_a_failed_backup_but_bad_input_does_not() {
    let sink = emitted(&Err(FunctionError::retryable("S3 throttled")));
    assert_eq!(sink.total(Metric::BackupsFailed), Some(1));
    let sink = emitted(&Err(FunctionError::new(ErrorType::Invalid, "bucket: required")));
    assert!(sink.lines().is_empty());
}
