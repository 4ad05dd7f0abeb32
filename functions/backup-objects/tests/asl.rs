//! The sharded S3 backup state machine definition, checked structurally like the DR one
//! (what `make test` validates besides cfn-lint): every transition names a state of its
//! own level, every state is reachable, only the state types and integrations that run
//! the same on AWS and on the emulator are used, Retry/Catch match Lifeboat's own error
//! types, every Lambda task invokes backup-objects with a mode it accepts and retries
//! `Retryable`, failures end in the alert, and the shard loop invokes again on
//! `in_progress`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

const STATE_TYPES: [&str; 7] = ["Task", "Choice", "Wait", "Succeed", "Fail", "Map", "Parallel"];
const RESOURCES: [&str; 2] = ["arn:aws:states:::lambda:invoke", "arn:aws:states:::sns:publish"];
const ERRORS: [&str; 7] = [
    "Invalid",
    "NotFound",
    "Conflict",
    "Retryable",
    "Misconfigured",
    "Internal",
    "States.ALL",
];

fn root() -> PathBuf {
    lifeboat_testkit::repo_root()
}

fn definition() -> Value {
    let raw = std::fs::read_to_string(root().join("infra/state-machines/backup-objects.asl.json")).unwrap();
    serde_json::from_str(&raw).unwrap()
}

fn targets(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(t) = state[key].as_str() {
            out.push(t.to_owned());
        }
    }
    for list in ["Choices", "Catch"] {
        for c in state[list].as_array().into_iter().flatten() {
            out.push(c["Next"].as_str().unwrap().to_owned());
        }
    }
    out
}

/// Checks one level (the machine, or a Map's processor) and returns its Lambda tasks'
/// modes.
fn check_level(level: &Value, modes: &mut Vec<String>) {
    let states: BTreeMap<String, Value> = serde_json::from_value(level["States"].clone()).unwrap();
    let start = level["StartAt"].as_str().unwrap();
    assert!(states.contains_key(start));
    for (name, state) in &states {
        let kind = state["Type"].as_str().unwrap();
        assert!(STATE_TYPES.contains(&kind), "{name}: state type {kind}");
        for t in targets(state) {
            assert!(states.contains_key(&t), "{name} → {t}: no such state");
        }
        let terminal = matches!(kind, "Succeed" | "Fail") || state["End"] == true;
        assert!(terminal || !targets(state).is_empty(), "{name}: goes nowhere");
        for rule in state["Retry"]
            .as_array()
            .into_iter()
            .chain(state["Catch"].as_array())
            .flatten()
        {
            for e in rule["ErrorEquals"].as_array().unwrap() {
                assert!(
                    ERRORS.contains(&e.as_str().unwrap()),
                    "{name}: matches {e}, not a Lifeboat errorType"
                );
            }
        }
        if kind == "Task" {
            let resource = state["Resource"].as_str().unwrap();
            assert!(RESOURCES.contains(&resource), "{name}: resource {resource}");
            if resource.ends_with("lambda:invoke") {
                assert_eq!(state["Parameters"]["FunctionName"], "${BackupObjectsFunctionArn}");
                let payload = &state["Parameters"]["Payload"];
                modes.push(payload["mode"].as_str().unwrap().to_owned());
                for field in ["bucket.$", "prefix.$", "policy.$", "scheduledTime.$"] {
                    assert!(payload[field].is_string(), "{name}: payload lacks {field}");
                }
                let retries_retryable = state["Retry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["ErrorEquals"].as_array().unwrap().iter().any(|e| e == "Retryable"));
                assert!(retries_retryable, "{name}: Retryable errors are retried");
            } else {
                assert_eq!(state["Parameters"]["TopicArn"], "${AlertsTopicArn}");
            }
        }
        if kind == "Map" {
            assert!(state["ItemsPath"].is_string(), "{name}: inline Map over a list");
            assert!(state.get("ItemReader").is_none(), "{name}: inline Map");
            assert!(state["MaxConcurrency"].as_u64().is_some_and(|c| c > 1), "{name}");
            check_level(&state["ItemProcessor"], modes);
        }
    }
    let mut seen = BTreeSet::from([start.to_owned()]);
    let mut todo = vec![start.to_owned()];
    while let Some(s) = todo.pop() {
        for t in targets(&states[&s]) {
            if seen.insert(t.clone()) {
                todo.push(t);
            }
        }
    }
    let unreachable: Vec<_> = states.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(unreachable.is_empty(), "unreachable: {unreachable:?}");
}

#[test]
fn the_backup_state_machine_is_well_formed() {
    let asl = definition();
    let mut modes = Vec::new();
    check_level(&asl, &mut modes);
    modes.sort();
    assert_eq!(modes, ["finish", "shard", "shards"]);
    let states = &asl["States"];
    // Every step outside the Map's loop that can fail is caught into the alert.
    for name in ["Split", "BackUpShards", "Finish"] {
        let catch = states[name]["Catch"].as_array().unwrap();
        assert!(
            catch
                .iter()
                .any(|c| c["ErrorEquals"][0] == "States.ALL" && c["Next"] == "Alert"),
            "{name}"
        );
    }
    assert_eq!(states["Alert"]["Next"], "Failed");
    // The shard loop: invoked again while in_progress.
    let inner = &states["BackUpShards"]["ItemProcessor"]["States"];
    let choice = &inner["ShardDone"]["Choices"][0];
    assert_eq!(choice["StringEquals"], "in_progress");
    assert_eq!(choice["Next"], "BackUpShard");
    assert_eq!(
        serde_json::to_value(backup_objects::RunStatus::InProgress).unwrap(),
        "in_progress"
    );
}

#[test]
fn the_state_machine_payloads_parse_as_requests() {
    // What the ASL sends, with the execution input substituted.
    let shard = serde_json::json!({"index": 0, "from": "", "to": null});
    for payload in [
        serde_json::json!({"mode": "shards", "bucket": "photos", "prefix": "", "policy": "gold", "scheduledTime": "2026-11-23T18:00:00Z"}),
        serde_json::json!({"mode": "shard", "bucket": "photos", "prefix": "", "policy": "gold", "scheduledTime": "2026-11-23T18:00:00Z", "shard": shard}),
        serde_json::json!({"mode": "finish", "bucket": "photos", "prefix": "", "policy": "gold", "scheduledTime": "2026-11-23T18:00:00Z", "shards": [shard]}),
    ] {
        assert!(
            matches!(
                backup_objects::Request::parse(&payload),
                Ok(backup_objects::Request::Sharded(_))
            ),
            "{payload}"
        );
    }
}

#[test]
fn the_template_points_at_this_definition() {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    assert!(template.contains("DefinitionUri: infra/state-machines/backup-objects.asl.json"));
    assert!(template.contains("BackupObjectsFunctionArn: !GetAtt BackupObjectsFunction.Arn"));
}
