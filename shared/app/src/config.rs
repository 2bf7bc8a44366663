//! Settings read once per cold start from the environment. Every limit is a named variable with
//! a default; a malformed value stops the start with a sentence naming the variable.

use std::path::PathBuf;
use std::time::Duration;

use bestchat_domain::model_ref::{ModelId, ModelRef, ProviderId};
use bestchat_store::PgSettings;

/// Where data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `DATABASE_URL=postgres://…`
    Postgres { url: String },
    /// The embedded default: a SQLite file under `BESTCHAT_DATA_DIR`.
    Sqlite { path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub data_dir: PathBuf,
    pub postgres: PgSettings,
    /// Largest request body a handler accepts (`BESTCHAT_MAX_REQUEST_BYTES`).
    pub max_request_bytes: usize,
    /// Model for conversations created without one.
    pub default_model: ModelRef,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

pub const DEFAULT_DATA_DIR: &str = ".bestchat";
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1024 * 1024;
pub const SQLITE_FILE: &str = "bestchat.db";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let data_dir = PathBuf::from(env.text("BESTCHAT_DATA_DIR", DEFAULT_DATA_DIR));
        let store = match env.optional("DATABASE_URL") {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StoreConfig::Postgres { url }
            }
            Some(_) => {
                return Err(ConfigError(
                    "DATABASE_URL must be a postgres:// URL (unset it to use the embedded SQLite store)"
                        .into(),
                ));
            }
            None => StoreConfig::Sqlite {
                path: data_dir.join(SQLITE_FILE),
            },
        };
        let defaults = PgSettings::default();
        let postgres = PgSettings {
            pool_size: env.number("DATABASE_POOL_SIZE", defaults.pool_size)?,
            acquire_timeout: env.millis("DATABASE_ACQUIRE_TIMEOUT_MS", defaults.acquire_timeout)?,
            statement_timeout: env
                .millis("DATABASE_STATEMENT_TIMEOUT_MS", defaults.statement_timeout)?,
            ca_file: env.optional("DATABASE_CA_FILE").map(PathBuf::from),
        };
        if postgres.pool_size == 0 {
            return Err(ConfigError("DATABASE_POOL_SIZE must be at least 1".into()));
        }
        let default_model = ModelRef {
            provider: ProviderId::parse(&env.text("BESTCHAT_DEFAULT_PROVIDER", "echo"))
                .map_err(|e| ConfigError(format!("BESTCHAT_DEFAULT_PROVIDER: {}", e.message)))?,
            model: ModelId::parse(&env.text("BESTCHAT_DEFAULT_MODEL", "echo-1"))
                .map_err(|e| ConfigError(format!("BESTCHAT_DEFAULT_MODEL: {}", e.message)))?,
        };
        Ok(Self {
            store,
            data_dir,
            postgres,
            max_request_bytes: env
                .number("BESTCHAT_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES)?,
            default_model,
        })
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn optional(&self, key: &str) -> Option<String> {
        (self.0)(key).filter(|v| !v.trim().is_empty())
    }

    fn text(&self, key: &str, default: &str) -> String {
        self.optional(key).unwrap_or_else(|| default.to_owned())
    }

    fn number<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        match self.optional(key) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| ConfigError(format!("{key} must be a whole number, got {raw:?}"))),
        }
    }

    fn millis(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        self.number(key, default_ms).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn embedded_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from(".bestchat/bestchat.db")
            }
        );
        assert_eq!(c.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
        assert_eq!(c.default_model.provider.as_str(), "echo");
    }

    #[test]
    fn postgres_and_overrides() {
        let c = config(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("DATABASE_POOL_SIZE", "2"),
            ("BESTCHAT_MAX_REQUEST_BYTES", "10"),
        ])
        .unwrap();
        assert!(matches!(c.store, StoreConfig::Postgres { .. }));
        assert_eq!(c.postgres.pool_size, 2);
        assert_eq!(c.max_request_bytes, 10);
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let e = config(&[("DATABASE_POOL_SIZE", "many")]).unwrap_err();
        assert!(e.to_string().contains("DATABASE_POOL_SIZE"));
        let e = config(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(e.to_string().contains("DATABASE_URL"));
        assert!(config(&[("DATABASE_POOL_SIZE", "0")]).is_err());
    }
}
