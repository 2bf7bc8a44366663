//! The cache port's contract on Redis and in-process, and the circuit breaker whose state lives
//! in it: shared between clients, half-open after the cooldown, failing open without Redis.

use bestchat_egress::{Guard, Reach};
use std::sync::Arc;
use std::time::Duration;

use bestchat_cache::{MemoryCache, RedisCache, RedisSettings};
use bestchat_domain::budget::{Ledger, Limit, Reservation, ReserveOutcome};
use bestchat_domain::model_ref::{ModelId, ProviderId};
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::provider::Protocol;
use bestchat_domain::rate::Rate;
use bestchat_providers::breaker::{Breaker, BreakerSettings, BreakerState};
use bestchat_providers::failover::{Failover, RetrySettings, Target};
use bestchat_providers::{Auth, ChatMessage, ChatRequest, Endpoint, HttpSettings, Providers};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::proxy::TcpProxy;
use bestchat_tests::{fixture, redis_addr, redis_url, unique_prefix};

fn redis() -> RedisCache {
    RedisCache::connect(
        &redis_url(),
        &RedisSettings {
            key_prefix: unique_prefix(),
            command_timeout: Duration::from_secs(2),
            ..RedisSettings::default()
        },
    )
    .unwrap()
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $case() { super::$case(&bestchat_cache::MemoryCache::new()).await; } )*
        }
        mod redis {
            $( #[tokio::test] async fn $case() { super::$case(&super::redis()).await; } )*
        }
    };
}

contract!(
    values_round_trip_and_expire,
    set_if_absent_sets_once,
    increments_count_and_expire,
    deletes_are_idempotent,
    takes_count_per_key_and_refill,
    takes_are_exact_under_concurrency,
    ledgers_hold_seed_and_settle,
    holds_are_exact_under_concurrency,
    ledgers_follow_the_model_under_any_interleaving,
);

const RATE: Rate = Rate {
    quota: 5,
    window: Duration::from_secs(10),
};

/// The clock is the caller's: the same `now` every time, so nothing here depends on timing.
const NOW_MS: i64 = 1_800_000_000_000;

async fn takes_count_per_key_and_refill(cache: &dyn Cache) {
    for left in (0..5).rev() {
        let d = cache.take("rate:a", &RATE, NOW_MS).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, left);
    }
    let refused = cache.take("rate:a", &RATE, NOW_MS).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after, Duration::from_secs(2));
    assert_eq!(refused.reset_after, Duration::from_secs(10));
    let other = cache.take("rate:b", &RATE, NOW_MS).await.unwrap();
    assert!(
        other.allowed && other.remaining == 4,
        "keys are counted apart"
    );
    let later = cache.take("rate:a", &RATE, NOW_MS + 2_000).await.unwrap();
    assert!(later.allowed, "one interval later one more passes");
    assert!(
        !cache
            .take("rate:a", &RATE, NOW_MS + 2_000)
            .await
            .unwrap()
            .allowed
    );
}

async fn takes_are_exact_under_concurrency(cache: &dyn Cache) {
    let takes = (0..40).map(|_| cache.take("rate:burst", &RATE, NOW_MS));
    let decisions = futures_util::future::join_all(takes).await;
    let allowed = decisions
        .iter()
        .filter(|d| d.as_ref().unwrap().allowed)
        .count();
    assert_eq!(
        allowed, 5,
        "exactly the quota passes, whatever the interleaving"
    );
}

const LEDGER_TTL: Duration = Duration::from_secs(60);

fn limit(scope: &str, micros: i64) -> Limit {
    Limit {
        scope: scope.into(),
        limit_micros: micros,
    }
}

fn hold(id: &str, amount: i64, expires_at_ms: i64) -> Reservation {
    Reservation {
        id: id.into(),
        amount_micros: amount,
        expires_at_ms,
    }
}

async fn ledgers_hold_seed_and_settle(cache: &dyn Cache) {
    let key = "budget:a";
    let limits = [limit("month:2026-12", 100), limit("credit", 50)];
    let reserve = |id: &'static str, amount, at| {
        let limits = limits.clone();
        async move {
            cache
                .reserve(
                    key,
                    &limits,
                    &hold(id, amount, NOW_MS + 1_000),
                    at,
                    LEDGER_TTL,
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(
        reserve("a", 10, NOW_MS).await,
        ReserveOutcome::Unseeded(vec!["month:2026-12".into(), "credit".into()])
    );
    cache
        .seed(key, "month:2026-12", 20, LEDGER_TTL)
        .await
        .unwrap();
    cache.seed(key, "credit", 30, LEDGER_TTL).await.unwrap();
    cache.seed(key, "credit", 999, LEDGER_TTL).await.unwrap();
    assert_eq!(reserve("a", 15, NOW_MS).await, ReserveOutcome::Reserved);
    assert_eq!(
        reserve("b", 6, NOW_MS).await,
        ReserveOutcome::Refused {
            scope: "credit".into(),
            available_micros: 5
        }
    );
    assert_eq!(
        reserve("a", 20, NOW_MS).await,
        ReserveOutcome::Reserved,
        "the same id replaces its hold"
    );
    let ledger = cache.ledger(key).await.unwrap();
    assert_eq!(ledger.reserved(NOW_MS), 20);
    assert_eq!(ledger.spent["credit"], 30, "a seed never overwrites");
    assert!(cache.settle(key, "a", 12, LEDGER_TTL).await.unwrap());
    assert!(!cache.settle(key, "a", 12, LEDGER_TTL).await.unwrap());
    let ledger = cache.ledger(key).await.unwrap();
    assert_eq!(ledger.spent["month:2026-12"], 32);
    assert_eq!(ledger.spent["credit"], 42);
    assert_eq!(ledger.reserved(NOW_MS), 0);
    // An expired hold frees its money; settling it late adds nothing.
    assert_eq!(reserve("c", 8, NOW_MS).await, ReserveOutcome::Reserved);
    assert!(matches!(
        reserve("d", 1, NOW_MS + 999).await,
        ReserveOutcome::Refused { .. }
    ));
    assert_eq!(
        reserve("d", 8, NOW_MS + 1_000).await,
        ReserveOutcome::Reserved
    );
    assert!(!cache.settle(key, "c", 8, LEDGER_TTL).await.unwrap());
    // A new period's scope drops the old one's spending and asks for a seed.
    let next = [limit("month:2027-01", 100)];
    let outcome = cache
        .reserve(
            key,
            &next,
            &hold("e", 1, NOW_MS + 5_000),
            NOW_MS,
            LEDGER_TTL,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ReserveOutcome::Unseeded(vec!["month:2027-01".into()])
    );
    assert!(
        !cache
            .ledger(key)
            .await
            .unwrap()
            .spent
            .contains_key("month:2026-12")
    );
    assert_eq!(
        cache.ledger("budget:none").await.unwrap(),
        Ledger::default()
    );
}

async fn holds_are_exact_under_concurrency(cache: &dyn Cache) {
    let key = "budget:burst";
    let limits = [limit("day:2026-12-07", 100)];
    cache
        .seed(key, "day:2026-12-07", 0, LEDGER_TTL)
        .await
        .unwrap();
    let ids: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
    let holds = ids.iter().map(|id| {
        let limits = &limits;
        async move {
            cache
                .reserve(
                    key,
                    limits,
                    &hold(id, 10, NOW_MS + 60_000),
                    NOW_MS,
                    LEDGER_TTL,
                )
                .await
                .unwrap()
        }
    });
    let outcomes = futures_util::future::join_all(holds).await;
    let held = outcomes
        .iter()
        .filter(|o| **o == ReserveOutcome::Reserved)
        .count();
    assert_eq!(
        held, 10,
        "exactly what fits is held, whatever the interleaving"
    );
    assert_eq!(cache.ledger(key).await.unwrap().reserved(NOW_MS), 100);
}

/// Random reservations, settlements (never above their hold) and waits, the same on the cache
/// and on the domain's ledger: every outcome agrees, and spent + reserved never passes a limit.
async fn ledgers_follow_the_model_under_any_interleaving(cache: &dyn Cache) {
    for seed in 1..=4u64 {
        let key = format!("budget:model:{seed}");
        let limits = [limit("month:2026-12", 500), limit("credit", 700)];
        let mut model = Ledger::default();
        for l in &limits {
            cache.seed(&key, &l.scope, 0, LEDGER_TTL).await.unwrap();
            model.seed(&l.scope, 0);
        }
        let mut state = seed;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let mut now = NOW_MS;
        for _ in 0..150 {
            match next(3) {
                0 => {
                    let h = hold(
                        &format!("h{}", next(6)),
                        i64::try_from(next(200)).unwrap(),
                        now + 1 + i64::try_from(next(40)).unwrap(),
                    );
                    let got = cache
                        .reserve(&key, &limits, &h, now, LEDGER_TTL)
                        .await
                        .unwrap();
                    assert_eq!(got, model.reserve(&limits, &h, now), "seed {seed}");
                }
                1 => {
                    let id = format!("h{}", next(6));
                    let held = model.holds.get(&id).map_or(0, |h| h.0);
                    let cost = held * i64::try_from(next(101)).unwrap() / 100;
                    let got = cache.settle(&key, &id, cost, LEDGER_TTL).await.unwrap();
                    assert_eq!(got, model.settle(&id, cost), "seed {seed}");
                }
                _ => now += i64::try_from(next(20)).unwrap(),
            }
            let ledger = cache.ledger(&key).await.unwrap();
            assert_eq!(ledger.spent, model.spent, "seed {seed}");
            for l in &limits {
                assert!(ledger.spent[&l.scope] + ledger.reserved(now) <= l.limit_micros);
            }
        }
    }
}

const SHORT: Duration = Duration::from_millis(150);
/// Comfortably past `SHORT`, so expiry is certain without asserting on timing.
const PAST_SHORT: Duration = Duration::from_millis(600);

async fn values_round_trip_and_expire(cache: &dyn Cache) {
    assert_eq!(cache.get("k").await.unwrap(), None);
    cache
        .set("k", b"v1", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get("k").await.unwrap(), Some(b"v1".to_vec()));
    cache.set("k", b"v2", SHORT).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), Some(b"v2".to_vec()));
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
}

async fn set_if_absent_sets_once(cache: &dyn Cache) {
    assert!(cache.set_if_absent("once", b"a", SHORT).await.unwrap());
    assert!(!cache.set_if_absent("once", b"b", SHORT).await.unwrap());
    assert_eq!(cache.get("once").await.unwrap(), Some(b"a".to_vec()));
    tokio::time::sleep(PAST_SHORT).await;
    assert!(cache.set_if_absent("once", b"c", SHORT).await.unwrap());
}

async fn increments_count_and_expire(cache: &dyn Cache) {
    assert_eq!(cache.increment("n", SHORT).await.unwrap(), 1);
    assert_eq!(cache.increment("n", SHORT).await.unwrap(), 2);
    assert_eq!(cache.increment("n", SHORT).await.unwrap(), 3);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        cache.increment("n", SHORT).await.unwrap(),
        1,
        "the count expired"
    );
    // Amounts other than one: a byte count.
    assert_eq!(cache.add("bytes", 4_096, SHORT).await.unwrap(), 4_096);
    assert_eq!(cache.add("bytes", 100, SHORT).await.unwrap(), 4_196);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(cache.add("bytes", 7, SHORT).await.unwrap(), 7, "expired");
}

async fn deletes_are_idempotent(cache: &dyn Cache) {
    cache.set("d", b"x", Duration::from_secs(60)).await.unwrap();
    cache.delete("d").await.unwrap();
    cache.delete("d").await.unwrap();
    assert_eq!(cache.get("d").await.unwrap(), None);
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user("hi")],
        ..ChatRequest::default()
    }
}

fn target(name: &str, fake: &FakeProvider) -> Target {
    Target {
        provider: ProviderId::parse(name).unwrap(),
        model: ModelId::parse("m").unwrap(),
        endpoint: Endpoint {
            protocol: Protocol::OpenAi,
            base_url: fake.base_url.clone(),
            model: "m".into(),
            auth: Auth::Bearer("k".into()),
            max_tokens_field: "max_tokens",
        },
    }
}

/// One Lambda container's view: its own HTTP client and breaker, on a shared cache.
struct Client {
    providers: Providers,
    breaker: Breaker,
    retry: RetrySettings,
}

impl Client {
    fn new(cache: Arc<dyn Cache>, settings: BreakerSettings) -> Self {
        Self {
            providers: Providers::new(HttpSettings::default(), Guard::new(Reach::Anywhere)),
            breaker: Breaker::new(cache, settings),
            retry: RetrySettings {
                max_retries: 1,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(10),
                ..RetrySettings::default()
            },
        }
    }

    async fn outcomes(&self, chain: &[Target]) -> Vec<String> {
        let failover = Failover {
            providers: &self.providers,
            breaker: &self.breaker,
            settings: &self.retry,
        };
        let attempts = match failover.start(chain, &request()).await {
            Ok(started) => started.attempts,
            Err(exhausted) => exhausted.attempts,
        };
        attempts
            .iter()
            .map(|a| format!("{}:{}", a.provider, a.outcome))
            .collect()
    }
}

#[tokio::test]
async fn an_open_breaker_is_shared_by_every_client() {
    let prefix = unique_prefix();
    let shared = |prefix: &str| -> Arc<dyn Cache> {
        Arc::new(
            RedisCache::connect(
                &redis_url(),
                &RedisSettings {
                    key_prefix: prefix.to_owned(),
                    command_timeout: Duration::from_secs(2),
                    ..RedisSettings::default()
                },
            )
            .unwrap(),
        )
    };
    let settings = BreakerSettings {
        failure_threshold: 2,
        cooldown: Duration::from_secs(60),
    };
    let first = Client::new(shared(&prefix), settings.clone());
    let second = Client::new(shared(&prefix), settings);
    let down = FakeProvider::start(vec![], Reply::json(500, "{}")).await;
    let healthy = FakeProvider::start(vec![], Reply::sse(fixture("openai-text-usage.sse"))).await;
    let chain = [target("primary", &down), target("backup", &healthy)];

    assert_eq!(
        first.outcomes(&chain).await,
        vec!["primary:server", "primary:server", "backup:ok"]
    );
    assert_eq!(down.requests().len(), 2);
    // Another container skips the failing provider without calling it.
    assert_eq!(
        second.outcomes(&chain).await,
        vec!["primary:breaker_open", "backup:ok"]
    );
    assert_eq!(down.requests().len(), 2);
}

#[tokio::test]
async fn after_the_cooldown_one_probe_goes_through() {
    let breaker = Breaker::new(
        Arc::new(redis()),
        BreakerSettings {
            failure_threshold: 1,
            cooldown: SHORT,
        },
    );
    assert_eq!(breaker.check("p").await, BreakerState::Closed);
    breaker.record_failure("p").await;
    assert_eq!(breaker.check("p").await, BreakerState::Open);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(breaker.check("p").await, BreakerState::Probe);
    assert_eq!(
        breaker.check("p").await,
        BreakerState::Open,
        "only one probe at a time"
    );
    // A failed probe re-opens it; a successful one closes it.
    breaker.record_failure("p").await;
    assert_eq!(breaker.check("p").await, BreakerState::Open);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(breaker.check("p").await, BreakerState::Probe);
    breaker.record_success("p").await;
    assert_eq!(breaker.check("p").await, BreakerState::Closed);
}

#[tokio::test]
async fn without_redis_the_breaker_fails_open_and_requests_still_succeed() {
    let unreachable = RedisCache::connect(
        "redis://127.0.0.1:1",
        &RedisSettings {
            key_prefix: unique_prefix(),
            command_timeout: Duration::from_millis(200),
            ..RedisSettings::default()
        },
    )
    .unwrap();
    assert!(unreachable.get("x").await.is_err());
    let client = Client::new(Arc::new(unreachable), BreakerSettings::default());
    let healthy = FakeProvider::start(vec![], Reply::sse(fixture("openai-text-usage.sse"))).await;
    assert_eq!(
        client.outcomes(&[target("only", &healthy)]).await,
        vec!["only:ok"]
    );
    // The in-process cache needs no server at all.
    let local = Client::new(Arc::new(MemoryCache::new()), BreakerSettings::default());
    assert_eq!(
        local.outcomes(&[target("only", &healthy)]).await,
        vec!["only:ok"]
    );
}

#[tokio::test]
async fn after_a_failure_redis_is_skipped_until_its_cooldown_ends() {
    let proxy = TcpProxy::start(redis_addr()).await;
    let cache = RedisCache::connect(
        &format!("redis://{}", proxy.addr),
        &RedisSettings {
            key_prefix: unique_prefix(),
            command_timeout: Duration::from_millis(300),
            cooldown: Duration::from_millis(1500),
        },
    )
    .unwrap();
    cache.set("k", b"v", Duration::from_secs(60)).await.unwrap();
    proxy.blackhole();
    assert!(cache.get("k").await.is_err(), "the server does not answer");
    proxy.forward();
    // The server is back, but within the cool-down the cache does not ask it: every command
    // fails at once instead of waiting out a timeout.
    for _ in 0..20 {
        assert!(cache.get("k").await.is_err());
    }
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let mut answer = cache.get("k").await;
    for _ in 0..50 {
        if answer.is_ok() {
            break;
        }
        // The client reconnects on its own schedule; each failure restarts the cool-down.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        answer = cache.get("k").await;
    }
    assert_eq!(answer.unwrap(), Some(b"v".to_vec()));
}
