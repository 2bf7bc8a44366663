//! The SQLite migration runner: each file in an IMMEDIATE transaction, which takes the database's
//! write lock first, so two processes opening the same file apply each file once.

use bestchat_domain::ports::store::StoreError;
use bestchat_domain::time::{now, to_micros};
use rusqlite::{Connection, TransactionBehavior};

use super::{SqliteStore, db_error};
use crate::migrations::{MigrationReport, SQLITE};

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  INTEGER NOT NULL
)";

impl SqliteStore {
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        self.call(apply_pending).await
    }
}

fn apply_pending(conn: &mut Connection) -> Result<MigrationReport, StoreError> {
    conn.execute_batch(CREATE_LEDGER).map_err(db_error)?;
    let mut applied = Vec::new();
    for migration in SQLITE {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let done: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [migration.version],
                |row| row.get(0),
            )
            .map_err(db_error)?;
        if done {
            continue;
        }
        tx.execute_batch(migration.sql).map_err(|e| {
            StoreError::Internal(format!("migration {} failed: {e}", migration.name))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![migration.version, migration.name, to_micros(now())],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        tracing::info!(migration = migration.name, "applied migration");
        applied.push(migration.version);
    }
    Ok(MigrationReport { applied })
}
