//! SQLite adapter for running on a laptop: one file, WAL mode, foreign keys on, the same rules
//! as PostgreSQL. rusqlite is blocking, so every call runs on tokio's blocking pool.

mod migrate;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bestchat_domain::ports::store::StoreError;
use bestchat_domain::time::{Timestamp, from_micros};
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, Row};
use uuid::Uuid;

/// How long a writer waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(db_error)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Internal("sqlite connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("sqlite task failed: {e}")))?
    }
}

/// Whether the user has fewer than `max` rows by `count` (`?1` the user, `?2` a key left out).
/// Writes go through the one connection, in immediate transactions: the count holds until
/// the write.
pub(crate) fn has_room(
    tx: &rusqlite::Transaction<'_>,
    count: &str,
    user: &str,
    except: &str,
    max: usize,
) -> Result<bool, StoreError> {
    let n: i64 = tx
        .prepare_cached(count)
        .map_err(db_error)?
        .query_row(rusqlite::params![user, except], |row| row.get(0))
        .map_err(db_error)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX) < max)
}

pub(crate) fn db_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation)
            if e.to_string().contains("UNIQUE") || e.to_string().contains("PRIMARY KEY") =>
        {
            StoreError::Conflict(e.to_string())
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Internal(e.to_string()),
    }
}

pub(crate) fn conversion(
    idx: usize,
    ty: Type,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, ty, Box::new(e))
}

pub(crate) fn uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(idx)?;
    Uuid::parse_str(&text).map_err(|e| conversion(idx, Type::Text, e))
}

pub(crate) fn opt_uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Uuid>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|t| Uuid::parse_str(&t).map_err(|e| conversion(idx, Type::Text, e)))
        .transpose()
}

pub(crate) fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    let micros: i64 = row.get(idx)?;
    from_micros(micros).ok_or(rusqlite::Error::IntegralValueOutOfRange(idx, micros))
}

pub(crate) fn json_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| conversion(idx, Type::Text, e))
}

/// Page sizes are bounded by the domain; SQLite takes them as i64.
pub(crate) fn sql_limit(n: u32) -> i64 {
    i64::from(n)
}
