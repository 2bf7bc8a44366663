//! Redis adapter (fred). Keys carry a prefix so several deployments, or tests, can share one
//! server. Connecting does not block a cold start: commands wait for the connection up to the
//! command timeout, and a failure is reported as unavailability, which callers treat as a miss.
//!
//! After a failure, Redis is skipped for a cool-down: every command fails at once instead of
//! waiting out its timeout, so a turn streaming with Redis down runs at the speed of the
//! embedded store rather than a timeout per delta. The first command after the cool-down
//! probes the server again.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bestchat_domain::budget::{Ledger, Limit, Reservation, ReserveOutcome};
use bestchat_domain::ports::cache::{Cache, CacheError};
use bestchat_domain::ports::credentials::ConnectionPassword;
use bestchat_domain::rate::{Rate, RateDecision};
use fred::prelude::{
    Builder, Client, ClientLike, Config, Expiration, KeysInterface, LuaInterface, ReconnectPolicy,
    SetOptions,
};
use fred::types::config::{CredentialProvider, Server};

/// Adds one and sets the expiry only when the key is new, in one round trip.
pub(crate) const ADD: &str = "local n = redis.call('INCRBY', KEYS[1], ARGV[2]) \
    if n == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n";

/// [`bestchat_domain::rate::gcra`] in one script on one key; `now` is an argument (ElastiCache
/// Serverless refuses `TIME`). Answers `{allowed, remaining or retry-after ms, reset-after ms}`.
pub(crate) const TAKE: &str = "local now = tonumber(ARGV[1]) \
    local interval = tonumber(ARGV[2]) local capacity = tonumber(ARGV[3]) \
    local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1]) \
    if tat < now then tat = now end \
    local used = tat + interval - now \
    if used > capacity then return {0, used - capacity, tat - now} end \
    redis.call('SET', KEYS[1], tat + interval, 'PX', used) \
    return {1, math.floor((capacity - used) / interval), used}";

#[derive(Debug, Clone, serde::Deserialize)]
/// Read from the environment by the app: each field's variable is on it, its default in `Default`.
#[serde(default)]
pub struct RedisSettings {
    /// Prefix of every key (`REDIS_KEY_PREFIX`).
    #[serde(rename = "REDIS_KEY_PREFIX")]
    pub key_prefix: String,
    /// Longest a command, including waiting for a connection, may take.
    #[serde(
        rename = "REDIS_COMMAND_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub command_timeout: Duration,
    /// How long Redis is skipped after a command failed (`REDIS_COOLDOWN_MS`).
    #[serde(
        rename = "REDIS_COOLDOWN_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub cooldown: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            key_prefix: "bestchat:".into(),
            command_timeout: Duration::from_millis(500),
            cooldown: Duration::from_secs(5),
        }
    }
}

/// How often an open connection authenticates again with a fresh password.
pub const REAUTHENTICATE_EVERY: Duration = Duration::from_secs(60 * 60);

/// A user whose password is made per connection (an ElastiCache IAM user).
pub struct RedisLogin {
    pub user: String,
    pub password: Arc<dyn ConnectionPassword>,
}

impl std::fmt::Debug for RedisLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLogin")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CredentialProvider for RedisLogin {
    async fn fetch(
        &self,
        _server: Option<&Server>,
    ) -> Result<(Option<String>, Option<String>), fred::error::Error> {
        let password =
            self.password.password().await.map_err(|e| {
                fred::error::Error::new(fred::error::ErrorKind::Auth, e.to_string())
            })?;
        Ok((Some(self.user.clone()), Some(password)))
    }

    fn refresh_interval(&self) -> Option<Duration> {
        Some(REAUTHENTICATE_EVERY)
    }
}

#[derive(Clone)]
pub struct RedisCache {
    client: Client,
    prefix: String,
    cooldown: Duration,
    /// Until when commands are refused without asking Redis.
    skip_until: Arc<Mutex<Option<Instant>>>,
}

impl RedisCache {
    pub fn connect(url: &str, settings: &RedisSettings) -> Result<Self, CacheError> {
        Self::connect_with(url, settings, None)
    }

    /// As [`RedisCache::connect`], authenticating as `login`'s user with a fresh password for
    /// every connection and again every [`REAUTHENTICATE_EVERY`] (ElastiCache IAM tokens open a
    /// connection for 15 minutes and keep it for 12 hours).
    pub fn connect_with(
        url: &str,
        settings: &RedisSettings,
        login: Option<RedisLogin>,
    ) -> Result<Self, CacheError> {
        let mut config =
            Config::from_url(url).map_err(|e| CacheError(format!("REDIS_URL: {e}")))?;
        if let Some(login) = login {
            if !config.uses_tls() {
                return Err(CacheError(
                    "REDIS_URL must be rediss:// when the cache authenticates with IAM".into(),
                ));
            }
            config.credential_provider = Some(Arc::new(login));
        }
        let timeout = settings.command_timeout;
        let client = Builder::from_config(config)
            .with_performance_config(|p| p.default_command_timeout = timeout)
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.max_command_attempts = 1;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build()
            .map_err(error)?;
        client.connect();
        Ok(Self {
            client,
            prefix: settings.key_prefix.clone(),
            cooldown: settings.cooldown,
            skip_until: Arc::new(Mutex::new(None)),
        })
    }

    /// The underlying client, to build commands for [`RedisCache::run`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs one command through the breaker; fred's commands send nothing until polled, so a
    /// skipped command never reaches the server. Cancel-safe: dropping the future leaves the
    /// breaker as it was.
    pub async fn run<T>(
        &self,
        command: impl Future<Output = Result<T, fred::error::Error>>,
    ) -> Result<T, CacheError> {
        if self.skipping() {
            return Err(CacheError("Redis is skipped after a recent failure".into()));
        }
        match command.await {
            Ok(value) => {
                self.set_skip(None);
                Ok(value)
            }
            Err(e) => {
                tracing::warn!(error = %e, cooldown_ms = self.cooldown.as_millis(), "Redis failed; skipping it for a while");
                self.set_skip(Some(Instant::now() + self.cooldown));
                Err(error(e))
            }
        }
    }

    fn skipping(&self) -> bool {
        self.skip_until
            .lock()
            .ok()
            .and_then(|until| *until)
            .is_some_and(|until| Instant::now() < until)
    }

    fn set_skip(&self, until: Option<Instant>) {
        if let Ok(mut skip) = self.skip_until.lock() {
            *skip = until;
        }
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn error(e: fred::error::Error) -> CacheError {
    CacheError(e.to_string())
}

pub(crate) fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = self.key(key);
        self.run(self.client.get(key)).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let key = self.key(key);
        self.run(self.client.set::<(), _, _>(
            key,
            value,
            Some(Expiration::PX(millis(ttl))),
            None,
            false,
        ))
        .await
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let key = self.key(key);
        let reply: Option<String> = self
            .run(self.client.set(
                key,
                value,
                Some(Expiration::PX(millis(ttl))),
                Some(SetOptions::NX),
                false,
            ))
            .await?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let key = self.key(key);
        self.run(self.client.del::<i64, _>(key)).await?;
        Ok(())
    }

    async fn add(&self, key: &str, amount: i64, ttl: Duration) -> Result<i64, CacheError> {
        let key = self.key(key);
        self.run(self.client.eval(
            ADD,
            vec![key],
            vec![millis(ttl).to_string(), amount.to_string()],
        ))
        .await
    }

    async fn take(&self, key: &str, rate: &Rate, now_ms: i64) -> Result<RateDecision, CacheError> {
        let key = self.key(key);
        let (allowed, first, reset): (i64, i64, i64) = self
            .run(self.client.eval(
                TAKE,
                vec![key],
                vec![
                    now_ms.to_string(),
                    rate.interval_ms().to_string(),
                    rate.capacity_ms().to_string(),
                ],
            ))
            .await?;
        let ms = |n: i64| Duration::from_millis(u64::try_from(n).unwrap_or(0));
        Ok(RateDecision {
            allowed: allowed == 1,
            remaining: if allowed == 1 {
                u32::try_from(first).unwrap_or(u32::MAX)
            } else {
                0
            },
            retry_after: if allowed == 1 {
                Duration::ZERO
            } else {
                ms(first)
            },
            reset_after: ms(reset),
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
        crate::ledger::reserve(self, key, limits, hold, now_ms, ttl).await
    }

    async fn seed(
        &self,
        key: &str,
        scope: &str,
        spent_micros: i64,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        crate::ledger::seed(self, key, scope, spent_micros, ttl).await
    }

    async fn settle(
        &self,
        key: &str,
        id: &str,
        cost_micros: i64,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        crate::ledger::settle(self, key, id, cost_micros, ttl).await
    }

    async fn ledger(&self, key: &str) -> Result<Ledger, CacheError> {
        crate::ledger::read(self, key).await
    }
}
