//! Aurora clusters restored by a drill or failover over in-memory fakes: a cluster
//! restored from a snapshot gets its writer instance, whose class is the plan's, the
//! source writer's as read now, or, when the source cannot be read (its region is down),
//! the class recorded with the snapshot when it was taken.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use lifeboat_domain::confirm::SigningKey;
use lifeboat_domain::{PolicyName, RecoveryPoint, Region, ResourceKind, ResourceRef, Slot, Status};
use lifeboat_ports::dr::DrStore;
use lifeboat_ports::keys::{KmsKeys, SigningKeys};
use lifeboat_ports::lambda::ValidationLambda;
use lifeboat_ports::{Catalog, PortResult};
use lifeboat_testkit::dr::{InMemoryDns, InMemoryDrDatabases, InMemoryDrTables, InMemoryParameters, InMemoryReports};
use lifeboat_testkit::dr_store::InMemoryDrStore;
use lifeboat_testkit::{InMemoryCatalog, InMemorySnapshotStore, ManualClock, RecordingNotifier};
use run_dr_step::{Deps, StepRequest};
use serde_json::{Value, json};

const CLUSTER_ARN: &str = "arn:aws:rds:us-east-1:123456789012:cluster:ledger";

fn east() -> Region {
    Region::parse("us-east-1").unwrap()
}

fn west() -> Region {
    Region::parse("us-west-2").unwrap()
}

fn t0() -> DateTime<Utc> {
    "2026-11-23T03:00:00Z".parse().unwrap()
}

#[derive(Debug)]
struct Keys;

#[async_trait]
impl KmsKeys for Keys {
    async fn usable(&self, _: &Region, _: &str) -> PortResult<bool> {
        Ok(true)
    }
}

#[async_trait]
impl ValidationLambda for Keys {
    async fn invoke(&self, _: &str, _: &Value) -> PortResult<Result<Value, String>> {
        Ok(Ok(json!({"ok": true})))
    }
}

#[async_trait]
impl SigningKeys for Keys {
    async fn key(&self) -> PortResult<SigningKey> {
        Ok(SigningKey::new(vec![7; 32]).unwrap())
    }
}

/// A plan of one Aurora cluster with no `instance_class`, whose source cannot be read
/// (nothing answers for it in the source region), and a verified copy in the DR region
/// that records `writer_class`.
async fn world(writer_class: Option<&str>) -> (Deps, Arc<InMemoryDrDatabases>) {
    let catalog = Arc::new(InMemoryCatalog::new());
    let store = Arc::new(InMemoryDrStore::default());
    let snapshots = Arc::new(InMemorySnapshotStore::new());
    let dbs = Arc::new(InMemoryDrDatabases::with_snapshots(snapshots.clone()));
    store
        .put_plan(
            &lifeboat_domain::dr::DrPlan::from_json(&format!(
                r#"{{"name": "ledger-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
                    "databases": [{{"arn": "{CLUSTER_ARN}"}}], "network": {{"allow_default_network": true}},
                    "rto": "30m", "rpo": "1h", "poll_interval": "1s"}}"#
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let resource = ResourceRef {
        kind: ResourceKind::AuroraCluster,
        id: "ledger".into(),
        arn: CLUSTER_ARN.into(),
        region: east(),
    };
    let taken = t0() - Duration::minutes(10);
    let rp = RecoveryPoint {
        verified_at: Some(taken),
        writer_class: writer_class.map(str::to_owned),
        ..RecoveryPoint::new(
            &resource,
            &PolicyName::parse("gold").unwrap(),
            Slot::parse_compact(&taken.format("%Y%m%d-%H%M").to_string()).unwrap(),
            &west(),
            "lb-gold-ledger-copy",
            Status::Available,
            taken,
        )
    };
    catalog.insert(&rp).await.unwrap();
    let deps = Deps {
        catalog,
        store,
        snapshots,
        databases: dbs.clone(),
        tables: Arc::new(InMemoryDrTables::new()),
        parameters: Arc::new(InMemoryParameters::default()),
        dns: Arc::new(InMemoryDns::default()),
        reports: Arc::new(InMemoryReports::default()),
        keys: Arc::new(Keys),
        validator: Arc::new(Keys),
        signing: Arc::new(Keys),
        notifier: Arc::new(RecordingNotifier::new()),
        clock: Arc::new(ManualClock::new(t0())),
        backup: None,
        switch_scope: lifeboat_domain::dr::SwitchScope::default(),
    };
    (deps, dbs)
}

async fn drill(deps: &Deps, action: &str) -> Result<Value, lifeboat::FunctionError> {
    let req = StepRequest::parse(&json!({"action": action,
        "request": {"plan": "ledger-dr", "execution": "d1", "mode": "drill"}}))
    .unwrap();
    run_dr_step::run(deps, &req, "run-1").await
}

#[tokio::test]
async fn a_restored_cluster_gets_its_writer_with_the_class_recorded_with_the_snapshot() {
    let (deps, dbs) = world(Some("db.r6g.xlarge")).await;
    for action in ["precheck", "choose-source", "restore", "poll", "poll"] {
        drill(&deps, action).await.unwrap();
    }
    let writers = dbs.writers();
    assert_eq!(writers.len(), 1, "{writers:?}");
    assert!(
        writers[0].0.starts_with("lbdr-") && writers[0].0.ends_with("-w1"),
        "{writers:?}"
    );
    assert_eq!(writers[0].1, "db.r6g.xlarge");
    assert!(!dbs.exists(&east(), "ledger"), "the source was never there to read");
}

#[tokio::test]
async fn without_a_class_from_the_plan_the_source_or_the_snapshot_the_precheck_refuses() {
    let (deps, dbs) = world(None).await;
    let err = drill(&deps, "precheck").await.unwrap_err();
    assert!(err.message.contains("instance_class"), "{err}");
    assert_eq!(dbs.restores(), 0);
    assert!(dbs.writers().is_empty());
}
