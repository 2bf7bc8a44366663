//! The chat turn end to end over real WebSocket against bestchat-local, with a fake provider on
//! loopback: once with the embedded adapters (SQLite, in-process registry, hub and invoker) and
//! once with the production ones (PostgreSQL, Redis, DynamoDB on moto, and frames and turns
//! going through the real AWS SDK clients to the gateway's @connections and Invoke emulations).

use std::time::Duration;

use bestchat_tests::api::Api;
use bestchat_tests::chat::{answer_id, fake_conversation, send_action, stored_messages, text_of};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{GatewayProcess, Running, cloud, sqlite, token};
use bestchat_tests::scripted::{end_of_token, openai_stream, words};
use bestchat_tests::ws::{WsClient, completed, deltas};
use reqwest::StatusCode;
use serde_json::{Value, json};

macro_rules! on_both_adapter_sets {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { let r = super::sqlite(&[]).await; super::$case(&r.gateway).await; } )*
        }
        mod production {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { let r = super::cloud(&[]).await; super::$case(&r.gateway).await; } )*
        }
    };
}

on_both_adapter_sets!(
    every_device_of_the_user_gets_the_whole_answer,
    a_dropped_connection_resumes_exactly_where_it_stopped,
    a_repeated_client_message_id_starts_no_second_turn,
    cancel_ends_the_answer_with_what_arrived,
    provider_failures_end_as_error_or_incomplete,
    a_gone_connection_does_not_stop_the_others,
    http_send_streams_the_same_events_as_sse,
);

async fn every_device_of_the_user_gets_the_whole_answer(gateway: &GatewayProcess) {
    let tokens = words(120);
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(openai_stream(&tokens)).paced(400, Duration::from_millis(2)),
    )
    .await;
    let id = fake_conversation(gateway, "alice", &fake).await;
    let mut phone = WsClient::connect(gateway, "alice").await;
    let mut laptop = WsClient::connect(gateway, "alice").await;
    let mut mallory = WsClient::connect(gateway, "mallory").await;
    laptop
        .send(&json!({"action": "subscribe", "conversation_id": id}))
        .await;
    // Mallory cannot subscribe to Alice's conversation.
    mallory
        .send(&json!({"action": "subscribe", "conversation_id": id}))
        .await;
    let refused = mallory.next().await.unwrap();
    assert_eq!(refused["type"], "message.error");
    assert_eq!(refused["code"], "conversation_not_found");
    laptop.send(&json!({"action": "ping"})).await;
    assert_eq!(
        laptop.next().await.unwrap()["type"],
        "pong",
        "the subscription is in place"
    );

    phone
        .send(&send_action(&id, "c-1", "Count to one hundred and twenty."))
        .await;
    let on_phone = phone.until(|e| e["type"] == "message.completed").await;
    let answer = answer_id(&on_phone);
    let on_laptop = laptop.until(completed(&answer)).await;
    for events in [&on_phone, &on_laptop] {
        let (text, seqs) = deltas(events);
        assert_eq!(
            text,
            text_of(&tokens),
            "the streamed text is what the provider sent"
        );
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "seqs 1..n without gaps"
        );
        assert!(
            seqs.len() < tokens.len(),
            "deltas are coalesced ({} frames for {} tokens)",
            seqs.len(),
            tokens.len()
        );
        let created: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "message.created")
            .map(|e| e["message"]["role"].as_str().unwrap())
            .collect();
        assert_eq!(created, vec!["user", "assistant"]);
        let done = events.last().unwrap();
        assert_eq!(done["message"]["status"], "complete");
        assert_eq!(done["finish_reason"], "stop");
        assert_eq!(done["usage"]["output_tokens"], 120);
        assert_eq!(done["usage"]["cached_tokens"], 8);
        // 32 fresh + 8 cached input at $1/M, 120 output at $2/M: 280 micro-dollars.
        assert_eq!(done["usage"]["cost_micros"], 280);
    }
    assert!(
        mallory
            .maybe_next(Duration::from_millis(300))
            .await
            .is_none(),
        "another user gets nothing"
    );
    let stored = stored_messages(gateway, "alice", &id).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1]["content"], text_of(&tokens));
    assert_eq!(stored[1]["status"], "complete");
    assert_eq!(stored[1]["provider"], "fake");
    assert_eq!(stored[1]["model"], "fake-model");
    // The provider saw the system prompt and the user's message.
    let sent = fake.requests()[0].json();
    assert_eq!(sent["messages"][0]["content"], "Be brief.");
    assert_eq!(
        sent["messages"][1]["content"],
        "Count to one hundred and twenty."
    );
}

async fn a_dropped_connection_resumes_exactly_where_it_stopped(gateway: &GatewayProcess) {
    let tokens = words(80);
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(openai_stream(&tokens)).paced(120, Duration::from_millis(15)),
    )
    .await;
    let id = fake_conversation(gateway, "alice", &fake).await;
    let mut first = WsClient::connect(gateway, "alice").await;
    first.send(&send_action(&id, "c-1", "Go.")).await;
    let mut seen = first
        .until(|e| e["type"] == "message.delta" && e["seq"] == 3)
        .await;
    let answer = answer_id(&seen);
    first.close().await;

    let mut second = WsClient::connect(gateway, "alice").await;
    second
        .send(&json!({"action": "resume", "message_id": answer, "after_seq": 3}))
        .await;
    let rest = second.until(completed(&answer)).await;
    let (_, seqs) = deltas(&rest);
    assert_eq!(seqs.first(), Some(&4), "resumes right after seq 3");
    assert_eq!(
        seqs,
        (4..4 + seqs.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    seen.extend(rest);
    assert_eq!(deltas(&seen).0, text_of(&tokens));

    // After the end: the rest from the buffer, then message.completed.
    let mut late = WsClient::connect(gateway, "alice").await;
    late.send(&json!({"action": "resume", "message_id": answer, "after_seq": 2}))
        .await;
    let replay = late.until(completed(&answer)).await;
    let (text, seqs) = deltas(&replay);
    assert_eq!(seqs.first(), Some(&3));
    assert_eq!(seqs.last(), deltas(&seen).1.last());
    assert!(text_of(&tokens).ends_with(&text));
    assert_eq!(replay.last().unwrap()["message"]["status"], "complete");
}

async fn a_repeated_client_message_id_starts_no_second_turn(gateway: &GatewayProcess) {
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(5)))).await;
    let id = fake_conversation(gateway, "alice", &fake).await;
    let api = Api::new(gateway, "alice");
    let body = json!({"client_message_id": "once", "content": "Hello"});
    let path = format!("/api/conversations/{id}/messages");
    let (status, first) = api.post(&path, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["assistant_message"]["status"], "pending");
    let (status, again) = api.post(&path, &body).await;
    assert_eq!(status, StatusCode::OK, "a repeat returns the original pair");
    assert_eq!(again["user_message"]["id"], first["user_message"]["id"]);
    assert_eq!(
        again["assistant_message"]["id"],
        first["assistant_message"]["id"]
    );
    // Over WebSocket too: the repeat replays the answer instead of starting another.
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "once", "Hello")).await;
    let answer = first["assistant_message"]["id"].as_str().unwrap();
    let events = ws.until(completed(answer)).await;
    assert_eq!(
        deltas(&events).0,
        text_of(&words(5)),
        "{events:#?}\n{}",
        gateway.log()
    );
    assert_eq!(fake.requests().len(), 1, "one provider call");
    assert_eq!(stored_messages(gateway, "alice", &id).await.len(), 2);
}

async fn cancel_ends_the_answer_with_what_arrived(gateway: &GatewayProcess) {
    let tokens = words(200);
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(openai_stream(&tokens)).paced(60, Duration::from_millis(20)),
    )
    .await;
    let id = fake_conversation(gateway, "alice", &fake).await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "Talk a lot.")).await;
    let started = ws.until(|e| e["type"] == "message.delta").await;
    let answer = answer_id(&started);
    ws.send(&json!({"action": "cancel", "message_id": answer}))
        .await;
    let rest = ws.until(completed(&answer)).await;
    let done = rest.last().unwrap().clone();
    assert_eq!(done["message"]["status"], "cancelled");
    let partial = done["message"]["content"].as_str().unwrap();
    assert!(
        !partial.is_empty() && partial.len() < text_of(&tokens).len(),
        "{partial}"
    );
    let mut all = started;
    all.extend(rest);
    assert_eq!(
        deltas(&all).0,
        partial,
        "what was streamed is what was kept"
    );
    let stored = stored_messages(gateway, "alice", &id).await;
    assert_eq!(stored[1]["status"], "cancelled");
    assert_eq!(stored[1]["content"], partial);
    // The provider bills what it read and wrote before the stop, and never sent its count:
    // the answer carries an estimate, priced, so a stopped answer shows what it cost.
    let usage = &stored[1]["usage"];
    assert!(
        usage["input_tokens"].as_u64().is_some_and(|n| n > 0),
        "{usage}"
    );
    assert_eq!(usage["output_tokens"], stored[1]["token_count"], "{usage}");
    assert!(
        usage["cost_micros"].as_i64().is_some_and(|c| c > 0),
        "{usage}"
    );
    assert_eq!(done["usage"], *usage);
}

async fn provider_failures_end_as_error_or_incomplete(gateway: &GatewayProcess) {
    let tokens = words(30);
    let body = openai_stream(&tokens);
    let fake = FakeProvider::start(
        vec![
            Reply::json(500, r#"{"error":{"message":"upstream exploded"}}"#),
            Reply::json(500, "{}"),
            Reply::json(500, "{}"),
            Reply::sse(body.clone()).cut_after(end_of_token(&body, 9)),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let id = fake_conversation(gateway, "alice", &fake).await;
    let mut ws = WsClient::connect(gateway, "alice").await;

    ws.send(&send_action(&id, "fails", "First.")).await;
    let events = ws.until(|e| e["type"] == "message.completed").await;
    let error = events
        .iter()
        .find(|e| e["type"] == "message.error")
        .expect("an error event");
    assert_eq!(error["code"], "provider_error");
    let done = events.last().unwrap();
    assert_eq!(done["message"]["status"], "error");
    assert_eq!(done["message"]["error"]["code"], "provider_error");

    ws.send(&send_action(&id, "cut", "Second.")).await;
    let events = ws.until(|e| e["type"] == "message.completed").await;
    let done = events.last().unwrap();
    assert_eq!(done["message"]["status"], "incomplete");
    assert_eq!(deltas(&events).0, text_of(&tokens[..10]));
    assert_eq!(done["message"]["content"], text_of(&tokens[..10]));

    let stored = stored_messages(gateway, "alice", &id).await;
    let statuses: Vec<&str> = stored
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec!["complete", "error", "complete", "incomplete"]
    );
}

async fn a_gone_connection_does_not_stop_the_others(gateway: &GatewayProcess) {
    let tokens = words(60);
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(openai_stream(&tokens)).paced(100, Duration::from_millis(10)),
    )
    .await;
    let id = fake_conversation(gateway, "alice", &fake).await;
    let mut leaving = WsClient::connect(gateway, "alice").await;
    let mut staying = WsClient::connect(gateway, "alice").await;
    staying
        .send(&json!({"action": "subscribe", "conversation_id": id}))
        .await;
    staying.send(&json!({"action": "ping"})).await;
    assert_eq!(staying.next().await.unwrap()["type"], "pong");
    leaving.send(&send_action(&id, "c-1", "Go.")).await;
    leaving.until(|e| e["type"] == "message.delta").await;
    drop(leaving);
    let events = staying.until(|e| e["type"] == "message.completed").await;
    assert_eq!(deltas(&events).0, text_of(&tokens));
    assert_eq!(events.last().unwrap()["message"]["status"], "complete");
}

async fn http_send_streams_the_same_events_as_sse(gateway: &GatewayProcess) {
    let tokens = words(40);
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(openai_stream(&tokens)).paced(200, Duration::from_millis(2)),
    )
    .await;
    let id = fake_conversation(gateway, "alice", &fake).await;
    let response = reqwest::Client::new()
        .post(gateway.url(&format!("/api/conversations/{id}/messages")))
        .bearer_auth(token("alice"))
        .header("accept", "text/event-stream")
        .json(&json!({"client_message_id": "sse-1", "content": "Stream me."}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    let events: Vec<Value> = body
        .split("\n\n")
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"message.created"));
    assert_eq!(kinds.last(), Some(&"message.completed"));
    let (text, seqs) = deltas(&events);
    assert_eq!(text, text_of(&tokens));
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_need_a_valid_token() {
    let running: Running = sqlite(&[]).await;
    let url = bestchat_tests::ws::ws_url(&running.gateway, "not-a-token");
    let refused = WsClient::connect_url(&url).await;
    assert!(refused.is_err(), "a bad token is refused at $connect");
    let no_token = running.gateway.base_url.replacen("http://", "ws://", 1) + "/ws";
    assert!(WsClient::connect_url(&no_token).await.is_err());
    let mut ws = WsClient::connect(&running.gateway, "alice").await;
    ws.send(&json!({"action": "dance"})).await;
    let error = ws.next().await.unwrap();
    assert_eq!(error["type"], "message.error");
    assert_eq!(error["code"], "invalid_request");
    ws.send(&json!({"action": "resume", "message_id": "01a21694-c09a-733b-804b-f66e00267185", "after_seq": 0})).await;
    assert_eq!(ws.next().await.unwrap()["code"], "message_not_found");
}

/// The production adapters really go through the emulated AWS endpoints: frames via the
/// Management API's @connections, turns via Lambda's Invoke API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_adapters_use_the_emulated_aws_endpoints() {
    let running = cloud(&[]).await;
    let gateway = &running.gateway;
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(10)))).await;
    let id = fake_conversation(gateway, "alice", &fake).await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "Hi.")).await;
    let events = ws.until(|e| e["type"] == "message.completed").await;
    assert_eq!(deltas(&events).0, text_of(&words(10)));
    let log = gateway.log();
    assert!(
        log.contains("POST /2015-03-31/functions/chat-turn/invocations 202"),
        "{log}"
    );
    assert!(log.contains("POST /@connections/"), "{log}");
    let (items, _) = bestchat_tests::gateway::dynamodb()
        .scan()
        .table_name(running.table.as_deref().unwrap())
        .send()
        .await
        .map(|o| (o.items.unwrap_or_default(), ()))
        .unwrap();
    assert_eq!(
        items.len(),
        1,
        "the open connection is registered in DynamoDB"
    );
}

/// API Gateway's limits, emulated: a message over 128 KB closes the connection, a silent one is
/// closed after the idle timeout, and no frame the server sends exceeds 32 KB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_limits_are_enforced() {
    let running = sqlite(&[("BESTCHAT_WS_IDLE_TIMEOUT_MS", "700")]).await;
    let gateway = &running.gateway;

    let mut big = WsClient::connect(gateway, "alice").await;
    let huge = json!({"action": "ping", "padding": "x".repeat(200 * 1024)});
    let _ = big
        .send_raw(tokio_tungstenite::tungstenite::Message::Text(
            huge.to_string().into(),
        ))
        .await;
    assert!(
        big.next().await.is_none(),
        "closed: the message exceeds 128 KB"
    );

    let mut idle = WsClient::connect(gateway, "alice").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(idle.next().await.is_none(), "closed after the idle timeout");

    // One 100 KB token arrives as several frames, each within the limit, in order.
    let long = "ab\"cd ".repeat(17_000);
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(openai_stream(std::slice::from_ref(&long))),
    )
    .await;
    let id = fake_conversation(gateway, "alice", &fake).await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "One long token.")).await;
    let events = ws.until(|e| e["type"] == "message.completed").await;
    let frames: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "message.delta")
        .collect();
    assert!(frames.len() >= 4, "{} frames", frames.len());
    for frame in &frames {
        assert!(frame.to_string().len() <= 32 * 1024);
    }
    assert_eq!(deltas(&events).0, long);
}
