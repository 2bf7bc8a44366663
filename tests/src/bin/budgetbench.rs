//! What budgets add to a turn: the time from `sendMessage` to the answer's first delta, with
//! budgets on (every call holds its worst case in Redis first and settles after) and off, side
//! by side in one run: two `bestchat-local` on PostgreSQL and Redis, the same fake provider on
//! loopback answering at once, turns alternating between them one at a time.
//!
//! usage: budgetbench <turns per side>

// A measurement reports on stdout.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use bestchat_tests::chat::{
    FAKE_MODEL, FAKE_PROVIDER, new_conversation, send_action, use_fake_provider,
};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{Running, postgres};
use bestchat_tests::scripted::openai_stream;
use bestchat_tests::ws::WsClient;
use serde_json::json;

struct Side {
    name: &'static str,
    running: Running,
    ws: WsClient,
    conversation: String,
    samples: Vec<f64>,
}

async fn side(name: &'static str, budget: &str, fake: &FakeProvider) -> Side {
    let redis = bestchat_tests::redis_url();
    let prefix = bestchat_tests::unique_prefix();
    let running = postgres(&[
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("BESTCHAT_BUDGET_DEFAULT_MICROS", budget),
        ("RUST_LOG", "warn"),
    ])
    .await;
    use_fake_provider(&running.gateway, "bench", fake).await;
    let conversation = new_conversation(
        &running.gateway,
        "bench",
        &json!({"provider": FAKE_PROVIDER, "model": FAKE_MODEL, "settings": {"max_output_tokens": 100}}),
    )
    .await;
    let ws = WsClient::connect(&running.gateway, "bench").await;
    Side {
        name,
        running,
        ws,
        conversation,
        samples: Vec::new(),
    }
}

/// One turn; the milliseconds from the send to the first delta (a fresh conversation each 50
/// turns, so the history stays small).
async fn turn(side: &mut Side, n: usize) {
    if n.is_multiple_of(50) && n > 0 {
        side.conversation = new_conversation(
            &side.running.gateway,
            "bench",
            &json!({"provider": FAKE_PROVIDER, "model": FAKE_MODEL, "settings": {"max_output_tokens": 100}}),
        )
        .await;
    }
    let started = Instant::now();
    side.ws
        .send(&send_action(&side.conversation, &format!("t-{n}"), "go"))
        .await;
    side.ws.until(|e| e["type"] == "message.delta").await;
    side.samples.push(started.elapsed().as_secs_f64() * 1_000.0);
    side.ws.until(|e| e["type"] == "message.completed").await;
}

fn report(side: &mut Side) {
    side.samples.sort_by(f64::total_cmp);
    let at = |p: f64| side.samples[((side.samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms",
        side.name,
        side.samples.len(),
        at(0.50),
        at(0.90),
        at(0.99)
    );
}

#[tokio::main]
async fn main() {
    let turns: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(openai_stream(&["one ".into(), "two".into()])),
    )
    .await;
    // A limit no bench reaches: every call holds and settles, none is refused.
    let mut on = side("budgets on", "1000000000000", &fake).await;
    let mut off = side("budgets off", "0", &fake).await;
    for n in 0..turns {
        turn(&mut on, n).await;
        turn(&mut off, n).await;
    }
    report(&mut on);
    report(&mut off);
}
