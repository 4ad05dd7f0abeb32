use std::sync::Arc;

use archive_bundles::{ArchiveSettings, Deps, handle};
use lambda_runtime::{Error, run, service_fn};
use lifeboat::object_store::settings::S3Settings;
use lifeboat_aws::glacier::{self, GlacierArchiveVault};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, _config, sdk) = lifeboat_aws::wiring::cold_start().await?;
    let s3 = S3Settings::from_env()?;
    let settings = ArchiveSettings::from_lookup(|k| std::env::var(k).ok())?;
    let (_source, backup) = lifeboat_aws::s3::stores(&sdk, &s3);
    let vault = GlacierArchiveVault::new(glacier::client(&sdk, &settings.region), settings.tuning);
    let deps = Deps {
        catalog: ports.catalog,
        notifier: ports.notifier,
        clock: ports.clock,
        backup,
        vault: Arc::new(vault),
        settings,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
