//! Config and secrets backup: the ports (where parameters and secrets are read and written
//! back, and the KMS data keys) and their AWS adapters (SSM, Secrets Manager, KMS).
//! The bundle format and its sealing are in [`lifeboat_domain::config_bundle`].

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::PortResult;
use lifeboat_domain::config_bundle::ConfigItem;

/// Where config items live.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// SSM parameters: every one under `path` when it ends with `/` (recursive), else the
    /// one parameter named `path`; decrypted.
    async fn parameters(&self, path: &str) -> PortResult<Vec<ConfigItem>>;
    /// Secrets whose name starts with `prefix`, each with its current value.
    async fn secrets(&self, prefix: &str) -> PortResult<Vec<ConfigItem>>;
    /// Writes `item`'s value under `name` (a new parameter or secret version; the secret
    /// is created when it does not exist).
    async fn put(&self, item: &ConfigItem, name: &str) -> PortResult<()>;
}

/// KMS data keys for envelope encryption.
#[async_trait]
pub trait DataKeys: Send + Sync {
    /// A new AES-256 data key under `key_id`: (plaintext, KMS ciphertext).
    async fn generate(&self, key_id: &str, context: &BTreeMap<String, String>) -> PortResult<(Vec<u8>, Vec<u8>)>;
    /// The plaintext of a data key KMS encrypted under `context`.
    async fn decrypt(&self, encrypted: &[u8], context: &BTreeMap<String, String>) -> PortResult<Vec<u8>>;
}
