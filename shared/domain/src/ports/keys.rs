//! The key vault port: wraps and unwraps per-record data keys (KMS in production, a local master
//! key on a laptop). The context is bound to the wrapped key: unwrapping under another context
//! fails.

use async_trait::async_trait;

/// A fresh 256-bit data key: the plaintext to encrypt with, and the wrapped form to store.
pub struct DataKey {
    pub plaintext: [u8; 32],
    pub wrapped: Vec<u8>,
    /// Which vault key wrapped it.
    pub vault_key_id: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    #[error("key vault unavailable: {0}")]
    Unavailable(String),
    /// The wrapped key, its context or the vault key does not match.
    #[error("the data key cannot be unwrapped: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait KeyVault: Send + Sync {
    async fn generate_data_key(&self, context: &[(&str, &str)]) -> Result<DataKey, VaultError>;

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        vault_key_id: &str,
        context: &[(&str, &str)],
    ) -> Result<[u8; 32], VaultError>;
}

/// Authenticates what the deployment wrote for itself to read back later (compiled code): a
/// tag under a key only its own functions can use (a KMS HMAC key in AWS, a file on a
/// laptop), checked before what was read is trusted.
#[async_trait]
pub trait Authenticator: Send + Sync {
    async fn tag(&self, message: &[u8]) -> Result<Vec<u8>, VaultError>;

    /// `false` for a tag that is not this key's for `message`.
    async fn verify(&self, message: &[u8], tag: &[u8]) -> Result<bool, VaultError>;
}
