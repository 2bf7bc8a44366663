//! The one error type use cases return, and its mapping to the API's error shape.

use bestchat_domain::ports::keys::VaultError;
use bestchat_domain::ports::store::StoreError;
use bestchat_domain::{DomainError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl AppError {
    /// What the client sees. Store details stay in the log, tagged with the request id.
    pub fn to_public(&self, request_id: &str) -> DomainError {
        match self {
            Self::Domain(e) => e.clone(),
            Self::Store(StoreError::Conflict(detail)) => {
                tracing::info!(request_id, detail, "store conflict");
                DomainError::new(
                    ErrorCode::Conflict,
                    "the request conflicts with existing data",
                )
            }
            Self::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(request_id, detail, "store unavailable");
                DomainError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the service is briefly unavailable; retry shortly (request {request_id})"
                    ),
                )
            }
            Self::Vault(VaultError::Unavailable(detail)) => {
                tracing::error!(request_id, detail, "key vault unavailable");
                DomainError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the key vault is briefly unavailable; retry shortly (request {request_id})"
                    ),
                )
            }
            Self::Vault(VaultError::Rejected(detail)) => {
                tracing::error!(request_id, detail, "a stored key cannot be decrypted");
                DomainError::new(
                    ErrorCode::Internal,
                    format!(
                        "a stored API key cannot be decrypted; set it again (request {request_id})"
                    ),
                )
            }
            Self::Store(StoreError::Internal(detail)) => {
                tracing::error!(request_id, detail, "store failure");
                DomainError::new(
                    ErrorCode::Internal,
                    format!("an internal error occurred (request {request_id})"),
                )
            }
        }
    }
}
