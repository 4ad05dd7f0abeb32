//! The test environment for Lifeboat's integration tests and demo: it starts (or reuses)
//! the local AWS stack (moto + the Lambda bridge + `cargo lambda watch`, see
//! `infra/local/`) and gives each test its own catalog table, alert topic and queue, and
//! policy tag key, so tests run in parallel and never see each other's resources.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region as SdkRegion, SdkConfig};
use aws_sdk_rds::types::Tag as RdsTag;
use lifeboat::app::Ports;
use lifeboat::config::Config;
use lifeboat_aws::{DynamoDbCatalog, RdsSnapshotStore, SnsNotifier};
use lifeboat_domain::{Alert, Policy};
use lifeboat_ports::{Catalog, SystemClock};
use serde_json::Value;
use tokio::sync::OnceCell;

pub mod api;
pub mod cli;
pub mod dr;
pub mod proof;
pub mod s3;

pub const PRIMARY: &str = "us-east-1";
pub const DR: &str = "us-west-2";
/// The local deployment's names (infra/local/functions.env), used by the real binaries.
pub const LOCAL_TABLE: &str = "lifeboat-catalog";
pub const LOCAL_TOPIC: &str = "lifeboat-alerts";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, BoxError>;

fn err(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}

/// The checkout this process works on, found at run time: builds share a target directory
/// across clones (CI reuses it), so a path baked in at compile time may name another clone.
/// `LIFEBOAT_REPO` if set, else the `CARGO_MANIFEST_DIR` cargo gives test processes, else
/// the current directory (`make demo` runs from the root).
pub fn repo_root() -> PathBuf {
    let is_repo = |p: &PathBuf| p.join("infra/local/stack.py").is_file();
    let candidates = [
        std::env::var_os("LIFEBOAT_REPO").map(PathBuf::from),
        std::env::var_os("CARGO_MANIFEST_DIR").map(|d| PathBuf::from(d).join("..")),
        std::env::current_dir().ok(),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(is_repo)
        .unwrap_or_else(lifeboat_testkit::repo_root)
}

pub fn moto_port() -> u16 {
    std::env::var("LIFEBOAT_MOTO_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5077)
}

pub fn endpoint() -> String {
    format!("http://127.0.0.1:{}", moto_port())
}

static STACK: OnceCell<()> = OnceCell::const_new();

/// Starts the local stack unless a healthy one is running (once per process).
pub async fn ensure_stack() -> Result<()> {
    STACK
        .get_or_try_init(|| async {
            let root = repo_root();
            let python = root.join(".venv/bin/python");
            if !python.exists() {
                return Err(err(
                    "the project venv is missing: run `make venv` (or `make test`, which does it)",
                ));
            }
            let venv_bin = root.join(".venv/bin");
            let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
            let out = tokio::task::spawn_blocking(move || {
                Command::new(python)
                    .arg(root.join("infra/local/stack.py"))
                    .arg("up")
                    .env("PATH", path)
                    .output()
            })
            .await??;
            if !out.status.success() {
                return Err(err(format!(
                    "`stack.py up` failed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// SDK configuration for the emulator in `region`.
pub async fn sdk(region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(lifeboat_aws::http_client())
        .endpoint_url(endpoint())
        .region(SdkRegion::new(region.to_owned()))
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "lifeboat-tests",
        ))
        .retry_config(lifeboat_aws::retry_config())
        .load()
        .await
}

/// One test's world: its own table, topic, queue and tag key on the shared stack.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// Unique per test: prefixes every resource name.
    pub prefix: String,
    pub tag_key: String,
    pub table: String,
    pub topic_arn: String,
    pub queue_url: String,
    pub primary: SdkConfig,
    pub dr: SdkConfig,
}

impl TestEnv {
    /// A fresh environment on the (started or reused) local stack.
    pub async fn start() -> Result<Self> {
        ensure_stack().await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("t{}", &id[..8]);
        Self::with_names(
            &prefix,
            &format!("lifeboat:policy:{prefix}"),
            &format!("{prefix}-catalog"),
            &format!("{prefix}-alerts"),
        )
        .await
    }

    /// The local deployment the real function binaries use (fixed names).
    pub async fn local_deployment() -> Result<Self> {
        ensure_stack().await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self::with_names(
            &format!("t{}", &id[..8]),
            lifeboat::config::DEFAULT_POLICY_TAG_KEY,
            LOCAL_TABLE,
            LOCAL_TOPIC,
        )
        .await
    }

    async fn with_names(prefix: &str, tag_key: &str, table: &str, topic: &str) -> Result<Self> {
        let primary = sdk(PRIMARY).await;
        let dr = sdk(DR).await;
        DynamoDbCatalog::new(aws_sdk_dynamodb::Client::new(&primary), table)
            .ensure_table()
            .await?;
        let sns = aws_sdk_sns::Client::new(&primary);
        let topic_arn = sns
            .create_topic()
            .name(topic)
            .send()
            .await?
            .topic_arn()
            .ok_or_else(|| err("no topic ARN"))?
            .to_owned();
        let sqs = aws_sdk_sqs::Client::new(&primary);
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{prefix}-alerts-q"))
            .send()
            .await?
            .queue_url()
            .ok_or_else(|| err("no queue URL"))?
            .to_owned();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?;
        let queue_arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .ok_or_else(|| err("no queue ARN"))?
            .clone();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await?;
        Ok(Self {
            prefix: prefix.to_owned(),
            tag_key: tag_key.to_owned(),
            table: table.to_owned(),
            topic_arn,
            queue_url,
            primary,
            dr,
        })
    }

    /// Lifeboat configuration pointing at this environment.
    pub fn config(&self, dr_kms_keys: &str) -> Config {
        let (table, topic, tag, keys) = (
            self.table.clone(),
            self.topic_arn.clone(),
            self.tag_key.clone(),
            dr_kms_keys.to_owned(),
        );
        Config::from_lookup(move |k| match k {
            "CATALOG_TABLE_NAME" => Some(table.clone()),
            "ALERTS_TOPIC_ARN" => Some(topic.clone()),
            "PRIMARY_REGION" => Some(PRIMARY.to_owned()),
            "BACKUP_REGION" => Some(DR.to_owned()),
            "POLICY_TAG_KEY" => Some(tag.clone()),
            "DR_KMS_KEYS" => Some(keys.clone()),
            _ => None,
        })
        .map_or_else(|e| panic!("test configuration: {e}"), simulated_time)
    }

    /// The real AWS adapters, against the emulator.
    pub fn ports(&self) -> Ports {
        Ports {
            snapshots: Arc::new(lifeboat::routing::RoutedSnapshots {
                databases: Arc::new(RdsSnapshotStore::new(self.primary.clone())),
                tables: Arc::new(lifeboat_aws::DynamoDbTableSnapshots::new(self.primary.clone())),
            }),
            catalog: Arc::new(self.catalog()),
            notifier: Arc::new(SnsNotifier::new(
                aws_sdk_sns::Client::new(&self.primary),
                &self.topic_arn,
            )),
            clock: Arc::new(SystemClock),
            backup: Arc::new(lifeboat_aws::AwsBackupService::new(aws_sdk_backup::Client::new(
                &self.primary,
            ))),
            alert_window: None,
        }
    }

    pub fn catalog(&self) -> DynamoDbCatalog {
        DynamoDbCatalog::new(aws_sdk_dynamodb::Client::new(&self.primary), &self.table)
    }

    /// An RDS client for any region of the emulator.
    pub fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::from_conf(
            aws_sdk_rds::config::Builder::from(&self.primary)
                .region(SdkRegion::new(region.to_owned()))
                .build(),
        )
    }

    /// `<prefix>-<name>`: a resource name unique to this test.
    pub fn name(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Stores a policy (JSON document) in this environment's catalog; `{name}` in the
    /// document's name is replaced by the test prefix so policies never collide.
    pub async fn put_policy(&self, json: &str) -> Result<Policy> {
        let policy = Policy::from_json(&json.replace("{prefix}", &self.prefix)).map_err(|e| err(e.to_string()))?;
        self.catalog().put_policy(&policy).await?;
        Ok(policy)
    }

    fn tags(&self, policy: &str) -> Vec<RdsTag> {
        vec![
            RdsTag::builder().key(&self.tag_key).value(policy).build(),
            RdsTag::builder().key("env").value("test").build(),
        ]
    }

    /// A PostgreSQL DB instance in the primary region, tagged with `policy`.
    pub async fn create_instance(&self, id: &str, policy: &str) -> Result<String> {
        let out = self
            .rds(PRIMARY)
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t4g.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("lifeboat")
            .master_user_password(format!("pw-{}", uuid::Uuid::new_v4().simple()))
            .set_tags(Some(self.tags(policy)))
            .send()
            .await?;
        let arn = out
            .db_instance()
            .and_then(|i| i.db_instance_arn())
            .ok_or_else(|| err("no instance ARN"))?
            .to_owned();
        self.wait_instance_available(PRIMARY, id).await?;
        Ok(arn)
    }

    /// Waits until the DB instance `id` in `region` is `available` (the local stack, like
    /// AWS, creates and restores instances over time).
    pub async fn wait_instance_available(&self, region: &str, id: &str) -> Result<()> {
        let rds = &self.rds(region);
        wait_for(&format!("DB instance {id} available"), move || async move {
            let out = rds.describe_db_instances().db_instance_identifier(id).send().await?;
            Ok(out.db_instances().first().and_then(|i| i.db_instance_status()) == Some("available"))
        })
        .await
    }

    /// Waits until the DB snapshot `name` in `region` is `available` (snapshots and copies
    /// take time on the local stack, as on AWS).
    pub async fn wait_snapshot_available(&self, region: &str, name: &str) -> Result<()> {
        let rds = &self.rds(region);
        wait_for(&format!("DB snapshot {name} available"), move || async move {
            let out = rds.describe_db_snapshots().db_snapshot_identifier(name).send().await?;
            Ok(out.db_snapshots().first().and_then(|s| s.status()) == Some("available"))
        })
        .await
    }

    /// Waits until the DB cluster snapshot `name` in `region` is `available`.
    pub async fn wait_cluster_snapshot_available(&self, region: &str, name: &str) -> Result<()> {
        let rds = &self.rds(region);
        wait_for(&format!("DB cluster snapshot {name} available"), move || async move {
            let out = rds
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(name)
                .send()
                .await?;
            Ok(out.db_cluster_snapshots().first().and_then(|s| s.status()) == Some("available"))
        })
        .await
    }

    /// Waits until the DB cluster `id` in `region` is `available`.
    pub async fn wait_cluster_available(&self, region: &str, id: &str) -> Result<()> {
        let rds = &self.rds(region);
        wait_for(&format!("DB cluster {id} available"), move || async move {
            let out = rds.describe_db_clusters().db_cluster_identifier(id).send().await?;
            Ok(out.db_clusters().first().and_then(|c| c.status()) == Some("available"))
        })
        .await
    }

    /// An Aurora PostgreSQL cluster (with one member instance) tagged with `policy`.
    pub async fn create_cluster(&self, id: &str, policy: &str) -> Result<String> {
        let rds = self.rds(PRIMARY);
        let out = rds
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("lifeboat")
            .master_user_password(format!("pw-{}", uuid::Uuid::new_v4().simple()))
            .set_tags(Some(self.tags(policy)))
            .send()
            .await?;
        // A member instance carries the tag too, as in real estates: Lifeboat must protect
        // it through its cluster, not snapshot it on its own.
        rds.create_db_instance()
            .db_instance_identifier(format!("{id}-1"))
            .db_cluster_identifier(id)
            .db_instance_class("db.r6g.large")
            .engine("aurora-postgresql")
            .set_tags(Some(self.tags(policy)))
            .send()
            .await?;
        self.wait_cluster_available(PRIMARY, id).await?;
        self.wait_instance_available(PRIMARY, &format!("{id}-1")).await?;
        Ok(out
            .db_cluster()
            .and_then(|c| c.db_cluster_arn())
            .ok_or_else(|| err("no cluster ARN"))?
            .to_owned())
    }

    /// A KMS key in `region`, returned as its ARN.
    pub async fn create_kms_key(&self, region: &str) -> Result<String> {
        let conf = if region == DR { &self.dr } else { &self.primary };
        let out = aws_sdk_kms::Client::new(conf)
            .create_key()
            .description(format!("{} DR copies", self.prefix))
            .send()
            .await?;
        Ok(out
            .key_metadata()
            .and_then(|m| m.arn())
            .ok_or_else(|| err("no key ARN"))?
            .to_owned())
    }

    /// Alerts delivered to this environment's queue so far (waits briefly for stragglers).
    pub async fn alerts(&self) -> Result<Vec<ReceivedAlert>> {
        let sqs = aws_sdk_sqs::Client::new(&self.primary);
        let mut out = Vec::new();
        for _ in 0..5 {
            let got = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await?;
            let messages = got.messages();
            if messages.is_empty() {
                if !out.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            for m in messages {
                let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}"))?;
                let alert: Alert = serde_json::from_str(envelope["Message"].as_str().unwrap_or("{}"))?;
                let attr = |k: &str| envelope["MessageAttributes"][k]["Value"].as_str().map(str::to_owned);
                out.push(ReceivedAlert {
                    severity: attr("severity"),
                    event_type: attr("event_type"),
                    resource: attr("resource"),
                    alert,
                });
                if let Some(h) = m.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(h)
                        .send()
                        .await?;
                }
            }
        }
        Ok(out)
    }

    /// Invokes a real function binary through the bridge (moto → cargo-lambda), as Step
    /// Functions and the schedules do. Returns (function error, payload).
    pub async fn invoke(&self, function: &str, payload: &str) -> Result<(Option<String>, Value)> {
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&self.primary)
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_timeout(Duration::from_mins(15))
                        .build(),
                )
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .build(),
        );
        let out = lambda
            .invoke()
            .function_name(function)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.as_bytes()))
            .send()
            .await?;
        let body = out.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)?
        };
        Ok((out.function_error().map(str::to_owned), value))
    }
}

/// How long [`wait_for`] waits: AWS-like transitions on the strict local stack take seconds
/// (`LIFEBOAT_STRICT_*`), a loaded machine more.
pub const WAIT_LIMIT: Duration = Duration::from_mins(2);

/// Polls `check` every 250 ms until it is true; an error after [`WAIT_LIMIT`].
pub async fn wait_for<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if started.elapsed() > WAIT_LIMIT {
            return Err(err(format!("gave up waiting for {what} after {WAIT_LIMIT:?}")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the tracker (`deps`, tick `at`) until every point in `ids` has `status`: snapshots
/// and copies take time on the local stack, as on AWS, and the tracker is what records that
/// they are done. Returns the tracker's reports.
pub async fn track_until(
    env: &TestEnv,
    deps: &track_recovery_points::Deps,
    at: &str,
    ids: &[lifeboat_domain::RecoveryPointId],
    status: lifeboat_domain::Status,
) -> Result<Vec<track_recovery_points::Report>> {
    let started = std::time::Instant::now();
    let mut reports = Vec::new();
    loop {
        let run = format!("track-until-{}", reports.len());
        reports.push(track_recovery_points::handle(deps, crate::tick_event(at, &run)).await?);
        let mut all = true;
        for id in ids {
            let now = env.catalog().get(id).await?.map(|p| p.status);
            // A point with nothing to copy goes on from available to copied at once.
            all &= now == Some(status)
                || (status == lifeboat_domain::Status::Available && now == Some(lifeboat_domain::Status::Copied));
        }
        if all {
            return Ok(reports);
        }
        if started.elapsed() > WAIT_LIMIT {
            return Err(err(format!("{ids:?} not all {status:?} after {WAIT_LIMIT:?}")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// An alert as a subscriber sees it: the message plus its filterable attributes.
#[derive(Debug, Clone)]
pub struct ReceivedAlert {
    pub severity: Option<String>,
    pub event_type: Option<String>,
    pub resource: Option<String>,
    pub alert: Alert,
}

/// How far from the clock the stack tests' functions accept an event's time: a century
/// either way. The tests replay schedules across simulated days and months (a tick dated
/// 2026-11-23, a retention month ahead), so the functions they configure take those ticks;
/// the default bounds themselves are tested by each function's behaviour tests and, on the
/// local deployment's configuration, by the stale and future samples.
pub const SIMULATED_TIME: lifeboat_domain::event_time::EventTimeBounds = lifeboat_domain::event_time::EventTimeBounds {
    max_skew: std::time::Duration::from_hours(100 * 365 * 24),
    max_age: std::time::Duration::from_hours(100 * 365 * 24),
};

/// `config` accepting the simulated times of the stack tests ([`SIMULATED_TIME`]).
pub fn simulated_time(mut config: Config) -> Config {
    config.event_time = SIMULATED_TIME;
    config
}

/// `request` as the event its trigger sends (the JSON the function parses), as Lambda hands
/// it to invocation `run_id`.
pub fn request_event(request: &impl serde::Serialize, run_id: &str) -> lambda_runtime::LambdaEvent<serde_json::Value> {
    let payload = serde_json::to_value(request).unwrap_or_else(|e| panic!("a test's request must serialize: {e}"));
    lifeboat_testkit::event_for(payload, run_id)
}

/// The event an EventBridge Scheduler schedule delivers for `at` (RFC 3339), as Lambda hands
/// it to invocation `run_id`: what a function's `handle` is given on the schedule.
pub fn tick_event(at: &str, run_id: &str) -> lambda_runtime::LambdaEvent<serde_json::Value> {
    lifeboat_testkit::event_for(serde_json::json!({ "scheduledTime": at }), run_id)
}
