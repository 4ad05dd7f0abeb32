//! RDS snapshot exports to S3.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::PortResult;

/// The state of an RDS export task, as StartExportTask/DescribeExportTasks report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportTaskState {
    Starting,
    InProgress,
    Complete,
    Canceling,
    Canceled,
    Failed,
    /// Anything else AWS reports, kept verbatim.
    Other(String),
}

impl ExportTaskState {
    /// AWS spells these in capitals (`IN_PROGRESS`); some emulators in lower case.
    pub fn from_aws(s: &str) -> Self {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "STARTING" => Self::Starting,
            "IN_PROGRESS" => Self::InProgress,
            "COMPLETE" | "COMPLETED" => Self::Complete,
            "CANCELING" | "CANCELLING" => Self::Canceling,
            "CANCELED" | "CANCELLED" => Self::Canceled,
            "FAILED" => Self::Failed,
            _ => Self::Other(s.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Starting => "STARTING",
            Self::InProgress => "IN_PROGRESS",
            Self::Complete => "COMPLETE",
            Self::Canceling => "CANCELING",
            Self::Canceled => "CANCELED",
            Self::Failed => "FAILED",
            Self::Other(s) => s,
        }
    }
}

/// An export task as RDS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTask {
    pub task_id: String,
    pub source_arn: String,
    pub bucket: String,
    pub prefix: String,
    pub state: ExportTaskState,
    pub percent_progress: Option<i32>,
    /// Why it failed, in RDS's words.
    pub failure_cause: Option<String>,
    pub warning: Option<String>,
}

/// What StartExportTask is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    /// ExportTaskIdentifier: deterministic, so a replay finds the task it started.
    pub task_id: String,
    /// The snapshot (or cluster snapshot) ARN, in the region of the bucket.
    pub source_arn: String,
    pub bucket: String,
    pub prefix: String,
    pub role_arn: String,
    pub kms_key_id: String,
}

/// RDS snapshot exports to S3, in one region (the backup bucket's).
#[async_trait]
pub trait SnapshotExporter: Send + Sync {
    /// Starts the export. `AlreadyExists` when a task with this identifier exists (started
    /// earlier: look it up and adopt it); `InvalidState` when the snapshot cannot be
    /// exported now; `KmsKey` when the key is unusable.
    async fn start_export(&self, request: &ExportRequest) -> PortResult<ExportTask>;
    /// The task, if RDS knows it.
    async fn describe_export(&self, task_id: &str) -> PortResult<Option<ExportTask>>;
}
