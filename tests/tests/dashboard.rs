//! The dashboard in a real browser: headless Chromium (Debian's) loads the page from the
//! local stack, which reads the admin API through the real `admin-api` binary, and
//! `infra/dashboard/check.py` reports what is on screen. The page must load with no
//! console error and no failed request, show this test's database with its recovery
//! point on the timeline and in the compliance table, an alert just sent, and its SigV4 signer (used on AWS)
//! must reproduce AWS's published example. The screenshot is left at
//! `target/dashboard/dashboard.png`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use lifeboat_domain::{Alert, AlertKind, Severity};
use lifeboat_tests::{TestEnv, endpoint, repo_root};
use serde_json::Value;

#[tokio::test]
async fn the_dashboard_shows_the_estate_with_no_console_errors() {
    let env = TestEnv::local_deployment().await.unwrap();
    let policy = env
        .put_policy(r#"{"name":"{prefix}-dash","every":"1day","rpo":"26h","retain":3}"#)
        .await
        .unwrap();
    let db = env.name("dash");
    env.create_instance(&db, policy.name.as_str()).await.unwrap();
    let at = chrono::Utc::now().to_rfc3339();
    let report = create_snapshots::handle(
        &create_snapshots::Deps {
            ports: env.ports(),
            config: env.config(""),
            runs: create_snapshots::DataRuns::default(),
        },
        lifeboat_tests::tick_event(&at, "dashboard-create"),
    )
    .await
    .unwrap();
    let mine: Vec<String> = report
        .created
        .iter()
        .map(ToString::to_string)
        .filter(|id| id.contains(&db))
        .collect();
    assert_eq!(mine.len(), 1, "{report:?}");
    // An alert through the production path (SNS topic and alert log).
    let summary = format!("{db}: RPO breach seen by the dashboard test");
    let alert = Alert::new(
        AlertKind::RpoBreach,
        Severity::High,
        &summary,
        &summary,
        chrono::Utc::now(),
    );
    assert!(env.ports().alerter().raise(alert, "dashboard-alert").await.unwrap());

    let root = repo_root();
    let screenshot = root.join("target/dashboard/dashboard.png");
    // Blocking is fine: the page is served by other processes (the stack).
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("infra/dashboard/check.py"))
        .arg("--url")
        .arg(format!("{}/_lifeboat/dashboard/", endpoint()))
        .arg("--screenshot")
        .arg(&screenshot)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    assert_eq!(page["state"], "ready", "{page:#}");
    assert_eq!(page["console_errors"], serde_json::json!([]), "{page:#}");
    assert_eq!(page["failed_requests"], serde_json::json!([]), "{page:#}");
    let lane = page["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["resource"] == db.as_str())
        .unwrap_or_else(|| panic!("no timeline lane for {db}: {page:#}"));
    let points: Vec<&str> = lane["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(points, [mine[0].as_str()], "{lane:#}");
    let row = page["compliance"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == db.as_str())
        .unwrap_or_else(|| panic!("{db} not in the compliance table: {page:#}"));
    assert_eq!(row[1], policy.name.as_str(), "{row}");
    assert_eq!(page["cards"].as_array().unwrap().len(), 6, "{page:#}");
    let alert_row = page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[3] == summary.as_str())
        .unwrap_or_else(|| panic!("the alert is not listed: {page:#}"));
    assert_eq!(
        (alert_row[1].as_str(), alert_row[2].as_str()),
        (Some("high"), Some("rpo-breach"))
    );
    // The admin API's own audit records of the dashboard's reads are not there (GETs are
    // not audited), but the table renders.
    assert!(page["audit"].is_array(), "{page:#}");
    assert_eq!(page["sigv4_example_ok"], true, "{}", page["sigv4_authorization"]);
    assert!(screenshot.is_file(), "no screenshot at {}", screenshot.display());
}
