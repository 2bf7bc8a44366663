//! Audit entries, written inside the transaction of the change they record, or alone for what
//! changes nothing (an admin reading other users' data).

use crate::sql::Sql;

const INSERT: Sql = Sql::same(
    "INSERT INTO audit_log
    (id, user_id, action, target_type, target_id, details, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)",
);

pub(crate) mod postgres {
    use super::*;
    use bestchat_domain::ports::store::{AuditEntry, StoreError};
    use deadpool_postgres::Transaction;

    use crate::postgres::{PgStore, db_error};

    #[async_trait::async_trait]
    impl bestchat_domain::ports::store::AuditStore for PgStore {
        async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            append(&tx, entry).await?;
            tx.commit().await.map_err(db_error)
        }
    }

    pub(crate) async fn append(tx: &Transaction<'_>, e: &AuditEntry) -> Result<(), StoreError> {
        let stmt = tx
            .prepare_cached(INSERT.postgres())
            .await
            .map_err(db_error)?;
        tx.execute(
            &stmt,
            &[
                &e.id,
                e.user_id.as_uuid(),
                &e.action,
                &e.target_type,
                &e.target_id,
                &crate::records::clean_json(&e.details),
                &e.created_at,
            ],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use bestchat_domain::ports::store::{AuditEntry, StoreError};
    use bestchat_domain::time::to_micros;
    use rusqlite::{Transaction, params};

    use crate::sqlite::{SqliteStore, db_error};

    #[async_trait::async_trait]
    impl bestchat_domain::ports::store::AuditStore for SqliteStore {
        async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
            let entry = entry.clone();
            self.call(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                append(&tx, &entry)?;
                tx.commit().map_err(db_error)
            })
            .await
        }
    }

    pub(crate) fn append(tx: &Transaction<'_>, e: &AuditEntry) -> Result<(), StoreError> {
        let mut stmt = tx.prepare_cached(&INSERT.sqlite()).map_err(db_error)?;
        stmt.execute(params![
            e.id.to_string(),
            e.user_id.to_string(),
            e.action,
            e.target_type,
            e.target_id,
            crate::records::clean_json(&e.details).to_string(),
            to_micros(e.created_at),
        ])
        .map_err(db_error)?;
        Ok(())
    }
}
