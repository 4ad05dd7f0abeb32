use std::sync::Arc;

use aws_config::SdkConfig;
use lambda_runtime::{Error, run, service_fn};
use lifeboat_aws::clients;
use lifeboat_aws::dr::{DynamoDbDrTables, RdsDrDatabases, Route53Records, S3Reports, SsmParameters};
use lifeboat_aws::dr_store::DynamoDbDrStore;
use lifeboat_aws::keys::{AwsKmsKeys, SecretSigningKeys};
use lifeboat_aws::lambda::LambdaInvoker;
use lifeboat_aws::s3::S3ObjectStore;
use lifeboat_aws::table_exports::TableExports;
use lifeboat_aws::{DynamoDbCatalog, RdsSnapshotStore, SnsNotifier};
use lifeboat_ports::objects::{CopyTuning, ObjectStore};
use run_dr_step::{Deps, DrConfig, handle};

/// The function's ports over AWS, from its configuration and the process's SDK
/// configuration.
fn deps(config: &DrConfig, sdk: &SdkConfig) -> Deps {
    let dynamodb = clients::dynamodb(sdk);
    Deps {
        catalog: Arc::new(DynamoDbCatalog::new(dynamodb.clone(), &config.catalog_table)),
        store: Arc::new(DynamoDbDrStore::new(dynamodb, &config.catalog_table)),
        snapshots: Arc::new(RdsSnapshotStore::new(sdk.clone())),
        databases: Arc::new(RdsDrDatabases::new(sdk.clone())),
        tables: Arc::new(match &config.table_export_bucket {
            Some(buckets) => DynamoDbDrTables::new(sdk.clone()).with_exports(TableExports::new(
                sdk.clone(),
                buckets.clone(),
                config.s3_force_path_style,
            )),
            None => DynamoDbDrTables::new(sdk.clone()),
        }),
        parameters: Arc::new(SsmParameters::new(sdk.clone())),
        dns: Arc::new(Route53Records::new(sdk)),
        reports: Arc::new(S3Reports::new(
            clients::s3(sdk, config.s3_force_path_style),
            &config.reports_bucket,
        )),
        keys: Arc::new(AwsKmsKeys::new(sdk.clone())),
        validator: Arc::new(LambdaInvoker::new(clients::lambda(sdk))),
        signing: Arc::new(SecretSigningKeys::new(
            clients::secretsmanager(sdk),
            config.confirm_key_secret_id.clone(),
        )),
        notifier: Arc::new(SnsNotifier::new(clients::sns(sdk), &config.alerts_topic_arn)),
        clock: Arc::new(lifeboat_ports::SystemClock),
        backup: config.backup_region.as_ref().map(|r| {
            let in_region = sdk
                .to_builder()
                .region(aws_config::Region::new(r.as_str().to_owned()))
                .build();
            Arc::new(S3ObjectStore::from_sdk(
                &in_region,
                config.s3_force_path_style,
                CopyTuning::default(),
            )) as Arc<dyn ObjectStore>
        }),
        switch_scope: config.switch_scope.clone(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lifeboat::telemetry::init();
    let config = DrConfig::from_lookup(|k| std::env::var(k).ok())?;
    let sdk = lifeboat_aws::sdk_config().await;
    let deps = deps(&config, &sdk);
    run(service_fn(|event| handle(&deps, event))).await
}
