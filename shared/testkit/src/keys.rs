//! A fixed signing key.

use async_trait::async_trait;
use lifeboat_domain::confirm::SigningKey;
use lifeboat_ports::PortResult;
use lifeboat_ports::keys::SigningKeys;

/// A fixed key (tests).
#[derive(Debug, Clone)]
pub struct StaticKey(pub SigningKey);

#[async_trait]
impl SigningKeys for StaticKey {
    async fn key(&self) -> PortResult<SigningKey> {
        Ok(self.0.clone())
    }
}
