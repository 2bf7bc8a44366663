//! Audit entries, written inside the transaction of the change they record.

use bestchat_domain::ports::store::{AuditEntry, StoreError};
use bestchat_domain::time::to_micros;
use rusqlite::{Transaction, params};

use super::db_error;

const INSERT: &str = "INSERT INTO audit_log
    (id, user_id, action, target_type, target_id, details, created_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

pub(super) fn append(tx: &Transaction<'_>, e: &AuditEntry) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(INSERT).map_err(db_error)?;
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
