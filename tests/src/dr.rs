//! The DR state machine on the local stack: the real ASL (`infra/state-machines/dr.asl.json`)
//! created in moto's Step Functions engine, whose Lambda tasks reach the real `run-dr-step`
//! binary through the bridge. Used by `tests/tests/dr.rs`, the demo and the bench.

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, Utc};
use lifeboat_aws::dr_store::DynamoDbDrStore;
use lifeboat_domain::confirm::{self, SigningKey};
use lifeboat_domain::dr::DrPlan;
use lifeboat_domain::{RecoveryPoint, ResourceKind};
use lifeboat_ports::dr::DrStore;
use serde_json::Value;

use crate::{DR, PRIMARY, Result, TestEnv};

/// The local deployment's names (infra/local/functions.env).
pub const REPORTS_BUCKET: &str = "lifeboat-dr-reports";
/// The signing-key secret of the local deployment, shared by run-dr-step and admin-api.
pub const CONFIRM_SECRET: &str = "lifeboat/confirm-signing-key";
pub const STATE_MACHINE: &str = "lifeboat-dr";
pub const ACCOUNT: &str = "123456789012";

fn err(msg: impl Into<String>) -> crate::BoxError {
    msg.into().into()
}

/// One DR test world on the shared local deployment.
#[derive(Debug, Clone)]
pub struct DrEnv {
    pub env: TestEnv,
    pub sfn: aws_sdk_sfn::Client,
    pub state_machine_arn: String,
    pub key: Vec<u8>,
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub name: String,
    pub status: String,
    pub output: Value,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// Wall time from StartExecution to the end being observed.
    pub wall: Duration,
    /// Time spent in Wait states (from the execution history).
    pub waiting: Duration,
}

impl DrEnv {
    pub async fn start() -> Result<Self> {
        let env = TestEnv::local_deployment().await?;
        let sfn = aws_sdk_sfn::Client::new(&env.primary);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&env.primary)
                .force_path_style(true)
                .build(),
        );
        let _ = s3.create_bucket().bucket(REPORTS_BUCKET).send().await;
        let secrets = aws_sdk_secretsmanager::Client::new(&env.primary);
        if secrets
            .describe_secret()
            .secret_id(CONFIRM_SECRET)
            .send()
            .await
            .is_err()
        {
            let key = base64_encode(uuid::Uuid::new_v4().as_bytes().repeat(2).as_slice());
            let _ = secrets
                .create_secret()
                .name(CONFIRM_SECRET)
                .secret_string(key)
                .send()
                .await;
        }
        let key = lifeboat_aws::secrets::signing_key(&secrets, CONFIRM_SECRET).await?;
        let _ = key; // proves the secret is readable the way the function reads it
        let raw = secrets
            .get_secret_value()
            .secret_id(CONFIRM_SECRET)
            .send()
            .await?
            .secret_string()
            .map(str::to_owned)
            .ok_or_else(|| err("secret has no string"))?;
        let key = base64_decode(raw.trim()).ok_or_else(|| err("secret is not base64"))?;
        let state_machine_arn = ensure_state_machine(&sfn, &env.topic_arn).await?;
        Ok(Self {
            env,
            sfn,
            state_machine_arn,
            key,
        })
    }

    pub fn store(&self) -> DynamoDbDrStore {
        DynamoDbDrStore::new(aws_sdk_dynamodb::Client::new(&self.env.primary), &self.env.table)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.env.primary)
                .force_path_style(true)
                .build(),
        )
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.env.primary)
    }

    /// A PostgreSQL instance in the primary region with 7 days of automated backups
    /// (a PITR window), returning its ARN.
    pub async fn source_instance(&self, id: &str) -> Result<String> {
        let out = self
            .env
            .rds(PRIMARY)
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t4g.micro")
            .engine("postgres")
            .allocated_storage(20)
            .backup_retention_period(7)
            .master_username("lifeboat")
            .master_user_password(format!("pw-{}", uuid::Uuid::new_v4().simple()))
            .send()
            .await?;
        self.env.wait_instance_available(PRIMARY, id).await?;
        out.db_instance()
            .and_then(|i| i.db_instance_arn())
            .map(str::to_owned)
            .ok_or_else(|| err("no instance ARN"))
    }

    /// An Aurora PostgreSQL cluster in the primary region (untagged: no backup policy
    /// picks it up), returning its ARN.
    pub async fn source_cluster(&self, id: &str) -> Result<String> {
        let out = self
            .env
            .rds(PRIMARY)
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("lifeboat")
            .master_user_password(format!("pw-{}", uuid::Uuid::new_v4().simple()))
            .send()
            .await?;
        // An Aurora cluster serves through its instances: its writer, as in production.
        self.env
            .rds(PRIMARY)
            .create_db_instance()
            .db_instance_identifier(format!("{id}-writer"))
            .db_cluster_identifier(id)
            .db_instance_class("db.r6g.large")
            .engine("aurora-postgresql")
            .send()
            .await?;
        self.env
            .wait_instance_available(PRIMARY, &format!("{id}-writer"))
            .await?;
        self.env.wait_cluster_available(PRIMARY, id).await?;
        out.db_cluster()
            .and_then(|c| c.db_cluster_arn())
            .map(str::to_owned)
            .ok_or_else(|| err("no cluster ARN"))
    }

    /// A DR copy of each database (`(kind, id, arn)`), made and proven the way production
    /// does: the databases are tagged with a policy copying to the DR region, create-snapshots
    /// backs them up on request, copy-snapshots copies, the tracker records, and test-restores
    /// proves each copy by restoring it. Returns the copies' recovery points, in order.
    pub async fn proven_dr_copies(&self, databases: &[(ResourceKind, &str, &str)]) -> Result<Vec<RecoveryPoint>> {
        let key = self.env.create_kms_key(DR).await?;
        let policy = self
            .env
            .put_policy(&format!(
                r#"{{"name":"{{prefix}}-proof","every":"1h","rpo":"2h","retain":24,"copies":[{{"region":"{DR}","kms_key_id":"{key}"}}]}}"#
            ))
            .await?;
        let rds = self.env.rds(PRIMARY);
        for (_, _, arn) in databases {
            rds.add_tags_to_resource()
                .resource_name(*arn)
                .tags(
                    aws_sdk_rds::types::Tag::builder()
                        .key(&self.env.tag_key)
                        .value(policy.name.as_str())
                        .build(),
                )
                .send()
                .await?;
        }
        let arns: Vec<String> = databases.iter().map(|(_, _, arn)| (*arn).to_owned()).collect();
        let sources = crate::proof::back_up(&self.env, &self.env.config(""), &arns).await?;
        let mut copies = Vec::new();
        for source in &sources {
            copies.push(crate::proof::copy_of(&self.env, source, DR).await?);
        }
        let proven = crate::proof::prove(&self.env, &copies).await?;
        let mut points = Vec::new();
        for (kind, id, _) in databases {
            let point = proven
                .iter()
                .find(|p| p.resource.kind == *kind && p.resource.id == *id)
                .ok_or_else(|| err(format!("no DR copy of {id}")))?;
            if point.verified_at.is_none() {
                return Err(err(format!(
                    "the restore test of {} failed: {:?}",
                    point.id,
                    point.restore_test()
                )));
            }
            points.push(point.clone());
        }
        Ok(points)
    }

    /// [`Self::proven_dr_copies`] of one database; returns its copy's snapshot name.
    pub async fn proven_dr_copy(&self, kind: ResourceKind, id: &str, arn: &str) -> Result<String> {
        let mut points = self.proven_dr_copies(&[(kind, id, arn)]).await?;
        points.pop().map(|p| p.snapshot_name).ok_or_else(|| err("no copy"))
    }

    /// Stores a plan (JSON; `{prefix}` is replaced by the test's prefix).
    pub async fn put_plan(&self, json: &str) -> Result<DrPlan> {
        let plan = DrPlan::from_json(&json.replace("{prefix}", &self.env.prefix)).map_err(|e| err(e.to_string()))?;
        self.store().put_plan(&plan).await?;
        Ok(plan)
    }

    /// A confirmation token for the stored plan `plan` (its content as stored now) and
    /// `mode`, issued to `principal`.
    pub async fn token(&self, plan: &str, mode: &str, principal: &str) -> Result<String> {
        let key = SigningKey::new(self.key.clone()).map_err(|e| err(e.to_string()))?;
        let stored = self
            .store()
            .get_plan(plan)
            .await?
            .ok_or_else(|| err(format!("no plan {plan}")))?
            .map_err(|e| err(e.to_string()))?;
        let digest = confirm::dr_request_digest(&stored, mode).map_err(|e| err(e.to_string()))?;
        let nonce = uuid::Uuid::new_v4().to_string();
        let (token, _) = confirm::issue(
            &key,
            &digest,
            principal,
            Utc::now(),
            chrono::Duration::minutes(5),
            &nonce,
        )
        .map_err(|e| err(e.to_string()))?;
        Ok(token)
    }

    /// Starts an execution named `name` with `input` (plus `execution: name`).
    pub async fn start_execution(&self, name: &str, mut input: Value) -> Result<String> {
        input["execution"] = Value::String(name.to_owned());
        let out = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await?;
        Ok(out.execution_arn().to_owned())
    }

    /// Waits for an execution to end (at most `limit`).
    pub async fn wait(&self, arn: &str, started: Instant, limit: Duration) -> Result<Finished> {
        loop {
            let d = self.sfn.describe_execution().execution_arn(arn).send().await?;
            if *d.status() != ExecutionStatus::Running {
                let wall = started.elapsed();
                let waiting = self.time_in_waits(arn).await.unwrap_or_default();
                return Ok(Finished {
                    name: d.name().unwrap_or_default().to_owned(),
                    status: d.status().as_str().to_owned(),
                    output: d
                        .output()
                        .and_then(|o| serde_json::from_str(o).ok())
                        .unwrap_or(Value::Null),
                    error: d.error().map(str::to_owned),
                    cause: d.cause().map(str::to_owned),
                    wall,
                    waiting,
                });
            }
            if started.elapsed() > limit {
                return Err(err(format!("execution {arn} still running after {limit:?}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts and waits.
    pub async fn run(&self, name: &str, input: Value) -> Result<Finished> {
        let started = Instant::now();
        let arn = self.start_execution(name, input).await?;
        self.wait(&arn, started, Duration::from_mins(3)).await
    }

    /// The summed time of the Wait states of an execution.
    pub async fn time_in_waits(&self, arn: &str) -> Result<Duration> {
        let history = self
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .send()
            .await?;
        let mut total = Duration::ZERO;
        let mut entered: Option<DateTime<Utc>> = None;
        for e in history.events() {
            let at = lifeboat_time(e.timestamp());
            match e.r#type().as_str() {
                "WaitStateEntered" => entered = at,
                "WaitStateExited" => {
                    if let (Some(a), Some(b)) = (entered.take(), at) {
                        total += (b - a).to_std().unwrap_or_default();
                    }
                }
                _ => {}
            }
        }
        Ok(total)
    }

    /// The report the execution wrote to S3.
    pub async fn report(&self, plan: &str, execution: &str) -> Result<Value> {
        let out = self
            .s3()
            .get_object()
            .bucket(REPORTS_BUCKET)
            .key(format!("dr-reports/{plan}/{execution}.json"))
            .send()
            .await?;
        let bytes = out.body.collect().await?.into_bytes();
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// DB instances and clusters whose identifier starts with `prefix`, in `region`.
    pub async fn databases_named(&self, region: &str, prefix: &str) -> Result<Vec<String>> {
        let rds = self.env.rds(region);
        let mut names: Vec<String> = rds
            .describe_db_instances()
            .send()
            .await?
            .db_instances()
            .iter()
            .filter_map(|i| i.db_instance_identifier())
            .filter(|n| n.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        names.extend(
            rds.describe_db_clusters()
                .send()
                .await?
                .db_clusters()
                .iter()
                .filter_map(|c| c.db_cluster_identifier())
                .filter(|n| n.starts_with(prefix))
                .map(str::to_owned),
        );
        Ok(names)
    }
}

fn lifeboat_time(t: &aws_sdk_sfn::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Creates the DR state machine from the repository's ASL (or finds it).
pub async fn ensure_state_machine(sfn: &aws_sdk_sfn::Client, topic_arn: &str) -> Result<String> {
    let listed = sfn.list_state_machines().send().await?;
    if let Some(m) = listed.state_machines().iter().find(|m| m.name() == STATE_MACHINE) {
        return Ok(m.state_machine_arn().to_owned());
    }
    let definition = definition(topic_arn)?;
    match sfn
        .create_state_machine()
        .name(STATE_MACHINE)
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/lifeboat-dr"))
        .send()
        .await
    {
        Ok(out) => Ok(out.state_machine_arn().to_owned()),
        Err(e) => {
            // Created concurrently by another test.
            let listed = sfn.list_state_machines().send().await?;
            listed
                .state_machines()
                .iter()
                .find(|m| m.name() == STATE_MACHINE)
                .map(|m| m.state_machine_arn().to_owned())
                .ok_or_else(|| err(format!("CreateStateMachine: {e}")))
        }
    }
}

/// The ASL with the template's substitutions for the local deployment.
pub fn definition(topic_arn: &str) -> Result<String> {
    let raw = std::fs::read_to_string(crate::repo_root().join("infra/state-machines/dr.asl.json"))?;
    Ok(raw
        .replace(
            "${RunDrStepFunctionArn}",
            &format!("arn:aws:lambda:{PRIMARY}:{ACCOUNT}:function:run-dr-step"),
        )
        .replace("${AlertsTopicArn}", topic_arn))
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}
