//! The EMF line each admin API request emits: requests, 4xx, 5xx and latency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{STRANGER, VIEWER, World, rest_event};
use lifeboat::metrics::{MemorySink, Metric, validate_emf};

/// One request through the Lambda entry point, as API Gateway delivers it.
async fn call(w: &World, who: &str, path: &str, sink: &MemorySink) -> u16 {
    let event = rest_event(Some(who), "GET", path, &[], None);
    let answer = admin_api::handle_event_with(&w.deps, lifeboat_testkit::event(event), sink)
        .await
        .unwrap();
    u16::try_from(answer["statusCode"].as_u64().unwrap()).unwrap()
}

#[tokio::test]
async fn every_request_is_counted_with_its_class_and_latency() {
    let w = World::new();
    let sink = MemorySink::new();
    assert_eq!(call(&w, VIEWER, "/resources", &sink).await, 200);
    assert_eq!(call(&w, STRANGER, "/resources", &sink).await, 403);
    assert_eq!(call(&w, VIEWER, "/no-such-route", &sink).await, 404);
    let lines = sink.lines();
    assert_eq!(lines.len(), 3, "one line per request");
    assert!(lines.iter().all(|l| validate_emf(l).is_empty()), "{lines:?}");
    assert_eq!(sink.total(Metric::ApiRequests), Some(3));
    assert_eq!(sink.total(Metric::ApiClientErrors), Some(2));
    assert_eq!(sink.total(Metric::ApiServerErrors), Some(0));
    let latencies: Vec<_> = sink.json().iter().map(|l| l["ApiLatency"].clone()).collect();
    assert!(
        latencies.iter().all(|l| l.as_array().is_some_and(|a| a.len() == 1)),
        "{latencies:?}"
    );
    assert!(sink.json().iter().all(|l| l["Function"] == "admin-api"));
}

#[tokio::test]
async fn a_failing_port_is_a_server_error() {
    let w = World::new();
    w.fakes.catalog.fail_next(crate::common::port_err());
    let sink = MemorySink::new();
    let status = call(&w, VIEWER, "/recovery-points", &sink).await;
    assert!(status >= 500, "{status}");
    assert_eq!(sink.total(Metric::ApiServerErrors), Some(1));
}

#[tokio::test]
async fn the_dashboard_origin_may_read_answers_and_no_other() {
    let mut w = World::new();
    let event = rest_event(Some(VIEWER), "GET", "/resources", &[], None);
    let req = || lambda_http::request::from_str(&event.to_string()).unwrap();
    let sink = MemorySink::new();
    let plain = admin_api::handle_with(&w.deps, req(), &sink).await;
    assert!(plain.headers().get("access-control-allow-origin").is_none());
    w.deps.admin.dashboard_origin = Some("https://d111111abcdef8.cloudfront.net".into());
    let cors = admin_api::handle_with(&w.deps, req(), &sink).await;
    assert_eq!(
        cors.headers()["access-control-allow-origin"],
        "https://d111111abcdef8.cloudfront.net"
    );
    assert_eq!(cors.headers()["vary"], "origin");
}
