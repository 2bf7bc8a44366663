//! Everything an answer can make the deployment hold is bounded: a user's own provider that
//! streams without end gets its answer cut at `BESTCHAT_MESSAGE_MAX_BYTES` (what arrived up to
//! it kept, `incomplete`, `answer_too_large`); one user's frames in the shared resume buffer stop
//! at their share; and no list answers with more than `BESTCHAT_MAX_RESPONSE_BYTES`, however
//! large its rows (the rest by cursor).

use bestchat_tests::api::Api;
use bestchat_tests::chat::{fake_conversation, send_action};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::GatewayProcess;
use bestchat_tests::scripted::openai_stream;
use bestchat_tests::ws::{WsClient, completed, deltas};
use reqwest::Method;
use serde_json::Value;

const MESSAGE_MAX: usize = 65_536;
const RESPONSE_MAX: usize = 100_000;

super::on_both_adapter_sets!(&[
        ("BESTCHAT_MESSAGE_MAX_BYTES", "65536"),
        ("BESTCHAT_TOOL_MAX_OUTPUT_BYTES", "65536"),
        ("BESTCHAT_TOOL_DEFAULT_OUTPUT_BYTES", "65536"),
        ("BESTCHAT_MAX_RESPONSE_BYTES", "100000"),
        ("BESTCHAT_STREAM_BUFFER_MAX_BYTES_PER_USER", "200000"),
    ];
    an_endless_answer_is_cut_and_every_read_of_it_is_bounded,
);

/// Sends a message and waits for the answer's end: the stored answer (fetched whole: it is too
/// large for its event's frame), and the text the deltas carried.
async fn ask(
    gateway: &GatewayProcess,
    user: &str,
    ws: &mut WsClient,
    conversation: &str,
    client_id: &str,
) -> (Value, String) {
    ws.send(&send_action(conversation, client_id, "talk forever"))
        .await;
    let created = ws
        .until(|e| e["type"] == "message.created" && e["message"]["role"] == "assistant")
        .await;
    let answer = created.last().unwrap()["message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut events = created;
    events.extend(ws.until(completed(&answer)).await);
    let (status, stored) = Api::new(gateway, user)
        .get(&format!(
            "/api/conversations/{conversation}/messages/{answer}"
        ))
        .await;
    assert_eq!(status, 200);
    (stored, deltas(&events).0)
}

async fn an_endless_answer_is_cut_and_every_read_of_it_is_bounded(gateway: &GatewayProcess) {
    // A megabyte and more, in kilobyte pieces: far past the cap.
    let piece = "x".repeat(1_000);
    let endless = Reply::sse(openai_stream(&vec![piece; 1_100]));
    let fake = FakeProvider::start(vec![], endless).await;
    let first = fake_conversation(gateway, "flood", &fake).await;
    let mut ws = WsClient::connect(gateway, "flood").await;
    for turn in 0..2 {
        let (done, streamed) = ask(gateway, "flood", &mut ws, &first, &format!("a-{turn}")).await;
        assert_eq!(done["status"], "incomplete", "{}", done["error"]);
        assert_eq!(done["error"]["code"], "answer_too_large");
        let kept = done["content"].as_str().unwrap();
        assert!(
            kept.len() <= MESSAGE_MAX && kept.len() > MESSAGE_MAX - 1_000,
            "{}",
            kept.len()
        );
        assert_eq!(streamed, kept, "what was streamed is what was kept");
    }
    // A list never answers with more than its budget; the cursor brings the rest, in order.
    let api = Api::new(gateway, "flood");
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/conversations/{first}/messages?limit=200{cursor}");
        let (status, raw) = api.send_bytes(Method::GET, &path, Vec::new()).await;
        assert_eq!(status, 200, "{raw}");
        let page: Value = serde_json::from_str(&raw).unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty());
        assert!(
            raw.len() <= RESPONSE_MAX || items.len() == 1,
            "a page of {} bytes",
            raw.len()
        );
        seen.extend(items.iter().map(|m| m["role"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["user", "assistant", "user", "assistant"]);
    // The user's share of the resume buffer: two full answers, a third, then the fourth is
    // cut early.
    let second = fake_conversation(gateway, "flood", &fake).await;
    let (third, _) = ask(gateway, "flood", &mut ws, &second, "a-2").await;
    assert_eq!(third["content"].as_str().unwrap().len(), MESSAGE_MAX);
    let (fourth, streamed) = ask(gateway, "flood", &mut ws, &second, "a-3").await;
    assert_eq!(fourth["error"]["code"], "answer_too_large");
    let kept = fourth["content"].as_str().unwrap();
    assert!(
        kept.len() < MESSAGE_MAX / 2,
        "cut by the user's share: {}",
        kept.len()
    );
    assert_eq!(streamed, kept);
    // Another user's answers are theirs to make.
    let theirs = fake_conversation(gateway, "neighbour", &fake).await;
    let mut other = WsClient::connect(gateway, "neighbour").await;
    let (done, _) = ask(gateway, "neighbour", &mut other, &theirs, "n-1").await;
    assert_eq!(done["content"].as_str().unwrap().len(), MESSAGE_MAX);
}
