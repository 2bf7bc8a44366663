//! The wire formats. Each module maps the unified request to its provider's body and decodes
//! the provider's stream back into [`StreamEvent`]s. Decoders are dispatched through an enum, so
//! no chunk pays for dynamic dispatch or boxing.

pub mod anthropic;
pub mod bedrock;
pub mod echo;
pub mod gemini;
pub mod openai;
pub mod responses;
mod tool_calls;

use bestchat_domain::provider::Protocol;

use crate::sse::SseEvent;
use crate::types::StreamEvent;

/// Decodes one SSE-based protocol's events.
#[derive(Debug)]
pub enum Decoder {
    OpenAi(openai::Decoder),
    Responses(responses::Decoder),
    Anthropic(anthropic::Decoder),
    Gemini(gemini::Decoder),
}

impl Decoder {
    /// The decoder of an SSE protocol; `None` for protocols that do not stream SSE.
    pub fn for_protocol(protocol: Protocol) -> Option<Self> {
        match protocol {
            Protocol::OpenAi => Some(Self::OpenAi(openai::Decoder::default())),
            Protocol::OpenAiResponses => Some(Self::Responses(responses::Decoder::default())),
            Protocol::Anthropic => Some(Self::Anthropic(anthropic::Decoder::default())),
            Protocol::Gemini => Some(Self::Gemini(gemini::Decoder::default())),
            Protocol::Bedrock | Protocol::Echo => None,
        }
    }

    pub fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        match self {
            Self::OpenAi(d) => d.on_event(event, out),
            Self::Responses(d) => d.on_event(event, out),
            Self::Anthropic(d) => d.on_event(event, out),
            Self::Gemini(d) => d.on_event(event, out),
        }
    }

    /// The body ended: a stream without its terminal event becomes an `incomplete` error.
    pub fn on_end(&mut self, out: &mut Vec<StreamEvent>) {
        match self {
            Self::OpenAi(d) => d.on_end(out),
            Self::Responses(d) => d.on_end(out),
            Self::Anthropic(d) => d.on_end(out),
            Self::Gemini(d) => d.on_end(out),
        }
    }
}

/// Decodes a whole body at once (tests, benchmarks, fixtures).
pub fn decode_all(protocol: Protocol, body: &[u8]) -> Vec<StreamEvent> {
    let mut out = Vec::new();
    let Some(mut decoder) = Decoder::for_protocol(protocol) else {
        return out;
    };
    let mut parser = crate::sse::SseParser::default();
    let mut events = Vec::new();
    if parser.push(body, &mut events).is_err() || parser.finish(&mut events).is_err() {
        out.push(StreamEvent::Error(crate::types::ProviderError::protocol(
            "oversized event",
        )));
        return out;
    }
    for event in &events {
        decoder.on_event(event, &mut out);
    }
    decoder.on_end(&mut out);
    out
}

/// Longest provider error message passed on.
const ERROR_TEXT_MAX_CHARS: usize = 500;

/// The human message inside a provider's error JSON, whatever its shape
/// (`{"error": {"message"}}`, `{"message"}`, `{"error": "..."}`).
pub(crate) fn error_text(value: &serde_json::Value) -> String {
    let text = value
        .pointer("/error/message")
        .or_else(|| value.pointer("/message"))
        .or_else(|| value.get("error"))
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| value.to_string(), str::to_owned);
    text.chars().take(ERROR_TEXT_MAX_CHARS).collect()
}
