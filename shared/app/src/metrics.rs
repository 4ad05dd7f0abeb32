//! Metrics as CloudWatch Embedded Metric Format (EMF) log lines.
//!
//! A function collects its measurements for one invocation in a [`Metrics`] collector and
//! flushes it once, at the end, to a [`MetricsSink`] (standard output in Lambda: CloudWatch
//! Logs extracts the metrics, no `PutMetricData` call and no extra IAM permission).
//!
//! Each line is one JSON object: the `_aws` metadata (`Timestamp` in epoch milliseconds and
//! one `CloudWatchMetrics` directive in namespace [`NAMESPACE`]), the dimension values, the
//! metric values (a number, or an array of up to 100 numbers for samples), and a `RunId`
//! property (searchable in Logs Insights, never a dimension):
//!
//! ```json
//! {"_aws":{"Timestamp":1795975500000,"CloudWatchMetrics":[{"Namespace":"Lifeboat",
//!   "Dimensions":[["Service"],["Service","Function"],["Service","Location"]],
//!   "Metrics":[{"Name":"CopiesSucceeded","Unit":"Count"},{"Name":"CopyLag","Unit":"Seconds"}]}]},
//!  "Service":"Lifeboat","Function":"track-recovery-points","Location":"us-west-2",
//!  "CopiesSucceeded":2,"CopyLag":[840,905],"RunId":"8f0c…"}
//! ```
//!
//! Dimensions are kept small: `Service` (always `Lifeboat`, the aggregate the alarms
//! watch), `Function`, and `Location` (the region holding the recovery point) for the
//! metrics that have one. A line carries at most 100 metrics and 100 values per metric,
//! as the EMF specification allows; more are split over several lines.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use lifeboat_domain::Region;

/// The CloudWatch namespace of every Lifeboat metric.
pub const NAMESPACE: &str = "Lifeboat";
/// The value of the `Service` dimension on every line.
pub const SERVICE: &str = "Lifeboat";
/// EMF: at most 100 metric definitions per directive, 100 values per metric.
pub const MAX_METRICS_PER_LINE: usize = 100;
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// CloudWatch units used by Lifeboat's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
    Bytes,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Seconds => "Seconds",
            Self::Milliseconds => "Milliseconds",
            Self::Bytes => "Bytes",
        }
    }
}

/// Every metric Lifeboat emits; each has one fixed name and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Snapshots or backups that became available.
    BackupsSucceeded,
    /// Snapshots or backups that failed (at creation or later, e.g. vanished).
    BackupsFailed,
    /// Cross-region copies started.
    CopiesStarted,
    /// Cross-region copies that became available.
    CopiesSucceeded,
    /// Cross-region copies that failed.
    CopiesFailed,
    /// From the source's capture to its copy being available, per copy (seconds).
    CopyLag,
    /// Verifications whose checksums did not match the manifest.
    VerificationMismatches,
    /// Verifications that matched.
    VerificationsPassed,
    /// Restores completed.
    Restores,
    /// Duration of each restore (seconds).
    RestoreDuration,
    /// RPO checks made (resource × location).
    RpoChecks,
    /// RPO checks that found a breach.
    RpoBreaches,
    /// Age of the newest good recovery point at each RPO check (seconds).
    RecoveryPointAge,
    /// Measured recovery time of a DR drill (seconds).
    DrillRto,
    /// Measured data loss window of a DR drill (seconds).
    DrillRpo,
    /// Drills whose measured RTO exceeded the target.
    DrillRtoOverTarget,
    /// Recovery points expired by retention.
    RecoveryPointsExpired,
    /// Expiries that failed or were refused.
    ExpiryFailures,
    /// Work pending past its deadline.
    StuckRecoveryPoints,
    /// Snapshots or backups started (create-snapshots).
    BackupsStarted,
    /// Objects copied into the backup bucket by an incremental run (backup-objects).
    ObjectsCopied,
    /// Bytes copied into the backup bucket by an incremental run.
    BytesCopied,
    /// Objects written back by a restore (restore-objects).
    ObjectsRestored,
    /// Bytes written back by a restore.
    BytesRestored,
    /// DR steps that failed (run-dr-step; the state machine's Catch then compensates).
    DrStepFailures,
    /// Compensations run after a failed DR execution.
    DrCompensations,
    /// Drills whose measured RPO exceeded the target.
    DrillRpoOverTarget,
    /// Admin API requests answered.
    ApiRequests,
    /// Admin API requests answered 4xx (bad input, refused, not found).
    ApiClientErrors,
    /// Admin API requests answered 5xx.
    ApiServerErrors,
    /// Admin API time to answer, per request (milliseconds).
    ApiLatency,
    /// Backup copies moved to a colder storage class, and their bytes.
    ObjectsTiered,
    BytesTiered,
    /// Bundles uploaded to the Glacier vault (archive-bundles).
    ArchivesUploaded,
    /// Bytes uploaded to the Glacier vault.
    BytesArchived,
    /// Archive-retrieval jobs started.
    RetrievalsStarted,
    /// Bundles refused for archiving (missing, or not matching their catalog SHA-256) and
    /// retrievals that failed; retrievals whose bytes do not match count as
    /// `VerificationMismatches`.
    ArchiveFailures,
    /// Snapshot exports to S3 started (export-snapshots).
    ExportsStarted,
    /// Exports whose objects are all in their Glacier class, verified and listed.
    ExportsArchived,
    /// Bytes of the exports archived.
    BytesExported,
    /// Exports that RDS reported failed or canceled, or that could not be started.
    ExportFailures,
    /// Database restore tests judged: passed, and failed (test-restores).
    RestoreTestsPassed,
    RestoreTestsFailed,
    /// From a restore test's request to its database being available (seconds): the
    /// measured RTO of a restore from snapshot.
    RestoreTestDuration,
}

impl Metric {
    pub const ALL: [Self; 44] = [
        Self::BackupsSucceeded,
        Self::BackupsFailed,
        Self::CopiesStarted,
        Self::CopiesSucceeded,
        Self::CopiesFailed,
        Self::CopyLag,
        Self::VerificationMismatches,
        Self::VerificationsPassed,
        Self::Restores,
        Self::RestoreDuration,
        Self::RpoChecks,
        Self::RpoBreaches,
        Self::RecoveryPointAge,
        Self::DrillRto,
        Self::DrillRpo,
        Self::DrillRtoOverTarget,
        Self::RecoveryPointsExpired,
        Self::ExpiryFailures,
        Self::StuckRecoveryPoints,
        Self::BackupsStarted,
        Self::ObjectsCopied,
        Self::BytesCopied,
        Self::ObjectsRestored,
        Self::BytesRestored,
        Self::DrStepFailures,
        Self::DrCompensations,
        Self::DrillRpoOverTarget,
        Self::ApiRequests,
        Self::ApiClientErrors,
        Self::ApiServerErrors,
        Self::ApiLatency,
        Self::ObjectsTiered,
        Self::BytesTiered,
        Self::ArchivesUploaded,
        Self::BytesArchived,
        Self::RetrievalsStarted,
        Self::ArchiveFailures,
        Self::ExportsStarted,
        Self::ExportsArchived,
        Self::BytesExported,
        Self::ExportFailures,
        Self::RestoreTestsPassed,
        Self::RestoreTestsFailed,
        Self::RestoreTestDuration,
    ];

    /// The CloudWatch metric name (what the alarms in template.yaml reference).
    pub fn name(self) -> &'static str {
        match self {
            Self::BackupsSucceeded => "BackupsSucceeded",
            Self::BackupsFailed => "BackupsFailed",
            Self::CopiesStarted => "CopiesStarted",
            Self::CopiesSucceeded => "CopiesSucceeded",
            Self::CopiesFailed => "CopiesFailed",
            Self::CopyLag => "CopyLag",
            Self::VerificationMismatches => "VerificationMismatches",
            Self::VerificationsPassed => "VerificationsPassed",
            Self::Restores => "Restores",
            Self::RestoreDuration => "RestoreDuration",
            Self::RpoChecks => "RpoChecks",
            Self::RpoBreaches => "RpoBreaches",
            Self::RecoveryPointAge => "RecoveryPointAge",
            Self::DrillRto => "DrillRto",
            Self::DrillRpo => "DrillRpo",
            Self::DrillRtoOverTarget => "DrillRtoOverTarget",
            Self::RecoveryPointsExpired => "RecoveryPointsExpired",
            Self::ExpiryFailures => "ExpiryFailures",
            Self::StuckRecoveryPoints => "StuckRecoveryPoints",
            Self::BackupsStarted => "BackupsStarted",
            Self::ObjectsCopied => "ObjectsCopied",
            Self::BytesCopied => "BytesCopied",
            Self::ObjectsRestored => "ObjectsRestored",
            Self::BytesRestored => "BytesRestored",
            Self::DrStepFailures => "DrStepFailures",
            Self::DrCompensations => "DrCompensations",
            Self::DrillRpoOverTarget => "DrillRpoOverTarget",
            Self::ApiRequests => "ApiRequests",
            Self::ApiClientErrors => "ApiClientErrors",
            Self::ApiServerErrors => "ApiServerErrors",
            Self::ApiLatency => "ApiLatency",
            Self::ObjectsTiered => "ObjectsTiered",
            Self::BytesTiered => "BytesTiered",
            Self::ArchivesUploaded => "ArchivesUploaded",
            Self::BytesArchived => "BytesArchived",
            Self::RetrievalsStarted => "RetrievalsStarted",
            Self::ArchiveFailures => "ArchiveFailures",
            Self::ExportsStarted => "ExportsStarted",
            Self::ExportsArchived => "ExportsArchived",
            Self::BytesExported => "BytesExported",
            Self::ExportFailures => "ExportFailures",
            Self::RestoreTestsPassed => "RestoreTestsPassed",
            Self::RestoreTestsFailed => "RestoreTestsFailed",
            Self::RestoreTestDuration => "RestoreTestDuration",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Self::CopyLag
            | Self::RestoreDuration
            | Self::RecoveryPointAge
            | Self::DrillRto
            | Self::DrillRpo
            | Self::RestoreTestDuration => Unit::Seconds,
            Self::BytesCopied | Self::BytesRestored | Self::BytesTiered | Self::BytesArchived | Self::BytesExported => {
                Unit::Bytes
            }
            Self::ApiLatency => Unit::Milliseconds,
            _ => Unit::Count,
        }
    }

    /// Counters (counts and byte totals) are summed within an invocation (one value per
    /// line); the others keep every sample (CloudWatch computes the statistics).
    pub fn is_counter(self) -> bool {
        matches!(self.unit(), Unit::Count | Unit::Bytes)
    }

    /// The metric called `name`, if Lifeboat emits one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Where metric lines go.
pub trait MetricsSink: Send + Sync {
    fn write_line(&self, line: &str);
}

/// Standard output: in Lambda, CloudWatch Logs. One `write` per line, so lines never
/// interleave with the log lines written by `tracing`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdoutSink;

impl MetricsSink for StdoutSink {
    fn write_line(&self, line: &str) {
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(buf.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "could not write a metrics line");
        }
    }
}

/// Keeps the lines in memory (tests).
#[derive(Debug, Default)]
pub struct MemorySink {
    lines: std::sync::Mutex<Vec<String>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Every line parsed as JSON (a line that is not JSON becomes `Value::Null`).
    pub fn json(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
            .collect()
    }

    /// The sum of `metric` over every line whose dimensions match `location` (`None`: lines
    /// without a location; use [`MemorySink::total`] for all).
    pub fn sum(&self, metric: Metric, location: Option<&str>) -> Option<u64> {
        let mut found = None;
        for v in self.json() {
            if v.get("Location").and_then(Value::as_str) != location {
                continue;
            }
            if let Some(x) = v.get(metric.name()) {
                *found.get_or_insert(0) += value_sum(x);
            }
        }
        found
    }

    /// The sum of `metric` over every line.
    pub fn total(&self, metric: Metric) -> Option<u64> {
        let mut found = None;
        for v in self.json() {
            if let Some(x) = v.get(metric.name()) {
                *found.get_or_insert(0) += value_sum(x);
            }
        }
        found
    }
}

fn value_sum(v: &Value) -> u64 {
    match v {
        Value::Array(xs) => xs.iter().filter_map(Value::as_u64).sum(),
        other => other.as_u64().unwrap_or(0),
    }
}

impl MetricsSink for MemorySink {
    fn write_line(&self, line: &str) {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line.to_owned());
    }
}

/// One invocation's measurements, flushed once.
#[derive(Debug, Clone)]
pub struct Metrics {
    function: String,
    run_id: String,
    timestamp_ms: i64,
    /// Per location (`None`: no location dimension) and metric: the values.
    series: BTreeMap<Option<String>, BTreeMap<Metric, Vec<u64>>>,
}

impl Metrics {
    /// A collector for one invocation of `function`, stamped `at`.
    pub fn new(function: &str, run_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            function: function.to_owned(),
            run_id: run_id.to_owned(),
            timestamp_ms: at.timestamp_millis(),
            series: BTreeMap::new(),
        }
    }

    fn values(&mut self, location: Option<&Region>, metric: Metric) -> &mut Vec<u64> {
        self.series
            .entry(location.map(ToString::to_string))
            .or_default()
            .entry(metric)
            .or_default()
    }

    /// Adds `n` to a counter (`n = 0` still emits the metric, so alarms see data).
    /// A sample metric gets `n` as one more sample.
    pub fn count(&mut self, metric: Metric, n: u64) {
        self.add(None, metric, n);
    }

    /// [`Metrics::count`] with a `Location` dimension.
    pub fn count_in(&mut self, location: &Region, metric: Metric, n: u64) {
        self.add(Some(location), metric, n);
    }

    /// Records one sample (a duration, an age).
    pub fn sample(&mut self, metric: Metric, value: u64) {
        self.add(None, metric, value);
    }

    /// [`Metrics::sample`] with a `Location` dimension.
    pub fn sample_in(&mut self, location: &Region, metric: Metric, value: u64) {
        self.add(Some(location), metric, value);
    }

    fn add(&mut self, location: Option<&Region>, metric: Metric, value: u64) {
        let values = self.values(location, metric);
        if metric.is_counter() {
            match values.first_mut() {
                Some(total) => *total = total.saturating_add(value),
                None => values.push(value),
            }
        } else {
            values.push(value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The EMF lines, one JSON object each.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (location, metrics) in &self.series {
            // Split samples into chunks of 100 values; each chunk index gets its own lines.
            let mut chunks: Vec<Vec<(Metric, &[u64])>> = Vec::new();
            for (metric, values) in metrics {
                for (i, chunk) in values.chunks(MAX_VALUES_PER_METRIC).enumerate() {
                    if chunks.len() <= i {
                        chunks.push(Vec::new());
                    }
                    chunks[i].push((*metric, chunk));
                }
            }
            for group in chunks {
                for part in group.chunks(MAX_METRICS_PER_LINE) {
                    out.push(self.line(location.as_deref(), part));
                }
            }
        }
        out
    }

    fn line(&self, location: Option<&str>, metrics: &[(Metric, &[u64])]) -> String {
        let mut dimensions = vec![json!(["Service"]), json!(["Service", "Function"])];
        if location.is_some() {
            dimensions.push(json!(["Service", "Location"]));
        }
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(m, _)| json!({"Name": m.name(), "Unit": m.unit().as_str()}))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert("Service".into(), json!(SERVICE));
        root.insert("Function".into(), json!(self.function));
        if let Some(l) = location {
            root.insert("Location".into(), json!(l));
        }
        for (m, values) in metrics {
            let v = match values {
                [one] if m.is_counter() => json!(one),
                many => json!(many),
            };
            root.insert(m.name().into(), v);
        }
        root.insert("RunId".into(), json!(self.run_id));
        Value::Object(root).to_string()
    }

    /// Writes every line to `sink` and empties the collector.
    pub fn flush(&mut self, sink: &dyn MetricsSink) {
        for line in self.lines() {
            sink.write_line(&line);
        }
        self.series.clear();
    }
}

/// The units CloudWatch accepts in an EMF metric definition.
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks one line against the EMF specification (the rules Lifeboat relies on): the root
/// is an object with `_aws.Timestamp` (epoch ms) and a non-empty `CloudWatchMetrics` array;
/// each directive has a namespace of 1-255 characters, dimension sets of at most 30 keys
/// that name string members of the root, at most 100 metric definitions with a valid unit,
/// each naming a numeric member of the root (or an array of at most 100 numbers); the
/// line is at most 256 KB (CloudWatch Logs' event size when EMF was specified). Returns
/// every problem found.
pub fn validate_emf(line: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if line.len() > 256 * 1024 {
        problems.push(format!("line is {} bytes, over 256 KB", line.len()));
    }
    if line.contains('\n') {
        problems.push("line contains a newline".into());
    }
    let root = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return vec!["root is not an object".into()],
        Err(e) => return vec![format!("not JSON: {e}")],
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return vec!["no _aws object".into()];
    };
    if aws.get("Timestamp").is_none_or(|t| t.as_i64().is_none_or(|t| t < 0)) {
        problems.push("_aws.Timestamp is not a non-negative integer (epoch ms)".into());
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        problems.push("_aws.CloudWatchMetrics is not an array".into());
        return problems;
    };
    if directives.is_empty() {
        problems.push("_aws.CloudWatchMetrics is empty".into());
    }
    for d in directives {
        let ns = d.get("Namespace").and_then(Value::as_str).unwrap_or_default();
        if ns.is_empty() || ns.len() > 255 {
            problems.push(format!("namespace {ns:?} is not 1-255 characters"));
        }
        check_dimensions(&root, d, &mut problems);
        check_metrics(&root, d, &mut problems);
    }
    problems
}

/// A directive's dimension sets: arrays of at most 30 keys naming string members of the
/// root.
fn check_dimensions(root: &serde_json::Map<String, Value>, directive: &Value, problems: &mut Vec<String>) {
    let Some(sets) = directive.get("Dimensions").and_then(Value::as_array) else {
        problems.push("Dimensions is not an array".into());
        return;
    };
    for set in sets {
        let Some(keys) = set.as_array() else {
            problems.push("a dimension set is not an array".into());
            continue;
        };
        if keys.len() > 30 {
            problems.push("a dimension set has more than 30 keys".into());
        }
        for k in keys {
            let k = k.as_str().unwrap_or_default();
            if !root.get(k).is_some_and(Value::is_string) {
                problems.push(format!("dimension {k:?} is not a string member of the root"));
            }
        }
    }
}

/// A directive's metric definitions: at most 100, each with a 1-255 character name, a
/// CloudWatch unit if any, and a numeric member of the root (or at most 100 numbers).
fn check_metrics(root: &serde_json::Map<String, Value>, directive: &Value, problems: &mut Vec<String>) {
    let Some(metrics) = directive.get("Metrics").and_then(Value::as_array) else {
        problems.push("Metrics is not an array".into());
        return;
    };
    if metrics.len() > MAX_METRICS_PER_LINE {
        problems.push(format!("{} metric definitions, over 100", metrics.len()));
    }
    for m in metrics {
        let name = m.get("Name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() || name.len() > 255 {
            problems.push(format!("metric name {name:?} is not 1-255 characters"));
        }
        if let Some(unit) = m.get("Unit")
            && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
        {
            problems.push(format!("metric {name}: unit {unit} is not a CloudWatch unit"));
        }
        match root.get(name) {
            Some(Value::Number(_)) => {}
            Some(Value::Array(xs)) if xs.len() <= MAX_VALUES_PER_METRIC && xs.iter().all(Value::is_number) => {}
            Some(Value::Array(xs)) => {
                problems.push(format!("metric {name}: {} values or not all numbers", xs.len()));
            }
            _ => problems.push(format!("metric {name} has no numeric member in the root")),
        }
    }
}

#[cfg(test)]
mod tests;
