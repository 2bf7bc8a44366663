//! What one rate-limit check and one budget hold cost: `take`, and `reserve` then `settle`, on
//! the in-process cache and on Redis (`REDIS_URL`, default 127.0.0.1:6379), one request at a
//! time as a handler or a turn makes it, p50/p99 over 20,000 after 1,000 to warm up.
//! `cargo bench -p bestchat-cache --bench limiter`.

// A measurement reports on stdout.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use bestchat_cache::{MemoryCache, RedisCache, RedisSettings};
use bestchat_domain::budget::{Limit, Reservation};
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

fn quantiles(took: &mut [Duration]) -> (Duration, Duration) {
    took.sort();
    let at = |q: usize| took[(took.len() * q / 100).min(took.len() - 1)];
    (at(50), at(99))
}

/// A turn's hold and its settlement, over a thousand users' ledgers (a month's scope and the
/// prepaid credit, as with billing on), each seeded once.
async fn measure_holds(name: &str, cache: &dyn Cache) {
    let ttl = Duration::from_secs(3_600);
    let limits = [
        Limit {
            scope: "month:2026-12".into(),
            limit_micros: i64::MAX / 4,
        },
        Limit {
            scope: "credit".into(),
            limit_micros: i64::MAX / 4,
        },
    ];
    for user in 0..1_000 {
        for l in &limits {
            if cache
                .seed(&format!("bench:budget:{user}"), &l.scope, 0, ttl)
                .await
                .is_err()
            {
                println!("{name}: unavailable");
                return;
            }
        }
    }
    let (mut holds, mut settles) = (Vec::with_capacity(CHECKS), Vec::with_capacity(CHECKS));
    for i in 0..WARM_UP + CHECKS {
        let key = format!("bench:budget:{}", i % 1_000);
        let now_ms = 1_800_000_000_000 + i64::try_from(i).unwrap_or(0);
        let hold = Reservation {
            id: format!("answer-{i}"),
            amount_micros: 2_000,
            expires_at_ms: now_ms + 900_000,
        };
        let start = Instant::now();
        let held = cache.reserve(&key, &limits, &hold, now_ms, ttl).await;
        let reserved = start.elapsed();
        let start = Instant::now();
        let settled = cache.settle(&key, &hold.id, 1_500, ttl).await;
        if i >= WARM_UP {
            holds.push(reserved);
            settles.push(start.elapsed());
        }
        if held.is_err() || settled.is_err() {
            println!("{name}: unavailable");
            return;
        }
    }
    let (p50, p99) = quantiles(&mut holds);
    println!("{name} reserve: p50 {p50:?}, p99 {p99:?} ({CHECKS} holds)");
    let (p50, p99) = quantiles(&mut settles);
    println!("{name} settle: p50 {p50:?}, p99 {p99:?} ({CHECKS} settlements)");
}

#[tokio::main]
async fn main() {
    measure("in process", &MemoryCache::new()).await;
    measure_holds("in process", &MemoryCache::new()).await;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let settings = RedisSettings {
        key_prefix: format!("bestchat-bench:{}:", std::process::id()),
        ..RedisSettings::default()
    };
    match RedisCache::connect(&url, &settings) {
        Ok(redis) => {
            measure("Redis", &redis).await;
            measure_holds("Redis", &redis).await;
        }
        Err(e) => println!("Redis: cannot connect ({e})"),
    }
}
