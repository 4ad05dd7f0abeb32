use std::sync::Arc;

use lambda_runtime::{Error, run, service_fn};
use lifeboat_aws::clients;
use lifeboat_aws::dr::RdsDrDatabases;
use lifeboat_aws::lambda::LambdaInvoker;
use test_restores::{Deps, Settings, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config, sdk) = lifeboat_aws::wiring::cold_start().await?;
    let deps = Deps {
        catalog: ports.catalog,
        notifier: ports.notifier,
        clock: ports.clock,
        databases: Arc::new(RdsDrDatabases::new(sdk.clone())),
        validator: Arc::new(LambdaInvoker::new(clients::lambda(&sdk))),
        settings: Settings::from_env()?,
        alert_window: config.alert_dedupe_window,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
