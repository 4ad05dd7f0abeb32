//! The DR state machine definition, checked structurally (what `make test` validates
//! besides cfn-lint): every transition names an existing state, every state is reachable,
//! only the state types and service integrations that run the same on AWS and on the
//! emulator are used, Retry/Catch match Lifeboat's own error types, every Lambda task
//! names a known action of run-dr-step, and every Wait loops back to a poll.

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_domain::dr::Action;
use serde_json::Value;

const STATE_TYPES: [&str; 6] = ["Task", "Choice", "Wait", "Succeed", "Fail", "Map"];
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
/// Failures of the Lambda service or of the task itself, not of the step: retried with
/// backoff, never compensated at once.
const TRANSIENT: [&str; 5] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "States.Timeout",
];

fn definition() -> Value {
    let path = lifeboat_testkit::repo_root().join("infra/state-machines/dr.asl.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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

#[test]
fn the_dr_state_machine_is_well_formed() {
    let asl = definition();
    let states: BTreeMap<String, Value> = serde_json::from_value(asl["States"].clone()).unwrap();
    let start = asl["StartAt"].as_str().unwrap();
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
                    ERRORS.contains(&e.as_str().unwrap()) || TRANSIENT.contains(&e.as_str().unwrap()),
                    "{name}: matches {e}, not a Lifeboat errorType"
                );
            }
        }
        if kind == "Task" {
            let resource = state["Resource"].as_str().unwrap();
            assert!(RESOURCES.contains(&resource), "{name}: resource {resource}");
            if resource.ends_with("lambda:invoke") {
                let action = state["Parameters"]["Payload"]["action"].as_str().unwrap();
                assert!(Action::parse(action).is_some(), "{name}: unknown action {action}");
                assert_eq!(state["Parameters"]["FunctionName"], "${RunDrStepFunctionArn}");
                let catches = state["Catch"].as_array().map_or(0, Vec::len);
                assert!(
                    catches > 0 || action == "compensate" || action == "needs-operator",
                    "{name}: a failure must lead to compensation"
                );
                for e in TRANSIENT {
                    let retried = state["Retry"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| r["ErrorEquals"].as_array().unwrap().iter().any(|x| x == e));
                    assert!(retried, "{name}: {e} is retried, not compensated");
                }
                assert!(
                    state["TimeoutSeconds"].as_u64().is_some_and(|t| t > 120),
                    "{name}: a task timeout (longer than the function's) turns a hung invocation into States.Timeout"
                );
                let retries_retryable = state["Retry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["ErrorEquals"].as_array().unwrap().iter().any(|e| e == "Retryable"));
                assert!(retries_retryable, "{name}: Retryable errors are retried");
            }
        }
        if kind == "Wait" {
            assert!(state["SecondsPath"].is_string() || state["Seconds"].is_u64(), "{name}");
            let next = &states[state["Next"].as_str().unwrap()];
            assert_eq!(next["Type"], "Task", "{name}: a Wait leads to a poll");
        }
    }
    // Every state is reachable from StartAt.
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
    // Every step of run-dr-step is used.
    let used: BTreeSet<&str> = states
        .values()
        .filter_map(|s| s["Parameters"]["Payload"]["action"].as_str())
        .collect();
    for a in Action::ALL {
        assert!(used.contains(a.as_str()), "action {a} is never run");
    }
}

/// Once the endpoints may have been switched (the switch step, the failback's teardown
/// and the finish), a failure goes to the needs-operator step, never straight to
/// compensation; both end in a distinct failure for an execution left to an operator.
#[test]
fn failures_after_the_switch_go_to_an_operator_not_to_compensation() {
    let asl = definition();
    let states = &asl["States"];
    for name in ["Switch", "Teardown", "Finish"] {
        let state = &states[name];
        let catches = state["Catch"].as_array().unwrap();
        assert!(!catches.is_empty(), "{name}");
        for c in catches {
            let next = &states[c["Next"].as_str().unwrap()];
            assert_eq!(
                next["Parameters"]["Payload"]["action"], "needs-operator",
                "{name}: a failure after the switch began must not compensate by deleting"
            );
        }
    }
    // Both the compensation and the operator hand-off end in a choice between the two
    // failures, on the status the step reports.
    for from in ["Compensate", "NeedsOperator"] {
        let next = states[from]["Next"].as_str().unwrap();
        let choice = &states[next];
        assert_eq!(choice["Type"], "Choice", "{from} → {next}");
        let to_operator = choice["Choices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["StringEquals"] == "needs-operator")
            .unwrap();
        let fail = &states[to_operator["Next"].as_str().unwrap()];
        assert_eq!(
            (fail["Type"].as_str(), fail["Error"].as_str()),
            (Some("Fail"), Some("NeedsOperator"))
        );
        let default = &states[choice["Default"].as_str().unwrap()];
        assert_eq!(
            (default["Type"].as_str(), default["Error"].as_str()),
            (Some("Fail"), Some("DrFailed"))
        );
    }
}

#[test]
fn the_template_points_at_this_definition() {
    let path = lifeboat_testkit::repo_root().join("template.yaml");
    let template = std::fs::read_to_string(path).unwrap();
    assert!(template.contains("DefinitionUri: infra/state-machines/dr.asl.json"));
    for substitution in ["RunDrStepFunctionArn", "AlertsTopicArn"] {
        assert!(template.contains(&format!("{substitution}: ")), "{substitution}");
    }
}

#[test]
fn the_sample_step_events_parse_as_documented() {
    use run_dr_step::StepRequest;
    let dir = lifeboat_testkit::repo_root().join("events/run-dr-step");
    let read = |f: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap() };
    let err = StepRequest::parse(&read("unknown-action.json")).unwrap_err();
    assert_eq!(err.kind, lifeboat::ErrorType::Invalid);
    let ok = StepRequest::parse(&read("precheck-unknown-plan.json")).unwrap();
    assert_eq!(ok.action, Action::Precheck);
    // The schedule's execution input is what every step receives as `request`.
    let input = read("scheduled-drill.json");
    let step = StepRequest::parse(&serde_json::json!({"action": "poll", "request": input})).unwrap();
    assert_eq!(step.mode, lifeboat_domain::dr::Mode::Drill);
}
