//! No frame the server sends exceeds 32 KB and no message 128 KB, whatever the content's size
//! (the test clients hold the server to those limits and would lose the connection), and a
//! client can always obtain the whole message.

use bestchat_tests::api::Api;
use bestchat_tests::chat::{answer_id, new_conversation, stored_message};
use bestchat_tests::gateway::GatewayProcess;
use bestchat_tests::ws::{WS_FRAME_MAX_BYTES, WsClient, completed, deltas};
use reqwest::StatusCode;
use serde_json::json;

super::on_both_adapter_sets!(&[("BESTCHAT_ECHO_DELAY_MS", "0")];
    a_message_larger_than_any_frame_arrives_whole,
);

async fn a_message_larger_than_any_frame_arrives_whole(gateway: &GatewayProcess) {
    let conversation = new_conversation(gateway, "writer", &json!({})).await;
    let mut watcher = WsClient::connect(gateway, "writer").await;
    watcher
        .send(&json!({"action": "subscribe", "conversation_id": conversation}))
        .await;
    watcher.send(&json!({"action": "ping"})).await;
    assert_eq!(watcher.next().await.unwrap()["type"], "pong");
    // 150,000 characters that each take more room once escaped, and multi-byte ones.
    let content: String = "quote\" back\\slash\nnewline é€😀 "
        .chars()
        .cycle()
        .take(150_000)
        .collect();
    let (status, sent) = Api::new(gateway, "writer")
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            &json!({"client_message_id": "big", "content": content}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let answer = sent["assistant_message"]["id"].as_str().unwrap().to_owned();
    let events = watcher.until(completed(&answer)).await;
    assert_eq!(answer_id(&events), answer);
    for event in &events {
        assert!(
            event.to_string().len() <= WS_FRAME_MAX_BYTES,
            "an event of {} bytes",
            event.to_string().len()
        );
    }
    let created = events
        .iter()
        .find(|e| e["type"] == "message.created" && e["message"]["role"] == "user")
        .expect("the question is announced");
    assert_eq!(created["message"]["content_omitted"], true);
    let done = events.last().unwrap();
    assert_eq!(done["message"]["content_omitted"], true);
    assert_eq!(done["message"]["status"], "complete");
    // Whole over HTTP, and the same as the deltas.
    let question = created["message"]["id"].as_str().unwrap();
    let stored_question = stored_message(gateway, "writer", &conversation, question).await;
    assert_eq!(stored_question["content"], content);
    assert!(stored_question.get("content_omitted").is_none());
    let stored_answer = stored_message(gateway, "writer", &conversation, &answer).await;
    let expected = format!("Echo (echo-1): {content}");
    assert_eq!(stored_answer["content"], expected);
    assert_eq!(deltas(&events).0, expected);
    // A small message still travels whole.
    let mut ws = WsClient::connect(gateway, "writer").await;
    ws.send(
        &json!({"action": "sendMessage", "conversation_id": conversation,
                    "client_message_id": "small", "content": "hi"}),
    )
    .await;
    let small = ws.until(|e| e["type"] == "message.completed").await;
    let done = &small.last().unwrap()["message"];
    assert_eq!(done["content"], "Echo (echo-1): hi");
    assert!(done.get("content_omitted").is_none());
    // Resuming after the last seq there can be replays nothing and does not wrap around.
    let id = done["id"].as_str().unwrap();
    ws.send(&json!({"action": "resume", "message_id": id, "after_seq": u64::MAX}))
        .await;
    let replay = ws.until(completed(id)).await;
    assert_eq!(replay.len(), 1, "{replay:?}");
}
