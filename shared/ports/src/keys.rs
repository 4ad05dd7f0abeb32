//! Keys: the confirmation-token signing key and the KMS keys a restore needs.

use async_trait::async_trait;
use lifeboat_domain::Region;
use lifeboat_domain::confirm::SigningKey;

use crate::PortResult;

/// The confirmation-token signing key.
#[async_trait]
pub trait SigningKeys: Send + Sync + std::fmt::Debug {
    async fn key(&self) -> PortResult<SigningKey>;
}

/// KMS keys the restore needs.
#[async_trait]
pub trait KmsKeys: Send + Sync + std::fmt::Debug {
    async fn usable(&self, region: &Region, key_id: &str) -> PortResult<bool>;
}
