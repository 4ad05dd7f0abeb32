//! `make demo`: a small estate in two regions, the scheduled backup path run through the
//! real Lifeboat functions on the local AWS stack, and a report of what Lifeboat did.
//!
//! Estate: a KMS key per region; two RDS PostgreSQL instances and one Aurora cluster
//! under policy `gold` (hourly, RPO 2 h, copies to us-west-2 with that region's key); one
//! instance under policy `bronze`, whose copies to eu-west-1 have no KMS key configured
//! (a deliberate mistake, to show that Lifeboat alerts instead of skipping silently).

#![allow(clippy::too_many_lines, reason = "the demo is a script whose steps print in order")]

#[path = "demo/admin.rs"]
mod admin;
#[path = "demo/data_sets.rs"]
mod data_sets;
#[path = "demo/dr.rs"]
mod dr;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use lifeboat_domain::{RecoveryPoint, Status};
use lifeboat_ports::Catalog;
use lifeboat_tests::{DR, PRIMARY, ReceivedAlert, Result, TestEnv};
use serde_json::Value;

#[path = "demo/s3.rs"]
mod s3;

struct Step {
    name: &'static str,
    took: Duration,
    summary: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Box::pin(demo()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn count(v: &Value, key: &str) -> usize {
    v[key].as_array().map_or(0, Vec::len)
}

async fn invoke(
    env: &TestEnv,
    steps: &mut Vec<Step>,
    name: &'static str,
    function: &str,
    payload: &str,
) -> Result<Value> {
    let started = Instant::now();
    let (error, out) = env.invoke(function, payload).await?;
    if let Some(e) = error {
        return Err(format!("{function} failed ({e}): {out}").into());
    }
    let summary = match function {
        "create-snapshots" => format!(
            "{} created, {} adopted, {} already recorded, {} failed, {} skipped",
            count(&out, "created"),
            count(&out, "adopted"),
            out["already_recorded"],
            count(&out, "failed"),
            count(&out, "skipped")
        ),
        "plan-backups" => {
            let plan = &out["plan"];
            format!(
                "{} to create, {} to copy, {} to expire (dry run: nothing changed)",
                count(plan, "creates"),
                count(plan, "copies"),
                count(plan, "expiries")
            )
        }
        "copy-snapshots" => format!(
            "{} copies started, {} waiting, {} blocked, {} failed (budget {} per region)",
            count(&out, "started"),
            count(&out, "waiting"),
            count(&out, "blocked"),
            count(&out, "failed"),
            out["budget_per_region"]
        ),
        _ => format!(
            "{} transitions, {} adopted, {} stuck, {} RPO checks ({} breached)",
            count(&out, "transitions"),
            count(&out, "adopted"),
            count(&out, "stuck"),
            count(&out, "rpo"),
            out["rpo"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|s| s["breached"] == true).count())
        ),
    };
    steps.push(Step {
        name,
        took: started.elapsed(),
        summary,
    });
    Ok(out)
}

/// The tracker, run as its schedule would (each run with a tick at its own time), until
/// every recovery point of `arns` is `settled`: RDS takes its time to snapshot and copy,
/// on the local stack as on AWS. Recorded as one step (at most two minutes).
async fn track_until(
    env: &TestEnv,
    steps: &mut Vec<Step>,
    name: &'static str,
    arns: &[String],
    settled: fn(&RecoveryPoint) -> bool,
) -> Result<Value> {
    let started = Instant::now();
    let catalog = env.catalog();
    let mut runs = 0;
    loop {
        let tick = serde_json::json!({
            "scheduledTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .to_string();
        let mut one = Vec::new();
        let out = invoke(env, &mut one, name, "track-recovery-points", &tick).await?;
        runs += 1;
        let mut points = Vec::new();
        for arn in arns {
            points.extend(catalog.by_resource(arn, 20).await?);
        }
        if points.iter().all(settled) || started.elapsed() > Duration::from_mins(2) {
            if let Some(mut step) = one.pop() {
                step.took = started.elapsed();
                step.summary = format!("{runs} run(s); the last: {}", step.summary);
                steps.push(step);
            }
            return Ok(out);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn short_key(arn: &str) -> String {
    arn.rsplit('/').next().map_or_else(
        || arn.to_owned(),
        |id| format!("key/{}…", id.chars().take(8).collect::<String>()),
    )
}

fn age(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs}s"),
        120..7200 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

async fn demo() -> Result<()> {
    let wall = Instant::now();
    println!("Lifeboat demo: scheduled RDS/Aurora backups, cross-region copies, catalog, RPO and alerts\n");
    let env = TestEnv::local_deployment().await?;
    let run = &env.prefix[1..5];

    // The estate.
    let dr_key = env.create_kms_key(DR).await?;
    let _primary_key = env.create_kms_key(PRIMARY).await?;
    let gold = env.put_policy(&format!(r#"{{"name":"gold","every":"1h","rpo":"2h","retain":24,"priority":1,"copies":[{{"region":"{DR}","kms_key_id":"{dr_key}"}}]}}"#)).await?;
    let bronze = env
        .put_policy(
            r#"{"name":"bronze","every":"1day","rpo":"26h","retain":7,"priority":9,"copies":[{"region":"eu-west-1"}]}"#,
        )
        .await?;
    let estate = [
        (format!("orders-{run}"), "RDS PostgreSQL", gold.name.as_str()),
        (format!("billing-{run}"), "RDS PostgreSQL", gold.name.as_str()),
        (format!("ledger-{run}"), "Aurora PostgreSQL", gold.name.as_str()),
        (format!("analytics-{run}"), "RDS PostgreSQL", bronze.name.as_str()),
    ];
    let mut arns = Vec::new();
    for (id, kind, policy) in &estate {
        let arn = if kind.starts_with("Aurora") {
            env.create_cluster(id, policy).await?
        } else {
            env.create_instance(id, policy).await?
        };
        arns.push(arn);
    }
    println!("Estate in {PRIMARY} (DR region {DR}):");
    for (id, kind, policy) in &estate {
        println!("  {id:<22} {kind:<18} policy {policy}");
    }
    println!(
        "  policy gold:   every 1h, RPO 2h, copies to {DR} with {}",
        short_key(&dr_key)
    );
    println!("  policy bronze: every 1 day, RPO 26h, copies to eu-west-1 (no KMS key configured there)\n");

    // The scheduled path, through the real functions (moto → bridge → cargo lambda).
    let tick =
        serde_json::json!({ "scheduledTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) })
            .to_string();
    let mut steps = Vec::new();
    // First the plan: what Lifeboat would do now, and why (a dry run; nothing changes).
    let plan = invoke(&env, &mut steps, "plan (dry run)", "plan-backups", "{}").await?;
    println!("Plan before applying (plan-backups, a dry run):");
    let ours = |line: &&str| {
        line.starts_with(|c: char| c.is_ascii_digit()) || estate.iter().any(|(id, _, _)| line.contains(id.as_str()))
    };
    for line in plan["summary"].as_str().unwrap_or_default().lines().filter(ours) {
        println!("  {line}");
    }
    println!();
    invoke(
        &env,
        &mut steps,
        "create snapshots (schedule tick)",
        "create-snapshots",
        &tick,
    )
    .await?;
    invoke(&env, &mut steps, "same tick delivered again", "create-snapshots", &tick).await?;
    track_until(&env, &mut steps, "track until snapshots are made", &arns, |p| {
        p.status != Status::Pending
    })
    .await?;
    invoke(&env, &mut steps, "copy to DR regions", "copy-snapshots", &tick).await?;
    let tracked = track_until(&env, &mut steps, "track copies, reconcile, RPO", &arns, |p| {
        !matches!(p.status, Status::Pending | Status::Copying)
    })
    .await?;

    println!("Runs (real function binaries via the Lambda API):");
    for s in &steps {
        println!("  {:<34} {:>6} ms  {}", s.name, s.took.as_millis(), s.summary);
    }

    // The report, from the catalog.
    let catalog = env.catalog();
    println!("\nRecovery points (catalog {}):", env.table);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "  {:<22} {:<9} {:<40} {:<9} {:<26} {:<8}",
        "resource", "location", "snapshot", "state", "KMS key", "RPO"
    );
    for ((id, _, _), arn) in estate.iter().zip(&arns) {
        let points: Vec<RecoveryPoint> = catalog.by_resource(arn, 20).await?;
        let rpo: Vec<&Value> = tracked["rpo"]
            .as_array()
            .map(|a| a.iter().filter(|s| s["resource_arn"] == arn.as_str()).collect())
            .unwrap_or_default();
        for status in &rpo {
            let location = status["location"].as_str().unwrap_or_default();
            let point = points.iter().find(|p| p.location.as_str() == location);
            let verdict = match (status["breached"].as_bool(), status["age_secs"].as_u64()) {
                (Some(false), Some(a)) => format!(
                    "ok ({} old, target {})",
                    age(a),
                    age(status["target_secs"].as_u64().unwrap_or(0))
                ),
                (_, Some(a)) => format!("BREACH ({} old)", age(a)),
                _ => "BREACH (none)".to_owned(),
            };
            let (snapshot, state, key) = point.map_or(("-".to_owned(), "-".to_owned(), "-".to_owned()), |p| {
                let state = if p.status == Status::Failed {
                    format!("failed:{}", p.failure.as_ref().map_or("?", |f| f.code.as_str()))
                } else {
                    p.status.to_string()
                };
                (
                    p.snapshot_name.clone(),
                    state,
                    p.kms_key_id
                        .as_deref()
                        .map_or_else(|| "(source key)".to_owned(), short_key),
                )
            });
            let _ = writeln!(
                table,
                "  {id:<22} {location:<9} {snapshot:<40} {state:<9} {key:<26} {verdict}"
            );
        }
    }
    print!("{table}");

    let alerts: Vec<ReceivedAlert> = env.alerts().await?;
    let mine: Vec<_> = alerts
        .iter()
        .filter(|a| {
            a.alert.resource.as_ref().is_none_or(|r| arns.contains(r))
                && a.alert
                    .details
                    .get("policy")
                    .is_none_or(|p| p == "gold" || p == "bronze")
        })
        .collect();
    println!("\nAlerts received by the SNS subscriber (SQS queue) — {}:", mine.len());
    for a in &mine {
        println!(
            "  [{:<8}] {:<14} {}",
            a.severity.as_deref().unwrap_or("?"),
            a.event_type.as_deref().unwrap_or("?"),
            a.alert.summary
        );
    }
    println!(
        "\nReplaying the tick created nothing new; every alert was sent once. Wall time: {:.1} s",
        wall.elapsed().as_secs_f64()
    );
    admin::run(&env, &estate[0].0, &arns[0]).await?;
    let media = data_sets::scheduled(&env).await?;
    s3::run(&env).await?;
    s3::tiers(&env).await?;
    dr::drill().await?;
    data_sets::expire(&env, media).await?;
    println!(
        "\nDashboard: {}/_lifeboat/dashboard/ (the recovery-point timeline, RPO and 3-2-1, cost, \
         drills; served while the local stack is up: `make up` keeps it running, `make down` stops it)",
        lifeboat_tests::endpoint()
    );
    Ok(())
}
