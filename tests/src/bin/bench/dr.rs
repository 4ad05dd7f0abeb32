//! A full local DR drill on the real state machine (moto's Step Functions engine → the
//! bridge → `run-dr-step`): wall time from StartExecution to the execution's end (torn
//! down and reported), and how it splits between Wait states, Lifeboat's own steps and
//! the rest (engine, bridge, emulator). The first drill warms the function up (its cold
//! start and, on a fresh stack, its build) and is not counted.

use lifeboat_domain::ResourceKind;
use lifeboat_tests::dr::DrEnv;
use lifeboat_tests::{DR, PRIMARY};
use serde_json::{Value, json};

use super::{BoxError, Figure, Result};

const TARGET_SECS: f64 = 15.0;
const RUNS: usize = 3;

pub fn drill_figure() -> Result<Figure> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(drills())
}

async fn drills() -> Result<Figure> {
    let dr = DrEnv::start().await?;
    let db = dr.env.name("bench");
    let arn = dr.source_instance(&db).await?;
    let cluster = dr.env.name("bench-c");
    let cluster_arn = dr.source_cluster(&cluster).await?;
    dr.proven_dr_copies(&[
        (ResourceKind::RdsInstance, &db, &arn),
        (ResourceKind::AuroraCluster, &cluster, &cluster_arn),
    ])
    .await?;
    let plan = dr
        .put_plan(&format!(
            r#"{{"name": "{{prefix}}-bench", "source_region": "{PRIMARY}", "dr_region": "{DR}",
                "databases": [{{"arn": "{arn}"}}, {{"arn": "{cluster_arn}", "step": 2}}],
                "network": {{"allow_default_network": true}},
                "rto": "30m", "rpo": "15m", "poll_interval": "1s"}}"#
        ))
        .await?;
    let mut runs = Vec::new();
    for i in 0..=RUNS {
        let name = format!("{}-bench-{i}", dr.env.prefix);
        let done = dr.run(&name, json!({"plan": plan.name, "mode": "drill"})).await?;
        if done.status != "SUCCEEDED" {
            return Err(BoxError::from(format!(
                "drill {name} ended {}: {:?}",
                done.status, done.cause
            )));
        }
        if i == 0 {
            continue;
        }
        let report = dr.report(&plan.name, &name).await?;
        let busy_ms: u64 = report["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["busy_ms"].as_u64())
            .sum();
        runs.push(json!({
            "wall_s": done.wall.as_secs_f64(),
            "wait_s": done.waiting.as_secs_f64(),
            "lifeboat_s": busy_ms as f64 / 1000.0,
            "rto_s": report["measurement"]["rto_secs"],
            "rpo_s": report["measurement"]["rpo_secs"],
        }));
    }
    let median = |k: &str| {
        let mut xs: Vec<f64> = runs.iter().filter_map(|r| r[k].as_f64()).collect();
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied()
    };
    let (wall, wait, ours) = (median("wall_s"), median("wait_s"), median("lifeboat_s"));
    let share = |x: Option<f64>| match (x, wall) {
        (Some(x), Some(w)) if w > 0.0 => format!("{:.0}%", 100.0 * x / w),
        _ => "?".into(),
    };
    let figure = Figure {
        name: "full local DR drill, trigger → torn down (median of 3)".into(),
        value: wall,
        unit: "s",
        peer: "—".into(),
        peer_value: None,
        target: format!("< {TARGET_SECS} s"),
        met: wall.map(|w| w < TARGET_SECS),
        notes: vec![
            format!(
                "Wait states {} ({:.1} s), Lifeboat's steps {} ({:.2} s), the rest is the engine, the bridge and the emulator",
                share(wait),
                wait.unwrap_or(0.0),
                share(ours),
                ours.unwrap_or(0.0)
            ),
            format!("runs: {}", Value::Array(runs.clone())),
        ],
    };
    Ok(figure)
}
