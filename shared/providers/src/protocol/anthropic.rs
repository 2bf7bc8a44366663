//! Anthropic Messages: text, thinking and tool_use blocks; usage from `message_start` and
//! `message_delta` (cache reads count as input); `message_stop` is the terminal event and an
//! `error` event (such as `overloaded_error`) ends the stream.

use bestchat_domain::message::FinishReason;
use serde::Deserialize;
use serde_json::{Value, json};

use super::tool_calls::ToolCalls;
use crate::sse::SseEvent;
use crate::types::{
    ChatMessage, ChatRequest, ErrorKind, Part, ProviderError, StreamEvent, TokenUsage,
};

/// Anthropic requires `max_tokens`; this is sent when the conversation sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
pub const API_VERSION: &str = "2023-06-01";

/// The request body. Consecutive messages of one role are merged, as the API requires, so
/// several tool results travel in one user turn.
pub fn body(request: &ChatRequest, model: &str) -> Value {
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let (role, blocks) = match message {
            // Files first: Claude reads best with images and documents before the question.
            ChatMessage::User { text, parts } => {
                let mut blocks: Vec<Value> = parts
                    .iter()
                    .map(|p| {
                        let source = json!({"type": "base64", "media_type": p.media_type(),
                            "data": p.base64()});
                        match p {
                            Part::Image { .. } => json!({"type": "image", "source": source}),
                            Part::Document { name, .. } => {
                                json!({"type": "document", "source": source, "title": name})
                            }
                        }
                    })
                    .collect();
                blocks.push(json!({"type": "text", "text": text}));
                ("user", blocks)
            }
            ChatMessage::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                blocks.extend(tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
                }));
                ("assistant", blocks)
            }
            ChatMessage::Tool {
                call_id, content, ..
            } => (
                "user",
                vec![json!({"type": "tool_result", "tool_use_id": call_id, "content": content})],
            ),
        };
        match messages.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }
    let mut body = json!({
        "model": model,
        "max_tokens": request.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect::<Vec<_>>(),
        "stream": true,
    });
    if let Some(system) = &request.system {
        body["system"] = json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if !request.stop.is_empty() {
        body["stop_sequences"] = json!(request.stop);
    }
    body
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: Option<DeltaUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: Value,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct StartMessage {
    usage: Option<StartUsage>,
}

#[derive(Deserialize)]
struct StartUsage {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    cache_creation_input_tokens: Option<u32>,
    #[serde(default)]
    cache_read_input_tokens: Option<u32>,
    #[serde(default)]
    output_tokens: u32,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct DeltaUsage {
    #[serde(default)]
    output_tokens: u32,
}

#[derive(Debug, Default)]
pub struct Decoder {
    calls: ToolCalls,
    usage: TokenUsage,
    finish: Option<FinishReason>,
    done: bool,
}

impl Decoder {
    pub fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        let parsed: Event = match serde_json::from_str(&event.data) {
            Ok(e) => e,
            Err(e) => return self.fail(ProviderError::protocol(e), out),
        };
        match parsed {
            Event::MessageStart { message } => {
                if let Some(u) = message.usage {
                    let cached = u.cache_read_input_tokens.unwrap_or(0);
                    self.usage.input_tokens =
                        u.input_tokens + cached + u.cache_creation_input_tokens.unwrap_or(0);
                    self.usage.cached_tokens = cached;
                    self.usage.output_tokens = u.output_tokens;
                }
            }
            Event::ContentBlockStart {
                index,
                content_block: Block::ToolUse { id, name },
            } => self.calls.start(index, Some(&id), &name, out),
            Event::ContentBlockStart { .. } | Event::Ping | Event::Unknown => {}
            Event::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } if !text.is_empty() => {
                    out.push(StreamEvent::TextDelta(text));
                }
                BlockDelta::ThinkingDelta { thinking } if !thinking.is_empty() => {
                    out.push(StreamEvent::ReasoningDelta(thinking));
                }
                BlockDelta::InputJsonDelta { partial_json } => {
                    self.calls.arguments(index, &partial_json, out);
                }
                _ => {}
            },
            Event::ContentBlockStop { index } => self.calls.end(index, out),
            Event::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.finish = Some(finish_reason(&reason));
                }
                if let Some(u) = usage {
                    self.usage.output_tokens = u.output_tokens;
                }
            }
            Event::MessageStop => {
                self.calls.end_all(out);
                out.push(StreamEvent::Usage(self.usage));
                out.push(StreamEvent::Finish(
                    self.finish.unwrap_or(FinishReason::Stop),
                ));
                self.done = true;
            }
            Event::Error { error } => {
                let kind = match error.get("type").and_then(Value::as_str) {
                    Some("overloaded_error") => ErrorKind::Overloaded,
                    Some("rate_limit_error") => ErrorKind::RateLimited,
                    Some("api_error") => ErrorKind::Server,
                    Some("invalid_request_error") => ErrorKind::InvalidRequest,
                    Some("authentication_error" | "permission_error") => ErrorKind::Auth,
                    _ => ErrorKind::Stream,
                };
                self.fail(ProviderError::new(kind, super::error_text(&error)), out);
            }
        }
    }

    fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Error(error));
        self.done = true;
    }

    pub fn on_end(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.done {
            self.fail(ProviderError::incomplete(), out);
        }
    }
}

fn finish_reason(raw: &str) -> FinishReason {
    match raw {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}
