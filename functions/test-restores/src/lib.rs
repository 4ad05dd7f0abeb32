//! `test-restores`: proves database recovery points by restoring them.
//!
//! Each run (every 15 minutes by schedule) moves every restore test in flight one step on
//! and then starts the tests that are due, within the bounds of its configuration:
//!
//! 1. **Start** (by each policy's `restore_tests` rule, see
//!    [`lifeboat_domain::restore_test`]): the newest restorable snapshot of each RDS
//!    instance and Aurora cluster in each covered location, when none of that database
//!    there was tested within `every`. The test is recorded on the recovery point first
//!    (write-ahead), then the snapshot is restored into `lbrt-<hash>` on the region's
//!    isolated network (the policy's, else the deployment's; a region with neither is
//!    refused and alerted), never publicly accessible, in the smallest class the engine
//!    allows, tagged `lifeboat:restore-test=<recovery point>`. At most `maxConcurrent`
//!    tests run at once, and none starts once the instance time of the last 24 hours has
//!    reached the daily budget.
//! 2. **Wait** until the database is available (an Aurora cluster gets its writer
//!    instance, `<target>-w`, once the cluster is); a restore RDS reports failed, or one
//!    not available within the timeout, fails the test.
//! 3. **Judge**: engine, version, storage, encryption key and the snapshot's tags are
//!    compared; then the policy's validation Lambda gets the endpoint. The verdict, the
//!    checks and the restore's duration (the RTO evidence) are recorded on the recovery
//!    point, which is verified when everything passed (and unverified, with one alert,
//!    when not).
//! 4. **Tear down**: the test database is read again and deleted without a final snapshot
//!    (it is a copy of a copy) only if its name and tag say this test made it; anything
//!    else is left alone and noted.
//!
//! Every step is written before it is taken, so a crashed run is continued by the next,
//! and a replayed event finds the work already recorded.

mod advance;
mod settings;
mod start;

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::alerting::Alerter;
use lifeboat::app::{RunLog, load_policies};
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::{Metric, Metrics, MetricsSink, StdoutSink};
use lifeboat_domain::restore_test::{RestoreTest, is_tested};
use lifeboat_domain::{Alert, AlertKind, RecoveryPoint, RecoveryPointId, Severity, Status};
use lifeboat_ports::Tag;
use lifeboat_ports::dr::DrDatabases;
use lifeboat_ports::lambda::Invoker;
use lifeboat_ports::{Catalog, Clock, Notifier};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use settings::Settings;

pub const FUNCTION: &str = "test-restores";

#[derive(Clone)]
pub struct Deps {
    pub catalog: Arc<dyn Catalog>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// RDS in every region: restore, describe, delete the test databases.
    pub databases: Arc<dyn DrDatabases>,
    /// The policies' validation Lambdas.
    pub validator: Arc<dyn Invoker>,
    pub settings: Settings,
    pub alert_window: Option<chrono::Duration>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Deps {
    fn alerter(&self) -> Alerter {
        Alerter::new(self.catalog.clone(), self.notifier.clone(), self.clock.clone()).with_window(self.alert_window)
    }
}

/// What a run is asked to do: `{}` (the schedule: move tests in flight on, then start
/// every test that is due), `{"recoveryPoint": "<id>"}` (also test that recovery point now,
/// due or not, still within the concurrency and budget bounds), or `{"mode": "advance"}`
/// (only move the tests in flight on: start nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Due,
    One(RecoveryPointId),
    Advance,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Due,
    Advance,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TestRequest {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    recovery_point: Option<String>,
}

impl Work {
    /// Scheduler events carry the schedule's input as the payload; EventBridge rule events
    /// (`"detail-type": "Scheduled Event"`) are accepted too, as a scheduled run.
    pub fn parse(payload: &Value) -> Result<Self, FunctionError> {
        if payload.get("detail-type").is_some() {
            return Ok(Self::Due);
        }
        if !payload.is_object() {
            return Err(FunctionError::invalid("expected a restore-test request object"));
        }
        let req: TestRequest = serde_json::from_value(payload.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed restore-test request: {e}")))?;
        match (req.mode, req.recovery_point) {
            (Mode::Due, None) => Ok(Self::Due),
            (Mode::Due, Some(id)) => RecoveryPointId::parse(&id)
                .map(Self::One)
                .map_err(|e| FunctionError::invalid(e.to_string())),
            (Mode::Advance, None) => Ok(Self::Advance),
            (Mode::Advance, Some(_)) => Err(FunctionError::invalid(
                "mode advance starts no test: leave \"recoveryPoint\" out",
            )),
        }
    }
}

/// One recovery point's test, as this run left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tested {
    pub recovery_point: RecoveryPointId,
    pub target: String,
    /// `restoring`, `passed`, `failed`, `torn-down`, ….
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_secs: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub run_id: String,
    pub started: Vec<Tested>,
    pub advanced: Vec<Tested>,
    pub passed: u64,
    pub failed: u64,
    pub torn_down: u64,
    /// Due, but not started: the concurrency bound, the daily budget, or no network.
    pub deferred: Vec<String>,
    /// Instance time of restore tests in the last 24 hours, and the budget (seconds).
    pub used_secs: u64,
    pub budget_secs: u64,
    /// Tests that could not be moved on or started this time (`<recovery point>: <why>`);
    /// the others went on, and the next run tries these again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// test-restores as one invocation.
#[derive(Debug)]
pub struct TestRestores;

impl Function for TestRestores {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = Work;
    type Output = Report;

    fn now(deps: &Deps) -> chrono::DateTime<chrono::Utc> {
        deps.clock.now()
    }

    fn parse(_: &Deps, payload: &Value) -> Result<Self::Request, FunctionError> {
        Work::parse(payload)
    }

    async fn run(deps: &Deps, work: Work, invocation: &mut Invocation) -> Result<Report, FunctionError> {
        let log = invocation.run_log(FUNCTION, deps.clock.now());
        run(deps, &work, invocation.run_id(), log).await
    }

    fn record_metrics(_: &Deps, result: &Result<Report, FunctionError>, _: std::time::Duration, metrics: &mut Metrics) {
        if let Ok(report) = result {
            metrics.count(Metric::RestoreTestsPassed, report.passed);
            metrics.count(Metric::RestoreTestsFailed, report.failed);
            for t in report
                .advanced
                .iter()
                .filter(|t| t.outcome == "passed" || t.outcome == "failed")
            {
                if let Some(secs) = t.restore_secs {
                    metrics.sample(Metric::RestoreTestDuration, secs);
                }
            }
        }
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    handle_with(deps, event, &StdoutSink).await
}

/// [`handle`], writing the invocation's metrics to `sink`.
pub async fn handle_with(
    deps: &Deps,
    event: LambdaEvent<Value>,
    sink: &dyn MetricsSink,
) -> Result<Report, FunctionError> {
    invoke::<TestRestores>(deps, event, sink).await
}

/// The database recovery points the catalog holds that a test may concern.
async fn database_points(catalog: &dyn Catalog) -> Result<Vec<RecoveryPoint>, FunctionError> {
    let mut points = Vec::new();
    for status in [Status::Available, Status::Copying, Status::Copied, Status::Failed] {
        points.extend(
            catalog
                .by_status(status)
                .await?
                .into_iter()
                .filter(|p| is_tested(p.resource.kind)),
        );
    }
    Ok(points)
}

async fn run(deps: &Deps, work: &Work, run_id: &str, mut log: RunLog) -> Result<Report, FunctionError> {
    let now = deps.clock.now();
    let alerter = deps.alerter();
    let policies = load_policies(deps.catalog.as_ref(), &alerter, run_id, now).await?;
    let mut report = Report {
        run_id: run_id.to_owned(),
        budget_secs: deps.settings.daily_budget.as_secs(),
        ..Report::default()
    };
    // Tests in flight first: they free capacity and budget for new ones. One test's
    // failure never stops the others.
    let mut points = database_points(deps.catalog.as_ref()).await?;
    let mut moved = Vec::new();
    for p in points
        .iter()
        .filter(|p| p.restore_test().is_some_and(RestoreTest::in_flight))
    {
        let rule = policies.get(&p.policy).map(|pol| &pol.restore_tests);
        match advance::advance(deps, p, rule, &alerter, run_id).await {
            Ok(tested) => {
                log.action("advance", p.id.to_string(), tested.outcome.clone());
                match tested.outcome.as_str() {
                    "passed" => report.passed += 1,
                    "failed" => report.failed += 1,
                    "torn-down" => report.torn_down += 1,
                    _ => {}
                }
                report.advanced.push(tested);
            }
            Err(e) => report.errors.push(format!("{}: {}", p.id, e.message)),
        }
        moved.push(p.id.clone());
    }
    if *work != Work::Advance {
        let one = match work {
            Work::One(id) => Some(id),
            Work::Due | Work::Advance => None,
        };
        // The points moved on, as they are now (the rest are as listed).
        for fresh in deps.catalog.get_many(&moved).await? {
            if let Some(p) = points.iter_mut().find(|p| p.id == fresh.id) {
                *p = fresh;
            }
        }
        start::start_due(deps, &points, &policies, one, &alerter, run_id, &mut report).await?;
    }
    for t in &report.started {
        log.action("start", t.recovery_point.to_string(), t.outcome.clone());
    }
    log.count("started");
    log.finish(deps.catalog.as_ref(), deps.clock.now()).await;
    if !report.errors.is_empty() {
        return Err(FunctionError::retryable(format!(
            "{} restore test(s) could not go on; safe to retry: {}",
            report.errors.len(),
            report.errors.join("; ")
        )));
    }
    Ok(report)
}

/// The tags of a test database: what makes it recognisably Lifeboat's and this test's,
/// and the snapshot's own tags (which the test checks were carried over).
fn test_tags(point: &RecoveryPoint, snapshot_tags: &[(String, String)]) -> Vec<Tag> {
    let mut tags = vec![
        Tag::new(lifeboat_domain::restore_test::TAG_RESTORE_TEST, point.id.as_str()),
        Tag::new("lifeboat:created-by", "lifeboat"),
    ];
    tags.extend(snapshot_tags.iter().map(|(k, v)| Tag::new(k, v)));
    tags
}

/// Raises the test's failure alert, once per recovery point and test.
async fn alert_failure(alerter: &Alerter, point: &RecoveryPoint, test: &RestoreTest, run_id: &str) {
    let alert = Alert::new(
        AlertKind::RestoreTestFailed,
        Severity::High,
        format!(
            "restore test of {} failed: {}",
            point.id,
            test.problems.first().map_or("no detail", String::as_str)
        ),
        format!("restore-test/{}/{}", point.id, test.target),
        alerter_now(test),
    )
    .resource(point.resource.arn.clone())
    .recovery_point(&point.id)
    .location(&point.location)
    .detail("problems", test.problems.join("; "))
    .detail("test_database", test.target.clone());
    alerter.raise_or_log(alert, run_id).await;
}

fn alerter_now(test: &RestoreTest) -> chrono::DateTime<chrono::Utc> {
    test.finished_at.or(test.ready_at).unwrap_or(test.started_at)
}
