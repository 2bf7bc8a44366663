//! What one rate-limit check costs: `take` on the in-process cache and on Redis (`REDIS_URL`,
//! default 127.0.0.1:6379), one request at a time as a handler makes it, p50/p99 over 20,000
//! checks after 1,000 to warm up. `cargo bench -p bestchat-cache --bench limiter`.

// A measurement reports on stdout.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use bestchat_cache::{MemoryCache, RedisCache, RedisSettings};
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::rate::Rate;

const WARM_UP: usize = 1_000;
const CHECKS: usize = 20_000;
const RATE: Rate = Rate {
    quota: 600,
    window: Duration::from_secs(60),
};

async fn measure(name: &str, cache: &dyn Cache) {
    let mut took = Vec::with_capacity(CHECKS);
    for i in 0..WARM_UP + CHECKS {
        // A thousand users, as a busy deployment's handlers would see them.
        let key = format!("bench:rate:{}", i % 1_000);
        let now_ms = 1_800_000_000_000 + i64::try_from(i).unwrap_or(0);
        let start = Instant::now();
        let decision = cache.take(&key, &RATE, now_ms).await;
        if i >= WARM_UP {
            took.push(start.elapsed());
        }
        if decision.is_err() {
            println!("{name}: unavailable");
            return;
        }
    }
    took.sort();
    let at = |q: usize| took[(took.len() * q / 100).min(took.len() - 1)];
    println!(
        "{name}: p50 {:?}, p99 {:?} ({CHECKS} checks)",
        at(50),
        at(99)
    );
}

#[tokio::main]
async fn main() {
    measure("in process", &MemoryCache::new()).await;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let settings = RedisSettings {
        key_prefix: format!("bestchat-bench:{}:", std::process::id()),
        ..RedisSettings::default()
    };
    match RedisCache::connect(&url, &settings) {
        Ok(redis) => measure("Redis", &redis).await,
        Err(e) => println!("Redis: cannot connect ({e})"),
    }
}
