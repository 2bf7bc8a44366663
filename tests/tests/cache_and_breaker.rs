//! The cache port's contract on Redis and in-process, and the circuit breaker whose state lives
//! in it: shared between clients, half-open after the cooldown, failing open without Redis.

use bestchat_egress::{Guard, Reach};
use std::sync::Arc;
use std::time::Duration;

use bestchat_cache::{MemoryCache, RedisCache, RedisSettings};
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
        messages: vec![ChatMessage::User { text: "hi".into() }],
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
