//! Executions the pre-check refused: recorded like any other, with every reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Action, DrExecution, DrPlan, ExecStatus, Mode};

/// Why an execution was refused before any change: the kind of refusal (the step's
/// `errorType`: `Invalid` for a request or token that is not valid, `Conflict` for a busy
/// plan or a mode its site does not allow, `Misconfigured` for failed pre-checks) and
/// every reason, one line each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub kind: String,
    pub reasons: Vec<String>,
}

impl DrExecution {
    /// The record of an execution its pre-check refused at `now`: nothing was changed;
    /// `checks` passed, `refusal` says what did not.
    #[must_use]
    pub fn refused(
        plan: &DrPlan,
        execution: &str,
        mode: Mode,
        now: DateTime<Utc>,
        checks: Vec<String>,
        refusal: Refusal,
    ) -> Self {
        let mut exec = Self::new(plan, execution, mode, now, now);
        exec.begin(Action::Precheck, now);
        exec.end(
            Action::Precheck,
            now,
            now,
            format!("refused: {}", refusal.reasons.join("; ")),
        );
        exec.status = ExecStatus::Refused;
        exec.finished_at = Some(now);
        exec.checks = checks;
        exec.error = Some(format!("{}: {}", refusal.kind, refusal.reasons.join("; ")));
        exec.refusal = Some(refusal);
        exec
    }
}
