//! The unified request and event stream every adapter maps to and from.

use std::time::Duration;

use bestchat_domain::message::{FinishReason, ToolCall};
use serde::Serialize;

/// What to ask a model, independent of provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub temperature: Option<f64>,
    pub max_output_tokens: Option<u32>,
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChatMessage {
    /// `parts` are files the model reads itself, after the text.
    User { text: String, parts: Vec<Part> },
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, sent back to the model.
    Tool {
        call_id: String,
        name: String,
        content: String,
    },
}

impl ChatMessage {
    /// A user message of text alone.
    pub fn user(text: impl Into<String>) -> Self {
        Self::User {
            text: text.into(),
            parts: Vec::new(),
        }
    }
}

/// A file sent with a user message in a form the model reads itself (others go as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// For a model that sees images (`image/jpeg`, `image/png`, `image/gif`, `image/webp`).
    Image {
        media_type: String,
        data: std::sync::Arc<[u8]>,
    },
    /// A document the wire format takes whole (see [`crate::attachments`]).
    Document {
        name: String,
        media_type: String,
        data: std::sync::Arc<[u8]>,
    },
}

impl Part {
    pub fn data(&self) -> &[u8] {
        match self {
            Self::Image { data, .. } | Self::Document { data, .. } => data,
        }
    }

    pub fn media_type(&self) -> &str {
        match self {
            Self::Image { media_type, .. } | Self::Document { media_type, .. } => media_type,
        }
    }

    /// The bytes as base64, as JSON wire formats carry them.
    pub fn base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.data())
    }

    /// `data:<type>;base64,…`, as OpenAI's formats take inline files.
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.media_type(), self.base64())
    }
}

/// A tool the model may call; `parameters` is a JSON Schema object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    /// Every prompt token, cached or not.
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Prompt tokens served from the provider's cache (a subset of `input_tokens`).
    pub cached_tokens: u32,
    /// Output tokens spent on reasoning (a subset of `output_tokens`).
    pub reasoning_tokens: u32,
}

/// One event of a provider's answer. A stream ends with exactly one `Finish` or `Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    TextDelta(String),
    ReasoningDelta(String),
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    ToolCallDelta {
        index: u32,
        arguments: String,
    },
    ToolCallEnd {
        index: u32,
    },
    /// The provider's opaque state for a call, to send back with it.
    ToolCallSignature {
        index: u32,
        signature: String,
    },
    Usage(TokenUsage),
    Finish(FinishReason),
    Error(ProviderError),
}

impl StreamEvent {
    /// Content the user sees: after one of these there is no silent switch to another model.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            Self::TextDelta(_) | Self::ReasoningDelta(_) | Self::ToolCallStart { .. }
        )
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Finish(_) | Self::Error(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No connection could be made.
    Connect,
    /// Nothing arrived before the first-byte timeout.
    Timeout,
    /// 429: the provider asks us to slow down.
    RateLimited,
    /// The provider says it is overloaded (Anthropic's 529 / `overloaded_error`).
    Overloaded,
    /// 5xx.
    Server,
    /// 401/403: the key is missing, wrong or not allowed.
    Auth,
    /// 404: usually an unknown model.
    NotFound,
    /// 400/413/422: the provider refuses the request as made.
    InvalidRequest,
    /// The body could not be understood.
    Protocol,
    /// The stream ended before its terminal event.
    Incomplete,
    /// The stream stalled longer than the idle timeout.
    Idle,
    /// The provider reported an error inside the stream.
    Stream,
    /// The provider's address is one the private-address guard does not allow.
    Blocked,
}

impl ErrorKind {
    /// Failures worth trying again before the first token.
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            Self::Connect
                | Self::Timeout
                | Self::RateLimited
                | Self::Overloaded
                | Self::Server
                | Self::Incomplete
                | Self::Idle
                | Self::Stream
        )
    }

    /// Failures that say the provider is unhealthy (not the request, not our quota).
    pub const fn counts_against_provider(self) -> bool {
        matches!(
            self,
            Self::Connect
                | Self::Timeout
                | Self::Overloaded
                | Self::Server
                | Self::Incomplete
                | Self::Idle
        )
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::Server => "server",
            Self::Auth => "auth",
            Self::NotFound => "not_found",
            Self::InvalidRequest => "invalid_request",
            Self::Protocol => "protocol",
            Self::Incomplete => "incomplete",
            Self::Idle => "idle",
            Self::Stream => "stream",
            Self::Blocked => "blocked",
        }
    }

    /// What a client is told: a fixed sentence, never the provider's own words (those go to
    /// the log, and may carry anything an upstream or an attacker's server put in them).
    pub const fn public_sentence(self) -> &'static str {
        match self {
            Self::Connect => "the model provider could not be reached",
            Self::Timeout => "the model provider did not answer in time",
            Self::RateLimited => "the model provider is limiting requests; retry shortly",
            Self::Overloaded => "the model provider is overloaded; retry shortly",
            Self::Server => "the model provider had an internal error",
            Self::Auth => "the model provider refused the API key",
            Self::NotFound => "the model provider does not know this model",
            Self::InvalidRequest => "the model provider refused the request",
            Self::Protocol => "the model provider's answer could not be understood",
            Self::Incomplete => "the connection to the model provider broke",
            Self::Idle => "the model provider went silent",
            Self::Stream => "the model provider reported an error while answering",
            Self::Blocked => {
                "the provider's address is on a private or local network, which this deployment does not reach"
            }
        }
    }

    /// The kind an HTTP status maps to.
    pub fn from_status(status: u16) -> Self {
        match status {
            401 | 403 => Self::Auth,
            404 => Self::NotFound,
            408 => Self::Timeout,
            429 => Self::RateLimited,
            529 => Self::Overloaded,
            500..=599 => Self::Server,
            _ => Self::InvalidRequest,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// The provider's own words, when it gave any.
    pub message: String,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }

    pub fn incomplete() -> Self {
        Self::new(
            ErrorKind::Incomplete,
            "the stream ended before the provider finished",
        )
    }

    pub fn protocol(detail: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::Protocol,
            format!("unreadable provider data: {detail}"),
        )
    }
}
