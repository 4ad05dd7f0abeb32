//! `GET /alerts` over the in-memory alert log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{STRANGER, VIEWER, World, t};
use lifeboat_domain::{Alert, AlertKind, Severity};
use lifeboat_ports::Catalog;

#[tokio::test]
async fn alerts_of_the_period_newest_first_with_when_they_were_sent() {
    let w = World::new(); // now: 2026-11-23T03:00:00Z
    for (at, key) in [
        ("2026-11-21T03:00:00Z", "old"),
        ("2026-11-22T18:00:00Z", "evening"),
        ("2026-11-23T02:00:00Z", "night"),
    ] {
        let alert = Alert::new(
            AlertKind::BackupFailed,
            Severity::High,
            format!("backup {key} failed"),
            key,
            t(at),
        );
        w.fakes.catalog.log_alert(&alert, t(at)).await.unwrap();
    }
    let r = w.call(Some(VIEWER), "GET", "/alerts", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let keys: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["dedupe_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["backup-failed#night", "backup-failed#evening"],
        "the default period is 24 hours"
    );
    assert_eq!(r.body["items"][0]["sent_at"], "2026-11-23T02:00:00Z");
    assert_eq!(r.body["items"][0]["type"], "backup-failed");
    assert_eq!(r.body["since"], "2026-11-22T03:00:00Z");

    let r = w
        .call_q(
            Some(VIEWER),
            "GET",
            "/alerts",
            &[("since", "7days"), ("limit", "2")],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{}", r.body);
    let r = w
        .call_q(Some(VIEWER), "GET", "/alerts", &[("since", "7days")], None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3, "{}", r.body);

    for bad in ["forever", "36days", "0s"] {
        let r = w.call_q(Some(VIEWER), "GET", "/alerts", &[("since", bad)], None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.body.to_string().contains("since"), "{}", r.body);
    }
    assert_eq!(w.call(Some(STRANGER), "GET", "/alerts", None).await.status, 403);
}
