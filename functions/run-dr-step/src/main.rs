use lambda_runtime::{Error, run, service_fn};
use run_dr_step::{Deps, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lifeboat::telemetry::init();
    let deps = Deps::aws(&lifeboat::aws::sdk_config().await)?;
    run(service_fn(|event| handle(&deps, event))).await
}
