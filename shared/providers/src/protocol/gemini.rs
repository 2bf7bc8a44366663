//! Gemini `streamGenerateContent?alt=sse`: every chunk carries cumulative usage; a chunk with a
//! `finishReason` ends the answer. Function calls arrive whole; thought parts are reasoning.

use bestchat_domain::message::FinishReason;
use serde::Deserialize;
use serde_json::{Value, json};

use super::tool_calls::ToolCalls;
use crate::sse::SseEvent;
use crate::types::{ChatMessage, ChatRequest, ErrorKind, ProviderError, StreamEvent, TokenUsage};

pub fn body(request: &ChatRequest) -> Value {
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let (role, parts) = match message {
            ChatMessage::User { text, parts } => {
                let mut out: Vec<Value> = parts
                    .iter()
                    .map(
                        |p| json!({"inlineData": {"mimeType": p.media_type(), "data": p.base64()}}),
                    )
                    .collect();
                out.push(json!({"text": text}));
                ("user", out)
            }
            ChatMessage::Assistant { text, tool_calls } => {
                let mut parts = Vec::new();
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
                parts.extend(tool_calls.iter().map(|c| {
                    let mut part = json!({"functionCall": {"name": c.name, "args": c.arguments}});
                    if let Some(signature) = &c.signature {
                        part["thoughtSignature"] = json!(signature);
                    }
                    part
                }));
                ("model", parts)
            }
            ChatMessage::Tool { name, content, .. } => (
                "user",
                vec![json!({"functionResponse": {"name": name, "response": {"content": content}}})],
            ),
        };
        match contents.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => contents.push((role, parts)),
        }
    }
    let mut body = json!({
        "contents": contents
            .into_iter()
            .map(|(role, parts)| json!({"role": role, "parts": parts}))
            .collect::<Vec<_>>(),
    });
    if let Some(system) = &request.system {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    if !request.tools.is_empty() {
        body["tools"] = json!([{"functionDeclarations": request.tools.iter().map(|t| json!({
            "name": t.name, "description": t.description, "parameters": t.parameters,
        })).collect::<Vec<_>>()}]);
    }
    let mut generation = serde_json::Map::new();
    if let Some(t) = request.temperature {
        generation.insert("temperature".into(), json!(t));
    }
    if let Some(n) = request.max_output_tokens {
        generation.insert("maxOutputTokens".into(), json!(n));
    }
    if !request.stop.is_empty() {
        generation.insert("stopSequences".into(), json!(request.stop));
    }
    if !generation.is_empty() {
        body["generationConfig"] = Value::Object(generation);
    }
    body
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<UsageMetadata>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    function_call: Option<FunctionCall>,
    thought_signature: Option<String>,
}

#[derive(Deserialize)]
struct FunctionCall {
    id: Option<String>,
    name: String,
    #[serde(default)]
    args: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u32,
    #[serde(default)]
    candidates_token_count: u32,
    #[serde(default)]
    cached_content_token_count: u32,
    #[serde(default)]
    thoughts_token_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Debug, Default)]
pub struct Decoder {
    calls: ToolCalls,
    next_call: u32,
    usage: Option<TokenUsage>,
    done: bool,
}

impl Decoder {
    pub fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        let chunk: Chunk = match serde_json::from_str(&event.data) {
            Ok(c) => c,
            Err(e) => return self.fail(ProviderError::protocol(e), out),
        };
        if let Some(error) = chunk.error {
            let message = super::error_text(&json!({"error": error}));
            return self.fail(ProviderError::new(ErrorKind::Stream, message), out);
        }
        if let Some(u) = chunk.usage_metadata {
            // Thinking tokens are billed as output.
            self.usage = Some(TokenUsage {
                input_tokens: u.prompt_token_count,
                output_tokens: u.candidates_token_count + u.thoughts_token_count,
                cached_tokens: u.cached_content_token_count,
                reasoning_tokens: u.thoughts_token_count,
            });
        }
        if chunk.prompt_feedback.and_then(|f| f.block_reason).is_some() {
            return self.complete(FinishReason::ContentFilter, out);
        }
        let Some(candidate) = chunk.candidates.into_iter().next() else {
            return;
        };
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(call) = part.function_call {
                let index = self.next_call;
                self.next_call += 1;
                self.calls.start(index, call.id.as_deref(), &call.name, out);
                self.calls.arguments(index, &call.args.to_string(), out);
                if let Some(signature) = part.thought_signature.filter(|s| !s.is_empty()) {
                    out.push(StreamEvent::ToolCallSignature { index, signature });
                }
                self.calls.end(index, out);
            } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                out.push(if part.thought {
                    StreamEvent::ReasoningDelta(text)
                } else {
                    StreamEvent::TextDelta(text)
                });
            }
        }
        if let Some(reason) = candidate.finish_reason {
            let reason = match reason.as_str() {
                "STOP" if self.calls.any() => FinishReason::ToolCalls,
                "STOP" => FinishReason::Stop,
                "MAX_TOKENS" => FinishReason::Length,
                "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
                | "IMAGE_SAFETY" => FinishReason::ContentFilter,
                _ => FinishReason::Error,
            };
            self.complete(reason, out);
        }
    }

    fn complete(&mut self, reason: FinishReason, out: &mut Vec<StreamEvent>) {
        self.calls.end_all(out);
        if let Some(usage) = self.usage {
            out.push(StreamEvent::Usage(usage));
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
