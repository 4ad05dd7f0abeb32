//! The DR state machine executed for real: the repository's ASL runs in moto's Step
//! Functions engine, every Lambda task reaches the real `run-dr-step` binary through the
//! bridge, against moto RDS, DynamoDB, S3, SSM, Secrets Manager and SNS.
//!
//! Not shown here because moto lacks the operations: Aurora global-database failover
//! (`FailoverGlobalCluster`, 500 NotImplemented in moto 5.2.5) is tested on mocked clients
//! in `functions/run-dr-step/tests/global_cluster.rs`; RDS quotas
//! (`DescribeAccountAttributes`, same) likewise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::Duration;

use lifeboat_domain::ResourceKind;
use lifeboat_domain::dr::{ExecStatus, Phase, lease_name};
use lifeboat_ports::Catalog;
use lifeboat_ports::dr::ActiveSide;
use lifeboat_ports::dr::DrStore;
use lifeboat_tests::dr::DrEnv;
use lifeboat_tests::{DR, PRIMARY};
use serde_json::{Value, json};

fn sample(path: &str) -> String {
    std::fs::read_to_string(lifeboat_tests::repo_root().join("events").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The plan used by most tests: an instance (plan step 1) and an Aurora cluster (step 2).
async fn estate(dr: &DrEnv, extra: &str) -> (String, String, String) {
    let db = dr.env.name("orders");
    let db_arn = dr.source_instance(&db).await.unwrap();
    let cluster = dr.env.name("ledger");
    let cluster_arn = dr.source_cluster(&cluster).await.unwrap();
    dr.proven_dr_copies(&[
        (ResourceKind::RdsInstance, &db, &db_arn),
        (ResourceKind::AuroraCluster, &cluster, &cluster_arn),
    ])
    .await
    .unwrap();
    let plan = format!(
        r#"{{"name": "{{prefix}}-dr{extra_name}", "source_region": "{PRIMARY}", "dr_region": "{DR}",
            "databases": [{{"arn": "{db_arn}"}}, {{"arn": "{cluster_arn}", "step": 2}}],
            "network": {{"allow_default_network": true}},
            "rto": "30m", "rpo": "15m", "poll_interval": "1s" {extra}}}"#,
        extra_name = if extra.is_empty() { "" } else { "-x" },
    );
    let plan = dr.put_plan(&plan).await.unwrap();
    (plan.name, db, cluster)
}

fn drill(plan: &str) -> Value {
    json!({"plan": plan, "mode": "drill"})
}

/// The execution's databases still there once their deletes have had time to finish
/// (an RDS delete takes a while, on the local stack as on AWS).
async fn leftovers(dr: &DrEnv, execution: &str) -> Vec<String> {
    let started = std::time::Instant::now();
    loop {
        let mut left = Vec::new();
        for region in [PRIMARY, DR] {
            for prefix in ["lbdr", "lbfo", "lbfb"] {
                let p = format!("{prefix}-{}", lifeboat_domain::dr::execution::short_id(execution));
                left.extend(dr.databases_named(region, &p).await.unwrap());
            }
        }
        if left.is_empty() || started.elapsed() > lifeboat_tests::WAIT_LIMIT {
            return left;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_drill_restores_validates_measures_and_tears_down() {
    let dr = DrEnv::start().await.unwrap();
    let (plan, db, cluster) = estate(&dr, "").await;
    let name = format!("{}-drill", dr.env.prefix);
    let done = dr.run(&name, drill(&plan)).await.unwrap();
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert!(
        done.output["finish"]["summary"].as_str().unwrap().contains("RTO"),
        "{done:?}"
    );

    let report = dr.report(&plan, &name).await.unwrap();
    assert_eq!(report["status"], "succeeded", "{report:#}");
    let m = &report["measurement"];
    assert!(m["rto_secs"].as_u64().is_some() && m["rto_met"] == true, "{m}");
    // The instance restores to its latest restorable time, the cluster from its DR copy
    // (taken, copied and proven by a restore test just before): the RPO is the copy's
    // age, within the plan's 15 minutes.
    let rpo = m["rpo_secs"].as_u64().unwrap();
    assert!(rpo > 0 && rpo < 900, "RPO {rpo}s");
    assert_eq!(m["rpo_met"], true);
    let dbs = report["databases"].as_array().unwrap();
    assert_eq!(dbs[0]["database"], db.as_str());
    assert_eq!(dbs[0]["source"]["type"], "point-in-time", "{report:#}");
    assert!(dbs[0]["reason"].as_str().unwrap().contains("PITR window"), "{report:#}");
    assert_eq!(dbs[1]["database"], cluster.as_str());
    assert_eq!(dbs[1]["source"]["type"], "dr-snapshot", "{report:#}");
    assert!(
        dbs[1]["reason"].as_str().unwrap().contains("newest verified copy"),
        "{report:#}"
    );
    // A cluster restored from a snapshot has no instance: its writer was created (named
    // after the cluster) and waited for before the cluster counted as ready.
    let writer = dbs[1]["writer"].as_str().unwrap_or_default();
    assert_eq!(
        writer,
        format!("{}-w1", dbs[1]["recovered_as"].as_str().unwrap()),
        "{report:#}"
    );
    // Ordered plan steps: the cluster (step 2) was ready after the instance (step 1).
    assert!(dbs[0]["ready_at"].as_str().unwrap() <= dbs[1]["ready_at"].as_str().unwrap());
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    for s in [
        "precheck",
        "choose-source",
        "restore",
        "poll",
        "validate",
        "teardown",
        "finish",
    ] {
        assert!(steps.contains(&s), "{steps:?}");
    }
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["elapsed_ms"].is_i64())
    );
    let compensations = report["compensations"].as_array().unwrap();
    assert_eq!(
        compensations.len(),
        3,
        "the instance, the cluster and its writer: {report:#}"
    );
    assert!(compensations.iter().all(|c| c["done"] == true), "torn down: {report:#}");
    assert!(leftovers(&dr, &name).await.is_empty(), "nothing left behind");

    // Recorded in the catalog, lease given back.
    let exec = dr.store().get_execution(&plan, &name).await.unwrap().unwrap();
    assert_eq!(exec.status, ExecStatus::Succeeded);
    assert!(exec.measurement.is_some() && exec.validated_at.is_some());
    let catalog = dr.env.catalog();
    let now = chrono::Utc::now();
    assert!(
        catalog
            .acquire_lease(&lease_name(&plan), "probe", now + chrono::Duration::minutes(1), now)
            .await
            .unwrap()
    );
    catalog.release_lease(&lease_name(&plan), "probe").await.unwrap();
}

#[tokio::test]
async fn a_second_start_of_a_running_plan_is_refused() {
    let dr = DrEnv::start().await.unwrap();
    let (plan, _, _) = estate(&dr, "").await;
    let first = format!("{}-first", dr.env.prefix);
    let second = format!("{}-second", dr.env.prefix);
    // The first execution holds the lease from its pre-check on; the second starts while
    // the first is still restoring.
    let started = std::time::Instant::now();
    let a = dr.start_execution(&first, drill(&plan)).await.unwrap();
    // Start the second once the first has passed its pre-check (its record exists), so
    // which one holds the lease never depends on how fast the machine is.
    let deadline = std::time::Instant::now() + Duration::from_mins(2);
    while dr.store().get_execution(&plan, &first).await.unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first execution never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = dr.start_execution(&second, drill(&plan)).await.unwrap();
    let a = dr.wait(&a, started, Duration::from_mins(3)).await.unwrap();
    let b = dr.wait(&b, started, Duration::from_mins(3)).await.unwrap();
    assert_eq!(a.status, "SUCCEEDED", "{a:?}");
    assert_eq!(
        (b.status.as_str(), b.error.as_deref()),
        ("FAILED", Some("Conflict")),
        "{b:?}"
    );
    assert_eq!(
        dr.store()
            .get_execution(&plan, &second)
            .await
            .unwrap()
            .map(|e| e.status),
        Some(lifeboat_domain::dr::ExecStatus::Refused),
        "refused before any change: recorded with its reasons"
    );
    assert!(leftovers(&dr, &second).await.is_empty());
}

#[tokio::test]
async fn failover_without_a_valid_token_is_refused_before_any_change() {
    let dr = DrEnv::start().await.unwrap();
    let (plan, _, _) = estate(&dr, "").await;
    let who = "arn:aws:iam::123456789012:user/oncall";
    let wrong_mode = dr.token(&plan, "failback", who).await.unwrap();
    for (i, input) in [
        json!({"plan": plan, "mode": "failover"}),
        json!({"plan": plan, "mode": "failover", "token": "v1.forged.token"}),
        json!({"plan": plan, "mode": "failover", "token": wrong_mode}),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("{}-refused-{i}", dr.env.prefix);
        let done = dr.run(&name, input).await.unwrap();
        assert_eq!(
            (done.status.as_str(), done.error.as_deref()),
            ("FAILED", Some("Invalid")),
            "{done:?}"
        );
        assert_eq!(
            dr.store().get_execution(&plan, &name).await.unwrap().map(|e| e.status),
            Some(lifeboat_domain::dr::ExecStatus::Refused),
            "refused before any change: recorded with its reasons"
        );
        assert!(leftovers(&dr, &name).await.is_empty());
    }

    // A plan that requires a second person's approval: a token valid in every other way but
    // issued without an approval (started on the state machine directly, not through the
    // admin API's approval) is refused by the real pre-check, recorded with its reason.
    let mut doc = dr
        .store()
        .get_plan(&plan)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .to_document();
    doc.approval = Some(lifeboat_domain::approval::ApprovalDocument {
        required: true,
        approvers: vec!["arn:aws:iam::123456789012:user/approver-".into()],
        expires: None,
    });
    dr.store()
        .put_plan(&lifeboat_domain::dr::DrPlan::from_document(&doc).unwrap())
        .await
        .unwrap();
    let unapproved = dr.token(&plan, "failover", who).await.unwrap();
    let name = format!("{}-refused-unapproved", dr.env.prefix);
    let done = dr
        .run(&name, json!({"plan": plan, "mode": "failover", "token": unapproved}))
        .await
        .unwrap();
    assert_eq!(
        (done.status.as_str(), done.error.as_deref()),
        ("FAILED", Some("Invalid")),
        "{done:?}"
    );
    let refused = dr.store().get_execution(&plan, &name).await.unwrap().unwrap();
    assert_eq!(refused.status, lifeboat_domain::dr::ExecStatus::Refused);
    assert!(
        refused
            .refusal
            .as_ref()
            .is_some_and(|r| r.reasons.iter().any(|why| why.contains("approval"))),
        "{:?}",
        refused.refusal
    );
    assert!(leftovers(&dr, &name).await.is_empty());
    assert!(dr.store().site(&plan).await.unwrap().is_none());
}

#[tokio::test]
async fn failover_then_failback() {
    let dr = DrEnv::start().await.unwrap();
    let source_key = dr.env.create_kms_key(PRIMARY).await.unwrap();
    let parameter = format!("/{}/orders/endpoint", dr.env.prefix);
    // The DNS side of the switch: a CNAME in a Route 53 zone (moto implements Route 53).
    let route53 = aws_sdk_route53::Client::new(&dr.env.primary);
    let zone = route53
        .create_hosted_zone()
        .name(format!("{}.example.", dr.env.prefix))
        .caller_reference(&dr.env.prefix)
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let record = format!("orders-db.{}.example.", dr.env.prefix);
    let cname = || async {
        lifeboat_ports::dr::DnsRecords::cname(&lifeboat_aws::dr::Route53Records::new(&dr.env.primary), &zone, &record)
            .await
            .unwrap()
    };
    lifeboat_ports::dr::DnsRecords::upsert_cname(
        &lifeboat_aws::dr::Route53Records::new(&dr.env.primary),
        &zone,
        &record,
        "orders.primary.example",
        300,
    )
    .await
    .unwrap();
    // The failback stops writes to the DR side first: the endpoint parameter points at a
    // maintenance value until the switch.
    let extra = format!(
        r#", "switch": {{"region": "{PRIMARY}", "parameters": {{"{parameter}": "{{prefix}}-orders"}},
                         "hosted_zone_id": "{zone}", "records": {{"{record}": "{{prefix}}-orders"}},
                         "quiesce": {{"parameters": {{"{parameter}": "maintenance.invalid"}}, "settle": "1s"}}}},
            "prechecks": {{"source_kms_key_id": "{source_key}"}}"#
    );
    let (plan, db, _) = estate(&dr, &extra).await;
    let ssm = dr.ssm();
    ssm.put_parameter()
        .name(&parameter)
        .value("orders.primary.example")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let value = || async {
        ssm.get_parameter()
            .name(&parameter)
            .send()
            .await
            .unwrap()
            .parameter()
            .unwrap()
            .value()
            .unwrap()
            .to_owned()
    };
    let who = "arn:aws:iam::123456789012:user/oncall";

    let failover = format!("{}-failover", dr.env.prefix);
    let token = dr.token(&plan, "failover", who).await.unwrap();
    let done = dr
        .run(
            &failover,
            json!({"plan": plan, "mode": "failover", "token": token,
                   "failure_time": chrono::Utc::now().to_rfc3339()}),
        )
        .await
        .unwrap();
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let report = dr.report(&plan, &failover).await.unwrap();
    let restored = report["databases"][0]["recovered_as"].as_str().unwrap().to_owned();
    assert!(restored.starts_with("lbfo-"), "{report:#}");
    assert_eq!(report["databases"][0]["source"]["type"], "dr-snapshot");
    assert!(
        value().await.contains(DR),
        "switched to the DR region: {}",
        value().await
    );
    let pointed = cname().await.unwrap_or_default();
    assert!(
        pointed.contains(DR) && pointed.contains(&restored),
        "DNS follows: {pointed}"
    );
    // A pre-failover recovery point of the (reachable) source.
    let pre = report["databases"][0]["pre_failover_snapshot"].as_str().unwrap();
    dr.env
        .rds(PRIMARY)
        .describe_db_snapshots()
        .db_snapshot_identifier(pre)
        .send()
        .await
        .unwrap();
    let site = dr.store().site(&plan).await.unwrap().unwrap();
    assert_eq!(site.active, ActiveSide::Dr);
    let notices: Vec<_> = dr
        .env
        .alerts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.alert.details.get("execution") == Some(&failover))
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].alert.kind.as_str(), "dr-completed");

    // The same token cannot be used twice.
    let replay = dr
        .run(
            &format!("{}-replay", dr.env.prefix),
            json!({"plan": plan, "mode": "failover", "token": token}),
        )
        .await
        .unwrap();
    assert_eq!(replay.status, "FAILED", "{replay:?}");

    let failback = format!("{}-failback", dr.env.prefix);
    let token = dr.token(&plan, "failback", who).await.unwrap();
    let done = dr
        .run(&failback, json!({"plan": plan, "mode": "failback", "token": token}))
        .await
        .unwrap();
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let report = dr.report(&plan, &failback).await.unwrap();
    let back = report["databases"][0]["recovered_as"].as_str().unwrap();
    assert!(
        back.starts_with("lbfb-") && report["databases"][0]["region"] == PRIMARY,
        "{report:#}"
    );
    assert_eq!(report["databases"][0]["source"]["type"], "dr-side", "{report:#}");
    // Writes to the DR side stopped before its snapshot: nothing lost; the outage is
    // measured from the quiesce to the switch.
    let fb = &report["failback"];
    assert_eq!(fb["data_loss_window_secs"], 0, "{report:#}");
    assert!(fb["outage_secs"].as_u64().is_some_and(|s| s >= 1), "{report:#}");
    assert!(
        fb["snapshot_at"].is_string() && fb["writes_stopped_at"].is_string(),
        "{report:#}"
    );
    let exec = dr.store().get_execution(&plan, &failback).await.unwrap().unwrap();
    assert!(
        exec.checks.iter().any(|c| c.contains("writes to the DR side stopped")),
        "{:?}",
        exec.checks
    );
    // The failover's DR-side databases were deleted with a final snapshot each.
    assert_eq!(exec.final_snapshots.len(), 2, "{:?}", exec.final_snapshots);
    for f in &exec.final_snapshots {
        assert!(f.confirmed, "{f:?}");
    }
    assert!(value().await.contains(PRIMARY), "switched back: {}", value().await);
    let pointed = cname().await.unwrap_or_default();
    assert!(
        pointed.contains(PRIMARY) && pointed.contains(back),
        "DNS switched back: {pointed}"
    );
    assert!(
        dr.databases_named(DR, &restored).await.unwrap().is_empty(),
        "the failover's DR-side database is cleaned up"
    );
    assert_eq!(
        dr.store().site(&plan).await.unwrap().unwrap().active,
        ActiveSide::Source
    );
    // The original source database is untouched.
    assert_eq!(dr.databases_named(PRIMARY, &db).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_injected_failure_at_each_step_is_compensated_and_alerted_once() {
    let dr = DrEnv::start().await.unwrap();
    let steps = ["choose-source", "restore", "poll", "validate", "teardown", "finish"];
    let mut runs = Vec::new();
    for step in steps {
        let dr = dr.clone();
        runs.push(tokio::spawn(async move {
            let db = dr.env.name(&format!("f-{step}"));
            let arn = dr.source_instance(&db).await.unwrap();
            dr.proven_dr_copy(ResourceKind::RdsInstance, &db, &arn).await.unwrap();
            let plan = dr
                .put_plan(&format!(
                    r#"{{"name": "{{prefix}}-f-{step}", "source_region": "{PRIMARY}", "dr_region": "{DR}",
                        "databases": [{{"arn": "{arn}"}}], "rto": "30m", "rpo": "15m",
                        "network": {{"allow_default_network": true}},
                        "poll_interval": "1s", "rehearsal_fault": "{step}"}}"#
                ))
                .await
                .unwrap();
            let name = format!("{}-fault-{step}", dr.env.prefix);
            let done = dr.run(&name, drill(&plan.name)).await.unwrap();
            (step, plan.name, name, done)
        }));
    }
    let mut executions = Vec::new();
    for r in runs {
        let (step, plan, name, done) = r.await.unwrap();
        assert_eq!(
            (done.status.as_str(), done.error.as_deref()),
            ("FAILED", Some("DrFailed")),
            "{step}: {done:?}"
        );
        let report = dr.report(&plan, &name).await.unwrap();
        assert_eq!(report["status"], "failed", "{step}: {report:#}");
        assert!(
            report["error"]
                .as_str()
                .unwrap()
                .contains(&format!("injected at step {step}"))
        );
        assert!(
            report["compensations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["done"] == true),
            "{step}: {report:#}"
        );
        assert!(
            leftovers(&dr, &name).await.is_empty(),
            "{step}: something was left behind"
        );
        executions.push(name);
    }
    // Exactly one alert per failed execution.
    let alerts = dr.env.alerts().await.unwrap();
    for name in &executions {
        let ours: Vec<_> = alerts
            .iter()
            .filter(|a| a.alert.details.get("execution") == Some(name))
            .collect();
        assert_eq!(ours.len(), 1, "{name}: {ours:?}");
        assert_eq!(ours[0].event_type.as_deref(), Some("dr-failed"));
    }
}

/// Failures from the emulator's state rather than a plan field: a validation Lambda that
/// does not exist, and a DR snapshot deleted after the pre-check saw its record.
#[tokio::test]
async fn real_failures_compensate_too() {
    let dr = DrEnv::start().await.unwrap();
    // 1. The validation Lambda is missing: validation fails after the restore.
    let db = dr.env.name("val");
    let arn = dr.source_instance(&db).await.unwrap();
    dr.proven_dr_copy(ResourceKind::RdsInstance, &db, &arn).await.unwrap();
    let plan = dr
        .put_plan(&format!(
            r#"{{"name": "{{prefix}}-val", "source_region": "{PRIMARY}", "dr_region": "{DR}",
                "databases": [{{"arn": "{arn}"}}], "rto": "30m", "rpo": "15m", "poll_interval": "1s",
                "network": {{"allow_default_network": true}},
                "validation": {{"lambda_arn": "arn:aws:lambda:{PRIMARY}:123456789012:function:lifeboat-dr-validate-missing"}}}}"#
        ))
        .await
        .unwrap();
    let name = format!("{}-val", dr.env.prefix);
    let done = dr.run(&name, drill(&plan.name)).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("DrFailed"), "{done:?}");
    let report = dr.report(&plan.name, &name).await.unwrap();
    assert!(
        report["error"].as_str().unwrap().contains("validation Lambda"),
        "{report:#}"
    );
    assert!(leftovers(&dr, &name).await.is_empty());
}

/// The DR copy is deleted behind the catalog's back: the cluster restore fails, the
/// failure is recorded (and reads back whole) and alerted once, nothing is left behind.
#[tokio::test]
async fn a_deleted_dr_copy_fails_the_restore_and_compensates() {
    let dr = DrEnv::start().await.unwrap();
    let cluster = dr.env.name("gone");
    let cluster_arn = dr.source_cluster(&cluster).await.unwrap();
    let snapshot = dr
        .proven_dr_copy(ResourceKind::AuroraCluster, &cluster, &cluster_arn)
        .await
        .unwrap();
    dr.env
        .rds(DR)
        .delete_db_cluster_snapshot()
        .db_cluster_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    let plan = dr
        .put_plan(&format!(
            r#"{{"name": "{{prefix}}-gone", "source_region": "{PRIMARY}", "dr_region": "{DR}",
                "databases": [{{"arn": "{cluster_arn}"}}], "rto": "30m", "rpo": "15m", "poll_interval": "1s",
                "network": {{"allow_default_network": true}}}}"#
        ))
        .await
        .unwrap();
    let name = format!("{}-gone", dr.env.prefix);
    let done = dr.run(&name, drill(&plan.name)).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("DrFailed"), "{done:?}");
    assert!(leftovers(&dr, &name).await.is_empty());
    // The failure is recorded, with AWS's words and not its raw response, and alerted once.
    let exec = dr.store().get_execution(&plan.name, &name).await.unwrap().unwrap();
    assert_eq!(exec.status, ExecStatus::Failed, "{snapshot}");
    let restore = exec.steps.iter().find(|s| s.action.as_str() == "restore").unwrap();
    assert!(
        restore.outcome.contains("DBClusterSnapshotNotFoundFault"),
        "{}",
        restore.outcome
    );
    assert!(!restore.outcome.contains("raw: Response"), "{}", restore.outcome);
    let alerts = dr.env.alerts().await.unwrap();
    let ours = alerts
        .iter()
        .filter(|a| a.alert.details.get("execution") == Some(&name))
        .count();
    assert_eq!(ours, 1, "{snapshot}: {alerts:?}");
}

/// A restore retried after the function crashed between starting the restore and saving
/// the record: the retry finds the restored database instead of creating another.
#[tokio::test]
async fn a_step_retried_after_a_crash_creates_no_second_resource() {
    let dr = DrEnv::start().await.unwrap();
    let (plan, db, _) = estate(&dr, "").await;
    let name = format!("{}-crash", dr.env.prefix);
    let request = json!({"plan": plan, "mode": "drill", "execution": name});
    let step = |action: &str| json!({"action": action, "request": request}).to_string();
    for action in ["precheck", "choose-source", "restore"] {
        let (error, out) = dr.env.invoke("run-dr-step", &step(action)).await.unwrap();
        assert_eq!(error, None, "{action}: {out}");
    }
    // The crash: the record still says "chosen", RDS already has the restore.
    let store = dr.store();
    let mut exec = store.get_execution(&plan, &name).await.unwrap().unwrap();
    let expected = exec.version;
    exec.databases[0].phase = Phase::Chosen;
    exec.version += 1;
    store.update_execution(&exec, expected).await.unwrap();
    let (error, out) = dr.env.invoke("run-dr-step", &step("restore")).await.unwrap();
    assert_eq!(error, None, "{out}");
    let target = &exec.databases[0].target_id;
    assert_eq!(dr.databases_named(PRIMARY, target).await.unwrap(), vec![target.clone()]);
    let exec = store.get_execution(&plan, &name).await.unwrap().unwrap();
    assert_eq!(exec.compensations.len(), 1, "one undo entry: {:?}", exec.compensations);
    // Clean up through the compensation path.
    let (error, out) = dr
        .env
        .invoke(
            "run-dr-step",
            &json!({"action": "compensate", "request": {"plan": plan, "mode": "drill", "execution": name,
                    "error": {"Error": "Internal", "Cause": "{\"errorMessage\": \"test crash\"}"}}})
            .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(error, None, "{out}");
    assert!(leftovers(&dr, &name).await.is_empty(), "{db}");
}

#[tokio::test]
async fn the_sample_events_drive_the_real_binary() {
    let dr = DrEnv::start().await.unwrap();
    let (error, payload) = dr
        .env
        .invoke("run-dr-step", &sample("run-dr-step/unknown-action.json"))
        .await
        .unwrap();
    assert_eq!(
        (error.as_deref(), &payload["errorType"]),
        (Some("Unhandled"), &json!("Invalid")),
        "{payload}"
    );
    assert!(payload["errorMessage"].as_str().unwrap().contains("unknown action"));
    let (error, payload) = dr
        .env
        .invoke("run-dr-step", &sample("run-dr-step/precheck-unknown-plan.json"))
        .await
        .unwrap();
    assert_eq!(payload["errorType"], "NotFound", "{error:?} {payload}");
    // The state machine input the weekly schedule sends, with a plan of this test.
    let (plan, _, _) = estate(&dr, "").await;
    let mut input: Value = serde_json::from_str(&sample("run-dr-step/scheduled-drill.json")).unwrap();
    input["plan"] = json!(plan);
    let done = dr.run(&format!("{}-scheduled", dr.env.prefix), input).await.unwrap();
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
}

/// A failover that fails right after its switch step (injected once the switch did its
/// work): the failover's databases took writes from the moment the endpoints moved, so the
/// state machine leaves them running and the endpoints as they are, records the execution
/// as needing an operator (what was done, what remains) and raises one critical alert;
/// it ends with its own error, `NeedsOperator`.
#[tokio::test]
async fn a_failover_failing_after_its_switch_leaves_the_failover_databases_running() {
    let dr = DrEnv::start().await.unwrap();
    let source_key = dr.env.create_kms_key(PRIMARY).await.unwrap();
    let route53 = aws_sdk_route53::Client::new(&dr.env.primary);
    let zone = route53
        .create_hosted_zone()
        .name(format!("{}.example.", dr.env.prefix))
        .caller_reference(format!("{}-switch-fault", dr.env.prefix))
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let dns = lifeboat_aws::dr::Route53Records::new(&dr.env.primary);
    let record = format!("orders-db.{}.example.", dr.env.prefix);
    lifeboat_ports::dr::DnsRecords::upsert_cname(&dns, &zone, &record, "orders.primary.example", 300)
        .await
        .unwrap();
    let parameter = format!("/{}/orders/endpoint", dr.env.prefix);
    dr.ssm()
        .put_parameter()
        .name(&parameter)
        .value("orders.primary.example")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let extra = format!(
        r#", "switch": {{"region": "{PRIMARY}", "parameters": {{"{parameter}": "{{prefix}}-orders"}},
                         "hosted_zone_id": "{zone}", "records": {{"{record}": "{{prefix}}-orders"}}}},
            "prechecks": {{"source_kms_key_id": "{source_key}"}}, "rehearsal_fault": "switch""#
    );
    let (plan, _, _) = estate(&dr, &extra).await;
    let who = "arn:aws:iam::123456789012:user/oncall";
    let name = format!("{}-switch-fault", dr.env.prefix);
    let token = dr.token(&plan, "failover", who).await.unwrap();
    let done = dr
        .run(&name, json!({"plan": plan, "mode": "failover", "token": token}))
        .await
        .unwrap();
    assert_eq!(
        (done.status.as_str(), done.error.as_deref()),
        ("FAILED", Some("NeedsOperator")),
        "{done:?}"
    );
    // Both failover databases (the instance, and the cluster with its writer) are still
    // there, running.
    let exec = dr.store().get_execution(&plan, &name).await.unwrap().unwrap();
    assert_eq!(exec.status, ExecStatus::NeedsOperator, "{exec:?}");
    let mut survivors = leftovers(&dr, &name).await;
    survivors.sort();
    let mut restored: Vec<String> = exec
        .databases
        .iter()
        .flat_map(|d| std::iter::once(d.target_id.clone()).chain(d.writer.clone()))
        .collect();
    restored.sort();
    assert_eq!(survivors, restored, "the failover databases are left running");
    assert!(restored.iter().all(|r| r.starts_with("lbfo-")), "{restored:?}");
    assert!(
        exec.compensations.iter().all(|c| !c.done),
        "nothing was undone: {:?}",
        exec.compensations
    );
    // The endpoints still point at the failover side.
    let endpoint = exec.databases[0].endpoint.clone().unwrap();
    let value = dr
        .ssm()
        .get_parameter()
        .name(&parameter)
        .send()
        .await
        .unwrap()
        .parameter()
        .and_then(|p| p.value().map(str::to_owned));
    assert_eq!(value.as_deref(), Some(endpoint.as_str()));
    assert_eq!(
        lifeboat_ports::dr::DnsRecords::cname(&dns, &zone, &record)
            .await
            .unwrap()
            .as_deref(),
        Some(endpoint.as_str())
    );
    // What was done and what remains, in the record and in the report.
    let handoff = exec.needs_operator.clone().unwrap();
    assert!(handoff.reason.contains("injected at step switch"), "{handoff:?}");
    assert!(handoff.done.iter().any(|d| d.contains(&restored[0])), "{handoff:?}");
    let report = dr.report(&plan, &name).await.unwrap();
    assert_eq!(report["status"], "needs-operator", "{report:#}");
    assert_eq!(
        report["needs_operator"]["remaining"],
        json!(handoff.remaining),
        "{report:#}"
    );
    // The switch completed: the site says production runs on the DR side.
    assert_eq!(dr.store().site(&plan).await.unwrap().unwrap().active, ActiveSide::Dr);
    // One critical alert.
    let alerts = dr.env.alerts().await.unwrap();
    let ours: Vec<_> = alerts
        .iter()
        .filter(|a| a.alert.details.get("execution") == Some(&name))
        .collect();
    assert_eq!(ours.len(), 1, "{alerts:?}");
    assert_eq!(ours[0].event_type.as_deref(), Some("dr-needs-operator"));
    assert_eq!(ours[0].alert.severity, lifeboat_domain::Severity::Critical);
}

/// The admin API starts a drill on the real state machine and shows its result; a
/// failover needs an admin and a valid token, and is refused before anything starts.
#[tokio::test]
async fn the_admin_api_starts_a_drill_and_shows_its_measured_result() {
    use lifeboat_tests::api::{call, request};
    const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/LifeboatOperator/bob";
    const ADMIN: &str = "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/alice";
    const VIEWER: &str = "arn:aws:iam::123456789012:user/lifeboat-viewer";

    let dr = DrEnv::start().await.unwrap();
    let (plan, _, _) = estate(&dr, "").await;
    let rid = |what: &str| format!("{}-{what}", dr.env.prefix);
    let (status, _, started) = call(
        &dr.env,
        &request(
            "POST",
            "/dr/executions",
            OPERATOR,
            Some(&json!({"plan": plan, "mode": "drill"})),
            &rid("drill"),
        ),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let arn = started["execution_arn"].as_str().unwrap();
    let done = dr
        .wait(arn, std::time::Instant::now(), Duration::from_mins(3))
        .await
        .unwrap();
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let name = started["execution"].as_str().unwrap();
    let path = format!("/dr/executions/{plan}/{name}");
    let (status, _, exec) = call(&dr.env, &request("GET", &path, VIEWER, None, &rid("get"))).await;
    assert_eq!(status, 200, "{exec}");
    assert_eq!(exec["status"], "succeeded");
    assert!(exec["measurement"]["rto_secs"].is_number(), "{exec:#}");
    assert_eq!(exec["measurement"]["rto_met"], true, "{exec:#}");
    assert!(exec["steps"].as_array().unwrap().len() >= 5);

    // A failover: not for an operator; a failback the site does not allow starts nothing.
    let failover = json!({"plan": plan, "mode": "failover"});
    let (status, _, _) = call(
        &dr.env,
        &request("POST", "/dr/executions", OPERATOR, Some(&failover), &rid("fo-op")),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, preview) = call(
        &dr.env,
        &request("POST", "/dr/executions", ADMIN, Some(&failover), &rid("fo-1")),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert!(preview["token"].is_string());
    let forged = json!({"plan": plan, "mode": "failback", "token": preview["token"]});
    let (status, _, refused) = call(
        &dr.env,
        &request("POST", "/dr/executions", ADMIN, Some(&forged), &rid("fo-2")),
    )
    .await;
    // Production runs on the source side: a failback is refused for that reason before any
    // token is looked at.
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["title"], "The plan's site does not allow this mode",
        "{refused}"
    );
    let executions = dr.store().executions(&plan).await.unwrap();
    assert_eq!(executions.len(), 1, "only the drill ran");
}

/// S3 data in a DR plan: the drill's pre-check finds the newest verified backup run, the
/// validation reads its objects back from the backup bucket and compares each with the
/// manifest (the run's time counts in the measured RPO); an object changed behind
/// Lifeboat's back fails the validation, and the drill compensates and alerts.
#[tokio::test]
async fn a_drill_verifies_s3_data_against_its_manifest() {
    use lifeboat_tests::s3::{backup_bucket, backup_deps, put, settings, source_bucket, verify_deps};

    let dr = DrEnv::start().await.unwrap();
    let env = &dr.env;
    let (src, bak) = (env.name("media"), env.name("media-bak"));
    source_bucket(env, &src).await.unwrap();
    backup_bucket(env, &bak).await.unwrap();
    for i in 0..12 {
        put(
            env,
            PRIMARY,
            &src,
            &format!("photos/{i:02}.jpg"),
            format!("photo {i}").as_bytes(),
        )
        .await
        .unwrap();
    }
    let taken = chrono::Utc::now();
    let run = backup_objects::handle(
        &backup_deps(env, settings(&bak, &[])),
        lifeboat_tests::request_event(
            &backup_objects::BackupRequest {
                bucket: src.clone(),
                prefix: "photos/".into(),
                policy: "gold".into(),
                scheduled_time: taken,
                request_id: None,
                max_pages: None,
                change_queue: None,
                full_listing: false,
            },
            "dr-data-backup",
        ),
    )
    .await
    .unwrap();
    let plan_json = format!(
        r#"{{"name": "{{prefix}}-media", "source_region": "{PRIMARY}", "dr_region": "{DR}",
            "data": [{{"bucket": "{src}", "prefix": "photos/", "sample": 100}}],
            "rto": "30m", "rpo": "15m", "poll_interval": "1s"}}"#
    );
    let plan = dr.put_plan(&plan_json).await.unwrap().name;

    // Not verified yet: the pre-check refuses before anything is done.
    let unverified = format!("{}-unverified", env.prefix);
    let refused = dr.run(&unverified, drill(&plan)).await.unwrap();
    assert_eq!(refused.status, "FAILED", "{refused:?}");
    assert_eq!(
        dr.store()
            .get_execution(&plan, &unverified)
            .await
            .unwrap()
            .map(|e| e.status),
        Some(lifeboat_domain::dr::ExecStatus::Refused),
        "refused before any change: recorded with its reasons"
    );
    let alerts = env.alerts().await.unwrap();
    let ours: Vec<_> = alerts
        .iter()
        .filter(|a| a.alert.details.get("execution") == Some(&unverified))
        .collect();
    assert_eq!(ours.len(), 1, "{alerts:?}");
    assert!(format!("{:?}", ours[0].alert).contains("not verified"), "{:?}", ours[0]);

    let verify = verify_backups::VerifyRequest::full(Some(&run.recovery_point));
    let verified = verify_backups::handle(
        &verify_deps(env),
        lifeboat_tests::request_event(&verify, "dr-data-verify"),
    )
    .await
    .unwrap();
    assert_eq!(verified.verified, vec![run.recovery_point.clone()]);

    let name = format!("{}-data-drill", env.prefix);
    let done = dr.run(&name, drill(&plan)).await.unwrap();
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let report = dr.report(&plan, &name).await.unwrap();
    let data = &report["data"][0];
    assert_eq!(data["recovery_point"], run.recovery_point.to_string(), "{report:#}");
    assert_eq!(
        (data["objects"].as_u64(), data["objects_checked"].as_u64()),
        (Some(12), Some(12))
    );
    assert_eq!(data["problems"], json!([]));
    // The RPO is the age of the backup run (finished just before the drill).
    let rpo = report["measurement"]["rpo_secs"].as_u64().unwrap();
    assert!(rpo <= 60, "RPO {rpo}s");
    assert_eq!(report["measurement"]["rpo_met"], true);

    // A backup object rewritten behind Lifeboat's back: the next drill's validation fails.
    let victim = "photos/05.jpg";
    let m = {
        let point = env.catalog().get(&run.recovery_point).await.unwrap().unwrap();
        let s = lifeboat_tests::s3::store(env, DR, lifeboat_ports::objects::CopyTuning::default());
        lifeboat::object_store::runs::load_manifest(s.as_ref(), point.manifest().unwrap())
            .await
            .unwrap()
    };
    let entry = m.entries.iter().find(|e| e.key == victim).unwrap();
    put(env, DR, &bak, &entry.backup_key, b"tampered").await.unwrap();
    let name = format!("{}-data-drill-2", env.prefix);
    let failed = dr.run(&name, drill(&plan)).await.unwrap();
    assert_eq!(failed.status, "FAILED", "{failed:?}");
    let report = dr.report(&plan, &name).await.unwrap();
    assert_eq!(report["status"], "failed", "{report:#}");
    assert!(
        report["error"].as_str().unwrap_or_default().contains("photos/05.jpg"),
        "{report:#}"
    );
    let problems = report["data"][0]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report:#}");
    assert!(
        problems[0].as_str().unwrap().starts_with("photos/05.jpg: "),
        "{report:#}"
    );
}

/// Through the `lifeboat` binary and the HTTP API: an operator runs a drill and follows it
/// to its measured end; a drill of a plan whose database has no verified copy in the DR
/// region is refused by the pre-check, and its reasons are listed with the executions.
#[tokio::test]
async fn a_drill_and_a_refused_drill_through_the_cli() {
    use lifeboat_tests::cli::{ADMIN, OPERATOR, VIEWER, json, lifeboat, text};

    let dr = DrEnv::start().await.unwrap();
    let (plan, _, _) = estate(&dr, "").await;
    let started = json(&lifeboat(OPERATOR, &["--output", "json", "dr", "drill", &plan]));
    let name = started["execution"].as_str().unwrap().to_owned();
    let done = json(&lifeboat(
        VIEWER,
        &["--output", "json", "dr", "executions", "show", &plan, &name, "--follow"],
    ));
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["measurement"]["rto_met"], true, "{done:#}");
    let report = json(&lifeboat(
        VIEWER,
        &["--output", "json", "dr", "executions", "report", &plan, &name],
    ));
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert!(report["steps"].as_array().unwrap().len() >= 5, "{report:#}");
    assert!(report["databases"][0]["reason"].is_string(), "{report:#}");

    // A plan over a database with no verified copy in the DR region.
    let bare = dr.env.name("bare");
    let bare_arn = dr.source_instance(&bare).await.unwrap();
    let refused_plan = format!("{}-bare", dr.env.prefix);
    let doc = format!(
        r#"{{"name": "{refused_plan}", "source_region": "{PRIMARY}", "dr_region": "{DR}",
            "databases": [{{"arn": "{bare_arn}"}}], "rto": "30m", "rpo": "15m",
            "network": {{"allow_default_network": true}}}}"#
    );
    let file = std::env::temp_dir().join(format!("{refused_plan}.json"));
    std::fs::write(&file, doc).unwrap();
    json(&lifeboat(
        ADMIN,
        &[
            "--output",
            "json",
            "dr",
            "plans",
            "put",
            &refused_plan,
            file.to_str().unwrap(),
        ],
    ));
    let started = json(&lifeboat(OPERATOR, &["--output", "json", "dr", "drill", &refused_plan]));
    let name = started["execution"].as_str().unwrap().to_owned();
    let out = lifeboat(VIEWER, &["dr", "executions", "show", &refused_plan, &name, "--follow"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused drill ends the follow with 1: {}",
        text(&out)
    );
    let listed = json(&lifeboat(
        VIEWER,
        &["--output", "json", "dr", "executions", "list", &refused_plan],
    ));
    let item = &listed["items"][0];
    assert_eq!(item["status"], "refused", "{listed:#}");
    assert!(
        item.to_string().contains("no verified recovery point"),
        "the reasons are listed: {listed:#}"
    );
}
