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
