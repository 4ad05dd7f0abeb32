//! Spending a confirmation token: the catalog half of [`lifeboat_domain::confirm`].

use chrono::{DateTime, Utc};
use lifeboat_domain::confirm::{Claims, TokenError};
use lifeboat_ports::Catalog;

/// Marks the token used, once: a conditional write on `confirm#<nonce>`. A second call for
/// the same token (a replay, or a concurrent confirm) gets [`TokenError::Reused`].
pub async fn consume(catalog: &dyn Catalog, claims: &Claims, now: DateTime<Utc>) -> Result<(), TokenError> {
    let key = format!("confirm#{}", claims.nonce);
    // A used token never becomes claimable again: no claim is ever considered stale.
    let claimed = catalog
        .claim_marker(&key, now, DateTime::<Utc>::MIN_UTC)
        .await
        .map_err(|e| TokenError::Store(e.to_string()))?;
    if !claimed {
        return Err(TokenError::Reused);
    }
    catalog
        .confirm_marker(&key)
        .await
        .map_err(|e| TokenError::Store(e.to_string()))
}
