//! Audit entries, written inside the transaction of the change they record.

use bestchat_domain::ports::store::{AuditEntry, StoreError};
use deadpool_postgres::Transaction;

use super::db_error;

const INSERT: &str = "INSERT INTO audit_log
    (id, user_id, action, target_type, target_id, details, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(super) async fn append(tx: &Transaction<'_>, e: &AuditEntry) -> Result<(), StoreError> {
    let stmt = tx.prepare_cached(INSERT).await.map_err(db_error)?;
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
