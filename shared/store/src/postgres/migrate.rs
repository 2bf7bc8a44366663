//! The migration runner: each file in its own transaction, under an advisory lock so two cold
//! starts racing on an empty database apply each file exactly once.

use std::collections::HashSet;

use bestchat_domain::ports::store::StoreError;

use super::{PgStore, db_error};
use crate::migrations::{MigrationReport, POSTGRES};

const LOCK: &str = "SELECT pg_advisory_lock(7300544823519146349)";
const UNLOCK: &str = "SELECT pg_advisory_unlock(7300544823519146349)";
const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)";

impl PgStore {
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let mut client = self.client().await?;
        // Waiting for another runner and applying a file may take longer than the pool's
        // statement timeout allows a request, but never longer than the deploy waits: a lock
        // nobody releases or a statement that never ends fails the migration, in time for the
        // deploy to say so.
        let (lock, statement) = self.migration;
        client
            .batch_execute(&format!(
                "SET lock_timeout = {}; SET statement_timeout = {}",
                lock.as_millis(),
                statement.as_millis()
            ))
            .await
            .map_err(db_error)?;
        client.execute(LOCK, &[]).await.map_err(db_error)?;
        let result = apply_pending(&mut client).await;
        // The lock is per session; release it even when a file failed so the pooled
        // connection does not keep it.
        let unlocked = client.execute(UNLOCK, &[]).await.map_err(db_error);
        let reset = client
            .batch_execute("RESET lock_timeout; RESET statement_timeout")
            .await
            .map_err(db_error);
        let report = result?;
        unlocked?;
        reset?;
        Ok(report)
    }
}

async fn apply_pending(
    client: &mut deadpool_postgres::Client,
) -> Result<MigrationReport, StoreError> {
    client
        .batch_execute(CREATE_LEDGER)
        .await
        .map_err(db_error)?;
    let done: HashSet<i32> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(db_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for migration in POSTGRES.iter().filter(|m| !done.contains(&m.version)) {
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(migration.sql).await.map_err(|e| {
            StoreError::Internal(format!("migration {} failed: {e}", migration.name))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        tracing::info!(migration = migration.name, "applied migration");
        applied.push(migration.version);
    }
    Ok(MigrationReport { applied })
}
