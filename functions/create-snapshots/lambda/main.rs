use std::sync::Arc;

use create_snapshots::{DataRuns, Deps, RunTargets, handle};
use lambda_runtime::{Error, run, service_fn};
use lifeboat_aws::clients;
use lifeboat_aws::lambda::{LambdaInvoker, SfnExecutions};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config, sdk) = lifeboat_aws::wiring::cold_start().await?;
    let runs = DataRuns {
        lambdas: Arc::new(LambdaInvoker::new(clients::lambda(&sdk))),
        executions: Arc::new(SfnExecutions::new(clients::sfn(&sdk))),
        targets: RunTargets::from_lookup(|k| std::env::var(k).ok()),
    };
    let deps = Deps { ports, config, runs };
    run(service_fn(|event| handle(&deps, event))).await
}
