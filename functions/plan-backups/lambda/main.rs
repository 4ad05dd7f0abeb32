use lambda_runtime::{Error, run, service_fn};
use lifeboat::planning::tier_base;
use plan_backups::{Deps, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config, _sdk) = lifeboat_aws::wiring::cold_start().await?;
    let tier_base = tier_base(|k| std::env::var(k).ok())?;
    let deps = Deps {
        ports,
        config,
        tier_base,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
