//! S3 data protection on the local stack: buckets, adapters and function dependencies
//! for one test's world.

use std::sync::Arc;

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, VersioningConfiguration,
};
use lifeboat::object_store::settings::S3Settings;
use lifeboat_aws::s3::S3ObjectStore;
use lifeboat_ports::SystemClock;
use lifeboat_ports::objects::CopyTuning;

use crate::{DR, PRIMARY, Result, TestEnv};

/// An S3 client (path style, as the emulator needs) in `region`.
pub fn client(env: &TestEnv, region: &str) -> aws_sdk_s3::Client {
    let conf = if region == DR { &env.dr } else { &env.primary };
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(conf).force_path_style(true).build())
}

/// The adapter under test, in `region`.
pub fn store(env: &TestEnv, region: &str, tuning: CopyTuning) -> Arc<S3ObjectStore> {
    let conf = if region == DR { &env.dr } else { &env.primary };
    Arc::new(S3ObjectStore::from_sdk(conf, true, tuning))
}

/// A versioned source bucket in the primary region.
pub async fn source_bucket(env: &TestEnv, name: &str) -> Result<()> {
    let s3 = client(env, PRIMARY);
    s3.create_bucket().bucket(name).send().await?;
    s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// The backup bucket: in the DR region, versioned, with Object Lock enabled.
pub async fn backup_bucket(env: &TestEnv, name: &str) -> Result<()> {
    client(env, DR)
        .create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(DR))
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// A backup bucket several tests or runs share (the local deployment's, say): created
/// like [`backup_bucket`] unless it exists, also when another test creates it meanwhile.
pub async fn ensure_backup_bucket(env: &TestEnv, name: &str) -> Result<()> {
    let s3 = client(env, DR);
    if s3.head_bucket().bucket(name).send().await.is_ok() {
        return Ok(());
    }
    match backup_bucket(env, name).await {
        Ok(()) => Ok(()),
        Err(_) if s3.head_bucket().bucket(name).send().await.is_ok() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Settings of the S3 functions for this world.
pub fn settings(backup: &str, extra: &[(&str, &str)]) -> S3Settings {
    let mut pairs: Vec<(String, String)> = vec![
        ("BACKUP_BUCKET_NAME".into(), backup.into()),
        ("BACKUP_REGION".into(), DR.into()),
        ("SOURCE_REGION".into(), PRIMARY.into()),
        ("S3_FORCE_PATH_STYLE".into(), "true".into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut settings = S3Settings::from_lookup(move |k| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone()))
        .unwrap_or_else(|e| panic!("test settings: {e}"));
    // Runs dated on a simulated time line (see `SIMULATED_TIME`).
    settings.event_time = crate::SIMULATED_TIME;
    settings
}

/// `backup-objects` wired to the emulator.
pub fn backup_deps(env: &TestEnv, settings: S3Settings) -> backup_objects::Deps {
    backup_objects::Deps {
        catalog: Arc::new(env.catalog()),
        notifier: env.ports().notifier,
        clock: Arc::new(SystemClock),
        source: store(env, PRIMARY, settings.tuning),
        backup: store(env, DR, settings.tuning),
        changes: Arc::new(lifeboat_aws::sqs::SqsChangeFeed::new(aws_sdk_sqs::Client::new(
            &env.primary,
        ))),
        settings,
    }
}

/// `verify-backups` wired to the emulator.
pub fn verify_deps(env: &TestEnv) -> verify_backups::Deps {
    let ports = env.ports();
    verify_backups::Deps {
        catalog: ports.catalog,
        notifier: ports.notifier,
        clock: ports.clock,
        backup: store(env, DR, CopyTuning::default()),
    }
}

/// `restore-objects` wired to the emulator.
pub fn restore_deps(env: &TestEnv, settings: S3Settings) -> restore_objects::Deps {
    restore_objects::Deps {
        catalog: Arc::new(env.catalog()),
        target: store(env, PRIMARY, settings.tuning),
        backup: store(env, DR, settings.tuning),
        settings,
        confirmations: confirmations(env),
    }
}

/// The signing-key secret of the local deployment (`make up` creates it) and the catalog
/// table's audit trail, as restore-objects and backup-config have them deployed.
pub fn confirmations(env: &TestEnv) -> lifeboat::confirm::Confirmations {
    let dynamodb = aws_sdk_dynamodb::Client::new(&env.primary);
    lifeboat::confirm::Confirmations {
        keys: Arc::new(lifeboat_aws::keys::SecretSigningKeys::new(
            aws_sdk_secretsmanager::Client::new(&env.primary),
            Some(SIGNING_SECRET.to_owned()),
        )),
        catalog: Arc::new(env.catalog()),
        audit: Arc::new(lifeboat_aws::admin::DynamoDbAdminStore::new(dynamodb, &env.table)),
    }
}

/// The local deployment's confirmation-token signing key (infra/local/functions.env).
pub const SIGNING_SECRET: &str = "lifeboat/confirm-signing-key";

/// Puts `body` at `key` (a user's write, or one behind Lifeboat's back); returns the version id.
pub async fn put(env: &TestEnv, region: &str, bucket: &str, key: &str, body: &[u8]) -> Result<Option<String>> {
    let out = client(env, region)
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await?;
    Ok(out.version_id().map(str::to_owned))
}

/// The bytes of `key` (a given version, or the current one).
pub async fn get(env: &TestEnv, region: &str, bucket: &str, key: &str, version: Option<&str>) -> Result<Vec<u8>> {
    let out = client(env, region)
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await?;
    Ok(out.body.collect().await?.into_bytes().to_vec())
}

/// A change queue for `bucket`'s objects under `prefix`: an SQS queue in the source region
/// that the bucket's event notifications (created and removed objects) feed. Returns the
/// queue URL.
pub async fn change_queue(env: &TestEnv, bucket: &str, prefix: &str) -> Result<String> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
        QueueConfiguration, S3KeyFilter,
    };
    let sqs = aws_sdk_sqs::Client::new(&env.primary);
    let url = sqs
        .create_queue()
        .queue_name(format!("{bucket}-changes"))
        .send()
        .await?
        .queue_url()
        .ok_or_else(|| crate::err("no queue URL"))?
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .ok_or_else(|| crate::err("no queue ARN"))?
        .clone();
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(FilterRule::builder().name(FilterRuleName::Prefix).value(prefix).build())
                .build(),
        )
        .build();
    let queue = QueueConfiguration::builder()
        .queue_arn(arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .events(Event::from("s3:ObjectRemoved:*"))
        .filter(filter)
        .build()
        .map_err(|e| crate::err(e.to_string()))?;
    client(env, PRIMARY)
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(NotificationConfiguration::builder().queue_configurations(queue).build())
        .send()
        .await?;
    // S3 sends a test event when a notification is configured; Lifeboat ignores it.
    Ok(url)
}

/// Messages waiting (visible or not) in a queue.
pub async fn queue_depth(env: &TestEnv, url: &str) -> Result<u64> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = aws_sdk_sqs::Client::new(&env.primary)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    let n = |k: &A| {
        out.attributes()
            .and_then(|a| a.get(k))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(n(&A::ApproximateNumberOfMessages) + n(&A::ApproximateNumberOfMessagesNotVisible))
}

/// Data-set runs started in this process: a request create-snapshots queues goes to the
/// handler of `backup-objects` (or `backup-config`), wired to this world (its catalog and
/// buckets). The Lambda hop alone is left out; the demo takes it through the local stack's
/// bridge.
#[derive(Debug)]
pub struct InProcessRuns {
    pub objects: backup_objects::Deps,
    pub config: Option<backup_config::Deps>,
}

#[async_trait::async_trait]
impl lifeboat_ports::lambda::Invoker for InProcessRuns {
    async fn invoke(&self, function: &str, _: &[u8]) -> lifeboat_ports::PortResult<lifeboat_ports::lambda::Invocation> {
        Err(lifeboat_ports::PortError::Invalid(format!(
            "{function}: data-set runs are queued, not waited for"
        )))
    }

    async fn invoke_async(&self, function: &str, payload: &[u8]) -> lifeboat_ports::PortResult<()> {
        use lifeboat_ports::PortError;
        let event: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| PortError::Invalid(format!("payload: {e}")))?;
        let (objects, config) = (self.objects.clone(), self.config.clone());
        let name = function.to_owned();
        // On a runtime of its own, as a function's invocation runs in its own process.
        let ran = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let event = lifeboat_testkit::event(event);
            let outcome = match (name.as_str(), config) {
                ("backup-objects", _) => rt.block_on(backup_objects::handle(&objects, event)).map(drop),
                ("backup-config", Some(deps)) => rt.block_on(backup_config::handle(&deps, event)).map(drop),
                _ => return Err(std::io::Error::other(format!("no function {name} in this process"))),
            };
            outcome.map_err(|e| std::io::Error::other(format!("{name}: {e}")))
        })
        .await;
        match ran {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PortError::Unavailable(e.to_string())),
            Err(e) => Err(PortError::Unavailable(format!("{function} panicked: {e}"))),
        }
    }
}
