//! An open-loop HTTP load generator: requests start at a fixed rate, evenly spaced, over a fixed
//! number of keep-alive connections. Latency is measured from each request's scheduled start, so
//! a stalled server cannot hide queueing (no coordinated omission).
//!
//! usage: httpload <url> <requests-per-second> <seconds> <connections> [header: value]...

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, rate, seconds, connections, headers @ ..] = args.as_slice() else {
        eprintln!("usage: httpload <url> <rps> <seconds> <connections> [header: value]...");
        std::process::exit(2);
    };
    let rate: f64 = rate.parse().expect("rps");
    let seconds: f64 = seconds.parse().expect("seconds");
    let connections: usize = connections.parse().expect("connections");
    let mut default_headers = reqwest::header::HeaderMap::new();
    for h in headers {
        let (name, value) = h.split_once(':').expect("header is 'name: value'");
        default_headers.insert(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
            value.trim().parse().expect("header value"),
        );
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .default_headers(default_headers)
        .build()
        .expect("client");
    let slots = Arc::new(Semaphore::new(connections));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * seconds) as usize;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, url, slots, latencies, errors) = (
            client.clone(),
            url.clone(),
            Arc::clone(&slots),
            Arc::clone(&latencies),
            Arc::clone(&errors),
        );
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore");
            let ok = match client.get(&url).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            if ok {
                latencies.lock().await.push(scheduled.elapsed());
            } else {
                *errors.lock().await += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().await.clone();
    l.sort();
    let pick = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{} requests in {elapsed:.1} s ({:.0}/s achieved), {} errors; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        l.len(),
        l.len() as f64 / elapsed,
        errors.lock().await,
        pick(0.5),
        pick(0.9),
        pick(0.99),
        pick(1.0)
    );
}
