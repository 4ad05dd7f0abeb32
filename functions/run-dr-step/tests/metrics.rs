//! The EMF lines DR steps emit: failures, compensations and a drill's measured RTO/RPO.

use chrono::{DateTime, Utc};
use lifeboat::metrics::{MemorySink, Metric, Metrics, validate_emf};
use lifeboat::{ErrorType, FunctionError};
use run_dr_step::{StepRequest, record_metrics};
use serde_json::{Value, json};

fn at() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

fn request(action: &str, mode: &str) -> StepRequest {
    super::common::request(action, json!({"plan": "orders", "execution": "drill-1", "mode": mode}))
}

fn emitted(req: &StepRequest, result: &Result<Value, FunctionError>) -> MemorySink {
    let sink = MemorySink::new();
    let mut m = Metrics::new("run-dr-step", "run-1", at());
    record_metrics(req, result, &mut m);
    m.flush(&sink);
    assert!(sink.lines().iter().all(|l| validate_emf(l).is_empty()));
    sink
}

fn finished(rto: u64, rto_target: u64, rpo: u64, rpo_target: u64) -> Value {
    json!({
        "ready": true,
        "measurement": {
            "rto_secs": rto, "rto_target_secs": rto_target, "rto_met": rto <= rto_target,
            "rpo_secs": rpo, "rpo_target_secs": rpo_target, "rpo_met": rpo <= rpo_target,
        }
    })
}

#[test]
fn a_drill_finish_records_its_rto_and_rpo_against_targets() {
    let sink = emitted(&request("finish", "drill"), &Ok(finished(95, 1800, 1200, 900)));
    assert_eq!(sink.total(Metric::DrillRto), Some(95));
    assert_eq!(sink.total(Metric::DrillRpo), Some(1200));
    assert_eq!(sink.total(Metric::DrillRtoOverTarget), Some(0));
    assert_eq!(sink.total(Metric::DrillRpoOverTarget), Some(1));
}

#[test]
fn a_replayed_finish_and_a_failover_record_no_drill() {
    let mut replay = finished(95, 1800, 60, 900);
    replay["replayed"] = json!(true);
    assert!(emitted(&request("finish", "drill"), &Ok(replay)).lines().is_empty());
    let failover = emitted(&request("finish", "failover"), &Ok(finished(95, 1800, 60, 900)));
    assert_eq!(failover.total(Metric::DrillRto), None);
}

#[test]
fn failures_count_and_refusals_do_not() {
    let failed = emitted(
        &request("restore", "drill"),
        &Err(FunctionError::new(ErrorType::Internal, "rds: InternalFailure")),
    );
    assert_eq!(failed.total(Metric::DrStepFailures), Some(1));
    for kind in [ErrorType::Invalid, ErrorType::Conflict] {
        let refused = emitted(&request("precheck", "drill"), &Err(FunctionError::new(kind, "refused")));
        assert!(refused.lines().is_empty(), "{kind:?}");
    }
    let invalid_restore = emitted(
        &request("validate", "drill"),
        &Err(FunctionError::new(
            ErrorType::Conflict,
            "validation failed: engine mysql",
        )),
    );
    assert_eq!(invalid_restore.total(Metric::DrStepFailures), Some(1));
    let compensated = emitted(&request("compensate", "drill"), &Ok(json!({"undone": 2})));
    assert_eq!(compensated.total(Metric::DrCompensations), Some(1));
}
