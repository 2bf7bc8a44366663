//! A circuit breaker per provider endpoint whose state lives in the cache port, so every Lambda
//! container sees the same state. It opens after N consecutive failures, lets one probe through
//! after a cooldown (half-open), closes on a success and re-opens on a failed probe. With the
//! cache unreachable it stays closed: failing open keeps requests flowing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bestchat_domain::ports::cache::Cache;

#[derive(Debug, Clone, serde::Deserialize)]
/// Read from the environment by the app: each field's variable is on it, its default in `Default`.
#[serde(default)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    #[serde(rename = "BESTCHAT_BREAKER_THRESHOLD")]
    pub failure_threshold: u32,
    /// How long it stays open before one probe is let through.
    #[serde(
        rename = "BESTCHAT_BREAKER_COOLDOWN_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    /// The cooldown passed: this caller may probe.
    Probe,
}

#[derive(Clone)]
pub struct Breaker {
    cache: Arc<dyn Cache>,
    settings: BreakerSettings,
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

impl Breaker {
    pub fn new(cache: Arc<dyn Cache>, settings: BreakerSettings) -> Self {
        Self { cache, settings }
    }

    fn keys(endpoint: &str) -> (String, String, String) {
        (
            format!("breaker:{endpoint}:failures"),
            format!("breaker:{endpoint}:opened"),
            format!("breaker:{endpoint}:probe"),
        )
    }

    /// Memory of the breaker: long enough to outlive a cooldown several times over.
    fn retention(&self) -> Duration {
        self.settings.cooldown * 10
    }

    /// Whether a call to `endpoint` may go ahead now.
    pub async fn check(&self, endpoint: &str) -> BreakerState {
        let (_, opened_key, probe_key) = Self::keys(endpoint);
        let opened = match self.cache.get(&opened_key).await {
            Ok(Some(raw)) => String::from_utf8_lossy(&raw).parse::<u64>().ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "breaker state unavailable; treating as closed");
                None
            }
        };
        let Some(opened) = opened else {
            return BreakerState::Closed;
        };
        let cooldown = u64::try_from(self.settings.cooldown.as_millis()).unwrap_or(u64::MAX);
        if now_millis() < opened.saturating_add(cooldown) {
            return BreakerState::Open;
        }
        match self
            .cache
            .set_if_absent(&probe_key, b"1", self.settings.cooldown)
            .await
        {
            Ok(true) | Err(_) => BreakerState::Probe,
            Ok(false) => BreakerState::Open,
        }
    }

    pub async fn record_success(&self, endpoint: &str) {
        let (failures, opened, probe) = Self::keys(endpoint);
        for key in [failures, opened, probe] {
            let _ = self.cache.delete(&key).await;
        }
    }

    pub async fn record_failure(&self, endpoint: &str) {
        let (failures_key, opened_key, probe_key) = Self::keys(endpoint);
        let failures = match self.cache.increment(&failures_key, self.retention()).await {
            Ok(n) => n,
            Err(e) => return tracing::warn!(error = %e, "breaker state unavailable"),
        };
        if failures >= i64::from(self.settings.failure_threshold) {
            let stamp = now_millis().to_string();
            let _ = self
                .cache
                .set(&opened_key, stamp.as_bytes(), self.retention())
                .await;
            let _ = self.cache.delete(&probe_key).await;
            tracing::warn!(endpoint, failures, "circuit breaker open");
        }
    }
}
