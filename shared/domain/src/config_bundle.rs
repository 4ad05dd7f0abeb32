//! Config and secrets backup: SSM parameters and Secrets Manager secrets gathered into one
//! bundle, sealed with AES-256-GCM under a KMS data key (envelope encryption).
//!
//! The stored [`Envelope`] holds the data key only as KMS ciphertext, a random 96-bit nonce,
//! the names and versions of the items (readable without the key, so a restore can be
//! previewed), the SHA-256 of the plaintext, and the ciphertext. Every header field is
//! authenticated (it is the AEAD's associated data): a changed name, item list, key id or
//! digest fails decryption like a changed ciphertext byte does. Plaintext values never
//! appear in the envelope, in `Debug` output or in errors.

use std::collections::BTreeMap;
use std::fmt;

use super::manifest::sha256_hex;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The envelope's format tag.
pub const FORMAT: &str = "lifeboat-config-bundle/1";
/// AES-256: a 32-byte data key.
pub const KEY_BYTES: usize = 32;
/// AES-GCM's 96-bit nonce.
pub const NONCE_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    SsmParameter,
    Secret,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SsmParameter => "ssm-parameter",
            Self::Secret => "secret",
        }
    }
}

/// One parameter or secret with its value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigItem {
    pub kind: ItemKind,
    pub name: String,
    /// The parameter's version or the secret's version id.
    pub version: String,
    /// SSM: `String`, `StringList` or `SecureString`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_type: Option<String>,
    /// The value; base64 of the bytes when `binary` (a secret's SecretBinary).
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
}

impl fmt::Debug for ConfigItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigItem")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("value", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ConfigItem {
    pub fn reference(&self) -> ItemRef {
        ItemRef {
            kind: self.kind,
            name: self.name.clone(),
            version: self.version.clone(),
        }
    }
}

/// Everything one backup gathered: the plaintext, which exists only in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub items: Vec<ConfigItem>,
}

/// An item as the envelope names it (no value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemRef {
    pub kind: ItemKind,
    pub name: String,
    pub version: String,
}

/// What is stored: the sealed bundle and its authenticated header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub format: String,
    /// The bundle's name (what the backup protects, e.g. `orders-config`).
    pub bundle: String,
    /// The run that took it.
    pub run: String,
    pub taken_at: DateTime<Utc>,
    pub kms_key_id: String,
    /// The data key as KMS ciphertext (base64); KMS decrypts it with the encryption context.
    pub encrypted_data_key: String,
    /// Base64 of the 12-byte nonce.
    pub nonce: String,
    pub items: Vec<ItemRef>,
    /// Hex SHA-256 of the plaintext, checked after decryption.
    pub plaintext_sha256: String,
    /// Base64 of AES-256-GCM(plaintext) with its 16-byte tag.
    pub ciphertext: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("the data key is {0} bytes; AES-256 needs 32")]
    KeyLength(usize),
    #[error("the nonce is {0} bytes; AES-GCM needs 12")]
    NonceLength(usize),
    #[error("not a {FORMAT} envelope: {0}")]
    Malformed(String),
    /// Wrong key, or the ciphertext or any header field changed since sealing.
    #[error("the bundle does not authenticate: wrong key, or the envelope was changed")]
    Authentication,
    #[error("the decrypted bundle does not match its recorded SHA-256")]
    Digest,
}

/// A fresh random nonce (the OS's random source): never reused with a data key, which is
/// itself new for every bundle.
pub fn random_nonce() -> [u8; NONCE_BYTES] {
    use aes_gcm::aead::AeadCore as _;
    let nonce = Aes256Gcm::generate_nonce(&mut aes_gcm::aead::OsRng);
    let mut out = [0u8; NONCE_BYTES];
    out.copy_from_slice(nonce.as_slice());
    out
}

/// The KMS encryption context binding a data key to one bundle and run.
pub fn encryption_context(bundle: &str, run: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("lifeboat:bundle".to_owned(), bundle.to_owned()),
        ("lifeboat:run".to_owned(), run.to_owned()),
    ])
}

impl Envelope {
    /// Seals `content` with `data_key` (from KMS GenerateDataKey, plaintext half) under
    /// `nonce` (random, never reused with that key).
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        bundle: &str,
        run: &str,
        taken_at: DateTime<Utc>,
        kms_key_id: &str,
        data_key: &[u8],
        encrypted_data_key: &[u8],
        nonce: &[u8],
        content: &Bundle,
    ) -> Result<Self, BundleError> {
        if data_key.len() != KEY_BYTES {
            return Err(BundleError::KeyLength(data_key.len()));
        }
        if nonce.len() != NONCE_BYTES {
            return Err(BundleError::NonceLength(nonce.len()));
        }
        let plaintext = serde_json::to_vec(content).map_err(|e| BundleError::Malformed(e.to_string()))?;
        let mut items: Vec<ItemRef> = content.items.iter().map(ConfigItem::reference).collect();
        items.sort();
        let mut envelope = Self {
            format: FORMAT.to_owned(),
            bundle: bundle.to_owned(),
            run: run.to_owned(),
            taken_at,
            kms_key_id: kms_key_id.to_owned(),
            encrypted_data_key: STANDARD.encode(encrypted_data_key),
            nonce: STANDARD.encode(nonce),
            items,
            plaintext_sha256: sha256_hex(&plaintext),
            ciphertext: String::new(),
        };
        let aad = envelope.associated_data();
        let cipher = Aes256Gcm::new_from_slice(data_key).map_err(|_| BundleError::KeyLength(data_key.len()))?;
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| BundleError::Authentication)?;
        envelope.ciphertext = STANDARD.encode(sealed);
        Ok(envelope)
    }

    /// Every field but the ciphertext, in a fixed order: what AES-GCM authenticates.
    fn associated_data(&self) -> Vec<u8> {
        let header = serde_json::json!([
            self.format,
            self.bundle,
            self.run,
            self.taken_at,
            self.kms_key_id,
            self.encrypted_data_key,
            self.nonce,
            self.items,
            self.plaintext_sha256,
        ]);
        header.to_string().into_bytes()
    }

    /// The data key's KMS ciphertext.
    pub fn encrypted_data_key(&self) -> Result<Vec<u8>, BundleError> {
        STANDARD
            .decode(&self.encrypted_data_key)
            .map_err(|_| BundleError::Malformed("encrypted_data_key is not base64".into()))
    }

    /// Decrypts and checks the bundle with `data_key` (KMS Decrypt of the encrypted key).
    pub fn open(&self, data_key: &[u8]) -> Result<Bundle, BundleError> {
        if self.format != FORMAT {
            return Err(BundleError::Malformed(format!("format {:.40?}", self.format)));
        }
        if data_key.len() != KEY_BYTES {
            return Err(BundleError::KeyLength(data_key.len()));
        }
        let nonce = STANDARD
            .decode(&self.nonce)
            .map_err(|_| BundleError::Malformed("nonce is not base64".into()))?;
        if nonce.len() != NONCE_BYTES {
            return Err(BundleError::NonceLength(nonce.len()));
        }
        let sealed = STANDARD
            .decode(&self.ciphertext)
            .map_err(|_| BundleError::Malformed("ciphertext is not base64".into()))?;
        let cipher = Aes256Gcm::new_from_slice(data_key).map_err(|_| BundleError::KeyLength(data_key.len()))?;
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: &self.associated_data(),
                },
            )
            .map_err(|_| BundleError::Authentication)?;
        if sha256_hex(&plaintext) != self.plaintext_sha256 {
            return Err(BundleError::Digest);
        }
        let bundle: Bundle =
            serde_json::from_slice(&plaintext).map_err(|e| BundleError::Malformed(format!("content: {e}")))?;
        let mut refs: Vec<ItemRef> = bundle.items.iter().map(ConfigItem::reference).collect();
        refs.sort();
        if refs != self.items {
            return Err(BundleError::Malformed(
                "the item list does not match the content".into(),
            ));
        }
        Ok(bundle)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7; 32];
    const NONCE: [u8; 12] = [9; 12];

    fn item(kind: ItemKind, name: &str, value: &str) -> ConfigItem {
        ConfigItem {
            kind,
            name: name.into(),
            version: "3".into(),
            parameter_type: (kind == ItemKind::SsmParameter).then(|| "SecureString".into()),
            value: value.into(),
            binary: false,
        }
    }

    fn bundle() -> Bundle {
        Bundle {
            items: vec![
                item(ItemKind::SsmParameter, "/orders/db/password", "hunter2-parameter"),
                item(ItemKind::Secret, "orders/api-key", "s3cr3t-api-key-value"),
            ],
        }
    }

    fn sealed() -> Envelope {
        Envelope::seal(
            "orders-config",
            "lb-orders-config-20261123-1800",
            "2026-11-23T18:00:00Z".parse().unwrap(),
            "arn:aws:kms:us-west-2:123456789012:key/k",
            &KEY,
            b"kms-ciphertext-of-the-data-key",
            &NONCE,
            &bundle(),
        )
        .unwrap()
    }

    #[test]
    fn a_sealed_bundle_opens_with_its_key_and_shows_no_plaintext() {
        let e = sealed();
        assert_eq!(e.open(&KEY).unwrap(), bundle());
        let stored = String::from_utf8(e.to_json()).unwrap();
        for secret in ["hunter2-parameter", "s3cr3t-api-key-value"] {
            assert!(!stored.contains(secret), "plaintext in the envelope");
            assert!(!format!("{:?}", bundle()).contains(secret), "plaintext in Debug");
        }
        assert!(stored.contains("/orders/db/password"), "names are readable");
        assert_eq!(Envelope::from_json(stored.as_bytes()).unwrap(), e);
        assert_eq!(e.encrypted_data_key().unwrap(), b"kms-ciphertext-of-the-data-key");
    }

    #[test]
    fn a_wrong_key_a_changed_byte_or_a_changed_header_fails_to_open() {
        let e = sealed();
        assert_eq!(e.open(&[8; 32]), Err(BundleError::Authentication));
        let mut raw = STANDARD.decode(&e.ciphertext).unwrap();
        for i in [0, raw.len() / 2, raw.len() - 1] {
            raw[i] ^= 0x01;
            let mut t = e.clone();
            t.ciphertext = STANDARD.encode(&raw);
            assert_eq!(t.open(&KEY), Err(BundleError::Authentication), "byte {i}");
            raw[i] ^= 0x01;
        }
        let mut renamed = e.clone();
        renamed.bundle = "other".into();
        assert_eq!(renamed.open(&KEY), Err(BundleError::Authentication));
        let mut fewer = e.clone();
        fewer.items.pop();
        assert_eq!(fewer.open(&KEY), Err(BundleError::Authentication));
        let mut other_key = e;
        other_key.kms_key_id = "arn:aws:kms:us-west-2:123456789012:key/evil".into();
        assert_eq!(other_key.open(&KEY), Err(BundleError::Authentication));
    }

    #[test]
    fn bad_keys_nonces_and_documents_are_errors() {
        let b = bundle();
        let at = "2026-11-23T18:00:00Z".parse().unwrap();
        assert_eq!(
            Envelope::seal("b", "r", at, "k", &[1; 16], b"x", &NONCE, &b),
            Err(BundleError::KeyLength(16))
        );
        assert_eq!(
            Envelope::seal("b", "r", at, "k", &KEY, b"x", &[1; 8], &b),
            Err(BundleError::NonceLength(8))
        );
        assert!(matches!(Envelope::from_json(b"{}"), Err(BundleError::Malformed(_))));
        let mut e = sealed();
        e.nonce = "***".into();
        assert!(matches!(e.open(&KEY), Err(BundleError::Malformed(_))));
    }

    proptest! {
        #[test]
        fn any_bundle_round_trips(
            items in proptest::collection::vec(("[a-z/]{1,20}", ".{0,64}", any::<bool>()), 0..20),
            key in proptest::array::uniform32(any::<u8>()),
        ) {
            let content = Bundle {
                items: items
                    .iter()
                    .map(|(n, v, secret)| item(if *secret { ItemKind::Secret } else { ItemKind::SsmParameter }, n, v))
                    .collect(),
            };
            let at = "2026-11-23T18:00:00Z".parse().unwrap();
            let e = Envelope::seal("b", "r", at, "k", &key, b"x", &NONCE, &content).unwrap();
            prop_assert_eq!(e.open(&key).unwrap(), content);
        }
    }
}
