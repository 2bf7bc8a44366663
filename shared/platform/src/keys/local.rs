//! The local key vault: data keys wrapped with AES-256-GCM under a 256-bit master key kept in a
//! file created with mode 0600 on first run.

use std::path::Path;

use async_trait::async_trait;
use aws_lc_rs::aead::NONCE_LEN;
use bestchat_domain::ports::keys::{DataKey, KeyVault, VaultError};

use super::canonical_context;
use crate::aead::{self, random_bytes};
use crate::files::read_or_create_private;

pub struct LocalKeyVault {
    master: [u8; 32],
    /// `local:` and a fingerprint of the master key, so a key wrapped by another master key is
    /// refused with a clear reason.
    key_id: String,
}

impl LocalKeyVault {
    pub fn open(path: &Path) -> Result<Self, VaultError> {
        let unusable = |e: String| VaultError::Unavailable(format!("{}: {e}", path.display()));
        let mut fresh = None;
        let bytes = read_or_create_private(path, || {
            let key = random_bytes::<32>().map(|k| k.to_vec()).unwrap_or_default();
            fresh = Some(key.len());
            key
        })
        .map_err(|e| unusable(e.to_string()))?;
        let master: [u8; 32] = bytes
            .try_into()
            .map_err(|_| unusable("the master key must be exactly 32 bytes".into()))?;
        if master == [0u8; 32] {
            return Err(unusable("the master key is all zeroes".into()));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &master);
        let fingerprint: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            master,
            key_id: format!("local:{fingerprint}"),
        })
    }
}

#[async_trait]
impl KeyVault for LocalKeyVault {
    async fn generate_data_key(&self, context: &[(&str, &str)]) -> Result<DataKey, VaultError> {
        let plaintext = random_bytes::<32>().map_err(|e| VaultError::Unavailable(e.to_string()))?;
        let sealed = aead::seal(&self.master, &plaintext, &canonical_context(context))
            .map_err(|e| VaultError::Unavailable(e.to_string()))?;
        let mut wrapped = sealed.nonce.to_vec();
        wrapped.extend_from_slice(&sealed.ciphertext);
        Ok(DataKey {
            plaintext,
            wrapped,
            vault_key_id: self.key_id.clone(),
        })
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        vault_key_id: &str,
        context: &[(&str, &str)],
    ) -> Result<[u8; 32], VaultError> {
        if vault_key_id != self.key_id {
            return Err(VaultError::Rejected(format!(
                "wrapped by {vault_key_id}, but this vault holds {}",
                self.key_id
            )));
        }
        if wrapped.len() <= NONCE_LEN {
            return Err(VaultError::Rejected("the wrapped key is truncated".into()));
        }
        let (nonce, ciphertext) = wrapped.split_at(NONCE_LEN);
        let plain = aead::open(&self.master, nonce, ciphertext, &canonical_context(context))
            .map_err(|_| {
                VaultError::Rejected("the context or the wrapped key does not match".into())
            })?;
        plain
            .try_into()
            .map_err(|_| VaultError::Rejected("the data key is not 32 bytes".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wraps_and_unwraps_under_its_context_only() {
        let dir = std::env::temp_dir().join(format!("bestchat-vault-{}", std::process::id()));
        let vault = LocalKeyVault::open(&dir.join("master.key")).unwrap();
        let ctx = [("user", "u1"), ("provider", "openai")];
        let key = vault.generate_data_key(&ctx).await.unwrap();
        assert_ne!(key.wrapped[NONCE_LEN..], key.plaintext[..]);
        let reordered = [("provider", "openai"), ("user", "u1")];
        assert_eq!(
            vault
                .unwrap_data_key(&key.wrapped, &key.vault_key_id, &reordered)
                .await
                .unwrap(),
            key.plaintext
        );
        assert!(matches!(
            vault
                .unwrap_data_key(
                    &key.wrapped,
                    &key.vault_key_id,
                    &[("user", "u2"), ("provider", "openai")]
                )
                .await,
            Err(VaultError::Rejected(_))
        ));
        // Reopening the same file gives the same master key.
        let again = LocalKeyVault::open(&dir.join("master.key")).unwrap();
        assert_eq!(
            again
                .unwrap_data_key(&key.wrapped, &key.vault_key_id, &ctx)
                .await
                .unwrap(),
            key.plaintext
        );
        // Another master key refuses it by id.
        let other = LocalKeyVault::open(&dir.join("other.key")).unwrap();
        assert!(
            other
                .unwrap_data_key(&key.wrapped, &key.vault_key_id, &ctx)
                .await
                .is_err()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
