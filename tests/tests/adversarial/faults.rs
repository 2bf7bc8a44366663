//! Nothing a user saw is lost or doubled, whatever fails: the provider (NUL, invalid UTF-8, an
//! oversized event, silence, a cut mid-event), Redis or PostgreSQL mid-turn, the whole gateway
//! mid-stream, or the janitor racing a slow turn. For each: the stored message and what every
//! client saw agree, and every client gets exactly one `message.completed`.

use std::time::Duration;

use bestchat_tests::api::Api;
use bestchat_tests::chat::{
    answer_id, assert_saw_what_was_stored, fake_conversation, new_conversation, send_action,
    stored_message,
};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{GatewayProcess, cloud};
use bestchat_tests::postgres::TestDatabase;
use bestchat_tests::proxy::TcpProxy;
use bestchat_tests::scripted::{end_of_token, openai_stream, words};
use bestchat_tests::ws::{WsClient, completed};
use bestchat_tests::{TempDir, redis_addr, redis_url, unique_prefix};
use serde_json::{Value, json};

/// Echo's words, and every timer of the turn, as short as they go.
const HURRIED: &[(&str, &str)] = &[
    ("BESTCHAT_ECHO_DELAY_MS", "1"),
    ("BESTCHAT_DELTA_COALESCE_MS", "1"),
    ("BESTCHAT_CANCEL_POLL_MS", "1"),
    ("BESTCHAT_CONNECTION_REFRESH_MS", "1"),
];

mod hurried {
    super::super::on_both_adapter_sets!(super::HURRIED;
        echo_streams_and_stores_every_word,
    );
    use super::*;
}

mod provider_faults {
    super::super::on_both_adapter_sets!(&[("BESTCHAT_PROVIDER_IDLE_TIMEOUT_MS", "700")];
        a_faulty_provider_ends_as_every_client_saw_it,
    );
    use super::*;
}

mod janitor_race {
    super::super::on_both_adapter_sets!(&[
        ("BESTCHAT_TURN_LEASE_MS", "900"),
        ("BESTCHAT_JANITOR_INTERVAL_MS", "100"),
        ("BESTCHAT_TURN_MAX_MS", "2500"),
    ];
        the_janitor_never_ends_a_live_slow_turn,
    );
    use super::*;
}

/// Sends `content` from one device while a second watches; both event lists, to the end.
async fn two_devices(
    gateway: &GatewayProcess,
    user: &str,
    conversation: &str,
    client_id: &str,
    content: &str,
) -> (String, Vec<Value>, Vec<Value>) {
    let mut phone = WsClient::connect(gateway, user).await;
    let mut laptop = WsClient::connect(gateway, user).await;
    laptop
        .send(&json!({"action": "subscribe", "conversation_id": conversation}))
        .await;
    laptop.send(&json!({"action": "ping"})).await;
    assert_eq!(laptop.next().await.unwrap()["type"], "pong");
    phone
        .send(&send_action(conversation, client_id, content))
        .await;
    let on_phone = phone.until(|e| e["type"] == "message.completed").await;
    let answer = answer_id(&on_phone);
    let on_laptop = laptop.until(completed(&answer)).await;
    (answer, on_phone, on_laptop)
}

async fn echo_streams_and_stores_every_word(gateway: &GatewayProcess) {
    let conversation = new_conversation(gateway, "echo-user", &json!({})).await;
    for turn in 0..8 {
        let content: String = (0..300).map(|i| format!("t{turn}w{i} ")).collect();
        let (answer, phone, laptop) = two_devices(
            gateway,
            "echo-user",
            &conversation,
            &format!("e-{turn}"),
            &content,
        )
        .await;
        let stored = stored_message(gateway, "echo-user", &conversation, &answer).await;
        assert_eq!(stored["status"], "complete");
        assert_eq!(
            stored["content"],
            format!("Echo (echo-1): {content}"),
            "turn {turn}: every word stored"
        );
        assert_saw_what_was_stored(&phone, &answer, &stored);
        assert_saw_what_was_stored(&laptop, &answer, &stored);
    }
}

/// A provider answer that goes wrong in its own way, and the status it must end with.
fn faulty_answers() -> Vec<(&'static str, Reply, &'static str)> {
    let tokens = words(40);
    let plain = openai_stream(&tokens);
    let with_nul = openai_stream(&["a\u{0}b".to_owned(), " c\u{0}".to_owned()]);
    let mut invalid_utf8 = openai_stream(&["valid".to_owned(), " XXXX".to_owned()]);
    let at = invalid_utf8.windows(4).position(|w| w == b"XXXX").unwrap();
    invalid_utf8.splice(at..at + 4, [0xff, 0xfe, 0xc3, 0x28]);
    let mut huge = plain[..end_of_token(&plain, 5)].to_vec();
    let giant =
        json!({"choices": [{"index": 0, "delta": {"content": "x".repeat(10 * 1024 * 1024)}}]});
    huge.extend_from_slice(format!("data: {giant}\n\n").as_bytes());
    huge.extend_from_slice(&plain[end_of_token(&plain, 5)..]);
    let first_part = end_of_token(&plain, 4);
    vec![
        ("NUL in the text", Reply::sse(with_nul), "complete"),
        (
            "bytes that are not UTF-8",
            Reply::sse(invalid_utf8),
            "complete",
        ),
        ("a 10 MB event", Reply::sse(huge), "incomplete"),
        (
            "silence past the idle timeout",
            Reply::sse(plain.clone()).paced(first_part, Duration::from_secs(3)),
            "incomplete",
        ),
        (
            "a cut in the middle of an event",
            Reply::sse(plain.clone()).cut_after(end_of_token(&plain, 7) - 20),
            "incomplete",
        ),
    ]
}

async fn a_faulty_provider_ends_as_every_client_saw_it(gateway: &GatewayProcess) {
    for (fault, reply, status) in faulty_answers() {
        let fake = FakeProvider::start(vec![], reply).await;
        let conversation = fake_conversation(gateway, "victim", &fake).await;
        let (answer, phone, laptop) =
            two_devices(gateway, "victim", &conversation, "c-1", "go").await;
        let stored = stored_message(gateway, "victim", &conversation, &answer).await;
        assert_eq!(stored["status"], status, "{fault}: {stored}");
        let content = stored["content"].as_str().unwrap();
        assert!(!content.contains('\u{0}'), "{fault}");
        if fault.starts_with("NUL") {
            assert_eq!(content, "a\u{FFFD}b c\u{FFFD}");
        }
        assert_saw_what_was_stored(&phone, &answer, &stored);
        assert_saw_what_was_stored(&laptop, &answer, &stored);
    }
}

async fn the_janitor_never_ends_a_live_slow_turn(gateway: &GatewayProcess) {
    // Slow to start (longer than a lease), then slower than the turn may last.
    let slow = Reply::sse(openai_stream(&words(400))).paced(30, Duration::from_millis(20));
    let slow = Reply {
        wait: Some(Duration::from_millis(1500)),
        ..slow
    };
    let fake = FakeProvider::start(vec![], slow).await;
    let conversation = fake_conversation(gateway, "patient", &fake).await;
    let mut phone = WsClient::connect(gateway, "patient").await;
    phone.send(&send_action(&conversation, "c-1", "go")).await;
    let mut events = phone.until(|e| e["type"] == "message.completed").await;
    let answer = answer_id(&events);
    // Long enough for the janitor to run many times over the ended answer.
    events.extend(phone.events_for(Duration::from_millis(1500)).await);
    let stored = stored_message(gateway, "patient", &conversation, &answer).await;
    assert_eq!(stored["status"], "incomplete", "{stored}");
    assert_eq!(
        stored["error"]["code"], "turn_timeout",
        "the turn ended it, not the janitor"
    );
    assert_saw_what_was_stored(&events, &answer, &stored);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let again = stored_message(gateway, "patient", &conversation, &answer).await;
        assert_eq!(again, stored, "the stored answer never flips");
    }
}

/// Alice's answer from a slow provider, seen on her phone up to its third delta: the provider
/// (kept alive), the conversation, the phone and what it saw.
async fn a_slow_answer_begins(
    gateway: &GatewayProcess,
) -> (FakeProvider, String, WsClient, Vec<Value>) {
    let slow = Reply::sse(openai_stream(&words(120))).paced(40, Duration::from_millis(15));
    let fake = FakeProvider::start(vec![], slow).await;
    let conversation = fake_conversation(gateway, "alice", &fake).await;
    let mut phone = WsClient::connect(gateway, "alice").await;
    phone.send(&send_action(&conversation, "c-1", "go")).await;
    let seen = phone
        .until(|e| e["type"] == "message.delta" && e["seq"] == 3)
        .await;
    (fake, conversation, phone, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_mid_turn() {
    let proxy = TcpProxy::start(redis_addr()).await;
    let redis = format!("redis://{}", proxy.addr);
    let running = cloud(&[
        ("REDIS_URL", redis.as_str()),
        ("REDIS_COMMAND_TIMEOUT_MS", "300"),
        ("REDIS_COOLDOWN_MS", "60000"),
    ])
    .await;
    let gateway = &running.gateway;
    let (_fake, conversation, mut phone, mut seen) = a_slow_answer_begins(gateway).await;
    let answer = answer_id(&seen);
    proxy.blackhole();
    // A cancel that cannot be recorded is refused aloud, not dropped.
    phone
        .send(&json!({"action": "cancel", "message_id": answer}))
        .await;
    seen.extend(phone.until(completed(&answer)).await);
    let refusal = seen
        .iter()
        .find(|e| e["type"] == "message.error" && e.get("message_id").is_none())
        .expect("the cancel is refused");
    assert_eq!(refusal["code"], "unavailable");
    let stored = stored_message(gateway, "alice", &conversation, &answer).await;
    assert_eq!(stored["status"], "complete", "{stored}");
    assert_saw_what_was_stored(&seen, &answer, &stored);
    // The next turn runs with Redis still gone.
    let mut laptop = WsClient::connect(gateway, "alice").await;
    laptop
        .send(&send_action(&conversation, "c-2", "again"))
        .await;
    let events = laptop.until(|e| e["type"] == "message.completed").await;
    let second = answer_id(&events);
    let stored = stored_message(gateway, "alice", &conversation, &second).await;
    assert_saw_what_was_stored(&events, &second, &stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_killed_mid_turn() {
    let running = cloud(&[]).await;
    let gateway = &running.gateway;
    let db = running.db.as_ref().unwrap();
    let (_fake, conversation, mut phone, mut seen) = a_slow_answer_begins(gateway).await;
    let answer = answer_id(&seen);
    assert!(
        db.terminate_connections().await > 0,
        "the gateway's connections are gone"
    );
    seen.extend(phone.until(completed(&answer)).await);
    let stored = stored_message(gateway, "alice", &conversation, &answer).await;
    assert_eq!(stored["status"], "complete", "{stored}");
    assert_saw_what_was_stored(&seen, &answer, &stored);
}

/// The process dies mid-answer (SIGKILL, as an out-of-memory Lambda would); the next one's
/// janitor ends the answer with what had been streamed, recovered from the resume buffer
/// (Redis; on a laptop, its files), once the dead turn's lease lapsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_killed_mid_stream_and_restarted_on_postgres() {
    let db = TestDatabase::create().await;
    let (redis, prefix) = (redis_url(), unique_prefix());
    killed_mid_stream_and_restarted(
        Some(db.url()),
        &[
            ("REDIS_URL", redis.as_str()),
            ("REDIS_KEY_PREFIX", prefix.as_str()),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_killed_mid_stream_and_restarted_on_sqlite() {
    killed_mid_stream_and_restarted(None, &[]).await;
}

async fn killed_mid_stream_and_restarted(database: Option<&str>, adapters: &[(&str, &str)]) {
    let slow = Reply::sse(openai_stream(&words(200))).paced(60, Duration::from_millis(200));
    let fake = FakeProvider::start(Vec::new(), slow).await;
    let dir = TempDir::new("killed");
    let mut env = vec![
        ("BESTCHAT_TURN_LEASE_MS", "1500"),
        ("BESTCHAT_JANITOR_INTERVAL_MS", "1000"),
    ];
    env.extend_from_slice(adapters);
    let first = GatewayProcess::start(dir.path(), database, &env);
    let conversation = fake_conversation(&first, "crash-user", &fake).await;
    let mut ws = WsClient::connect(&first, "crash-user").await;
    ws.send(&send_action(&conversation, "c1", "tell me a long story"))
        .await;
    let seen = ws
        .until(|e| e["type"] == "message.delta" && e["seq"] == 3)
        .await;
    let answer = answer_id(&seen);
    first.kill();

    let second = GatewayProcess::start(dir.path(), database, &env);
    let mut ws = WsClient::connect(&second, "crash-user").await;
    ws.send(&json!({"action": "resume", "message_id": answer, "after_seq": 3}))
        .await;
    let rest = ws.until(completed(&answer)).await;
    let error = rest
        .iter()
        .find(|e| e["type"] == "message.error")
        .expect("the loss is announced");
    assert_eq!(error["code"], "turn_lost");
    let stored = stored_message(&second, "crash-user", &conversation, &answer).await;
    assert_eq!(stored["status"], "incomplete");
    assert_eq!(stored["error"]["code"], "turn_lost");
    assert!(
        !stored["content"].as_str().unwrap().is_empty(),
        "what the client saw was kept: {stored}"
    );
    let mut all = seen;
    all.extend(rest);
    assert_saw_what_was_stored(&all, &answer, &stored);
    let (_, page) = Api::new(&second, "crash-user")
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}
