//! Recovery points made and proven through the product's own paths: create-snapshots takes
//! the snapshot, copy-snapshots copies it, the tracker records both, and test-restores
//! proves them by restoring them. Tests and the demo get verified recovery points only
//! this way.

use std::sync::Arc;

use lifeboat::config::Config;
use lifeboat::events::BackupRequest;
use lifeboat::metrics::MemorySink;
use lifeboat_aws::dr::RdsDrDatabases;
use lifeboat_aws::lambda::LambdaInvoker;
use lifeboat_domain::restore_test::Phase;
use lifeboat_domain::{RecoveryPoint, RecoveryPointId, Status};
use lifeboat_ports::{Catalog, SystemClock};

use crate::{Result, TestEnv, WAIT_LIMIT, err, repo_root, track_until};

/// test-restores' configuration as the local deployment's functions get it
/// (`infra/local/functions.env`: the isolated network the local stack provides).
pub fn restore_test_settings() -> Result<test_restores::Settings> {
    let text = std::fs::read_to_string(repo_root().join("infra/local/functions.env"))?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches('\'').to_owned())
    };
    Ok(test_restores::Settings::from_lookup(value)?)
}

/// test-restores with the real adapters against the emulator, in `env`'s catalog.
pub fn restore_test_deps(env: &TestEnv) -> Result<test_restores::Deps> {
    let ports = env.ports();
    Ok(test_restores::Deps {
        catalog: ports.catalog,
        notifier: ports.notifier,
        clock: Arc::new(SystemClock),
        databases: Arc::new(RdsDrDatabases::new(env.primary.clone())),
        validator: Arc::new(LambdaInvoker::new(aws_sdk_lambda::Client::new(&env.primary))),
        settings: restore_test_settings()?,
        alert_window: None,
    })
}

/// An on-demand backup of `resources` (ARNs, tagged with a stored policy) through
/// create-snapshots, tracked until available, copied by copy-snapshots (with `config`'s
/// DR keys) and tracked until copied. Returns the source recovery points' ids.
pub async fn back_up(env: &TestEnv, config: &Config, resources: &[String]) -> Result<Vec<RecoveryPointId>> {
    let create = create_snapshots::Deps {
        ports: env.ports(),
        config: config.clone(),
        runs: create_snapshots::DataRuns::default(),
    };
    let request = BackupRequest {
        resources: resources.to_vec(),
        emergency: false,
        reason: "a recovery point to prove".into(),
        requested_by: Some("lifeboat-tests".into()),
        request_id: uuid::Uuid::new_v4().to_string(),
        requested_at: None,
    };
    let run = format!("backup-{}", &request.request_id[..8]);
    let created = create_snapshots::run_request(&create, &request, &run).await?;
    if created.created.len() != resources.len() {
        return Err(err(format!(
            "create-snapshots made {:?} of {resources:?}",
            created.created
        )));
    }
    let track = track_recovery_points::Deps {
        ports: env.ports(),
        config: config.clone(),
    };
    let now = || chrono::Utc::now().to_rfc3339();
    track_until(env, &track, &now(), &created.created, Status::Available).await?;
    let copy = copy_snapshots::Deps {
        ports: env.ports(),
        config: config.clone(),
    };
    // copy-snapshots runs one at a time (a lease) within a copy budget: other tests on the
    // same deployment may hold either for a while, so it runs until our copies started.
    let started = std::time::Instant::now();
    let mut round = 0;
    loop {
        round += 1;
        copy_snapshots::handle(&copy, crate::tick_event(&now(), &format!("{run}-copy-{round}"))).await?;
        let mut waiting = Vec::new();
        for id in &created.created {
            let status = env.catalog().get(id).await?.map(|p| p.status);
            if status == Some(Status::Available) {
                waiting.push(id.clone());
            }
        }
        if waiting.is_empty() {
            break;
        }
        if started.elapsed() > WAIT_LIMIT {
            return Err(err(format!("copies of {waiting:?} never started")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    track_until(env, &track, &now(), &created.created, Status::Copied).await?;
    Ok(created.created)
}

/// The copy of `source` in `region` (as copy-snapshots names it).
pub async fn copy_of(env: &TestEnv, source: &RecoveryPointId, region: &str) -> Result<RecoveryPointId> {
    let point = env
        .catalog()
        .get(source)
        .await?
        .ok_or_else(|| err(format!("{source} is not in the catalog")))?;
    Ok(RecoveryPointId::new(
        &lifeboat_domain::Region::parse(region)?,
        point.resource.kind,
        &point.snapshot_name,
    ))
}

/// Proves `ids` by restore tests: each is started on request (again while the
/// concurrency bound defers it), and test-restores moves the tests on until every one is
/// done (restored, judged, torn down). Returns the points as recorded (a failed test
/// leaves its point unverified: the caller asserts).
pub async fn prove(env: &TestEnv, ids: &[RecoveryPointId]) -> Result<Vec<RecoveryPoint>> {
    let deps = restore_test_deps(env)?;
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let started = std::time::Instant::now();
    loop {
        let mut points = Vec::new();
        for id in ids {
            let p = env
                .catalog()
                .get(id)
                .await?
                .ok_or_else(|| err(format!("{id} vanished")))?;
            points.push(p);
        }
        let mine = |p: &RecoveryPoint| p.restore_test().cloned().filter(|t| t.started_at >= since);
        if points.iter().all(|p| mine(p).is_some_and(|t| t.phase == Phase::Done)) {
            return Ok(points);
        }
        if started.elapsed() > WAIT_LIMIT * 2 {
            return Err(err(format!("restore tests not done: {points:#?}")));
        }
        let waiting: Vec<&RecoveryPoint> = points.iter().filter(|p| mine(p).is_none()).collect();
        let payloads: Vec<serde_json::Value> = if waiting.is_empty() {
            vec![serde_json::json!({"mode": "advance"})]
        } else {
            waiting
                .iter()
                .map(|p| serde_json::json!({"recoveryPoint": p.id}))
                .collect()
        };
        for payload in payloads {
            // Metrics to memory: the demo prints a report, not EMF lines.
            test_restores::handle_with(&deps, lifeboat_testkit::event(payload.clone()), &MemorySink::new())
                .await
                .map_err(|e| err(format!("test-restores {payload}: {e}")))?;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
