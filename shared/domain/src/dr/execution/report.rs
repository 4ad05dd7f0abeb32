//! What an execution measured (RTO, RPO, the failback's data-loss window and outage) and
//! its report.

use super::{Action, DrExecution, DrPlan, Duration, FailbackWindow, Measurement, Mode, Source};

impl DrExecution {
    /// RTO and RPO against `plan`'s targets (unknown parts stay `None`).
    pub fn measure(&self, plan: &DrPlan) -> Measurement {
        let secs = |d: chrono::Duration| u64::try_from(d.num_seconds()).unwrap_or(0);
        let rto = self.validated_at.map(|v| secs(v - self.triggered_at));
        let oldest = self
            .databases
            .iter()
            .map(|d| d.source.as_ref().and_then(Source::data_as_of))
            .chain(self.data.iter().map(|d| d.run_at))
            .chain(self.tables.iter().map(|t| t.backup_at))
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().min());
        let rpo = oldest.map(|t| secs(self.reference_time - t));
        let target = |d: Duration| d.as_secs();
        Measurement {
            rto_secs: rto,
            rto_target_secs: target(plan.rto),
            rto_met: rto.map(|r| r <= target(plan.rto)),
            rpo_secs: rpo,
            rpo_target_secs: target(plan.rpo),
            rpo_met: rpo.map(|r| r <= target(plan.rpo)),
        }
    }

    /// A failback's data loss window and outage, as far as known (`None` for other modes).
    pub fn failback_window(&self) -> Option<FailbackWindow> {
        if self.mode != Mode::Failback {
            return None;
        }
        let secs = |d: chrono::Duration| u64::try_from(d.num_seconds()).unwrap_or(0);
        let snapshot_at = self
            .databases
            .iter()
            .map(|d| match &d.source {
                Some(Source::DrSide { taken_at, .. }) => *taken_at,
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().min());
        let endpoints_back_at = self
            .steps
            .iter()
            .find(|s| s.action == Action::Switch && !s.outcome.starts_with("failed"))
            .and_then(|s| s.ended_at);
        // Without a quiesce, the DR side took writes until the endpoints moved.
        let stopped = self.writes_stopped_at.or(endpoints_back_at);
        let data_loss_window_secs = match (stopped, snapshot_at) {
            (Some(stopped), Some(snapshot)) => Some(secs(stopped - snapshot)),
            _ => None,
        };
        let outage_secs = match (self.quiesced_at, endpoints_back_at) {
            (Some(q), Some(back)) => Some(secs(back - q)),
            (None, Some(_)) => Some(0),
            (_, None) => None,
        };
        Some(FailbackWindow {
            quiesced_at: self.quiesced_at,
            writes_stopped_at: self.writes_stopped_at,
            snapshot_at,
            endpoints_back_at,
            data_loss_window_secs,
            outage_secs,
        })
    }

    /// The JSON report written to S3 at the end of every execution.
    pub fn report(&self) -> serde_json::Value {
        let steps: Vec<_> = self
            .steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "step": s.action,
                    "started_at": s.started_at,
                    "ended_at": s.ended_at,
                    "elapsed_ms": s.ended_at.map(|e| (e - s.started_at).num_milliseconds()),
                    "busy_ms": s.busy_ms,
                    "runs": s.runs,
                    "outcome": s.outcome,
                })
            })
            .collect();
        let databases: Vec<_> = self
            .databases
            .iter()
            .map(|d| {
                serde_json::json!({
                    "database": d.db.id,
                    "kind": d.db.kind,
                    "step": d.db.step,
                    "source": d.source,
                    "reason": d.reason,
                    "recovered_as": d.target_id,
                    "region": d.target_region,
                    "endpoint": d.endpoint,
                    "writer": d.writer,
                    "pre_failover_snapshot": d.pre_failover_snapshot,
                    "ready_at": d.ready_at,
                })
            })
            .collect();
        let compensations: Vec<_> = self
            .compensations
            .iter()
            .map(|c| serde_json::json!({"step": c.step, "undo": c.undo.describe(), "done": c.done}))
            .collect();
        serde_json::json!({
            "plan": self.plan,
            "execution": self.execution,
            "mode": self.mode,
            "status": self.status,
            "confirmed_by": self.principal,
            "approved_by": self.approved_by,
            "refusal": self.refusal,
            "triggered_at": self.triggered_at,
            "reference_time": self.reference_time,
            "validated_at": self.validated_at,
            "switched_at": self.switched_at,
            "switched": self.switched,
            "finished_at": self.finished_at,
            "needs_operator": self.needs_operator,
            "measurement": self.measurement,
            "failback": self.failback_window(),
            "steps": steps,
            "databases": databases,
            "data": self.data,
            "tables": self.tables,
            "checks": self.checks,
            "compensations": compensations,
            "final_snapshots": self.final_snapshots,
            "error": self.error,
        })
    }
}
