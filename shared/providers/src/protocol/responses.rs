//! OpenAI Responses API, for models that only speak it: output text, reasoning summaries and
//! function calls by output index; `response.completed`, `response.incomplete` and
//! `response.failed` are terminal.

use bestchat_domain::message::FinishReason;
use serde::Deserialize;
use serde_json::{Value, json};

use super::tool_calls::ToolCalls;
use crate::sse::SseEvent;
use crate::types::{
    ChatMessage, ChatRequest, ErrorKind, Part, ProviderError, StreamEvent, TokenUsage,
};

pub fn body(request: &ChatRequest, model: &str) -> Value {
    let mut input = Vec::new();
    for message in &request.messages {
        match message {
            ChatMessage::User { text, parts } => {
                let mut content = vec![json!({"type": "input_text", "text": text})];
                content.extend(parts.iter().map(|p| match p {
                    Part::Image { .. } => json!({"type": "input_image", "image_url": p.data_url()}),
                    Part::Document { name, .. } => json!({"type": "input_file",
                        "filename": name, "file_data": p.data_url()}),
                }));
                input.push(json!({"role": "user", "content": content}));
            }
            ChatMessage::Assistant { text, tool_calls } => {
                if !text.is_empty() {
                    input.push(json!({
                        "role": "assistant", "content": [{"type": "output_text", "text": text}],
                    }));
                }
                input.extend(tool_calls.iter().map(|c| {
                    json!({"type": "function_call", "call_id": c.id, "name": c.name,
                           "arguments": c.arguments.to_string()})
                }));
            }
            ChatMessage::Tool {
                call_id, content, ..
            } => input.push(json!({
                "type": "function_call_output", "call_id": call_id, "output": content,
            })),
        }
    }
    let mut body = json!({"model": model, "input": input, "stream": true, "store": false});
    if let Some(system) = &request.system {
        body["instructions"] = json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description,
                       "parameters": t.parameters})
            })
            .collect();
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(n) = request.max_output_tokens {
        body["max_output_tokens"] = json!(n);
    }
    body
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    delta: Option<String>,
    output_index: Option<u32>,
    item: Option<Item>,
    response: Option<Response>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type")]
    kind: String,
    call_id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Response {
    usage: Option<Usage>,
    incomplete_details: Option<IncompleteDetails>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
    input_tokens_details: Option<InputDetails>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: u32,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: u32,
}

#[derive(Deserialize)]
struct IncompleteDetails {
    reason: Option<String>,
}

#[derive(Debug, Default)]
pub struct Decoder {
    calls: ToolCalls,
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
        let index = parsed.output_index.unwrap_or(0);
        match parsed.kind.as_str() {
            "response.output_text.delta" => {
                if let Some(d) = parsed.delta.filter(|d| !d.is_empty()) {
                    out.push(StreamEvent::TextDelta(d));
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(d) = parsed.delta.filter(|d| !d.is_empty()) {
                    out.push(StreamEvent::ReasoningDelta(d));
                }
            }
            "response.output_item.added" => {
                if let Some(item) = parsed.item.filter(|i| i.kind == "function_call") {
                    let name = item.name.unwrap_or_default();
                    self.calls.start(index, item.call_id.as_deref(), &name, out);
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(d) = parsed.delta {
                    self.calls.arguments(index, &d, out);
                }
            }
            "response.output_item.done" => self.calls.end(index, out),
            "response.completed" => {
                let reason = if self.calls.any() {
                    FinishReason::ToolCalls
                } else {
                    FinishReason::Stop
                };
                self.complete(parsed.response, reason, out);
            }
            "response.incomplete" => {
                let reason = match parsed
                    .response
                    .as_ref()
                    .and_then(|r| r.incomplete_details.as_ref())
                    .and_then(|d| d.reason.as_deref())
                {
                    Some("content_filter") => FinishReason::ContentFilter,
                    _ => FinishReason::Length,
                };
                self.complete(parsed.response, reason, out);
            }
            "response.failed" => {
                let message = parsed.response.and_then(|r| r.error).map_or_else(
                    || "the response failed".to_owned(),
                    |e| super::error_text(&e),
                );
                self.fail(ProviderError::new(ErrorKind::Stream, message), out);
            }
            "error" => {
                let message = parsed.message.unwrap_or_else(|| "stream error".into());
                self.fail(ProviderError::new(ErrorKind::Stream, message), out);
            }
            _ => {}
        }
    }

    fn complete(
        &mut self,
        response: Option<Response>,
        reason: FinishReason,
        out: &mut Vec<StreamEvent>,
    ) {
        self.calls.end_all(out);
        if let Some(u) = response.and_then(|r| r.usage) {
            out.push(StreamEvent::Usage(TokenUsage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                cached_tokens: u.input_tokens_details.map_or(0, |d| d.cached_tokens),
                reasoning_tokens: u.output_tokens_details.map_or(0, |d| d.reasoning_tokens),
            }));
        }
        out.push(StreamEvent::Finish(reason));
        self.done = true;
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
