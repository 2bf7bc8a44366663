//! The cache port: shared, expiring key-value state (Redis in production, in-process on a
//! laptop). It is an optimisation and a coordination aid; callers treat its failures as misses.

use std::time::Duration;

use async_trait::async_trait;

use crate::budget::{Ledger, Limit, Reservation, ReserveOutcome};
use crate::rate::{Rate, RateDecision};

#[derive(Debug, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(pub String);

#[async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;

    /// Sets the key only if it is absent; `true` when this call set it.
    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError>;

    async fn delete(&self, key: &str) -> Result<(), CacheError>;

    /// Adds `amount` and returns the new value; a new key starts at `amount` and expires after
    /// `ttl`.
    async fn add(&self, key: &str, amount: i64, ttl: Duration) -> Result<i64, CacheError>;

    /// Takes one request of `rate` for `key` at `now_ms` (milliseconds since the epoch, from
    /// the caller: ElastiCache Serverless refuses `TIME` in scripts), atomically: GCRA, see
    /// [`crate::rate::gcra`].
    async fn take(&self, key: &str, rate: &Rate, now_ms: i64) -> Result<RateDecision, CacheError>;

    /// Reserves `hold` in the ledger at `key` within every limit, atomically (see
    /// [`Ledger::reserve`]); `ttl` is how long an untouched ledger is kept.
    async fn reserve(
        &self,
        key: &str,
        limits: &[Limit],
        hold: &Reservation,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<ReserveOutcome, CacheError>;

    /// Records a scope's spending in the ledger unless it has one ([`Ledger::seed`]).
    async fn seed(
        &self,
        key: &str,
        scope: &str,
        spent_micros: i64,
        ttl: Duration,
    ) -> Result<(), CacheError>;

    /// Ends a hold with its real cost ([`Ledger::settle`]); `false` when the hold was gone.
    async fn settle(
        &self,
        key: &str,
        id: &str,
        cost_micros: i64,
        ttl: Duration,
    ) -> Result<bool, CacheError>;

    /// The ledger at `key` as it stands (empty when there is none).
    async fn ledger(&self, key: &str) -> Result<Ledger, CacheError>;

    /// Adds one (see [`Cache::add`]).
    async fn increment(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        self.add(key, 1, ttl).await
    }
}
