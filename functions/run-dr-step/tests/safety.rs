//! What a DR execution may never destroy, step by step over in-memory fakes: once the
//! switch began pointing endpoints at the recovered databases, a failure (of the switch
//! itself, of the finish, of a failback's teardown) leaves them running, raises one
//! critical alert and records the execution as needing an operator, with what was done
//! and what remains; before the switch a failure is compensated as always. Every database
//! Lifeboat deletes is one it made for the plan (re-read and checked just before), and
//! everything but a drill's throwaway copy leaves a final snapshot, recorded in the
//! execution and its report.

use std::sync::Arc;

use chrono::Duration;
use lifeboat::FunctionError;
use lifeboat_domain::dr::{DrExecution, ExecStatus};
use lifeboat_domain::{ResourceKind, ResourceRef, Severity};
use lifeboat_ports::dr::ActiveSide;
use lifeboat_ports::dr::DrStore;
use lifeboat_ports::{Clock, SnapshotStore, Tag};
use lifeboat_testkit::dr::Deleted;
use lifeboat_testkit::dr::{InMemoryDns, InMemoryDrDatabases, InMemoryDrTables, InMemoryParameters, InMemoryReports};
use lifeboat_testkit::dr_store::InMemoryDrStore;
use lifeboat_testkit::{InMemoryCatalog, InMemorySnapshotStore, ManualClock, RecordingNotifier};
use run_dr_step::Deps;
use serde_json::{Value, json};

use super::common::{Keys, caught, east, point, proven, step, t0, token, west};

const DB_ARN: &str = "arn:aws:rds:us-east-1:123456789012:db:orders";
const PARAM: &str = "/orders/db-endpoint";
const RECORD: &str = "orders-db.example.com.";
const WHO: &str = "arn:aws:iam::123456789012:user/oncall";
/// The failback's quiesce: a read-only flag, and the CNAME pointed at a maintenance host.
const READ_ONLY: &str = "/orders/read-only";
const MAINTENANCE: &str = "maintenance.example.com";
const QUIESCE: &str = r#", "quiesce": {"parameters": {"/orders/read-only": "true"},
                         "records": {"orders-db.example.com.": "maintenance.example.com"}, "settle": "30s"}"#;

struct World {
    deps: Deps,
    snapshots: Arc<InMemorySnapshotStore>,
    dbs: Arc<InMemoryDrDatabases>,
    store: Arc<InMemoryDrStore>,
    reports: Arc<InMemoryReports>,
    parameters: Arc<InMemoryParameters>,
    dns: Arc<InMemoryDns>,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<ManualClock>,
}

/// A plan of one DB instance whose endpoint is an SSM parameter and a CNAME, quiesced
/// for a failback by a read-only flag and a maintenance CNAME; `extra` is spliced into the
/// plan document.
fn plan(extra: &str) -> String {
    plan_with(QUIESCE, extra)
}

fn plan_with(quiesce: &str, extra: &str) -> String {
    format!(
        r#"{{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
            "databases": [{{"arn": "{DB_ARN}"}}],
            "rto": "30m", "rpo": "1h", "poll_interval": "1s",
            "switch": {{"region": "us-east-1", "parameters": {{"{PARAM}": "orders"}},
                        "hosted_zone_id": "Z1", "records": {{"{RECORD}": "orders"}} {quiesce}}},
            "prechecks": {{"source_kms_key_id": "alias/source"}},
            "network": {{"allow_default_network": true}} {extra}}}"#
    )
}

impl World {
    async fn new(plan: &str, validation_ok: bool) -> Self {
        let catalog = Arc::new(InMemoryCatalog::new());
        let store = Arc::new(InMemoryDrStore::default());
        let reports = Arc::new(InMemoryReports::default());
        let clock = Arc::new(ManualClock::new(t0()));
        let parameters = Arc::new(InMemoryParameters::default());
        let dns = Arc::new(InMemoryDns::default());
        let snapshots = Arc::new(InMemorySnapshotStore::new());
        let dbs = Arc::new(InMemoryDrDatabases::with_snapshots(snapshots.clone()));
        let notifier = Arc::new(RecordingNotifier::new());
        store
            .put_plan(&lifeboat_domain::dr::DrPlan::from_json(plan).unwrap())
            .await
            .unwrap();
        // The production database, its endpoint, and a verified copy in the DR region.
        dbs.put(&east(), ResourceKind::RdsInstance, "orders", Vec::new());
        lifeboat_ports::dr::Parameters::put(parameters.as_ref(), &east(), PARAM, "orders.primary")
            .await
            .unwrap();
        lifeboat_ports::dr::DnsRecords::upsert_cname(dns.as_ref(), "Z1", RECORD, "orders.primary", 60)
            .await
            .unwrap();
        let resource = ResourceRef {
            kind: ResourceKind::RdsInstance,
            id: "orders".into(),
            arn: DB_ARN.into(),
            region: east(),
        };
        let taken = t0() - Duration::minutes(10);
        let rp = point(&resource, &west(), "lb-gold-orders-copy", taken);
        proven(&catalog, &rp, taken + Duration::minutes(5)).await;
        let deps = Deps {
            catalog,
            store: store.clone(),
            snapshots: snapshots.clone(),
            databases: dbs.clone(),
            tables: Arc::new(InMemoryDrTables::new()),
            parameters: parameters.clone(),
            dns: dns.clone(),
            reports: reports.clone(),
            keys: Arc::new(Keys { validation_ok }),
            validator: Arc::new(Keys { validation_ok }),
            signing: Arc::new(Keys { validation_ok }),
            notifier: notifier.clone(),
            clock: clock.clone(),
            backup: None,
            switch_scope: lifeboat_domain::dr::SwitchScope::default(),
        };
        Self {
            deps,
            snapshots,
            dbs,
            store,
            reports,
            parameters,
            dns,
            notifier,
            clock,
        }
    }

    /// One step of a failover or failback, with a confirmation token issued to the
    /// on-call; `error` is what a Catch put in `$.error`.
    async fn step(
        &self,
        action: &str,
        execution: &str,
        mode: &str,
        error: Option<&FunctionError>,
    ) -> Result<Value, FunctionError> {
        let (token, _) = token(
            &self.store,
            "orders-dr",
            mode,
            WHO,
            self.clock.now(),
            &format!("nonce-{execution}"),
        )
        .await;
        let mut request = json!({"plan": "orders-dr", "execution": execution, "mode": mode,
                                 "principal": WHO, "token": token});
        if let Some(e) = error {
            request["error"] = caught(e);
        }
        step(&self.deps, action, request).await
    }

    /// Runs `actions` in order; the first error, with the step that raised it.
    async fn run(&self, execution: &str, mode: &str, actions: &[&str]) -> Result<(), (String, FunctionError)> {
        for action in actions {
            self.step(action, execution, mode, None)
                .await
                .map_err(|e| ((*action).to_owned(), e))?;
        }
        Ok(())
    }

    async fn exec(&self, execution: &str) -> DrExecution {
        self.store.get_execution("orders-dr", execution).await.unwrap().unwrap()
    }

    fn ours(&self, execution: &str) -> Vec<lifeboat_domain::Alert> {
        self.notifier
            .alerts()
            .into_iter()
            .filter(|a| a.details.get("execution").map(String::as_str) == Some(execution))
            .collect()
    }
}

const UP_TO_SWITCH: [&str; 6] = ["precheck", "choose-source", "restore", "poll", "validate", "switch"];

#[tokio::test]
async fn a_failure_after_the_switch_leaves_the_failover_database_running_and_asks_for_an_operator() {
    let w = World::new(&plan(r#", "rehearsal_fault": "switch""#), true).await;
    let (step, err) = w.run("fo", "failover", &UP_TO_SWITCH).await.unwrap_err();
    assert_eq!(step, "switch", "{err:?}");
    let exec = w.exec("fo").await;
    let restored = exec.databases[0].target_id.clone();
    let endpoint = exec.databases[0].endpoint.clone().unwrap();
    assert!(restored.starts_with("lbfo-"), "{restored}");
    assert_eq!(w.parameters.value(PARAM).as_deref(), Some(endpoint.as_str()));

    // The state machine catches the failure into the operator hand-off.
    let out = w.step("needs-operator", "fo", "failover", Some(&err)).await.unwrap();
    assert_eq!(out["status"], "needs-operator", "{out}");
    assert!(
        w.dbs.exists(&west(), &restored),
        "the failover database is left running"
    );
    assert!(w.dbs.deleted().is_empty(), "{:?}", w.dbs.deleted());
    assert_eq!(
        w.parameters.value(PARAM).as_deref(),
        Some(endpoint.as_str()),
        "the endpoints are not pointed back at the failed side"
    );
    assert_eq!(w.dns.value(RECORD).as_deref(), Some(endpoint.as_str()));

    let exec = w.exec("fo").await;
    assert_eq!(exec.status, ExecStatus::NeedsOperator);
    let handoff = exec.needs_operator.clone().unwrap();
    assert!(
        handoff.reason.contains("rehearsal fault injected at step switch"),
        "{handoff:?}"
    );
    let done = handoff.done.join("\n");
    assert!(
        done.contains(&restored) && done.contains(PARAM) && done.contains(RECORD),
        "{done}"
    );
    assert!(!handoff.remaining.is_empty(), "{handoff:?}");
    // The switch completed: the site says production runs on the DR side, so a failback
    // can bring it home once the operator is done.
    let site = w.store.site("orders-dr").await.unwrap().unwrap();
    assert_eq!(site.active, ActiveSide::Dr);
    assert_eq!(site.databases[0].id, restored);
    // The report says so too.
    let report = w.reports.get("dr-reports/orders-dr/fo.json").unwrap();
    assert_eq!(report["status"], "needs-operator", "{report:#}");
    assert_eq!(report["needs_operator"]["done"], json!(handoff.done), "{report:#}");

    // One critical alert; a replayed hand-off (or a compensation reached by an older
    // definition) neither deletes anything nor alerts again.
    w.step("needs-operator", "fo", "failover", Some(&err)).await.unwrap();
    let again = w.step("compensate", "fo", "failover", Some(&err)).await.unwrap();
    assert_eq!(again["status"], "needs-operator", "{again}");
    assert!(w.dbs.exists(&west(), &restored));
    let alerts = w.ours("fo");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].severity, Severity::Critical);
    assert_eq!(alerts[0].kind.as_str(), "dr-needs-operator");
    // Later steps are refused: the execution waits for its operator.
    assert!(w.step("finish", "fo", "failover", None).await.is_err());
}

#[tokio::test]
async fn a_finish_that_cannot_write_its_report_leaves_the_switched_databases_alone() {
    let w = World::new(&plan(""), true).await;
    w.run("fo", "failover", &UP_TO_SWITCH).await.unwrap();
    // The reports bucket is gone: the finish fails after the switch.
    w.reports.set_failing(true);
    let (_, err) = w.run("fo", "failover", &["finish"]).await.unwrap_err();
    let out = w.step("needs-operator", "fo", "failover", Some(&err)).await.unwrap();
    assert_eq!(out["status"], "needs-operator", "{out}");
    let exec = w.exec("fo").await;
    assert_eq!(exec.status, ExecStatus::NeedsOperator);
    assert!(w.dbs.exists(&west(), &exec.databases[0].target_id));
    assert!(w.dbs.deleted().is_empty());
    let handoff = exec.needs_operator.unwrap();
    assert!(
        handoff.remaining.iter().any(|r| r.contains("report")),
        "the report that could not be written is named: {handoff:?}"
    );
    assert_eq!(w.ours("fo").len(), 1);
}

#[tokio::test]
async fn a_switch_that_fails_halfway_names_the_endpoints_left_to_switch() {
    let w = World::new(&plan(""), true).await;
    w.run("fo", "failover", &UP_TO_SWITCH[..5]).await.unwrap();
    // The parameter switches, then Route 53 fails.
    w.dns.set_failing(true);
    let (step, err) = w.run("fo", "failover", &["switch"]).await.unwrap_err();
    assert_eq!(step, "switch");
    let out = w.step("needs-operator", "fo", "failover", Some(&err)).await.unwrap();
    assert_eq!(out["status"], "needs-operator", "{out}");
    let exec = w.exec("fo").await;
    assert!(w.dbs.exists(&west(), &exec.databases[0].target_id));
    assert_eq!(
        w.parameters.value(PARAM),
        exec.databases[0].endpoint,
        "left as switched"
    );
    let handoff = exec.needs_operator.unwrap();
    assert!(handoff.done.iter().any(|d| d.contains(PARAM)), "{handoff:?}");
    assert!(handoff.remaining.iter().any(|r| r.contains(RECORD)), "{handoff:?}");
    // A partial switch is not a site on the DR side.
    assert!(w.store.site("orders-dr").await.unwrap().is_none());
    assert_eq!(w.ours("fo").len(), 1);
}

#[tokio::test]
async fn a_failure_before_the_switch_is_compensated_as_before() {
    let w = World::new(
        &plan(r#", "validation": {"lambda_arn": "arn:aws:lambda:us-west-2:123456789012:function:smoke"}"#),
        false,
    )
    .await;
    let (step, err) = w.run("fo", "failover", &UP_TO_SWITCH).await.unwrap_err();
    assert_eq!(step, "validate", "{err:?}");
    let restored = w.exec("fo").await.databases[0].target_id.clone();
    // Even reached through the operator hand-off (a Catch after the switch state), a
    // failure before any endpoint changed compensates.
    let out = w.step("needs-operator", "fo", "failover", Some(&err)).await.unwrap();
    assert_eq!(out["status"], "failed", "{out}");
    assert!(
        !w.dbs.exists(&west(), &restored),
        "a database that never served is removed"
    );
    // ... with a final snapshot all the same (only a drill's copy is a throwaway), named in
    // the record and in the report.
    let final_name = format!("{restored}-final");
    assert_eq!(
        w.dbs.deleted(),
        vec![Deleted {
            region: west(),
            id: restored.clone(),
            final_snapshot: Some(final_name.clone())
        }]
    );
    assert!(
        w.snapshots
            .describe_snapshot(&west(), ResourceKind::RdsInstance, &final_name)
            .await
            .unwrap()
            .is_some()
    );
    let exec = w.exec("fo").await;
    assert_eq!(exec.final_snapshots.len(), 1, "{exec:?}");
    assert_eq!(exec.final_snapshots[0].snapshot, final_name);
    assert!(exec.final_snapshots[0].confirmed);
    let report = w.reports.get("dr-reports/orders-dr/fo.json").unwrap();
    assert_eq!(
        report["final_snapshots"][0]["snapshot"],
        final_name.as_str(),
        "{report:#}"
    );
    assert_eq!(w.parameters.value(PARAM).as_deref(), Some("orders.primary"));
    assert_eq!(w.exec("fo").await.status, ExecStatus::Failed);
    assert_eq!(w.ours("fo").len(), 1);
}

#[tokio::test]
async fn a_drill_throws_its_copy_away_and_a_foreign_database_is_never_deleted() {
    let w = World::new(&plan(""), true).await;
    let drill = |action: &'static str, execution: &'static str| {
        let w = &w;
        async move {
            step(
                &w.deps,
                action,
                json!({"plan": "orders-dr", "execution": execution, "mode": "drill"}),
            )
            .await
        }
    };
    let point = lifeboat_domain::RecoveryPointId::new(&west(), ResourceKind::RdsInstance, "lb-gold-orders-copy");
    let hold = || async { w.deps.catalog.get(&point).await.unwrap().unwrap().holds.in_use_by };
    for action in [
        "precheck",
        "choose-source",
        "restore",
        "poll",
        "validate",
        "teardown",
        "finish",
    ] {
        drill(action, "d1").await.unwrap();
        if action == "choose-source" {
            assert_eq!(
                hold().await.as_deref(),
                Some("DR execution d1"),
                "held while it is read"
            );
        }
    }
    assert_eq!(hold().await, None, "released when the drill ends");
    let copy = w.exec("d1").await.databases[0].target_id.clone();
    assert!(copy.starts_with("lbdr-"), "{copy}");
    assert_eq!(
        w.dbs.deleted(),
        vec![Deleted {
            region: west(),
            id: copy,
            final_snapshot: None
        }],
        "a drill's copy never served: no final snapshot"
    );

    // A database already at the name the next drill restores into, not made by Lifeboat
    // for this plan (another execution's and plan's tags): the restore refuses to use it,
    // and the compensation leaves it alone.
    let squatter = lifeboat_domain::dr::execution::resource_name("lbdr", "d2", "orders");
    w.dbs.put(
        &west(),
        ResourceKind::RdsInstance,
        &squatter,
        vec![
            Tag::new(run_dr_step::TAG_EXECUTION, "someone-elses-run"),
            Tag::new(run_dr_step::TAG_PLAN, "someone-elses-plan"),
        ],
    );
    for action in ["precheck", "choose-source"] {
        drill(action, "d2").await.unwrap();
    }
    let err = drill("restore", "d2").await.unwrap_err();
    assert!(
        err.message.contains(&squatter) && err.message.contains("is not this execution's"),
        "{err}"
    );
    assert_eq!(w.dbs.restores(), 1, "nothing restored over or beside it");
    let out = step(
        &w.deps,
        "compensate",
        json!({"plan": "orders-dr", "execution": "d2", "mode": "drill",
               "error": {"Error": err.kind.as_str(), "Cause": "{}"}}),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], "failed", "{out}");
    assert_eq!(hold().await, None, "released when the drill is compensated");
    assert!(w.dbs.exists(&west(), &squatter), "a foreign database is never deleted");
    assert_eq!(w.dbs.deleted().len(), 1, "{:?}", w.dbs.deleted());
    let exec = w.exec("d2").await;
    assert!(
        exec.checks
            .iter()
            .any(|c| c.contains(&squatter) && c.contains("left alone")),
        "{:?}",
        exec.checks
    );
}

#[tokio::test]
async fn a_failback_tears_the_failover_databases_down_with_a_final_snapshot_each() {
    let w = World::new(&plan(""), true).await;
    let all = [
        "precheck",
        "choose-source",
        "restore",
        "poll",
        "validate",
        "switch",
        "teardown",
        "finish",
    ];
    w.run("fo", "failover", &all).await.unwrap();
    let failover_db = w.exec("fo").await.databases[0].target_id.clone();
    w.clock.advance(Duration::hours(2));
    w.run("fb", "failback", &all[..4]).await.unwrap();
    // Writes settle, then the DR-side snapshot and its copy: polled until ready.
    w.clock.advance(Duration::seconds(31));
    for _ in 0..5 {
        if w.step("poll", "fb", "failback", None).await.unwrap()["ready"] == true {
            break;
        }
    }
    w.run("fb", "failback", &all[4..]).await.unwrap();
    let exec = w.exec("fb").await;
    assert_eq!(exec.status, ExecStatus::Succeeded, "{exec:?}");
    let final_name = format!("{failover_db}-final");
    assert_eq!(
        w.dbs.deleted(),
        vec![Deleted {
            region: west(),
            id: failover_db.clone(),
            final_snapshot: Some(final_name.clone())
        }]
    );
    assert!(
        w.snapshots
            .describe_snapshot(&west(), ResourceKind::RdsInstance, &final_name)
            .await
            .unwrap()
            .is_some(),
        "the failover database's data survives its deletion"
    );
    assert_eq!(exec.final_snapshots.len(), 1);
    assert!(exec.final_snapshots[0].confirmed);
    let report = w.reports.get("dr-reports/orders-dr/fb.json").unwrap();
    assert_eq!(
        report["final_snapshots"][0]["database"],
        failover_db.as_str(),
        "{report:#}"
    );
}

#[tokio::test]
async fn a_failback_stops_writes_to_the_dr_side_before_its_final_snapshot() {
    let w = World::new(&plan(""), true).await;
    let all = [
        "precheck",
        "choose-source",
        "restore",
        "poll",
        "validate",
        "switch",
        "teardown",
        "finish",
    ];
    w.run("fo", "failover", &all).await.unwrap();
    let dr_endpoint = w.exec("fo").await.databases[0].endpoint.clone().unwrap();
    assert_eq!(w.dns.value(RECORD).as_deref(), Some(dr_endpoint.as_str()));
    w.clock.advance(Duration::hours(2));

    for action in ["precheck", "choose-source"] {
        w.step(action, "fb", "failback", None).await.unwrap();
    }
    let snapshot = match &w.exec("fb").await.databases[0].source {
        Some(lifeboat_domain::dr::Source::DrSide { snapshot, .. }) => snapshot.clone(),
        other => panic!("{other:?}"),
    };
    let taken = || async {
        w.snapshots
            .describe_snapshot(&west(), ResourceKind::RdsInstance, &snapshot)
            .await
            .unwrap()
            .is_some()
    };
    // The restore step first stops the writes: the CNAME points at the maintenance host,
    // the read-only flag is set; the snapshot waits for the settle time.
    let out = w.step("restore", "fb", "failback", None).await.unwrap();
    assert_eq!(out["ready"], false, "{out}");
    assert_eq!(w.dns.value(RECORD).as_deref(), Some(MAINTENANCE));
    assert_eq!(w.parameters.value(READ_ONLY).as_deref(), Some("true"));
    assert!(!taken().await, "no snapshot before the writes settled");
    w.clock.advance(Duration::seconds(10));
    w.step("poll", "fb", "failback", None).await.unwrap();
    assert!(!taken().await, "still settling");
    w.clock.advance(Duration::seconds(21));
    w.step("poll", "fb", "failback", None).await.unwrap();
    assert!(taken().await, "taken once the writes stopped");
    for _ in 0..5 {
        if w.step("poll", "fb", "failback", None).await.unwrap()["ready"] == true {
            break;
        }
    }
    w.clock.advance(Duration::seconds(40));
    for action in ["validate", "switch"] {
        w.step(action, "fb", "failback", None).await.unwrap();
    }
    let back = w.exec("fb").await.databases[0].endpoint.clone().unwrap();
    assert!(back.contains("us-east-1"), "{back}");
    assert_eq!(
        w.dns.value(RECORD).as_deref(),
        Some(back.as_str()),
        "switched from maintenance to the source side"
    );
    assert_eq!(w.parameters.value(PARAM).as_deref(), Some(back.as_str()));
    assert_eq!(
        w.parameters.value(READ_ONLY),
        None,
        "the read-only flag is gone again, as before"
    );
    for action in ["teardown", "finish"] {
        w.step(action, "fb", "failback", None).await.unwrap();
    }
    // The report states the failback's cost: nothing lost; writes refused from the quiesce
    // until the switch (30 s settle + 40 s of copying, restoring and validating).
    let report = w.reports.get("dr-reports/orders-dr/fb.json").unwrap();
    let fb = &report["failback"];
    assert_eq!(fb["data_loss_window_secs"], 0, "{report:#}");
    assert_eq!(fb["outage_secs"], 71, "{report:#}");
    assert!(
        fb["quiesced_at"].is_string() && fb["endpoints_back_at"].is_string(),
        "{report:#}"
    );
}

#[tokio::test]
async fn a_failback_that_fails_before_its_switch_puts_the_dr_side_back_in_service() {
    let w = World::new(&plan(""), true).await;
    let all = [
        "precheck",
        "choose-source",
        "restore",
        "poll",
        "validate",
        "switch",
        "teardown",
        "finish",
    ];
    w.run("fo", "failover", &all).await.unwrap();
    let dr_endpoint = w.exec("fo").await.databases[0].endpoint.clone().unwrap();
    w.run("fb", "failback", &all[..3]).await.unwrap();
    assert_eq!(w.dns.value(RECORD).as_deref(), Some(MAINTENANCE));
    let err = FunctionError::new(lifeboat::ErrorType::Internal, "the copy to the source region failed");
    let out = w.step("compensate", "fb", "failback", Some(&err)).await.unwrap();
    assert_eq!(out["status"], "failed", "{out}");
    assert_eq!(
        w.dns.value(RECORD).as_deref(),
        Some(dr_endpoint.as_str()),
        "writes resume on the DR side"
    );
    assert_eq!(w.parameters.value(READ_ONLY), None);
    assert_eq!(w.parameters.value(PARAM).as_deref(), Some(dr_endpoint.as_str()));
    assert!(w.dbs.exists(&west(), &w.exec("fo").await.databases[0].target_id));
}

#[tokio::test]
async fn a_failback_without_a_quiesce_is_refused_before_any_change() {
    let w = World::new(&plan_with("", ""), true).await;
    let all = [
        "precheck",
        "choose-source",
        "restore",
        "poll",
        "validate",
        "switch",
        "teardown",
        "finish",
    ];
    w.run("fo", "failover", &all).await.unwrap();
    let before = w.dns.value(RECORD);
    let err = w.step("precheck", "fb", "failback", None).await.unwrap_err();
    assert_eq!(err.kind, lifeboat::ErrorType::Misconfigured, "{err:?}");
    assert!(err.message.contains("switch.quiesce"), "{}", err.message);
    assert_eq!(w.dns.value(RECORD), before);

    // The refusal is an execution of its own, listed with its reasons and a report.
    let refused = w.store.get_execution("orders-dr", "fb").await.unwrap().unwrap();
    assert_eq!(refused.status, ExecStatus::Refused);
    let refusal = refused.refusal.clone().unwrap();
    assert_eq!(refusal.kind, "Misconfigured");
    assert!(
        refusal.reasons.iter().any(|r| r.contains("switch.quiesce")),
        "{refusal:?}"
    );
    assert!(
        refused.finished_at.is_some() && refused.report_key.is_some(),
        "{refused:?}"
    );
    assert!(
        refused
            .steps
            .iter()
            .all(|s| s.action == lifeboat_domain::dr::Action::Precheck)
    );
    // A retried pre-check is refused the same way; the compensation changes nothing.
    let again = w.step("precheck", "fb", "failback", None).await.unwrap_err();
    assert_eq!((again.kind, &again.message), (err.kind, &err.message));
    let out = w.step("compensate", "fb", "failback", Some(&err)).await.unwrap();
    assert_eq!(out["status"], "refused", "{out}");
    let after = w.store.get_execution("orders-dr", "fb").await.unwrap().unwrap();
    assert_eq!(after.status, ExecStatus::Refused);
    assert_eq!(w.dns.value(RECORD), before);
    // Refused executions never hold the plan: the next start is judged on its own.
    assert!(w.step("precheck", "fb2", "failback", None).await.is_err());
    let second = w.store.get_execution("orders-dr", "fb2").await.unwrap().unwrap();
    assert!(
        second
            .refusal
            .unwrap()
            .reasons
            .iter()
            .all(|r| !r.contains("another DR execution"))
    );
}
