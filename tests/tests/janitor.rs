//! A turn whose process dies mid-answer: the janitor ends the answer with what had been streamed
//! (recovered from the Redis resume buffer) and tells the user's devices.

use std::time::Duration;

use bestchat_tests::api::Api;
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::GatewayProcess;
use bestchat_tests::postgres::TestDatabase;
use bestchat_tests::scripted::{openai_stream, words};
use bestchat_tests::ws::WsClient;
use bestchat_tests::{TempDir, redis_url, unique_prefix};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_turn_died_ends_with_what_was_streamed() {
    // A slow answer: one word every 200 ms, so the process can be killed in the middle.
    let slow = Reply::sse(openai_stream(&words(200))).paced(60, Duration::from_millis(200));
    let fake = FakeProvider::start(Vec::new(), slow).await;
    let db = TestDatabase::create().await;
    let dir = TempDir::new("janitor");
    let (redis, prefix) = (redis_url(), unique_prefix());
    let shared = [
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        // A short lease: once the process dies, its answer lapses within seconds.
        ("BESTCHAT_TURN_LEASE_MS", "1500"),
    ];
    let first = GatewayProcess::start(dir.path(), Some(db.url()), &shared);
    let api = Api::new(&first, "crash-user");
    let (status, body) = api
        .put(
            "/api/provider-configs/fake",
            &json!({"protocol": "openai", "base_url": format!("{}/v1", fake.base_url),
                    "models": [{"id": "fake-model", "context_window": 8000, "max_output_tokens": 1000}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, created) = api
        .post(
            "/api/conversations",
            &json!({"provider": "fake", "model": "fake-model"}),
        )
        .await;
    let conversation = created["id"].as_str().unwrap().to_owned();
    let mut ws = WsClient::connect(&first, "crash-user").await;
    ws.send(
        &json!({"action": "sendMessage", "conversation_id": conversation,
                    "client_message_id": "c1", "content": "tell me a long story"}),
    )
    .await;
    let mut seen = String::new();
    let mut answer = String::new();
    while seen.split_whitespace().count() < 3 {
        let event = ws.next().await.expect("events until the crash");
        if event["type"] == "message.created" && event["message"]["role"] == "assistant" {
            answer = event["message"]["id"].as_str().unwrap().to_owned();
        }
        if event["type"] == "message.delta" {
            seen.push_str(event["text"].as_str().unwrap());
        }
    }
    first.kill();

    // The next process finds the answer stuck in `streaming` once nobody renews its lease.
    let env = [
        shared[0],
        shared[1],
        shared[2],
        // Its first run comes after one interval: time to subscribe and see it.
        ("BESTCHAT_JANITOR_INTERVAL_MS", "1000"),
    ];
    let second = GatewayProcess::start(dir.path(), Some(db.url()), &env);
    let mut ws = WsClient::connect(&second, "crash-user").await;
    ws.send(&json!({"action": "subscribe", "conversation_id": conversation}))
        .await;
    let events = ws
        .until(|e| e["type"] == "message.completed" && e["message_id"] == answer.as_str())
        .await;
    let error = events
        .iter()
        .find(|e| e["type"] == "message.error")
        .expect("the loss is announced");
    assert_eq!(error["code"], "turn_lost");
    let done = &events.last().unwrap()["message"];
    assert_eq!(done["status"], "incomplete");
    let content = done["content"].as_str().unwrap();
    assert!(
        content.starts_with(&seen),
        "what reached the screen is kept: {content:?} vs {seen:?}"
    );
    // Stored, not only announced.
    let (_, page) = Api::new(&second, "crash-user")
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    let stored = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == answer.as_str())
        .unwrap();
    assert_eq!(stored["status"], "incomplete");
    assert_eq!(stored["content"].as_str(), Some(content));
    assert_eq!(stored["error"]["code"], "turn_lost");
    ws.close().await;
}
