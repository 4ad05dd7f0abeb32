//! Confirmation tokens for dangerous requests: a restore over existing data, a failover,
//! a failback.
//!
//! A dangerous request is answered first with a preview and a token; the caller sends the
//! token back to go ahead. The token binds:
//! - the digest of the exact request it confirms ([`request_digest`]),
//! - the principal that asked for the preview,
//! - an expiry (minutes away),
//! - a random nonce, which makes it single use: `lifeboat::confirm::consume` claims `confirm#<nonce>` with a
//!   conditional write, so a second use of the same token is refused.
//!
//! Format: `v1.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, "v1." + claims part))>`.
//! The key (at least 32 bytes) comes from Secrets Manager (the signing-key port); it is
//! never logged ([`SigningKey`]'s `Debug` is redacted).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const VERSION: &str = "v1";
/// The shortest signing key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// The longest validity a token may be issued with.
pub const MAX_VALIDITY: Duration = Duration::minutes(30);

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. Every variant means "nothing was changed".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the confirmation token is malformed")]
    Malformed,
    #[error("the confirmation token's signature does not match")]
    BadSignature,
    #[error("the confirmation token was issued for a different request")]
    WrongRequest,
    #[error("the confirmation token was issued to a different caller")]
    WrongCaller,
    #[error("the confirmation token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the confirmation token was already used")]
    Reused,
    #[error("the signing key is shorter than {MIN_KEY_BYTES} bytes")]
    KeyTooShort,
    #[error("a token may be valid for at most {} minutes", MAX_VALIDITY.num_minutes())]
    ValidityTooLong,
    #[error("could not record the token's use: {0}")]
    Store(String),
}

/// The HMAC key. Its bytes never appear in `Debug` output or logs.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    pub fn new(bytes: Vec<u8>) -> Result<Self, TokenError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(TokenError::KeyTooShort);
        }
        Ok(Self(bytes))
    }

    fn mac(&self, message: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this never fails.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(message);
        mac
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// [`request_digest`] of the request being confirmed.
    pub request_digest: String,
    /// The caller's principal (IAM ARN) that asked for the preview.
    pub principal: String,
    pub expires_at: DateTime<Utc>,
    /// Random; the single-use marker's key.
    pub nonce: String,
    /// The second person's approval the token was issued after, when the request needed
    /// one ([`crate::approval`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalClaim>,
}

/// The approval a token carries: which request, and who approved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalClaim {
    pub id: String,
    pub approved_by: String,
}

/// SHA-256 (hex) of the request's canonical JSON: object keys sorted, no whitespace.
/// Two requests that differ in any field get different digests.
pub fn request_digest(request: &serde_json::Value) -> String {
    let mut canonical = String::new();
    canonicalize(request, &mut canonical);
    hex(&Sha256::digest(canonical.as_bytes()))
}

fn canonicalize(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonicalize(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonicalize(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Issues a token for `request_digest`, asked for by `principal`, valid for `validity`
/// (at most [`MAX_VALIDITY`]). `nonce` must be unpredictable (e.g. a v4 UUID).
pub fn issue(
    key: &SigningKey,
    request_digest: &str,
    principal: &str,
    now: DateTime<Utc>,
    validity: Duration,
    nonce: &str,
) -> Result<(String, Claims), TokenError> {
    issue_approved(key, request_digest, principal, now, validity, nonce, None)
}

/// [`issue`], for a request a second person approved: the token carries `approval`.
pub fn issue_approved(
    key: &SigningKey,
    request_digest: &str,
    principal: &str,
    now: DateTime<Utc>,
    validity: Duration,
    nonce: &str,
    approval: Option<ApprovalClaim>,
) -> Result<(String, Claims), TokenError> {
    if validity > MAX_VALIDITY || validity <= Duration::zero() {
        return Err(TokenError::ValidityTooLong);
    }
    let claims = Claims {
        request_digest: request_digest.to_owned(),
        principal: principal.to_owned(),
        expires_at: now + validity,
        nonce: nonce.to_owned(),
        approval,
    };
    let body = serde_json::to_vec(&claims).map_err(|_| TokenError::Malformed)?;
    let signed = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(body));
    let tag = key.mac(signed.as_bytes()).finalize().into_bytes();
    Ok((format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag)), claims))
}

/// Checks a token's signature, request, caller and expiry, in that order. Does not consume
/// it: call [`consume`] right before acting.
pub fn verify(
    key: &SigningKey,
    token: &str,
    expected_digest: &str,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    check(key, token, expected_digest, Some(principal), now)
}

/// Checks a token's signature, request and expiry, and answers who it was issued to
/// ([`Claims::principal`]): for a step that acts on a confirmed request and must not take
/// the caller's identity from its own input.
pub fn verify_issued(
    key: &SigningKey,
    token: &str,
    expected_digest: &str,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    check(key, token, expected_digest, None, now)
}

/// The digest a DR failover or failback token is bound to: the plan's name, the mode, and
/// a SHA-256 of the plan's whole content, so a token issued before the plan changed is
/// refused.
pub fn dr_request_digest(plan: &crate::dr::DrPlan, mode: &str) -> Result<String, serde_json::Error> {
    let content = serde_json::to_value(plan)?;
    Ok(request_digest(&serde_json::json!({
        "plan": plan.name,
        "mode": mode,
        "planSha256": request_digest(&content),
    })))
}

/// The functions whose destructive requests, invoked directly (not through the admin API),
/// need a token the admin API issued (`POST /confirmations`).
pub const CONFIRMED_FUNCTIONS: [&str; 2] = ["restore-objects", "backup-config"];

/// The digest a token for a direct invocation is bound to: the function and its whole
/// request (without the token itself, `confirmation`).
pub fn invocation_digest(function: &str, request: &serde_json::Value) -> String {
    let mut request = request.clone();
    if let serde_json::Value::Object(m) = &mut request {
        m.remove("confirmation");
    }
    request_digest(&serde_json::json!({"function": function, "request": request}))
}

fn check(
    key: &SigningKey,
    token: &str,
    expected_digest: &str,
    principal: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (version, body) = signed.split_once('.').ok_or(TokenError::Malformed)?;
    if version != VERSION {
        return Err(TokenError::Malformed);
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
    key.mac(signed.as_bytes())
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&body).map_err(|_| TokenError::Malformed)?;
    if claims.request_digest != expected_digest {
        return Err(TokenError::WrongRequest);
    }
    if principal.is_some_and(|p| claims.principal != p) {
        return Err(TokenError::WrongCaller);
    }
    if now >= claims.expires_at {
        return Err(TokenError::Expired(claims.expires_at));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn key() -> SigningKey {
        SigningKey::new(vec![7; 32]).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn token_for(request: &serde_json::Value, who: &str) -> String {
        let digest = request_digest(request);
        issue(
            &key(),
            &digest,
            who,
            t("2026-11-23T03:00:00Z"),
            Duration::minutes(5),
            "n-1",
        )
        .unwrap()
        .0
    }

    #[test]
    fn a_token_confirms_its_own_request_for_its_own_caller_until_it_expires() {
        let req = json!({"restore": "rp-1", "target": "db-1", "overwrite": true});
        let tok = token_for(&req, "arn:aws:iam::1:user/alice");
        let ok = verify(
            &key(),
            &tok,
            &request_digest(&req),
            "arn:aws:iam::1:user/alice",
            t("2026-11-23T03:04:59Z"),
        );
        assert_eq!(ok.unwrap().nonce, "n-1");

        let other = json!({"restore": "rp-1", "target": "db-2", "overwrite": true});
        let refusals = [
            verify(
                &key(),
                &tok,
                &request_digest(&other),
                "arn:aws:iam::1:user/alice",
                t("2026-11-23T03:01:00Z"),
            ),
            verify(
                &key(),
                &tok,
                &request_digest(&req),
                "arn:aws:iam::1:user/bob",
                t("2026-11-23T03:01:00Z"),
            ),
            verify(
                &key(),
                &tok,
                &request_digest(&req),
                "arn:aws:iam::1:user/alice",
                t("2026-11-23T03:05:00Z"),
            ),
            verify(
                &SigningKey::new(vec![8; 32]).unwrap(),
                &tok,
                &request_digest(&req),
                "arn:aws:iam::1:user/alice",
                t("2026-11-23T03:01:00Z"),
            ),
        ];
        assert_eq!(refusals[0], Err(TokenError::WrongRequest));
        assert_eq!(refusals[1], Err(TokenError::WrongCaller));
        assert_eq!(refusals[2], Err(TokenError::Expired(t("2026-11-23T03:05:00Z"))));
        assert_eq!(refusals[3], Err(TokenError::BadSignature));
    }

    #[test]
    fn key_order_does_not_change_the_digest_but_any_value_does() {
        let a = json!({"a": 1, "b": {"x": [1, 2], "y": null}});
        let b = json!({"b": {"y": null, "x": [1, 2]}, "a": 1});
        assert_eq!(request_digest(&a), request_digest(&b));
        assert_ne!(
            request_digest(&a),
            request_digest(&json!({"a": 1, "b": {"x": [2, 1], "y": null}}))
        );
    }

    #[test]
    fn short_keys_and_long_validities_are_refused() {
        assert_eq!(SigningKey::new(vec![1; 31]).unwrap_err(), TokenError::KeyTooShort);
        let err = issue(&key(), "d", "p", t("2026-11-23T03:00:00Z"), Duration::minutes(31), "n").unwrap_err();
        assert_eq!(err, TokenError::ValidityTooLong);
        assert_eq!(format!("{:?}", key()), "SigningKey(<redacted>)");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Any change to a valid token — a flipped character, a cut, garbage — is refused,
        /// and nothing panics.
        #[test]
        fn tampered_tokens_are_refused(pos in 0usize..400, ch in proptest::char::range('-', 'z'), cut in 0usize..400) {
            let req = json!({"restore": "rp-9"});
            let tok = token_for(&req, "p");
            let digest = request_digest(&req);
            let now = t("2026-11-23T03:01:00Z");
            let mut flipped: Vec<char> = tok.chars().collect();
            let i = pos % flipped.len();
            if flipped[i] != ch {
                flipped[i] = ch;
                let flipped: String = flipped.into_iter().collect();
                prop_assert!(verify(&key(), &flipped, &digest, "p", now).is_err());
            }
            let cut = &tok[..cut % tok.len()];
            prop_assert!(verify(&key(), cut, &digest, "p", now).is_err());
        }

        #[test]
        fn arbitrary_strings_never_verify(s in ".{0,300}") {
            prop_assert!(verify(&key(), &s, "d", "p", t("2026-11-23T03:01:00Z")).is_err());
        }
    }
}
