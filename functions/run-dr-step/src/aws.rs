//! The adapters only this function needs: KMS key checks, the user's validation Lambda
//! and the confirmation-token signing key from Secrets Manager.

use async_trait::async_trait;
use aws_config::SdkConfig;
use lifeboat::aws::PerRegion;
use lifeboat::confirm::SigningKey;
use lifeboat::domain::Region;
use lifeboat::ports::{PortError, PortResult};
use serde_json::Value;

use crate::{KmsKeys, SigningKeys, ValidationLambda};

fn unavailable(op: &str, e: &impl std::fmt::Display) -> PortError {
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

/// [`ValidationLambda`] over Lambda `Invoke` (request/response).
#[derive(Debug, Clone)]
pub struct AwsValidationLambda {
    client: aws_sdk_lambda::Client,
}

impl AwsValidationLambda {
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ValidationLambda for AwsValidationLambda {
    async fn invoke(&self, function_arn: &str, payload: &Value) -> PortResult<Result<Value, String>> {
        let body = serde_json::to_vec(payload).map_err(|e| PortError::Invalid(e.to_string()))?;
        let out = self
            .client
            .invoke()
            .function_name(function_arn)
            .payload(aws_sdk_lambda::primitives::Blob::new(body))
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                use aws_sdk_lambda::error::ProvideErrorMetadata as _;
                let code = e.code().unwrap_or_default().to_owned();
                // A missing or refused function is a failed validation, not an outage.
                return if code == "ResourceNotFoundException" || code == "AccessDeniedException" {
                    Ok(Err(format!("cannot invoke {function_arn}: {code}")))
                } else {
                    Err(unavailable(
                        "Invoke",
                        &aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
                    ))
                };
            }
        };
        let text = out
            .payload()
            .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
            .unwrap_or_default();
        if out.function_error().is_some() {
            return Ok(Err(text.chars().take(500).collect()));
        }
        Ok(Ok(serde_json::from_str(&text).unwrap_or(Value::Null)))
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
            .get_or_try_init(|| lifeboat::aws::secrets::signing_key(&self.client, secret_id))
            .await
            .cloned()
    }
}
