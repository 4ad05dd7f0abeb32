use lambda_runtime::{Error, run, service_fn};
use plan_backups::{Deps, handle, tier_base};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config) = lifeboat::app::cold_start().await?;
    let tier_base = tier_base(|k| std::env::var(k).ok())?;
    let deps = Deps {
        ports,
        config,
        tier_base,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
