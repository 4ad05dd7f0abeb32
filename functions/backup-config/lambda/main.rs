use std::sync::Arc;

use backup_config::{Deps, handle};
use lambda_runtime::{Error, run, service_fn};
use lifeboat::object_store::settings::S3Settings;
use lifeboat_aws::config_store::{AwsConfigStore, KmsDataKeys};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config, sdk) = lifeboat_aws::wiring::cold_start().await?;
    let settings = S3Settings::from_env()?;
    let kms_key_id = std::env::var("CONFIG_KMS_KEY_ID")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or("CONFIG_KMS_KEY_ID is not set")?;
    let (_source, backup) = lifeboat_aws::s3::stores(&sdk, &settings);
    let confirmations = lifeboat_aws::wiring::confirmations(&sdk, &ports, &config)?;
    let deps = Deps {
        confirmations,
        catalog: ports.catalog,
        clock: ports.clock,
        config: Arc::new(AwsConfigStore::new(&sdk)),
        keys: Arc::new(KmsDataKeys::new(&sdk)),
        backup,
        settings,
        kms_key_id,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
