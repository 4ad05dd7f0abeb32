use std::sync::Arc;

use backup_objects::{Deps, handle};
use lambda_runtime::{Error, run, service_fn};
use lifeboat::aws::sqs::{self, SqsChangeFeed};
use lifeboat::object_store::settings::S3Settings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, _config) = lifeboat::app::cold_start().await?;
    let settings = S3Settings::from_env()?;
    let sdk = lifeboat::aws::sdk_config().await;
    let (source, backup) = lifeboat::aws::s3::stores(&sdk, &settings);
    let changes = Arc::new(SqsChangeFeed::new(sqs::client(&sdk, &settings.source_region)));
    let deps = Deps {
        catalog: ports.catalog,
        clock: ports.clock,
        source,
        backup,
        settings,
        changes,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
