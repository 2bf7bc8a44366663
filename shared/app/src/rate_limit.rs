//! Per-user rate limits, one per class of route or action (`RateClass`, declared in the route
//! table), checked before the handler runs. GCRA in the cache (one Lua script in Redis, a map
//! entry in process), so a check is one round trip and exact under any concurrency.
//!
//! When the cache fails, reads and writes pass (they cost the store, which has its own limits,
//! and refusing every request while Redis restarts would take the product down with it), turns
//! are refused: a turn spends money on the operator's keys, and an unlimited burst of them is
//! what this limit exists to prevent.

use std::time::Duration;

use bestchat_domain::ids::UserId;
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::rate::{Rate, RateDecision};
use bestchat_domain::time::{now, to_micros};
use bestchat_domain::{DomainError, ErrorCode};
use serde::Deserialize;

/// A user's requests are limited per class, so reading a long history does not use up the
/// budget of starting turns (the classes of uploads and admin routes come with those routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// Reads: lists, a conversation, the document.
    Read,
    /// Changes that cost the store a write and no model call.
    Write,
    /// Starts a model turn (a send or a retry): the expensive class.
    Turn,
    /// The admin routes.
    Admin,
}

impl RateClass {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Turn => "turn",
            Self::Admin => "admin",
        }
    }
}

/// Every limit's window; the settings name each class's quota within it.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Requests one user may make per minute, per class; 0 turns a class's limit off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    #[serde(rename = "BESTCHAT_RATE_READ_PER_MINUTE")]
    pub read: u32,
    #[serde(rename = "BESTCHAT_RATE_WRITE_PER_MINUTE")]
    pub write: u32,
    #[serde(rename = "BESTCHAT_RATE_TURN_PER_MINUTE")]
    pub turn: u32,
    #[serde(rename = "BESTCHAT_RATE_ADMIN_PER_MINUTE")]
    pub admin: u32,
    /// New WebSocket connections one user may open per minute.
    #[serde(rename = "BESTCHAT_RATE_CONNECT_PER_MINUTE")]
    pub connect: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            read: 600,
            write: 120,
            turn: 20,
            admin: 120,
            connect: 30,
        }
    }
}

/// What a limit is counted against: a route class, or opening a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Class(RateClass),
    Connect,
}

impl Limited {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Class(class) => class.as_str(),
            Self::Connect => "connect",
        }
    }

    /// Whether a request passes when the limiter cannot be asked (see the module's note).
    const fn passes_without_cache(self) -> bool {
        !matches!(self, Self::Class(RateClass::Turn))
    }
}

impl RateLimits {
    fn quota(&self, limited: Limited) -> u32 {
        match limited {
            Limited::Class(RateClass::Read) => self.read,
            Limited::Class(RateClass::Write) => self.write,
            Limited::Class(RateClass::Turn) => self.turn,
            Limited::Class(RateClass::Admin) => self.admin,
            Limited::Connect => self.connect,
        }
    }

    pub fn rate(&self, limited: Limited) -> Option<Rate> {
        let quota = self.quota(limited);
        (quota > 0).then_some(Rate {
            quota,
            window: WINDOW,
        })
    }
}

/// The answer of one check: the limit and what it decided, for the response's headers.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    pub limited: Limited,
    pub rate: Rate,
    pub decision: RateDecision,
}

/// Takes one request of `user` against `limited`: `Ok(None)` when that limit is off or the
/// cache could not be asked and the class passes anyway; `Err` when refused — `rate_limited`
/// with when to come back, or `unavailable` for a turn the limiter could not count.
pub async fn admit(
    cache: &dyn Cache,
    limits: &RateLimits,
    user: UserId,
    limited: Limited,
) -> Result<Option<Admitted>, Refused> {
    let Some(rate) = limits.rate(limited) else {
        return Ok(None);
    };
    let key = format!("rate:{}:{user}", limited.name());
    let now_ms = to_micros(now()) / 1000;
    match cache.take(&key, &rate, now_ms).await {
        Ok(decision) if decision.allowed => Ok(Some(Admitted {
            limited,
            rate,
            decision,
        })),
        Ok(decision) => Err(Refused::Limited(Admitted {
            limited,
            rate,
            decision,
        })),
        Err(e) if limited.passes_without_cache() => {
            tracing::warn!(error = %e, limit = limited.name(), "rate limiter unavailable; letting the request through");
            Ok(None)
        }
        Err(e) => {
            tracing::error!(error = %e, limit = limited.name(), "rate limiter unavailable; refusing the turn");
            Err(Refused::Uncounted)
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Refused {
    Limited(Admitted),
    Uncounted,
}

impl Refused {
    pub fn error(&self) -> DomainError {
        match self {
            Self::Limited(a) => DomainError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many {} requests; retry in {} s",
                    a.limited.name(),
                    whole_seconds(a.decision.retry_after)
                ),
            ),
            Self::Uncounted => DomainError::new(
                ErrorCode::Unavailable,
                "turns cannot be counted right now; retry shortly",
            ),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Limited(a) => Some(a.decision.retry_after),
            Self::Uncounted => None,
        }
    }
}

/// Seconds as `Retry-After` and `RateLimit`'s `t` state them: rounded up, so a client that waits
/// them is not refused again.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX)
}

impl Admitted {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
    pub fn headers(&self) -> [(&'static str, String); 2] {
        let name = self.limited.name();
        [
            (
                "RateLimit-Policy",
                format!(
                    "\"{name}\";q={};w={}",
                    self.rate.quota,
                    self.rate.window.as_secs()
                ),
            ),
            (
                "RateLimit",
                format!(
                    "\"{name}\";r={};t={}",
                    self.decision.remaining,
                    whole_seconds(self.decision.reset_after)
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use bestchat_cache::MemoryCache;
    use bestchat_domain::ports::cache::CacheError;

    use super::*;

    fn limits(turn: u32) -> RateLimits {
        RateLimits {
            turn,
            ..RateLimits::default()
        }
    }

    #[tokio::test]
    async fn a_burst_past_the_quota_is_refused_with_when_to_retry() {
        let cache = MemoryCache::new();
        let user = UserId::generate();
        let turns = Limited::Class(RateClass::Turn);
        for left in [2, 1, 0] {
            let admitted = admit(&cache, &limits(3), user, turns)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(admitted.decision.remaining, left);
        }
        let refused = admit(&cache, &limits(3), user, turns).await.unwrap_err();
        let error = refused.error();
        assert_eq!(error.code, ErrorCode::RateLimited);
        assert_eq!(refused.retry_after().map(whole_seconds), Some(20));
        let Refused::Limited(a) = refused else {
            panic!("refused by the limit")
        };
        assert_eq!(
            a.headers(),
            [
                ("RateLimit-Policy", "\"turn\";q=3;w=60".to_owned()),
                ("RateLimit", "\"turn\";r=0;t=60".to_owned()),
            ]
        );
        // Another user and another class are counted apart.
        assert!(
            admit(&cache, &limits(3), UserId::generate(), turns)
                .await
                .is_ok()
        );
        let reads = Limited::Class(RateClass::Read);
        assert!(
            admit(&cache, &limits(3), user, reads)
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_class_set_to_zero_is_not_limited() {
        let (cache, off) = (MemoryCache::new(), limits(0));
        let user = UserId::generate();
        for _ in 0..10 {
            let admitted = admit(&cache, &off, user, Limited::Class(RateClass::Turn)).await;
            assert!(admitted.unwrap().is_none());
        }
    }

    use bestchat_domain::budget::{Ledger, Limit, Reservation, ReserveOutcome};

    struct Down;

    #[async_trait]
    impl Cache for Down {
        async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, CacheError> {
            Err(CacheError("down".into()))
        }
        async fn set(&self, _: &str, _: &[u8], _: Duration) -> Result<(), CacheError> {
            Err(CacheError("down".into()))
        }
        async fn set_if_absent(&self, _: &str, _: &[u8], _: Duration) -> Result<bool, CacheError> {
            Err(CacheError("down".into()))
        }
        async fn delete(&self, _: &str) -> Result<(), CacheError> {
            Err(CacheError("down".into()))
        }
        async fn add(&self, _: &str, _: i64, _: Duration) -> Result<i64, CacheError> {
            Err(CacheError("down".into()))
        }
        async fn take(&self, _: &str, _: &Rate, _: i64) -> Result<RateDecision, CacheError> {
            Err(CacheError("down".into()))
        }
        async fn reserve(
            &self,
            _: &str,
            _: &[Limit],
            _: &Reservation,
            _: i64,
            _: Duration,
        ) -> Result<ReserveOutcome, CacheError> {
            Err(CacheError("down".into()))
        }
        async fn seed(&self, _: &str, _: &str, _: i64, _: Duration) -> Result<(), CacheError> {
            Err(CacheError("down".into()))
        }
        async fn settle(&self, _: &str, _: &str, _: i64, _: Duration) -> Result<bool, CacheError> {
            Err(CacheError("down".into()))
        }
        async fn ledger(&self, _: &str) -> Result<Ledger, CacheError> {
            Err(CacheError("down".into()))
        }
    }

    #[tokio::test]
    async fn without_the_cache_reads_and_writes_pass_and_turns_are_refused() {
        let down: Arc<dyn Cache> = Arc::new(Down);
        let user = UserId::generate();
        for class in [RateClass::Read, RateClass::Write] {
            let r = admit(down.as_ref(), &limits(3), user, Limited::Class(class)).await;
            assert!(matches!(r, Ok(None)), "{class:?}");
        }
        assert!(matches!(
            admit(down.as_ref(), &limits(3), user, Limited::Connect).await,
            Ok(None)
        ));
        let turn = admit(
            down.as_ref(),
            &limits(3),
            user,
            Limited::Class(RateClass::Turn),
        )
        .await;
        let refused = turn.unwrap_err();
        assert_eq!(refused.error().code, ErrorCode::Unavailable);
    }
}
