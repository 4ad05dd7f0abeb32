//! The ports Lifeboat talks through, one module per role. The AWS adapters (crate
//! `lifeboat-aws`) implement them against AWS; the fakes (crate `lifeboat-testkit`)
//! implement them in memory, with the same contracts, for tests.

pub mod admin;
pub mod backup;
pub mod catalog;
pub mod changes;
pub mod clock;
pub mod config;
pub mod dr;
pub mod error;
pub mod export;
pub mod keys;
pub mod lambda;
pub mod notifier;
pub mod objects;
pub mod snapshots;
pub mod tables;
pub mod tags;
pub mod vault;

pub use backup::{BackupJob, BackupJobState, BackupService, VaultLock, VaultRecoveryPoint};
pub use catalog::{Catalog, PolicyVersion, RunRecord};
pub use clock::{Clock, SystemClock};
pub use error::{PortError, PortResult};
pub use export::{ExportRequest, ExportTask, ExportTaskState, SnapshotExporter};
pub use notifier::Notifier;
pub use snapshots::{DiscoveredResource, Snapshot, SnapshotStatus, SnapshotStore};
pub use tables::{TableBackup, TableBackups};
pub use tags::{Tag, tag_value};
