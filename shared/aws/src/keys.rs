//! KMS key checks and the confirmation-token signing key from Secrets Manager.

use crate::PerRegion;
use async_trait::async_trait;
use aws_config::SdkConfig;
use lifeboat_domain::Region;
use lifeboat_domain::confirm::SigningKey;
use lifeboat_ports::{PortError, PortResult};

use lifeboat_ports::keys::{KmsKeys, SigningKeys};

pub(crate) fn unavailable(op: &str, e: &impl std::fmt::Display) -> PortError {
    PortError::Unavailable(format!("{op}: {e}"))
}

/// [`KmsKeys`] over KMS `DescribeKey`, one client per region.
pub struct AwsKmsKeys {
    clients: PerRegion<aws_sdk_kms::Client>,
}

impl std::fmt::Debug for AwsKmsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsKeys").finish_non_exhaustive()
    }
}

impl AwsKmsKeys {
    pub fn new(base: SdkConfig) -> Self {
        Self {
            clients: PerRegion::new(base, |base, region| {
                aws_sdk_kms::Client::from_conf(
                    aws_sdk_kms::config::Builder::from(base)
                        .region(aws_sdk_kms::config::Region::new(region.to_string()))
                        .build(),
                )
            }),
        }
    }
}

#[async_trait]
impl KmsKeys for AwsKmsKeys {
    async fn usable(&self, region: &Region, key_id: &str) -> PortResult<bool> {
        let client = self.clients.get(region)?;
        match client.describe_key().key_id(key_id).send().await {
            Ok(out) => Ok(out
                .key_metadata()
                .is_some_and(|m| m.enabled() && m.key_state().is_none_or(|s| s.as_str() == "Enabled"))),
            Err(e) => {
                use aws_sdk_kms::error::ProvideErrorMetadata as _;
                if e.code() == Some("NotFoundException") {
                    Ok(false)
                } else {
                    Err(unavailable(
                        "DescribeKey",
                        &aws_sdk_kms::error::DisplayErrorContext(&e).to_string(),
                    ))
                }
            }
        }
    }
}

/// [`SigningKeys`] from a Secrets Manager secret, read on first use and kept.
#[derive(Debug)]
pub struct SecretSigningKeys {
    client: aws_sdk_secretsmanager::Client,
    secret_id: Option<String>,
    key: tokio::sync::OnceCell<SigningKey>,
}

impl SecretSigningKeys {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: Option<String>) -> Self {
        Self {
            client,
            secret_id,
            key: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait]
impl SigningKeys for SecretSigningKeys {
    async fn key(&self) -> PortResult<SigningKey> {
        let secret_id = self
            .secret_id
            .as_deref()
            .ok_or_else(|| PortError::Invalid("CONFIRM_KEY_SECRET_ID is not set".into()))?;
        self.key
            .get_or_try_init(|| crate::secrets::signing_key(&self.client, secret_id))
            .await
            .cloned()
    }
}
