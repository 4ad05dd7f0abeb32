//! Reports as data: the JSON bodies of the admin API's `GET /compliance` and
//! `GET /metrics`, and the daily digest's content. Pure functions over catalog records,
//! policies and prices; the caller reads them and serialises the result with serde.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use lifeboat_domain::compliance::{
    CopyFacts, LocationCompliance, RpoState, SuccessRate, ThreeTwoOne, rpo_compliance, success_rate, three_two_one,
};
use lifeboat_domain::cost::{CostEstimate, PriceBook, StorageTier, Stored, estimate, format_usd};
use lifeboat_domain::planner::ProtectedResource;
use lifeboat_domain::{Policy, PolicyName, RecoveryPoint, RecoveryPointId, Region, Status};

/// `GET /compliance`:
///
/// ```json
/// {
///   "generated_at": "2026-11-23T18:25:00Z",
///   "period": {"from": "2026-11-16T18:25:00Z", "to": "2026-11-23T18:25:00Z"},
///   "summary": {
///     "resources": 4, "locations": 8,
///     "rpo_met": 1, "rpo_unverified": 6, "rpo_breached": 1,
///     "three_two_one_full": 0,
///     "backups": {"succeeded": 40, "failed": 1, "pending": 2, "rate_bp": 9756}
///   },
///   "resources": [{
///     "resource_arn": "arn:aws:rds:us-east-1:111122223333:db:orders", "resource_id": "orders",
///     "region": "us-east-1", "policy": "gold",
///     "rpo": [{"location": "us-east-1", "state": "unverified", "target_secs": 7200,
///              "newest": "us-east-1/db/lb-gold-orders-20261123-1800", "age_secs": 1500,
///              "newest_verified": null, "verified_age_secs": null,
///              "restore_test": {"recovery_point": "us-east-1/db/lb-gold-orders-20261123-1700",
///                               "tested_at": "2026-11-23T17:20:00Z", "passed": true, "restore_secs": 840}}],
///     "backups": {"succeeded": 10, "failed": 0, "pending": 1, "rate_bp": 10000},
///     "three_two_one": {"copies": 2, "media": 1, "off_site": true, "immutable": false, "score": 2,
///                       "missing": ["every copy is on one medium (rds-snapshot): …", "no immutable copy (legal hold or lock)"]}
///   }]
/// }
/// ```
///
/// `state` is `met` (a verified point younger than the RPO), `unverified` (only unverified
/// ones are) or `breached`; `rate_bp` is in basis points (10000 = 100 %), `null` when no
/// backup of the period has finished; the 3-2-1 `score` counts the rules met (0-4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceReport {
    pub generated_at: DateTime<Utc>,
    pub period: Period,
    pub summary: ComplianceSummary,
    pub resources: Vec<ResourceCompliance>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceSummary {
    pub resources: usize,
    pub locations: usize,
    pub rpo_met: usize,
    pub rpo_unverified: usize,
    pub rpo_breached: usize,
    /// Resources scoring 4 of 4 on 3-2-1 (+1 immutable).
    pub three_two_one_full: usize,
    pub backups: SuccessRate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceCompliance {
    pub resource_arn: String,
    pub resource_id: String,
    pub region: Region,
    pub policy: PolicyName,
    pub rpo: Vec<LocationCompliance>,
    pub backups: SuccessRate,
    pub three_two_one: ThreeTwoOne,
}

/// Builds `GET /compliance` for `resources` (each with its policy in `policies`; those
/// whose policy is missing are left out) from their recovery points, judged at `now`
/// over the `period` before it.
pub fn compliance_report(
    resources: &[ProtectedResource],
    policies: &BTreeMap<PolicyName, Policy>,
    points: &[RecoveryPoint],
    now: DateTime<Utc>,
    period: Duration,
) -> ComplianceReport {
    let from = now - period;
    let mut by_resource: BTreeMap<&str, Vec<RecoveryPoint>> = BTreeMap::new();
    for p in points {
        by_resource.entry(p.resource.arn.as_str()).or_default().push(p.clone());
    }
    let mut summary = ComplianceSummary::default();
    let mut out = Vec::new();
    for r in resources {
        let Some(policy) = policies.get(&r.policy) else {
            continue;
        };
        let mine = by_resource.get(r.resource.arn.as_str()).map_or(&[][..], Vec::as_slice);
        let rpo = rpo_compliance(&r.resource, policy, &r.windows, mine, now);
        let backups = success_rate(mine, from, now);
        let facts: Vec<CopyFacts> = mine.iter().filter_map(|p| CopyFacts::of(p, now)).collect();
        // A data set is placed where its runs are kept; its data is where its runs say.
        let home = if r.resource.kind.is_data_set() {
            mine.first().map_or(&r.resource.region, |p| &p.resource.region)
        } else {
            &r.resource.region
        };
        let score = three_two_one(home, &facts);
        summary.resources += 1;
        summary.locations += rpo.len();
        for l in &rpo {
            match l.state {
                RpoState::Met => summary.rpo_met += 1,
                RpoState::Unverified => summary.rpo_unverified += 1,
                RpoState::Breached => summary.rpo_breached += 1,
            }
        }
        if score.score == 4 {
            summary.three_two_one_full += 1;
        }
        summary.backups = summary.backups.merge(backups);
        out.push(ResourceCompliance {
            resource_arn: r.resource.arn.clone(),
            resource_id: r.resource.id.clone(),
            region: r.resource.region.clone(),
            policy: r.policy.clone(),
            rpo,
            backups,
            three_two_one: score,
        });
    }
    ComplianceReport {
        generated_at: now,
        period: Period { from, to: now },
        summary,
        resources: out,
    }
}

/// `GET /metrics`:
///
/// ```json
/// {
///   "generated_at": "2026-11-23T18:25:00Z",
///   "recovery_points": {"total": 12, "by_status": {"available": 4, "copied": 4, "failed": 1},
///                       "by_location": {"us-east-1": 6, "us-west-2": 6}},
///   "failures": {"since": "2026-11-22T18:25:00Z", "items": [
///       {"id": "us-west-2/db/lb-gold-orders-20261123-1700", "resource_arn": "arn:…", "location": "us-west-2",
///        "step": "copy", "code": "kms-key", "message": "…", "at": "2026-11-23T17:10:00Z"}]},
///   "storage": {
///     "tiers": [{"region": "us-east-1", "tier": "rds-snapshot", "items": 4, "bytes": 85899345920,
///                "billable_bytes": 85899345920, "storage_micro_usd": 7600000,
///                "early_deletion_micro_usd": 0, "total_micro_usd": 7600000, "priced": true}],
///     "bytes": 85899345920, "total_micro_usd": 7600000, "unpriced_items": 0,
///     "total_usd": "7.60", "unsized_points": 2
///   }
/// }
/// ```
///
/// Money is in integer micro-dollars (`total_usd` is the same rounded to cents, as text).
/// Storage counts the restorable recovery points whose size is known (`unsized_points`
/// are the others), each at its full size in its location's tier: RDS snapshots are
/// incremental, so the estimate is an upper bound for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsReport {
    pub generated_at: DateTime<Utc>,
    pub recovery_points: PointCounts,
    pub failures: Failures,
    pub storage: StorageReport,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointCounts {
    pub total: usize,
    pub by_status: BTreeMap<String, usize>,
    pub by_location: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failures {
    pub since: DateTime<Utc>,
    pub items: Vec<FailureItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureItem {
    pub id: RecoveryPointId,
    pub resource_arn: String,
    pub location: Region,
    pub step: String,
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageReport {
    #[serde(flatten)]
    pub estimate: CostEstimate,
    pub total_usd: String,
    pub unsized_points: usize,
}

/// Recovery points that failed in `[since, now]` (by their last update), newest first.
pub fn failures_since(points: &[RecoveryPoint], since: DateTime<Utc>, now: DateTime<Utc>) -> Vec<FailureItem> {
    let mut items: Vec<FailureItem> = points
        .iter()
        .filter(|p| p.status == Status::Failed && p.updated_at >= since && p.updated_at <= now)
        .map(|p| {
            let (step, code, message) = p.failure.as_ref().map_or_else(
                || ("unknown".to_owned(), "failed".to_owned(), String::new()),
                |f| {
                    let step = serde_json::to_value(f.step)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    (step, f.code.clone(), f.message.clone())
                },
            );
            FailureItem {
                id: p.id.clone(),
                resource_arn: p.resource.arn.clone(),
                location: p.location.clone(),
                step,
                code,
                message,
                at: p.updated_at,
            }
        })
        .collect();
    items.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
    items
}

/// The size a recovery point recorded when it became available (database snapshots and
/// table backups as AWS reported them, a config bundle's envelope, the copies an S3 run
/// made); `None` for the others, counted as unsized.
pub fn recorded_size(p: &RecoveryPoint) -> Option<u64> {
    p.size_bytes
}

/// The storage each point holds, from what the points recorded ([`recorded_size`]) and how
/// S3 runs share copies: each run records the copies it made, so the oldest restorable run
/// of a data set in a location counts everything its manifest references (copies earlier,
/// expired runs made included), and each newer run what it copied. That is the data set's
/// stored bytes exactly when the kept runs are consecutive (`retain: n`); with gaps (GFS) a
/// copy made by an expired run between two kept ones is missed, so it is a lower bound.
pub fn recorded_sizes(points: &[RecoveryPoint]) -> impl Fn(&RecoveryPoint) -> Option<u64> + use<> {
    let mut oldest: std::collections::HashMap<(&str, &lifeboat_domain::Region), &RecoveryPoint> =
        std::collections::HashMap::new();
    for p in points
        .iter()
        .filter(|p| p.resource.kind == lifeboat_domain::ResourceKind::S3Prefix && p.is_restorable())
    {
        let e = oldest.entry((p.resource.arn.as_str(), &p.location)).or_insert(p);
        if (p.created_at, &p.id) < (e.created_at, &e.id) {
            *e = p;
        }
    }
    let whole: std::collections::HashMap<lifeboat_domain::RecoveryPointId, u64> = oldest
        .into_values()
        .filter_map(|p| p.manifest().map(|m| (p.id.clone(), m.bytes)))
        .collect();
    move |p: &RecoveryPoint| whole.get(&p.id).copied().or_else(|| recorded_size(p))
}

/// The storage items of the restorable points whose size `size_of` knows, and of the
/// Glacier vault archives of their bundles (priced as S3 Glacier Flexible Retrieval, the
/// same list price).
pub fn storage_items(
    points: &[RecoveryPoint],
    size_of: &dyn Fn(&RecoveryPoint) -> Option<u64>,
    now: DateTime<Utc>,
) -> (Vec<Stored>, usize) {
    let mut unsized_points = 0;
    let mut items = Vec::new();
    let days = |at: DateTime<Utc>| u32::try_from((now - at).num_days().max(0)).unwrap_or(u32::MAX);
    for p in points.iter().filter(|p| p.is_restorable()) {
        if let Some(a) = p.archive() {
            items.push(Stored {
                region: a.region.clone(),
                tier: StorageTier::S3GlacierFlexible,
                bytes: a.size,
                objects: 1,
                stored_days: days(a.archived_at),
                expires_in_days: None,
            });
        }
        let Some(bytes) = size_of(p) else {
            unsized_points += 1;
            continue;
        };
        items.push(Stored {
            region: p.location.clone(),
            tier: StorageTier::of_kind(p.resource.kind),
            bytes,
            objects: 1,
            stored_days: days(p.created_at),
            expires_in_days: None,
        });
    }
    (items, unsized_points)
}

/// Builds `GET /metrics` from recovery points, their sizes (when known) and prices.
pub fn metrics_report(
    points: &[RecoveryPoint],
    size_of: &dyn Fn(&RecoveryPoint) -> Option<u64>,
    prices: &PriceBook,
    now: DateTime<Utc>,
) -> MetricsReport {
    let mut counts = PointCounts {
        total: points.len(),
        ..PointCounts::default()
    };
    for p in points {
        *counts.by_status.entry(p.status.as_str().to_owned()).or_default() += 1;
        *counts.by_location.entry(p.location.to_string()).or_default() += 1;
    }
    let since = now - Duration::hours(24);
    let (items, unsized_points) = storage_items(points, size_of, now);
    let estimate = estimate(&items, prices);
    MetricsReport {
        generated_at: now,
        recovery_points: counts,
        failures: Failures {
            since,
            items: failures_since(points, since, now),
        },
        storage: StorageReport {
            total_usd: format_usd(estimate.total_micro_usd),
            estimate,
            unsized_points,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lifeboat_domain::{Failure, ResourceKind, ResourceRef, Slot, Step};

    fn now() -> DateTime<Utc> {
        "2026-11-23T18:25:00Z".parse().unwrap()
    }

    fn resource(id: &str) -> ResourceRef {
        ResourceRef {
            kind: ResourceKind::RdsInstance,
            id: id.into(),
            arn: format!("arn:aws:rds:us-east-1:111122223333:db:{id}"),
            region: Region::parse("us-east-1").unwrap(),
        }
    }

    fn point(r: &ResourceRef, location: &str, minutes_ago: i64, status: Status) -> RecoveryPoint {
        let at = now() - Duration::minutes(minutes_ago);
        let slot = Slot::containing(at, std::time::Duration::from_hours(1));
        let name = format!("lb-gold-{}-{}", r.id, slot.compact());
        let loc = Region::parse(location).unwrap();
        let mut p = RecoveryPoint::new(r, &PolicyName::parse("gold").unwrap(), slot, &loc, &name, status, at);
        if loc != r.region {
            p.source = Some(RecoveryPointId::new(&r.region, r.kind, &name));
        }
        p
    }

    fn policies() -> BTreeMap<PolicyName, Policy> {
        let p = Policy::from_json(
            r#"{"name":"gold","every":"1h","rpo":"2h","retain":24,"copies":[{"region":"us-west-2","kms_key_id":"alias/dr"}]}"#,
        )
        .unwrap();
        BTreeMap::from([(p.name.clone(), p)])
    }

    #[test]
    fn compliance_report_summarises_rpo_success_and_three_two_one() {
        let orders = resource("orders");
        let lonely = resource("lonely");
        let mut verified = point(&orders, "us-east-1", 30, Status::Copied);
        verified.verified_at = Some(now() - Duration::minutes(5));
        let mut copy = point(&orders, "us-west-2", 30, Status::Available);
        copy.holds.locked_until = Some(now() + Duration::days(30));
        let failed = point(&lonely, "us-east-1", 90, Status::Pending)
            .fail(
                Failure {
                    step: Step::Create,
                    code: "snapshot-failed".into(),
                    message: "AWS reports the snapshot as failed".into(),
                },
                now() - Duration::minutes(80),
            )
            .unwrap();
        let resources: Vec<ProtectedResource> = [&orders, &lonely]
            .into_iter()
            .map(|r| ProtectedResource {
                resource: r.clone(),
                policy: PolicyName::parse("gold").unwrap(),
                windows: vec![],
            })
            .collect();
        let report = compliance_report(
            &resources,
            &policies(),
            &[verified, copy, failed],
            now(),
            Duration::days(7),
        );
        let s = &report.summary;
        assert_eq!((s.resources, s.locations), (2, 4));
        assert_eq!((s.rpo_met, s.rpo_unverified, s.rpo_breached), (1, 1, 2));
        assert_eq!(
            (s.backups.succeeded, s.backups.failed, s.backups.rate_bp),
            (1, 1, Some(5_000))
        );
        let o = &report.resources[0];
        assert_eq!(o.resource_id, "orders");
        assert_eq!(o.three_two_one.score, 3, "{:?}", o.three_two_one);
        assert_eq!(report.resources[1].three_two_one.score, 0);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["resources"][0]["rpo"][0]["state"], "met");
        assert_eq!(json["resources"][0]["rpo"][1]["state"], "unverified");
        assert_eq!(json["summary"]["backups"]["rate_bp"], 5000);
    }

    #[test]
    fn metrics_report_counts_failures_and_prices_known_sizes() {
        let orders = resource("orders");
        let ok = point(&orders, "us-east-1", 30, Status::Available);
        let copy = point(&orders, "us-west-2", 30, Status::Available);
        let bad_copy = point(&orders, "us-west-2", 100, Status::Pending)
            .fail(
                Failure {
                    step: Step::Copy,
                    code: "kms-key".into(),
                    message: "no key".into(),
                },
                now() - Duration::minutes(50),
            )
            .unwrap();
        let old_failure = RecoveryPoint {
            updated_at: now() - Duration::days(3),
            ..bad_copy.clone()
        };
        let size = |p: &RecoveryPoint| (p.location.as_str() == "us-east-1").then_some(100 * lifeboat_domain::cost::GIB);
        let r = metrics_report(
            &[ok, copy, bad_copy, old_failure],
            &size,
            &PriceBook::aws_list_prices(),
            now(),
        );
        assert_eq!(r.recovery_points.total, 4);
        assert_eq!(r.recovery_points.by_status["failed"], 2);
        assert_eq!(r.failures.items.len(), 1);
        assert_eq!(r.failures.items[0].step, "copy");
        assert_eq!(r.storage.unsized_points, 1);
        assert_eq!(r.storage.total_usd, "9.50");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["storage"]["tiers"][0]["tier"], "rds-snapshot");
        assert_eq!(json["storage"]["total_micro_usd"], 9_500_000);
    }

    #[test]
    fn s3_runs_count_the_oldest_runs_whole_manifest_and_what_each_newer_run_copied() {
        let media = lifeboat_domain::s3::s3_resource(&Region::parse("us-east-1").unwrap(), "media", "photos/");
        let gib = lifeboat_domain::cost::GIB;
        // Four hourly runs of a 100 GiB prefix: the first copied everything, then 2, 3 and
        // 5 GiB changed. The first has expired: the second is the oldest kept.
        let run = |hours_ago: i64, copied: u64, status: Status| {
            let mut p = point(&media, "us-west-2", hours_ago * 60, status);
            p.objects_mut().unwrap().manifest = Some(lifeboat_domain::manifest::ManifestRef {
                source_bucket: "media".into(),
                prefix: "photos/".into(),
                backup_bucket: "vault".into(),
                key: format!("lifeboat/media/x/manifests/{hours_ago}.jsonl.zst"),
                sha256: String::new(),
                objects: 1000,
                bytes: 100 * gib,
                copied: 10,
                deleted: 0,
            });
            p.size_bytes = Some(copied * gib);
            p
        };
        let points = [
            run(4, 100, Status::Expired),
            run(3, 2, Status::Available),
            run(2, 3, Status::Available),
            run(1, 5, Status::Available),
        ];
        let size_of = recorded_sizes(&points);
        let sizes: Vec<Option<u64>> = points.iter().map(|p| size_of(p).map(|b| b / gib)).collect();
        // The oldest kept run holds the whole prefix (its copies and those the expired run
        // made); each newer run adds what it copied.
        assert_eq!(sizes, [Some(100), Some(100), Some(3), Some(5)]);
        let r = metrics_report(&points, &size_of, &PriceBook::aws_list_prices(), now());
        // By hand: 108 GiB in S3 Standard at $0.023 per GB-month (us-west-2 list price).
        assert_eq!(r.storage.unsized_points, 0);
        assert_eq!(r.storage.total_usd, "2.48", "{:?}", r.storage);

        // The newest run's manifest bundle archived in a Glacier vault: 50 GiB more, at
        // $0.0036 per GB-month.
        let mut archived = points.clone();
        archived[3].objects_mut().unwrap().archive = Some(lifeboat_domain::archive::ArchiveRef {
            vault: "lifeboat-archive".into(),
            region: Region::parse("us-west-2").unwrap(),
            archive_id: "a1".into(),
            tree_hash: String::new(),
            sha256: String::new(),
            size: 50 * gib,
            parts: 1,
            archived_at: now(),
            retrieval: None,
        });
        let r = metrics_report(&archived, &size_of, &PriceBook::aws_list_prices(), now());
        assert_eq!(r.storage.total_usd, "2.66", "{:?}", r.storage);
    }
}
