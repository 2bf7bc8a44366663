//! Context management end to end: a long conversation through a custom model with a small
//! window, on the production adapters (PostgreSQL, Redis, DynamoDB on moto, turns and summaries
//! invoked through the Lambda API emulation), against a fake OpenAI-compatible provider.

use bestchat_context::tokens::{MESSAGE_OVERHEAD_TOKENS, REQUEST_OVERHEAD_TOKENS, count};
use bestchat_tests::api::Api;
use bestchat_tests::fake_provider::{FakeProvider, Recorded, Reply};
use bestchat_tests::gateway::{Running, cloud, postgres, sqlite};
use bestchat_tests::scripted::{openai_stream, words};
use bestchat_tests::ws::WsClient;
use reqwest::StatusCode;
use serde_json::{Value, json};

const MODEL: &str = "tiny-1";
/// The user's choice of summary model for the provider.
const SUMMARIZER: &str = "tiny-summarizer";
const WINDOW: u32 = 1_500;
const RESERVED: u32 = 200;
const SYSTEM: &str = "You are the BestChat test assistant. Answer in one short paragraph.";
const SUMMARY_FRAME: &str = "Summary of the earlier part of this conversation";

/// A user message of about 120 tokens for this model, naming its turn.
fn message(turn: usize) -> String {
    let mut text = format!("Turn {turn}: please remember these facts.");
    let mut i = 0;
    while count(MODEL, &text) < 120 {
        text.push_str(&format!(" fact{turn}x{i} is {}", i * 7 + turn));
        i += 1;
    }
    text
}

async fn setup(running: &Running, fake: &FakeProvider) -> String {
    let api = Api::new(&running.gateway, "long-talker");
    let (status, body) = api
        .put(
            "/api/provider-configs/tiny",
            &json!({"protocol": "openai", "base_url": format!("{}/v1", fake.base_url),
                    "summary_model": SUMMARIZER,
                    "models": [{"id": MODEL, "context_window": WINDOW, "max_output_tokens": RESERVED},
                               {"id": SUMMARIZER, "context_window": WINDOW, "max_output_tokens": RESERVED}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, created) = api
        .post(
            "/api/conversations",
            &json!({"provider": "tiny", "model": MODEL, "system_prompt": SYSTEM}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// Tokens of an OpenAI Chat Completions request as the planner counts them.
fn prompt_tokens(body: &Value) -> u32 {
    let messages = body["messages"].as_array().unwrap();
    REQUEST_OVERHEAD_TOKENS
        + messages
            .iter()
            .map(|m| {
                let text = m["content"].as_str().unwrap_or_default();
                let overhead = if m["role"] == "system" {
                    0
                } else {
                    MESSAGE_OVERHEAD_TOKENS
                };
                count(MODEL, text) + overhead
            })
            .sum::<u32>()
}

fn system_of(body: &Value) -> Option<&str> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "system")
        .and_then(|m| m["content"].as_str())
}

fn is_turn(request: &Recorded) -> bool {
    system_of(&request.json()).is_some_and(|s| s.starts_with(SYSTEM))
}

/// Sends `turns` messages one after the other, each answered before the next; returns what was
/// sent and the `context.optimized` events of the turns.
async fn converse(
    running: &Running,
    conversation: &str,
    turns: usize,
) -> (Vec<String>, Vec<Value>) {
    let mut ws = WsClient::connect(&running.gateway, "long-talker").await;
    let mut optimized = Vec::new();
    let mut sent = Vec::new();
    for turn in 0..turns {
        let content = message(turn);
        ws.send(
            &json!({"action": "sendMessage", "conversation_id": conversation,
                        "client_message_id": format!("turn-{turn}"), "content": content}),
        )
        .await;
        let events = ws
            .until(|e| e["type"] == "message.completed" || e["type"] == "message.error")
            .await;
        let done = events.last().unwrap();
        assert_eq!(done["type"], "message.completed", "turn {turn}: {events:?}");
        assert_eq!(done["message"]["status"], "complete", "turn {turn}: {done}");
        let answer = &done["message_id"];
        for e in events.iter().filter(|e| e["type"] == "context.optimized") {
            assert_eq!(e["conversation_id"], conversation);
            assert!(
                e["tokens_after"].as_u64() < e["tokens_before"].as_u64(),
                "{e}"
            );
            // A summary written between turns names no answer.
            if &e["message_id"] == answer {
                optimized.push(json!({"turn": turn, "strategy": e["strategy"]}));
            } else {
                assert!(
                    e["message_id"].is_null() && e["strategy"] == "summarization",
                    "{e}"
                );
            }
        }
        sent.push(content);
    }
    ws.close().await;
    (sent, optimized)
}

/// The turn requests the provider received, in order.
fn turn_requests(fake: &FakeProvider) -> Vec<Value> {
    fake.requests()
        .iter()
        .filter(|r| is_turn(r))
        .map(Recorded::json)
        .collect()
}

/// `(strategy, written by a turn)` of every optimization recorded for the conversation.
async fn recorded(running: &Running, conversation: &str) -> Vec<(String, bool)> {
    let db = running.db.as_ref().unwrap();
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let id: uuid::Uuid = conversation.parse().unwrap();
    let rows = client
        .query(
            "SELECT strategy, message_id IS NOT NULL, messages_affected,
                    range_start_id IS NOT NULL AND range_end_id IS NOT NULL,
                    coalesce(length(summary), 0)
               FROM context_optimizations WHERE conversation_id = $1 ORDER BY created_at",
            &[&id],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let strategy: String = r.get(0);
            assert!(r.get::<_, i32>(2) > 0, "messages affected");
            assert!(r.get::<_, bool>(3), "the range is recorded");
            assert_eq!(strategy == "summarization", r.get::<_, i32>(4) > 0);
            (strategy, r.get(1))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_conversation_stays_inside_a_small_window() {
    let answer = Reply::sse(openai_stream(&words(40)));
    let fake = FakeProvider::start(Vec::new(), answer).await;
    let running = cloud(&[]).await;
    let conversation = setup(&running, &fake).await;
    let (sent, optimized) = converse(&running, &conversation, 25).await;

    // Every request the provider received fits the window with the space kept for the answer.
    for r in &fake.requests() {
        let body = r.json();
        let prompt = prompt_tokens(&body);
        let output = body["max_tokens"].as_u64().unwrap_or_default() as u32;
        assert!(
            output > 0 && output <= RESERVED,
            "{output} output tokens asked"
        );
        assert!(
            prompt + output <= WINDOW,
            "a request of {prompt} + {output} tokens overflows {WINDOW}"
        );
    }
    // Each turn's request carries the system prompt and ends with that turn's message.
    let turns = turn_requests(&fake);
    assert_eq!(turns.len(), 25, "one provider request per turn");
    for (body, content) in turns.iter().zip(&sent) {
        let last = body["messages"].as_array().unwrap().last().unwrap();
        assert_eq!(last["role"], "user");
        assert_eq!(last["content"].as_str(), Some(content.as_str()));
    }
    assert_eq!(turns[0]["messages"].as_array().unwrap().len(), 2);
    // The first exchange is kept to the end.
    assert_eq!(
        turns[24]["messages"][1]["content"].as_str(),
        Some(sent[0].as_str())
    );
    // The user's summary model was asked, and later turns send its summary.
    let summaries: Vec<Value> = fake
        .requests()
        .iter()
        .filter(|r| !is_turn(r))
        .map(Recorded::json)
        .collect();
    assert!(!summaries.is_empty(), "the summary model was asked");
    for s in &summaries {
        assert_eq!(s["model"], SUMMARIZER);
        assert!(system_of(s).unwrap().contains("running summary"));
    }
    assert!(turns.iter().all(|t| t["model"] == MODEL));
    assert!(
        turns
            .iter()
            .any(|t| system_of(t).is_some_and(|s| s.contains(SUMMARY_FRAME))),
        "a turn sent the summary"
    );
    // What was done is announced and recorded in PostgreSQL.
    assert!(!optimized.is_empty(), "optimizations are announced");
    let rows = recorded(&running, &conversation).await;
    assert!(
        rows.contains(&("summarization".into(), false)),
        "a summary is stored"
    );
    let by_turns = rows.iter().filter(|(_, turn)| *turn).count();
    assert_eq!(
        by_turns,
        optimized.len(),
        "every announced optimization is recorded"
    );
}

/// With the summary asked only once the history overflows, that turn truncates and later turns
/// use the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_turn_that_overflows_truncates_and_later_turns_use_the_summary() {
    let answer = Reply::sse(openai_stream(&words(40)));
    let fake = FakeProvider::start(Vec::new(), answer).await;
    let running = postgres(&[("BESTCHAT_SUMMARIZE_AT_PERCENT", "100")]).await;
    let conversation = setup(&running, &fake).await;
    let (_, optimized) = converse(&running, &conversation, 12).await;
    let first_truncation = optimized
        .iter()
        .find(|e| e["strategy"] == "truncation")
        .map(|e| e["turn"].as_u64().unwrap() as usize)
        .expect("a turn truncated");
    let turns = turn_requests(&fake);
    assert!(
        !system_of(&turns[first_truncation])
            .unwrap()
            .contains(SUMMARY_FRAME),
        "the overflowing turn does not wait for the summary"
    );
    let later: Vec<bool> = turns[first_truncation + 1..]
        .iter()
        .map(|t| system_of(t).unwrap().contains(SUMMARY_FRAME))
        .collect();
    assert!(
        later.iter().any(|used| *used),
        "later turns use the summary"
    );
    let rows = recorded(&running, &conversation).await;
    assert!(rows.contains(&("truncation".into(), true)));
    assert!(rows.contains(&("summarization".into(), false)));
    assert!(rows.contains(&("summarization".into(), true)));
}

/// A summary spends the user's money like a turn: under a budget its worst case does not fit
/// (a dear summary model), none is asked for, and the turns go on truncating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_the_budget_cannot_hold_is_not_asked_for() {
    let answer = Reply::sse(openai_stream(&words(40)));
    let fake = FakeProvider::start(Vec::new(), answer).await;
    let running = postgres(&[("BESTCHAT_BUDGET_DEFAULT_MICROS", "100000")]).await;
    let api = Api::new(&running.gateway, "long-talker");
    let (status, body) = api
        .put(
            "/api/provider-configs/tiny",
            &json!({"protocol": "openai", "base_url": format!("{}/v1", fake.base_url),
                    "summary_model": SUMMARIZER,
                    "models": [{"id": MODEL, "context_window": WINDOW, "max_output_tokens": RESERVED,
                                "input_price_per_mtok": 1_000_000, "output_price_per_mtok": 2_000_000},
                               {"id": SUMMARIZER, "context_window": WINDOW, "max_output_tokens": RESERVED,
                                "input_price_per_mtok": 1_000_000_000, "output_price_per_mtok": 1_000_000_000}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, created) = api
        .post(
            "/api/conversations",
            &json!({"provider": "tiny", "model": MODEL, "system_prompt": SYSTEM}),
        )
        .await;
    let conversation = created["id"].as_str().unwrap().to_owned();
    let (_, optimized) = converse(&running, &conversation, 12).await;
    assert!(
        optimized.iter().any(|e| e["strategy"] == "truncation"),
        "the turns truncate instead"
    );
    // Let a summary that was (wrongly) started reach the provider before looking.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        fake.requests().iter().all(is_turn),
        "the summary model was never asked"
    );
    let rows = recorded(&running, &conversation).await;
    assert!(!rows.contains(&("summarization".into(), false)));
    let (_, budget) = api.get("/api/budget").await;
    assert!(budget["spent_micros"].as_i64().unwrap() > 0);
    assert_eq!(budget["reserved_micros"], 0, "{budget}");
}

/// A message that cannot fit even alone ends with `context_too_large` before any provider call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_larger_than_the_window_is_refused_clearly() {
    let fake = FakeProvider::start(Vec::new(), Reply::sse(openai_stream(&words(3)))).await;
    let running = sqlite(&[]).await;
    let conversation = setup(&running, &fake).await;
    let mut ws = WsClient::connect(&running.gateway, "long-talker").await;
    let huge = "data ".repeat(3_000);
    ws.send(
        &json!({"action": "sendMessage", "conversation_id": conversation,
                    "client_message_id": "huge", "content": huge}),
    )
    .await;
    let events = ws.until(|e| e["type"] == "message.completed").await;
    let error = events
        .iter()
        .find(|e| e["type"] == "message.error")
        .expect("an error is announced");
    assert_eq!(error["code"], "context_too_large");
    assert!(error["message"].as_str().unwrap().contains("tokens"));
    let done = events.last().unwrap();
    assert_eq!(done["message"]["status"], "error");
    assert!(fake.requests().is_empty(), "no provider was asked");
    // The conversation goes on: a normal message is answered.
    ws.send(
        &json!({"action": "sendMessage", "conversation_id": conversation,
                    "client_message_id": "small", "content": "hello"}),
    )
    .await;
    let events = ws.until(|e| e["type"] == "message.completed").await;
    assert_eq!(events.last().unwrap()["message"]["status"], "complete");
    ws.close().await;
}
