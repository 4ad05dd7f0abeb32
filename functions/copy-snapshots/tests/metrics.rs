//! The EMF line a copy run emits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use chrono::{DateTime, Utc};
use copy_snapshots::{Report, record_metrics};
use lifeboat::app::ItemFailure;
use lifeboat::metrics::{MemorySink, Metric, Metrics, validate_emf};
use lifeboat_domain::RecoveryPointId;
use lifeboat_ports::PortError;

fn at() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

#[test]
fn started_and_refused_copies_are_counted() {
    let report = Report {
        started: vec![
            RecoveryPointId::parse("us-west-2/db/lb-gold-orders-20261123-1800").unwrap(),
            RecoveryPointId::parse("us-west-2/db/lb-gold-billing-20261123-1800").unwrap(),
        ],
        failed: vec![ItemFailure::new(
            "us-east-1/db/lb-gold-ledger-20261123-1800",
            &PortError::KmsKey("KMSKeyNotAccessibleFault".into()),
        )],
        ..Report::default()
    };
    let sink = MemorySink::new();
    let mut m = Metrics::new("copy-snapshots", "run-1", at());
    record_metrics(&report, &mut m);
    m.flush(&sink);
    assert_eq!(sink.lines().len(), 1);
    assert!(validate_emf(&sink.lines()[0]).is_empty());
    assert_eq!(sink.total(Metric::CopiesStarted), Some(2));
    assert_eq!(sink.total(Metric::CopiesFailed), Some(1));
}
