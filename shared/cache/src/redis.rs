//! Redis adapter (fred). Keys carry a prefix so several deployments, or tests, can share one
//! server. Connecting does not block a cold start: commands wait for the connection up to the
//! command timeout, and a failure is reported as unavailability, which callers treat as a miss.

use std::time::Duration;

use async_trait::async_trait;
use bestchat_domain::ports::cache::{Cache, CacheError};
use fred::prelude::{
    Builder, Client, ClientLike, Config, Expiration, KeysInterface, LuaInterface, ReconnectPolicy,
    SetOptions,
};

/// Adds one and sets the expiry only when the key is new, in one round trip.
const INCREMENT: &str = "local n = redis.call('INCR', KEYS[1]) \
    if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n";

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// Prefix of every key (`REDIS_KEY_PREFIX`).
    pub key_prefix: String,
    /// Longest a command, including waiting for a connection, may take.
    pub command_timeout: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            key_prefix: "bestchat:".into(),
            command_timeout: Duration::from_millis(500),
        }
    }
}

#[derive(Clone)]
pub struct RedisCache {
    client: Client,
    prefix: String,
}

impl RedisCache {
    pub fn connect(url: &str, settings: &RedisSettings) -> Result<Self, CacheError> {
        let config = Config::from_url(url).map_err(|e| CacheError(format!("REDIS_URL: {e}")))?;
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
        })
    }

    /// The underlying client, for adapters that need more than key-value commands.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn error(e: fred::error::Error) -> CacheError {
    CacheError(e.to_string())
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.client.get(self.key(key)).await.map_err(error)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.client
            .set::<(), _, _>(
                self.key(key),
                value,
                Some(Expiration::PX(millis(ttl))),
                None,
                false,
            )
            .await
            .map_err(error)
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let reply: Option<String> = self
            .client
            .set(
                self.key(key),
                value,
                Some(Expiration::PX(millis(ttl))),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(error)?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.client
            .del::<i64, _>(self.key(key))
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        self.client
            .eval(INCREMENT, vec![self.key(key)], vec![millis(ttl)])
            .await
            .map_err(error)
    }
}
