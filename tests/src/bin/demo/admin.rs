//! The demo's admin API part, driven through the `lifeboat` CLI: each command a SigV4-signed
//! HTTP request to the admin API the local stack serves (verified by its gateway, answered
//! by the real `admin-api` binary) as one of the local principals: a read, a refusal, and
//! a restore previewed, confirmed with its token and followed to the end.

use std::process::Command;

use base64::Engine as _;
use lifeboat_ports::Catalog;
use lifeboat_tests::{BoxError, Result, TestEnv, moto_port};
use serde_json::Value;

/// The local principals (infra/local/api_gateway.py): access key, secret, role.
const VIEWER: (&str, &str, &str) = ("LBLOCALVIEWER", "lifeboat-local-viewer", "viewer");
const OPERATOR: (&str, &str, &str) = ("LBLOCALOPERATOR", "lifeboat-local-operator", "operator");
/// The local deployment's signing-key secret (infra/local/functions.env).
const SIGNING_SECRET: &str = "lifeboat/confirm-signing-key";

async fn signing_secret(env: &TestEnv) {
    let sm = aws_sdk_secretsmanager::Client::new(&env.primary);
    if sm.describe_secret().secret_id(SIGNING_SECRET).send().await.is_err() {
        let key = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
        let _ = sm.create_secret().name(SIGNING_SECRET).secret_string(key).send().await;
    }
}

fn err(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}

/// `lifeboat --output json <args>` as `who`: its exit code, its JSON answer (or `Null`)
/// and what it said on stderr.
fn lifeboat(who: (&str, &str, &str), args: &[&str]) -> Result<(i32, Value, String)> {
    let exe = std::env::current_exe()?;
    let cli = exe
        .parent()
        .map(|d| d.join("lifeboat"))
        .filter(|p| p.exists())
        .ok_or_else(|| err("the lifeboat binary is not built next to the demo (cargo build -p lifeboat-cli)"))?;
    let out = Command::new(cli)
        .args(["--output", "json"])
        .args(args)
        .env("LIFEBOAT_API_URL", format!("http://127.0.0.1:{}/v1", moto_port() + 1))
        .env("AWS_ACCESS_KEY_ID", who.0)
        .env("AWS_SECRET_ACCESS_KEY", who.1)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()?;
    let answer = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Ok((out.status.code().unwrap_or(-1), answer, said))
}

fn line(command: &str, who: (&str, &str, &str), code: i32, what: &str) {
    println!("  lifeboat {command:<34} as {:<8} → exit {code} {what}", who.2);
}

/// `db`/`arn`: a demo database with an available recovery point in the catalog.
pub async fn run(env: &TestEnv, db: &str, arn: &str) -> Result<()> {
    println!(
        "\nAdmin API through the lifeboat CLI (SigV4 over HTTP to the local stack's API, the real admin-api binary):"
    );
    signing_secret(env).await;

    let (code, resources, _) = lifeboat(VIEWER, &["resources"])?;
    let n = resources["items"].as_array().map_or(0, Vec::len);
    line("resources", VIEWER, code, &format!("{n} protected resources"));

    let (code, metrics, _) = lifeboat(VIEWER, &["metrics"])?;
    let storage = &metrics["storage"];
    let sized: u64 = storage["tiers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["items"].as_u64())
        .sum();
    line(
        "metrics",
        VIEWER,
        code,
        &format!(
            "storage ${} a month for {sized} sized recovery point(s) (snapshots at their allocated size, an upper bound), {} unsized",
            storage["total_usd"].as_str().unwrap_or("?"),
            storage["unsized_points"]
        ),
    );

    let point = env
        .catalog()
        .by_resource(arn, 10)
        .await?
        .into_iter()
        .filter(|p| p.location.as_str() == lifeboat_tests::PRIMARY && p.is_restorable())
        .max_by_key(|p| p.created_at)
        .ok_or_else(|| err(format!("no restorable recovery point of {db}")))?;
    let target = format!("{db}-restored");
    // The local estate runs no VPC, so the restore is allowed into the default network
    // explicitly (without it, the preview is refused naming the missing subnet group).
    let preview_args = [
        "restore",
        "preview",
        point.id.as_str(),
        "--target",
        target.as_str(),
        "--allow-default-network",
    ];
    let (code, _, said) = lifeboat(VIEWER, &preview_args)?;
    line(
        "restore preview <point>",
        VIEWER,
        code,
        said.trim_start_matches("lifeboat: "),
    );

    let (code, preview, said) = lifeboat(OPERATOR, &preview_args)?;
    let restore = preview["restore"]["id"].as_str().unwrap_or_default().to_owned();
    let token = preview["confirmationToken"].as_str().unwrap_or_default().to_owned();
    if code != 0 || token.is_empty() {
        return Err(err(format!("restore preview refused: {said}")));
    }
    line(
        "restore preview <point>",
        OPERATOR,
        code,
        &format!(
            "preview: {} → new instance {target}, about {} min; token until {}",
            point.snapshot_name,
            preview["restore"]["estimatedMinutes"],
            preview["expiresAt"].as_str().unwrap_or("?")
        ),
    );
    let confirm = ["restore", "confirm", restore.as_str(), "--token", token.as_str()];
    let (code, started, said) = lifeboat(OPERATOR, &confirm)?;
    if code != 0 {
        return Err(err(format!("restore confirm refused: {said}")));
    }
    line(
        "restore confirm <id> --token …",
        OPERATOR,
        code,
        started["restore"]["state"].as_str().unwrap_or("?"),
    );
    let (code, _, _) = lifeboat(OPERATOR, &confirm)?;
    line(
        "restore confirm <id> --token …",
        OPERATOR,
        code,
        "the same token again: refused (conflict), nothing changed",
    );
    let mut progress = Value::Null;
    for _ in 0..20 {
        let (_, p, _) = lifeboat(VIEWER, &["restore", "status", restore.as_str()])?;
        progress = p;
        if progress["restore"]["state"] != "restoring" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    line(
        "restore status <id>",
        VIEWER,
        0,
        &format!("{} ({})", progress["restore"]["state"].as_str().unwrap_or("?"), target),
    );
    println!("  On AWS the same commands sign with your credentials: LIFEBOAT_API_URL=<AdminApiUrl output> lifeboat …");
    Ok(())
}
