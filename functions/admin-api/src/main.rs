use std::sync::Arc;

use admin_api::aws::{LambdaInvoker, SecretsManagerKey, SfnExecutions};
use admin_api::{AdminConfig, Deps, handle_event};
use lambda_runtime::{Error, run, service_fn};
use lifeboat::aws::admin::{DynamoDbAdminStore, RdsDbRestorer};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config) = lifeboat::app::cold_start().await?;
    let admin = AdminConfig::from_env()?;
    let sdk = lifeboat::aws::sdk_config().await;
    let store = Arc::new(DynamoDbAdminStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &config.catalog_table,
    ));
    let deps = Deps {
        key: Arc::new(SecretsManagerKey::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            &admin.signing_key_secret_id,
        )),
        invoker: Arc::new(LambdaInvoker::new(aws_sdk_lambda::Client::new(&sdk))),
        dr: Arc::new(lifeboat::dr::DynamoDbDrStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.catalog_table,
        )),
        executions: Arc::new(SfnExecutions::new(aws_sdk_sfn::Client::new(&sdk))),
        rds: Arc::new(RdsDbRestorer::new(sdk)),
        audit: store.clone(),
        restores: store,
        plan: plan_backups::Deps {
            ports,
            config,
            tier_base: plan_backups::tier_base(|k| std::env::var(k).ok())?,
        },
        admin,
    };
    let deps = Arc::new(deps);
    // Any JSON event is taken and parsed by the handler, so a foreign event is answered
    // with errorType Invalid rather than the runtime's deserializer error.
    run(service_fn(move |event| {
        let deps = Arc::clone(&deps);
        async move { handle_event(&deps, event).await }
    }))
    .await
}
