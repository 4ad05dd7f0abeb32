//! Validation of what was restored: databases, tables and data sets.

use lifeboat::app::PointUpdateError;
use lifeboat::object_store::runs::{ManifestReadError, load_current_manifest};
use lifeboat::{ErrorType, FunctionError};
use lifeboat_domain::dr::execution::TableRun;
use lifeboat_domain::dr::{DrExecution, DrPlan, Source};
use lifeboat_domain::{RecoveryPoint, ResourceKind};
use lifeboat_ports::dr::TableInfo;
use serde_json::{Value, json};

use super::points::newest_data_run;
use super::{StepResult, internal};
use crate::{Deps, TAG_EXECUTION};

/// Reads a sample of the data set's newest backup run back and compares every object with
/// its manifest; records the run (its time counts in the measured RPO) and what was found.
async fn validate_data(
    deps: &Deps,
    plan: &DrPlan,
    exec: &mut DrExecution,
    i: usize,
    problems: &mut Vec<String>,
) -> Result<(), FunctionError> {
    let Some(d) = plan.data.get(i) else { return Ok(()) };
    let what = format!("s3://{}/{}", d.bucket, d.prefix);
    let Some(store) = deps.backup.as_ref() else {
        problems.push(format!("{what}: S3 backups are not configured for DR (BACKUP_REGION)"));
        return Ok(());
    };
    let Some(rp) = newest_data_run(deps, plan, d, exec.reference_time).await? else {
        problems.push(format!("{what}: no completed backup run"));
        return Ok(());
    };
    let Some(mref) = rp.manifest().cloned() else {
        problems.push(format!("{what}: {} has no manifest", rp.id));
        return Ok(());
    };
    let manifest = match load_current_manifest(store.as_ref(), deps.catalog.as_ref(), &rp.location, &mref).await {
        Ok(m) => m,
        Err(ManifestReadError::Port(e)) => return Err(e.into()),
        Err(ManifestReadError::Bad(e)) => {
            problems.push(format!("{what}: the manifest of {} failed its check ({e})", rp.id));
            return Ok(());
        }
    };
    let live: Vec<_> = manifest.live().collect();
    let objects = live.len() as u64;
    let chosen = lifeboat::verify::sample(live, d.sample, &exec.execution);
    let checked = lifeboat::verify::check_entries(store, &mref.backup_bucket, chosen).await?;
    let found: Vec<String> = checked
        .problems
        .iter()
        .map(|(key, p)| format!("{key}: {}", p.as_str()))
        .collect();
    if found.is_empty() {
        exec.checks.push(format!(
            "validate {what}: {} of {objects} object(s) of {} read back and matching the manifest",
            checked.objects, rp.id
        ));
    } else {
        problems.push(format!(
            "{what}: {} object(s) of {} do not match the manifest: {}",
            found.len(),
            rp.id,
            found.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let now = deps.clock.now();
    if let Some(run) = exec.data.get_mut(i) {
        run.recovery_point = Some(rp.id.to_string());
        run.run_at = Some(rp.created_at);
        run.backup_bucket = Some(mref.backup_bucket.clone());
        run.objects = objects;
        run.objects_checked = checked.objects;
        run.bytes_checked = checked.bytes;
        run.problems = found;
        run.validated_at = Some(now);
    }
    Ok(())
}

/// Records a backup's content on its recovery point, once: the first validated restore
/// writes it (version-checked); a restore that lost the race to record compares with what
/// the winner wrote. Returns what the recovery point holds afterwards.
async fn record_table_checksum(
    deps: &Deps,
    rp_id: &str,
    found: &lifeboat_domain::dr::table_digest::TableContent,
    restored_as: &str,
) -> Result<lifeboat_domain::TableChecksum, FunctionError> {
    let id = lifeboat_domain::RecoveryPointId::parse(rp_id).map_err(|e| internal(e.to_string()))?;
    let now = deps.clock.now();
    let record = lifeboat_domain::TableChecksum {
        items: found.items,
        checksum: found.checksum.clone(),
        restored_as: restored_as.to_owned(),
        at: now,
    };
    // What the point already holds, when another restore recorded it first.
    let mut existing = None;
    let written = lifeboat::app::update_point(deps.catalog.as_ref(), deps.clock.as_ref(), &id, 3, |rp| {
        if let Some(e) = rp.table_checksum() {
            existing = Some(e.clone());
            return None;
        }
        let mut next = RecoveryPoint {
            verified_at: Some(now),
            ..rp.clone()
        };
        next.table_backup_mut()?.table_checksum = Some(record.clone());
        Some(next)
    })
    .await;
    match written {
        Ok(Some(_)) => Ok(record),
        Ok(None) => existing.ok_or_else(|| internal(format!("recovery point {rp_id}: nothing recorded"))),
        Err(PointUpdateError::Missing) => Err(FunctionError::not_found(format!(
            "recovery point {rp_id} vanished from the catalog"
        ))),
        Err(PointUpdateError::KeptChanging) => Err(FunctionError::retryable(format!(
            "recovery point {rp_id} kept changing while its checksum was recorded"
        ))),
        Err(PointUpdateError::Port(e)) => Err(e.into()),
    }
}

/// Validates one restored table: active, the source's key schema and index names, and
/// the scan's item count and checksum against the backup's first validated restore (or
/// recorded as that first one). The verdict, the count and the checksum go into the
/// execution record.
async fn validate_table(
    deps: &Deps,
    exec: &mut DrExecution,
    i: usize,
    problems: &mut Vec<String>,
) -> Result<Option<Value>, FunctionError> {
    let t = exec.tables[i].clone();
    let name = &t.table.name;
    let mut mine = Vec::new();
    let mut ok = Vec::new();
    let Some(info) = deps.tables.describe_table(&t.target_region, &t.target_name).await? else {
        problems.push(format!("table {name}: {} does not exist", t.target_name));
        exec.tables[i].verdict = Some(format!("failed: {} does not exist", t.target_name));
        return Ok(None);
    };
    if info.is_ready() {
        ok.push(format!("{} active", t.target_name));
    } else {
        mine.push(format!("{} is {}", t.target_name, info.status));
    }
    compare_shape(deps, &t, &info, &mut ok, &mut mine).await?;
    let found = deps.tables.scan_content(&t.target_region, &t.target_name).await?;
    ok.push(format!("{} item(s) scanned, checksum {}", found.items, found.checksum));
    // DescribeBackup's count is the source table's ItemCount, which DynamoDB refreshes
    // about every 6 hours: a difference is reported, never failed on. The checksum is the
    // exact check.
    match t.backup_item_count {
        Some(n) if n == found.items => ok.push(format!("the backup's item count {n} matches")),
        Some(n) => ok.push(format!(
            "note: the backup's description says {n} item(s) (DynamoDB refreshes that figure about every 6 hours, so it may be stale); the scan found {}",
            found.items
        )),
        None => {}
    }
    let rp_id = t.recovery_point.clone().unwrap_or_default();
    // Read fresh: another execution may have recorded the backup's content since.
    let recorded = match lifeboat_domain::RecoveryPointId::parse(&rp_id) {
        Ok(id) => deps.catalog.get(&id).await?.and_then(|rp| rp.table_checksum().cloned()),
        Err(_) => None,
    };
    let expected = match recorded {
        Some(c) => Some(c),
        None if mine.is_empty() => {
            let c = record_table_checksum(deps, &rp_id, &found, &t.target_name).await?;
            if c.restored_as == t.target_name {
                ok.push(format!(
                    "first validated restore of {rp_id}: count and checksum recorded"
                ));
            }
            Some(c)
        }
        None => None,
    };
    if let Some(c) = &expected {
        if c.items == found.items && c.checksum == found.checksum {
            if c.restored_as != t.target_name {
                ok.push(format!(
                    "count and checksum match the backup's first restore ({})",
                    c.restored_as
                ));
            }
        } else {
            mine.push(format!(
                "content differs from the backup's first validated restore ({}): {} item(s) {} then, {} item(s) {} now",
                c.restored_as, c.items, c.checksum, found.items, found.checksum
            ));
        }
    }
    let now = deps.clock.now();
    let run = &mut exec.tables[i];
    run.content = Some(found.clone());
    run.expected = expected.map(|c| lifeboat_domain::dr::table_digest::TableContent {
        items: c.items,
        checksum: c.checksum,
    });
    run.validated_at = Some(now);
    if mine.is_empty() {
        run.verdict = Some(format!("passed: {}", ok.join(", ")));
        exec.checks.push(format!("validate table {name}: {}", ok.join(", ")));
    } else {
        run.verdict = Some(format!("failed: {}", mine.join("; ")));
        problems.extend(mine.into_iter().map(|m| format!("table {name}: {m}")));
    }
    Ok(Some(json!({
        "table": name, "region": t.target_region, "id": t.target_name,
        "items": found.items, "checksum": found.checksum,
    })))
}

/// The restored table's shape: as the source table's description when it can be read,
/// else as the backup's (key schema only: a backup's description names no indexes).
async fn compare_shape(
    deps: &Deps,
    t: &TableRun,
    info: &TableInfo,
    ok: &mut Vec<String>,
    mine: &mut Vec<String>,
) -> Result<(), FunctionError> {
    let name = &t.table.name;
    match deps.tables.describe_table(&t.table.region, name).await {
        Ok(Some(src)) => {
            if src.key_schema == info.key_schema {
                ok.push("key schema as the source's".into());
            } else {
                mine.push(format!(
                    "key schema {:?}, the source has {:?}",
                    info.key_schema, src.key_schema
                ));
            }
            if src.indexes == info.indexes {
                ok.push(format!("indexes {:?} as the source's", info.indexes));
            } else {
                mine.push(format!(
                    "global secondary indexes {:?}, the source has {:?}",
                    info.indexes, src.indexes
                ));
            }
        }
        source => {
            let why = match source {
                Err(e) => format!("source table unreadable ({e})"),
                _ => "source table gone".to_owned(),
            };
            let backup = match &t.backup_arn {
                Some(arn) => deps.tables.describe_backup(&t.table.region, arn).await?,
                None => None,
            };
            match backup {
                Some(b) if b.key_schema == info.key_schema => ok.push(format!("{why}: key schema as the backup's")),
                Some(b) => mine.push(format!(
                    "key schema {:?}, the backup has {:?}",
                    info.key_schema, b.key_schema
                )),
                None => ok.push(format!("{why}: shape not compared")),
            }
        }
    }
    Ok(())
}

pub(super) async fn validate(deps: &Deps, plan: &DrPlan, exec: &mut DrExecution) -> StepResult {
    let mut problems = Vec::new();
    let mut resources = Vec::new();
    for i in 0..plan.data.len() {
        validate_data(deps, plan, exec, i, &mut problems).await?;
    }
    for i in 0..exec.tables.len() {
        if let Some(r) = validate_table(deps, exec, i, &mut problems).await? {
            resources.push(r);
        }
    }
    for d in &exec.databases {
        let Some(info) = deps
            .databases
            .describe(&d.target_region, d.db.kind, &d.target_id)
            .await?
        else {
            problems.push(format!("{}: {} does not exist", d.db.id, d.target_id));
            continue;
        };
        let mut ok = vec![format!("{} available", d.target_id)];
        if !info.is_available() {
            problems.push(format!("{}: {} is {}", d.db.id, d.target_id, info.status));
        }
        if let (Some(want), Some(got)) = (&d.expect_engine, &info.engine) {
            if want == got {
                ok.push(format!("engine {got}"));
            } else {
                problems.push(format!("{}: engine {got}, expected {want}", d.db.id));
            }
        }
        if d.db.kind == ResourceKind::RdsInstance
            && let (Some(want), Some(got)) = (&d.expect_class, &info.class)
        {
            if want == got {
                ok.push(format!("class {got}"));
            } else {
                problems.push(format!("{}: class {got}, expected {want}", d.db.id));
            }
        }
        let created = !matches!(
            d.source,
            Some(Source::PromoteReplica { .. } | Source::GlobalCluster { .. })
        );
        let tag = |k: &str| info.tags.iter().find(|t| t.key == k).map(|t| t.value.as_str());
        if created {
            if tag(TAG_EXECUTION) == Some(exec.execution.as_str()) {
                ok.push("Lifeboat tags".into());
            } else {
                problems.push(format!("{}: {} lacks the execution tag", d.db.id, d.target_id));
            }
        }
        for (k, v) in &plan.validation.expect_tags {
            if tag(k) != Some(v.as_str()) {
                problems.push(format!("{}: tag {k}={v} missing", d.db.id));
            }
        }
        exec.checks.push(format!("validate {}: {}", d.db.id, ok.join(", ")));
        resources.push(json!({
            "database": d.db.id, "kind": d.db.kind, "region": d.target_region,
            "id": d.target_id, "endpoint": info.endpoint,
        }));
    }
    if problems.is_empty()
        && let Some(arn) = &plan.validation.lambda_arn
    {
        let payload = json!({
            "plan": exec.plan, "execution": exec.execution, "mode": exec.mode, "resources": resources,
        });
        match lifeboat_ports::lambda::validate(deps.validator.as_ref(), arn, &payload).await? {
            Err(e) => problems.push(format!("validation Lambda {arn} failed: {e}")),
            Ok(v) if v.get("ok") == Some(&Value::Bool(false)) => problems.push(format!(
                "validation Lambda {arn} says not ok: {}",
                v.get("reason").and_then(Value::as_str).unwrap_or("no reason given")
            )),
            Ok(_) => exec.checks.push(format!("validation Lambda {arn}: ok")),
        }
    }
    if !problems.is_empty() {
        return Err(FunctionError::new(
            ErrorType::Conflict,
            format!("validation failed: {}", problems.join("; ")),
        ));
    }
    if exec.validated_at.is_none() {
        exec.validated_at = Some(deps.clock.now());
    }
    let mut what = vec![format!("{} database(s)", exec.databases.len())];
    if !exec.data.is_empty() {
        what.push(format!("{} data set(s)", exec.data.len()));
    }
    if !exec.tables.is_empty() {
        what.push(format!("{} table(s)", exec.tables.len()));
    }
    Ok((true, format!("{} validated", what.join(" and "))))
}
