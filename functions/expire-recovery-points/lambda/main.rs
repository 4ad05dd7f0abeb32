use expire_recovery_points::{Deps, handle};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config, _sdk) = lifeboat_aws::wiring::cold_start().await?;
    let deps = Deps { ports, config };
    run(service_fn(|event| handle(&deps, event))).await
}
