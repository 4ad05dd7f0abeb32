//! The EMF line a restore emits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat::metrics::{MemorySink, Metric, Metrics, validate_emf};
use restore_objects::{Item, Progress, RestoreReport, RestoreStatus, Target, record_metrics};

fn at() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

fn item(key: &str, size: u64, outcome: &str) -> Item {
    Item {
        key: key.into(),
        target_key: format!("restored/{key}"),
        size,
        storage_class: "STANDARD".into(),
        readiness: "now".into(),
        outcome: outcome.into(),
        overwritten_version: None,
    }
}

fn report(dry_run: bool) -> RestoreReport {
    RestoreReport {
        status: RestoreStatus::InProgress,
        progress: Progress {
            restored: 2,
            unchanged: 1,
            archive_restores_started: 1,
            archive_restores_in_progress: 0,
        },
        run: "lb-gold-media-20261123-1800".into(),
        run_completed_at: at(),
        target: Target {
            bucket: "media".into(),
            prefix: "restored/".into(),
        },
        dry_run,
        items: vec![
            item("a.jpg", 1000, "restored"),
            item("b.jpg", 24, "restored"),
            item("c.jpg", 5, "unchanged"),
            item("d.jpg", 7, "archive-restore-started"),
        ],
        bytes: 1036,
        not_in_backup: vec![],
    }
}

#[test]
fn a_restore_counts_what_it_wrote_back_and_its_duration() {
    let sink = MemorySink::new();
    let mut m = Metrics::new("restore-objects", "run-1", at());
    record_metrics(&report(false), Duration::from_secs(42), &mut m);
    m.flush(&sink);
    assert!(sink.lines().iter().all(|l| validate_emf(l).is_empty()));
    assert_eq!(sink.total(Metric::Restores), Some(1));
    assert_eq!(sink.total(Metric::RestoreDuration), Some(42));
    assert_eq!(sink.total(Metric::ObjectsRestored), Some(2));
    assert_eq!(sink.total(Metric::BytesRestored), Some(1024));
}

#[test]
fn a_dry_run_records_nothing() {
    let sink = MemorySink::new();
    let mut m = Metrics::new("restore-objects", "run-1", at());
    record_metrics(&report(true), Duration::from_secs(1), &mut m);
    m.flush(&sink);
    assert!(sink.lines().is_empty());
}
