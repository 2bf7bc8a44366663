//! The SQLite migration runner: each file in an IMMEDIATE transaction, which takes the database's
//! write lock first, so two processes opening the same file apply each file once.

use bestchat_domain::ports::store::StoreError;
use bestchat_domain::time::{now, to_micros};
use rusqlite::{Connection, TransactionBehavior};

use super::{SqliteStore, db_error};
use crate::migrations::{MIGRATIONS, MigrationReport};

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

/// Foreign keys are off while migrations run (a table rebuilt by a migration must not cascade
/// its drop into the tables that refer to it) and checked before each commit instead.
fn apply_pending(conn: &mut Connection) -> Result<MigrationReport, StoreError> {
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(db_error)?;
    let result = apply_each(conn);
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .map_err(db_error)?;
    result
}

fn apply_each(conn: &mut Connection) -> Result<MigrationReport, StoreError> {
    conn.execute_batch(CREATE_LEDGER).map_err(db_error)?;
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
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
        tx.execute_batch(&migration.sqlite()).map_err(|e| {
            StoreError::Internal(format!("migration {} failed: {e}", migration.name))
        })?;
        let broken: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_foreign_key_check)",
                [],
                |row| row.get(0),
            )
            .map_err(db_error)?;
        if broken {
            return Err(StoreError::Internal(format!(
                "migration {} left rows that break a foreign key",
                migration.name
            )));
        }
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
