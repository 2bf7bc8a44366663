//! In-process cache for the local gateway: one process, so a mutex-guarded map is the whole
//! shared state. Expired entries are dropped when read and swept when the map is full.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bestchat_domain::budget::{Ledger, Limit, Reservation, ReserveOutcome};
use bestchat_domain::ports::cache::{Cache, CacheError};
use bestchat_domain::rate::{Rate, RateDecision, gcra};

/// Entries kept before the oldest-expiring ones are evicted.
pub const MEMORY_CACHE_MAX_ENTRIES: usize = 100_000;

struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes the ledger at `key` under the lock, keeping it `ttl` longer when `f` says it
    /// changed it.
    fn with_ledger<T>(
        &self,
        key: &str,
        ttl: Duration,
        f: impl FnOnce(&mut Ledger) -> (T, bool),
    ) -> Result<T, CacheError> {
        self.with(|map, now| {
            let mut ledger = read_ledger(map, key, now);
            let (out, changed) = f(&mut ledger);
            if changed {
                let bytes = serde_json::to_vec(&ledger).unwrap_or_default();
                insert(map, key, bytes, now + ttl, now);
            }
            out
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T,
    ) -> Result<T, CacheError> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| CacheError("in-process cache lock poisoned".into()))?;
        Ok(f(&mut map, Instant::now()))
    }
}

fn live<'a>(map: &'a mut HashMap<String, Entry>, key: &str, now: Instant) -> Option<&'a mut Entry> {
    if map.get(key).is_some_and(|e| e.expires <= now) {
        map.remove(key);
    }
    map.get_mut(key)
}

fn read_ledger(map: &mut HashMap<String, Entry>, key: &str, now: Instant) -> Ledger {
    live(map, key, now)
        .and_then(|e| serde_json::from_slice(&e.value).ok())
        .unwrap_or_default()
}

fn insert(
    map: &mut HashMap<String, Entry>,
    key: &str,
    value: Vec<u8>,
    expires: Instant,
    now: Instant,
) {
    if map.len() >= MEMORY_CACHE_MAX_ENTRIES && !map.contains_key(key) {
        map.retain(|_, e| e.expires > now);
        if map.len() >= MEMORY_CACHE_MAX_ENTRIES
            && let Some(victim) = map
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&victim);
        }
    }
    map.insert(key.to_owned(), Entry { value, expires });
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.with(|map, now| live(map, key, now).map(|e| e.value.clone()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.with(|map, now| insert(map, key, value.to_vec(), now + ttl, now))
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        self.with(|map, now| {
            if live(map, key, now).is_some() {
                return false;
            }
            insert(map, key, value.to_vec(), now + ttl, now);
            true
        })
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.with(|map, _| {
            map.remove(key);
        })
    }

    async fn add(&self, key: &str, amount: i64, ttl: Duration) -> Result<i64, CacheError> {
        self.with(|map, now| {
            let current = live(map, key, now).map(|e| {
                let n = std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0);
                (n, e.expires)
            });
            let (next, expires) = match current {
                Some((n, expires)) => (n.saturating_add(amount), expires),
                None => (amount, now + ttl),
            };
            insert(map, key, next.to_string().into_bytes(), expires, now);
            next
        })
    }

    async fn take(&self, key: &str, rate: &Rate, now_ms: i64) -> Result<RateDecision, CacheError> {
        self.with(|map, now| {
            let tat = live(map, key, now)
                .and_then(|e| std::str::from_utf8(&e.value).ok()?.parse::<i64>().ok());
            let (decision, next) = gcra(rate, tat, now_ms);
            if let Some(next) = next {
                insert(
                    map,
                    key,
                    next.to_string().into_bytes(),
                    now + decision.reset_after,
                    now,
                );
            }
            decision
        })
    }

    async fn reserve(
        &self,
        key: &str,
        limits: &[Limit],
        hold: &Reservation,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<ReserveOutcome, CacheError> {
        self.with_ledger(key, ttl, |ledger| {
            let outcome = ledger.reserve(limits, hold, now_ms);
            (outcome, true)
        })
    }

    async fn seed(
        &self,
        key: &str,
        scope: &str,
        spent_micros: i64,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.with_ledger(key, ttl, |ledger| {
            ledger.seed(scope, spent_micros);
            ((), true)
        })
    }

    async fn settle(
        &self,
        key: &str,
        id: &str,
        cost_micros: i64,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        self.with_ledger(key, ttl, |ledger| {
            let settled = ledger.settle(id, cost_micros);
            (settled, settled)
        })
    }

    async fn ledger(&self, key: &str) -> Result<Ledger, CacheError> {
        self.with(|map, now| read_ledger(map, key, now))
    }
}
