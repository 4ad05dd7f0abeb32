//! `make bench`: Lifeboat's performance figures, each measured beside its peer in the same
//! run, printed as a table and written to `target/bench/summary.json` so figures can be
//! compared over time. Targets are checked here, never by timed assertions in tests.
//!
//! Figures (each measured in a child process of its own, so one figure's allocations do
//! not show in another's peak memory):
//! 1. Planning time: `plan` over 1,000,000 recovery points of 10,000 resources. Peer: the
//!    same plan over 100,000 points (so the ratio shows how it scales; 10 is linear).
//! 2. Peak memory (VmHWM) of that planning run, input built and after planning. Peer: the
//!    100,000-point run.
//! 3. Retention decision against shelvery (`infra/bench/shelvery_peer.py`, run from the
//!    bench venv) on the identical input, written once to `target/bench/`. Both sides'
//!    kept/expired counts are printed and compared backup by backup.
//! 4. Catalog and snapshot calls of one scheduled cycle (create → copy → track) on the
//!    in-memory fakes, against the minimum such a cycle needs (formula printed).
//! 5. S3 verification hashing (SHA-256 against openssl, CRC64/NVME, constant memory).
//! 6. Incremental S3 backup of N objects with 1% changed against `aws s3 sync` between the
//!    same buckets on the local stack (`bench/sync.rs`).
//! 7. A full local DR drill on the real state machine.
//!
//! Usage: `lifeboat-bench [--plan-points N] [--retention-resources N] [--cycle-resources N]
//! [--sync-objects N]` (defaults 1,000,000, 500, 50 and 10,000; `make bench
//! SYNC_OBJECTS=100000` for the large run). The bench venv's Python is `$LIFEBOAT_BENCH_PYTHON`,
//! default `.venv-bench/bin/python`.

#![allow(
    clippy::too_many_lines,
    reason = "each figure is one measurement script: set up, run both sides, tabulate"
)]
// Figures are printed numbers: the casts between counts, durations and floats are wanted.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

#[path = "bench/dr.rs"]
mod dr;
#[path = "bench/expiry.rs"]
mod expiry;
#[path = "bench/restore_tests.rs"]
mod restore_tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Utc};
use lifeboat::app::Ports;
use lifeboat::config::Config;
use lifeboat::events::ScheduleTick;
use lifeboat_domain::naming::snapshot_name;
use lifeboat_domain::planner::{PlanInput, Planner, ProtectedResource, plan};
use lifeboat_domain::recovery_point::{Detail, Holds};
use lifeboat_domain::{
    Failure, Policy, PolicyName, PolicyProblems, RecoveryPoint, RecoveryPointId, Region, ResourceKind, ResourceRef,
    Slot, Status, Step,
};
use lifeboat_ports::{Catalog, PortResult, RunRecord};
use lifeboat_testkit::{Fakes, InMemoryCatalog, SnapshotOp};
use lifeboat_tests::{BoxError, Result, repo_root};
use serde_json::{Value, json};

#[path = "bench/cli.rs"]
mod cli;
#[path = "bench/functions.rs"]
mod functions;
#[path = "bench/s3.rs"]
mod s3;
#[path = "bench/sync.rs"]
mod sync;
#[path = "bench/verify.rs"]
mod verify;

const PRIMARY: &str = "us-east-1";
const DR: &str = "us-west-2";
const DR_KEY: &str = "alias/lifeboat-dr";
/// Planning runs per size; the median is the figure.
const PLAN_RUNS: usize = 3;
/// Retention decision runs per side; the median is the figure.
const RETENTION_RUNS: usize = 3;

/// Figure 1's policy: hourly, GFS, one copy target.
const GOLD: &str = r#"{"name":"gold","every":"1h","rpo":"2h",
    "retention":{"hourly":24,"daily":7,"weekly":4,"monthly":12},
    "copies":[{"region":"us-west-2"}]}"#;
/// Figure 3's policy: daily, with the keep counts shelvery also has (its defaults).
const DAILY: &str = r#"{"name":"daily","every":"1day","rpo":"25h",
    "retention":{"daily":14,"weekly":8,"monthly":12,"yearly":10}}"#;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..])
    } else {
        parent(&args)
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifeboat-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn err(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}

fn t(s: &str) -> Result<DateTime<Utc>> {
    Ok(s.parse()?)
}

fn policy(json: &str) -> Result<Policy> {
    Policy::from_json(json).map_err(|e| err(e.to_string()))
}

fn region(r: &str) -> Result<Region> {
    Region::parse(r).map_err(|e| err(e.to_string()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `VmHWM` and `VmRSS` of this process, in kB.
fn memory_kb() -> Result<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| err(format!("no {name} in /proc/self/status")))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

fn arg(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.replace('_', "").parse().ok())
            .ok_or_else(|| err(format!("{name} needs a number"))),
    }
}

// ---------------------------------------------------------------------------------------
// Children: one figure each, JSON on stdout.
// ---------------------------------------------------------------------------------------

fn child(args: &[String]) -> Result<()> {
    let out = match args.first().map(String::as_str) {
        Some("plan") => plan_child(arg(args, "--points", 1_000_000)?)?,
        Some("plan-stream") => plan_stream_child(arg(args, "--points", 1_000_000)?)?,
        Some("retention") => {
            let input = args.get(1).ok_or_else(|| err("retention needs the input path"))?;
            retention_child(Path::new(input))?
        }
        Some("cycle") => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(cycle_child(arg(args, "--resources", 50)?))?
        }
        Some(s) if s.starts_with("s3-") => s3::child(args)?,
        // The S3 sync figure alone (`--child sync [--sync-objects N]`), for a quick look.
        Some("sync") => {
            let root = repo_root().canonicalize()?;
            let python = std::env::var_os("LIFEBOAT_BENCH_PYTHON")
                .map_or_else(|| root.join(".venv-bench/bin/python"), PathBuf::from);
            let figures = sync::sync_figures(arg(args, "--sync-objects", 10_000)?, &python)?;
            Value::Array(figures.iter().map(Figure::to_json).collect())
        }
        // The function binaries' size, cold start and memory alone (`--child functions`;
        // needs the stack and the release binaries).
        Some("functions") => {
            let root = repo_root().canonicalize()?;
            let figures = functions::function_figures(
                &functions::release_dir()?,
                &root.join(".local/stack/functions.env"),
                &root.join("events"),
            )?;
            Value::Array(figures.iter().map(Figure::to_json).collect())
        }
        // The restore-test figure alone (`--child restore-tests`), for a quick look.
        Some("restore-tests") => restore_tests::restore_test_figure()?.to_json(),
        // The S3-run expiry figure alone (`--child expiry`; in memory, no stack needed).
        Some("expiry") => expiry::expiry_figure()?.to_json(),
        // The CLI figure alone (`--child cli`; needs the stack and the lifeboat binary).
        Some("cli") => cli::cli_figure()?.to_json(),
        // Verification beside raw GETs (`--child verify [--objects N] [--kib K]`; needs the stack).
        Some("verify") => {
            let measured = verify::child(arg(args, "--objects", 200)?, arg(args, "--kib", 256)?)?;
            if args.iter().any(|a| a == "--raw") {
                measured
            } else {
                verify::figure(&measured)?.to_json()
            }
        }
        other => return Err(err(format!("unknown child {other:?}"))),
    };
    println!("{out}");
    Ok(())
}

fn run_child(args: &[&str]) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).arg("--child").args(args).output()?;
    if !out.status.success() {
        return Err(err(format!(
            "child {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

// --- Figures 1 and 2: the planner at scale -----------------------------------------------

fn resource(r: usize) -> Result<ResourceRef> {
    let (kind, part) = if r % 5 == 4 {
        (ResourceKind::AuroraCluster, "cluster")
    } else {
        (ResourceKind::RdsInstance, "db")
    };
    let id = format!("db{r:05}");
    Ok(ResourceRef {
        kind,
        arn: format!("arn:aws:rds:{PRIMARY}:123456789012:{part}:{id}"),
        id,
        region: region(PRIMARY)?,
    })
}

#[allow(clippy::too_many_arguments)]
fn point(
    r: &ResourceRef,
    policy: &PolicyName,
    name: &str,
    location: &Region,
    source: Option<RecoveryPointId>,
    at: DateTime<Utc>,
    status: Status,
) -> RecoveryPoint {
    RecoveryPoint {
        id: RecoveryPointId::new(location, r.kind, name),
        resource: r.clone(),
        policy: policy.clone(),
        slot: Slot::containing(at, Duration::from_hours(1)),
        location: location.clone(),
        snapshot_name: name.to_owned(),
        snapshot_arn: Some(format!("arn:aws:rds:{location}:123456789012:snapshot:{name}")),
        shared_with: Vec::new(),
        kms_key_id: source.is_some().then(|| DR_KEY.to_owned()),
        source,
        status,
        failure: None,
        adopted: false,
        emergency: false,
        verified_at: None,
        holds: Holds::default(),
        verification_failed: None,
        size_bytes: None,
        detail: Detail::of(r.kind),
        created_at: at,
        updated_at: at + chrono::Duration::minutes(5),
        version: 1,
    }
}

/// The estate of figure 1, 100 recovery points per resource:
/// - primary (us-east-1): the last 42 hourly points, then 8 dailies at midnight (2 to 9
///   days back), each with its copy in us-west-2: 50 + 50;
/// - every 10th resource has its newest copy still pending (in flight), every 100th has
///   no copy of its newest point yet (and the record of a snapshot that failed 8 days ago
///   instead), so the copy queue has candidates and a budget to respect;
/// - holds: a legal hold on every 50th resource, a lock on every 200th, a restore using a
///   point on every 500th; every resource's newest daily is verified, and an older hourly
///   on every 7th.
fn estate(resources: usize, now: DateTime<Utc>) -> Result<(Vec<ProtectedResource>, Vec<RecoveryPoint>)> {
    estate_of(0..resources, now)
}

/// The resources numbered `range` of [`estate`]'s estate, and their points.
fn estate_of(
    range: std::ops::Range<usize>,
    now: DateTime<Utc>,
) -> Result<(Vec<ProtectedResource>, Vec<RecoveryPoint>)> {
    let resources = range.len();
    let gold = PolicyName::parse("gold").map_err(|e| err(e.to_string()))?;
    let (primary, dr) = (region(PRIMARY)?, region(DR)?);
    let hour = Slot::containing(now, Duration::from_hours(1)).start();
    let midnight = now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    let mut protected = Vec::with_capacity(resources);
    let mut points = Vec::with_capacity(resources * 100);
    for r in range {
        let res = resource(r)?;
        let no_copy_yet = r % 100 == 0;
        let copy_in_flight = r % 10 == 0 && !no_copy_yet;
        let instants = (1..=42)
            .map(|h| hour - chrono::Duration::hours(h))
            .chain((2..=9).map(|d| midnight - chrono::Duration::days(d)));
        for (i, at) in instants.enumerate() {
            let name = snapshot_name(&gold, &res, Slot::containing(at, Duration::from_hours(1)));
            let newest = i == 0;
            let status = match (newest, no_copy_yet, copy_in_flight) {
                (true, true, _) => Status::Available,
                (true, false, true) => Status::Copying,
                _ => Status::Copied,
            };
            let mut p = point(&res, &gold, &name, &primary, None, at, status);
            p.verified_at = (at == midnight - chrono::Duration::days(2) || (i == 29 && r % 7 == 0))
                .then(|| at + chrono::Duration::hours(3));
            p.holds.legal_hold = r % 50 == 0 && at == midnight - chrono::Duration::days(5);
            if r % 500 == 7 && i == 34 {
                p.holds.in_use_by = Some("restore-42".into());
            }
            let source = p.id.clone();
            points.push(p);
            if newest && no_copy_yet {
                continue;
            }
            let copy_status = if newest && copy_in_flight {
                Status::Pending
            } else {
                Status::Available
            };
            let mut c = point(&res, &gold, &name, &dr, Some(source), at, copy_status);
            if r % 200 == 3 && at == midnight - chrono::Duration::days(9) {
                c.holds.locked_until = Some(now + chrono::Duration::days(30));
            }
            points.push(c);
        }
        if no_copy_yet {
            // The 100th record: a snapshot that failed a week ago (cleared after 7 days).
            let at = midnight - chrono::Duration::days(8) + chrono::Duration::hours(6);
            let name = snapshot_name(&gold, &res, Slot::containing(at, Duration::from_hours(1)));
            let mut p = point(&res, &gold, &name, &primary, None, at, Status::Failed);
            p.snapshot_arn = None;
            p.failure = Some(Failure {
                step: Step::Create,
                code: "snapshot-failed".into(),
                message: "AWS reports the snapshot as failed".into(),
            });
            points.push(p);
        }
        protected.push(ProtectedResource {
            resource: res,
            policy: gold.clone(),
            windows: Vec::new(),
        });
    }
    Ok((protected, points))
}

/// Figure 2: the same plan made resource by resource ([`Planner`]), each resource's
/// history built just before it is planned and dropped after, as the catalog pages them in.
fn plan_stream_child(points: usize) -> Result<Value> {
    let now = t("2026-03-18T12:05:00Z")?;
    let gold = policy(GOLD)?;
    let policies = BTreeMap::from([(gold.name.clone(), gold)]);
    let keys = BTreeMap::from([(region(DR)?, DR_KEY.to_owned())]);
    let input = PlanInput {
        policies: &policies,
        resources: &[],
        points: &[],
        emergencies: &[],
        copy_budget_per_region: 5,
        dr_kms_keys: &keys,
        now,
        force: false,
    };
    let started = Instant::now();
    let mut planning = Duration::ZERO;
    let mut planner = Planner::new(&input);
    let mut n = 0;
    for r in 0..points / 100 {
        let (resources, history) = estate_of(r..r + 1, now)?;
        n += history.len();
        let refs: Vec<&RecoveryPoint> = history.iter().collect();
        let t0 = Instant::now();
        for res in &resources {
            planner.add(Some(res), &refs);
        }
        planning += t0.elapsed();
    }
    let t0 = Instant::now();
    let p = std::hint::black_box(planner.finish());
    planning += t0.elapsed();
    let total = started.elapsed();
    Ok(json!({
        "points": n,
        "plan_ms": ms(planning),
        "total_ms": ms(total),
        "hwm_plan_kb": memory_kb()?.0,
        "plan": {
            "creates": p.creates.len(), "copies": p.copies.len(), "waiting": p.waiting.len(),
            "blocked": p.blocked.len(), "expiries": p.expiries.len(), "protected": p.protected.len(),
            "kept": p.kept,
        },
    }))
}

fn plan_child(points: usize) -> Result<Value> {
    let now = t("2026-03-18T12:05:00Z")?;
    let gold = policy(GOLD)?;
    let policies = BTreeMap::from([(gold.name.clone(), gold)]);
    let keys = BTreeMap::from([(region(DR)?, DR_KEY.to_owned())]);
    let started = Instant::now();
    let (resources, all) = estate(points / 100, now)?;
    let build = started.elapsed();
    let (hwm_input, rss_input) = memory_kb()?;
    let input = PlanInput {
        policies: &policies,
        resources: &resources,
        points: &all,
        emergencies: &[],
        copy_budget_per_region: 5,
        dr_kms_keys: &keys,
        now,
        force: false,
    };
    let mut runs = Vec::new();
    let mut summary = Value::Null;
    let mut hwm_plan = 0;
    for i in 0..PLAN_RUNS {
        let started = Instant::now();
        let p = std::hint::black_box(plan(std::hint::black_box(&input)));
        runs.push(ms(started.elapsed()));
        if i == 0 {
            hwm_plan = memory_kb()?.0;
            summary = json!({
                "creates": p.creates.len(), "copies": p.copies.len(), "waiting": p.waiting.len(),
                "blocked": p.blocked.len(), "expiries": p.expiries.len(), "protected": p.protected.len(),
                "kept": p.kept,
            });
        }
    }
    Ok(json!({
        "points": all.len(),
        "resources": resources.len(),
        "build_ms": ms(build),
        "plan_ms": runs,
        "hwm_input_kb": hwm_input,
        "rss_input_kb": rss_input,
        "hwm_plan_kb": hwm_plan,
        "recovery_point_bytes": std::mem::size_of::<RecoveryPoint>(),
        "plan": summary,
    }))
}

// --- Figure 3: retention decision, Lifeboat and shelvery on one input --------------------

/// The retention input: `resources` databases backed up once a day (as shelvery does) at
/// 00:00–01:59 UTC, with 380–439 days of history each, judged at 12:00 UTC so no expiry
/// boundary of either side falls near `now`.
fn write_retention_input(path: &Path, resources: usize) -> Result<(usize, DateTime<Utc>)> {
    let now = t("2026-03-18T12:00:00Z")?;
    let daily = policy(DAILY)?;
    let r = daily.retention;
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let header = json!({
        "now": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "keep": {"daily": r.daily, "weekly": r.weekly, "monthly": r.monthly, "yearly": r.yearly},
        "about": "one backup a day per resource; lines: resource, id (Lifeboat recovery point id), created (UTC)",
    });
    writeln!(out, "{header}")?;
    let mut n = 0;
    for i in 0..resources {
        let res = resource(i)?;
        let days = 380 + (i * 37) % 60;
        let minute = i64::try_from(i % 120)?;
        for d in 0..days {
            let at = (now.date_naive() - chrono::Days::new(d as u64))
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                + chrono::Duration::minutes(minute);
            let name = snapshot_name(&daily.name, &res, Slot::containing(at, Duration::from_hours(24)));
            let id = RecoveryPointId::new(&res.region, res.kind, &name);
            let line =
                json!({"resource": res.id, "id": id.as_str(), "created": at.format("%Y-%m-%dT%H:%M:%SZ").to_string()});
            writeln!(out, "{line}")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok((n, now))
}

struct Backup {
    resource: String,
    id: String,
    created: DateTime<Utc>,
}

fn read_retention_input(path: &Path) -> Result<(DateTime<Utc>, Vec<Backup>)> {
    let mut lines = BufReader::new(std::fs::File::open(path)?).lines();
    let header: Value = serde_json::from_str(&lines.next().ok_or_else(|| err("empty input"))??)?;
    let now = t(header["now"].as_str().ok_or_else(|| err("no now in the header"))?)?;
    let mut backups = Vec::new();
    for line in lines {
        let v: Value = serde_json::from_str(&line?)?;
        let field = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(|| err(format!("no {k}")));
        backups.push(Backup {
            resource: field("resource")?,
            id: field("id")?,
            created: t(&field("created")?)?,
        });
    }
    Ok((now, backups))
}

fn retention_child(input: &Path) -> Result<Value> {
    let (now, backups) = read_retention_input(input)?;
    let daily = policy(DAILY)?;
    // Per resource, its backups' indices and times (shelvery's side builds its backup
    // objects before timing too).
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<&str, (Vec<usize>, Vec<DateTime<Utc>>)> = HashMap::new();
    for (i, b) in backups.iter().enumerate() {
        let g = groups.entry(b.resource.as_str()).or_insert_with(|| {
            order.push(b.resource.clone());
            (Vec::new(), Vec::new())
        });
        g.0.push(i);
        g.1.push(b.created);
    }
    let groups: Vec<&(Vec<usize>, Vec<DateTime<Utc>>)> = order.iter().filter_map(|r| groups.get(r.as_str())).collect();

    let mut select_ms = Vec::new();
    let mut kept = vec![false; backups.len()];
    for _ in 0..RETENTION_RUNS {
        let started = Instant::now();
        for (indices, times) in &groups {
            let decided = daily.retention.select(times, daily.timezone, now);
            for (i, k) in indices.iter().zip(decided) {
                kept[*i] = k.is_some();
            }
        }
        select_ms.push(ms(started.elapsed()));
        std::hint::black_box(&kept);
    }

    // The same decision through the whole planner.
    let primary = region(PRIMARY)?;
    let mut resources = Vec::new();
    let mut points = Vec::with_capacity(backups.len());
    let mut refs: HashMap<&str, ResourceRef> = HashMap::new();
    for b in &backups {
        if !refs.contains_key(b.resource.as_str()) {
            let n: usize = b.resource.trim_start_matches("db").parse()?;
            let r = resource(n)?;
            resources.push(ProtectedResource {
                resource: r.clone(),
                policy: daily.name.clone(),
                windows: Vec::new(),
            });
            refs.insert(b.resource.as_str(), r);
        }
        let r = &refs[b.resource.as_str()];
        let id = RecoveryPointId::parse(&b.id).map_err(|e| err(e.to_string()))?;
        let name = id.as_str().rsplit('/').next().unwrap_or_default().to_owned();
        let mut p = point(r, &daily.name, &name, &primary, None, b.created, Status::Available);
        p.slot = Slot::containing(b.created, Duration::from_hours(24));
        points.push(p);
    }
    let policies = BTreeMap::from([(daily.name.clone(), daily.clone())]);
    let keys = BTreeMap::new();
    let input = PlanInput {
        policies: &policies,
        resources: &resources,
        points: &points,
        emergencies: &[],
        copy_budget_per_region: 5,
        dr_kms_keys: &keys,
        now,
        force: false,
    };
    let mut plan_ms = Vec::new();
    let mut plan_kept = 0;
    let mut plan_expired = HashSet::new();
    let mut protected = 0;
    for i in 0..RETENTION_RUNS {
        let started = Instant::now();
        let p = std::hint::black_box(plan(std::hint::black_box(&input)));
        plan_ms.push(ms(started.elapsed()));
        if i == 0 {
            plan_kept = p.kept;
            protected = p.protected.len();
            plan_expired = p.expiries.iter().map(|e| e.id.to_string()).collect();
        }
    }
    let plan_agrees = backups
        .iter()
        .zip(&kept)
        .all(|(b, k)| *k != plan_expired.contains(&b.id));
    Ok(json!({
        "n": backups.len(),
        "resources": groups.len(),
        "select_ms": select_ms,
        "plan_ms": plan_ms,
        "kept": kept.iter().filter(|k| **k).count(),
        "expired": kept.iter().filter(|k| !**k).count(),
        "decisions": kept.iter().map(|k| if *k { '1' } else { '0' }).collect::<String>(),
        "plan_kept": plan_kept,
        "plan_expired": plan_expired.len(),
        "plan_protected": protected,
        "plan_agrees_with_select": plan_agrees,
    }))
}

// --- Figure 4: calls of one scheduled cycle ----------------------------------------------

/// The in-memory catalog, counting each port call by operation (the fake counts only the
/// total), and the sizes that decide how many AWS requests a call becomes.
#[derive(Debug)]
struct CountingCatalog {
    inner: Arc<InMemoryCatalog>,
    calls: Mutex<BTreeMap<&'static str, usize>>,
    get_many_ids: Mutex<Vec<usize>>,
}

impl CountingCatalog {
    fn count(&self, op: &'static str) {
        *self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(op)
            .or_insert(0) += 1;
    }

    fn take(&self) -> (BTreeMap<&'static str, usize>, Vec<usize>) {
        (
            std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner)),
            std::mem::take(&mut *self.get_many_ids.lock().unwrap_or_else(PoisonError::into_inner)),
        )
    }
}

#[async_trait]
impl Catalog for CountingCatalog {
    async fn policies(&self) -> PortResult<Vec<std::result::Result<Policy, PolicyProblems>>> {
        self.count("policies");
        self.inner.policies().await
    }
    async fn put_policy(&self, policy: &Policy) -> PortResult<()> {
        self.count("put_policy");
        self.inner.put_policy(policy).await
    }
    async fn policy_document(&self, name: &str) -> PortResult<Option<String>> {
        self.count("policy_document");
        self.inner.policy_document(name).await
    }
    async fn replace_policy(&self, policy: &Policy, expected: Option<&str>) -> PortResult<()> {
        self.count("replace_policy");
        self.inner.replace_policy(policy, expected).await
    }
    async fn keep_policy_version(&self, name: &str, version: &lifeboat_ports::PolicyVersion) -> PortResult<()> {
        self.inner.keep_policy_version(name, version).await
    }
    async fn policy_versions(&self, name: &str, limit: usize) -> PortResult<Vec<lifeboat_ports::PolicyVersion>> {
        self.inner.policy_versions(name, limit).await
    }
    async fn get(&self, id: &RecoveryPointId) -> PortResult<Option<RecoveryPoint>> {
        self.count("get");
        self.inner.get(id).await
    }
    async fn get_many(&self, ids: &[RecoveryPointId]) -> PortResult<Vec<RecoveryPoint>> {
        self.count("get_many");
        self.get_many_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ids.len());
        self.inner.get_many(ids).await
    }
    async fn insert(&self, rp: &RecoveryPoint) -> PortResult<()> {
        self.count("insert");
        self.inner.insert(rp).await
    }
    async fn update(&self, rp: &RecoveryPoint, expected_version: u64) -> PortResult<()> {
        self.count("update");
        self.inner.update(rp, expected_version).await
    }
    async fn by_status(&self, status: Status) -> PortResult<Vec<RecoveryPoint>> {
        self.count("by_status");
        self.inner.by_status(status).await
    }
    async fn by_resource(&self, resource_arn: &str, limit: usize) -> PortResult<Vec<RecoveryPoint>> {
        self.count("by_resource");
        self.inner.by_resource(resource_arn, limit).await
    }
    async fn created_since(
        &self,
        location: &lifeboat_domain::Region,
        since: DateTime<Utc>,
    ) -> PortResult<Vec<RecoveryPoint>> {
        self.count("created_since");
        self.inner.created_since(location, since).await
    }
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        self.count("acquire_lease");
        self.inner.acquire_lease(name, holder, until, now).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        self.count("release_lease");
        self.inner.release_lease(name, holder).await
    }
    async fn claim_marker(&self, key: &str, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> PortResult<bool> {
        self.count("claim_marker");
        self.inner.claim_marker(key, now, stale_before).await
    }
    async fn confirm_marker(&self, key: &str) -> PortResult<()> {
        self.count("confirm_marker");
        self.inner.confirm_marker(key).await
    }
    async fn release_marker(&self, key: &str) -> PortResult<()> {
        self.count("release_marker");
        self.inner.release_marker(key).await
    }
    async fn record_run(&self, run: &RunRecord) -> PortResult<()> {
        self.count("record_run");
        self.inner.record_run(run).await
    }
    async fn log_alert(&self, alert: &lifeboat_domain::Alert, sent_at: DateTime<Utc>) -> PortResult<()> {
        self.count("log_alert");
        self.inner.log_alert(alert, sent_at).await
    }
    async fn recent_alerts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<(DateTime<Utc>, lifeboat_domain::Alert)>> {
        self.count("recent_alerts");
        self.inner.recent_alerts(since, until, limit).await
    }
}

const SNAPSHOT_OPS: [(SnapshotOp, &str); 6] = [
    (SnapshotOp::List, "protected_resources"),
    (SnapshotOp::Create, "create_snapshot"),
    (SnapshotOp::Describe, "describe_snapshot"),
    (SnapshotOp::ListLifeboat, "lifeboat_snapshots"),
    (SnapshotOp::Copy, "copy_snapshot"),
    (SnapshotOp::Delete, "delete_snapshot"),
];

/// Calls one function made: per operation, catalog and snapshot store, and the fakes' own
/// totals (which must agree).
fn calls_since(
    fakes: &Fakes,
    catalog: &CountingCatalog,
    snapshots_before: &BTreeMap<&'static str, usize>,
    totals_before: (usize, usize),
) -> Value {
    let (ops, get_many_ids) = catalog.take();
    let mut snapshot_ops = BTreeMap::new();
    for (op, name) in SNAPSHOT_OPS {
        let n = fakes.snapshots.calls(op) - snapshots_before.get(name).copied().unwrap_or(0);
        if n > 0 {
            snapshot_ops.insert(name, n);
        }
    }
    json!({
        "catalog": ops,
        "snapshots": snapshot_ops,
        "get_many_ids": get_many_ids,
        "catalog_total": fakes.catalog.calls() - totals_before.0,
        "snapshots_total": fakes.snapshots.total_calls() - totals_before.1,
    })
}

fn snapshot_counts(fakes: &Fakes) -> BTreeMap<&'static str, usize> {
    SNAPSHOT_OPS
        .iter()
        .map(|(op, name)| (*name, fakes.snapshots.calls(*op)))
        .collect()
}

/// Two scheduled cycles, an hour apart, on `n` RDS instances under one hourly policy with
/// one copy target; the second (steady state: the first cycle's snapshots and copies
/// exist) is the figure. The fakes make snapshots and copies available at once.
async fn cycle_child(n: usize) -> Result<Value> {
    // The fake snapshot store stamps snapshots with the wall clock; the manual clock
    // follows it so RPO ages are sane.
    let now = Utc::now();
    let fakes = Fakes::new(now - chrono::Duration::hours(1));
    fakes.catalog.put_policy_json(
        "gold",
        r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,"copies":[{"region":"us-west-2"}]}"#,
    );
    for i in 0..n {
        fakes.add_db(ResourceKind::RdsInstance, &format!("db{i:04}"), "gold");
    }
    let catalog = Arc::new(CountingCatalog {
        inner: fakes.catalog.clone(),
        calls: Mutex::default(),
        get_many_ids: Mutex::default(),
    });
    let ports = Ports {
        snapshots: fakes.snapshots.clone(),
        catalog: catalog.clone(),
        notifier: fakes.notifier.clone(),
        clock: fakes.clock.clone(),
        backup: fakes.backup.clone(),
        alert_window: None,
    };
    // Budget enough for every copy of the cycle, so the cycle does all its work.
    let config = Config::from_lookup(|k| match k {
        "CATALOG_TABLE_NAME" => Some("catalog".into()),
        "ALERTS_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:alerts".into()),
        "PRIMARY_REGION" => Some(PRIMARY.into()),
        "DR_KMS_KEYS" => Some(format!("{DR}=arn:aws:kms:{DR}:123456789012:key/dr-key")),
        "COPY_BUDGET_PER_REGION" => Some("100".into()),
        _ => None,
    })
    .map_err(|e| err(e.to_string()))?;
    let create = create_snapshots::Deps {
        ports: ports.clone(),
        config: config.clone(),
        runs: create_snapshots::DataRuns::default(),
    };
    let copy = copy_snapshots::Deps {
        ports: ports.clone(),
        config: config.clone(),
    };
    let track = track_recovery_points::Deps {
        ports: ports.clone(),
        config,
    };
    let mut cycles = Vec::new();
    for cycle in 0..2 {
        let at = now - chrono::Duration::hours(1 - cycle);
        fakes.clock.set(at);
        let tick = ScheduleTick {
            scheduled_time: at,
            policy: None,
        };
        let mut steps = serde_json::Map::new();
        let mut work = serde_json::Map::new();
        for step in ["create-snapshots", "copy-snapshots", "track-recovery-points"] {
            catalog.take();
            let before = (
                snapshot_counts(&fakes),
                (fakes.catalog.calls(), fakes.snapshots.total_calls()),
            );
            let run_id = format!("bench-{cycle}-{step}");
            let did = match step {
                "create-snapshots" => {
                    let r = create_snapshots::run(&create, &tick, &run_id).await?;
                    json!({"created": r.created.len(), "already_recorded": r.already_recorded, "failed": r.failed.len()})
                }
                "copy-snapshots" => {
                    let r = copy_snapshots::run(&copy, &tick, &run_id).await?;
                    json!({"started": r.started.len(), "waiting": r.waiting.len(), "blocked": r.blocked.len(), "failed": r.failed.len()})
                }
                _ => {
                    let r = track_recovery_points::run(&track, &tick, &run_id).await?;
                    json!({"transitions": r.transitions.len(), "adopted": r.adopted.len(), "rpo_checks": r.rpo.len(),
                           "rpo_breaches": r.rpo.iter().filter(|s| s.breached).count(), "errors": r.errors.len()})
                }
            };
            steps.insert(step.into(), calls_since(&fakes, &catalog, &before.0, before.1));
            work.insert(step.into(), did);
        }
        cycles.push(json!({"calls": steps, "work": work}));
    }
    let snapshots_per_resource = fakes
        .snapshots
        .snapshots()
        .iter()
        .filter(|s| s.region.as_str() == PRIMARY)
        .count()
        / n.max(1);
    Ok(json!({
        "resources": n,
        "copy_targets": 1,
        "snapshots_per_resource": snapshots_per_resource,
        "cycles": cycles,
        "alerts": fakes.notifier.alerts().len(),
    }))
}

/// `(operation, calls, why)` for one function.
type Needed = Vec<(&'static str, usize, &'static str)>;

/// The fewest port calls a cycle needs, per function and operation, for `n` resources
/// under one policy with `c` copy targets, steady state (nothing pending, sources of the
/// previous cycle copied), `k` Lifeboat snapshots per resource in the primary region.
/// Batch reads take up to 100 ids; a query is one call (one page).
fn minimum_cycle(n: usize, c: usize, k: usize) -> Vec<(&'static str, Needed)> {
    let batches = |ids: usize| ids.div_ceil(100);
    vec![
        (
            "create-snapshots",
            vec![
                ("policies", 1, "read the policies"),
                ("protected_resources", 1, "list the tagged resources"),
                (
                    "get_many",
                    batches(n),
                    "ceil(n/100) batch reads: is this slot already recorded?",
                ),
                ("create_snapshot", n, "n snapshots"),
                ("insert", n, "n records"),
                ("record_run", 1, "1 run record"),
            ],
        ),
        (
            "copy-snapshots",
            vec![
                (
                    "acquire_lease",
                    1,
                    "the copy lease (one run at a time keeps the budget)",
                ),
                ("policies", 1, "read the policies"),
                (
                    "by_status",
                    3,
                    "sources: available + copying; copies in flight: pending",
                ),
                (
                    "get_many",
                    batches(n * c),
                    "ceil(n·c/100) batch reads: which copies exist?",
                ),
                ("copy_snapshot", n * c, "n·c copies"),
                ("insert", n * c, "n·c copy records"),
                ("update", n, "n source status writes (available → copied)"),
                ("record_run", 1, "1 run record"),
                ("release_lease", 1, "release the lease"),
            ],
        ),
        (
            "track-recovery-points",
            vec![
                ("policies", 1, "read the policies"),
                (
                    "by_status",
                    3,
                    "pending (none in steady state) + sources to settle: available, copying",
                ),
                ("protected_resources", 1, "list the tagged resources"),
                (
                    "lifeboat_snapshots",
                    usize::from(n > 0),
                    "one listing of the region's Lifeboat snapshots of the one kind protected, whatever n (per-resource polling: n)",
                ),
                (
                    "get_many",
                    batches(n * k),
                    "ceil(n·k/100) batch reads: are the listed snapshots recorded?",
                ),
                (
                    "created_since",
                    if n > 0 { 1 + c } else { 0 },
                    "one time-ordered read per location (the primary region and each copy's) of the points made within the RPO, whatever n (per-resource reads: n)",
                ),
                ("record_run", 1, "1 run record"),
            ],
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// The parent: runs the children and the peer, prints the table, writes the summary.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Figure {
    name: String,
    value: Option<f64>,
    unit: &'static str,
    peer: String,
    peer_value: Option<f64>,
    target: String,
    met: Option<bool>,
    notes: Vec<String>,
}

impl Figure {
    /// `value / peer value`, the same way round for every figure.
    fn ratio(&self) -> Option<f64> {
        match (self.value, self.peer_value) {
            (Some(v), Some(p)) if p != 0.0 => Some(v / p),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "peer": self.peer,
            "peer_value": self.peer_value,
            "ratio": self.ratio(),
            "target": self.target,
            "met": self.met,
            "notes": self.notes,
        })
    }
}

fn num(v: &Value, k: &str) -> Result<f64> {
    v[k].as_f64().ok_or_else(|| err(format!("no number {k} in {v}")))
}

fn nums(v: &Value, k: &str) -> Result<Vec<f64>> {
    v[k].as_array()
        .ok_or_else(|| err(format!("no list {k}")))?
        .iter()
        .map(|x| x.as_f64().ok_or_else(|| err(format!("{k}: not a number"))))
        .collect()
}

fn fmt_num(x: Option<f64>) -> String {
    match x {
        None => "null".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.4}"),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn parent(args: &[String]) -> Result<()> {
    let plan_points = arg(args, "--plan-points", 1_000_000)?;
    let retention_resources = arg(args, "--retention-resources", 500)?;
    let cycle_resources = arg(args, "--cycle-resources", 50)?;
    let sync_objects = arg(args, "--sync-objects", 10_000)?;
    let root = repo_root().canonicalize()?;
    let dir = root.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let started_at = Utc::now();
    let load_start = loadavg();
    let mut figures = Vec::new();

    eprintln!(
        "[1/4] planning {plan_points} recovery points (and {} as peer)…",
        plan_points / 10
    );
    let big = run_child(&["plan", "--points", &plan_points.to_string()])?;
    let small = run_child(&["plan", "--points", &(plan_points / 10).to_string()])?;
    let streamed = run_child(&["plan-stream", "--points", &plan_points.to_string()])?;
    figures.extend(planner_figures(&big, &small, &streamed)?);

    eprintln!("[2/4] retention: writing the input, then shelvery and Lifeboat on it…");
    let input = dir.join("retention-input.jsonl");
    let (n, now) = write_retention_input(&input, retention_resources)?;
    let peer_out = dir.join("shelvery-result.json");
    let shelvery = run_shelvery(&root, &input, &peer_out);
    let lifeboat = run_child(&["retention", &input.to_string_lossy()])?;
    let (retention, agreement) = retention_figures(&lifeboat, &shelvery, n, now, &input)?;
    figures.extend(retention);

    eprintln!("[3/4] calls of one scheduled cycle over {cycle_resources} resources…");
    let cycle = run_child(&["cycle", "--resources", &cycle_resources.to_string()])?;
    let (calls_figure, calls_detail) = cycle_figure(&cycle)?;
    figures.push(calls_figure);

    figures.extend(s3::figures()?);
    let python =
        std::env::var_os("LIFEBOAT_BENCH_PYTHON").map_or_else(|| root.join(".venv-bench/bin/python"), PathBuf::from);
    figures.extend(sync::sync_figures(sync_objects, &python)?);
    figures.push(dr::drill_figure()?);
    figures.push(restore_tests::restore_test_figure()?);
    figures.push(expiry::expiry_figure()?);
    figures.push(cli::cli_figure()?);
    figures.push(verify::figure(&run_child(&["verify", "--raw"])?)?);
    figures.extend(functions::function_figures(
        &functions::release_dir()?,
        &root.join(".local/stack/functions.env"),
        &root.join("events"),
    )?);

    eprintln!("[4/4] summary");
    let load_end = loadavg();
    let conditions = json!({
        "started_at": started_at.to_rfc3339(),
        "finished_at": Utc::now().to_rfc3339(),
        "git_head": git(&["rev-parse", "--short", "HEAD"]),
        "git_dirty": !git(&["status", "--porcelain"]).is_empty(),
        "cores": std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "note": "wall-clock figures on a shared 2-core machine: other builds running at the same time make them noisy",
    });
    let summary = json!({
        "about": "Lifeboat's performance figures, each beside its peer in the same run (make bench). ratio = value / peer_value for every figure.",
        "conditions": conditions,
        "figures": figures.iter().map(Figure::to_json).collect::<Vec<_>>(),
        "details": {
            "plan": {"large": big, "peer": small},
            "retention": agreement,
            "cycle": calls_detail,
        },
    });
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)?;

    print_report(&figures, &agreement, &calls_detail, &conditions, &path);
    Ok(())
}

fn planner_figures(big: &Value, small: &Value, streamed: &Value) -> Result<Vec<Figure>> {
    let (t_big, t_small) = (median(nums(big, "plan_ms")?), median(nums(small, "plan_ms")?));
    let mb = |v: &Value, k: &str| -> Result<f64> { Ok(num(v, k)? / 1024.0) };
    let points = |v: &Value| v["points"].as_u64().unwrap_or(0);
    let peer = format!("same plan, {} points", points(small));
    let mix = "per resource: 42 hourly + 8 dailies in us-east-1, each copied to us-west-2 (1% missing their newest copy and holding a failed record instead, 9% in flight); holds, locks, verified points; policy every 1h, GFS hourly 24, daily 7, weekly 4, monthly 12, copy to us-west-2; now = an hour boundary + 5 min";
    let plan_time = Figure {
        name: format!("planning time, {} points", points(big)),
        value: Some(t_big),
        unit: "ms",
        peer: peer.clone(),
        peer_value: Some(t_small),
        target: "< 1000 ms".into(),
        met: Some(t_big < 1000.0),
        notes: vec![
            format!(
                "median of {PLAN_RUNS} runs of plan(); runs {:?} ms; input built in {:.0} ms (not counted)",
                nums(big, "plan_ms")?.iter().map(|x| x.round()).collect::<Vec<_>>(),
                num(big, "build_ms")?
            ),
            format!("plan: {}", big["plan"]),
            mix.into(),
        ],
    };
    let hwm = mb(streamed, "hwm_plan_kb")?;
    let same = streamed["plan"] == big["plan"];
    let memory = Figure {
        name: format!(
            "peak memory, plan over {} points, resource by resource",
            points(streamed)
        ),
        value: Some(hwm),
        unit: "MB",
        peer: format!("same plan with every point in memory at once ({} points)", points(big)),
        peer_value: Some(mb(big, "hwm_plan_kb")?),
        target: "< 300 MB".into(),
        met: Some(hwm < 300.0 && same),
        notes: vec![
            format!(
                "VmHWM of a child process that builds each resource's history, feeds it to Planner::add and drops it, as plan-backups pages the catalog in; the plan itself (all its actions and reasons) is included. Same plan as the all-at-once run: {same}"
            ),
            format!(
                "planning time resource by resource: {:.0} ms (history building excluded; {:.0} ms in all)",
                num(streamed, "plan_ms")?,
                num(streamed, "total_ms")?
            ),
            format!(
                "all at once: input built {:.0} MB (a RecoveryPoint is {} bytes inline, plus its strings on the heap)",
                mb(big, "hwm_input_kb")?,
                big["recovery_point_bytes"]
            ),
        ],
    };
    let input = Figure {
        name: format!("peak memory, input of {} points built", points(big)),
        value: Some(mb(big, "hwm_input_kb")?),
        unit: "MB",
        peer,
        peer_value: Some(mb(small, "hwm_input_kb")?),
        target: "(part of the figure above)".into(),
        met: None,
        notes: vec![format!(
            "VmHWM right after building the input (VmRSS then {:.0} MB); the plan adds the rest",
            mb(big, "rss_input_kb")?
        )],
    };
    Ok(vec![plan_time, memory, input])
}

/// Runs the shelvery peer; its JSON, or why it could not run.
fn run_shelvery(root: &Path, input: &Path, out: &Path) -> std::result::Result<Value, String> {
    let python =
        std::env::var_os("LIFEBOAT_BENCH_PYTHON").map_or_else(|| root.join(".venv-bench/bin/python"), PathBuf::from);
    let script = root.join("infra/bench/shelvery_peer.py");
    let _ = std::fs::remove_file(out);
    let run = Command::new(&python)
        .arg(&script)
        .arg(input)
        .arg(out)
        .arg(RETENTION_RUNS.to_string())
        .output()
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (make bench creates the bench venv)",
                python.display()
            )
        })?;
    if !run.status.success() {
        let stderr = String::from_utf8_lossy(&run.stderr);
        let last: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "{} {} failed ({}): {}",
            python.display(),
            script.display(),
            run.status,
            last.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let text = std::fs::read_to_string(out).map_err(|e| format!("no peer output: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("peer output is not JSON: {e}"))
}

fn retention_figures(
    lifeboat: &Value,
    shelvery: &std::result::Result<Value, String>,
    n: usize,
    now: DateTime<Utc>,
    input: &Path,
) -> Result<(Vec<Figure>, Value)> {
    let select = median(nums(lifeboat, "select_ms")?);
    let planned = median(nums(lifeboat, "plan_ms")?);
    let (peer_ms, peer_name, mut notes) = match shelvery {
        Ok(s) => {
            let runs: Vec<f64> = nums(s, "times_ns")?.iter().map(|x| x / 1e6).collect();
            (
                Some(median(runs.clone())),
                format!("shelvery {} is_stale", s["version"].as_str().unwrap_or("?")),
                vec![format!(
                    "shelvery (Python {}) runs {:?} ms; called {}",
                    s["python"].as_str().unwrap_or("?"),
                    runs.iter().map(|x| x.round()).collect::<Vec<_>>(),
                    s["called"]
                )],
            )
        }
        Err(why) => (None, "shelvery (not run)".into(), vec![format!("peer not run: {why}")]),
    };
    let rows = |what: &str, value: f64, runs: Vec<f64>, notes: &mut Vec<String>| {
        let mut notes = std::mem::take(notes);
        notes.push(format!(
            "{what}: median of {RETENTION_RUNS} runs {:?} ms over {n} daily backups of {} resources (file {})",
            runs.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>(),
            lifeboat["resources"],
            input.display()
        ));
        let ratio = peer_ms.map(|p| value / p);
        if let Some(p) = peer_ms {
            notes.push(format!("Lifeboat is {:.0}× faster than shelvery here", p / value));
        }
        Figure {
            name: format!("retention decision, {what}, {n} backups"),
            value: Some(value),
            unit: "ms",
            peer: peer_name.clone(),
            peer_value: peer_ms,
            target: "ratio ≤ 0.01 (≥ 100× faster than shelvery)".into(),
            met: ratio.map(|r| r <= 0.01),
            notes,
        }
    };
    let f_select = rows("Retention::select", select, nums(lifeboat, "select_ms")?, &mut notes);
    let mut f_plan = rows(
        "whole plan()",
        planned,
        nums(lifeboat, "plan_ms")?,
        &mut vec![format!(
            "plan() also plans creates and copies and writes an action with its reason for each of the {} expiries",
            lifeboat["plan_expired"]
        )],
    );
    // The target is the retention decision's (the row above); the whole plan does more
    // work than shelvery's is_stale and is reported for information.
    f_plan.target = "for information (target applies to the decision above)".into();
    f_plan.met = None;

    // Agreement, backup by backup.
    let ours = lifeboat["decisions"].as_str().unwrap_or_default().as_bytes();
    let mut agreement = json!({
        "now": now.to_rfc3339(),
        "backups": n,
        "lifeboat": {"kept": lifeboat["kept"], "expired": lifeboat["expired"],
                     "plan_kept": lifeboat["plan_kept"], "plan_expired": lifeboat["plan_expired"],
                     "plan_protected": lifeboat["plan_protected"],
                     "plan_agrees_with_select": lifeboat["plan_agrees_with_select"]},
    });
    if let Ok(s) = shelvery {
        let theirs = s["decisions"].as_str().unwrap_or_default().as_bytes();
        let types = s["types"].as_str().unwrap_or_default().as_bytes();
        if theirs.len() != ours.len() || types.len() != ours.len() {
            return Err(err("shelvery and Lifeboat decided on different numbers of backups"));
        }
        let backups = read_retention_input(input)?.1;
        let mut both = 0;
        let mut neither = 0;
        let mut only_shelvery: BTreeMap<String, usize> = BTreeMap::new();
        let mut only_lifeboat: BTreeMap<String, usize> = BTreeMap::new();
        let mut examples: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, b) in backups.iter().enumerate() {
            let kind = match types[i] {
                b'y' => "yearly (1 Jan)",
                b'm' => "monthly (a 1st)",
                b'w' => "weekly (a Sunday)",
                _ => "daily",
            };
            let last_of_month = (b.created.date_naive() + chrono::Days::new(1)).day() == 1;
            let day = if kind == "daily" && last_of_month {
                "daily (last day of a month)".to_owned()
            } else {
                kind.to_owned()
            };
            match (theirs[i] == b'1', ours[i] == b'1') {
                (true, true) => both += 1,
                (false, false) => neither += 1,
                (true, false) => {
                    *only_shelvery.entry(day.clone()).or_insert(0) += 1;
                    push_example(&mut examples, format!("shelvery only: {day}"), b);
                }
                (false, true) => {
                    *only_lifeboat.entry(day.clone()).or_insert(0) += 1;
                    push_example(&mut examples, format!("Lifeboat only: {day}"), b);
                }
            }
        }
        agreement["shelvery"] = json!({"kept": s["kept"], "expired": s["expired"]});
        agreement["kept_by_both"] = json!(both);
        agreement["expired_by_both"] = json!(neither);
        agreement["kept_by_shelvery_only"] = json!(only_shelvery);
        agreement["kept_by_lifeboat_only"] = json!(only_lifeboat);
        agreement["examples"] = json!(examples);
    } else {
        agreement["shelvery"] = Value::Null;
    }
    agreement["conventions"] = json!([
        "shelvery tags each backup once, when it is made (1 Jan yearly, other 1sts monthly, Sundays weekly, else daily), and keeps it until its age passes the count of its tag's unit (14 days, 8 weeks, 12 months, 10 years).",
        "Lifeboat keeps the newest backup of each of the last N calendar periods that have backups (days, ISO weeks, months, years, in the policy's zone), whatever day it was made; the period in progress counts as one of the N.",
        "So for months and years shelvery keeps the first backup (the 1st, 1 January) and Lifeboat the last (the month's last day, 31 December, or today for the period in progress); for weeks both keep Sundays, but shelvery counts 8 weeks of age and Lifeboat 8 ISO weeks including the current one. No dense daily history makes the two coincide; the kept counts differ by about one backup per resource and period kind, as listed.",
    ]);
    Ok((vec![f_select, f_plan], agreement))
}

fn push_example(examples: &mut BTreeMap<String, Vec<String>>, key: String, b: &Backup) {
    let list = examples.entry(key).or_default();
    if list.len() < 3 {
        list.push(format!("{} {}", b.resource, b.created.format("%a %Y-%m-%d %H:%M")));
    }
}

fn cycle_figure(cycle: &Value) -> Result<(Figure, Value)> {
    let n = cycle["resources"].as_u64().unwrap_or(0) as usize;
    let k = cycle["snapshots_per_resource"].as_u64().unwrap_or(0) as usize;
    let steady = &cycle["cycles"][1];
    let minimum = minimum_cycle(n, 1, k);
    let mut rows = Vec::new();
    let mut measured_total = 0usize;
    let mut minimum_total = 0usize;
    for (function, ops) in &minimum {
        let calls = &steady["calls"][*function];
        let fake_total = calls["catalog_total"].as_u64().unwrap_or(0) as usize
            + calls["snapshots_total"].as_u64().unwrap_or(0) as usize;
        let mut measured: BTreeMap<String, usize> = BTreeMap::new();
        for side in ["catalog", "snapshots"] {
            if let Some(m) = calls[side].as_object() {
                for (op, c) in m {
                    *measured.entry(op.clone()).or_insert(0) += c.as_u64().unwrap_or(0) as usize;
                }
            }
        }
        let counted: usize = measured.values().sum();
        if counted != fake_total {
            return Err(err(format!(
                "{function}: per-operation counts ({counted}) disagree with the fakes' totals ({fake_total})"
            )));
        }
        let min_ops: BTreeMap<&str, (usize, &str)> = ops.iter().map(|(op, c, why)| (*op, (*c, *why))).collect();
        let mut all_ops: Vec<String> = measured.keys().cloned().collect();
        all_ops.extend(min_ops.keys().map(|s| (*s).to_owned()));
        all_ops.sort();
        all_ops.dedup();
        for op in all_ops {
            let m = measured.get(&op).copied().unwrap_or(0);
            let (min, why) = min_ops.get(op.as_str()).copied().unwrap_or((0, "not needed"));
            rows.push(json!({"function": function, "op": op, "measured": m, "minimum": min, "why": why}));
        }
        measured_total += fake_total;
        minimum_total += ops.iter().map(|(_, c, _)| c).sum::<usize>();
    }
    let ratio = measured_total as f64 / minimum_total.max(1) as f64;
    let extra: Vec<String> = rows
        .iter()
        .filter(|r| r["measured"].as_u64() > r["minimum"].as_u64())
        .map(|r| {
            format!(
                "{} {}: {} (minimum {})",
                r["function"].as_str().unwrap_or(""),
                r["op"].as_str().unwrap_or(""),
                r["measured"],
                r["minimum"]
            )
        })
        .collect();
    let figure = Figure {
        name: format!("calls per scheduled cycle, {n} resources"),
        value: Some(measured_total as f64),
        unit: "calls",
        peer: "minimum a cycle needs".into(),
        peer_value: Some(minimum_total as f64),
        target: "ratio ≤ 1.05".into(),
        met: Some(ratio <= 1.05),
        notes: vec![
            format!(
                "catalog + snapshot-store port calls (in-memory fakes) of the second of two hourly cycles (create → copy → track), 1 policy, 1 copy target, copy budget 100, snapshots available at once; first cycle: {}",
                first_cycle_total(cycle)
            ),
            format!("above the minimum: {}", if extra.is_empty() { "nothing".into() } else { extra.join("; ") }),
            "a batch read is one call per ≤100 ids, a query one call per page: the DynamoDB adapter's request count equals these port calls at this size, except record_run (one BatchWriteItem per 25 items: the run record and its action lines) and protected_resources (DescribeDBInstances + DescribeDBClusters)".into(),
        ],
    };
    let detail = json!({"rows": rows, "measured_total": measured_total, "minimum_total": minimum_total, "raw": cycle});
    Ok((figure, detail))
}

fn first_cycle_total(cycle: &Value) -> usize {
    let first = &cycle["cycles"][0]["calls"];
    ["create-snapshots", "copy-snapshots", "track-recovery-points"]
        .iter()
        .map(|f| {
            first[*f]["catalog_total"].as_u64().unwrap_or(0) as usize
                + first[*f]["snapshots_total"].as_u64().unwrap_or(0) as usize
        })
        .sum()
}

fn print_report(figures: &[Figure], agreement: &Value, calls: &Value, conditions: &Value, path: &Path) {
    let mut out = String::new();
    let headers = [
        "figure",
        "value",
        "unit",
        "peer",
        "peer value",
        "ratio",
        "target",
        "met",
    ];
    let table: Vec<[String; 8]> = figures
        .iter()
        .map(|f| {
            [
                f.name.clone(),
                fmt_num(f.value),
                f.unit.to_owned(),
                f.peer.clone(),
                fmt_num(f.peer_value),
                fmt_num(f.ratio()),
                f.target.clone(),
                match f.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, row: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            if i == 1 || i == 4 || i == 5 {
                let _ = write!(s, "{}{c}  ", " ".repeat(pad));
            } else {
                let _ = write!(s, "{c}{}  ", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    let _ = writeln!(out);
    line(&mut out, &headers.map(str::to_owned));
    line(&mut out, &widths.map(|w| "-".repeat(w)));
    for row in &table {
        line(&mut out, row);
    }
    let _ = writeln!(out);
    for f in figures {
        let _ = writeln!(out, "{}:", f.name);
        for n in &f.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    let _ = writeln!(out, "\nretention agreement ({} backups):", agreement["backups"]);
    let _ = writeln!(
        out,
        "  Lifeboat kept {} / expired {}   (plan(): kept {}, expired {}, protected {}; same decisions as select: {})",
        agreement["lifeboat"]["kept"],
        agreement["lifeboat"]["expired"],
        agreement["lifeboat"]["plan_kept"],
        agreement["lifeboat"]["plan_expired"],
        agreement["lifeboat"]["plan_protected"],
        agreement["lifeboat"]["plan_agrees_with_select"]
    );
    if agreement["shelvery"].is_null() {
        let _ = writeln!(out, "  shelvery: not run");
    } else {
        let _ = writeln!(
            out,
            "  shelvery kept {} / expired {}\n  kept by both {}, expired by both {}\n  kept by shelvery only {}\n  kept by Lifeboat only {}\n  examples {}",
            agreement["shelvery"]["kept"],
            agreement["shelvery"]["expired"],
            agreement["kept_by_both"],
            agreement["expired_by_both"],
            agreement["kept_by_shelvery_only"],
            agreement["kept_by_lifeboat_only"],
            agreement["examples"]
        );
    }
    if let Some(c) = agreement["conventions"].as_array() {
        let _ = writeln!(out, "  why they differ:");
        for line in c {
            let _ = writeln!(out, "    - {}", line.as_str().unwrap_or(""));
        }
    }
    let _ = writeln!(
        out,
        "\ncalls per cycle, by function and operation (measured / minimum):"
    );
    if let Some(rows) = calls["rows"].as_array() {
        for r in rows {
            let _ = writeln!(
                out,
                "  {:<22} {:<20} {:>4} / {:<4} {}",
                r["function"].as_str().unwrap_or(""),
                r["op"].as_str().unwrap_or(""),
                r["measured"],
                r["minimum"],
                r["why"].as_str().unwrap_or("")
            );
        }
    }
    let _ = writeln!(out, "  total {} / {}", calls["measured_total"], calls["minimum_total"]);
    let _ = writeln!(
        out,
        "\nconditions: {} cores, load average {} at start, {} at end, {} build, HEAD {}{}",
        conditions["cores"],
        conditions["loadavg_start"].as_str().unwrap_or(""),
        conditions["loadavg_end"].as_str().unwrap_or(""),
        conditions["profile"].as_str().unwrap_or(""),
        conditions["git_head"].as_str().unwrap_or(""),
        if conditions["git_dirty"].as_bool() == Some(true) {
            " (work tree dirty)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "summary: {}", path.display());
    print!("{out}");
}
