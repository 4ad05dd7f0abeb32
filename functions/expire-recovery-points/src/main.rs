use expire_recovery_points::{Deps, handle};
use lambda_runtime::{Error, run, service_fn};
use lifeboat::app::Ports;
use lifeboat::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lifeboat::telemetry::init();
    let config = Config::from_env()?;
    let sdk = lifeboat::aws::sdk_config().await;
    let deps = Deps {
        ports: Ports::aws(&config, &sdk),
        config,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
