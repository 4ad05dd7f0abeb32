use std::sync::Arc;

use backup_objects::{Deps, handle};
use lambda_runtime::{Error, run, service_fn};
use lifeboat::object_store::settings::S3Settings;
use lifeboat_aws::sqs::{self, SqsChangeFeed};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, _config, sdk) = lifeboat_aws::wiring::cold_start().await?;
    let settings = S3Settings::from_env()?;
    let (source, backup) = lifeboat_aws::s3::stores(&sdk, &settings);
    let changes = Arc::new(SqsChangeFeed::new(sqs::client(&sdk, &settings.source_region)));
    let deps = Deps {
        catalog: ports.catalog,
        notifier: ports.notifier,
        clock: ports.clock,
        source,
        backup,
        settings,
        changes,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
