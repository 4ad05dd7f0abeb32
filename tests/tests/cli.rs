//! The `lifeboat` CLI binary against the admin API served over HTTP by the local stack:
//! SigV4-signed by the local principals, verified by the stack's gateway, answered by the
//! real `admin-api` binary. Offline checks need no stack.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::PathBuf;
use std::process::Output;

use lifeboat_tests::{TestEnv, moto_port};
use serde_json::Value;

use lifeboat_tests::cli::{api_url, command, json, text};

/// `lifeboat <args>` signed as the local principal with access key `key`.
fn lifeboat(key: &str, secret: &str, args: &[&str]) -> Output {
    lifeboat_tests::cli::lifeboat((key, secret), args)
}

/// `lifeboat <args>` as the viewer without an API URL, CloudFormation's endpoint being
/// `cloudformation`: the URL is the deployed stack's AdminApiUrl output.
fn viewer_by_stack(cloudformation: &str, args: &[&str]) -> Output {
    command(lifeboat_tests::cli::VIEWER, args)
        .env("AWS_ENDPOINT_URL", cloudformation)
        .output()
        .unwrap()
}

fn viewer(args: &[&str]) -> Output {
    lifeboat("LBLOCALVIEWER", "lifeboat-local-viewer", args)
}

fn operator(args: &[&str]) -> Output {
    lifeboat("LBLOCALOPERATOR", "lifeboat-local-operator", args)
}

fn admin(args: &[&str]) -> Output {
    lifeboat("LBLOCALADMIN", "lifeboat-local-admin", args)
}

fn file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lifeboat-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn a_policy_or_plan_file_is_checked_offline_with_every_problem_listed() {
    let good = file(
        "gold.json",
        r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 24}"#,
    );
    let out = viewer(&["policies", "check", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("a valid policy (gold)"));

    let bad = file(
        "bad.json",
        r#"{"name": "Bad Name!", "every": "soon", "rpo": "2h", "retain": 0}"#,
    );
    let out = viewer(&["--output", "json", "policies", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert!(report["problems"].as_array().unwrap().len() >= 2, "{report}");

    let plan = file("plan.json", r#"{"name": "payments"}"#);
    let out = viewer(&["dr", "plans", "check", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("problem(s):"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn the_cli_reads_and_writes_through_the_http_api_as_each_principal() {
    let env = TestEnv::local_deployment().await.unwrap();
    let name = env.name("cli");

    // Roles hold: an operator cannot store a policy (4: refused), an admin can.
    let doc = format!(r#"{{"name": "{name}", "every": "1day", "rpo": "26h", "retain": 3}}"#);
    let policy = file("policy.json", &doc);
    let out = operator(&["policies", "put", &name, policy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stored = json(&admin(&[
        "--output",
        "json",
        "policies",
        "put",
        &name,
        policy.to_str().unwrap(),
    ]));
    assert!(stored.to_string().contains(&name), "{stored}");
    let got = json(&viewer(&["--output", "json", "policies", "get", &name]));
    assert_eq!(got["document"]["retention"]["last"], 3, "{got}");
    // A change over the tag just read applies; one over a stale tag is refused (6) and the
    // replaced version is kept in the policy's history.
    let tag = got["etag"].as_str().unwrap().to_owned();
    let longer = file(
        "policy.json",
        &format!(r#"{{"name": "{name}", "every": "1day", "rpo": "26h", "retain": 5}}"#),
    );
    let changed = json(&admin(&[
        "--output",
        "json",
        "policies",
        "put",
        &name,
        longer.to_str().unwrap(),
        "--if-match",
        &tag,
    ]));
    assert_ne!(changed["etag"], tag.as_str(), "{changed}");
    let out = admin(&["policies", "put", &name, policy.to_str().unwrap(), "--if-match", &tag]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let history = json(&viewer(&["--output", "json", "policies", "history", &name]));
    let versions = history["items"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "{history}");
    assert_eq!(versions[0]["etag"], tag.as_str());
    assert!(
        versions[0]["replaced_by"]
            .as_str()
            .unwrap()
            .contains("LifeboatAdmin/admin"),
        "{history}"
    );

    // A database under that policy, backed up by the real create-snapshots path, is listed.
    let db = env.name("clidb");
    let arn = env.create_instance(&db, &name).await.unwrap();
    let report = create_snapshots::handle(
        &create_snapshots::Deps {
            ports: env.ports(),
            config: env.config(""),
            runs: create_snapshots::DataRuns::default(),
        },
        lifeboat_tests::tick_event(&chrono::Utc::now().to_rfc3339(), &format!("{name}-create")),
    )
    .await
    .unwrap();
    assert!(
        report.created.iter().any(|id| id.to_string().contains(&db)),
        "{report:?}"
    );
    let points = json(&viewer(&["--output", "json", "points", "list", "--resource", &arn]));
    let items = points["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{points}");
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let table = viewer(&["points", "list", "--resource", &arn]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table));
    let shown = String::from_utf8_lossy(&table.stdout);
    assert!(
        shown.lines().any(|l| l.starts_with("ID")) && shown.contains(&id),
        "{shown}"
    );
    let one = json(&viewer(&["--output", "json", "points", "show", &id]));
    assert_eq!(one["id"], id.as_str(), "{one}");

    // A DR plan stored through the API, read back with its tag; a write over a stale read
    // is refused (6: conflict) and changes nothing.
    let plan_name = format!("{name}-dr");
    let plan = |rto: &str| {
        format!(
            r#"{{"name": "{plan_name}", "source_region": "us-east-1", "dr_region": "us-west-2",
                "databases": [{{"arn": "{arn}"}}], "rto": "{rto}", "rpo": "15m",
                "network": {{"allow_default_network": true}}}}"#
        )
    };
    let first = file("plan.json", &plan("30m"));
    let stored = json(&admin(&[
        "--output",
        "json",
        "dr",
        "plans",
        "put",
        &plan_name,
        first.to_str().unwrap(),
    ]));
    let tag = stored["etag"].as_str().unwrap().to_owned();
    let shown = json(&viewer(&["--output", "json", "dr", "plans", "show", &plan_name]));
    assert_eq!(
        (shown["etag"].as_str(), shown["valid"].as_bool()),
        (Some(tag.as_str()), Some(true))
    );
    let second = file("plan.json", &plan("20m"));
    let changed = json(&admin(&[
        "--output",
        "json",
        "dr",
        "plans",
        "put",
        &plan_name,
        second.to_str().unwrap(),
        "--if-match",
        &tag,
    ]));
    assert_ne!(changed["etag"], tag.as_str());
    let third = file("plan.json", &plan("45m"));
    let out = admin(&[
        "dr",
        "plans",
        "put",
        &plan_name,
        third.to_str().unwrap(),
        "--if-match",
        &tag,
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Precondition failed"),
        "{}",
        text(&out)
    );
    let now = json(&viewer(&["--output", "json", "dr", "plans", "show", &plan_name]));
    assert_eq!(now["etag"], changed["etag"], "the stale write changed nothing");

    // A failover's preview runs the pre-check (run-dr-step, read only) before any token:
    // the database has no verified copy in the DR region, so it is refused (6), the reason
    // named, and nothing is recorded or started.
    let out = admin(&["dr", "failover", &plan_name]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("The pre-check refuses this failover")
            && said.contains("no verified recovery point in us-west-2"),
        "{}",
        text(&out)
    );
    let executions = json(&viewer(&["--output", "json", "dr", "executions", "list", &plan_name]));
    assert_eq!(executions["total"], 0, "{executions}");

    // Missing things and strangers get their own exit codes.
    let out = viewer(&["points", "show", "us-east-1/db/lb-no-such-point"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let out = lifeboat("LBLOCALNOBODY", "nothing", &["resources"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("security token"),
        "{}",
        text(&out)
    );
    let out = lifeboat("LBLOCALVIEWER", "not-the-secret", &["resources"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));

    // A viewer may not take a backup; what the audit trail shows is the admin's to read.
    let out = viewer(&["backup", "now", &arn, "--reason", "cli test"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let audit = json(&admin(&["--output", "json", "audit", "--limit", "50"]));
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.to_string().contains("LifeboatAdmin/admin") && r.to_string().contains("/policies/")),
        "{audit}"
    );
}

/// Without --api or LIFEBOAT_API_URL the CLI reads the URL from `make up`'s CloudFormation
/// stack (output AdminApiUrl of stack `lifeboat`, DescribeStacks signed with the same
/// credentials through AWS_ENDPOINT_URL); a stack that does not exist or an endpoint that
/// does not answer is a clear error; an explicit URL still comes first.
#[tokio::test]
async fn without_an_api_url_the_cli_reads_it_from_the_deployed_stack() {
    lifeboat_tests::ensure_stack().await.unwrap();
    let moto = format!("http://127.0.0.1:{}", moto_port());

    let listed = json(&viewer_by_stack(&moto, &["--output", "json", "resources"]));
    assert!(listed["items"].is_array(), "{listed}");

    let out = viewer_by_stack(&moto, &["--stack", "no-such-stack", "resources"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("\"no-such-stack\" in us-east-1")
            && said.contains(&moto)
            && said.contains("does not exist")
            && said.contains("--api")
            && said.contains("LIFEBOAT_API_URL"),
        "{}",
        text(&out)
    );

    // An explicit URL is used as it is: the stack is not asked.
    let url = api_url();
    let out = viewer_by_stack(&moto, &["--api", &url, "--stack", "no-such-stack", "resources"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Nothing listens there (7: unreachable), and the message says what was tried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = format!("http://{closed}");
    let out = viewer_by_stack(&nowhere, &["resources"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("\"lifeboat\"") && said.contains(&nowhere) && said.contains("--api"),
        "{}",
        text(&out)
    );
}

fn approver(args: &[&str]) -> Output {
    lifeboat("LBLOCALAPPROVER", "lifeboat-local-approver", args)
}

/// The tracker (the real function, through the local Lambda API) records the point
/// available once RDS has it.
async fn tracked(env: &TestEnv, point: &str) {
    use lifeboat_ports::Catalog as _;
    let id = lifeboat_domain::RecoveryPointId::parse(point).unwrap();
    let started = std::time::Instant::now();
    loop {
        let tick = serde_json::json!({"scheduledTime": chrono::Utc::now().to_rfc3339()}).to_string();
        let (error, out) = env.invoke("track-recovery-points", &tick).await.unwrap();
        assert_eq!(error, None, "{out}");
        let point = env.catalog().get(&id).await.unwrap();
        if point
            .as_ref()
            .is_some_and(lifeboat_domain::RecoveryPoint::is_restorable)
        {
            return;
        }
        assert!(started.elapsed() < lifeboat_tests::WAIT_LIMIT, "{point:?}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Two-person approval through the CLI binary and the HTTP API: a policy requiring approval,
/// an on-demand backup, an overwrite restore that waits in pending-approval, refused to the
/// requester's own approval, approved by the second principal, its token taken once by the
/// requester and the restore confirmed with it; both acts on the audit trail.
#[tokio::test]
async fn an_overwrite_restore_is_approved_by_a_second_principal_through_the_cli() {
    let env = TestEnv::local_deployment().await.unwrap();
    let name = env.name("appr");
    let doc = format!(
        r#"{{"name": "{name}", "every": "1day", "rpo": "26h", "retain": 3,
            "approval": {{"required": true, "approvers": ["arn:aws:sts::123456789012:assumed-role/LifeboatApprover/"]}}}}"#
    );
    let policy = file("policy.json", &doc);
    json(&admin(&[
        "--output",
        "json",
        "policies",
        "put",
        &name,
        policy.to_str().unwrap(),
    ]));
    let db = env.name("apprdb");
    let arn = env.create_instance(&db, &name).await.unwrap();
    let taken = json(&operator(&[
        "--output",
        "json",
        "backup",
        "now",
        &arn,
        "--reason",
        "before the overwrite",
    ]));
    assert!(taken.to_string().contains(&db), "{taken}");
    let points = json(&viewer(&["--output", "json", "points", "list", "--resource", &arn]));
    let point = points["items"][0]["id"].as_str().unwrap().to_owned();
    tracked(&env, &point).await;

    let preview = json(&admin(&[
        "--output",
        "json",
        "restore",
        "preview",
        &point,
        "--target",
        &db,
        "--overwrite",
        "--allow-default-network",
    ]));
    assert!(preview.get("confirmationToken").is_none(), "{preview}");
    assert_eq!(preview["approval"]["state"], "pending-approval", "{preview}");
    let id = preview["approval"]["id"].as_str().unwrap().to_owned();
    let restore = preview["restore"]["id"].as_str().unwrap().to_owned();

    let pending = json(&approver(&[
        "--output",
        "json",
        "approvals",
        "list",
        "--state",
        "pending-approval",
    ]));
    assert!(pending.to_string().contains(&id), "{pending}");
    // The requester cannot approve its own request (4: refused), nor take a token yet (6).
    let out = admin(&["approvals", "approve", &id]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("second person"),
        "{}",
        text(&out)
    );
    let out = admin(&["approvals", "token", &id]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));

    let decision = json(&approver(&[
        "--output",
        "json",
        "approvals",
        "approve",
        &id,
        "--reason",
        "checked the point",
    ]));
    assert_eq!(decision["state"], "approved", "{decision}");
    assert!(
        decision["decidedBy"]
            .as_str()
            .unwrap()
            .contains("LifeboatApprover/approver")
    );
    let out = approver(&["approvals", "token", &id]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "only the requester gets the token: {}",
        text(&out)
    );
    let issued = json(&admin(&["--output", "json", "approvals", "token", &id]));
    let confirmation = issued["token"].as_str().unwrap().to_owned();
    let out = admin(&["approvals", "token", &id]);
    assert_eq!(out.status.code(), Some(6), "issued once: {}", text(&out));

    let confirmed = json(&admin(&[
        "--output",
        "json",
        "restore",
        "confirm",
        &restore,
        "--token",
        &confirmation,
    ]));
    assert_eq!(confirmed["restore"]["state"], "preserving-original", "{confirmed}");
    assert_eq!(confirmed["restore"]["approval"], id.as_str(), "{confirmed}");

    let audit = json(&admin(&["--output", "json", "audit", "--limit", "100"]));
    let records = audit["items"].as_array().unwrap();
    for (who, route) in [
        ("LifeboatApprover/approver", "/approvals/{id}/approve"),
        ("LifeboatAdmin/admin", "/approvals/{id}/token"),
        ("LifeboatAdmin/admin", "/restores/{id}/confirm"),
    ] {
        assert!(
            records.iter().any(|r| {
                r["principal"].as_str().is_some_and(|p| p.contains(who))
                    && r["route"] == route
                    && r["phase"] == "answered"
                    && matches!(r["status"].as_u64(), Some(200 | 202))
            }),
            "{who} {route}: {audit}"
        );
    }
}
