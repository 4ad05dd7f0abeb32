use std::sync::Arc;

use admin_api::{AdminConfig, Deps, handle_event};
use lambda_runtime::{Error, run, service_fn};
use lifeboat::planning::{Planner, tier_base};
use lifeboat_aws::admin::{DynamoDbAdminStore, RdsDbRestorer};
use lifeboat_aws::clients;
use lifeboat_aws::dr_store::DynamoDbDrStore;
use lifeboat_aws::keys::SecretSigningKeys;
use lifeboat_aws::lambda::{LambdaInvoker, SfnExecutions};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config, sdk) = lifeboat_aws::wiring::cold_start().await?;
    let admin = AdminConfig::from_env()?;
    let store = Arc::new(DynamoDbAdminStore::new(clients::dynamodb(&sdk), &config.catalog_table));
    let deps = Deps {
        key: Arc::new(SecretSigningKeys::new(
            clients::secretsmanager(&sdk),
            Some(admin.signing_key_secret_id.clone()),
        )),
        invoker: Arc::new(LambdaInvoker::new(clients::lambda(&sdk))),
        dr: Arc::new(DynamoDbDrStore::new(clients::dynamodb(&sdk), &config.catalog_table)),
        executions: Arc::new(SfnExecutions::new(clients::sfn(&sdk))),
        rds: Arc::new(RdsDbRestorer::new(sdk)),
        audit: store.clone(),
        approvals: store.clone(),
        restores: store,
        plan: Planner {
            ports,
            config,
            tier_base: tier_base(|k| std::env::var(k).ok())?,
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
