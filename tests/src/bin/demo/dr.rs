//! The demo's last part: a DR drill of a small plan on the real state machine, and its
//! report: each step with its timing, the source chosen for each database and why, the
//! DynamoDB table restored from its native backup with its item count and checksum, and
//! the measured RTO and RPO against the plan's targets. Then a failover and a failback
//! through the admin API, with the failback's data loss window and outage.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Tag,
};
use lifeboat_domain::ResourceKind;
use lifeboat_tests::dr::DrEnv;
use lifeboat_tests::{DR, PRIMARY, Result};
use serde_json::{Value, json};

fn secs(v: &Value) -> String {
    v.as_u64().map_or_else(|| "?".into(), |s| format!("{s} s"))
}

/// An orders table of 25 items in the primary region, backed up natively through
/// Lifeboat (a policy selecting it by tag, an on-demand request to create-snapshots).
/// Returns its ARN.
async fn orders_table(dr: &DrEnv) -> Result<String> {
    let env = &dr.env;
    let client = aws_sdk_dynamodb::Client::new(&env.primary);
    let table = env.name("orders");
    let arn = client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .send()
        .await?
        .table_description()
        .and_then(|t| t.table_arn())
        .ok_or("CreateTable returned no table ARN")?
        .to_owned();
    for i in 0..25 {
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(format!("order-{i:03}")))
            .item("total", AttributeValue::N(format!("{}.90", 10 + i * 7)))
            .item(
                "tags",
                AttributeValue::Ss(vec!["web".into(), format!("region-{}", i % 3)]),
            )
            .send()
            .await?;
    }
    let tag = format!("{}-demo-dr", env.prefix);
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags(Tag::builder().key(&tag).value("prod").build()?)
        .send()
        .await?;
    env.put_policy(&format!(
        r#"{{"name":"{{prefix}}-orders","every":"1h","rpo":"2h","retain":3,
             "select":{{"types":["dynamodb-table"],"tags":{{"{tag}":"prod"}}}}}}"#
    ))
    .await?;
    let backup = create_snapshots::run_request(
        &create_snapshots::Deps {
            ports: env.ports(),
            config: env.config(""),
            runs: create_snapshots::DataRuns::default(),
        },
        &lifeboat::events::BackupRequest {
            resources: vec![arn.clone()],
            emergency: false,
            reason: "demo DR drill".into(),
            requested_by: None,
            request_id: env.name("orders-backup"),
            requested_at: None,
        },
        "demo-orders-backup",
    )
    .await
    .map_err(|e| format!("backing up {table}: {e}"))?;
    if backup.created.len() != 1 {
        return Err(format!("backing up {table}: {} backups created, not 1", backup.created.len()).into());
    }
    Ok(arn)
}

pub async fn drill() -> Result<()> {
    println!(
        "\nDR drill: plan with an RDS instance (step 1), an Aurora cluster (step 2) and a DynamoDB table, RTO 30m, RPO 15m"
    );
    let dr = DrEnv::start().await?;
    let table_arn = orders_table(&dr).await?;
    let db = dr.env.name("shop");
    let arn = dr.source_instance(&db).await?;
    let cluster = dr.env.name("ledger");
    let cluster_arn = dr.source_cluster(&cluster).await?;
    // The DR copies the drill relies on, proven by restore tests (test-restores).
    let proven = dr
        .proven_dr_copies(&[
            (ResourceKind::RdsInstance, &db, &arn),
            (ResourceKind::AuroraCluster, &cluster, &cluster_arn),
        ])
        .await?;
    for p in &proven {
        let Some(t) = p.restore_test() else { continue };
        println!(
            "  restore test of {} ({}): restored as {} in {} s, {} check(s) passed ({}), verified, test database deleted",
            p.id,
            p.resource.kind,
            t.target,
            t.restore_secs().unwrap_or(0),
            t.checks.len(),
            t.checks.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        );
    }
    let plan = dr
        .put_plan(&format!(
            r#"{{"name": "{{prefix}}-demo", "source_region": "{PRIMARY}", "dr_region": "{DR}",
                "databases": [{{"arn": "{arn}"}}, {{"arn": "{cluster_arn}", "step": 2}}],
                "network": {{"allow_default_network": true}},
                "tables": [{{"arn": "{table_arn}"}}],
                "rto": "30m", "rpo": "15m", "poll_interval": "1s"}}"#
        ))
        .await?;
    let name = format!("{}-demo-drill", dr.env.prefix);
    let done = dr.run(&name, json!({"plan": plan.name, "mode": "drill"})).await?;
    let report = dr.report(&plan.name, &name).await?;
    println!(
        "execution {name}: {} in {:.1} s (of which {:.1} s in Wait states); report s3://{}/dr-reports/{}/{name}.json",
        done.status,
        done.wall.as_secs_f64(),
        done.waiting.as_secs_f64(),
        lifeboat_tests::dr::REPORTS_BUCKET,
        plan.name
    );
    println!("  {:<14} {:>9} {:>8} {:>5}  outcome", "step", "elapsed", "busy", "runs");
    for s in report["steps"].as_array().into_iter().flatten() {
        println!(
            "  {:<14} {:>6} ms {:>5} ms {:>5}  {}",
            s["step"].as_str().unwrap_or("?"),
            s["elapsed_ms"].as_i64().unwrap_or(0),
            s["busy_ms"].as_u64().unwrap_or(0),
            s["runs"].as_u64().unwrap_or(0),
            s["outcome"].as_str().unwrap_or("").chars().take(90).collect::<String>()
        );
    }
    for d in report["databases"].as_array().into_iter().flatten() {
        println!(
            "  {} → {} ({}): {}",
            d["database"].as_str().unwrap_or("?"),
            d["recovered_as"].as_str().unwrap_or("?"),
            d["source"]["type"].as_str().unwrap_or("?"),
            d["reason"].as_str().unwrap_or("")
        );
    }
    for t in report["tables"].as_array().into_iter().flatten() {
        let checksum = t["content"]["checksum"].as_str().unwrap_or("?");
        println!(
            "  table {} → {} (native backup taken {}): {} items, checksum {}…, {}",
            t["table"]["name"].as_str().unwrap_or("?"),
            t["target_name"].as_str().unwrap_or("?"),
            t["backup_at"].as_str().unwrap_or("?"),
            t["content"]["items"].as_u64().unwrap_or(0),
            checksum.chars().take(36).collect::<String>(),
            t["verdict"]
                .as_str()
                .unwrap_or("?")
                .chars()
                .take(60)
                .collect::<String>()
        );
    }
    let m = &report["measurement"];
    println!(
        "  measured RTO {} (target {}, {}), RPO {} (target {}, {})",
        secs(&m["rto_secs"]),
        secs(&m["rto_target_secs"]),
        if m["rto_met"] == true { "met" } else { "MISSED" },
        secs(&m["rpo_secs"]),
        secs(&m["rpo_target_secs"]),
        if m["rpo_met"] == true { "met" } else { "MISSED" },
    );
    let undone = report["compensations"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|c| c["done"] == true).count());
    println!("  torn down: {undone} drill resource(s) deleted (databases and table), production untouched");
    failover_and_failback(&dr, &db, &arn).await
}

/// Starts a failover or failback through the admin API as an admin: a preview answers a
/// confirmation token bound to the plan, the mode and the caller; the token starts the
/// execution. Waits for it and answers its name and status.
async fn through_the_api(dr: &DrEnv, plan: &str, mode: &str) -> Result<(String, String)> {
    use lifeboat_tests::api::{call, request};
    const ADMIN: &str = "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/alice";
    let rid = |what: &str| format!("{}-demo-{mode}-{what}", dr.env.prefix);
    let ask = json!({"plan": plan, "mode": mode});
    let (status, _, preview) = call(
        &dr.env,
        &request("POST", "/dr/executions", ADMIN, Some(&ask), &rid("preview")),
    )
    .await;
    let token = preview["token"]
        .as_str()
        .ok_or_else(|| format!("{mode} preview answered {status}: {preview}"))?;
    let go = json!({"plan": plan, "mode": mode, "token": token});
    let (status, _, started) = call(
        &dr.env,
        &request("POST", "/dr/executions", ADMIN, Some(&go), &rid("start")),
    )
    .await;
    let arn = started["execution_arn"]
        .as_str()
        .ok_or_else(|| format!("{mode} start answered {status}: {started}"))?;
    let done = dr.wait(arn, std::time::Instant::now(), Duration::from_mins(3)).await?;
    let name = started["execution"].as_str().unwrap_or_default().to_owned();
    println!(
        "  {mode} {name}: {} in {:.1} s (confirmed by {ADMIN})",
        done.status,
        done.wall.as_secs_f64()
    );
    if done.status != "SUCCEEDED" {
        return Err(format!("{mode} {name} ended {}: {:?} {:?}", done.status, done.error, done.cause).into());
    }
    Ok((name, done.status))
}

/// A failover of the shop database to the DR region and a failback, each through the
/// admin API with a confirmation token, switching an SSM endpoint parameter. The failback
/// first stops writes to the DR side (the parameter points at a maintenance value), then
/// snapshots it: the report states its data loss window and its outage.
async fn failover_and_failback(dr: &DrEnv, db: &str, arn: &str) -> Result<()> {
    let parameter = format!("/{}/shop/endpoint", dr.env.prefix);
    println!(
        "\nDR failover and failback of {db} through the admin API; the switch repoints the SSM parameter {parameter}"
    );
    let ssm = dr.ssm();
    ssm.put_parameter()
        .name(&parameter)
        .value("shop.primary.example")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await?;
    let endpoint = || async {
        ssm.get_parameter()
            .name(&parameter)
            .send()
            .await
            .ok()
            .and_then(|p| p.parameter().and_then(|p| p.value()).map(str::to_owned))
            .unwrap_or_default()
    };
    let source_key = dr.env.create_kms_key(PRIMARY).await?;
    let plan = dr
        .put_plan(&format!(
            r#"{{"name": "{{prefix}}-demo-site", "source_region": "{PRIMARY}", "dr_region": "{DR}",
                "databases": [{{"arn": "{arn}"}}],
                "network": {{"allow_default_network": true}},
                "switch": {{"region": "{PRIMARY}", "parameters": {{"{parameter}": "{db}"}},
                            "quiesce": {{"parameters": {{"{parameter}": "maintenance.invalid"}}, "settle": "1s"}}}},
                "prechecks": {{"source_kms_key_id": "{source_key}"}},
                "rto": "30m", "rpo": "15m", "poll_interval": "1s"}}"#
        ))
        .await?;
    println!("  endpoint before: {}", endpoint().await);

    let (failover, _) = through_the_api(dr, &plan.name, "failover").await?;
    let report = dr.report(&plan.name, &failover).await?;
    for d in report["databases"].as_array().into_iter().flatten() {
        println!(
            "    {} → {} in {} ({}): {}",
            d["database"].as_str().unwrap_or("?"),
            d["recovered_as"].as_str().unwrap_or("?"),
            d["region"].as_str().unwrap_or("?"),
            d["source"]["type"].as_str().unwrap_or("?"),
            d["reason"].as_str().unwrap_or("").chars().take(90).collect::<String>()
        );
    }
    let m = &report["measurement"];
    println!(
        "    endpoint now {}; measured RTO {}, RPO {}",
        endpoint().await,
        secs(&m["rto_secs"]),
        secs(&m["rpo_secs"])
    );

    let (failback, _) = through_the_api(dr, &plan.name, "failback").await?;
    let report = dr.report(&plan.name, &failback).await?;
    let fb = &report["failback"];
    println!(
        "    writes to the DR side stopped at {} (endpoint set to maintenance.invalid), DR-side snapshot at {}",
        fb["writes_stopped_at"].as_str().unwrap_or("?"),
        fb["snapshot_at"].as_str().unwrap_or("?")
    );
    for d in report["databases"].as_array().into_iter().flatten() {
        println!(
            "    {} → {} in {} ({})",
            d["database"].as_str().unwrap_or("?"),
            d["recovered_as"].as_str().unwrap_or("?"),
            d["region"].as_str().unwrap_or("?"),
            d["source"]["type"].as_str().unwrap_or("?"),
        );
    }
    println!(
        "    failback data loss window {}, outage {}; endpoint back to {}",
        secs(&fb["data_loss_window_secs"]),
        secs(&fb["outage_secs"]),
        endpoint().await
    );
    for f in report["final_snapshots"].as_array().into_iter().flatten() {
        println!(
            "    the failover's {} deleted with its final snapshot {} kept ({})",
            f["database"].as_str().unwrap_or("?"),
            f["snapshot"].as_str().unwrap_or("?"),
            f["region"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
