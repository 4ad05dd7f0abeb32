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

/// The key [`confirmations`] signs with (42 repeated: tests only).
pub fn test_key() -> SigningKey {
    SigningKey::new(vec![42; 32]).unwrap_or_else(|e| panic!("{e}"))
}

/// Confirmations of direct destructive requests over `catalog`, with [`test_key`] and an
/// audit trail the test can read.
pub fn confirmations(
    catalog: std::sync::Arc<dyn lifeboat_ports::Catalog>,
) -> (
    lifeboat::confirm::Confirmations,
    std::sync::Arc<crate::admin::InMemoryAuditLog>,
) {
    let audit = std::sync::Arc::new(crate::admin::InMemoryAuditLog::default());
    (
        lifeboat::confirm::Confirmations {
            keys: std::sync::Arc::new(StaticKey(test_key())),
            catalog,
            audit: audit.clone(),
        },
        audit,
    )
}

/// A token for a direct request of `function` (its whole `request`), as the admin API
/// issues one (`POST /confirmations`) to `who`, valid five minutes from `now`.
pub fn token_for(function: &str, request: &serde_json::Value, who: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    static NONCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let digest = lifeboat_domain::confirm::invocation_digest(function, request);
    let nonce = format!("test-{}", NONCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    lifeboat_domain::confirm::issue(&test_key(), &digest, who, now, chrono::Duration::minutes(5), &nonce)
        .map_or_else(|e| panic!("{e}"), |(t, _)| t)
}
