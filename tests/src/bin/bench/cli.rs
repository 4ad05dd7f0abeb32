//! The `lifeboat` CLI from start to answer: `lifeboat points list --resource <arn>` against
//! the admin API the local stack serves over HTTP (SigV4-signed, verified by the stack's
//! gateway, answered by the real `admin-api` binary), median of 20 runs; beside a one-shot
//! `boto3` query of the same catalog index (the AWS CLI is not installed here; a Python
//! process making the one DynamoDB query is what `aws dynamodb query` does).

use std::process::Command;
use std::time::Instant;

use lifeboat_tests::{TestEnv, moto_port, repo_root};

use super::{Figure, Result, err, median};

const RUNS: usize = 20;

pub fn cli_figure() -> Result<Figure> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(measure())
}

async fn measure() -> Result<Figure> {
    eprintln!("lifeboat points list, {RUNS} runs, beside a one-shot catalog query…");
    let env = TestEnv::local_deployment().await?;
    let policy = env
        .put_policy(r#"{"name":"{prefix}-cli","every":"1day","rpo":"26h","retain":3}"#)
        .await?;
    let db = env.name("clibench");
    let arn = env.create_instance(&db, policy.name.as_str()).await?;
    create_snapshots::handle(
        &create_snapshots::Deps {
            ports: env.ports(),
            config: env.config(""),
            runs: create_snapshots::DataRuns::default(),
        },
        lifeboat_tests::tick_event(
            &chrono::Utc::now().to_rfc3339(),
            &format!("{}-bench-create", env.prefix),
        ),
    )
    .await
    .map_err(|e| err(e.to_string()))?;

    let exe = std::env::current_exe()?;
    let cli = exe
        .parent()
        .map(|d| d.join("lifeboat"))
        .filter(|p| p.exists())
        .ok_or_else(|| err("the lifeboat binary is not built next to the bench (cargo build -p lifeboat-cli)"))?;
    let api = format!("http://127.0.0.1:{}/v1", moto_port() + 1);
    let mut lifeboat = Vec::with_capacity(RUNS);
    let mut found = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let out = Command::new(&cli)
            .args(["--output", "json", "points", "list", "--resource", &arn])
            .env("LIFEBOAT_API_URL", &api)
            .env("AWS_ACCESS_KEY_ID", "LBLOCALVIEWER")
            .env("AWS_SECRET_ACCESS_KEY", "lifeboat-local-viewer")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_SESSION_TOKEN")
            .output()?;
        lifeboat.push(started.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            return Err(err(format!(
                "lifeboat failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        found = answer["items"].as_array().map_or(0, Vec::len);
    }

    let python = repo_root().join(".venv/bin/python");
    let script = format!(
        "import boto3\n\
         c = boto3.client('dynamodb', endpoint_url='http://127.0.0.1:{port}', region_name='us-east-1',\n\
             aws_access_key_id='test', aws_secret_access_key='test')\n\
         r = c.query(TableName='{table}', IndexName='by-resource', ScanIndexForward=False, Limit=50,\n\
             KeyConditionExpression='gsi1pk = :r', ExpressionAttributeValues={{':r': {{'S': 'RES#{arn}'}}}})\n\
         print(len(r['Items']))\n",
        port = moto_port(),
        table = lifeboat_tests::LOCAL_TABLE,
    );
    let mut peer = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let out = Command::new(&python).args(["-c", &script]).output()?;
        peer.push(started.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            return Err(err(format!(
                "the peer query failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    let value = median(lifeboat);
    let peer_value = median(peer);
    Ok(Figure {
        name: "lifeboat points list, start to answer (median of 20)".into(),
        value: Some(value),
        unit: "ms",
        peer: "a one-shot boto3 query of the catalog's by-resource index (what `aws dynamodb query` does)".into(),
        peer_value: Some(peer_value),
        target: "reported beside its peer (no target set)".into(),
        met: None,
        notes: vec![format!(
            "the CLI signs with SigV4, the stack's gateway verifies it and invokes the admin-api binary, which reads the catalog and renders; {found} point(s) listed"
        )],
    })
}
