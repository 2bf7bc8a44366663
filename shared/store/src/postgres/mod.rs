//! PostgreSQL adapter: one deadpool pool per cold start, cached prepared statements, and SQL that
//! is always a literal with bound parameters.

mod connect;
mod migrate;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use bestchat_domain::ports::credentials::ConnectionPassword;
use bestchat_domain::ports::store::StoreError;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;

pub use tls::TlsRoots;

/// Pool limits; each is a named setting read by the app's configuration.
#[derive(Debug, Clone, serde::Deserialize)]
/// Read from the environment by the app: each field's variable is on it, its default in `Default`.
#[serde(default)]
pub struct PgSettings {
    /// Connections the pool may open (a Lambda container serves one request at a time).
    #[serde(rename = "DATABASE_POOL_SIZE")]
    pub pool_size: usize,
    /// How long a request waits for a free connection or a new one to open.
    #[serde(
        rename = "DATABASE_ACQUIRE_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub acquire_timeout: Duration,
    /// Longest a single statement may run before the server cancels it; zero sends no limit
    /// (behind RDS Proxy, which refuses startup options, the proxy's init query sets it).
    #[serde(
        rename = "DATABASE_STATEMENT_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub statement_timeout: Duration,
    /// What verifies the server's certificate under `sslmode=require`.
    #[serde(skip)]
    pub roots: TlsRoots,
    /// How long `migrate` waits for a lock (another runner's, a long transaction's) before
    /// it fails, instead of hanging a deploy.
    #[serde(
        rename = "BESTCHAT_MIGRATION_LOCK_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub migration_lock_timeout: Duration,
    /// Longest one migration statement may run before `migrate` fails.
    #[serde(
        rename = "BESTCHAT_MIGRATION_STATEMENT_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub migration_statement_timeout: Duration,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            pool_size: 8,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            roots: TlsRoots::Mozilla,
            migration_lock_timeout: Duration::from_secs(30),
            migration_statement_timeout: Duration::from_secs(240),
        }
    }
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// `migrate`'s lock and statement timeouts.
    migration: (Duration, Duration),
}

impl PgStore {
    /// Builds the pool; no connection is opened until the first query, so a cold start does not
    /// pay for one it may not use.
    pub fn connect(url: &str, settings: &PgSettings) -> Result<Self, StoreError> {
        Self::connect_with(url, settings, None)
    }

    /// The store of a function that has no database: its pool names a host that never resolves
    /// (`.invalid`, RFC 2606), so nothing is ever connected and every call is unavailable.
    pub fn absent() -> Result<Self, StoreError> {
        Self::connect(
            "postgres://absent@absent.invalid/absent",
            &PgSettings::default(),
        )
    }

    /// As [`PgStore::connect`], with a fresh password from `password` for every new connection
    /// (IAM database authentication) instead of the URL's.
    pub fn connect_with(
        url: &str,
        settings: &PgSettings,
        password: Option<Arc<dyn ConnectionPassword>>,
    ) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("invalid DATABASE_URL: {e}")))?;
        if !settings.statement_timeout.is_zero() {
            config.options(format!(
                "-c statement_timeout={}",
                settings.statement_timeout.as_millis()
            ));
        }
        config.connect_timeout(settings.acquire_timeout);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        // Without `sslmode=require` the connection is plain: "prefer" would try TLS against
        // servers whose certificates nobody configured us to trust.
        let manager = if config.get_ssl_mode() == SslMode::Require {
            let tls = tls::connector(&settings.roots)?;
            Manager::from_connect(
                config,
                connect::Connector::new(tls, password),
                manager_config,
            )
        } else {
            if password.is_some() {
                // A token is a credential: never send it in the clear.
                return Err(StoreError::Internal(
                    "IAM database authentication needs sslmode=require in DATABASE_URL".into(),
                ));
            }
            config.ssl_mode(SslMode::Disable);
            Manager::from_connect(config, connect::Connector::new(NoTls, None), manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.acquire_timeout))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the pool: {e}")))?;
        Ok(Self {
            pool,
            migration: (
                settings.migration_lock_timeout,
                settings.migration_statement_timeout,
            ),
        })
    }

    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => db_error(e),
            other => StoreError::Unavailable(other.to_string()),
        })
    }
}

/// Unique violations are conflicts; a lost or refused connection is unavailability; anything
/// else is an internal failure.
pub(crate) fn db_error(e: tokio_postgres::Error) -> StoreError {
    let detail = describe(&e);
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(detail),
        Some(code)
            if code.code().starts_with("08")
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::QUERY_CANCELED =>
        {
            StoreError::Unavailable(detail)
        }
        Some(_) => StoreError::Internal(detail),
        None => StoreError::Unavailable(detail),
    }
}

/// tokio-postgres prints only "db error"; the server's code and message are what help.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Whether the user has fewer than `max` rows by `count` (`$1` the user, `$2` a key left
/// out), after locking the user's row so that concurrent creations of theirs are counted one
/// after the other.
pub(crate) async fn has_room(
    tx: &deadpool_postgres::Transaction<'_>,
    user: &uuid::Uuid,
    count: &str,
    except: &str,
    max: usize,
) -> Result<bool, StoreError> {
    let lock = tx
        .prepare_cached("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .await
        .map_err(db_error)?;
    tx.execute(&lock, &[user]).await.map_err(db_error)?;
    let stmt = tx.prepare_cached(count).await.map_err(db_error)?;
    let n: i64 = tx
        .query_one(&stmt, &[user, &except])
        .await
        .map_err(db_error)?
        .get(0);
    Ok(usize::try_from(n).unwrap_or(usize::MAX) < max)
}

/// Page sizes are bounded by the domain, so this never saturates in practice.
pub(crate) fn sql_limit(n: u32) -> i64 {
    i64::from(n)
}
