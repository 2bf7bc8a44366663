//! The stable error codes of the public API and the error every use case returns.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable snake_case codes; clients may match on them, so a code never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidJson,
    InvalidCursor,
    Unauthorized,
    ConversationNotFound,
    MessageNotFound,
    ProviderConfigNotFound,
    RouteNotFound,
    Conflict,
    PayloadTooLarge,
    ValidationFailed,
    RateLimited,
    ProviderError,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidJson => "invalid_json",
            Self::InvalidCursor => "invalid_cursor",
            Self::Unauthorized => "unauthorized",
            Self::ConversationNotFound => "conversation_not_found",
            Self::MessageNotFound => "message_not_found",
            Self::ProviderConfigNotFound => "provider_config_not_found",
            Self::RouteNotFound => "route_not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::ValidationFailed => "validation_failed",
            Self::RateLimited => "rate_limited",
            Self::ProviderError => "provider_error",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status API.md pairs with the code.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest | Self::InvalidJson | Self::InvalidCursor => 400,
            Self::Unauthorized => 401,
            Self::ConversationNotFound
            | Self::MessageNotFound
            | Self::ProviderConfigNotFound
            | Self::RouteNotFound => 404,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::ValidationFailed => 422,
            Self::RateLimited => 429,
            Self::ProviderError => 502,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure a client may see: a stable code and a human sentence with no internal detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DomainError {
    pub code: ErrorCode,
    pub message: String,
}

impl DomainError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn conversation_not_found() -> Self {
        Self::new(
            ErrorCode::ConversationNotFound,
            "no such conversation for this user",
        )
    }

    pub fn invalid_cursor() -> Self {
        Self::new(
            ErrorCode::InvalidCursor,
            "the cursor is not one this list returned",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_match_as_str() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidJson,
            ErrorCode::InvalidCursor,
            ErrorCode::Unauthorized,
            ErrorCode::ConversationNotFound,
            ErrorCode::MessageNotFound,
            ErrorCode::ProviderConfigNotFound,
            ErrorCode::RouteNotFound,
            ErrorCode::Conflict,
            ErrorCode::PayloadTooLarge,
            ErrorCode::ValidationFailed,
            ErrorCode::RateLimited,
            ErrorCode::ProviderError,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().to_owned())
            );
        }
    }
}
