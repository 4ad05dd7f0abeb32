//! The demo's last part: a DR drill of a small plan on the real state machine, and its
//! report: each step with its timing, the source chosen for each database and why, and
//! the measured RTO and RPO against the plan's targets.

use std::time::Duration;

use lifeboat::domain::ResourceKind;
use lifeboat_tests::dr::DrEnv;
use lifeboat_tests::{DR, PRIMARY, Result};
use serde_json::{Value, json};

fn secs(v: &Value) -> String {
    v.as_u64().map_or_else(|| "?".into(), |s| format!("{s} s"))
}

pub async fn drill() -> Result<()> {
    println!("\nDR drill: plan with an RDS instance (step 1) and an Aurora cluster (step 2), RTO 30m, RPO 15m");
    let dr = DrEnv::start().await?;
    let db = dr.env.name("shop");
    let arn = dr.source_instance(&db).await?;
    let cluster = dr.env.name("ledger");
    let cluster_arn = dr.source_cluster(&cluster).await?;
    dr.verified_dr_copy(ResourceKind::RdsInstance, &db, &arn, Duration::from_mins(6))
        .await?;
    dr.verified_dr_copy(
        ResourceKind::AuroraCluster,
        &cluster,
        &cluster_arn,
        Duration::from_mins(7),
    )
    .await?;
    let plan = dr
        .put_plan(&format!(
            r#"{{"name": "{{prefix}}-demo", "source_region": "{PRIMARY}", "dr_region": "{DR}",
                "databases": [{{"arn": "{arn}"}}, {{"arn": "{cluster_arn}", "step": 2}}],
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
    println!("  torn down: {undone} drill resource(s) deleted, production untouched");
    Ok(())
}
