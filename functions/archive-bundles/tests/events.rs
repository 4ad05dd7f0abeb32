//! The sample events parse, a malformed one is refused with every problem named, and the
//! configuration is checked at cold start.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use archive_bundles::{ArchiveSettings, Request};
use lifeboat::ErrorType;
use lifeboat_domain::archive::RetrievalTier;
use lifeboat_domain::tree_hash::MIB;
use serde_json::{Value, json};

fn event(name: &str) -> Value {
    let path = lifeboat_testkit::repo_root().join("events/archive-bundles").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn sample_events_parse() {
    assert_eq!(
        Request::parse(&event("archive.json")).unwrap(),
        Request::Archive {
            recovery_point: None,
            limit: None
        }
    );
    match Request::parse(&event("archive-one.json")).unwrap() {
        Request::Archive {
            recovery_point: Some(id),
            limit: None,
        } => assert!(id.starts_with("us-west-2/s3/")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Request::parse(&event("retrieve.json")).unwrap(),
        Request::Retrieve {
            recovery_point: "us-west-2/config/lb-orders-config-20261123-1800".into(),
            tier: Some(RetrievalTier::Expedited)
        }
    );
    assert_eq!(Request::parse(&event("poll.json")).unwrap(), Request::Poll {});
}

#[test]
fn bad_events_name_every_problem() {
    let err = Request::parse(&event("malformed.json")).unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    for needle in ["recoveryPoint:", "limit: a number", "limit applies only"] {
        assert!(err.message.contains(needle), "{needle}: {}", err.message);
    }
    for (bad, needle) in [
        (json!({"mode": "restore"}), "unknown variant"),
        (json!({"mode": "retrieve"}), "recoveryPoint"),
        (
            json!({"mode": "retrieve", "recoveryPoint": "us-west-2/s3/x", "tier": "Fast"}),
            "Fast",
        ),
        (
            json!({"mode": "poll", "recoveryPoint": "us-west-2/s3/x"}),
            "unknown field",
        ),
        (json!({"mode": "archive", "limit": 501}), "limit"),
        (json!("archive"), "mode"),
        (json!(null), "mode"),
    ] {
        let err = Request::parse(&bad).unwrap_err();
        assert_eq!(err.kind, ErrorType::Invalid, "{bad}");
        assert!(err.message.contains(needle), "{bad}: {}", err.message);
    }
}

#[test]
fn configuration_has_defaults_and_lists_every_problem() {
    let s = ArchiveSettings::from_lookup(|k| match k {
        "ARCHIVE_VAULT_NAME" => Some("lifeboat-archive".into()),
        "AWS_REGION" => Some("eu-west-1".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        (s.vault.as_str(), s.region.as_str(), s.batch),
        ("lifeboat-archive", "eu-west-1", 25)
    );
    assert_eq!(
        (s.tuning.multipart_threshold, s.tuning.part_size.bytes()),
        (64 * MIB, 16 * MIB)
    );

    let err = ArchiveSettings::from_lookup(|k| match k {
        "ARCHIVE_VAULT_NAME" => Some("no spaces allowed".into()),
        "BACKUP_REGION" => Some("moon-1".into()),
        "ARCHIVE_BATCH" => Some("0".into()),
        "ARCHIVE_PART_SIZE_BYTES" => Some((3 * MIB).to_string()),
        _ => None,
    })
    .unwrap_err();
    // Met at run time, it is a Misconfigured function error.
    assert_eq!(
        lifeboat::FunctionError::from(err.clone()).kind,
        ErrorType::Misconfigured
    );
    let err = lifeboat::FunctionError::from(err);
    for needle in [
        "ARCHIVE_VAULT_NAME",
        "BACKUP_REGION",
        "ARCHIVE_BATCH",
        "ARCHIVE_PART_SIZE_BYTES",
    ] {
        assert!(err.message.contains(needle), "{needle}: {}", err.message);
    }
    let err = ArchiveSettings::from_lookup(|k| (k == "AWS_REGION").then(|| "us-east-1".into())).unwrap_err();
    assert!(
        err.problems.iter().any(|p| p == "ARCHIVE_VAULT_NAME is not set"),
        "{err}"
    );
}
