//! Retries and fallbacks, only before the first token. A target is retried with exponential
//! backoff and full jitter on connect errors, first-byte timeouts, 429 (honouring
//! `Retry-After`), 5xx and failures inside the stream before any content; then the next target
//! of the chain is tried. Once content has arrived there is no silent switch: the caller gets
//! the stream, and a later failure ends the answer.

use std::time::{Duration, Instant};

use bestchat_domain::model_ref::{ModelId, ProviderId};
use bestchat_domain::text::replace_nul;
use serde::Serialize;

use crate::breaker::{Breaker, BreakerState};
use crate::client::{Endpoint, EventStream, Providers};
use crate::types::{ChatRequest, ErrorKind, ProviderError};

#[derive(Debug, Clone, serde::Deserialize)]
/// Read from the environment by the app: each field's variable is on it, its default in `Default`.
#[serde(default)]
pub struct RetrySettings {
    /// Retries of one target after its first attempt.
    #[serde(rename = "BESTCHAT_PROVIDER_MAX_RETRIES")]
    pub max_retries: u32,
    /// Backoff before the first retry; it doubles each time, up to `max_delay`.
    #[serde(
        rename = "BESTCHAT_RETRY_BASE_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub base_delay: Duration,
    #[serde(
        rename = "BESTCHAT_RETRY_MAX_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub max_delay: Duration,
    /// A `Retry-After` longer than this moves on to the next target instead of waiting.
    #[serde(
        rename = "BESTCHAT_RETRY_AFTER_MAX_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub max_retry_after: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(20),
        }
    }
}

/// One model to try.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: ProviderId,
    pub model: ModelId,
    pub endpoint: Endpoint,
}

impl Target {
    /// Breaker state is per provider endpoint: two users' custom providers with the same id
    /// but different servers do not share it.
    fn breaker_key(&self) -> String {
        format!("{}|{}", self.provider, self.endpoint.base_url)
    }
}

/// What happened on one attempt, for the log and the usage record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    /// `ok`, `breaker_open`, or the error kind.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub elapsed_ms: u64,
}

pub struct Started {
    pub stream: EventStream,
    /// Index in the chain of the target that answered.
    pub target: usize,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug)]
pub struct Exhausted {
    pub attempts: Vec<Attempt>,
    /// The last failure.
    pub error: ProviderError,
}

pub struct Failover<'a> {
    pub providers: &'a Providers,
    pub breaker: &'a Breaker,
    pub settings: &'a RetrySettings,
}

impl Failover<'_> {
    pub async fn start(
        &self,
        chain: &[Target],
        request: &ChatRequest,
    ) -> Result<Started, Exhausted> {
        let mut attempts = Vec::new();
        let mut last_error = ProviderError::new(ErrorKind::InvalidRequest, "no provider to try");
        for (index, target) in chain.iter().enumerate() {
            let key = target.breaker_key();
            if self.breaker.check(&key).await == BreakerState::Open {
                tracing::info!(provider = %target.provider, "skipped: circuit breaker open");
                attempts.push(attempt(target, "breaker_open", None, Instant::now()));
                last_error = ProviderError::new(
                    ErrorKind::Overloaded,
                    format!(
                        "{} is failing; its circuit breaker is open",
                        target.provider
                    ),
                );
                continue;
            }
            for retry in 0..=self.settings.max_retries {
                let started = Instant::now();
                let outcome = self.try_once(target, request).await;
                match outcome {
                    Ok(stream) => {
                        self.breaker.record_success(&key).await;
                        attempts.push(attempt(target, "ok", None, started));
                        tracing::info!(provider = %target.provider, model = %target.model, retry, "provider answered");
                        return Ok(Started {
                            stream,
                            target: index,
                            attempts,
                        });
                    }
                    Err(error) => {
                        tracing::warn!(
                            provider = %target.provider, model = %target.model, retry,
                            kind = error.kind.as_str(), status = ?error.status, "provider attempt failed: {}", error.message
                        );
                        attempts.push(attempt(target, error.kind.as_str(), Some(&error), started));
                        if error.kind.counts_against_provider() {
                            self.breaker.record_failure(&key).await;
                        }
                        let delay = self.delay(retry, &error);
                        last_error = error;
                        match delay {
                            Some(delay) if retry < self.settings.max_retries => {
                                tokio::time::sleep(delay).await;
                            }
                            _ => break,
                        }
                        if self.breaker.check(&key).await == BreakerState::Open {
                            break;
                        }
                    }
                }
            }
        }
        Err(Exhausted {
            attempts,
            error: last_error,
        })
    }

    async fn try_once(
        &self,
        target: &Target,
        request: &ChatRequest,
    ) -> Result<EventStream, ProviderError> {
        let mut stream = self.providers.open(&target.endpoint, request).await?;
        stream.first_content().await?;
        Ok(stream)
    }

    /// How long to wait before retrying, or `None` when this failure is not worth a retry.
    fn delay(&self, retry: u32, error: &ProviderError) -> Option<Duration> {
        if !error.kind.retryable() {
            return None;
        }
        if let Some(wait) = error.retry_after {
            return (wait <= self.settings.max_retry_after).then_some(wait);
        }
        let cap = self
            .settings
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.settings.max_delay);
        Some(jitter(cap))
    }
}

/// Uniform in `[0, cap]` ("full jitter"), so retrying clients spread out.
fn jitter(cap: Duration) -> Duration {
    let fraction = getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64);
    cap.mul_f64(fraction)
}

fn attempt(
    target: &Target,
    outcome: &str,
    error: Option<&ProviderError>,
    started: Instant,
) -> Attempt {
    Attempt {
        provider: target.provider.to_string(),
        model: target.model.to_string(),
        outcome: outcome.to_owned(),
        status: error.and_then(|e| e.status),
        message: error.map(|e| replace_nul(&e.message).into_owned()),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_cap() {
        for _ in 0..1000 {
            assert!(jitter(Duration::from_millis(100)) <= Duration::from_millis(100));
        }
    }
}
