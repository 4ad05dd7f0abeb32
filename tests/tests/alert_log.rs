//! The alert log in the DynamoDB catalog on the local stack: one partition per UTC day,
//! read newest first across days, bounded by the period and the limit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use chrono::{DateTime, Duration, Utc};
use lifeboat_domain::{Alert, AlertKind, Severity};
use lifeboat_ports::Catalog;
use lifeboat_tests::TestEnv;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn alerts_are_read_back_newest_first_across_days() {
    let env = TestEnv::start().await.unwrap();
    let catalog = env.catalog();
    let sent = [
        ("2026-11-21T23:50:00Z", "a"),
        ("2026-11-22T00:10:00Z", "b"),
        ("2026-11-22T09:00:00Z", "c"),
        ("2026-11-23T08:00:00Z", "d"),
    ];
    for (at, key) in sent {
        let alert = Alert::new(AlertKind::RpoBreach, Severity::High, format!("alert {key}"), key, t(at))
            .resource(format!("arn:aws:rds:us-east-1:123456789012:db:{}", env.name("orders")));
        catalog.log_alert(&alert, t(at)).await.unwrap();
    }
    let until = t("2026-11-23T12:00:00Z");
    let all = catalog
        .recent_alerts(until - Duration::days(3), until, 10)
        .await
        .unwrap();
    let keys: Vec<&str> = all.iter().map(|(_, a)| a.summary.as_str()).collect();
    assert_eq!(keys, ["alert d", "alert c", "alert b", "alert a"]);
    assert_eq!(all[0].0, t("2026-11-23T08:00:00Z"));
    assert_eq!(all[3].1.summary, "alert a");

    // The period cuts inside a day; the limit stops early.
    let since_b = catalog
        .recent_alerts(t("2026-11-22T00:00:00Z"), until, 10)
        .await
        .unwrap();
    assert_eq!(since_b.len(), 3);
    let two = catalog
        .recent_alerts(until - Duration::days(3), until, 2)
        .await
        .unwrap();
    let keys: Vec<&str> = two.iter().map(|(_, a)| a.summary.as_str()).collect();
    assert_eq!(keys, ["alert d", "alert c"]);
    // Nothing after the period's end.
    let early = catalog
        .recent_alerts(t("2026-11-21T00:00:00Z"), t("2026-11-22T00:00:00Z"), 10)
        .await
        .unwrap();
    assert_eq!(early.len(), 1);
}
