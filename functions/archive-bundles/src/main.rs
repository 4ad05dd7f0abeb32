use archive_bundles::{Deps, handle};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = Deps::aws().await?;
    run(service_fn(|event| handle(&deps, event))).await
}
