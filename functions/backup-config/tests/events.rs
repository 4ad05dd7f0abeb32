//! The sample events parse, and a malformed one is refused with every problem named.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use backup_config::{Rename, Request};
use lifeboat::ErrorType;
use serde_json::{Value, json};

fn event(name: &str) -> Value {
    let path = lifeboat_testkit::repo_root().join("events/backup-config").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn sample_events_parse() {
    match Request::parse(&event("backup.json")).unwrap() {
        Request::Backup {
            bundle,
            parameters,
            secrets,
            ..
        } => assert_eq!(
            (bundle.as_str(), parameters, secrets),
            ("orders-config", vec!["/orders/".to_owned()], vec!["orders/".to_owned()])
        ),
        other => panic!("{other:?}"),
    }
    match Request::parse(&event("restore-dry-run.json")).unwrap() {
        Request::Restore {
            rename,
            dry_run,
            overwrite,
            ..
        } => {
            assert!(dry_run && !overwrite);
            assert_eq!(
                rename,
                Some(Rename {
                    from: "/orders/".into(),
                    to: "/orders-restored/".into()
                })
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_events_name_every_problem() {
    let err = Request::parse(&event("malformed.json")).unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    for needle in ["bundle:", "parameters[0]", "secrets[0]"] {
        assert!(err.message.contains(needle), "{needle}: {}", err.message);
    }
    for bad in [
        json!({"action": "delete", "bundle": "x"}),
        json!({"action": "backup", "bundle": "x", "policy": "gold"}),
        json!({"action": "verify", "bundle": "x", "extra": 1}),
        json!({"action": "restore", "bundle": "x", "rename": {"from": "/a/", "to": "/a/"}}),
        json!("backup"),
    ] {
        let err = Request::parse(&bad).unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid, "{bad}");
    }
}

#[test]
fn a_scheduled_backup_dated_outside_the_bounds_is_refused_naming_its_time() {
    let bounds = lifeboat_domain::event_time::EventTimeBounds::default();
    let now = "2026-11-23T02:45:04Z".parse().unwrap();
    let with = |at: &str| {
        let mut e = event("backup.json");
        e["scheduledTime"] = json!(at);
        Request::parse(&e).unwrap()
    };
    assert!(with("2026-11-23T02:45:00Z").check_time(now, bounds).is_ok());
    assert!(
        Request::parse(&event("backup.json"))
            .unwrap()
            .check_time(now, bounds)
            .is_ok()
    );
    for (at, bound) in [
        ("1996-11-23T02:45:00Z", "MAX_EVENT_AGE"),
        ("2027-11-23T02:45:00Z", "MAX_EVENT_SKEW"),
    ] {
        let err = with(at).check_time(now, bounds).unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid);
        assert!(
            err.message.contains(at) && err.message.contains(bound),
            "{}",
            err.message
        );
    }
}
