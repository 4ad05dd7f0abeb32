use lambda_runtime::{Error, run, service_fn};
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::cost::PriceBook;
use tier_backups::{Deps, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, _config, sdk) = lifeboat_aws::wiring::cold_start().await?;
    let settings = S3Settings::from_env()?;
    let prices = PriceBook::from_lookup(|k| std::env::var(k).ok())
        .map_err(|problems| format!("STORAGE_PRICES: {}", problems.join("; ")))?;
    let (_source, backup) = lifeboat_aws::s3::stores(&sdk, &settings);
    let deps = Deps {
        catalog: ports.catalog,
        clock: ports.clock,
        backup,
        settings,
        prices,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
