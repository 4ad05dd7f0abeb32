//! Production wiring: one SDK configuration per cold start, and the shared ports built on
//! it with the call counter on every client. Only the functions' `main`s call this.

use std::sync::Arc;

use aws_config::SdkConfig;
use lifeboat::app::Ports;
use lifeboat::config::{Config, ConfigError};

/// The shared ports over AWS, from the process's SDK configuration.
pub fn ports(config: &Config, sdk: &SdkConfig) -> Ports {
    Ports {
        snapshots: Arc::new(lifeboat::routing::RoutedSnapshots {
            databases: Arc::new(crate::RdsSnapshotStore::new(sdk.clone())),
            tables: Arc::new(match &config.table_export_bucket {
                Some(buckets) => crate::DynamoDbTableSnapshots::new(sdk.clone()).with_exports(
                    crate::table_exports::TableExports::new(sdk.clone(), buckets.clone(), config.s3_path_style),
                ),
                None => crate::DynamoDbTableSnapshots::new(sdk.clone()),
            }),
        }),
        catalog: Arc::new(crate::DynamoDbCatalog::new(
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .interceptor(crate::calls::CountCalls)
                    .build(),
            ),
            &config.catalog_table,
        )),
        notifier: Arc::new(crate::SnsNotifier::new(
            aws_sdk_sns::Client::from_conf(
                aws_sdk_sns::config::Builder::from(sdk)
                    .interceptor(crate::calls::CountCalls)
                    .build(),
            ),
            &config.alerts_topic_arn,
        )),
        clock: Arc::new(lifeboat_ports::SystemClock),
        backup: Arc::new(crate::AwsBackupService::new(aws_sdk_backup::Client::from_conf(
            aws_sdk_backup::config::Builder::from(sdk)
                .region(aws_sdk_backup::config::Region::new(config.primary_region.to_string()))
                .interceptor(crate::calls::CountCalls)
                .build(),
        ))),
        alert_window: config.alert_dedupe_window,
    }
}

/// Cold-start wiring shared by every function: telemetry, then configuration from the
/// environment (every problem listed), then the SDK configuration (loaded once: the
/// function's own adapters are built from the same one) and the shared ports.
pub async fn cold_start() -> Result<(Ports, Config, SdkConfig), ConfigError> {
    lifeboat::telemetry::init();
    let config = Config::from_env()?;
    let sdk = crate::sdk_config().await;
    Ok((ports(&config, &sdk), config, sdk))
}

/// What a function needs to take a destructive request invoked directly: the signing-key
/// secret (`SIGNING_KEY_SECRET_ID`), markers in the catalog, the audit trail.
pub fn confirmations(
    sdk: &SdkConfig,
    ports: &Ports,
    config: &Config,
) -> Result<lifeboat::confirm::Confirmations, ConfigError> {
    let secret = std::env::var("SIGNING_KEY_SECRET_ID")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                "function",
                vec![
                    "SIGNING_KEY_SECRET_ID is not set: destructive requests are confirmed with the admin API's tokens"
                        .into(),
                ],
            )
        })?;
    Ok(lifeboat::confirm::Confirmations {
        keys: Arc::new(crate::keys::SecretSigningKeys::new(
            crate::clients::secretsmanager(sdk),
            Some(secret),
        )),
        catalog: ports.catalog.clone(),
        audit: Arc::new(crate::admin::DynamoDbAdminStore::new(
            crate::clients::dynamodb(sdk),
            &config.catalog_table,
        )),
    })
}
