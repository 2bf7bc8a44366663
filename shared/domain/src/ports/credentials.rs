//! Passwords that change: a database or cache that authenticates with short-lived tokens (IAM
//! authentication) asks for a fresh one for every new connection.

use async_trait::async_trait;

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot make a connection password: {0}")]
pub struct CredentialError(pub String);

#[async_trait]
pub trait ConnectionPassword: Send + Sync {
    /// A password valid for a connection opened now.
    async fn password(&self) -> Result<String, CredentialError>;
}
