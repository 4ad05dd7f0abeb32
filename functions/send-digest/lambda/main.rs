use lambda_runtime::{Error, run, service_fn};
use send_digest::{Deps, DigestConfig, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config, _sdk) = lifeboat_aws::wiring::cold_start().await?;
    let digest = DigestConfig::from_lookup(|k| std::env::var(k).ok())?;
    let deps = Deps { ports, config, digest };
    run(service_fn(|event| handle(&deps, event))).await
}
