//! The stable error codes of the public API and the public error every use case ends in.
//!
//! Each code knows its HTTP status, whether retrying the same request later may succeed, and a
//! fixed public sentence. Clients only ever see a code, a sentence written here or by our own
//! validation, and a request id; the detail of what went wrong stays in the log.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! error_codes {
    ($($variant:ident => $text:literal, $status:literal, $retryable:literal, $sentence:literal;)+) => {
        /// Stable snake_case codes; clients may match on them, so a code never changes meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ::schemars::JsonSchema)]
        pub enum ErrorCode {
            $(#[serde(rename = $text)] $variant),+
        }

        impl ErrorCode {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// The HTTP status API.md pairs with the code.
            pub const fn http_status(self) -> u16 {
                match self { $(Self::$variant => $status),+ }
            }

            /// Whether the same request may succeed if tried again later.
            pub const fn retryable(self) -> bool {
                match self { $(Self::$variant => $retryable),+ }
            }

            /// The sentence a client sees when nothing more specific (and safe) can be said.
            pub const fn sentence(self) -> &'static str {
                match self { $(Self::$variant => $sentence),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

error_codes! {
    InvalidRequest => "invalid_request", 400, false, "the request is not valid";
    InvalidJson => "invalid_json", 400, false, "the request body is not valid JSON";
    InvalidCursor => "invalid_cursor", 400, false, "the cursor is not one this list returned";
    Unauthorized => "unauthorized", 401, false, "a valid bearer token is required";
    InvalidSignature => "invalid_signature", 400, false, "the signature is missing, wrong or too old";
    BudgetExceeded => "budget_exceeded", 402, false, "the spending limit is reached; it resets at the start of the next period";
    Forbidden => "forbidden", 403, false, "this needs a role the caller does not have";
    StorageQuotaExceeded => "storage_quota_exceeded", 403, false, "this file would pass the storage this user may use; delete files first";
    UserNotFound => "user_not_found", 404, false, "no such user";
    FileNotFound => "file_not_found", 404, false, "no such file for this user";
    BillingOff => "billing_off", 404, false, "billing is not set up on this deployment";
    ConversationNotFound => "conversation_not_found", 404, false, "no such conversation for this user";
    MessageNotFound => "message_not_found", 404, false, "no such message for this user";
    ProviderConfigNotFound => "provider_config_not_found", 404, false, "no such provider configuration for this user";
    ToolNotFound => "tool_not_found", 404, false, "no such tool for this user";
    ToolExecutionNotFound => "tool_execution_not_found", 404, false, "no such tool execution for this user";
    McpServerNotFound => "mcp_server_not_found", 404, false, "no such MCP server for this user";
    McpUnavailable => "mcp_unavailable", 422, false, "the MCP server could not be listed";
    RouteNotFound => "route_not_found", 404, false, "no route matches this method and path";
    Conflict => "conflict", 409, false, "the request conflicts with existing data";
    PayloadTooLarge => "payload_too_large", 413, false, "the request is too large";
    FileTooLarge => "file_too_large", 413, false, "the file is larger than this deployment accepts";
    UnsupportedFileType => "unsupported_file_type", 415, false, "this kind of file is not accepted";
    FileNotReady => "file_not_ready", 409, false, "the file's bytes are missing, differ from what was declared, or are not processed yet";
    ValidationFailed => "validation_failed", 422, false, "the request has an invalid field";
    InvalidTool => "invalid_tool", 422, false, "the tool's manifest or module is not acceptable";
    RateLimited => "rate_limited", 429, true, "too many requests; retry shortly";
    TooManyConnections => "too_many_connections", 429, true, "this user has too many open connections; close one first";
    ProviderError => "provider_error", 502, true, "the model provider failed to answer";
    ProviderKeyRefused => "provider_key_refused", 502, false, "the model provider refused the API key";
    ProviderNotConfigured => "provider_not_configured", 422, false, "the model cannot be used: its provider is not set up for this user";
    ContextTooLarge => "context_too_large", 422, false, "the message and system prompt do not fit the model's context window";
    Incomplete => "incomplete", 502, true, "the answer was cut off; what arrived is kept";
    AnswerTooLarge => "answer_too_large", 502, false, "the answer passed the largest size this deployment keeps; what arrived up to it is kept";
    TurnTimeout => "turn_timeout", 504, true, "the answer took longer than this deployment allows; what arrived is kept";
    ToolStepLimit => "tool_step_limit", 422, false, "the answer stopped: it used as many tool steps as one answer may";
    TurnLost => "turn_lost", 503, true, "the answer stopped unexpectedly; what arrived is kept";
    Unavailable => "unavailable", 503, true, "the service is briefly unavailable; retry shortly";
    Internal => "internal", 500, false, "an internal error occurred";
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

    /// The code with its fixed sentence.
    pub fn of(code: ErrorCode) -> Self {
        Self::new(code, code.sentence())
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn conversation_not_found() -> Self {
        Self::of(ErrorCode::ConversationNotFound)
    }

    pub fn message_not_found() -> Self {
        Self::of(ErrorCode::MessageNotFound)
    }

    pub fn invalid_cursor() -> Self {
        Self::of(ErrorCode::InvalidCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_match_as_str_and_parse() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().to_owned())
            );
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }

    #[test]
    fn every_code_is_a_client_or_server_error_with_a_sentence() {
        for code in ErrorCode::ALL {
            assert!((400..600).contains(&code.http_status()), "{code}");
            assert!(code.sentence().len() > 10, "{code}");
        }
        assert!(ErrorCode::Unavailable.retryable());
        assert!(!ErrorCode::ValidationFailed.retryable());
    }
}
