//! Secrets Manager: the confirmation-token signing key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use lifeboat_domain::confirm::SigningKey;
use lifeboat_ports::{PortError, PortResult};

use super::port_error;

/// Reads the signing key from secret `secret_id`: its binary value, or its string value as
/// base64. A key that is missing, not base64 or too short is `Invalid`, naming the secret
/// but never echoing its value.
pub async fn signing_key(client: &aws_sdk_secretsmanager::Client, secret_id: &str) -> PortResult<SigningKey> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| port_error("GetSecretValue", e))?;
    let bytes = if let Some(blob) = out.secret_binary() {
        blob.as_ref().to_vec()
    } else if let Some(s) = out.secret_string() {
        STANDARD
            .decode(s.trim())
            .map_err(|_| PortError::Invalid(format!("secret {secret_id} is not base64")))?
    } else {
        return Err(PortError::Invalid(format!("secret {secret_id} has no value")));
    };
    SigningKey::new(bytes).map_err(|e| PortError::Invalid(format!("secret {secret_id}: {e}")))
}
