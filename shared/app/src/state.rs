//! AppState: the adapters, chosen once per cold start from the configuration.

use std::sync::Arc;

use bestchat_domain::ports::store::{ConversationStore, MessageStore, StoreError, UserStore};
use bestchat_store::PgStore;
#[cfg(feature = "sqlite")]
use bestchat_store::SqliteStore;
use bestchat_store::migrations::MigrationReport;

use crate::config::{Config, ConfigError, StoreConfig};

/// Everything the storage ports offer; handlers take the narrow trait they need.
pub trait Store: UserStore + ConversationStore + MessageStore {}
impl<T: UserStore + ConversationStore + MessageStore> Store for T {}

#[derive(Clone)]
enum StoreAdapter {
    Postgres(PgStore),
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
}

pub struct AppState {
    pub config: Config,
    store: StoreAdapter,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("DATABASE_URL is required: this build has no embedded store")]
    NoEmbeddedStore,
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

impl AppState {
    pub fn from_env() -> Result<Arc<Self>, StartError> {
        Self::new(Config::from_env()?)
    }

    pub fn new(config: Config) -> Result<Arc<Self>, StartError> {
        let store = match &config.store {
            StoreConfig::Postgres { url } => {
                StoreAdapter::Postgres(PgStore::connect(url, &config.postgres)?)
            }
            #[cfg(not(feature = "sqlite"))]
            StoreConfig::Sqlite { .. } => return Err(StartError::NoEmbeddedStore),
            #[cfg(feature = "sqlite")]
            StoreConfig::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                StoreAdapter::Sqlite(SqliteStore::open(path)?)
            }
        };
        Ok(Arc::new(Self { config, store }))
    }

    pub fn store(&self) -> &dyn Store {
        match &self.store {
            StoreAdapter::Postgres(s) => s,
            #[cfg(feature = "sqlite")]
            StoreAdapter::Sqlite(s) => s,
        }
    }

    /// Brings the schema up to date (the `migrate` function, and the local gateway at start).
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        match &self.store {
            StoreAdapter::Postgres(s) => s.migrate().await,
            #[cfg(feature = "sqlite")]
            StoreAdapter::Sqlite(s) => s.migrate().await,
        }
    }

    /// A one-line description of the adapters, for the start banner.
    pub fn describe_store(&self) -> String {
        match &self.config.store {
            StoreConfig::Postgres { url } => format!("PostgreSQL at {}", redact_url(url)),
            StoreConfig::Sqlite { path } => format!("SQLite at {}", path.display()),
        }
    }
}

/// Drops the password from a connection URL before it is printed.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme_end + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db:5432/x"),
            "postgres://bob@db:5432/x"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
    }
}
