//! The demo's admin API part: a few calls through the real `admin-api` binary, as API
//! Gateway would pass them (the caller's IAM identity in the request context): a read, a
//! refusal, and a restore previewed, confirmed with its token and followed to the end.

use base64::Engine as _;
use lifeboat_ports::Catalog;
use lifeboat_tests::api::{call, request};
use lifeboat_tests::{BoxError, Result, TestEnv};
use serde_json::{Value, json};

const VIEWER: &str = "arn:aws:iam::123456789012:user/lifeboat-viewer";
const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/LifeboatOperator/bob";
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

fn line(method: &str, path: &str, who: &str, status: u64, what: &str) {
    let role = match who {
        VIEWER => "viewer",
        OPERATOR => "operator",
        _ => "someone else",
    };
    println!("  {method:<5} {path:<30} as {role:<8} → {status} {what}");
}

/// `db`/`arn`: a demo database with an available recovery point in the catalog.
pub async fn run(env: &TestEnv, db: &str, arn: &str) -> Result<()> {
    println!("\nAdmin API (the real admin-api binary, API Gateway REST events, IAM identities):");
    signing_secret(env).await;
    let id = |what: &str| format!("{}-demo-{what}", env.prefix);

    let (status, _, resources) = call(env, &request("GET", "/resources", VIEWER, None, &id("resources"))).await;
    let n = resources["items"].as_array().map_or(0, Vec::len);
    line("GET", "/resources", VIEWER, status, &format!("{n} protected resources"));

    let (status, _, metrics) = call(env, &request("GET", "/metrics", VIEWER, None, &id("metrics"))).await;
    let storage = &metrics["storage"];
    let sized: u64 = storage["tiers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["items"].as_u64())
        .sum();
    line(
        "GET",
        "/metrics",
        VIEWER,
        status,
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
    let body = json!({"recoveryPoint": point.id.as_str(), "target": target,
                      "placement": {"allowDefaultNetwork": true}});
    let (status, _, refused) = call(env, &request("POST", "/restores", VIEWER, Some(&body), &id("r-viewer"))).await;
    line(
        "POST",
        "/restores",
        VIEWER,
        status,
        refused["title"].as_str().unwrap_or_default(),
    );

    let (status, _, preview) = call(
        env,
        &request("POST", "/restores", OPERATOR, Some(&body), &id("r-preview")),
    )
    .await;
    let restore = preview["restore"]["id"].as_str().unwrap_or_default().to_owned();
    let token = preview["confirmationToken"].as_str().unwrap_or_default().to_owned();
    line(
        "POST",
        "/restores",
        OPERATOR,
        status,
        &format!(
            "preview: {} → new instance {target}, about {} min; token until {}",
            point.snapshot_name,
            preview["restore"]["estimatedMinutes"],
            preview["expiresAt"].as_str().unwrap_or("?")
        ),
    );
    if status != 201 || token.is_empty() {
        return Err(err(format!("restore preview refused: {preview}")));
    }
    let confirm = format!("/restores/{restore}/confirm");
    let (status, _, started) = call(
        env,
        &request(
            "POST",
            &confirm,
            OPERATOR,
            Some(&json!({"token": token})),
            &id("r-confirm"),
        ),
    )
    .await;
    line(
        "POST",
        "/restores/{id}/confirm",
        OPERATOR,
        status,
        started["restore"]["state"].as_str().unwrap_or("?"),
    );
    let (status, _, again) = call(
        env,
        &request(
            "POST",
            &confirm,
            OPERATOR,
            Some(&json!({"token": token})),
            &id("r-again"),
        ),
    )
    .await;
    line(
        "POST",
        "/restores/{id}/confirm",
        OPERATOR,
        status,
        "the same token again: refused, nothing changed",
    );
    let _ = again;
    let mut progress = Value::Null;
    for _ in 0..20 {
        let (_, _, p) = call(
            env,
            &request("GET", &format!("/restores/{restore}"), VIEWER, None, &id("r-get")),
        )
        .await;
        progress = p;
        if progress["restore"]["state"] != "restoring" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    line(
        "GET",
        "/restores/{id}",
        VIEWER,
        200,
        &format!("{} ({})", progress["restore"]["state"].as_str().unwrap_or("?"), target),
    );
    println!("  With AWS credentials, the same calls are SigV4-signed HTTPS requests, e.g.:");
    println!("    awscurl --service execute-api -X GET \"$API_URL/recovery-points?resource=<arn>&limit=5\"");
    println!(
        "    awscurl --service execute-api -X POST \"$API_URL/restores\" -d '{{\"recoveryPoint\":\"<id>\",\"target\":\"orders-restored\"}}'"
    );
    println!(
        "    awscurl --service execute-api -X POST \"$API_URL/restores/<id>/confirm\" -d '{{\"token\":\"<token>\"}}'"
    );
    Ok(())
}
