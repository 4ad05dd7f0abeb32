//! `backup-config` through its Lambda entry point, with the sample events: a malformed or
//! badly dated event is refused before any port is called, a restore of a bundle never
//! backed up is not found, and a backup starts by reading the parameters it names.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use backup_config::{Deps, handle};
use chrono::{DateTime, Utc};
use lifeboat::ErrorType;
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::config_bundle::ConfigItem;
use lifeboat_ports::config::{ConfigStore, DataKeys};
use lifeboat_ports::{PortError, PortResult};
use lifeboat_testkit::objects::InMemoryObjectStore;
use lifeboat_testkit::{InMemoryCatalog, ManualClock, event, sample, sample_event};
use serde_json::json;

/// Parameter Store, Secrets Manager and KMS, unreachable: every call is counted and fails.
#[derive(Debug, Default)]
struct Unreachable {
    calls: AtomicUsize,
}

impl Unreachable {
    fn fail<T>(&self) -> PortResult<T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(PortError::Unavailable("unreachable in this test".into()))
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ConfigStore for Unreachable {
    async fn parameters(&self, _: &str) -> PortResult<Vec<ConfigItem>> {
        self.fail()
    }
    async fn secrets(&self, _: &str) -> PortResult<Vec<ConfigItem>> {
        self.fail()
    }
    async fn put(&self, _: &ConfigItem, _: &str) -> PortResult<()> {
        self.fail()
    }
}

#[async_trait]
impl DataKeys for Unreachable {
    async fn generate(&self, _: &str, _: &BTreeMap<String, String>) -> PortResult<(Vec<u8>, Vec<u8>)> {
        self.fail()
    }
    async fn decrypt(&self, _: &[u8], _: &BTreeMap<String, String>) -> PortResult<Vec<u8>> {
        self.fail()
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-23T02:45:04Z".parse().unwrap()
}

fn deps(config: &Arc<Unreachable>) -> (Deps, Arc<InMemoryObjectStore>) {
    let store = Arc::new(InMemoryObjectStore::new());
    store.create_bucket("vault", true);
    let settings = S3Settings::from_lookup(|k| match k {
        "BACKUP_BUCKET_NAME" => Some("vault".into()),
        "AWS_REGION" => Some("us-west-2".into()),
        "SOURCE_REGION" => Some("us-east-1".into()),
        _ => None,
    })
    .unwrap();
    let catalog = Arc::new(InMemoryCatalog::new());
    let deps = Deps {
        confirmations: lifeboat_testkit::keys::confirmations(catalog.clone()).0,
        catalog,
        clock: Arc::new(ManualClock::new(now())),
        config: config.clone(),
        keys: config.clone(),
        backup: store.clone(),
        settings,
        kms_key_id: "alias/lifeboat-config".into(),
    };
    (deps, store)
}

#[tokio::test]
async fn a_malformed_or_badly_dated_event_is_refused_before_any_call() {
    let ports = Arc::new(Unreachable::default());
    let (deps, store) = deps(&ports);
    let err = handle(&deps, sample_event("backup-config", "malformed.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("bundle:"), "{}", err.message);
    let mut stale = sample("backup-config", "backup.json");
    stale["scheduledTime"] = json!("1996-11-23T02:45:00Z");
    let err = handle(&deps, event(stale)).await.unwrap_err();
    assert_eq!(err.kind, ErrorType::Invalid);
    assert!(err.message.contains("MAX_EVENT_AGE"), "{}", err.message);
    assert_eq!(ports.calls(), 0);
    assert_eq!(store.total_calls(), 0);
}

#[tokio::test]
async fn a_restore_of_a_bundle_never_backed_up_is_not_found() {
    let ports = Arc::new(Unreachable::default());
    let (deps, _) = deps(&ports);
    let err = handle(&deps, sample_event("backup-config", "restore-dry-run.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::NotFound, "{err}");
    assert_eq!(ports.calls(), 0, "nothing read from or written to the stores");
}

#[tokio::test]
async fn a_backup_starts_by_reading_what_it_names() {
    let ports = Arc::new(Unreachable::default());
    let (deps, _) = deps(&ports);
    let err = handle(&deps, sample_event("backup-config", "backup.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorType::Retryable, "{err}");
    assert!(ports.calls() > 0);
}
