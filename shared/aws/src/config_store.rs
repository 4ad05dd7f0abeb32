//! The config-backup ports over AWS: parameters and secrets from SSM Parameter Store and
//! Secrets Manager, data keys from KMS. The bundle format and its sealing are in
//! [`lifeboat_domain::config_bundle`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::port_error;
use lifeboat_domain::config_bundle::{ConfigItem, ItemKind, KEY_BYTES};
use lifeboat_ports::config::{ConfigStore, DataKeys};
use lifeboat_ports::{PortError, PortResult};

/// [`ConfigStore`] on SSM Parameter Store and Secrets Manager.
#[derive(Debug, Clone)]
pub struct AwsConfigStore {
    ssm: aws_sdk_ssm::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

impl AwsConfigStore {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            ssm: crate::clients::ssm(sdk),
            secrets: crate::clients::secretsmanager(sdk),
        }
    }
}

fn parameter_item(p: &aws_sdk_ssm::types::Parameter) -> Option<ConfigItem> {
    Some(ConfigItem {
        kind: ItemKind::SsmParameter,
        name: p.name()?.to_owned(),
        version: p.version().to_string(),
        parameter_type: p.r#type().map(|t| t.as_str().to_owned()),
        value: p.value()?.to_owned(),
        binary: false,
    })
}

#[async_trait]
impl ConfigStore for AwsConfigStore {
    async fn parameters(&self, path: &str) -> PortResult<Vec<ConfigItem>> {
        if !path.ends_with('/') {
            let out = self
                .ssm
                .get_parameter()
                .name(path)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| port_error("GetParameter", e))?;
            return Ok(out.parameter().and_then(parameter_item).into_iter().collect());
        }
        let pages: Vec<_> = self
            .ssm
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .with_decryption(true)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| port_error("GetParametersByPath", e))?;
        Ok(pages
            .iter()
            .flat_map(aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathOutput::parameters)
            .filter_map(parameter_item)
            .collect())
    }

    async fn secrets(&self, prefix: &str) -> PortResult<Vec<ConfigItem>> {
        let filter = aws_sdk_secretsmanager::types::Filter::builder()
            .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
            .values(prefix)
            .build();
        let pages: Vec<_> = self
            .secrets
            .list_secrets()
            .filters(filter)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| port_error("ListSecrets", e))?;
        let mut out = Vec::new();
        for s in pages
            .iter()
            .flat_map(aws_sdk_secretsmanager::operation::list_secrets::ListSecretsOutput::secret_list)
        {
            let (Some(name), Some(arn)) = (s.name(), s.arn()) else {
                continue;
            };
            // The Name filter matches words anywhere; keep true prefixes only.
            if !name.starts_with(prefix) {
                continue;
            }
            let v = self
                .secrets
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|e| port_error("GetSecretValue", e))?;
            let (value, binary) = match (v.secret_string(), v.secret_binary()) {
                (Some(text), _) => (text.to_owned(), false),
                (None, Some(blob)) => (STANDARD.encode(blob.as_ref()), true),
                (None, None) => continue,
            };
            out.push(ConfigItem {
                kind: ItemKind::Secret,
                name: name.to_owned(),
                version: v.version_id().unwrap_or_default().to_owned(),
                parameter_type: None,
                value,
                binary,
            });
        }
        Ok(out)
    }

    async fn put(&self, item: &ConfigItem, name: &str) -> PortResult<()> {
        match item.kind {
            ItemKind::SsmParameter => {
                let kind = item.parameter_type.as_deref().map_or(
                    aws_sdk_ssm::types::ParameterType::String,
                    aws_sdk_ssm::types::ParameterType::from,
                );
                self.ssm
                    .put_parameter()
                    .name(name)
                    .value(&item.value)
                    .r#type(kind)
                    .overwrite(true)
                    .send()
                    .await
                    .map_err(|e| port_error("PutParameter", e))?;
            }
            ItemKind::Secret => {
                let bytes = if item.binary {
                    Some(
                        STANDARD
                            .decode(&item.value)
                            .map_err(|_| PortError::Invalid(format!("secret {name}: binary value is not base64")))?,
                    )
                } else {
                    None
                };
                let put = self.secrets.put_secret_value().secret_id(name);
                let put = match &bytes {
                    Some(b) => put.secret_binary(Blob::new(b.clone())),
                    None => put.secret_string(&item.value),
                };
                match put.send().await.map_err(|e| port_error("PutSecretValue", e)) {
                    Ok(_) => {}
                    Err(PortError::NotFound(_)) => {
                        let create = self.secrets.create_secret().name(name);
                        let create = match bytes {
                            Some(b) => create.secret_binary(Blob::new(b)),
                            None => create.secret_string(&item.value),
                        };
                        create.send().await.map_err(|e| port_error("CreateSecret", e))?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// [`DataKeys`] on KMS.
#[derive(Debug, Clone)]
pub struct KmsDataKeys {
    kms: aws_sdk_kms::Client,
}

impl KmsDataKeys {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            kms: crate::clients::kms(sdk),
        }
    }
}

#[async_trait]
impl DataKeys for KmsDataKeys {
    async fn generate(&self, key_id: &str, context: &BTreeMap<String, String>) -> PortResult<(Vec<u8>, Vec<u8>)> {
        let out = self
            .kms
            .generate_data_key()
            .key_id(key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| port_error("GenerateDataKey", e))?;
        let (Some(plain), Some(sealed)) = (out.plaintext(), out.ciphertext_blob()) else {
            return Err(PortError::Invalid("GenerateDataKey returned no key".into()));
        };
        if plain.as_ref().len() != KEY_BYTES {
            return Err(PortError::Invalid(format!(
                "GenerateDataKey returned a {}-byte key",
                plain.as_ref().len()
            )));
        }
        Ok((plain.as_ref().to_vec(), sealed.as_ref().to_vec()))
    }

    async fn decrypt(&self, encrypted: &[u8], context: &BTreeMap<String, String>) -> PortResult<Vec<u8>> {
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(encrypted.to_vec()))
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| port_error("Decrypt", e))?;
        out.plaintext()
            .map(|p| p.as_ref().to_vec())
            .ok_or_else(|| PortError::Invalid("Decrypt returned no plaintext".into()))
    }
}
