//! WebSocket load: N clients each stream an answer of T tokens from a fake provider through a
//! running bestchat-local, while M more connections sit idle. Reports lost or reordered frames,
//! the delay from the provider's chunk to the client's frame, frames per answer, and the
//! gateway's memory per connection.
//!
//! usage: wsload <gateway-url> <jwt-secret> <streams> <idle> <tokens> <token-interval-ms> [gateway-pid]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bestchat_tests::gateway::signer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

fn micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// An OpenAI-compatible server whose tokens carry the time they were sent (`" t<micros>"`).
async fn fake_provider(tokens: usize, interval: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                // Read the request head and body (content-length) before answering.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut tick = tokio::time::interval(interval);
                for _ in 0..tokens {
                    tick.tick().await;
                    let event = format!(
                        "data: {}\n\n",
                        json!({"choices": [{"index": 0, "delta": {"content": format!(" t{}", micros())}, "finish_reason": null}]})
                    );
                    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let end = format!(
                    "data: {}\n\ndata: [DONE]\n\n",
                    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                );
                let _ = socket
                    .write_all(format!("{:x}\r\n{end}\r\n0\r\n\r\n", end.len()).as_bytes())
                    .await;
            });
        }
    });
    url
}

fn rss_kib(pid: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

struct Outcome {
    ok: bool,
    first_frame_tokens: usize,
    frames: usize,
    tokens: usize,
    first_delay_us: u64,
    delays_us: Vec<u64>,
}

async fn stream_one(ws_url: String, conversation: String, expected: usize) -> Outcome {
    let failed = Outcome {
        ok: false,
        first_frame_tokens: 0,
        frames: 0,
        tokens: 0,
        first_delay_us: 0,
        delays_us: Vec::new(),
    };
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&ws_url).await else {
        return failed;
    };
    let send = json!({"action": "sendMessage", "conversation_id": conversation, "client_message_id": "load", "content": "go"});
    if ws
        .send(Message::Text(send.to_string().into()))
        .await
        .is_err()
    {
        return failed;
    }
    let mut next_seq = 1;
    let mut last_stamp = 0;
    let mut outcome = Outcome {
        ok: true,
        first_frame_tokens: 0,
        frames: 0,
        tokens: 0,
        first_delay_us: 0,
        delays_us: Vec::new(),
    };
    loop {
        let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_secs(120), ws.next()).await
        else {
            outcome.ok = false;
            break;
        };
        let received = micros();
        let Ok(event) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if std::env::var("WSLOAD_TRACE").is_ok() && outcome.frames < 3 {
            eprintln!("{} {} {}", received, event["type"], event["text"]);
        }
        match event["type"].as_str() {
            Some("message.delta") => {
                if event["seq"].as_u64() != Some(next_seq) {
                    outcome.ok = false;
                }
                next_seq += 1;
                outcome.frames += 1;
                if outcome.frames == 1 {
                    outcome.first_frame_tokens = event["text"]
                        .as_str()
                        .unwrap_or_default()
                        .matches(" t")
                        .count();
                }
                for stamp in event["text"]
                    .as_str()
                    .unwrap_or_default()
                    .split(" t")
                    .filter_map(|t| t.trim().parse::<u64>().ok())
                {
                    if stamp < last_stamp {
                        outcome.ok = false;
                    }
                    last_stamp = stamp;
                    let delay = received.saturating_sub(stamp);
                    if outcome.tokens == 0 {
                        outcome.first_delay_us = delay;
                    }
                    outcome.tokens += 1;
                    outcome.delays_us.push(delay);
                }
            }
            Some("message.completed") => break,
            Some("message.error") => {
                outcome.ok = false;
                break;
            }
            _ => {}
        }
    }
    outcome.ok &= outcome.tokens == expected;
    outcome
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q) as usize] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, secret, streams, idle, tokens, interval, rest @ ..] = args.as_slice() else {
        eprintln!(
            "usage: wsload <gateway-url> <jwt-secret> <streams> <idle> <tokens> <token-interval-ms> [gateway-pid]"
        );
        std::process::exit(2);
    };
    let (streams, idle, tokens): (usize, usize, usize) = (
        streams.parse().unwrap(),
        idle.parse().unwrap(),
        tokens.parse().unwrap(),
    );
    let interval = Duration::from_millis(interval.parse().unwrap());
    let pid = rest.first().cloned();
    let provider = fake_provider(tokens, interval).await;
    let issuer = signer(secret.as_bytes(), "bestchat-local", "bestchat");
    let now = (micros() / 1_000_000) as i64;
    let http = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(32));
    let ws_base = url.replacen("http://", "ws://", 1);

    // One user, provider config and conversation per streaming client.
    let mut setups = Vec::new();
    for i in 0..streams {
        let token = issuer
            .mint(&format!("load-{i}"), now, Duration::from_secs(3600))
            .unwrap();
        let (http, gate, url, provider) = (
            http.clone(),
            Arc::clone(&gate),
            url.clone(),
            provider.clone(),
        );
        setups.push(tokio::spawn(async move {
            let _slot = gate.acquire().await.unwrap();
            http.put(format!("{url}/api/provider-configs/fake")).bearer_auth(&token)
                .json(&json!({"protocol": "openai", "base_url": provider,
                              "models": [{"id": "m", "context_window": 1000000, "max_output_tokens": 100000}]}))
                .send().await.unwrap();
            let c: Value = http.post(format!("{url}/api/conversations")).bearer_auth(&token)
                .json(&json!({"provider": "fake", "model": "m"})).send().await.unwrap().json().await.unwrap();
            (token, c["id"].as_str().unwrap().to_owned())
        }));
    }
    let mut users = Vec::new();
    for s in setups {
        users.push(s.await.unwrap());
    }
    let before = pid.as_deref().and_then(rss_kib);

    // The idle connections first, so the streaming ones run with them open.
    let mut idlers = Vec::new();
    for i in 0..idle {
        let token = issuer
            .mint(&format!("idle-{i}"), now, Duration::from_secs(3600))
            .unwrap();
        let url = format!("{ws_base}/ws?token={token}");
        let _slot = gate.acquire().await.unwrap();
        match tokio_tungstenite::connect_async(&url).await {
            Ok((ws, _)) => idlers.push(ws),
            Err(e) => eprintln!("idle connection {i} failed: {e}"),
        }
    }
    let with_idle = pid.as_deref().and_then(rss_kib);

    let started = std::time::Instant::now();
    let runs: Vec<_> = users
        .into_iter()
        .map(|(token, conversation)| {
            tokio::spawn(stream_one(
                format!("{ws_base}/ws?token={token}"),
                conversation,
                tokens,
            ))
        })
        .collect();
    let mut outcomes = Vec::new();
    for r in runs {
        outcomes.push(r.await.unwrap());
    }
    let elapsed = started.elapsed();
    let during = pid.as_deref().and_then(rss_kib);

    let good = outcomes.iter().filter(|o| o.ok).count();
    let frames: usize = outcomes.iter().map(|o| o.frames).sum();
    let mut first: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.tokens > 0)
        .map(|o| o.first_delay_us)
        .collect();
    let mut all: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| o.delays_us.iter().copied())
        .collect();
    first.sort_unstable();
    all.sort_unstable();
    println!(
        "streams {streams} x {tokens} tokens every {interval:?}, idle connections {} open",
        idlers.len()
    );
    println!(
        "complete and in order: {good}/{streams} in {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "frames per answer: {:.1} (vs {tokens} tokens); tokens in the first frame: {:.1}",
        frames as f64 / streams.max(1) as f64,
        outcomes.iter().map(|o| o.first_frame_tokens).sum::<usize>() as f64 / streams.max(1) as f64
    );
    println!(
        "first delta delay: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&first, 0.5),
        pct(&first, 0.99),
        pct(&first, 1.0)
    );
    println!(
        "every token's delay: p50 {:.2} ms, p99 {:.2} ms",
        pct(&all, 0.5),
        pct(&all, 0.99)
    );
    if let (Some(b), Some(w), Some(d)) = (before, with_idle, during) {
        let per_idle = if idlers.is_empty() {
            0.0
        } else {
            (w.saturating_sub(b)) as f64 / idlers.len() as f64
        };
        println!(
            "gateway RSS: {b} KiB before, {w} KiB with idle connections ({per_idle:.1} KiB each), {d} KiB after streaming"
        );
    }
    for ws in &mut idlers {
        let _ = ws.close(None).await;
    }
}
