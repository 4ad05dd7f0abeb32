//! The EMF lines one invocation of `create-snapshots` emits, against the in-memory fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use chrono::{DateTime, Utc};
use create_snapshots::{Deps, handle_with};
use lifeboat::metrics::{MemorySink, Metric, validate_emf};
use lifeboat_domain::ResourceKind;
use lifeboat_ports::PortError;
use lifeboat_testkit::{Fakes, SnapshotOp, event_json_for};
use serde_json::Value;

const GOLD: &str = r#"{"name":"gold","every":"1h","rpo":"2h","retain":24}"#;
const TICK: &str = include_str!("../../../events/create-snapshots/scheduler-tick.json");
const MALFORMED: &str = include_str!("../../../events/create-snapshots/malformed.json");

fn now() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

#[tokio::test]
async fn a_tick_emits_backups_started_and_refused_once() {
    let fakes = Fakes::new(now());
    fakes.catalog.put_policy_json("gold", GOLD);
    fakes.add_db(ResourceKind::RdsInstance, "orders", "gold");
    fakes.add_db(ResourceKind::RdsInstance, "billing", "gold");
    fakes.add_db(ResourceKind::RdsInstance, "ledger", "gold");
    fakes.snapshots.fail_next(
        SnapshotOp::Create,
        PortError::InvalidState("InvalidDBInstanceState".into()),
    );
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        runs: create_snapshots::DataRuns::default(),
    };
    let sink = MemorySink::new();
    let report = handle_with(&deps, event_json_for(TICK, "req-metrics"), &sink)
        .await
        .unwrap();
    assert_eq!((report.created.len(), report.failed.len()), (2, 1), "{report:?}");
    let lines = sink.lines();
    assert_eq!(lines.len(), 1, "one line per invocation: {lines:?}");
    assert!(validate_emf(&lines[0]).is_empty(), "{}", lines[0]);
    assert_eq!(sink.total(Metric::BackupsStarted), Some(2));
    assert_eq!(sink.total(Metric::BackupsFailed), Some(1));
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["Function"], "create-snapshots");
    assert_eq!(line["RunId"], "req-metrics");
    assert_eq!(line["_aws"]["Timestamp"], now().timestamp_millis());
}

#[tokio::test]
async fn a_refused_event_emits_nothing() {
    let fakes = Fakes::new(now());
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        runs: create_snapshots::DataRuns::default(),
    };
    let sink = MemorySink::new();
    assert!(
        handle_with(&deps, event_json_for(MALFORMED, "req-bad"), &sink)
            .await
            .is_err()
    );
    assert!(sink.lines().is_empty());
}
