//! Policies and DR plans managed through the API: checked when written (every problem
//! listed at once), read with an entity tag, and written over a stale read refused (412).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::common::{ADMIN, ADMIN2, OPERATOR, Reply, VIEWER, World, rest_event};

const PLAN: &str = r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
    "databases": [{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}], "rto": "30m", "rpo": "15m",
    "network": {"allow_default_network": true}}"#;

/// `method path` by `who` with `body` and an `If-Match` header.
async fn send(w: &World, who: &str, method: &str, path: &str, body: Option<&str>, if_match: Option<&str>) -> Reply {
    let mut event = rest_event(Some(who), method, path, &[], body);
    if let Some(tag) = if_match {
        event["headers"]["if-match"] = json!(tag);
    }
    w.send(&event).await
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn problems(r: &Reply) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_dr_plan_is_checked_when_written_and_read_back_with_its_tag() {
    let w = World::new();
    // Every problem at once, each with its field.
    let bad = r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-east-1",
        "databases": [{"arn": "arn:aws:s3:::orders"}], "rto": "soon", "rpo": "15m"}"#;
    let r = send(&w, ADMIN, "PUT", "/dr/plans/orders-dr", Some(bad), None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let fields = problems(&r);
    assert!(fields.len() >= 3, "{:?}", r.body);
    assert!(fields.iter().any(|f| f.starts_with("databases[0]")), "{fields:?}");
    assert!(w.dr.plan_names_now().is_empty(), "nothing stored");

    // Only an admin writes; the path names the plan.
    let r = send(&w, OPERATOR, "PUT", "/dr/plans/orders-dr", Some(PLAN), None).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = send(&w, ADMIN, "PUT", "/dr/plans/other", Some(PLAN), None).await;
    assert_eq!((r.status, problems(&r)), (400, vec!["name".to_owned()]), "{:?}", r.body);

    let r = send(&w, ADMIN, "PUT", "/dr/plans/orders-dr", Some(PLAN), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let tag = r.body["etag"].as_str().unwrap().to_owned();
    assert_eq!(header(&r, "etag"), Some(tag.as_str()));
    let got = send(&w, VIEWER, "GET", "/dr/plans/orders-dr", None, None).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["etag"], tag.as_str());
    assert_eq!(got.body["valid"], true);
    assert_eq!(got.body["document"]["dr_region"], "us-west-2");
    let missing = send(&w, VIEWER, "GET", "/dr/plans/nope", None, None).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn a_write_over_a_stale_read_is_refused_and_the_first_writer_wins() {
    let w = World::new();
    let r = send(&w, ADMIN, "PUT", "/dr/plans/orders-dr", Some(PLAN), None).await;
    let read = r.body["etag"].as_str().unwrap().to_owned();

    // Two admins read the same version; the first write wins, the second is 412.
    let faster = PLAN.replace(r#""rto": "30m""#, r#""rto": "20m""#);
    let slower = PLAN.replace(r#""rto": "30m""#, r#""rto": "45m""#);
    let first = send(&w, ADMIN, "PUT", "/dr/plans/orders-dr", Some(&faster), Some(&read)).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = send(&w, ADMIN2, "PUT", "/dr/plans/orders-dr", Some(&slower), Some(&read)).await;
    assert_eq!(second.status, 412, "{:?}", second.body);
    let now = first.body["etag"].as_str().unwrap();
    assert!(
        second.body["detail"].as_str().unwrap().contains(now),
        "{:?}",
        second.body
    );
    let stored = send(&w, VIEWER, "GET", "/dr/plans/orders-dr", None, None).await;
    assert_eq!(stored.body["document"]["rto"], first.body["document"]["rto"]);
    assert_ne!(stored.body["etag"], read.as_str());
    // If-Match on a plan never stored cannot match.
    let r = send(
        &w,
        ADMIN,
        "PUT",
        "/dr/plans/new-dr",
        Some(&PLAN.replace("orders-dr", "new-dr")),
        Some(&read),
    )
    .await;
    assert_eq!(r.status, 412, "{:?}", r.body);

    // The same for policies: the tag from GET guards the PUT.
    let gold = r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 24}"#;
    let put = send(&w, ADMIN, "PUT", "/policies/gold", Some(gold), None).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let got = send(&w, VIEWER, "GET", "/policies/gold", None, None).await;
    let tag = got.body["etag"].as_str().unwrap().to_owned();
    assert_eq!(
        put.body["etag"],
        tag.as_str(),
        "the tag of what was written is the tag read"
    );
    assert_eq!(header(&got, "etag"), Some(tag.as_str()));
    let shorter = gold.replace(r#""retain": 24"#, r#""retain": 12"#);
    let ok = send(&w, ADMIN, "PUT", "/policies/gold", Some(&shorter), Some(&tag)).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let stale = send(&w, ADMIN2, "PUT", "/policies/gold", Some(gold), Some(&tag)).await;
    assert_eq!(stale.status, 412, "{:?}", stale.body);
    let kept: Value = send(&w, VIEWER, "GET", "/policies/gold", None, None).await.body;
    assert_eq!(kept["document"]["retention"]["last"], 12, "{kept}");

    // The replaced version is kept: who replaced it, when, and what it was.
    let history = send(&w, VIEWER, "GET", "/policies/gold/versions", None, None).await;
    assert_eq!(history.status, 200, "{:?}", history.body);
    let items = history.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one replacement so far: {:?}", history.body);
    assert_eq!(items[0]["etag"], tag.as_str());
    assert_eq!(items[0]["replaced_by"], ADMIN);
    assert_eq!(items[0]["document"]["retention"]["last"], 24);
    // Writing the same document again replaces nothing.
    let same = send(&w, ADMIN, "PUT", "/policies/gold", Some(&shorter), None).await;
    assert_eq!(same.status, 200);
    let again = send(&w, VIEWER, "GET", "/policies/gold/versions", None, None).await;
    assert_eq!(again.body["items"].as_array().unwrap().len(), 1);
}
