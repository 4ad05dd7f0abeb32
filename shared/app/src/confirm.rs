//! Spending a confirmation token: the catalog half of [`lifeboat_domain::confirm`].

use chrono::{DateTime, Utc};
use lifeboat_domain::confirm::{self, Claims, TokenError};
use lifeboat_ports::Catalog;
use lifeboat_ports::admin::{AuditLog, AuditRecord};
use lifeboat_ports::keys::SigningKeys;

use crate::FunctionError;

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

/// What a destructive request invoked directly needs: the signing key, where tokens are
/// spent, and the audit trail.
#[derive(Clone)]
pub struct Confirmations {
    pub keys: std::sync::Arc<dyn SigningKeys>,
    pub catalog: std::sync::Arc<dyn Catalog>,
    pub audit: std::sync::Arc<dyn AuditLog>,
}

impl std::fmt::Debug for Confirmations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmations").finish_non_exhaustive()
    }
}

impl Confirmations {
    /// Checks the token of a destructive request to `function` (its whole request
    /// `payload`, `confirmation` included), spends it, and puts the act on the audit trail
    /// with who confirmed it. Answers that principal. Every refusal means nothing was
    /// changed.
    pub async fn spend(
        &self,
        function: &str,
        payload: &serde_json::Value,
        what: &str,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<String, FunctionError> {
        let Some(token) = payload.get("confirmation").and_then(serde_json::Value::as_str) else {
            return Err(FunctionError::invalid(format!(
                "{what} needs \"confirmation\": a token the admin API issued for this exact request (POST /confirmations, admin role); nothing was changed"
            )));
        };
        let key = self
            .keys
            .key()
            .await
            .map_err(|e| FunctionError::misconfigured(format!("confirmation key: {e}")))?;
        let digest = confirm::invocation_digest(function, payload);
        let claims = confirm::verify_issued(&key, token, &digest, now).map_err(|e| {
            FunctionError::invalid(format!(
                "{what}: {e} (a token confirms one exact request); nothing was changed"
            ))
        })?;
        match consume(self.catalog.as_ref(), &claims, now).await {
            Ok(()) => {}
            Err(TokenError::Reused) => {
                return Err(FunctionError::invalid(format!(
                    "{what}: the confirmation token was already used; ask the admin API for a new one. Nothing was changed"
                )));
            }
            Err(e) => return Err(FunctionError::retryable(e.to_string())),
        }
        let record = AuditRecord {
            request_id: run_id.chars().take(128).collect(),
            phase: "confirmed".to_owned(),
            at: now,
            principal: claims.principal.clone(),
            role: "admin".to_owned(),
            method: "INVOKE".to_owned(),
            route: function.to_owned(),
            path: what.chars().take(512).collect(),
            body_sha256: digest,
            status: None,
            result: Some("confirmed".to_owned()),
        };
        // The token is spent: the act goes ahead only once it is on record (if it cannot be,
        // nothing is done, and a new token is needed).
        self.audit.append(&record).await.map_err(|e| {
            FunctionError::new(
                crate::ErrorType::Internal,
                format!("could not put the confirmed {what} on the audit trail ({e}); nothing was changed: ask for a new token"),
            )
        })?;
        Ok(claims.principal)
    }
}
