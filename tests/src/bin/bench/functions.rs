//! Small, fast functions: each function's release binary as `sam build` ships it (the
//! release profile: fat LTO, stripped), measured under a local Lambda runtime API that this
//! process serves:
//! - its size on disk;
//! - its cold start: process spawn to its first connection to the runtime API (which it
//!   opens to ask for work), median of several spawns;
//! - its peak resident memory (`VmHWM`), read when it posts its answer to one of its
//!   sample events, run against the local stack.
//!
//! The peer is the smallest Rust function on the same runtime (`lifeboat-echo`:
//! lambda_runtime echoing its event, the same profile), measured the same way in the same
//! run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Figure, Result, err};

/// Each function and the sample event it answers for the memory figure (one its local
/// deployment handles; samples dated by a schedule are delivered with the current time).
const FUNCTIONS: &[(&str, &str)] = &[
    ("admin-api", "get-resources-viewer.json"),
    ("archive-bundles", "archive.json"),
    ("backup-config", "backup.json"),
    ("backup-objects", "plan-shards.json"),
    ("copy-snapshots", "scheduler-tick.json"),
    ("create-snapshots", "scheduler-tick.json"),
    ("expire-recovery-points", "scheduler-tick.json"),
    ("export-snapshots", "dry-run.json"),
    ("plan-backups", "dry-run.json"),
    ("restore-objects", "dry-run.json"),
    ("run-dr-step", "precheck-unknown-plan.json"),
    ("send-digest", "scheduler-tick.json"),
    ("test-restores", "advance.json"),
    ("tier-backups", "dry-run.json"),
    ("track-recovery-points", "scheduler-tick.json"),
    ("verify-backups", "due.json"),
];

/// Spawns per binary for the cold-start median.
const SPAWNS: usize = 7;
const SIZE_TARGET_MB: f64 = 10.0;
const COLD_START_TARGET_MS: f64 = 30.0;
const RSS_TARGET_MB: f64 = 40.0;
/// How long a binary may take to ask for work or to answer before it counts as hung.
const LIMIT: Duration = Duration::from_mins(1);

/// One binary's measurements.
struct Measured {
    name: String,
    size_mb: f64,
    cold_start_ms: f64,
    peak_rss_mb: f64,
    outcome: String,
}

/// The three figures (largest size, slowest cold start, largest peak memory of the 16
/// functions, each beside the echo function's), from the release binaries in `release`
/// and the local stack's function environment `env_file`.
pub fn function_figures(release: &Path, env_file: &Path, events: &Path) -> Result<Vec<Figure>> {
    let env = read_env(env_file)?;
    let rt = tokio::runtime::Runtime::new()?;
    let echo = rt.block_on(measure(
        &release.join("lifeboat-echo"),
        "lifeboat-echo",
        &env,
        &serde_json::json!({"ping": 1}),
    ))?;
    let mut functions = Vec::with_capacity(FUNCTIONS.len());
    for (name, sample) in FUNCTIONS {
        let text = std::fs::read_to_string(events.join(name).join(sample))?;
        let event = delivered_now(serde_json::from_str(&text)?);
        functions.push(rt.block_on(measure(&release.join(name), name, &env, &event))?);
    }
    let detail = |f: &dyn Fn(&Measured) -> String| {
        functions
            .iter()
            .map(|m| format!("{} {}", m.name, f(m)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let largest = |f: &dyn Fn(&Measured) -> f64| functions.iter().map(f).fold(0.0_f64, f64::max);
    let outcomes = detail(&|m| m.outcome.clone());
    Ok(vec![
        figure(
            "largest function binary (release, stripped)",
            largest(&|m| m.size_mb),
            "MB",
            echo.size_mb,
            SIZE_TARGET_MB,
            vec![detail(&|m| format!("{:.1}", m.size_mb))],
        ),
        figure(
            "slowest function cold start (spawn → first runtime API request, median of 7)",
            largest(&|m| m.cold_start_ms),
            "ms",
            echo.cold_start_ms,
            COLD_START_TARGET_MS,
            vec![detail(&|m| format!("{:.1}", m.cold_start_ms))],
        ),
        figure(
            "largest function peak memory on a sample event (VmHWM)",
            largest(&|m| m.peak_rss_mb),
            "MB",
            echo.peak_rss_mb,
            RSS_TARGET_MB,
            vec![
                detail(&|m| format!("{:.1}", m.peak_rss_mb)),
                format!("answers: {outcomes}"),
            ],
        ),
    ])
}

fn figure(name: &str, value: f64, unit: &'static str, peer: f64, target: f64, notes: Vec<String>) -> Figure {
    Figure {
        name: name.into(),
        value: Some(value),
        unit,
        peer: "lifeboat-echo: lambda_runtime echoing its event, the same release profile".into(),
        peer_value: Some(peer),
        target: format!("below {target} {unit} for every function"),
        met: Some(value < target),
        notes,
    }
}

/// `KEY=value` lines of the local stack's function environment (comments skipped).
fn read_env(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("{}: {e} (is the local stack up? make up)", path.display())))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), unquote(v.trim()).to_owned()))
        .collect())
}

/// A value without the quotes around it (`'...'` or `"..."`), as an env file means it.
fn unquote(v: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// The sample as its schedule would deliver it now (a fixed date would be refused).
fn delivered_now(mut event: Value) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for field in ["scheduledTime", "time"] {
        if event.get(field).and_then(Value::as_str).is_some() {
            event[field] = Value::String(now.clone());
        }
    }
    event
}

async fn measure(exe: &Path, name: &str, env: &[(String, String)], event: &Value) -> Result<Measured> {
    if !exe.is_file() {
        return Err(err(format!(
            "{} is not built (cargo build --release --bin {name})",
            exe.display()
        )));
    }
    let size_mb = std::fs::metadata(exe)?.len() as f64 / 1_048_576.0;
    let mut starts = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let (listener, api) = listen().await?;
        let started = Instant::now();
        let mut child = spawn(exe, name, env, &api)?;
        let first = tokio::time::timeout(LIMIT, listener.accept()).await;
        let took = started.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        first
            .map_err(|_| err(format!("{name} did not ask for work within {LIMIT:?}")))?
            .map_err(|e| err(format!("{name}: {e}")))?;
        starts.push(took.as_secs_f64() * 1000.0);
    }
    starts.sort_by(f64::total_cmp);
    let (peak_rss_mb, outcome) = answer_one(exe, name, env, event).await?;
    Ok(Measured {
        name: name.to_owned(),
        size_mb,
        cold_start_ms: starts[SPAWNS / 2],
        peak_rss_mb,
        outcome,
    })
}

async fn listen() -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    Ok((listener, api))
}

fn spawn(exe: &Path, name: &str, env: &[(String, String)], api: &str) -> Result<Child> {
    Ok(Command::new(exe)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Serves `event` to a fresh process of `exe`, waits for its answer, and reads its peak
/// resident memory before it is stopped: (MB, "response" or "error <type>").
async fn answer_one(exe: &Path, name: &str, env: &[(String, String)], event: &Value) -> Result<(f64, String)> {
    let (listener, api) = listen().await?;
    let mut child = spawn(exe, name, env, &api)?;
    let served = tokio::time::timeout(LIMIT, serve_once(&listener, event, child.id())).await;
    let _ = child.kill();
    let _ = child.wait();
    served.map_err(|_| err(format!("{name} did not answer within {LIMIT:?}")))?
}

/// Answers the runtime's requests until the function posts its result for the one
/// invocation served; returns the process's peak memory, read as the result arrives (the
/// process is alive, waiting for the answer), and how it answered.
async fn serve_once(listener: &TcpListener, event: &Value, pid: u32) -> Result<(f64, String)> {
    let body = event.to_string();
    let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
    let mut served = false;
    loop {
        let (mut stream, _) = listener.accept().await?;
        // One connection may carry several requests (keep-alive).
        loop {
            let Some((method, path, payload)) = read_request(&mut stream).await? else {
                break;
            };
            if method == "GET" && path.ends_with("/invocation/next") && !served {
                served = true;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nlambda-runtime-aws-request-id: bench-1\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(body.as_bytes()).await?;
            } else if method == "POST" && path.contains("/invocation/bench-1/") {
                let peak = peak_rss_mb(pid)?;
                stream
                    .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
                    .await?;
                if path.ends_with("/response") {
                    return Ok((peak, "response".into()));
                }
                let kind = serde_json::from_slice::<Value>(&payload)
                    .ok()
                    .and_then(|v| v.get("errorType").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                return Ok((peak, format!("error {kind}")));
            } else {
                // An init error (the function could not start), or anything else.
                let peak = peak_rss_mb(pid)?;
                stream
                    .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
                    .await?;
                if path.ends_with("/init/error") {
                    return Ok((peak, format!("init error {}", String::from_utf8_lossy(&payload))));
                }
            }
        }
    }
}

/// One HTTP/1.1 request: method, path and body; `None` when the connection closed.
async fn read_request(stream: &mut TcpStream) -> Result<Option<(String, String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok(Some((method, path, body)))
}

/// The process's peak resident set (`VmHWM` in /proc), in MB.
fn peak_rss_mb(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .ok_or_else(|| err(format!("no VmHWM for process {pid}")))?;
    Ok(kib / 1024.0)
}

/// Where the release binaries are: beside this bench when it is a release build, else the
/// target directory's `release/`.
pub fn release_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| err("the bench has no directory"))?;
    if dir.ends_with("release") {
        return Ok(dir.to_path_buf());
    }
    Ok(dir
        .parent()
        .map_or_else(|| dir.join("../release"), |d| d.join("release")))
}
