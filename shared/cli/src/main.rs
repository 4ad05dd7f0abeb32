//! `lifeboat`: the operator's command line for Lifeboat's admin API.
//!
//! Each subcommand is one admin API route (see `lifeboat --help`); `policies check` and
//! `dr plans check` read a file offline with the same validation the functions apply.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use serde_json::{Value, json};

mod args;
mod client;
mod render;
mod roles;
mod stack;
mod watch;

use args::{Approvals, Backup, Cli, Command, Dr, Executions, Output, Plans, Points, Policies, Restore};
use client::{Answer, Api, Transport};
use watch::{execution_done, follow, restore_done, status};

/// Why the CLI stopped; each maps to an exit code a script can test.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API answered with an error: its status, and what it said.
    #[error("{1}")]
    Api(u16, String),
    /// A checked file has problems.
    #[error("{0}")]
    Problems(String),
    /// The command line or a file given to it is unusable.
    #[error("{0}")]
    Usage(String),
    /// The API could not be reached, or no credentials were found.
    #[error("{0}")]
    Unreachable(String),
}

impl CliError {
    fn code(&self) -> u8 {
        match self {
            Self::Api(401 | 403, _) => 4,
            Self::Api(404, _) => 5,
            Self::Api(409 | 412, _) => 6,
            Self::Api(..) => 1,
            Self::Usage(_) => 2,
            Self::Problems(_) => 3,
            Self::Unreachable(_) => 7,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            ExitCode::from(e.code())
        }
    }
}

/// What one subcommand asks of the API.
struct Call {
    method: &'static str,
    path: String,
    body: Option<Value>,
}

impl Call {
    fn get(path: impl Into<String>) -> Self {
        Self {
            method: "GET",
            path: path.into(),
            body: None,
        }
    }

    fn post(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: "POST",
            path: path.into(),
            body: Some(body),
        }
    }
}

/// The commands that need no admin API: `None` for the others.
async fn without_api(cli: &Cli) -> Option<Result<(), CliError>> {
    Some(match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "lifeboat", &mut std::io::stdout());
            Ok(())
        }
        Command::Policies(Policies::Check { file }) => check_policy(file, cli.output),
        Command::Dr(Dr::Plans(Plans::Check { file })) => check_plan(file, cli.output),
        Command::AdminRoles {
            admin,
            operator,
            viewer,
        } => roles::print(admin, operator, viewer, cli.region.as_deref()).await,
        _ => return None,
    })
}

async fn run(cli: Cli) -> Result<(), CliError> {
    // Offline commands first: they need no API (and, but for admin-roles, no credentials).
    if let Some(done) = without_api(&cli).await {
        return done;
    }
    // --api or LIFEBOAT_API_URL first; else the deployed stack's AdminApiUrl output.
    let explicit = cli.api.as_deref().map(client::base_url).transpose()?;
    let transport = Transport::load().await?;
    let base = match explicit {
        Some(base) => base,
        None => stack::api_url(&transport, &cli.stack, cli.region.as_deref()).await?,
    };
    let api = Api::connect(transport, &base, cli.region.clone())?;
    let output = cli.output;
    match cli.command {
        Command::Restore(Restore::Status { id, follow: true }) => {
            follow(&api, &format!("/restores/{}", enc(&id)), output, restore_done).await
        }
        Command::Dr(Dr::Executions(Executions::Show {
            plan,
            execution,
            follow: true,
        })) => {
            let path = format!("/dr/executions/{}/{}", enc(&plan), enc(&execution));
            follow(&api, &path, output, execution_done).await
        }
        Command::Status => status(&api, output).await,
        Command::Confirm { function, file } => {
            let request = json_of(&file, &read(&file)?)?;
            let answer = api
                .call(
                    "POST",
                    "/confirmations",
                    Some(&json!({"function": function, "request": request})),
                )
                .await?;
            if answer.status >= 400 {
                return Err(CliError::Api(answer.status, problem_text(&answer)));
            }
            match output {
                Output::Json => print(&answer, output),
                // The request to invoke the function with, alone on stdout.
                Output::Table => {
                    eprintln!(
                        "token valid until {}, single use: {}",
                        render::cell(&answer.body["expiresAt"]),
                        render::cell(&answer.body["next"])
                    );
                    println!("{}", answer.body["invoke"]);
                    Ok(())
                }
            }
        }
        Command::Policies(Policies::Put {
            name,
            file,
            if_match,
            token,
        }) => {
            let text = read(&file)?;
            // Checked here first: every problem at once, before anything is sent.
            if let Err(p) = lifeboat_domain::Policy::from_json(&text) {
                return Err(CliError::Problems(format!("{}: {p}", file.display())));
            }
            let body = json_of(&file, &text)?;
            let path = format!("/policies/{}", enc(&name));
            let mut headers = Vec::new();
            if let Some(tag) = &if_match {
                headers.push(("if-match", tag.as_str()));
            }
            if let Some(token) = &token {
                headers.push(("lifeboat-confirmation", token.as_str()));
            }
            let answer = api.call_with("PUT", &path, Some(&body), &headers).await?;
            print(&answer, output)
        }
        Command::Dr(Dr::Plans(Plans::Put { name, file, if_match })) => {
            let text = read(&file)?;
            if let Err(p) = lifeboat_domain::dr::plan::DrPlan::from_json(&text) {
                return Err(CliError::Problems(format!("{}: {p}", file.display())));
            }
            let body = json_of(&file, &text)?;
            let path = format!("/dr/plans/{}", enc(&name));
            let headers: Vec<(&str, &str)> = if_match.iter().map(|t| ("if-match", t.as_str())).collect();
            let answer = api.call_with("PUT", &path, Some(&body), &headers).await?;
            print(&answer, output)
        }
        command => {
            let call = route(command)?;
            let answer = api.call(call.method, &call.path, call.body.as_ref()).await?;
            print(&answer, output)
        }
    }
}

/// The route a subcommand calls.
fn route(command: Command) -> Result<Call, CliError> {
    Ok(match command {
        Command::Resources => Call::get("/resources"),
        Command::Points(Points::List { resource, status }) => {
            let mut q = Vec::new();
            if let Some(r) = resource {
                q.push(format!("resource={}", enc(&r)));
            }
            if let Some(s) = status {
                q.push(format!("status={}", enc(&s)));
            }
            Call::get(with_query("/recovery-points", &q))
        }
        Command::Points(Points::Show { id }) => Call::get(format!("/recovery-points/{id}")),
        Command::Backup(Backup::Now {
            resources,
            reason,
            emergency,
        }) => Call::post(
            "/backups",
            json!({"resources": resources, "reason": reason, "emergency": emergency}),
        ),
        Command::Restore(Restore::Preview {
            recovery_point,
            target,
            overwrite,
            subnet_group,
            allow_default_network,
        }) => {
            let mut body = json!({"recoveryPoint": recovery_point, "overwrite": overwrite});
            if let Some(t) = target {
                body["target"] = json!(t);
            }
            if let Some(g) = subnet_group {
                body["placement"]["subnetGroup"] = json!(g);
            }
            if allow_default_network {
                body["placement"]["allowDefaultNetwork"] = json!(true);
            }
            Call::post("/restores", body)
        }
        Command::Restore(Restore::Confirm { id, token }) => {
            Call::post(format!("/restores/{}/confirm", enc(&id)), json!({"token": token}))
        }
        Command::Restore(Restore::Status { id, .. }) => Call::get(format!("/restores/{}", enc(&id))),
        Command::Restore(Restore::Advance { id }) => Call::post(format!("/restores/{}/advance", enc(&id)), json!({})),
        Command::Restore(Restore::Finish { id }) => Call::post(format!("/restores/{}/finish", enc(&id)), json!({})),
        Command::Restore(Restore::Rollback { id }) => Call::post(format!("/restores/{}/rollback", enc(&id)), json!({})),
        Command::Dr(Dr::Plans(Plans::List)) => Call::get("/dr/plans"),
        Command::Dr(Dr::Plans(Plans::Show { name })) => Call::get(format!("/dr/plans/{}", enc(&name))),
        Command::Dr(Dr::Drill { plan }) => Call::post("/dr/executions", json!({"plan": plan, "mode": "drill"})),
        Command::Dr(Dr::Failover { plan, token }) => Call::post("/dr/executions", start("failover", &plan, token)),
        Command::Dr(Dr::Failback { plan, token }) => Call::post("/dr/executions", start("failback", &plan, token)),
        Command::Dr(Dr::Executions(Executions::List { plan })) => {
            Call::get(format!("/dr/executions?plan={}", enc(&plan)))
        }
        Command::Dr(Dr::Executions(Executions::Show { plan, execution, .. })) => {
            Call::get(format!("/dr/executions/{}/{}", enc(&plan), enc(&execution)))
        }
        Command::Dr(Dr::Executions(Executions::Report { plan, execution })) => {
            Call::get(format!("/dr/executions/{}/{}/report", enc(&plan), enc(&execution)))
        }
        Command::Policies(Policies::Get { name }) => Call::get(format!("/policies/{}", enc(&name))),
        Command::Policies(Policies::History { name }) => Call::get(format!("/policies/{}/versions", enc(&name))),
        Command::Approvals(Approvals::List { state }) => Call::get(match state {
            Some(s) => format!("/approvals?state={}", enc(&s)),
            None => "/approvals".to_owned(),
        }),
        Command::Approvals(Approvals::Show { id }) => Call::get(format!("/approvals/{}", enc(&id))),
        Command::Approvals(Approvals::Approve { id, reason }) => Call::post(
            format!("/approvals/{}/approve", enc(&id)),
            reason.map_or_else(|| json!({}), |r| json!({"reason": r})),
        ),
        Command::Approvals(Approvals::Deny { id, reason }) => {
            Call::post(format!("/approvals/{}/deny", enc(&id)), json!({"reason": reason}))
        }
        Command::Approvals(Approvals::Token { id }) => Call::post(format!("/approvals/{}/token", enc(&id)), json!({})),
        Command::Plan => Call::post("/plans", json!({})),
        Command::Compliance => Call::get("/compliance"),
        Command::Metrics => Call::get("/metrics"),
        Command::Alerts => Call::get("/alerts"),
        Command::Audit { limit } => Call::get(match limit {
            Some(n) => format!("/audit?limit={n}"),
            None => "/audit".to_owned(),
        }),
        Command::Completions { .. }
        | Command::Status
        | Command::AdminRoles { .. }
        | Command::Confirm { .. }
        | Command::Policies(Policies::Check { .. } | Policies::Put { .. })
        | Command::Dr(Dr::Plans(Plans::Check { .. } | Plans::Put { .. })) => {
            return Err(CliError::Usage("this command needs no API call".into()));
        }
    })
}

fn start(mode: &str, plan: &str, token: Option<String>) -> Value {
    let mut body = json!({"plan": plan, "mode": mode});
    if let Some(t) = token {
        body["token"] = json!(t);
    }
    body
}

fn with_query(path: &str, q: &[String]) -> String {
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// `s` percent-encoded for one path segment or query value (RFC 3986 unreserved kept).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn json_of(file: &std::path::Path, text: &str) -> Result<Value, CliError> {
    serde_json::from_str(text).map_err(|e| CliError::Usage(format!("{}: not JSON: {e}", file.display())))
}

fn read(file: &std::path::Path) -> Result<String, CliError> {
    std::fs::read_to_string(file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))
}

/// Prints a successful answer; an error answer becomes the [`CliError`] it means.
fn print(answer: &Answer, output: Output) -> Result<(), CliError> {
    if answer.status >= 400 {
        return Err(CliError::Api(answer.status, problem_text(answer)));
    }
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_else(|_| answer.body.to_string())
        ),
        Output::Table => print!("{}", render::table(&answer.body)),
    }
    Ok(())
}

/// An error answer in one readable paragraph: problem+json's title, detail and each field's
/// problem; API Gateway's own `{"message"}`; or the body as it came.
fn problem_text(answer: &Answer) -> String {
    let b = &answer.body;
    let mut text = match (b.get("title"), b.get("detail"), b.get("message")) {
        (Some(t), Some(d), _) => format!("{} ({}): {}", render::cell(t), answer.status, render::cell(d)),
        (Some(t), None, _) => format!("{} ({})", render::cell(t), answer.status),
        (None, _, Some(m)) => format!("{} ({})", render::cell(m), answer.status),
        _ => format!("the API answered {}: {}", answer.status, render::cell(b)),
    };
    match b.get("errors") {
        // problem+json's `errors: [{field, problem}]`
        Some(Value::Array(errors)) => {
            for e in errors {
                let field = e.get("field").map(render::cell).unwrap_or_default();
                let problem = e.get("problem").map_or_else(|| render::cell(e), render::cell);
                let _ = write!(text, "\n  {field}: {problem}");
            }
        }
        Some(Value::Object(errors)) => {
            for (field, problem) in errors {
                let _ = write!(text, "\n  {field}: {}", render::cell(problem));
            }
        }
        _ => {}
    }
    if let Some(Value::Array(problems)) = b.get("problems") {
        for p in problems {
            let _ = write!(text, "\n  {}", render::cell(p));
        }
    }
    text
}

fn check_policy(file: &std::path::Path, output: Output) -> Result<(), CliError> {
    let text = read(file)?;
    let result = lifeboat_domain::Policy::from_json(&text)
        .map(|p| p.name.to_string())
        .map_err(|p| p.problems);
    report_check(file, "policy", result, output)
}

fn check_plan(file: &std::path::Path, output: Output) -> Result<(), CliError> {
    let text = read(file)?;
    let result = lifeboat_domain::dr::plan::DrPlan::from_json(&text)
        .map(|p| p.name.clone())
        .map_err(|p| p.problems);
    report_check(file, "DR plan", result, output)
}

fn report_check(
    file: &std::path::Path,
    what: &str,
    result: Result<String, Vec<String>>,
    output: Output,
) -> Result<(), CliError> {
    let (name, problems) = match result {
        Ok(name) => (Some(name), Vec::new()),
        Err(problems) => (None, problems),
    };
    match output {
        Output::Json => println!(
            "{}",
            json!({"file": file.display().to_string(), "valid": problems.is_empty(), "name": name, "problems": problems})
        ),
        Output::Table if problems.is_empty() => {
            println!("{}: a valid {what} ({})", file.display(), name.unwrap_or_default());
        }
        Output::Table => {
            println!("{}: {} problem(s):", file.display(), problems.len());
            for p in &problems {
                println!("  - {p}");
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Problems(format!("{} is not a valid {what}", file.display())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a test failure

    use super::*;

    #[test]
    fn every_route_is_reachable_from_a_subcommand_and_ids_are_encoded() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["lifeboat"], args].concat()).unwrap();
            route(cli.command).unwrap()
        };
        let c = parse(&["points", "list", "--resource", "arn:aws:rds:us-east-1:1:db:orders"]);
        assert_eq!(
            c.path,
            "/recovery-points?resource=arn%3Aaws%3Ards%3Aus-east-1%3A1%3Adb%3Aorders"
        );
        let c = parse(&["points", "show", "us-east-1/db/lb-gold-orders-20261207-1200"]);
        assert_eq!(c.path, "/recovery-points/us-east-1/db/lb-gold-orders-20261207-1200");
        let c = parse(&["backup", "now", "arn:a", "arn:b", "--reason", "migration"]);
        assert_eq!((c.method, c.path.as_str()), ("POST", "/backups"));
        assert_eq!(c.body.unwrap()["resources"], json!(["arn:a", "arn:b"]));
        let c = parse(&["dr", "failover", "payments", "--token", "t0k"]);
        assert_eq!(
            c.body.unwrap(),
            json!({"plan": "payments", "mode": "failover", "token": "t0k"})
        );
        let c = parse(&["dr", "executions", "show", "payments", "exec 1"]);
        assert_eq!(c.path, "/dr/executions/payments/exec%201");
        let c = parse(&["dr", "plans", "show", "orders dr"]);
        assert_eq!(c.path, "/dr/plans/orders%20dr");
        let c = parse(&["approvals", "deny", "7c0e", "--reason", "not now"]);
        assert_eq!(
            (c.path.as_str(), c.body.unwrap()),
            ("/approvals/7c0e/deny", json!({"reason": "not now"}))
        );
        let c = parse(&["approvals", "list", "--state", "pending-approval"]);
        assert_eq!(c.path, "/approvals?state=pending-approval");
        let c = parse(&["approvals", "token", "7c0e"]);
        assert_eq!((c.method, c.path.as_str()), ("POST", "/approvals/7c0e/token"));
        let c = parse(&["restore", "preview", "us-east-1/db/x", "--overwrite"]);
        assert_eq!(
            c.body.unwrap(),
            json!({"recoveryPoint": "us-east-1/db/x", "overwrite": true})
        );
    }

    #[test]
    fn exit_codes_tell_refusals_from_missing_things_and_conflicts() {
        let codes: Vec<u8> = [403, 404, 409, 412, 400, 500]
            .into_iter()
            .map(|s| CliError::Api(s, String::new()).code())
            .collect();
        assert_eq!(codes, [4, 5, 6, 6, 1, 1]);
        assert_eq!(CliError::Problems(String::new()).code(), 3);
        assert_eq!(CliError::Unreachable(String::new()).code(), 7);
    }

    #[test]
    fn a_problem_answer_lists_every_field() {
        let answer = Answer {
            status: 400,
            body: json!({"title": "Invalid policy", "detail": "2 problems", "errors": [
                {"field": "rpo", "problem": "too short"},
                {"field": "retain", "problem": "0"},
            ]}),
        };
        let text = problem_text(&answer);
        assert!(text.starts_with("Invalid policy (400): 2 problems"), "{text}");
        assert!(
            text.contains("\n  rpo: too short") && text.contains("\n  retain: 0"),
            "{text}"
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
