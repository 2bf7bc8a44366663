//! The one error type use cases return. Each variant knows its public code (and through it the
//! HTTP status and whether a retry may help); [`AppError::to_public`] logs the detail under the
//! request id and gives the client only the code, a fixed sentence and that id.

use bestchat_domain::ports::blobs::BlobError;
use bestchat_domain::ports::cache::CacheError;
use bestchat_domain::ports::keys::VaultError;
use bestchat_domain::ports::realtime::{InvokeError, RegistryError};
use bestchat_domain::ports::store::StoreError;
use bestchat_domain::{DomainError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Already public: a validation failure, a not-found, written by our own code.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// An event function was invoked with a payload that is not its job.
    #[error("invalid event payload: {0}")]
    Payload(String),
    /// Something that should not happen (a value that does not encode, a broken invariant).
    #[error("internal: {0}")]
    Internal(String),
}

/// Said of a stored key that no longer opens: the user can fix it, nothing else can.
const KEY_REJECTED: &str =
    "a stored API key cannot be opened; set it again with PUT /api/provider-configs/{provider}";

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Domain(e) => e.code,
            Self::Store(StoreError::Conflict(_)) => ErrorCode::Conflict,
            Self::Store(StoreError::Unavailable(_))
            | Self::Vault(VaultError::Unavailable(_))
            | Self::Registry(_)
            | Self::Cache(_)
            | Self::Invoke(_)
            | Self::Blob(BlobError::Unavailable(_)) => ErrorCode::Unavailable,
            Self::Blob(BlobError::TooLarge(_)) => ErrorCode::PayloadTooLarge,
            Self::Blob(BlobError::Internal(_)) => ErrorCode::Internal,
            Self::Vault(VaultError::Rejected(_)) => ErrorCode::ProviderNotConfigured,
            Self::Store(StoreError::Internal(_)) | Self::Internal(_) => ErrorCode::Internal,
            Self::Payload(_) => ErrorCode::InvalidRequest,
        }
    }

    pub fn retryable(&self) -> bool {
        self.code().retryable()
    }

    /// The name an event function reports to Lambda as its error type.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Domain(_) => "BestChat.Rejected",
            Self::Store(StoreError::Conflict(_)) => "BestChat.StoreConflict",
            Self::Store(StoreError::Unavailable(_)) => "BestChat.StoreUnavailable",
            Self::Store(StoreError::Internal(_)) => "BestChat.StoreFailure",
            Self::Vault(VaultError::Unavailable(_)) => "BestChat.KeyVaultUnavailable",
            Self::Vault(VaultError::Rejected(_)) => "BestChat.KeyRejected",
            Self::Registry(_) => "BestChat.ConnectionsUnavailable",
            Self::Cache(_) => "BestChat.CacheUnavailable",
            Self::Invoke(_) => "BestChat.InvokeFailed",
            Self::Blob(_) => "BestChat.BlobStoreFailure",
            Self::Payload(_) => "BestChat.InvalidPayload",
            Self::Internal(_) => "BestChat.Internal",
        }
    }

    /// What the client sees. Everything but our own validation text is replaced by the code's
    /// fixed sentence; the detail goes to the log, tagged with the request id.
    pub fn to_public(&self, request_id: &str) -> DomainError {
        let code = self.code();
        match self {
            Self::Domain(e) => e.clone(),
            _ => {
                if code.http_status() >= 500 {
                    tracing::error!(request_id, error = %self, code = %code, "request failed");
                } else {
                    tracing::info!(request_id, error = %self, code = %code, "request refused");
                }
                let sentence = match self {
                    Self::Vault(VaultError::Rejected(_)) => KEY_REJECTED,
                    _ => code.sentence(),
                };
                DomainError::new(code, sentence)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_public_error() {
        let secret_detail = "wrapped by local:9f2c… relation \"messages\" at 10.0.3.7";
        for error in [
            AppError::Store(StoreError::Internal(secret_detail.into())),
            AppError::Store(StoreError::Unavailable(secret_detail.into())),
            AppError::Store(StoreError::Conflict(secret_detail.into())),
            AppError::Vault(VaultError::Rejected(secret_detail.into())),
            AppError::Vault(VaultError::Unavailable(secret_detail.into())),
            AppError::Registry(RegistryError(secret_detail.into())),
            AppError::Cache(CacheError(secret_detail.into())),
            AppError::Payload(secret_detail.into()),
            AppError::Blob(BlobError::Unavailable(secret_detail.into())),
            AppError::Internal(secret_detail.into()),
        ] {
            let public = error.to_public("req-1");
            assert_eq!(public.code, error.code());
            assert!(!public.message.contains("9f2c"), "{public:?}");
            assert!(!public.message.contains("10.0.3.7"), "{public:?}");
            assert!(error.error_type().starts_with("BestChat."));
        }
    }

    #[test]
    fn codes_carry_status_and_retryability() {
        let unavailable = AppError::Store(StoreError::Unavailable("pool".into()));
        assert_eq!(unavailable.code().http_status(), 503);
        assert!(unavailable.retryable());
        let conflict = AppError::Store(StoreError::Conflict("dup".into()));
        assert_eq!(conflict.code().http_status(), 409);
        assert!(!conflict.retryable());
    }
}
