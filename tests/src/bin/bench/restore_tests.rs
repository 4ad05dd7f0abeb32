//! Restore tests of a demo-sized estate on the strict local stack: two DB instances and an
//! Aurora cluster, each with its DR copy (six recovery points), proven by test-restores
//! (restored on the isolated network, judged, torn down) from the request to the last
//! test database gone; beside the same six restores done by hand with the SDK, one after
//! another (restore, wait until available, delete, wait until gone: a runbook's loop).
//! What the six tests would cost on AWS is computed (RDS bills each instance at least ten
//! minutes, at the list price of the class the test uses), not measured.

use std::time::Instant;

use lifeboat_domain::restore_test::{MIN_BILLED, smallest_class};
use lifeboat_domain::{RecoveryPoint, ResourceKind};
use lifeboat_tests::proof::{back_up, copy_of, prove};
use lifeboat_tests::{DR, TestEnv, wait_for};

use super::{Figure, Result, err};

/// On-demand list prices, USD per instance-hour (us-east-1, single-AZ, PostgreSQL; Aurora
/// standard), of the classes restore tests use by default.
const PRICES: [(&str, f64); 2] = [("db.t4g.micro", 0.016), ("db.t4g.medium", 0.073)];

pub fn restore_test_figure() -> Result<Figure> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(measure())
}

async fn measure() -> Result<Figure> {
    eprintln!("restore tests of 3 databases × 2 locations…");
    let env = TestEnv::start().await?;
    let key = env.create_kms_key(DR).await?;
    let policy = env
        .put_policy(&format!(
            r#"{{"name":"{{prefix}}-gold","every":"1h","rpo":"2h","retain":24,"copies":[{{"region":"{DR}","kms_key_id":"{key}"}}]}}"#
        ))
        .await?;
    let mut arns = Vec::new();
    for db in ["orders", "billing"] {
        arns.push(env.create_instance(&env.name(db), policy.name.as_str()).await?);
    }
    arns.push(env.create_cluster(&env.name("ledger"), policy.name.as_str()).await?);
    let sources = back_up(&env, &env.config(""), &arns).await?;
    let mut ids = sources.clone();
    for s in &sources {
        ids.push(copy_of(&env, s, DR).await?);
    }

    let started = Instant::now();
    let points = prove(&env, &ids).await?;
    let lifeboat = started.elapsed().as_secs_f64();
    if let Some(p) = points.iter().find(|p| p.verified_at.is_none()) {
        return Err(err(format!(
            "the restore test of {} failed: {:?}",
            p.id,
            p.restore_test()
        )));
    }

    let started = Instant::now();
    for (i, p) in points.iter().enumerate() {
        by_hand(&env, p, &format!("{}-hand-{i}", env.prefix)).await?;
    }
    let hand = started.elapsed().as_secs_f64();

    let mut usd = 0.0;
    let mut per_test = Vec::new();
    for p in &points {
        let class = smallest_class(if p.resource.kind == ResourceKind::AuroraCluster {
            "aurora-postgresql"
        } else {
            "postgres"
        });
        let price = PRICES.iter().find(|(c, _)| *c == class).map_or(0.0, |(_, usd)| *usd);
        usd += price * MIN_BILLED.as_secs_f64() / 3600.0;
        let t = p.restore_test();
        per_test.push(format!(
            "{} {}: restored in {} s",
            p.location,
            p.resource.id,
            t.and_then(lifeboat_domain::restore_test::RestoreTest::restore_secs)
                .unwrap_or(0)
        ));
    }
    Ok(Figure {
        name: "restore tests of 3 databases × 2 locations, request → all proven and torn down".into(),
        value: Some(lifeboat),
        unit: "s",
        peer: "the same 6 restores by hand, one after another (restore, wait, delete, wait)".into(),
        peer_value: Some(hand),
        target: "≤ peer (tests run side by side, at most RESTORE_TEST_MAX_CONCURRENT)".into(),
        met: Some(lifeboat <= hand),
        notes: vec![
            per_test.join("; "),
            format!(
                "on AWS these 6 tests cost at least ${usd:.4} (each instance billed 10 minutes at least: db.t4g.micro $0.016/h, Aurora db.t4g.medium $0.073/h, list prices, computed not measured), plus the storage of the restored volumes"
            ),
        ],
    })
}

/// One restore by hand: from the point's snapshot into `target`, wait until available
/// (Aurora: with a writer), delete without a final snapshot, wait until gone.
async fn by_hand(env: &TestEnv, p: &RecoveryPoint, target: &str) -> Result<()> {
    let rds = env.rds(p.location.as_str());
    if p.resource.kind == ResourceKind::AuroraCluster {
        rds.restore_db_cluster_from_snapshot()
            .db_cluster_identifier(target)
            .snapshot_identifier(&p.snapshot_name)
            .engine("aurora-postgresql")
            .send()
            .await?;
        env.wait_cluster_available(p.location.as_str(), target).await?;
        let writer = format!("{target}-w");
        rds.create_db_instance()
            .db_instance_identifier(&writer)
            .db_cluster_identifier(target)
            .db_instance_class("db.t4g.medium")
            .engine("aurora-postgresql")
            .send()
            .await?;
        env.wait_instance_available(p.location.as_str(), &writer).await?;
        rds.delete_db_instance()
            .db_instance_identifier(&writer)
            .skip_final_snapshot(true)
            .send()
            .await?;
        gone(env, p.location.as_str(), &writer, false).await?;
        rds.delete_db_cluster()
            .db_cluster_identifier(target)
            .skip_final_snapshot(true)
            .send()
            .await?;
        gone(env, p.location.as_str(), target, true).await
    } else {
        rds.restore_db_instance_from_db_snapshot()
            .db_instance_identifier(target)
            .db_snapshot_identifier(&p.snapshot_name)
            .db_instance_class("db.t4g.micro")
            .db_subnet_group_name("lifeboat-restore-tests")
            .publicly_accessible(false)
            .send()
            .await?;
        env.wait_instance_available(p.location.as_str(), target).await?;
        rds.delete_db_instance()
            .db_instance_identifier(target)
            .skip_final_snapshot(true)
            .send()
            .await?;
        gone(env, p.location.as_str(), target, false).await
    }
}

async fn gone(env: &TestEnv, region: &str, id: &str, cluster: bool) -> Result<()> {
    let rds = &env.rds(region);
    wait_for(&format!("{id} gone"), move || async move {
        Ok(if cluster {
            rds.describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .map_or(true, |o| o.db_clusters().is_empty())
        } else {
            rds.describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .map_or(true, |o| o.db_instances().is_empty())
        })
    })
    .await
}
