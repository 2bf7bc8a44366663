//! Conversations driven the way a client drives them, and the checks every chat test makes:
//! what a client saw of an answer agrees with what was stored.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::Api;
use crate::fake_provider::FakeProvider;
use crate::gateway::GatewayProcess;

/// The custom provider id every fake-backed conversation uses.
pub const FAKE_PROVIDER: &str = "fake";
pub const FAKE_MODEL: &str = "fake-model";

/// Points `user`'s custom provider `fake` at `fake` (OpenAI protocol), with a priced model.
pub async fn use_fake_provider(gateway: &GatewayProcess, user: &str, fake: &FakeProvider) {
    let (status, body) = Api::new(gateway, user)
        .put(
            &format!("/api/provider-configs/{FAKE_PROVIDER}"),
            &json!({"protocol": "openai", "base_url": format!("{}/v1", fake.base_url),
                    // A key set for another fake's origin would not follow the URL.
                    "api_key": null,
                    "models": [{"id": FAKE_MODEL, "context_window": 128000, "max_output_tokens": 4096,
                                "input_price_per_mtok": 1000000, "output_price_per_mtok": 2000000}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A conversation of `user` on a fake provider of `protocol` ("openai", "anthropic" or
/// "gemini") whose model takes tools; its id.
pub async fn tool_conversation(
    gateway: &GatewayProcess,
    user: &str,
    fake: &FakeProvider,
    protocol: &str,
) -> String {
    let base_url = match protocol {
        "openai" => format!("{}/v1", fake.base_url),
        _ => fake.base_url.clone(),
    };
    let (status, body) = Api::new(gateway, user)
        .put(
            &format!("/api/provider-configs/{FAKE_PROVIDER}"),
            &json!({"protocol": protocol, "base_url": base_url, "api_key": "sk-test-key-0123456789",
                    "models": [{"id": FAKE_MODEL, "context_window": 128000, "max_output_tokens": 4096,
                                "input_price_per_mtok": 1000000, "output_price_per_mtok": 2000000,
                                "supports_tools": true}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    new_conversation(
        gateway,
        user,
        &json!({"provider": FAKE_PROVIDER, "model": FAKE_MODEL}),
    )
    .await
}

/// A conversation of `user` on the fake provider; its id.
pub async fn fake_conversation(
    gateway: &GatewayProcess,
    user: &str,
    fake: &FakeProvider,
) -> String {
    use_fake_provider(gateway, user, fake).await;
    new_conversation(
        gateway,
        user,
        &json!({"provider": FAKE_PROVIDER, "model": FAKE_MODEL, "system_prompt": "Be brief."}),
    )
    .await
}

/// A conversation created with `body`; its id.
pub async fn new_conversation(gateway: &GatewayProcess, user: &str, body: &Value) -> String {
    let (status, created) = Api::new(gateway, user)
        .post("/api/conversations", body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().expect("an id").to_owned()
}

/// The `sendMessage` action.
pub fn send_action(conversation: &str, client_id: &str, content: &str) -> Value {
    json!({"action": "sendMessage", "conversation_id": conversation,
           "client_message_id": client_id, "content": content})
}

/// The assistant message id from the events of a send.
pub fn answer_id(events: &[Value]) -> String {
    events
        .iter()
        .find(|e| e["type"] == "message.created" && e["message"]["role"] == "assistant")
        .and_then(|e| e["message"]["id"].as_str())
        .expect("the answer is announced")
        .to_owned()
}

/// The conversation's messages as stored, oldest first.
pub async fn stored_messages(
    gateway: &GatewayProcess,
    user: &str,
    conversation: &str,
) -> Vec<Value> {
    let (status, page) = Api::new(gateway, user)
        .get(&format!(
            "/api/conversations/{conversation}/messages?limit=200"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().expect("items").clone()
}

/// One stored message, whole.
pub async fn stored_message(
    gateway: &GatewayProcess,
    user: &str,
    conversation: &str,
    message: &str,
) -> Value {
    let (status, body) = Api::new(gateway, user)
        .get(&format!(
            "/api/conversations/{conversation}/messages/{message}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

pub fn text_of(tokens: &[String]) -> String {
    tokens.concat()
}

/// What one client saw of `answer` agrees with the stored answer: deltas numbered 1..n without
/// a gap or a repeat, their text the stored content, and exactly one `message.completed`, last.
pub fn assert_saw_what_was_stored(events: &[Value], answer: &str, stored: &Value) {
    let about: Vec<&Value> = events
        .iter()
        .filter(|e| e["message_id"] == answer || e["message"]["id"] == answer)
        .collect();
    let seqs: Vec<u64> = about
        .iter()
        .filter(|e| e["type"] == "message.delta")
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seqs 1..n, no gap, no repeat"
    );
    let text: String = about
        .iter()
        .filter(|e| e["type"] == "message.delta" && e.get("channel").is_none())
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(
        text,
        stored["content"].as_str().unwrap_or_default(),
        "the client saw exactly what was stored"
    );
    let completed: Vec<&&Value> = about
        .iter()
        .filter(|e| e["type"] == "message.completed")
        .collect();
    assert_eq!(completed.len(), 1, "exactly one message.completed");
    assert_eq!(
        completed[0]["message"]["status"], stored["status"],
        "the announced status is the stored one"
    );
    assert_eq!(
        about.last().map(|e| &e["type"]),
        Some(&json!("message.completed")),
        "nothing after message.completed"
    );
}

/// The results a provider request carried back to the model, as (call id, the result's JSON),
/// in OpenAI's shape.
pub fn tool_results(request: &crate::fake_provider::Recorded) -> Vec<(String, Value)> {
    request.json()["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap_or_default().to_owned(),
                serde_json::from_str(m["content"].as_str().unwrap_or_default())
                    .expect("a tool result is JSON"),
            )
        })
        .collect()
}

/// Events until a tool loop's final answer: the `message.completed` of an assistant message
/// without tool calls.
pub async fn until_answered(ws: &mut crate::ws::WsClient) -> Vec<Value> {
    ws.until(|e| {
        e["type"] == "message.completed"
            && e["message"]["tool_calls"].is_null()
            && e["message"]["role"] == "assistant"
    })
    .await
}
