//! The migration runner: each file in its own transaction, under an advisory lock so two cold
//! starts racing on an empty database apply each file exactly once.

use std::collections::HashSet;

use bestchat_domain::ports::store::StoreError;

use super::{PgStore, db_error};
use crate::migrations::{MIGRATIONS, MigrationReport};

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

/// The rights of the application's user: the data, and nothing that changes the schema, the
/// migration ledger or the audit trail.
const APP_USER_GRANTS: &str = "
    GRANT USAGE ON SCHEMA public TO {user};
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {user};
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {user};
    REVOKE ALL ON schema_migrations FROM {user};
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {user};";

impl PgStore {
    /// Creates the application's user if missing, sets its password (the one RDS Proxy
    /// presents for it) and grants it the data only. Run after every migration, so new tables
    /// are granted too.
    pub async fn grant_app_user(&self, name: &str, password: &str) -> Result<(), StoreError> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Internal(format!(
                "{name:?} is not a database user name (lower case, digits, _)"
            )));
        }
        let client = self.client().await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .map_err(db_error)?
            .is_some();
        // Sent as its SCRAM verifier, never in clear text: a statement that fails is written
        // to the database's log (exported to CloudWatch), and the verifier is all the server
        // keeps anyway. The verifier holds no character that needs quoting.
        let literal = format!(
            "'{}'",
            postgres_protocol::password::scram_sha_256(password.as_bytes())
        );
        let verb = if exists { "ALTER" } else { "CREATE" };
        client
            .batch_execute(&format!(
                "{verb} ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {literal}; {}",
                APP_USER_GRANTS.replace("{user}", name)
            ))
            .await
            .map_err(db_error)
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
    for migration in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(migration.postgres()).await.map_err(|e| {
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
