//! RDS snapshot exports in memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use lifeboat_ports::{ExportRequest, ExportTask, ExportTaskState, PortError, PortResult, SnapshotExporter};

use crate::lock;

/// Operations of [`InMemorySnapshotExporter`], for scripting failures and counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportOp {
    Start,
    Describe,
}

/// RDS snapshot exports of one region. Same contract as `RdsSnapshotExporter`: a task id
/// already used is `AlreadyExists` (whatever its state), a source snapshot in another
/// region is refused as invalid (RDS exports only into a bucket of the snapshot's region),
/// an unknown task is `None`. New tasks start in `new_state` (default `STARTING`); tests
/// move them with [`InMemorySnapshotExporter::set_state`]. The fake writes no files: tests
/// put the exported objects into the bucket themselves.
#[derive(Debug)]
pub struct InMemorySnapshotExporter {
    region: String,
    tasks: Mutex<BTreeMap<String, ExportTask>>,
    requests: Mutex<Vec<ExportRequest>>,
    new_state: Mutex<ExportTaskState>,
    failures: Mutex<VecDeque<(ExportOp, PortError)>>,
    calls: Mutex<HashMap<ExportOp, usize>>,
}

impl InMemorySnapshotExporter {
    pub fn in_region(region: &str) -> Self {
        Self {
            region: region.to_owned(),
            tasks: Mutex::default(),
            requests: Mutex::default(),
            new_state: Mutex::new(ExportTaskState::Starting),
            failures: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    /// The state new tasks start in.
    pub fn set_new_state(&self, state: ExportTaskState) {
        *lock(&self.new_state) = state;
    }

    /// Moves a task to `state` (with RDS's `failure_cause` for a failed one).
    pub fn set_state(&self, task_id: &str, state: ExportTaskState, failure_cause: Option<&str>) {
        if let Some(t) = lock(&self.tasks).get_mut(task_id) {
            t.percent_progress = Some(if state == ExportTaskState::Complete { 100 } else { 50 });
            t.state = state;
            t.failure_cause = failure_cause.map(str::to_owned);
        }
    }

    pub fn tasks(&self) -> Vec<ExportTask> {
        lock(&self.tasks).values().cloned().collect()
    }

    /// Every StartExportTask request accepted, in order.
    pub fn requests(&self) -> Vec<ExportRequest> {
        lock(&self.requests).clone()
    }

    pub fn fail_next(&self, op: ExportOp, error: PortError) {
        lock(&self.failures).push_back((op, error));
    }

    pub fn calls(&self, op: ExportOp) -> usize {
        lock(&self.calls).get(&op).copied().unwrap_or(0)
    }

    fn enter(&self, op: ExportOp) -> PortResult<()> {
        *lock(&self.calls).entry(op).or_insert(0) += 1;
        let mut failures = lock(&self.failures);
        if let Some(i) = failures.iter().position(|(o, _)| *o == op)
            && let Some((_, e)) = failures.remove(i)
        {
            return Err(e);
        }
        Ok(())
    }
}

#[async_trait]
impl SnapshotExporter for InMemorySnapshotExporter {
    async fn start_export(&self, r: &ExportRequest) -> PortResult<ExportTask> {
        self.enter(ExportOp::Start)?;
        let parts: Vec<&str> = r.source_arn.splitn(7, ':').collect();
        if parts.len() != 7 || parts[2] != "rds" || !matches!(parts[5], "snapshot" | "cluster-snapshot") {
            return Err(PortError::Invalid(format!(
                "StartExportTask: {} is not a DB snapshot or DB cluster snapshot ARN",
                r.source_arn
            )));
        }
        if parts[3] != self.region {
            return Err(PortError::Invalid(format!(
                "StartExportTask: the snapshot is in {}, the export runs in {}",
                parts[3], self.region
            )));
        }
        let mut tasks = lock(&self.tasks);
        if tasks.contains_key(&r.task_id) {
            return Err(PortError::AlreadyExists(format!(
                "StartExportTask: ExportTaskAlreadyExists: {}",
                r.task_id
            )));
        }
        let task = ExportTask {
            task_id: r.task_id.clone(),
            source_arn: r.source_arn.clone(),
            bucket: r.bucket.clone(),
            prefix: r.prefix.clone(),
            state: lock(&self.new_state).clone(),
            percent_progress: Some(0),
            failure_cause: None,
            warning: None,
        };
        tasks.insert(r.task_id.clone(), task.clone());
        lock(&self.requests).push(r.clone());
        Ok(task)
    }

    async fn describe_export(&self, task_id: &str) -> PortResult<Option<ExportTask>> {
        self.enter(ExportOp::Describe)?;
        Ok(lock(&self.tasks).get(task_id).cloned())
    }
}
