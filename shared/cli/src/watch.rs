//! Following a restore or a DR execution to its end, and `lifeboat status`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::args::Output;
use crate::client::Api;
use crate::{CliError, print, problem_text, render};

/// How long a followed execution may be not found before its first record appears.
const NOT_YET_RECORDED: Duration = Duration::from_mins(2);

/// Asks `path` again every few seconds until `done` says it ended, then prints the last
/// answer. On a terminal a spinner shows the state and the time taken; otherwise each change
/// of state is one line on stderr.
pub async fn follow(api: &Api, path: &str, output: Output, done: fn(&Value) -> Option<bool>) -> Result<(), CliError> {
    use std::io::IsTerminal as _;
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let mut last = String::new();
    let started = std::time::Instant::now();
    loop {
        let answer = api.call("GET", path, None).await?;
        // A DR execution is recorded by its pre-check, seconds after it starts: not found
        // yet is waited for, a while.
        if answer.status == 404 && last.is_empty() && started.elapsed() < NOT_YET_RECORDED {
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        if answer.status >= 400 {
            if let Some(bar) = &spinner {
                bar.abandon();
            }
            return Err(CliError::Api(answer.status, problem_text(&answer)));
        }
        let state = state_of(&answer.body);
        if state != last {
            match &spinner {
                Some(bar) => {
                    if !last.is_empty() {
                        bar.println(format!("… {last}"));
                    }
                    bar.set_message(state.clone());
                }
                None => eprintln!("… {state}"),
            }
            last = state;
        }
        if let Some(ok) = done(&answer.body) {
            if let Some(bar) = &spinner {
                bar.finish_with_message(last.clone());
            }
            print(&answer, output)?;
            return if ok {
                Ok(())
            } else {
                Err(CliError::Api(200, format!("ended {last}")))
            };
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// `lifeboat status`: compliance, open alerts, pending approvals and DR plans on one screen.
pub async fn status(api: &Api, output: Output) -> Result<(), CliError> {
    let mut parts = Vec::new();
    for path in [
        "/compliance",
        "/alerts",
        "/approvals?state=pending-approval",
        "/dr/plans",
    ] {
        let answer = api.call("GET", path, None).await?;
        if answer.status >= 400 {
            return Err(CliError::Api(answer.status, problem_text(&answer)));
        }
        parts.push(answer.body);
    }
    let [compliance, alerts, approvals, plans] =
        <[Value; 4]>::try_from(parts).map_err(|_| CliError::Usage("status: an answer is missing".into()))?;
    let summary = json!({
        "compliance": compliance["summary"],
        "alerts": alerts["items"].as_array().map_or(0, Vec::len),
        "pending_approvals": approvals["items"].as_array().cloned().unwrap_or_default()
            .iter()
            .map(|a| json!({"id": a["id"], "summary": a["summary"], "requested_by": a["requestedBy"], "expires_at": a["expiresAt"]}))
            .collect::<Vec<_>>(),
        "dr_plans": plans["items"].as_array().cloned().unwrap_or_default()
            .iter()
            .map(|p| json!({
                "name": p["name"],
                "valid": p["valid"],
                "active_side": p["active_side"],
                "last_execution": p["last_execution"]["status"],
                "last_drill": p["last_drill"]["finished_at"],
            }))
            .collect::<Vec<_>>(),
    });
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_else(|_| summary.to_string())
        ),
        Output::Table => {
            let c = &summary["compliance"];
            println!(
                "resources: {}  RPO met: {}  RPO breached: {}",
                render::cell(&c["resources"]),
                render::cell(&c["rpo_met"]),
                render::cell(&c["rpo_breached"])
            );
            println!("alerts (recent): {}", summary["alerts"]);
            println!(
                "pending approvals: {}",
                summary["pending_approvals"].as_array().map_or(0, Vec::len)
            );
            print!("{}", render::table(&json!({"items": summary["pending_approvals"]})));
            println!("DR plans:");
            print!("{}", render::table(&json!({"items": summary["dr_plans"]})));
        }
    }
    Ok(())
}

pub fn state_of(v: &Value) -> String {
    let v = v.get("restore").filter(|r| r.is_object()).unwrap_or(v);
    ["state", "status", "phase", "step"]
        .iter()
        .filter_map(|k| v.get(*k).map(render::cell))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// A restore has ended (or waits for a person): `Some(true)` restored or finished,
/// `Some(false)` failed, rolled back, or never confirmed.
pub fn restore_done(v: &Value) -> Option<bool> {
    let state = v.get("restore").and_then(|r| r.get("state")).or_else(|| v.get("state"));
    match state.and_then(Value::as_str)? {
        "restored" | "finished" => Some(true),
        "failed" | "rolled-back" | "rollback-failed" | "previewed" => Some(false),
        _ => None,
    }
}

/// A DR execution has ended: `Some(true)` succeeded, `Some(false)` failed or refused.
pub fn execution_done(v: &Value) -> Option<bool> {
    match v.get("status").and_then(Value::as_str)? {
        "succeeded" => Some(true),
        "failed" | "refused" | "needs-operator" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn following_ends_when_a_restore_or_an_execution_does() {
        assert_eq!(restore_done(&json!({"restore": {"state": "restoring"}})), None);
        assert_eq!(restore_done(&json!({"restore": {"state": "restored"}})), Some(true));
        assert_eq!(restore_done(&json!({"restore": {"state": "rolled-back"}})), Some(false));
        assert_eq!(state_of(&json!({"restore": {"state": "restoring"}})), "restoring");
        assert_eq!(execution_done(&json!({"status": "running"})), None);
        assert_eq!(execution_done(&json!({"status": "refused"})), Some(false));
        assert_eq!(execution_done(&json!({"status": "succeeded"})), Some(true));
    }
}
