//! The per-message frame buffer behind `resume`, on Redis Streams (entry id `0-<seq>`, capped
//! length, expiring); on a laptop, in files (`FileStreamBuffer`).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bestchat_domain::ids::MessageId;
use bestchat_domain::ports::cache::CacheError;
use bestchat_domain::ports::realtime::StreamBuffer;
use fred::prelude::{KeysInterface, LuaInterface, StreamsInterface};

use crate::RedisCache;

/// How long a message's frames stay available for `resume`, and how many are kept.
#[derive(Debug, Clone)]
pub struct BufferSettings {
    pub ttl: Duration,
    pub max_frames: u64,
}

impl Default for BufferSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60 * 60),
            max_frames: 20_000,
        }
    }
}

/// Appends and refreshes the expiry in one round trip; appending a seq already there is a no-op,
/// so a retried append cannot fail the turn.
pub(crate) const APPEND: &str = "local ok = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], ARGV[1], 'f', ARGV[2]) \
    redis.call('PEXPIRE', KEYS[1], ARGV[4]) \
    if type(ok) == 'table' and ok.err and not string.find(ok.err, 'equal or smaller') then \
      return redis.error_reply(ok.err) end \
    return 1";

pub struct RedisStreamBuffer {
    redis: RedisCache,
    settings: BufferSettings,
}

impl RedisStreamBuffer {
    pub fn new(redis: RedisCache, settings: BufferSettings) -> Self {
        Self { redis, settings }
    }

    fn key(&self, message: MessageId) -> String {
        self.redis.key(&format!("stream:{message}"))
    }
}

#[async_trait]
impl StreamBuffer for RedisStreamBuffer {
    async fn append(&self, message: MessageId, seq: u64, frame: &str) -> Result<(), CacheError> {
        let ttl = i64::try_from(self.settings.ttl.as_millis()).unwrap_or(i64::MAX);
        let key = self.key(message);
        let args = vec![
            format!("0-{seq}"),
            frame.to_owned(),
            self.settings.max_frames.to_string(),
            ttl.to_string(),
        ];
        self.redis
            .run(
                self.redis
                    .client()
                    .eval::<i64, _, _, _>(APPEND, vec![key], args),
            )
            .await?;
        Ok(())
    }

    async fn read_after(
        &self,
        message: MessageId,
        after_seq: u64,
    ) -> Result<Vec<(u64, String)>, CacheError> {
        // Nothing comes after the last possible seq.
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let key = self.key(message);
        let entries: Vec<(String, HashMap<String, String>)> = self
            .redis
            .run(
                self.redis
                    .client()
                    .xrange_values(key, format!("0-{first}"), "+", None),
            )
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|(id, mut fields)| {
                let seq = id.strip_prefix("0-")?.parse().ok()?;
                Some((seq, fields.remove("f")?))
            })
            .collect())
    }

    async fn clear(&self, message: MessageId) -> Result<(), CacheError> {
        let key = self.key(message);
        self.redis
            .run(self.redis.client().del::<i64, _>(key))
            .await?;
        Ok(())
    }
}
