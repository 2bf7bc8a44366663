//! Provider answers written for tests, in OpenAI's streaming format.

/// An OpenAI Chat Completions stream that sends `tokens` one per event, then its usage and
/// `[DONE]`.
pub fn openai_stream(tokens: &[String]) -> Vec<u8> {
    let mut out = String::new();
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        serde_json::json!({
            "id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "fake-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    out.push_str(&format!(
        "data: {}\n\n",
        chunk(
            serde_json::json!({"role": "assistant", "content": ""}),
            None
        )
    ));
    for t in tokens {
        out.push_str(&format!(
            "data: {}\n\n",
            chunk(serde_json::json!({"content": t}), None)
        ));
    }
    out.push_str(&format!(
        "data: {}\n\n",
        chunk(serde_json::json!({}), Some("stop"))
    ));
    let usage = serde_json::json!({
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "fake-model", "choices": [],
        "usage": {"prompt_tokens": 40, "completion_tokens": tokens.len(), "total_tokens": 40 + tokens.len(),
                  "prompt_tokens_details": {"cached_tokens": 8}},
    });
    out.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    out.into_bytes()
}

/// `n` distinct words, each with a leading space except the first.
pub fn words(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i == 0 {
                format!("w{i}")
            } else {
                format!(" w{i}")
            }
        })
        .collect()
}

/// The body bytes at which the event carrying token `i` (0-based) ends.
pub fn end_of_token(body: &[u8], i: usize) -> usize {
    let mut seen = 0;
    let mut at = 0;
    // Event 0 is the role; token i is event i + 1.
    for (pos, window) in body.windows(2).enumerate() {
        if window == b"\n\n" {
            if seen == i + 1 {
                at = pos + 2;
                break;
            }
            seen += 1;
        }
    }
    at
}

/// A call a scripted answer asks for: its id, the tool's name, and its arguments.
pub struct Call<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub arguments: serde_json::Value,
}

/// The arguments' JSON cut in two, as providers stream it.
fn halves(arguments: &serde_json::Value) -> (String, String) {
    let text = arguments.to_string();
    let mid = text
        .char_indices()
        .map(|(i, _)| i)
        .find(|i| *i >= text.len() / 2)
        .unwrap_or(text.len());
    (text[..mid].to_owned(), text[mid..].to_owned())
}

/// An OpenAI Chat Completions stream that asks for `calls` (in parallel when more than one),
/// shaped like `fixtures/providers/openai-parallel-tool-calls.sse`.
pub fn openai_tool_calls(calls: &[Call<'_>]) -> Vec<u8> {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        serde_json::json!({
            "id": "chatcmpl-tools", "object": "chat.completion.chunk", "model": "fake-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut out = String::new();
    for (i, call) in calls.iter().enumerate() {
        let (first, second) = halves(&call.arguments);
        let start = serde_json::json!({"tool_calls": [{"index": i, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": ""}}]});
        out.push_str(&format!("data: {}\n\n", chunk(start, None)));
        for part in [first, second] {
            let more =
                serde_json::json!({"tool_calls": [{"index": i, "function": {"arguments": part}}]});
            out.push_str(&format!("data: {}\n\n", chunk(more, None)));
        }
    }
    out.push_str(&format!(
        "data: {}\n\n",
        chunk(serde_json::json!({}), Some("tool_calls"))
    ));
    let usage = serde_json::json!({
        "id": "chatcmpl-tools", "object": "chat.completion.chunk", "model": "fake-model", "choices": [],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
    });
    out.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    out.into_bytes()
}

/// An Anthropic Messages stream that asks for `calls`, shaped like
/// `fixtures/providers/anthropic-thinking-tool-use.sse`.
pub fn anthropic_tool_calls(calls: &[Call<'_>]) -> Vec<u8> {
    let event = |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
    let mut out = event(
        "message_start",
        serde_json::json!({"type": "message_start", "message": {"id": "msg_tools", "type": "message",
            "role": "assistant", "model": "fake-model", "content": [], "stop_reason": null,
            "usage": {"input_tokens": 30, "output_tokens": 1}}}),
    );
    for (i, call) in calls.iter().enumerate() {
        out.push_str(&event("content_block_start", serde_json::json!({"type": "content_block_start",
            "index": i, "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}})));
        let (first, second) = halves(&call.arguments);
        for part in [first, second] {
            out.push_str(&event(
                "content_block_delta",
                serde_json::json!({"type": "content_block_delta",
                "index": i, "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
        out.push_str(&event(
            "content_block_stop",
            serde_json::json!({"type": "content_block_stop", "index": i}),
        ));
    }
    out.push_str(&event("message_delta", serde_json::json!({"type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 12}})));
    out.push_str(&event(
        "message_stop",
        serde_json::json!({"type": "message_stop"}),
    ));
    out.into_bytes()
}

/// An Anthropic Messages stream answering `text`.
pub fn anthropic_text(text: &str) -> Vec<u8> {
    let event = |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
    [
        event("message_start", serde_json::json!({"type": "message_start", "message": {"id": "msg_text",
            "type": "message", "role": "assistant", "model": "fake-model", "content": [],
            "stop_reason": null, "usage": {"input_tokens": 50, "output_tokens": 1}}})),
        event("content_block_start", serde_json::json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}})),
        event("content_block_delta", serde_json::json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text}})),
        event("content_block_stop", serde_json::json!({"type": "content_block_stop", "index": 0})),
        event("message_delta", serde_json::json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 5}})),
        event("message_stop", serde_json::json!({"type": "message_stop"})),
    ]
    .concat()
    .into_bytes()
}

/// A Gemini stream that asks for `calls` in one candidate, shaped like
/// `fixtures/providers/gemini-function-call.sse` (thought signature included).
pub fn gemini_tool_calls(calls: &[Call<'_>]) -> Vec<u8> {
    let parts: Vec<serde_json::Value> = calls
        .iter()
        .map(|c| {
            serde_json::json!({"functionCall": {"name": c.name, "args": c.arguments},
                                   "thoughtSignature": format!("sig-{}", c.id)})
        })
        .collect();
    let body = serde_json::json!({"candidates": [{"content": {"parts": parts, "role": "model"},
        "index": 0, "finishReason": "STOP"}], "modelVersion": "fake-model",
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 12, "totalTokenCount": 42}});
    format!("data: {body}\n\n").into_bytes()
}

/// A Gemini stream answering `text`.
pub fn gemini_text(text: &str) -> Vec<u8> {
    let body = serde_json::json!({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
        "index": 0, "finishReason": "STOP"}], "modelVersion": "fake-model",
        "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 5, "totalTokenCount": 55}});
    format!("data: {body}\n\n").into_bytes()
}

/// An OpenAI Responses stream answering `text`.
pub fn responses_text(text: &str) -> Vec<u8> {
    let event = |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
    [
        event(
            "response.created",
            serde_json::json!({"type": "response.created",
            "response": {"id": "resp_1", "status": "in_progress"}}),
        ),
        event(
            "response.output_text.delta",
            serde_json::json!({"type": "response.output_text.delta",
            "output_index": 0, "delta": text}),
        ),
        event(
            "response.completed",
            serde_json::json!({"type": "response.completed",
            "response": {"id": "resp_1", "status": "completed",
                "usage": {"input_tokens": 50, "output_tokens": 5}}}),
        ),
    ]
    .concat()
    .into_bytes()
}
