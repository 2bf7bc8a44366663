//! The KMS key vault: `GenerateDataKey` and `Decrypt` under an encryption context, so a data key
//! wrapped for one user and provider cannot be unwrapped for another.

use std::collections::HashMap;

use super::KmsKey;
use async_trait::async_trait;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use bestchat_domain::ports::keys::{DataKey, KeyVault, VaultError};

pub struct KmsKeyVault {
    key: KmsKey,
}

impl KmsKeyVault {
    pub fn new(key_id: String) -> Self {
        Self {
            key: KmsKey::new(key_id),
        }
    }

    pub fn with_client(key_id: String, client: aws_sdk_kms::Client) -> Self {
        Self {
            key: KmsKey::with_client(key_id, client),
        }
    }
}

fn context_map(context: &[(&str, &str)]) -> HashMap<String, String> {
    context
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn vault_error<E>(e: aws_sdk_kms::error::SdkError<E>) -> VaultError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match e.code() {
        Some("InvalidCiphertextException" | "IncorrectKeyException" | "AccessDeniedException") => {
            VaultError::Rejected(e.message().unwrap_or("KMS refused the key").to_owned())
        }
        _ => VaultError::Unavailable(format!("{e:?}")),
    }
}

#[async_trait]
impl KeyVault for KmsKeyVault {
    async fn generate_data_key(&self, context: &[(&str, &str)]) -> Result<DataKey, VaultError> {
        let out = self
            .key
            .client()
            .await
            .generate_data_key()
            .key_id(&self.key.id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await
            .map_err(vault_error)?;
        let plaintext: [u8; 32] = out
            .plaintext
            .map(Blob::into_inner)
            .unwrap_or_default()
            .try_into()
            .map_err(|_| VaultError::Unavailable("KMS returned no 256-bit key".into()))?;
        Ok(DataKey {
            plaintext,
            wrapped: out
                .ciphertext_blob
                .map(Blob::into_inner)
                .unwrap_or_default(),
            vault_key_id: out.key_id.unwrap_or_else(|| self.key.id.clone()),
        })
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        vault_key_id: &str,
        context: &[(&str, &str)],
    ) -> Result<[u8; 32], VaultError> {
        let out = self
            .key
            .client()
            .await
            .decrypt()
            .key_id(vault_key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await
            .map_err(vault_error)?;
        out.plaintext
            .map(Blob::into_inner)
            .unwrap_or_default()
            .try_into()
            .map_err(|_| VaultError::Rejected("KMS returned a key of the wrong size".into()))
    }
}
