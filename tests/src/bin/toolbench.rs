//! The cost of the tool loop through a running bestchat-local: what a tool step adds to a turn
//! beyond the tool's own run (the step's `message.completed` to the next step's first delta,
//! minus the executor's `wall_ms`), and an approval's round trip (`approveTool` sent to the
//! continuation's first delta). Turns run one after another against a fake OpenAI-compatible
//! provider on loopback that answers at once.
//!
//! usage: toolbench <gateway-url> <jwt-secret> <turns> [fresh]
//!
//! With `fresh`, every turn has a conversation of its own; otherwise they all share one, which
//! grows by four messages a turn.

use std::time::Instant;

use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{now_epoch, signer};
use bestchat_tests::scripted::{Call, openai_stream, openai_tool_calls};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Bench {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Bench {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }
}

/// Events until one `done` accepts; the instant each arrived.
async fn until(ws: &mut Ws, done: impl Fn(&Value) -> bool) -> Vec<(Instant, Value)> {
    let mut events = Vec::new();
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Text(text) = frame {
            let event: Value = serde_json::from_str(&text).expect("json");
            let last = done(&event);
            events.push((Instant::now(), event));
            if last {
                return events;
            }
        }
    }
    panic!("the connection closed");
}

fn first<'a>(events: &'a [(Instant, Value)], kind: &str) -> &'a (Instant, Value) {
    events
        .iter()
        .find(|(_, e)| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn percentiles(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{name}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    );
}

/// The executor's wall_ms of the newest execution of `conversation`.
async fn wall_ms(bench: &Bench, conversation: &str) -> f64 {
    let listed = bench
        .call(
            reqwest::Method::GET,
            &format!("/api/tool-executions?conversation_id={conversation}&limit=1"),
            None,
        )
        .await;
    listed["items"][0]["usage"]["wall_ms"]
        .as_f64()
        .unwrap_or(0.0)
}

async fn new_conversation(bench: &Bench) -> String {
    bench
        .call(
            reqwest::Method::POST,
            "/api/conversations",
            Some(json!({"provider": "fake", "model": "fake-model"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, secret, turns, fresh) = match args.as_slice() {
        [_, base, secret, turns] => (base, secret, turns, false),
        [_, base, secret, turns, mode] if mode == "fresh" => (base, secret, turns, true),
        _ => {
            eprintln!("usage: toolbench <gateway-url> <jwt-secret> <turns> [fresh]");
            std::process::exit(2);
        }
    };
    let turns: usize = turns.parse().expect("turns");
    let token = signer(secret.as_bytes(), "bestchat-local", "bestchat")
        .mint(
            "toolbench",
            now_epoch(),
            std::time::Duration::from_secs(24 * 3600),
        )
        .expect("token");
    let bench = Bench {
        base: base.clone(),
        token,
        http: reqwest::Client::new(),
    };
    let fake = FakeProvider::start(vec![], Reply::json(500, "{}")).await;
    bench
        .call(
            reqwest::Method::PUT,
            "/api/provider-configs/fake",
            Some(
                json!({"protocol": "openai", "base_url": format!("{}/v1", fake.base_url),
                        "models": [{"id": "fake-model", "context_window": 128000,
                                    "max_output_tokens": 4096, "supports_tools": true}]}),
            ),
        )
        .await;
    let mut manifest: Value =
        serde_json::from_str(include_str!("../../../examples/wasm-tool/manifest.json")).unwrap();
    manifest["name"] = json!("bench_write");
    manifest["risk"] = json!("write");
    use base64::Engine as _;
    let module = base64::engine::general_purpose::STANDARD
        .encode(bestchat_tests::wasm::module("word_count"));
    bench
        .call(
            reqwest::Method::POST,
            "/api/tools",
            Some(json!({"manifest": manifest, "module": module})),
        )
        .await;
    let mut conversation = new_conversation(&bench).await;
    let url = format!(
        "{}/ws?token={}",
        base.replacen("http://", "ws://", 1),
        bench.token
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");

    let mut overhead = Vec::new();
    let mut round_trip = Vec::new();
    let mut round_trip_beyond_tool = Vec::new();
    for i in 0..turns * 2 {
        let ask = i % 2 == 1;
        if fresh && i > 0 {
            conversation = new_conversation(&bench).await;
        }
        let call = if ask {
            Call {
                id: "call_w",
                name: "bench_write",
                arguments: json!({"text": "one two three"}),
            }
        } else {
            Call {
                id: "call_c",
                name: "calculator",
                arguments: json!({"expression": "6 * 7"}),
            }
        };
        fake.push(Reply::sse(openai_tool_calls(&[call])));
        fake.push(Reply::sse(openai_stream(&["done".into()])));
        let send = json!({"action": "sendMessage", "conversation_id": conversation,
                          "client_message_id": format!("b-{i}"), "content": "go"});
        ws.send(Message::Text(send.to_string().into()))
            .await
            .unwrap();
        if ask {
            let pending = until(&mut ws, |e| e["type"] == "tool.pending").await;
            let id = pending.last().unwrap().1["tool_execution_id"].clone();
            let decided = Instant::now();
            let approve =
                json!({"action": "approveTool", "tool_execution_id": id, "decision": "approve"});
            ws.send(Message::Text(approve.to_string().into()))
                .await
                .unwrap();
            let events = until(&mut ws, |e| {
                e["type"] == "message.completed" && e["message"]["tool_calls"].is_null()
            })
            .await;
            let (delta_at, _) = first(&events, "message.delta");
            let ms = delta_at.duration_since(decided).as_secs_f64() * 1000.0;
            round_trip.push(ms);
            round_trip_beyond_tool.push(ms - wall_ms(&bench, &conversation).await);
        } else {
            let events = until(&mut ws, |e| {
                e["type"] == "message.completed" && e["message"]["tool_calls"].is_null()
            })
            .await;
            let (step_done, _) = first(&events, "message.completed");
            let (delta_at, _) = events
                .iter()
                .find(|(at, e)| e["type"] == "message.delta" && at > step_done)
                .expect("the next step's first delta");
            let ms = delta_at.duration_since(*step_done).as_secs_f64() * 1000.0;
            overhead.push(ms - wall_ms(&bench, &conversation).await);
        }
    }
    // The first of each is the cold one (the tool's first compile): reported apart.
    println!(
        "first auto step (cold): {:.2} ms beyond the tool",
        overhead[0]
    );
    println!("first approval (cold): {:.2} ms", round_trip[0]);
    percentiles(
        "tool step overhead beyond the tool's run",
        overhead[1..].to_vec(),
    );
    percentiles(
        "approval round trip (decision -> first delta)",
        round_trip[1..].to_vec(),
    );
    percentiles(
        "approval round trip beyond the tool's run",
        round_trip_beyond_tool[1..].to_vec(),
    );
}
