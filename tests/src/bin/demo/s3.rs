//! The S3 part of the demo: a bucket of files backed up incrementally into the DR backup
//! bucket (versioned, Object Lock), a verification that finds a copy written over behind
//! Lifeboat's back, a lost copy healed by the next run, and a point-in-time restore to a
//! new prefix; then media under a tiered
//! policy moving to GLACIER_IR and GLACIER as it ages (the clock is injected), and a
//! restore from GLACIER.

use backup_objects::BackupRequest;
use chrono::Utc;
use lifeboat_domain::AlertKind;
use lifeboat_ports::Catalog;
use lifeboat_tests::s3::{
    backup_bucket, backup_deps, change_queue, get, put, restore_deps, settings, source_bucket, verify_deps,
};
use lifeboat_tests::{DR, PRIMARY, Result, TestEnv};
use verify_backups::VerifyRequest;

pub async fn run(env: &TestEnv) -> Result<()> {
    let (src, bak) = (env.name("files"), env.name("s3-backups"));
    source_bucket(env, &src).await?;
    backup_bucket(env, &bak).await?;
    println!("S3 data protection: bucket {src} ({PRIMARY}) backed up into {bak} ({DR}, versioned, Object Lock)");
    for i in 0..20 {
        let body = format!("invoice {i}\n").repeat(200 + i * 10);
        put(env, PRIMARY, &src, &format!("invoices/{i:02}.txt"), body.as_bytes()).await?;
    }
    // From here on the bucket's event notifications feed a change queue.
    let queue = change_queue(env, &src, "invoices/").await?;
    let s = settings(&bak, &[("OBJECT_LOCK_MODE", "GOVERNANCE"), ("OBJECT_LOCK_DAYS", "7")]);
    let deps = backup_deps(env, s.clone());
    let req = |hour: u32| BackupRequest {
        bucket: src.clone(),
        prefix: "invoices/".into(),
        policy: "gold".into(),
        scheduled_time: Utc::now()
            .date_naive()
            .and_hms_opt(hour, 0, 0)
            .unwrap_or_default()
            .and_utc(),
        request_id: None,
        max_pages: None,
        change_queue: Some(queue.clone()),
        full_listing: false,
    };
    let first = backup_objects::run(&deps, &req(1), "demo-s3-1", None).await?;
    let as_of_first = Utc::now();
    println!(
        "  run 1 (full listing: {}): {} listed, {} copied ({} bytes), manifest {} objects, SHA-256 {}…",
        first.listing_reason.as_deref().unwrap_or("asked"),
        first.listed,
        first.copied,
        first.bytes_copied,
        first.manifest.as_ref().map_or(0, |m| m.objects),
        first.manifest.as_ref().map_or("", |m| &m.sha256[..12])
    );
    put(env, PRIMARY, &src, "invoices/03.txt", b"invoice 3, corrected\n").await?;
    put(env, PRIMARY, &src, "invoices/20.txt", b"invoice 20\n").await?;
    let second = backup_objects::run(&deps, &req(2), "demo-s3-2", None).await?;
    println!(
        "  run 2 (one file changed, one added), {}: {} keys named by {} events read, {} copied, {} carried over unchanged with no call",
        if second.listing == lifeboat_domain::manifest::Listing::Changes {
            "from the bucket's change queue, no listing"
        } else {
            "full listing"
        },
        second.listed,
        second.changes_received,
        second.copied,
        second.unchanged
    );

    // A byte flipped in a copy written over a backup key, behind Lifeboat's back: the run's
    // own version is intact (what a restore reads), the new version is reported as replaced.
    let rp = env
        .catalog()
        .get(&first.recovery_point)
        .await?
        .ok_or("run 1 not cataloged")?;
    let mref = rp.manifest().cloned().ok_or("run 1 has no manifest")?;
    let store = lifeboat_tests::s3::store(env, DR, s.tuning);
    let manifest = lifeboat::object_store::runs::load_manifest(store.as_ref(), &mref).await?;
    let victim = manifest.live().nth(7).ok_or("no 8th object")?;
    let mut bytes = get(env, DR, &bak, &victim.backup_key, None).await?;
    bytes[42] ^= 0x01;
    let bad = put(env, DR, &bak, &victim.backup_key, &bytes).await?;
    let verify = verify_deps(env);
    let all = VerifyRequest::full(None);
    let report = verify_backups::run(&verify, &all, &format!("{}-demo-verify", env.prefix)).await?;
    println!(
        "  verify (full): {} objects, {} bytes hashed; verified {}, unverified {}",
        report.objects_checked,
        report.bytes_read,
        report.verified.len(),
        report.unverified.len()
    );
    for f in &report.findings {
        println!("    found: {} {} in {}", f.problem.as_str(), f.key, f.recovery_point);
    }
    let alerts = env.alerts().await?;
    for a in alerts.iter().filter(|a| a.alert.kind == AlertKind::VerificationFailed) {
        println!("    alert: [{}] {}", a.alert.severity.as_str(), a.alert.summary);
    }
    // Repair: drop the bad version (GOVERNANCE lock applies to Lifeboat's versions only).
    lifeboat_tests::s3::client(env, DR)
        .delete_object()
        .bucket(&bak)
        .key(&victim.backup_key)
        .set_version_id(bad)
        .send()
        .await?;
    heal(env, &deps, &bak, &second, &req(3)).await?;

    // Point-in-time restore as of run 1, to a new prefix.
    let restore = restore_deps(env, s);
    let dry = restore_objects::RestoreRequest {
        bucket: src.clone(),
        prefix: "invoices/".into(),
        as_of: as_of_first,
        keys: Some(vec!["invoices/03.txt".into()]),
        target: None,
        overwrite: false,
        dry_run: true,
        tier: None,
        confirmation: None,
        payload: serde_json::Value::Null,
    };
    let plan = restore_objects::run(&restore, &dry).await?;
    for item in &plan.items {
        println!(
            "  restore dry run as of run 1: {} -> {} ({} bytes, {}, {})",
            item.key, item.target_key, item.size, item.storage_class, item.readiness
        );
    }
    let done = restore_objects::run(&restore, &restore_objects::RestoreRequest { dry_run: false, ..dry }).await?;
    for item in &done.items {
        let restored = get(env, PRIMARY, &src, &item.target_key, None).await?;
        let now = get(env, PRIMARY, &src, &item.key, None).await?;
        println!(
            "  restored {}: {} bytes as of run 1 (the current file has {} bytes): {}",
            item.target_key,
            restored.len(),
            now.len(),
            item.outcome
        );
    }
    println!();
    Ok(())
}

/// A backup copy lost (its very version deleted by someone holding the governance bypass),
/// found missing by verification, and copied again from the source by the next run, which
/// verifies again.
async fn heal(
    env: &TestEnv,
    deps: &backup_objects::Deps,
    bak: &str,
    previous: &backup_objects::BackupReport,
    next: &BackupRequest,
) -> Result<()> {
    let mref = previous.manifest.clone().ok_or("run 2 has no manifest")?;
    let store = lifeboat_tests::s3::store(env, DR, deps.settings.tuning);
    let manifest = lifeboat::object_store::runs::load_manifest(store.as_ref(), &mref).await?;
    let deleted = manifest
        .live()
        .find(|e| e.key == "invoices/11.txt")
        .ok_or("no invoices/11.txt in run 2")?;
    lifeboat_tests::s3::client(env, DR)
        .delete_object()
        .bucket(bak)
        .key(&deleted.backup_key)
        .set_version_id(deleted.backup_version_id.clone())
        .bypass_governance_retention(true)
        .send()
        .await?;
    let verify = verify_deps(env);
    let one = |rp: &lifeboat_domain::RecoveryPointId| VerifyRequest::full(Some(rp));
    let found = verify_backups::run(
        &verify,
        &one(&previous.recovery_point),
        &format!("{}-demo-verify-2", env.prefix),
    )
    .await?;
    for f in &found.findings {
        println!(
            "  a copy deleted with the governance bypass: found {} {} (run 2 unverified)",
            f.problem.as_str(),
            f.key
        );
    }
    let healed = backup_objects::run(
        deps,
        &BackupRequest {
            full_listing: true,
            ..next.clone()
        },
        "demo-s3-3",
        None,
    )
    .await?;
    let again = verify_backups::run(
        &verify,
        &one(&healed.recovery_point),
        &format!("{}-demo-verify-3", env.prefix),
    )
    .await?;
    println!(
        "  run 3 (full listing): healed {:?} from the source (same SHA-256), unrecoverable {:?}; verify: {} verified, {} unverified",
        healed.healed,
        healed.unrecoverable,
        again.verified.len(),
        again.unverified.len()
    );
    Ok(())
}

/// A tiered policy over four months, with the clock injected: the plan (and its cost
/// effect), the moves, and a restore from GLACIER.
pub async fn tiers(env: &TestEnv) -> Result<()> {
    use std::sync::Arc;

    use chrono::Duration;
    use lifeboat_domain::cost::PriceBook;
    use lifeboat_ports::objects::RestoreTier;
    use lifeboat_testkit::ManualClock;
    use tier_backups::TierRequest;

    // Micro-dollars, to the micro-dollar: the demo's files are small.
    let usd = |micro: u64| format!("${}.{:06}", micro / 1_000_000, micro % 1_000_000);
    let (src, bak) = (env.name("media"), env.name("media-backups"));
    source_bucket(env, &src).await?;
    backup_bucket(env, &bak).await?;
    let policy = env
        .put_policy(
            r#"{"name": "{prefix}-media", "every": "1d", "timezone": "UTC", "rpo": "2d", "retain": 400,
                "tiers": [{"after": "30d", "class": "GLACIER_IR"}, {"after": "120d", "class": "GLACIER"}]}"#,
        )
        .await?;
    println!(
        "Tiering: policy {} moves S3 copies to GLACIER_IR after 30 days, GLACIER after 120 (clock injected)",
        policy.name
    );
    for (name, kib) in [
        ("clip-1.mp4", 900usize),
        ("clip-2.mp4", 600),
        ("poster.png", 300),
        ("notes.txt", 2),
    ] {
        let body: Vec<u8> = (0..kib * 1024).map(|i| u8::try_from(i % 241).unwrap_or(0)).collect();
        put(env, PRIMARY, &src, &format!("media/{name}"), &body).await?;
    }
    let start = Utc::now() - Duration::days(130);
    let clock = Arc::new(ManualClock::new(start));
    let s = settings(&bak, &[]);
    let mut deps = backup_deps(env, s.clone());
    deps.clock = clock.clone();
    let run = backup_objects::run(
        &deps,
        &BackupRequest {
            bucket: src.clone(),
            prefix: "media/".into(),
            policy: policy.name.to_string(),
            scheduled_time: start,
            request_id: None,
            max_pages: None,
            change_queue: None,
            full_listing: false,
        },
        "demo-media",
        None,
    )
    .await?;
    println!(
        "  {}: backup run of 4 files ({} bytes copied)",
        start.format("%Y-%m-%d"),
        run.bytes_copied
    );
    let tier = tier_backups::Deps {
        catalog: Arc::new(env.catalog()),
        clock: clock.clone(),
        backup: lifeboat_tests::s3::store(env, DR, s.tuning),
        settings: s.clone(),
        prices: PriceBook::aws_list_prices(),
    };
    let ours = |r: &tier_backups::TierReport| {
        r.moves
            .iter()
            .filter(|m| m.recovery_point == run.recovery_point.to_string())
            .cloned()
            .collect::<Vec<_>>()
    };
    // The planner's dry run (plan-backups) lists the run as due, with its reason.
    let plan_deps = lifeboat::planning::Planner {
        ports: env.ports(),
        config: env.config(""),
        tier_base: lifeboat_domain::tiering::S3Class::Standard,
    };
    let dry_plan = lifeboat::planning::run(
        &plan_deps,
        &lifeboat::planning::PlanRequest {
            at: Some(start + Duration::days(31)),
            policy: Some(policy.name.clone()),
            force: false,
            emergencies: Vec::new(),
        },
    )
    .await?;
    for line in dry_plan.summary.lines().filter(|l| l.contains(&run.run)) {
        println!("  day  31 plan-backups:{line}");
    }
    for (day, what) in [(31, "plan"), (31, "move"), (120, "move"), (122, "move")] {
        clock.set(start + Duration::days(day));
        let req = TierRequest {
            dry_run: what == "plan",
            max_objects: None,
        };
        let r = tier_backups::run(&tier, &req, &format!("{}-tier-{day}-{what}", env.prefix)).await?;
        let moves = ours(&r);
        if moves.is_empty() {
            for w in r.waiting.iter().filter(|w| w.run == run.run) {
                println!("  day {day:>3} {what}: waits for {}: {}", w.target, w.reason);
            }
        }
        for m in moves {
            let uneconomic = if m.uneconomic_kept > 0 {
                format!(
                    ", {} stay where a move would cost more than it saves",
                    m.uneconomic_kept
                )
            } else {
                String::new()
            };
            println!(
                "  day {day:>3} {what}: {} -> {}: {} copies, {} bytes ({} under 128 KB stay{uneconomic}); {}; \
                 monthly {} -> {} (+{} once in requests)",
                m.from,
                m.to,
                m.objects,
                m.bytes,
                m.small_kept,
                m.outcome,
                usd(m.cost.before_micro_usd),
                usd(m.cost.after_micro_usd),
                usd(m.cost.requests_micro_usd)
            );
        }
        if what == "plan" {
            println!(
                "  day {day:>3} plan: lifecycle rules for the backup bucket: {}",
                r.lifecycle_rules
                    .iter()
                    .filter(|l| l.prefix.contains(&src))
                    .map(|l| l.prefix.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let restore = restore_deps(env, s);
    let req = restore_objects::RestoreRequest {
        bucket: src.clone(),
        prefix: "media/".into(),
        as_of: Utc::now(),
        keys: Some(vec!["media/clip-1.mp4".into(), "media/notes.txt".into()]),
        target: None,
        overwrite: false,
        dry_run: false,
        tier: Some(RestoreTier::Bulk),
        confirmation: None,
        payload: serde_json::Value::Null,
    };
    for attempt in 1..=2 {
        let r = restore_objects::run(&restore, &req).await?;
        for item in &r.items {
            println!(
                "  restore {attempt}: {} from {} ({}): {}",
                item.key, item.storage_class, item.readiness, item.outcome
            );
        }
        if r.status == restore_objects::RestoreStatus::Complete {
            let restored_bytes = get(
                env,
                PRIMARY,
                &src,
                &format!("lifeboat-restore/{}/media/clip-1.mp4", r.run),
                None,
            )
            .await?;
            let original = get(env, PRIMARY, &src, "media/clip-1.mp4", None).await?;
            println!(
                "  restored media/clip-1.mp4 from GLACIER: {} bytes, identical to the original: {}",
                restored_bytes.len(),
                restored_bytes == original
            );
            break;
        }
    }
    println!();
    Ok(())
}
