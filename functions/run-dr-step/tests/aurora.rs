//! Aurora clusters restored by a drill or failover over in-memory fakes: a cluster
//! restored from a snapshot gets its writer instance, whose class is the plan's, the
//! source writer's as read now, or, when the source cannot be read (its region is down),
//! the class recorded with the snapshot when it was taken.

use std::sync::Arc;

use chrono::Duration;
use lifeboat_domain::{ResourceKind, ResourceRef};
use lifeboat_ports::dr::DrStore;
use lifeboat_testkit::dr::{InMemoryDns, InMemoryDrDatabases, InMemoryDrTables, InMemoryParameters, InMemoryReports};
use lifeboat_testkit::dr_store::InMemoryDrStore;
use lifeboat_testkit::{InMemoryCatalog, InMemorySnapshotStore, ManualClock, RecordingNotifier};
use run_dr_step::Deps;
use serde_json::{Value, json};

use super::common::{Keys, east, point, proven, step, t0, west};

const CLUSTER_ARN: &str = "arn:aws:rds:us-east-1:123456789012:cluster:ledger";

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
    let rp = point(&resource, &west(), "lb-gold-ledger-copy", taken).with_writer_class(writer_class.map(str::to_owned));
    proven(&catalog, &rp, taken + Duration::minutes(5)).await;
    let deps = Deps {
        catalog,
        store,
        snapshots,
        databases: dbs.clone(),
        tables: Arc::new(InMemoryDrTables::new()),
        parameters: Arc::new(InMemoryParameters::default()),
        dns: Arc::new(InMemoryDns::default()),
        reports: Arc::new(InMemoryReports::default()),
        keys: Arc::new(Keys::OK),
        validator: Arc::new(Keys::OK),
        signing: Arc::new(Keys::OK),
        notifier: Arc::new(RecordingNotifier::new()),
        clock: Arc::new(ManualClock::new(t0())),
        backup: None,
        switch_scope: lifeboat_domain::dr::SwitchScope::default(),
    };
    (deps, dbs)
}

async fn drill(deps: &Deps, action: &str) -> Result<Value, lifeboat::FunctionError> {
    step(
        deps,
        action,
        json!({"plan": "ledger-dr", "execution": "d1", "mode": "drill"}),
    )
    .await
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
