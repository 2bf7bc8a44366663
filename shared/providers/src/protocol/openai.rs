//! OpenAI Chat Completions, and the servers compatible with it (Mistral, Groq, DeepSeek, vLLM,
//! llama.cpp, Ollama, ...). Tolerates servers that repeat the call id and name in every chunk,
//! reasoning under `reasoning_content` or `reasoning`, and a missing `[DONE]` after a
//! `finish_reason`.

use bestchat_domain::message::FinishReason;
use serde::Deserialize;
use serde_json::{Value, json};

use super::tool_calls::ToolCalls;
use crate::sse::SseEvent;
use crate::types::{
    ChatMessage, ChatRequest, ErrorKind, Part, ProviderError, StreamEvent, TokenUsage,
};

/// The request body. `max_tokens_field` is `max_completion_tokens` for OpenAI's own API (its
/// reasoning models refuse `max_tokens`) and `max_tokens` for compatible servers.
pub fn body(request: &ChatRequest, model: &str, max_tokens_field: &str) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = &request.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for message in &request.messages {
        messages.push(match message {
            ChatMessage::User { text, parts } if parts.is_empty() => {
                json!({"role": "user", "content": text})
            }
            ChatMessage::User { text, parts } => {
                let mut content = vec![json!({"type": "text", "text": text})];
                content.extend(parts.iter().map(|p| match p {
                    Part::Image { .. } => {
                        json!({"type": "image_url", "image_url": {"url": p.data_url()}})
                    }
                    Part::Document { name, .. } => json!({"type": "file",
                        "file": {"filename": name, "file_data": p.data_url()}}),
                }));
                json!({"role": "user", "content": content})
            }
            ChatMessage::Assistant { text, tool_calls } if tool_calls.is_empty() => {
                json!({"role": "assistant", "content": text})
            }
            ChatMessage::Assistant { text, tool_calls } => json!({
                "role": "assistant",
                "content": if text.is_empty() { Value::Null } else { json!(text) },
                "tool_calls": tool_calls.iter().map(|c| json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()},
                })).collect::<Vec<_>>(),
            }),
            ChatMessage::Tool {
                call_id, content, ..
            } => json!({"role": "tool", "tool_call_id": call_id, "content": content}),
        });
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(n) = request.max_output_tokens {
        body[max_tokens_field] = json!(n);
    }
    if !request.stop.is_empty() {
        body["stop"] = json!(request.stop);
    }
    body
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    tool_calls: Option<Vec<CallDelta>>,
}

#[derive(Deserialize)]
struct CallDelta {
    index: Option<u32>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: u32,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: u32,
}

/// A whole `chat.completion` body, from servers that answer a streaming request without
/// streaming.
pub fn decode_complete(body: &[u8]) -> Vec<StreamEvent> {
    #[derive(Deserialize)]
    struct Completion {
        #[serde(default)]
        choices: Vec<CompleteChoice>,
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct CompleteChoice {
        message: Option<CompleteMessage>,
        finish_reason: Option<String>,
    }
    #[derive(Deserialize)]
    struct CompleteMessage {
        content: Option<String>,
        reasoning_content: Option<String>,
        tool_calls: Option<Vec<CallDelta>>,
    }
    let mut out = Vec::new();
    let completion: Completion = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            out.push(StreamEvent::Error(ProviderError::protocol(e)));
            return out;
        }
    };
    let mut decoder = Decoder::default();
    for choice in completion.choices.into_iter().take(1) {
        if let Some(m) = choice.message {
            decoder.delta(
                Delta {
                    content: m.content,
                    reasoning_content: m.reasoning_content,
                    reasoning: None,
                    tool_calls: m.tool_calls,
                },
                &mut out,
            );
        }
        decoder.finish = Some(
            choice
                .finish_reason
                .as_deref()
                .map_or(FinishReason::Stop, finish_reason),
        );
    }
    decoder.usage = completion.usage.map(usage);
    decoder.on_end(&mut out);
    out
}

fn usage(u: Usage) -> TokenUsage {
    TokenUsage {
        input_tokens: u.prompt_tokens,
        output_tokens: u.completion_tokens,
        cached_tokens: u.prompt_tokens_details.map_or(0, |d| d.cached_tokens),
        reasoning_tokens: u
            .completion_tokens_details
            .map_or(0, |d| d.reasoning_tokens),
    }
}

#[derive(Debug, Default)]
pub struct Decoder {
    calls: ToolCalls,
    finish: Option<FinishReason>,
    usage: Option<TokenUsage>,
    done: bool,
}

impl Decoder {
    pub fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        if event.data.trim() == "[DONE]" {
            return self.complete(out);
        }
        let chunk: Chunk = match serde_json::from_str(&event.data) {
            Ok(c) => c,
            Err(e) => return self.fail(ProviderError::protocol(e), out),
        };
        if let Some(error) = chunk.error {
            let message = super::error_text(&error);
            return self.fail(ProviderError::new(ErrorKind::Stream, message), out);
        }
        for choice in chunk.choices {
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(&reason));
            }
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(usage(u));
        }
    }

    fn delta(&mut self, delta: Delta, out: &mut Vec<StreamEvent>) {
        if let Some(text) = delta
            .reasoning_content
            .or(delta.reasoning)
            .filter(|t| !t.is_empty())
        {
            out.push(StreamEvent::ReasoningDelta(text));
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            out.push(StreamEvent::TextDelta(text));
        }
        for (position, call) in delta.tool_calls.into_iter().flatten().enumerate() {
            let index = call.index.unwrap_or(position as u32);
            let (name, arguments) = match call.function {
                Some(f) => (f.name, f.arguments),
                None => (None, None),
            };
            if !self.calls.is_open(index) {
                self.calls.start(
                    index,
                    call.id.as_deref(),
                    name.as_deref().unwrap_or_default(),
                    out,
                );
            }
            if let Some(arguments) = arguments {
                self.calls.arguments(index, &arguments, out);
            }
        }
    }

    fn complete(&mut self, out: &mut Vec<StreamEvent>) {
        self.calls.end_all(out);
        if let Some(usage) = self.usage {
            out.push(StreamEvent::Usage(usage));
        }
        let reason = match self.finish.unwrap_or(FinishReason::Stop) {
            FinishReason::Stop if self.calls.any() => FinishReason::ToolCalls,
            other => other,
        };
        out.push(StreamEvent::Finish(reason));
        self.done = true;
    }

    fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Error(error));
        self.done = true;
    }

    pub fn on_end(&mut self, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        if self.finish.is_some() {
            self.complete(out);
        } else {
            self.fail(ProviderError::incomplete(), out);
        }
    }
}

fn finish_reason(raw: &str) -> FinishReason {
    match raw {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        "error" => FinishReason::Error,
        _ => FinishReason::Stop,
    }
}
