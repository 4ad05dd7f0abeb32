//! Behaviour of `export-snapshots` against the in-memory fakes: an export started from the
//! DR copy of the newest snapshot, followed while RDS runs it, its objects moved to
//! DEEP_ARCHIVE with Lifeboat's checksums and a manifest, and the catalog linking the
//! snapshot with its export; replays that do nothing twice; a crash mid-move resumed
//! without copying again; a failed export alerted once and started anew; bad input and bad
//! policies refused with clear messages; a dry run that changes nothing.
//!
//! The fake exporter writes no files (nor does moto): each test puts the exported objects
//! under the export's prefix itself, as RDS would.

#![allow(
    clippy::too_many_lines,
    reason = "a scenario test reads best as one story, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use export_snapshots::{Deps, META_SHA256, Request, handle, handle_with};
use lifeboat::ErrorType;
use lifeboat::metrics::{MemorySink, Metric};
use lifeboat::object_store::read_all;
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::export::{ExportManifest, ExportStatus, RULE_ID_PREFIX};
use lifeboat_domain::tiering::{LifecycleRule, S3Class, TierStep};
use lifeboat_domain::{PolicyName, RecoveryPoint, Region, ResourceKind, ResourceRef, Slot, Status};
use lifeboat_ports::objects::ObjectStore;
use lifeboat_ports::{Catalog, ExportRequest, ExportTaskState, PortError, SnapshotExporter};
use lifeboat_testkit::objects::{InMemoryObjectStore, ObjectOp};
use lifeboat_testkit::{
    ExportOp, InMemoryCatalog, InMemorySnapshotExporter, ManualClock, RecordingNotifier, event_json,
};

const SCHEDULED: &str = include_str!("../../../events/export-snapshots/scheduled.json");
const START: &str = include_str!("../../../events/export-snapshots/start.json");
const POLL: &str = include_str!("../../../events/export-snapshots/poll.json");
const DRY_RUN: &str = include_str!("../../../events/export-snapshots/dry-run.json");
const BAD_MODE: &str = include_str!("../../../events/export-snapshots/bad-mode.json");
const POLL_ONE: &str = include_str!("../../../events/export-snapshots/poll-one-object.json");

const KIB: usize = 1024;
const BUCKET: &str = "vault";
const POLICY: &str = r#"{"name": "db", "every": "1d", "rpo": "2d", "retain": 30,
    "copies": [{"region": "us-west-2"}],
    "export": {"every": "30d", "kms_key_id": "arn:aws:kms:us-west-2:123456789012:key/export",
               "role_arn": "arn:aws:iam::123456789012:role/rds-export", "class": "DEEP_ARCHIVE", "keep": "7y"}}"#;

fn t0() -> DateTime<Utc> {
    "2026-03-01T02:00:00Z".parse().unwrap()
}

fn west() -> Region {
    Region::parse("us-west-2").unwrap()
}

struct World {
    deps: Deps,
    store: Arc<InMemoryObjectStore>,
    catalog: Arc<InMemoryCatalog>,
    notifier: Arc<RecordingNotifier>,
    exporter: Arc<InMemorySnapshotExporter>,
    clock: Arc<ManualClock>,
    resource: ResourceRef,
}

fn settings() -> S3Settings {
    S3Settings::from_lookup(|k| match k {
        "BACKUP_BUCKET_NAME" => Some(BUCKET.into()),
        "BACKUP_REGION" => Some("us-west-2".into()),
        "AWS_REGION" => Some("us-east-1".into()),
        // Exports are locked like the backup copies.
        "OBJECT_LOCK_MODE" => Some("GOVERNANCE".into()),
        "OBJECT_LOCK_DAYS" => Some("30".into()),
        _ => None,
    })
    .unwrap()
}

/// Copies above 250 KiB count as multipart in the fake store.
fn world() -> World {
    let store = Arc::new(InMemoryObjectStore::new().with_multipart_threshold(250 * KIB as u64));
    store.create_bucket(BUCKET, true);
    store.set_now(t0());
    let catalog = Arc::new(InMemoryCatalog::new());
    catalog.put_policy_json("db", POLICY);
    let notifier = Arc::new(RecordingNotifier::new());
    let exporter = Arc::new(InMemorySnapshotExporter::in_region("us-west-2"));
    let clock = Arc::new(ManualClock::new(t0()));
    let resource = ResourceRef {
        kind: ResourceKind::RdsInstance,
        id: "orders".into(),
        arn: "arn:aws:rds:us-east-1:123456789012:db:orders".into(),
        region: Region::parse("us-east-1").unwrap(),
    };
    let deps = Deps {
        catalog: catalog.clone(),
        notifier: notifier.clone(),
        clock: clock.clone(),
        backup: store.clone(),
        exporter: exporter.clone(),
        settings: settings(),
    };
    World {
        deps,
        store,
        catalog,
        notifier,
        exporter,
        clock,
        resource,
    }
}

impl World {
    /// A snapshot of `orders` taken `at`, and its DR copy in us-west-2; returns the copy.
    async fn snapshot(&self, at: DateTime<Utc>) -> RecoveryPoint {
        let name = format!("lb-db-orders-{}", at.format("%Y%m%d-%H%M"));
        let policy = PolicyName::parse("db").unwrap();
        let slot = Slot::containing(at, StdDuration::from_hours(24));
        let mut source = RecoveryPoint::new(
            &self.resource,
            &policy,
            slot,
            &self.resource.region,
            &name,
            Status::Copied,
            at,
        );
        source.snapshot_arn = Some(format!("arn:aws:rds:us-east-1:123456789012:snapshot:{name}"));
        self.catalog.insert(&source).await.unwrap();
        let mut copy = RecoveryPoint::new(&self.resource, &policy, slot, &west(), &name, Status::Available, at);
        copy.source = Some(source.id.clone());
        copy.snapshot_arn = Some(format!("arn:aws:rds:us-west-2:123456789012:snapshot:{name}"));
        self.catalog.insert(&copy).await.unwrap();
        copy
    }

    async fn point(&self, rp: &RecoveryPoint) -> RecoveryPoint {
        self.catalog.get(&rp.id).await.unwrap().unwrap()
    }

    /// What RDS would write under the export's prefix: two Parquet files and its JSON
    /// description. Returns the data prefix.
    async fn write_export(&self, rp: &RecoveryPoint) -> String {
        let e = self.point(rp).await.export().cloned().unwrap();
        let data = e.data_prefix();
        self.store.insert(
            BUCKET,
            &format!("{data}orders/public.customers/1/part-00000-a.gz.parquet"),
            &vec![7u8; 200 * KIB],
        );
        self.store.insert(
            BUCKET,
            &format!("{data}orders/public.orders/1/part-00000-b.gz.parquet"),
            &vec![9u8; 300 * KIB],
        );
        self.store.insert(
            BUCKET,
            &format!("{data}export_info_{}.json", e.task_id),
            br#"{"exportTaskIdentifier":"x"}"#,
        );
        data
    }
}

async fn invoke(w: &World, json: &str) -> export_snapshots::Report {
    handle(&w.deps, event_json(json)).await.unwrap()
}

#[tokio::test]
async fn an_export_is_started_followed_archived_in_deep_archive_and_linked_in_the_catalog() {
    let w = world();
    // Rules someone else owns, and tier-backups' own, stay.
    let foreign = LifecycleRule {
        id: "ops: expire tmp".into(),
        prefix: "tmp/".into(),
        larger_than: 0,
        transitions: vec![TierStep {
            after_days: 1,
            class: S3Class::Glacier,
        }],
    };
    let tiers = LifecycleRule {
        id: "lifeboat-tiers lifeboat/photos/data/".into(),
        ..foreign.clone()
    };
    w.store.add_lifecycle_rule(BUCKET, foreign.clone());
    w.store.add_lifecycle_rule(BUCKET, tiers.clone());
    let older = w.snapshot(t0() - Duration::days(2)).await;
    let copy = w.snapshot(t0() - Duration::days(1)).await;

    let report = invoke(&w, START).await;
    assert_eq!(report.started.len(), 1, "{report:?}");
    let started = &report.started[0];
    assert_eq!(started.recovery_point, copy.id, "the newest snapshot's DR copy");
    assert!(!started.adopted);
    assert!(started.task_id.len() <= 60, "{}", started.task_id);
    let requests = w.exporter.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].source_arn, copy.snapshot_arn.clone().unwrap());
    assert_eq!(requests[0].bucket, BUCKET);
    assert_eq!(
        requests[0].prefix,
        format!("lifeboat/exports/data/orders/{}", copy.snapshot_name)
    );
    assert_eq!(requests[0].role_arn, "arn:aws:iam::123456789012:role/rds-export");
    assert_eq!(requests[0].kms_key_id, "arn:aws:kms:us-west-2:123456789012:key/export");
    let e = w.point(&copy).await.export().cloned().unwrap();
    assert_eq!(
        (e.status, e.attempt, e.class),
        (ExportStatus::Started, 1, S3Class::DeepArchive)
    );
    assert!(w.point(&older).await.export().is_none());
    // The lifecycle rule for the resource's exports, beside the others.
    let rules = w.store.lifecycle_rules(BUCKET);
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert!(rules.contains(&foreign) && rules.contains(&tiers));
    let ours = rules.iter().find(|r| r.id.starts_with(RULE_ID_PREFIX)).unwrap();
    assert_eq!(ours.prefix, "lifeboat/exports/data/orders/");
    assert_eq!(ours.transitions[0].after_days, 0);
    assert_eq!(ours.transitions[0].class, S3Class::DeepArchive);

    // RDS is still exporting: polls report it and change nothing.
    let report = invoke(&w, POLL).await;
    assert_eq!(report.running.len(), 1);
    assert_eq!(report.running[0].state, "STARTING");
    w.exporter.set_state(&e.task_id, ExportTaskState::InProgress, None);
    let report = invoke(&w, POLL).await;
    assert_eq!(report.running[0].state, "IN_PROGRESS");
    assert_eq!(
        w.point(&copy).await.export().cloned().unwrap().status,
        ExportStatus::Started
    );
    assert_eq!(w.store.calls(ObjectOp::Copy), 0);

    // Complete: the Parquet files move to DEEP_ARCHIVE, the JSON description stays.
    let data = w.write_export(&copy).await;
    w.exporter.set_state(&e.task_id, ExportTaskState::Complete, None);
    w.clock.advance(Duration::hours(3));
    let sink = MemorySink::new();
    let report = handle_with(&w.deps, event_json(POLL), &sink).await.unwrap();
    assert_eq!(report.archived.len(), 1, "{report:?}");
    let a = &report.archived[0];
    assert_eq!((a.objects, a.bytes, a.copied, a.recovered), (2, 500 * KIB as u64, 2, 0));
    assert_eq!(a.superseded_pending, 0);
    for key in w.store.keys(BUCKET).iter().filter(|k| k.starts_with(&data)) {
        let head = w.store.head(BUCKET, key, None).await.unwrap().unwrap();
        if key.ends_with(".parquet") {
            assert_eq!(head.storage_class, "DEEP_ARCHIVE", "{key}");
            assert!(head.metadata.iter().any(|(k, _)| k == META_SHA256), "{key}");
            // Locked like the backup copies: 30 days from the move.
            assert_eq!(
                head.lock.as_ref().map(|l| l.retain_until),
                Some(t0() + Duration::hours(3) + Duration::days(30)),
                "{key}"
            );
            // The superseded STANDARD version is gone.
            assert_eq!(w.store.versions(BUCKET, key), 1, "{key}");
        } else {
            assert_eq!(head.storage_class, "STANDARD", "{key}");
        }
    }
    assert_eq!(sink.total(Metric::ExportsArchived), Some(1));
    assert_eq!(sink.total(Metric::BytesExported), Some(500 * KIB as u64));
    assert_eq!(sink.total(Metric::ExportFailures), Some(0));

    // The catalog links the snapshot with its export and the manifest proves it.
    let linked = w.point(&copy).await;
    let e = linked.export().cloned().unwrap();
    assert_eq!(e.status, ExportStatus::Archived);
    assert_eq!((e.objects, e.bytes), (2, 500 * KIB as u64));
    assert_eq!(e.completed_at, Some(t0() + Duration::hours(3)));
    let key = e.manifest_key.clone().unwrap();
    let bytes = read_all(w.store.as_ref(), BUCKET, &key, 1 << 20).await.unwrap();
    let manifest = ExportManifest::decode(&bytes, e.manifest_sha256.as_deref().unwrap()).unwrap();
    assert_eq!(manifest.recovery_point, copy.id);
    assert_eq!(manifest.snapshot_arn, copy.snapshot_arn.clone().unwrap());
    assert_eq!(manifest.entries.len(), 2);
    let customers = &manifest.entries[0];
    assert!(customers.key.ends_with("part-00000-a.gz.parquet"));
    assert_eq!(
        customers.sha256.as_deref(),
        Some(lifeboat_domain::manifest::sha256_hex(&vec![7u8; 200 * KIB]).as_str())
    );
    assert!(manifest.entries.iter().all(|m| m.class == S3Class::DeepArchive));
    assert_eq!(
        w.store.head(BUCKET, &key, None).await.unwrap().unwrap().storage_class,
        "STANDARD"
    );

    // Replays do nothing twice.
    let copies = w.store.calls(ObjectOp::Copy);
    let puts = w.store.calls(ObjectOp::Put);
    for json in [POLL, START, SCHEDULED] {
        let report = invoke(&w, json).await;
        assert!(report.started.is_empty() && report.archived.is_empty(), "{report:?}");
    }
    assert_eq!(
        (w.store.calls(ObjectOp::Copy), w.store.calls(ObjectOp::Put)),
        (copies, puts)
    );
    assert_eq!(w.exporter.requests().len(), 1);
    assert_eq!(w.point(&copy).await, linked);

    // Due again after 30 days, but only a newer snapshot is exported.
    w.clock.advance(Duration::days(31));
    let report = invoke(&w, START).await;
    assert!(report.started.is_empty());
    assert!(report.waiting[0].reason.contains("already exported"), "{report:?}");
    let newer = w.snapshot(t0() + Duration::days(31)).await;
    let report = invoke(&w, START).await;
    assert_eq!(report.started[0].recovery_point, newer.id);
    assert_eq!(w.exporter.requests().len(), 2);
}

#[tokio::test]
async fn an_export_started_before_a_crash_is_adopted_not_started_twice() {
    let w = world();
    let copy = w.snapshot(t0() - Duration::hours(5)).await;
    let planned = invoke(&w, DRY_RUN).await.started[0].clone();
    // The previous invocation started the export and crashed before recording it.
    w.exporter
        .start_export(&ExportRequest {
            task_id: planned.task_id.clone(),
            source_arn: copy.snapshot_arn.clone().unwrap(),
            bucket: BUCKET.into(),
            prefix: planned.prefix.clone(),
            role_arn: "arn:aws:iam::123456789012:role/rds-export".into(),
            kms_key_id: "arn:aws:kms:us-west-2:123456789012:key/export".into(),
        })
        .await
        .unwrap();
    let report = invoke(&w, START).await;
    assert!(report.started[0].adopted, "{report:?}");
    assert_eq!(report.started[0].task_id, planned.task_id);
    assert_eq!(w.exporter.requests().len(), 1, "no second export");
    assert_eq!(w.exporter.calls(ExportOp::Start), 2);
    assert_eq!(w.point(&copy).await.export().cloned().unwrap().task_id, planned.task_id);
    // Adopted starts are not counted as new exports.
    let sink = MemorySink::new();
    handle_with(&w.deps, event_json(START), &sink).await.unwrap();
    assert_eq!(sink.total(Metric::ExportsStarted), Some(0));
}

#[tokio::test]
async fn a_crash_mid_move_resumes_without_copying_an_object_again() {
    let w = world();
    let copy = w.snapshot(t0() - Duration::hours(5)).await;
    invoke(&w, SCHEDULED).await;
    let task = w.point(&copy).await.export().cloned().unwrap().task_id;
    w.write_export(&copy).await;
    w.exporter.set_state(&task, ExportTaskState::Complete, None);
    // The second copy fails (the invocation dies there).
    w.store
        .fail_after(ObjectOp::Copy, 1, PortError::Unavailable("connection reset".into()));
    let err = handle(&w.deps, event_json(POLL)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable, "{err}");
    assert_eq!(w.store.calls(ObjectOp::Copy), 2);
    assert_eq!(
        w.point(&copy).await.export().cloned().unwrap().status,
        ExportStatus::Moving
    );

    let report = invoke(&w, POLL).await;
    let a = &report.archived[0];
    assert_eq!((a.copied, a.recovered, a.objects), (1, 1, 2), "{report:?}");
    assert_eq!(
        w.store.calls(ObjectOp::Copy),
        3,
        "the moved object was not copied again"
    );
    let e = w.point(&copy).await.export().cloned().unwrap();
    assert_eq!(e.status, ExportStatus::Archived);
    let bytes = read_all(w.store.as_ref(), BUCKET, e.manifest_key.as_deref().unwrap(), 1 << 20)
        .await
        .unwrap();
    let manifest = ExportManifest::decode(&bytes, e.manifest_sha256.as_deref().unwrap()).unwrap();
    // The recovered object keeps the SHA-256 Lifeboat computed before the crash.
    assert!(manifest.entries.iter().all(|m| m.sha256.is_some()), "{manifest:?}");
}

#[tokio::test]
async fn a_budget_moves_part_of_an_export_and_the_next_run_finishes_it() {
    let w = world();
    let copy = w.snapshot(t0() - Duration::hours(5)).await;
    invoke(&w, START).await;
    let task = w.point(&copy).await.export().cloned().unwrap().task_id;
    w.write_export(&copy).await;
    w.exporter.set_state(&task, ExportTaskState::Complete, None);
    let report = invoke(&w, POLL_ONE).await;
    assert!(report.archived.is_empty());
    assert_eq!(report.moving[0].remaining, 1, "{report:?}");
    assert_eq!(
        w.point(&copy).await.export().cloned().unwrap().status,
        ExportStatus::Moving
    );
    let report = invoke(&w, POLL).await;
    assert_eq!(report.archived[0].recovered, 1, "{report:?}");
    assert_eq!(w.store.calls(ObjectOp::Copy), 2);
}

#[tokio::test]
async fn a_failed_export_is_alerted_once_recorded_and_started_anew_next_run() {
    let w = world();
    let copy = w.snapshot(t0() - Duration::hours(5)).await;
    invoke(&w, START).await;
    let first = w.point(&copy).await.export().cloned().unwrap();
    let cause = "The IAM role arn:aws:iam::123456789012:role/rds-export cannot write to bucket vault";
    w.exporter
        .set_state(&first.task_id, ExportTaskState::Failed, Some(cause));
    let sink = MemorySink::new();
    let report = handle_with(&w.deps, event_json(POLL), &sink).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].alerted);
    assert_eq!(sink.total(Metric::ExportFailures), Some(1));
    let e = w.point(&copy).await.export().cloned().unwrap();
    assert_eq!(e.status, ExportStatus::Failed);
    assert!(e.failure.as_deref().unwrap().contains(cause), "{e:?}");
    let alerts = w.notifier.alerts();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].summary.contains(cause) && alerts[0].summary.contains(&first.task_id));

    // A replay alerts nothing more.
    let report = invoke(&w, POLL).await;
    assert!(report.failed.is_empty());
    assert_eq!(w.notifier.alerts().len(), 1);

    // The next run exports anew under a new task id.
    let report = invoke(&w, SCHEDULED).await;
    assert_eq!(report.started.len(), 1, "{report:?}");
    assert_eq!(report.started[0].attempt, 2);
    assert_ne!(report.started[0].task_id, first.task_id);
    let e = w.point(&copy).await.export().cloned().unwrap();
    assert_eq!((e.status, e.attempt), (ExportStatus::Started, 2));
    assert_eq!(w.notifier.alerts().len(), 1);
}

#[tokio::test]
async fn a_refused_start_is_alerted_once_and_a_transient_one_is_retried() {
    let w = world();
    let copy = w.snapshot(t0() - Duration::hours(5)).await;
    w.exporter.fail_next(
        ExportOp::Start,
        PortError::Throttled("StartExportTask: Throttling".into()),
    );
    let err = handle(&w.deps, event_json(START)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable);
    assert!(w.point(&copy).await.export().is_none());
    assert!(w.notifier.alerts().is_empty());

    w.exporter.fail_next(
        ExportOp::Start,
        PortError::KmsKey("StartExportTask: KMSKeyNotAccessibleFault: key disabled".into()),
    );
    let report = invoke(&w, START).await;
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].reason.contains("key disabled"));
    assert_eq!(
        w.point(&copy).await.export().cloned().unwrap().status,
        ExportStatus::Failed
    );
    assert_eq!(w.notifier.alerts().len(), 1);
}

#[tokio::test]
async fn bad_input_and_bad_policies_are_refused_with_clear_messages() {
    let w = world();
    for (json, needle) in [
        (BAD_MODE, "export-everything"),
        ("[1, 2]", "expected an export request object"),
        (r#"{"mode": "poll", "maxObjects": 0}"#, "maxObjects must be at least 1"),
        (r#"{"mode": "poll", "force": true}"#, "force"),
        ("{}", "mode"),
    ] {
        let err = handle(&w.deps, event_json(json)).await.unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid, "{json}");
        assert!(err.message.contains(needle), "{json}: {}", err.message);
        assert!(Request::parse(&serde_json::from_str(json).unwrap()).is_err());
    }
    let err = lifeboat_domain::Policy::from_json(
        r#"{"name": "db", "every": "1d", "rpo": "2d", "retain": 30,
            "export": {"every": "30d", "class": "GLACIER_IR", "keep": "30d"}}"#,
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    for needle in [
        "export.kms_key_id: required",
        "export.role_arn: required",
        "90-day minimum",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
    // A stored policy with a bad export rule exports nothing.
    w.catalog.put_policy_json(
        "db",
        r#"{"name": "db", "every": "1d", "rpo": "2d", "retain": 30, "export": {"every": "30d"}}"#,
    );
    w.snapshot(t0() - Duration::hours(5)).await;
    let report = invoke(&w, SCHEDULED).await;
    assert!(
        report.started.is_empty() && report.lifecycle_rules.is_empty(),
        "{report:?}"
    );
    assert!(w.exporter.requests().is_empty());
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let w = world();
    let copy = w.snapshot(t0() - Duration::hours(5)).await;
    let before = w.catalog.points();
    let report = invoke(&w, DRY_RUN).await;
    assert!(report.dry_run);
    assert_eq!(report.started.len(), 1);
    assert_eq!(report.started[0].recovery_point, copy.id);
    assert!(report.started[0].reason.contains("never exported"), "{report:?}");
    assert_eq!(report.lifecycle_rules.len(), 1);
    assert!(w.exporter.requests().is_empty());
    assert_eq!(w.catalog.points(), before);
    assert!(w.store.lifecycle_rules(BUCKET).is_empty());
    assert_eq!(w.store.total_calls(), 0);
    assert!(w.catalog.runs().is_empty());
    let sink = MemorySink::new();
    handle_with(&w.deps, event_json(DRY_RUN), &sink).await.unwrap();
    assert_eq!(sink.total(Metric::ExportsStarted), None);

    // With an export in flight, a dry run reports its state and moves nothing.
    invoke(&w, START).await;
    let task = w.point(&copy).await.export().cloned().unwrap().task_id;
    w.write_export(&copy).await;
    w.exporter.set_state(&task, ExportTaskState::Complete, None);
    let report = invoke(&w, DRY_RUN).await;
    assert_eq!(report.running[0].state, "COMPLETE");
    assert_eq!(w.store.calls(ObjectOp::Copy), 0);
    assert_eq!(
        w.point(&copy).await.export().cloned().unwrap().status,
        ExportStatus::Started
    );
}

#[tokio::test]
async fn an_export_past_its_keep_is_deleted_only_when_nothing_holds_it() {
    let w = world();
    let copy = w.snapshot(t0() - Duration::hours(5)).await;
    invoke(&w, START).await;
    let task = w.point(&copy).await.export().cloned().unwrap().task_id;
    let data = w.write_export(&copy).await;
    w.exporter.set_state(&task, ExportTaskState::Complete, None);
    invoke(&w, POLL).await;
    let archived = w.point(&copy).await.export().cloned().unwrap();
    assert_eq!(archived.status, ExportStatus::Archived);
    let parquet = w
        .store
        .keys(BUCKET)
        .into_iter()
        .find(|k| k.starts_with(&data) && k.ends_with(".parquet"))
        .unwrap();

    // Not yet seven years: nothing to expire.
    w.clock.advance(Duration::days(7 * 365));
    assert!(invoke(&w, POLL).await.expired.is_empty());

    // Past it, but one object is under legal hold: the whole export stays. (S3 judges
    // the copies' own 30-day locks against the same time.)
    w.clock.advance(Duration::days(3));
    w.store.set_now(lifeboat_ports::Clock::now(w.clock.as_ref()));
    w.store.set_legal_hold(BUCKET, &parquet, None, true).await.unwrap();
    let report = invoke(&w, POLL).await;
    assert!(report.expired.is_empty());
    assert!(report.kept[0].reason.contains("legal hold"), "{report:?}");
    w.store.set_legal_hold(BUCKET, &parquet, None, false).await.unwrap();

    // The recovery point's own legal hold keeps it too.
    let mut held = w.point(&copy).await;
    let expected = held.version;
    held.holds.legal_hold = true;
    held.version += 1;
    w.catalog.update(&held, expected).await.unwrap();
    let report = invoke(&w, POLL).await;
    assert!(report.expired.is_empty() && report.kept[0].reason.contains("legal hold"));
    let mut free = w.point(&copy).await;
    let expected = free.version;
    free.holds.legal_hold = false;
    free.version += 1;
    w.catalog.update(&free, expected).await.unwrap();

    // A dry run plans it and deletes nothing.
    let report = invoke(&w, DRY_RUN).await;
    assert_eq!(report.expired.len(), 1, "{report:?}");
    assert_eq!(report.expired[0].deleted, 3);
    assert_eq!(w.store.all_keys(BUCKET, &data).len(), 3);

    let report = invoke(&w, POLL).await;
    assert_eq!(report.expired.len(), 1, "{report:?}");
    assert!(
        w.store
            .all_keys(BUCKET, &data)
            .iter()
            .all(|k| w.store.versions(BUCKET, k) == 0)
    );
    let e = w.point(&copy).await.export().cloned().unwrap();
    assert_eq!(e.status, ExportStatus::Expired);
    // The manifest stays as history.
    assert!(w.store.bytes(BUCKET, e.manifest_key.as_deref().unwrap()).is_some());
    // A replay deletes nothing more, and the expired export's snapshot is not exported again.
    let deletes = w.store.calls(ObjectOp::Delete);
    let report = invoke(&w, SCHEDULED).await;
    assert!(report.expired.is_empty() && report.started.is_empty(), "{report:?}");
    assert!(report.waiting[0].reason.contains("already exported"), "{report:?}");
    assert_eq!(w.store.calls(ObjectOp::Delete), deletes);
}

#[tokio::test]
async fn a_complete_export_with_nothing_in_the_bucket_is_failed_and_alerted_not_archived() {
    let w = world();
    let copy = w.snapshot(t0() - Duration::hours(5)).await;
    w.exporter.set_new_state(ExportTaskState::Complete);
    let report = invoke(&w, SCHEDULED).await;
    assert_eq!(report.started.len(), 1);
    assert!(report.archived.is_empty(), "{report:?}");
    assert!(
        report.failed[0].reason.contains("nothing is under s3://vault/"),
        "{report:?}"
    );
    let e = w.point(&copy).await.export().cloned().unwrap();
    assert_eq!(e.status, ExportStatus::Failed);
    assert_eq!(w.notifier.alerts().len(), 1);
}
