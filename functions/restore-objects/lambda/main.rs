use lambda_runtime::{Error, run, service_fn};
use lifeboat::object_store::settings::S3Settings;
use restore_objects::{Deps, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config, sdk) = lifeboat_aws::wiring::cold_start().await?;
    let settings = S3Settings::from_env()?;
    let (target, backup) = lifeboat_aws::s3::stores(&sdk, &settings);
    let confirmations = lifeboat_aws::wiring::confirmations(&sdk, &ports, &config)?;
    let deps = Deps {
        confirmations,
        catalog: ports.catalog,
        target,
        backup,
        settings,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
