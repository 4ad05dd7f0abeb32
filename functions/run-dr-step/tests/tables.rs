//! DynamoDB tables in DR plans, step by step over in-memory fakes: a failover (and a
//! drill, when the table has one) imports the table's newest copy in the DR region, with
//! the source region down; a drill of a table without a copy restores the table's newest
//! native backup into an `lbdr-` table, validates it by item count and
//! content checksum (recorded on the backup's recovery point by its first validated
//! restore; every later restore must match it), and tears it down; a mismatch fails the
//! validation and the compensation leaves nothing behind; a retried restore does not
//! restore twice; a stale backup fails the pre-check; a bad plan is refused with every
//! problem listed.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::dr::SwitchScope;
use lifeboat_domain::dr::table_digest::{Item, Value as V};
use lifeboat_domain::{RecoveryPoint, ResourceKind, ResourceRef, Status};
use lifeboat_ports::dr::DrStore;
use lifeboat_ports::{Catalog, Clock, PortError};
use lifeboat_testkit::dr::InMemoryDrTables;
use lifeboat_testkit::dr_store::InMemoryDrStore;
use lifeboat_testkit::{InMemoryCatalog, InMemorySnapshotStore, ManualClock, RecordingNotifier};
use run_dr_step::Deps;
use serde_json::{Value, json};

use super::common::{Keys, caught, east, point, step, t0, token, west};
use super::table_fakes::{MemDns, MemParameters, MemReports, NoDatabases};

const TABLE_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";

struct World {
    deps: Deps,
    tables: Arc<InMemoryDrTables>,
    catalog: Arc<InMemoryCatalog>,
    store: Arc<InMemoryDrStore>,
    reports: Arc<MemReports>,
    parameters: Arc<MemParameters>,
    clock: Arc<ManualClock>,
}

fn item(pk: &str, qty: i64) -> Item {
    BTreeMap::from([
        ("pk".to_owned(), V::S(pk.into())),
        ("qty".to_owned(), V::N(qty.to_string())),
        ("tags".to_owned(), V::Ss(vec!["a".into(), "b".into()])),
    ])
}

fn items(n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| item(&format!("order-{i}"), i64::try_from(i).unwrap()))
        .collect()
}

impl World {
    async fn new(plan: &str, tables: InMemoryDrTables) -> Self {
        let tables = Arc::new(tables);
        let catalog = Arc::new(InMemoryCatalog::new());
        let store = Arc::new(InMemoryDrStore::default());
        let reports = Arc::new(MemReports::default());
        let clock = Arc::new(ManualClock::new(t0()));
        let parameters = Arc::new(MemParameters::default());
        store
            .put_plan(&lifeboat_domain::dr::DrPlan::from_json(plan).unwrap())
            .await
            .unwrap();
        let deps = Deps {
            catalog: catalog.clone(),
            store: store.clone(),
            snapshots: Arc::new(InMemorySnapshotStore::new()),
            databases: Arc::new(NoDatabases),
            tables: tables.clone(),
            parameters: parameters.clone(),
            dns: Arc::new(MemDns::default()),
            reports: reports.clone(),
            keys: Arc::new(Keys::OK),
            validator: Arc::new(Keys::OK),
            signing: Arc::new(Keys::OK),
            notifier: Arc::new(RecordingNotifier::new()),
            clock: clock.clone(),
            backup: None,
            switch_scope: SwitchScope::default(),
        };
        Self {
            deps,
            tables,
            catalog,
            store,
            reports,
            parameters,
            clock,
        }
    }

    /// The source table with `n` items, backed up `age` ago, the backup recorded in the
    /// catalog as create-snapshots records it. Returns the backup's ARN.
    async fn backed_up(&self, n: usize, age: Duration, name: &str) -> (String, RecoveryPoint) {
        if self.tables.table_names(&east()).is_empty() {
            self.tables.put_table(&east(), "orders", &["by-customer"], items(n));
        } else {
            self.tables.set_items(&east(), "orders", items(n));
        }
        let taken = t0() - age;
        let arn = self.tables.backup(&east(), "orders", name, taken).unwrap();
        let resource = ResourceRef {
            kind: ResourceKind::DynamoDbTable,
            id: "orders".into(),
            arn: TABLE_ARN.into(),
            region: east(),
        };
        let rp = RecoveryPoint {
            snapshot_arn: Some(arn.clone()),
            ..point(&resource, &east(), &format!("lb-gold-orders-{name}"), taken)
        };
        self.catalog.insert(&rp).await.unwrap();
        (arn, rp)
    }

    /// The backup's copy in us-west-2: an export of the table at the backup's time (the
    /// table is unchanged since), recorded as copy-snapshots records a completed copy.
    async fn copied(&self, rp: &RecoveryPoint) -> RecoveryPoint {
        assert!(self.tables.export(&east(), "orders", &west(), &rp.snapshot_name));
        let copy = RecoveryPoint::new(
            &rp.resource,
            &rp.policy,
            rp.slot,
            &west(),
            &rp.snapshot_name,
            Status::Available,
            rp.created_at,
        );
        self.catalog.insert(&copy).await.unwrap();
        copy
    }

    async fn step(&self, action: &str, execution: &str) -> Result<Value, FunctionError> {
        step(
            &self.deps,
            action,
            json!({"plan": "orders-dr", "execution": execution, "mode": "drill"}),
        )
        .await
    }

    /// A failover or failback step, with a confirmation token issued to the on-call.
    async fn confirmed(&self, action: &str, execution: &str, mode: &str) -> Result<Value, FunctionError> {
        let (token, _) = token(
            &self.store,
            "orders-dr",
            mode,
            ONCALL,
            self.clock.now(),
            &format!("nonce-{execution}"),
        )
        .await;
        step(
            &self.deps,
            action,
            json!({"plan": "orders-dr", "execution": execution, "mode": mode,
                   "principal": ONCALL, "token": token}),
        )
        .await
    }

    async fn compensate(&self, execution: &str, error: &FunctionError) -> Value {
        step(
            &self.deps,
            "compensate",
            json!({"plan": "orders-dr", "execution": execution, "mode": "drill", "error": caught(error)}),
        )
        .await
        .unwrap()
    }

    /// Runs a drill through validation; the error of the first step that fails.
    async fn drill_to_validation(&self, execution: &str) -> Result<(), FunctionError> {
        for action in ["precheck", "choose-source", "restore"] {
            self.step(action, execution).await?;
        }
        self.clock.advance(Duration::seconds(30));
        self.tables.finish_restores();
        let polled = self.step("poll", execution).await?;
        assert_eq!(polled["ready"], true, "{polled}");
        self.step("validate", execution).await?;
        Ok(())
    }
}

const PLAN: &str = r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
    "tables": [{"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"}],
    "rto": "30m", "rpo": "1h", "poll_interval": "1s"}"#;

#[tokio::test]
async fn a_drill_restores_the_newest_backup_validates_its_content_and_tears_it_down() {
    let w = World::new(PLAN, InMemoryDrTables::with_slow_restores()).await;
    // An older backup, and the newest one (10 minutes old): the newest is restored.
    w.backed_up(3, Duration::minutes(50), "old").await;
    let (arn, rp) = w.backed_up(25, Duration::minutes(10), "new").await;

    for action in ["precheck", "choose-source", "restore"] {
        w.step(action, "drill-1").await.unwrap();
    }
    let exec = w.store.get_execution("orders-dr", "drill-1").await.unwrap().unwrap();
    let t = &exec.tables[0];
    assert!(
        t.target_name.starts_with("lbdr-") && t.target_name.ends_with("-orders"),
        "{t:?}"
    );
    assert_eq!(t.backup_arn.as_deref(), Some(arn.as_str()));
    assert!(
        t.reason.contains("newest usable native backup") && t.reason.contains("10m"),
        "{}",
        t.reason
    );
    // Still restoring: the poll waits.
    let polled = w.step("poll", "drill-1").await.unwrap();
    assert_eq!(polled["ready"], false, "{polled}");
    w.tables.finish_restores();
    w.clock.advance(Duration::seconds(40));
    assert_eq!(w.step("poll", "drill-1").await.unwrap()["ready"], true);
    let validated = w.step("validate", "drill-1").await.unwrap();
    assert!(
        validated["summary"].as_str().unwrap().contains("1 table(s)"),
        "{validated}"
    );

    // The first validated restore of the backup records its content on the recovery point.
    let recorded = w.catalog.get(&rp.id).await.unwrap().unwrap();
    let c = recorded.table_checksum().cloned().unwrap();
    assert_eq!(c.items, 25);
    assert!(c.checksum.starts_with("sha256-sum256-v1:"), "{c:?}");
    assert_eq!(c.restored_as, t.target_name);
    // Two writes: the drill's hold when it chose the backup, then the content.
    assert_eq!(recorded.version, rp.version + 2);
    assert_eq!(recorded.holds.in_use_by.as_deref(), Some("DR execution drill-1"));
    assert!(recorded.verified_at.is_some());

    for action in ["switch", "teardown", "finish"] {
        w.step(action, "drill-1").await.unwrap();
    }
    let released = w.catalog.get(&rp.id).await.unwrap().unwrap();
    assert_eq!(released.holds.in_use_by, None, "released when the drill ends");
    assert_eq!(
        w.tables.table_names(&east()),
        vec!["orders".to_owned()],
        "only the source is left"
    );
    assert_eq!(w.tables.deleted(), vec![t.target_name.clone()]);
    let report = w.reports.0.lock().unwrap()["dr-reports/orders-dr/drill-1.json"].clone();
    assert_eq!(report["status"], "succeeded", "{report:#}");
    let table = &report["tables"][0];
    assert_eq!(table["content"]["items"], 25, "{report:#}");
    assert_eq!(table["content"]["checksum"].as_str(), Some(c.checksum.as_str()));
    assert_eq!(table["backup_item_count"], 25);
    assert!(table["verdict"].as_str().unwrap().starts_with("passed"), "{report:#}");
    // RPO = drill time − backup time.
    assert_eq!(report["measurement"]["rpo_secs"], 600, "{report:#}");
    assert!(
        report["compensations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["done"] == true)
    );
}

#[tokio::test]
async fn a_second_restore_with_other_content_fails_validation_and_leaves_nothing() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    let (arn, rp) = w.backed_up(12, Duration::minutes(10), "b1").await;
    w.drill_to_validation("first").await.unwrap();
    for action in ["teardown", "finish"] {
        w.step(action, "first").await.unwrap();
    }
    let first = w
        .catalog
        .get(&rp.id)
        .await
        .unwrap()
        .unwrap()
        .table_checksum()
        .cloned()
        .unwrap();

    // The backup's content changes behind Lifeboat's back (one value altered).
    let mut altered = items(12);
    altered[4].insert("qty".into(), V::N("999".into()));
    w.tables.tamper_backup(&arn, altered);
    let err = w.drill_to_validation("second").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Conflict, "{err:?}");
    assert!(err.message.contains("content differs"), "{}", err.message);
    let exec = w.store.get_execution("orders-dr", "second").await.unwrap().unwrap();
    let t = &exec.tables[0];
    assert_eq!(t.content.as_ref().unwrap().items, 12, "same count, other content");
    assert_ne!(t.content.as_ref().unwrap().checksum, first.checksum);
    assert!(t.verdict.as_deref().unwrap().starts_with("failed"), "{t:?}");
    // The recorded checksum is never overwritten by a later restore.
    assert_eq!(
        w.catalog
            .get(&rp.id)
            .await
            .unwrap()
            .unwrap()
            .table_checksum()
            .cloned()
            .unwrap(),
        first
    );

    let out = w.compensate("second", &err).await;
    assert_eq!(out["left"], json!([]), "{out}");
    assert_eq!(w.tables.table_names(&east()), vec!["orders".to_owned()]);
    let exec = w.store.get_execution("orders-dr", "second").await.unwrap().unwrap();
    assert_eq!(exec.status, lifeboat_domain::dr::ExecStatus::Failed);
}

#[tokio::test]
async fn a_retried_restore_finds_its_table_and_a_foreign_table_is_never_deleted() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    w.backed_up(5, Duration::minutes(10), "b1").await;
    for action in ["precheck", "choose-source", "restore"] {
        w.step(action, "retry").await.unwrap();
    }
    // The crash: the record still says "chosen", DynamoDB already has the restore.
    let mut exec = w.store.get_execution("orders-dr", "retry").await.unwrap().unwrap();
    let expected = exec.version;
    exec.tables[0].phase = lifeboat_domain::dr::Phase::Chosen;
    exec.version += 1;
    w.store.update_execution(&exec, expected).await.unwrap();
    w.step("restore", "retry").await.unwrap();
    assert_eq!(w.tables.restores(), 1, "restored once");
    let exec = w.store.get_execution("orders-dr", "retry").await.unwrap().unwrap();
    assert_eq!(exec.compensations.len(), 1, "{:?}", exec.compensations);
    assert_eq!(exec.tables[0].phase, lifeboat_domain::dr::Phase::Recovering);
    let restored = exec.tables[0].target_name.clone();
    // A replayed compensation deletes it once and gives the plan back.
    let crash = FunctionError::new(ErrorType::Internal, "test crash");
    w.compensate("retry", &crash).await;
    w.compensate("retry", &crash).await;
    assert_eq!(w.tables.deleted(), vec![restored]);

    // Another execution whose target name is already taken by a table Lifeboat did not
    // restore from this backup: refused, and the compensation leaves that table alone.
    let name = lifeboat_domain::dr::execution::table_name("lbdr", "squatted", "orders");
    w.tables.put_table(&east(), &name, &[], items(1));
    for action in ["precheck", "choose-source"] {
        w.step(action, "squatted").await.unwrap();
    }
    let err = w.step("restore", "squatted").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Conflict, "{err:?}");
    assert!(err.message.contains("not this execution's"), "{}", err.message);
    let out = w.compensate("squatted", &err).await;
    assert_eq!(out["left"], json!([]), "{out}");
    assert!(
        w.tables.table_names(&east()).contains(&name),
        "a foreign table is never deleted"
    );
    assert!(!w.tables.deleted().contains(&name));
    assert_eq!(w.tables.restores(), 1);
}

#[tokio::test]
async fn a_backup_older_than_the_rpo_fails_the_precheck_before_any_change() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    w.backed_up(5, Duration::minutes(90), "stale").await;
    let err = w.step("precheck", "stale").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Misconfigured, "{err:?}");
    assert!(
        err.message.contains("table orders: newest backup") && err.message.contains("older than the RPO 1h"),
        "{}",
        err.message
    );
    assert_eq!(
        w.store
            .get_execution("orders-dr", "stale")
            .await
            .unwrap()
            .map(|e| e.status),
        Some(lifeboat_domain::dr::ExecStatus::Refused),
        "refused before any change: recorded with its reasons"
    );
    assert_eq!(w.tables.restores(), 0);
    // The lease was given back: another start may run.
    assert!(
        w.catalog
            .acquire_lease(
                &lifeboat_domain::dr::lease_name("orders-dr"),
                "probe",
                t0() + Duration::hours(1),
                t0()
            )
            .await
            .unwrap()
    );
}

/// The deployment lets the switch write parameters under `/dr/` only (its role can write
/// nothing else): a plan switching `/orders/table` is refused by the pre-check, in a drill
/// too (the drill is where a failover's problems should show), before any change.
#[tokio::test]
async fn a_switch_outside_the_deployments_scope_is_refused_at_the_precheck() {
    let plan = PLAN.replace(
        r#""poll_interval": "1s"}"#,
        r#""poll_interval": "1s", "switch": {"region": "us-east-1", "parameters": {"/orders/table": "orders"}}}"#,
    );
    let mut w = World::new(&plan, InMemoryDrTables::new()).await;
    w.deps.switch_scope = SwitchScope::from_env(Some("/dr/"), Some("")).unwrap();
    w.backed_up(5, Duration::minutes(10), "fresh").await;
    let err = w.step("precheck", "scoped").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Misconfigured, "{err:?}");
    assert!(
        err.message
            .contains("/orders/table is outside /dr/ (DrSwitchParameterPath)"),
        "{}",
        err.message
    );
    assert_eq!(
        w.store
            .get_execution("orders-dr", "scoped")
            .await
            .unwrap()
            .map(|e| e.status),
        Some(lifeboat_domain::dr::ExecStatus::Refused),
        "refused before any change: recorded with its reasons"
    );
    assert_eq!(w.tables.restores(), 0);

    // Under the path, the same plan passes.
    w.store
        .put_plan(&lifeboat_domain::dr::DrPlan::from_json(&plan.replace("/orders/table", "/dr/orders/table")).unwrap())
        .await
        .unwrap();
    w.step("precheck", "scoped-2").await.unwrap();
}

#[tokio::test]
async fn a_bad_plan_is_refused_with_every_problem_listed() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    w.store.put_raw_plan(
        "orders-dr",
        r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
            "tables": [{"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/x"},
                       {"arn": "arn:aws:s3:::orders"}],
            "rto": "30m", "rpo": "forever"}"#,
    );
    let err = w.step("precheck", "bad").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Misconfigured, "{err:?}");
    for needle in ["tables[0].arn", "tables[1].arn", "rpo:"] {
        assert!(err.message.contains(needle), "{needle} not in {}", err.message);
    }
    // A plan that does not parse names no execution to record: GET /dr/plans shows its problems.
    assert!(w.store.get_execution("orders-dr", "bad").await.unwrap().is_none());
}

/// The outage a failover is for: DynamoDB in the table's region cannot be reached. The
/// table comes back in the DR region, imported from its copy there, and is validated by
/// item count and checksum; nothing is asked of the failed region.
#[tokio::test]
async fn a_failover_with_the_source_region_down_imports_the_table_in_the_dr_region() {
    let w = World::new(PLAN, InMemoryDrTables::with_slow_restores()).await;
    let (_, rp) = w.backed_up(8, Duration::minutes(10), "b1").await;
    let copy = w.copied(&rp).await;
    w.tables.outage(&east());
    for action in ["precheck", "choose-source", "restore"] {
        w.confirmed(action, "fo", "failover").await.unwrap();
    }
    let polled = w.confirmed("poll", "fo", "failover").await.unwrap();
    assert_eq!(polled["ready"], false, "the import is still running: {polled}");
    w.tables.finish_restores();
    w.clock.advance(Duration::seconds(30));
    assert_eq!(w.confirmed("poll", "fo", "failover").await.unwrap()["ready"], true);
    for action in ["validate", "switch", "teardown", "finish"] {
        w.confirmed(action, "fo", "failover").await.unwrap();
    }
    let exec = w.store.get_execution("orders-dr", "fo").await.unwrap().unwrap();
    let t = &exec.tables[0];
    assert_eq!(t.target_region, west(), "{t:?}");
    assert!(t.target_name.starts_with("lbfo-"), "{t:?}");
    assert_eq!(t.copy.as_deref(), Some(copy.snapshot_name.as_str()));
    assert!(t.reason.contains("newest usable copy"), "{}", t.reason);
    assert!(w.tables.table_names(&west()).contains(&t.target_name));
    assert_eq!((w.tables.imports(), w.tables.restores()), (1, 0));
    assert_eq!(t.content.as_ref().unwrap().items, 8);
    assert!(t.verdict.as_deref().unwrap().starts_with("passed"), "{t:?}");
    // The copy's first validated restore recorded its content.
    let recorded = w.catalog.get(&copy.id).await.unwrap().unwrap();
    assert_eq!(recorded.table_checksum().cloned().unwrap().items, 8);
    assert_eq!(exec.status, lifeboat_domain::dr::ExecStatus::Succeeded);
}

/// Without a copy in the DR region a failover cannot bring the table back: the pre-check
/// says so before any change (it never falls back to the failed region's backups).
#[tokio::test]
async fn a_failover_without_a_copy_in_the_dr_region_fails_the_precheck() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    w.backed_up(8, Duration::minutes(10), "b1").await;
    let err = w.confirmed("precheck", "fo", "failover").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Misconfigured, "{err:?}");
    assert!(
        err.message.contains("table orders: no usable copy in us-west-2"),
        "{}",
        err.message
    );
    assert_eq!((w.tables.imports(), w.tables.restores()), (0, 0));
}

/// A drill takes the failover's path when the table has a copy: it imports the copy in
/// the DR region, validates it, and tears down only what it imported. A retried import
/// step is the same import; a table already at the target name is not this execution's
/// and is never deleted.
#[tokio::test]
async fn a_drill_imports_the_copy_in_the_dr_region_retries_it_once_and_tears_it_down() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    let (_, rp) = w.backed_up(6, Duration::minutes(10), "b1").await;
    w.copied(&rp).await;
    for action in ["precheck", "choose-source", "restore"] {
        w.step(action, "drill-c").await.unwrap();
    }
    // The crash: the record still says "chosen", without the import DynamoDB started.
    let mut exec = w.store.get_execution("orders-dr", "drill-c").await.unwrap().unwrap();
    let expected = exec.version;
    exec.tables[0].phase = lifeboat_domain::dr::Phase::Chosen;
    exec.tables[0].import_arn = None;
    exec.version += 1;
    w.store.update_execution(&exec, expected).await.unwrap();
    w.step("restore", "drill-c").await.unwrap();
    assert_eq!(w.tables.imports(), 1, "imported once");
    w.clock.advance(Duration::seconds(30));
    for action in ["poll", "validate", "switch", "teardown", "finish"] {
        w.step(action, "drill-c").await.unwrap();
    }
    let exec = w.store.get_execution("orders-dr", "drill-c").await.unwrap().unwrap();
    let t = &exec.tables[0];
    assert_eq!(t.target_region, west());
    assert!(t.verdict.as_deref().unwrap().starts_with("passed"), "{t:?}");
    assert!(w.tables.table_names(&west()).is_empty(), "torn down");
    assert_eq!(w.tables.deleted(), vec![t.target_name.clone()]);

    // A table squatting the next drill's name: refused, and left alone.
    let name = lifeboat_domain::dr::execution::table_name("lbdr", "squatted", "orders");
    w.tables.put_table(&west(), &name, &[], items(1));
    for action in ["precheck", "choose-source"] {
        w.step(action, "squatted").await.unwrap();
    }
    let err = w.step("restore", "squatted").await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Conflict, "{err:?}");
    assert!(err.message.contains("not this execution's import"), "{}", err.message);
    let out = w.compensate("squatted", &err).await;
    assert_eq!(out["left"], json!([]), "{out}");
    assert!(
        w.tables.table_names(&west()).contains(&name),
        "a foreign table is never deleted"
    );
    assert!(!w.tables.deleted().contains(&name));
}

#[tokio::test]
async fn a_failover_keeps_its_table_and_the_failback_backs_it_up_before_deleting_it() {
    let plan = PLAN.replace(
        r#""poll_interval": "1s"}"#,
        r#""poll_interval": "1s", "switch": {"region": "us-east-1", "parameters": {"/orders/table": "orders"}}}"#,
    );
    let w = World::new(&plan, InMemoryDrTables::new()).await;
    let param = || w.parameters.0.lock().unwrap().get("/orders/table").cloned();
    let (_, rp) = w.backed_up(8, Duration::minutes(10), "b1").await;
    w.copied(&rp).await;
    for action in [
        "precheck",
        "choose-source",
        "restore",
        "poll",
        "validate",
        "switch",
        "teardown",
        "finish",
    ] {
        w.confirmed(action, "fo", "failover").await.unwrap();
    }
    let exec = w.store.get_execution("orders-dr", "fo").await.unwrap().unwrap();
    let kept = exec.tables[0].target_name.clone();
    assert!(kept.starts_with("lbfo-"), "{kept}");
    assert!(
        w.tables.table_names(&west()).contains(&kept),
        "a failover's table is kept, in the DR region"
    );
    assert_eq!(
        param(),
        Some(kept.clone()),
        "applications are pointed at the restored table"
    );
    let site = w.store.site("orders-dr").await.unwrap().unwrap();
    assert_eq!(site.databases[0].id, kept);
    assert_eq!(site.databases[0].kind, ResourceKind::DynamoDbTable);

    let before = w.tables.backup_arns().len();
    w.clock.advance(Duration::hours(1));
    for action in [
        "precheck",
        "choose-source",
        "restore",
        "poll",
        "validate",
        "switch",
        "teardown",
        "teardown",
        "finish",
    ] {
        w.confirmed(action, "fb", "failback").await.unwrap();
    }
    assert_eq!(
        w.tables.table_names(&east()),
        vec!["orders".to_owned()],
        "the source is left"
    );
    assert!(w.tables.table_names(&west()).is_empty(), "the failover's table is gone");
    assert_eq!(param().as_deref(), Some("orders"), "and back at the original table");
    // One final backup of it, kept, named in the record.
    assert_eq!(w.tables.backup_arns().len(), before + 1);
    let exec = w.store.get_execution("orders-dr", "fb").await.unwrap().unwrap();
    assert!(exec.tables.is_empty(), "a failback restores no table");
    assert!(
        exec.checks
            .iter()
            .any(|c| c.contains("final backup lbfb-") && c.contains(&kept)),
        "{:?}",
        exec.checks
    );
}

// ---------------------------------------------------------------------------------------
// Confirmation tokens
// ---------------------------------------------------------------------------------------

const ONCALL: &str = "arn:aws:iam::123456789012:user/oncall";

impl World {
    /// A failover token for the plan as stored now, issued to the on-call.
    async fn failover_token(&self, nonce: &str) -> (String, lifeboat_domain::confirm::Claims) {
        token(&self.store, "orders-dr", "failover", ONCALL, self.clock.now(), nonce).await
    }

    async fn failover_precheck(&self, execution: &str, input: Value) -> Result<Value, FunctionError> {
        let mut request = json!({"plan": "orders-dr", "execution": execution, "mode": "failover"});
        for (k, v) in input.as_object().unwrap() {
            request[k] = v.clone();
        }
        step(&self.deps, "precheck", request).await
    }
}

#[tokio::test]
async fn a_retried_failover_precheck_spends_its_token_before_the_execution_exists() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    // A failover restores the table from its copy in the DR region.
    let (_, rp) = w.backed_up(8, Duration::minutes(10), "b1").await;
    w.copied(&rp).await;
    let (token, claims) = w.failover_token("n-retry").await;

    // The first attempt cannot record the token's use (a transient store error)…
    w.catalog
        .fail_next_marker_claim(PortError::Unavailable("throttled".into()));
    let err = w.failover_precheck("fo-1", json!({"token": token})).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable, "{err:?}");
    // …so no execution exists that later steps could act on with an unspent token.
    assert!(w.store.get_execution("orders-dr", "fo-1").await.unwrap().is_none());

    // The retry spends it, then records the execution.
    w.failover_precheck("fo-1", json!({"token": token})).await.unwrap();
    assert!(w.store.get_execution("orders-dr", "fo-1").await.unwrap().is_some());
    assert_eq!(
        lifeboat::confirm::consume(w.catalog.as_ref(), &claims, w.clock.now()).await,
        Err(lifeboat_domain::confirm::TokenError::Reused),
        "the token is spent"
    );
    // A retried pre-check of the same execution finds it; another token is refused there.
    w.failover_precheck("fo-1", json!({"token": token})).await.unwrap();
    let (other, _) = w.failover_token("n-other").await;
    let err = w.failover_precheck("fo-1", json!({"token": other})).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid, "{err:?}");
}

#[tokio::test]
async fn a_replayed_failover_token_is_refused_and_records_nothing() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    // A failover restores the table from its copy in the DR region.
    let (_, rp) = w.backed_up(8, Duration::minutes(10), "b1").await;
    w.copied(&rp).await;
    let (token, claims) = w.failover_token("n-replayed").await;
    // Spent already (by an earlier execution).
    lifeboat::confirm::consume(w.catalog.as_ref(), &claims, w.clock.now())
        .await
        .unwrap();
    let err = w.failover_precheck("fo-2", json!({"token": token})).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid, "{err:?}");
    assert!(err.message.contains("already used"), "{}", err.message);
    assert_eq!(
        w.store
            .get_execution("orders-dr", "fo-2")
            .await
            .unwrap()
            .map(|e| e.status),
        Some(lifeboat_domain::dr::ExecStatus::Refused),
        "refused before any change: recorded with its reasons"
    );
}

#[tokio::test]
async fn a_token_issued_before_the_plan_changed_is_refused() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    // A failover restores the table from its copy in the DR region.
    let (_, rp) = w.backed_up(8, Duration::minutes(10), "b1").await;
    w.copied(&rp).await;
    let (token, _) = w.failover_token("n-plan").await;
    // Someone edits the plan after the token was issued (its RPO, here).
    w.store
        .put_plan(&lifeboat_domain::dr::DrPlan::from_json(&PLAN.replace(r#""rpo": "1h""#, r#""rpo": "12h""#)).unwrap())
        .await
        .unwrap();
    let err = w.failover_precheck("fo-3", json!({"token": token})).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid, "{err:?}");
    assert!(err.message.contains("plan changed"), "{}", err.message);
    assert_eq!(
        w.store
            .get_execution("orders-dr", "fo-3")
            .await
            .unwrap()
            .map(|e| e.status),
        Some(lifeboat_domain::dr::ExecStatus::Refused),
        "refused before any change: recorded with its reasons"
    );
}

#[tokio::test]
async fn who_confirmed_comes_from_the_token_never_from_the_step_input() {
    let w = World::new(PLAN, InMemoryDrTables::new()).await;
    // A failover restores the table from its copy in the DR region.
    let (_, rp) = w.backed_up(8, Duration::minutes(10), "b1").await;
    w.copied(&rp).await;
    let (token, _) = w.failover_token("n-who").await;
    // The input claims someone else: it is not believed.
    w.failover_precheck(
        "fo-4",
        json!({"token": token, "principal": "arn:aws:iam::123456789012:user/mallory"}),
    )
    .await
    .unwrap();
    let exec = w.store.get_execution("orders-dr", "fo-4").await.unwrap().unwrap();
    assert_eq!(exec.principal.as_deref(), Some(ONCALL));
}

#[tokio::test]
async fn a_plan_requiring_approval_takes_only_a_token_that_carries_one() {
    let approved_plan = PLAN.replace(
        r#""poll_interval": "1s"}"#,
        r#""poll_interval": "1s",
            "approval": {"required": true, "approvers": ["arn:aws:iam::123456789012:user/approver-"]}}"#,
    );
    let w = World::new(&approved_plan, InMemoryDrTables::new()).await;
    let (_, rp) = w.backed_up(8, Duration::minutes(10), "b1").await;
    w.copied(&rp).await;
    // A valid token, but issued without a second person's approval: refused, recorded.
    let (unapproved, _) = w.failover_token("n-plain").await;
    let err = w
        .failover_precheck("fo-5", json!({"token": unapproved}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid, "{err:?}");
    assert!(err.message.contains("approval"), "{}", err.message);
    assert_eq!(
        w.store
            .get_execution("orders-dr", "fo-5")
            .await
            .unwrap()
            .map(|e| e.status),
        Some(lifeboat_domain::dr::ExecStatus::Refused)
    );
    // The token the API hands out after approval carries it: accepted, the approver named.
    let plan = w.store.get_plan("orders-dr").await.unwrap().unwrap().unwrap();
    let digest = lifeboat_domain::confirm::dr_request_digest(&plan, "failover").unwrap();
    let approver = "arn:aws:iam::123456789012:user/approver-dave";
    let (with_approval, _) = lifeboat_domain::confirm::issue_approved(
        &super::common::signing_key(),
        &digest,
        ONCALL,
        w.clock.now(),
        Duration::minutes(5),
        "n-approved",
        Some(lifeboat_domain::confirm::ApprovalClaim {
            id: "7c0e".into(),
            approved_by: approver.into(),
        }),
    )
    .unwrap();
    w.failover_precheck("fo-6", json!({"token": with_approval}))
        .await
        .unwrap();
    let exec = w.store.get_execution("orders-dr", "fo-6").await.unwrap().unwrap();
    assert_eq!(
        (exec.principal.as_deref(), exec.approved_by.as_deref()),
        (Some(ONCALL), Some(approver))
    );
}
