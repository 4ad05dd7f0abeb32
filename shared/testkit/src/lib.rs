//! In-memory fakes of the ports, for tests. They keep the same contracts as the AWS
//! adapters: conditional writes conflict, names collide, failures can be scripted, and
//! every call is counted.

pub mod admin;
pub mod backup;
pub mod catalog;
pub mod changes;
pub mod clock;
pub mod dr;
pub mod dr_store;
pub mod export;
pub mod invocation;
pub mod keys;
pub mod lambda;
pub mod notifier;
pub mod objects;
pub mod snapshots;
pub mod tables;
pub mod vault;

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use lifeboat_domain::{Region, ResourceKind, ResourceRef};
use lifeboat_ports::Tag;

pub use backup::{BackupJobRequest, BackupServiceOp, InMemoryBackupService};
pub use catalog::InMemoryCatalog;
pub use clock::ManualClock;
pub use export::{ExportOp, InMemorySnapshotExporter};
pub use invocation::{event, event_for, event_json, event_json_for, event_with, sample, sample_event};

/// The repository's root (the directory holding `template.yaml`), found at run time from
/// the directory of the package under test, which the test runner (cargo test, nextest)
/// sets in `CARGO_MANIFEST_DIR`; the path compiled in is the fallback. A test binary built
/// in one clone and run from another (a shared target directory) reads the files of the
/// clone it runs in.
pub fn repo_root() -> std::path::PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    );
    start
        .ancestors()
        .find(|dir| dir.join("template.yaml").is_file())
        .map_or_else(
            || std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")),
            std::path::Path::to_path_buf,
        )
}
pub use notifier::RecordingNotifier;
pub use snapshots::{InMemorySnapshotStore, SnapshotOp};
pub use tables::{InMemoryTableBackups, TableBackupOp};

/// The account id in the fakes' ARNs.
pub(crate) const FAKE_ACCOUNT: &str = "123456789012";

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the state from the others.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// All fakes together, plus a configuration, for handler tests.
#[derive(Debug, Clone)]
pub struct Fakes {
    pub snapshots: std::sync::Arc<InMemorySnapshotStore>,
    pub catalog: std::sync::Arc<InMemoryCatalog>,
    pub notifier: std::sync::Arc<RecordingNotifier>,
    pub clock: std::sync::Arc<ManualClock>,
    pub backup: std::sync::Arc<InMemoryBackupService>,
}

impl Fakes {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            snapshots: std::sync::Arc::new(InMemorySnapshotStore::new()),
            catalog: std::sync::Arc::new(InMemoryCatalog::new()),
            notifier: std::sync::Arc::new(RecordingNotifier::new()),
            clock: std::sync::Arc::new(ManualClock::new(now)),
            backup: std::sync::Arc::new(InMemoryBackupService::new()),
        }
    }

    pub fn ports(&self) -> lifeboat::app::Ports {
        lifeboat::app::Ports {
            snapshots: self.snapshots.clone(),
            catalog: self.catalog.clone(),
            notifier: self.notifier.clone(),
            clock: self.clock.clone(),
            backup: self.backup.clone(),
            alert_window: None,
        }
    }

    /// A configuration with primary region us-east-1 and a DR key for us-west-2.
    pub fn config() -> lifeboat::config::Config {
        lifeboat::config::Config::from_lookup(|k| match k {
            "CATALOG_TABLE_NAME" => Some("catalog".into()),
            "ALERTS_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:alerts".into()),
            "PRIMARY_REGION" => Some("us-east-1".into()),
            "BACKUP_REGION" => Some("us-west-2".into()),
            "DR_KMS_KEYS" => Some("us-west-2=arn:aws:kms:us-west-2:123456789012:key/dr-key".into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("test configuration: {e}"))
    }

    /// Adds a resource in us-east-1 tagged with `policy`, returning it.
    pub fn add_db(&self, kind: ResourceKind, id: &str, policy: &str) -> ResourceRef {
        let region = Region::parse("us-east-1").unwrap_or_else(|e| panic!("{e}"));
        let arn = match kind {
            ResourceKind::RdsInstance => format!("arn:aws:rds:us-east-1:123456789012:db:{id}"),
            ResourceKind::AuroraCluster | ResourceKind::S3Prefix | ResourceKind::ConfigBundle => {
                format!("arn:aws:rds:us-east-1:123456789012:cluster:{id}")
            }
            ResourceKind::DynamoDbTable => format!("arn:aws:dynamodb:us-east-1:123456789012:table/{id}"),
        };
        let resource = ResourceRef {
            kind,
            id: id.to_owned(),
            arn,
            region,
        };
        self.snapshots.add_resource(
            resource.clone(),
            vec![Tag::new(lifeboat::config::DEFAULT_POLICY_TAG_KEY, policy)],
        );
        resource
    }
}
