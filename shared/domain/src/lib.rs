//! The pure model and decisions of Lifeboat. Nothing in here performs I/O or knows about
//! AWS, Lambda or an async runtime (the crate depends on none of them): adapters translate
//! to and from these types at the edges.

pub mod alert;
pub mod approval;
pub mod archive;
pub mod changes;
pub mod compliance;
pub mod config_bundle;
pub mod confirm;
pub mod copy_queue;
pub mod cost;
pub mod data_set;
pub mod dr;
pub mod etag;
pub mod event_time;
pub mod export;
pub mod ids;
pub mod manifest;
pub mod naming;
pub mod planner;
pub mod policy;
pub mod recovery_point;
pub mod restore;
pub mod restore_test;
pub mod retention;
pub mod rpo;
pub mod s3;
pub mod schedule;
pub mod selection;
pub mod shards;
pub mod tiering;
pub mod tree_hash;
pub mod window;

pub use alert::{Alert, AlertKind, Severity};
pub use ids::{ParseError, PolicyName, Region, ResourceKind, ResourceRef};
pub use policy::{AwsBackupTarget, CopyTarget, Policy, PolicyProblems};
pub use recovery_point::{
    CopyProgress, Detail, Failure, ObjectsDetail, RecoveryPoint, RecoveryPointId, SnapshotDetail, Status, Step,
    TableBackupDetail, TableChecksum, TransitionError, VaultDetail, copy_progress,
};
pub use schedule::Slot;
