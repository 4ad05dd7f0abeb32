use expire_recovery_points::{BackupStore, Deps, handle};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (ports, config, sdk) = lifeboat_aws::wiring::cold_start().await?;
    let backups = BackupStore(lifeboat_aws::s3::store_in(
        &sdk,
        &config.backup_region,
        config.s3_path_style,
    ));
    let deps = Deps {
        ports,
        config,
        backups: Some(backups),
    };
    run(service_fn(|event| handle(&deps, event))).await
}
