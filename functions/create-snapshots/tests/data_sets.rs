//! Data sets a policy names (S3 prefixes, config bundles): the tick starts each one's run
//! for the slot, with the slot's start as its time, through the function or state machine
//! that makes it; it never snapshots them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::Arc;

use chrono::{DateTime, Utc};
use create_snapshots::{DataRuns, Deps, RunTargets, handle};
use lifeboat::ErrorType;
use lifeboat_ports::PortError;
use lifeboat_testkit::lambda::RecordingLambdas;
use lifeboat_testkit::{Fakes, event_json};
use serde_json::json;

const TICK: &str = include_str!("../../../events/create-snapshots/scheduler-tick.json");
const MEDIA: &str = r#"{"name": "media", "every": "1h", "rpo": "2h", "retain": 24, "priority": 2,
    "s3": [{"bucket": "photos", "prefix": "2026/", "change_queue": "lb-changes-photos"},
           {"bucket": "archive", "large": true}],
    "config_bundles": [{"name": "orders-config", "parameters": ["/orders/"], "secrets": ["orders/"]}]}"#;

fn now() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

const STATE_MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-backup-objects";

fn setup(targets: RunTargets) -> (Fakes, Arc<RecordingLambdas>, Deps) {
    let fakes = Fakes::new(now());
    fakes.catalog.put_policy_json("media", MEDIA);
    let lambdas = Arc::new(RecordingLambdas::default());
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        runs: DataRuns {
            lambdas: lambdas.clone(),
            executions: lambdas.clone(),
            targets,
        },
    };
    (fakes, lambdas, deps)
}

fn all_targets() -> RunTargets {
    RunTargets {
        backup_objects_function: Some("lifeboat-backup-objects".into()),
        backup_objects_state_machine: Some(STATE_MACHINE.into()),
        backup_config_function: Some("lifeboat-backup-config".into()),
    }
}

#[tokio::test]
async fn a_tick_starts_each_data_sets_run_named_by_its_slot() {
    let (fakes, lambdas, deps) = setup(all_targets());
    let report = handle(&deps, event_json(TICK)).await.unwrap();

    // Recorded where the runs are kept (the backup region), named as the functions name them.
    let started: Vec<String> = report.started.iter().map(ToString::to_string).collect();
    let photos = lifeboat_domain::manifest::run_name("media", "photos", "2026/", "20261123-1800");
    let archive = lifeboat_domain::manifest::run_name("media", "archive", "", "20261123-1800");
    assert_eq!(
        started,
        [
            "us-west-2/config/lb-orders-config-20261123-1800".to_owned(),
            format!("us-west-2/s3/{archive}"),
            format!("us-west-2/s3/{photos}"),
        ]
    );
    assert!(report.created.is_empty(), "nothing is snapshotted");
    assert!(fakes.snapshots.snapshots().is_empty());

    let queued = lambdas.queued();
    assert_eq!(queued.len(), 2);
    let objects = queued.iter().find(|(f, _)| f == "lifeboat-backup-objects").unwrap();
    assert_eq!(
        objects.1,
        json!({"bucket": "photos", "prefix": "2026/", "policy": "media",
               "scheduledTime": "2026-11-23T18:00:00Z", "changeQueue": "lb-changes-photos"})
    );
    let config = queued.iter().find(|(f, _)| f == "lifeboat-backup-config").unwrap();
    assert_eq!(
        config.1,
        json!({"action": "backup", "bundle": "orders-config", "policy": "media",
               "parameters": ["/orders/"], "secrets": ["orders/"], "scheduledTime": "2026-11-23T18:00:00Z"})
    );
    // The large prefix: one state machine execution per run, named by the run.
    let executions = lambdas.executions();
    let (sm, input) = &executions[&archive];
    assert_eq!(sm, STATE_MACHINE);
    assert_eq!(
        *input,
        json!({"bucket": "archive", "prefix": "", "policy": "media", "scheduledTime": "2026-11-23T18:00:00Z"})
    );
    assert!(fakes.notifier.alerts().is_empty());
}

#[tokio::test]
async fn a_second_tick_of_the_slot_asks_for_the_same_runs() {
    let (_fakes, lambdas, deps) = setup(all_targets());
    handle(&deps, event_json(TICK)).await.unwrap();
    // Until a run is recorded, every tick of its slot asks for it again: the function
    // resumes it (or leaves it to the invocation holding its lease); the execution of a
    // large one is the same execution.
    let again = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(again.started.len(), 3);
    let queued = lambdas.queued();
    assert_eq!(queued.len(), 4);
    let mut first: Vec<String> = queued[..2].iter().map(|(f, p)| format!("{f} {p}")).collect();
    let mut second: Vec<String> = queued[2..].iter().map(|(f, p)| format!("{f} {p}")).collect();
    first.sort();
    second.sort();
    assert_eq!(first, second);
    assert_eq!(lambdas.executions().len(), 1);
}

#[tokio::test]
async fn a_data_set_whose_target_is_not_configured_is_reported_and_the_others_start() {
    let (_fakes, lambdas, deps) = setup(RunTargets {
        backup_config_function: None,
        ..all_targets()
    });
    let report = handle(&deps, event_json(TICK)).await.unwrap();
    assert_eq!(report.started.len(), 2);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].code, "not-configured");
    assert!(
        report.failed[0].message.contains("BACKUP_CONFIG_FUNCTION"),
        "{:?}",
        report.failed
    );
    assert_eq!(lambdas.queued().len(), 1);
}

#[tokio::test]
async fn a_throttled_start_makes_the_tick_retryable() {
    let (_fakes, lambdas, deps) = setup(all_targets());
    lambdas.fail_next(PortError::Throttled("Rate exceeded".into()));
    let err = handle(&deps, event_json(TICK)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable, "{err}");
}
