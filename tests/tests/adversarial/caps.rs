//! One user cannot hold an unbounded number of connections or streams: the caps are named
//! settings, and past them the user is refused with 429 while others are not affected.

use std::time::Duration;

use bestchat_tests::api::assert_refused;
use bestchat_tests::chat::fake_conversation;
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{sqlite, token};
use bestchat_tests::scripted::{openai_stream, words};
use bestchat_tests::ws::{WsClient, ws_url};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_streams_are_capped_per_user() {
    let running = sqlite(&[
        ("BESTCHAT_MAX_CONNECTIONS_PER_USER", "3"),
        ("BESTCHAT_MAX_SSE_STREAMS_PER_USER", "1"),
    ])
    .await;
    let gateway = &running.gateway;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(WsClient::connect(gateway, "hoarder").await);
    }
    let refused = WsClient::connect_url(&ws_url(gateway, &token("hoarder"))).await;
    assert!(refused.is_err(), "a fourth connection is refused");
    let _other = WsClient::connect(gateway, "neighbour").await;
    open.pop().unwrap().close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    open.push(WsClient::connect(gateway, "hoarder").await);

    let slow = Reply::sse(openai_stream(&words(50))).paced(40, Duration::from_millis(40));
    let fake = FakeProvider::start(vec![], slow).await;
    let conversation = fake_conversation(gateway, "hoarder", &fake).await;
    let http = reqwest::Client::new();
    let stream = |client_id: &str| {
        http.post(gateway.url(&format!("/api/conversations/{conversation}/messages")))
            .bearer_auth(token("hoarder"))
            .header("accept", "text/event-stream")
            .json(&json!({"client_message_id": client_id, "content": "go"}))
            .send()
    };
    let first = stream("s-1").await.unwrap();
    assert_eq!(first.status(), 200);
    let second = stream("s-2").await.unwrap();
    let status = second.status();
    let text = second.text().await.unwrap();
    assert_refused(status, &text, "a second stream");
    assert_eq!(status, 429);
    assert!(text.contains("too_many_connections"), "{text}");
    // The first stream runs to its end regardless.
    let body = first.text().await.unwrap();
    assert!(body.contains("message.completed"), "{body}");
}
