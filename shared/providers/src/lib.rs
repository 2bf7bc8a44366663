//! One streaming interface over the LLM providers' wire formats.
//!
//! A [`ChatRequest`] goes out through the adapter of its endpoint's protocol (OpenAI Chat
//! Completions, OpenAI Responses, Anthropic Messages, Gemini, Bedrock Converse, or the offline
//! echo provider) and comes back as one stream of [`StreamEvent`]s. [`failover`] adds retries,
//! fallbacks and a shared circuit breaker; [`catalog`] describes providers and models;
//! [`pricing`] turns usage into micro-dollars.

pub mod attachments;
pub mod breaker;
pub mod catalog;
pub mod client;
pub mod discovery;
pub mod failover;
pub mod pricing;
pub mod protocol;
pub mod sse;
pub mod types;

pub use client::{Auth, Endpoint, EventStream, HttpSettings, Providers};
pub use types::{
    ChatMessage, ChatRequest, ErrorKind, Part, ProviderError, StreamEvent, TokenUsage, ToolSpec,
};
