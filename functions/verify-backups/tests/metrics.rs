//! The EMF line a verification run emits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use chrono::{DateTime, Utc};
use lifeboat::metrics::{MemorySink, Metric, Metrics, validate_emf};
use lifeboat::verify::Problem;
use lifeboat_domain::RecoveryPointId;
use verify_backups::{Finding, VerifyReport, record_metrics};

fn at() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

#[test]
fn mismatches_and_passes_are_counted_and_zero_is_still_emitted() {
    let rp = RecoveryPointId::parse("us-west-2/s3/lb-gold-media-20261123-1800").unwrap();
    let mut report = VerifyReport {
        verified: vec![rp.clone()],
        ..VerifyReport::default()
    };
    for (key, problem) in [("a.jpg", Problem::Corrupted), ("b.jpg", Problem::Missing)] {
        report.findings.push(Finding {
            recovery_point: rp.clone(),
            key: key.into(),
            problem,
        });
    }
    let sink = MemorySink::new();
    let mut m = Metrics::new("verify-backups", "run-1", at());
    record_metrics(&report, &mut m);
    m.flush(&sink);
    assert!(sink.lines().iter().all(|l| validate_emf(l).is_empty()));
    assert_eq!(sink.total(Metric::VerificationsPassed), Some(1));
    assert_eq!(sink.total(Metric::VerificationMismatches), Some(2));

    // A clean run still reports 0 mismatches: the alarm sees data, not "missing".
    let sink = MemorySink::new();
    let mut m = Metrics::new("verify-backups", "run-2", at());
    record_metrics(&VerifyReport::default(), &mut m);
    m.flush(&sink);
    assert_eq!(sink.total(Metric::VerificationMismatches), Some(0));
}
