//! Usage records, written inside the transaction of what they account for.

use bestchat_domain::ports::store::StoreError;
use bestchat_domain::time::to_micros;
use bestchat_domain::usage::UsageLog;
use rusqlite::{Transaction, params};

use super::db_error;

const INSERT: &str = "INSERT INTO usage_logs
    (id, user_id, conversation_id, message_id, provider, model, input_tokens, output_tokens,
     cached_tokens, cost_micros, latency_ms, ttft_ms, status, attempts, created_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

pub(super) fn append(tx: &Transaction<'_>, u: &UsageLog) -> Result<(), StoreError> {
    tx.prepare_cached(INSERT)
        .map_err(db_error)?
        .execute(params![
            u.id.to_string(),
            u.user_id.to_string(),
            u.conversation_id.to_string(),
            u.message_id.to_string(),
            u.provider.as_str(),
            u.model.as_str(),
            u.input_tokens,
            u.output_tokens,
            u.cached_tokens,
            u.cost_micros,
            u.latency_ms,
            u.ttft_ms,
            u.status.as_str(),
            u.attempts.to_string(),
            to_micros(u.created_at),
        ])
        .map_err(db_error)?;
    Ok(())
}
