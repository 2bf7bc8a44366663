//! Usage records, written inside the transaction of what they account for.

use crate::sql::Sql;

const INSERT: Sql = Sql::same(
    "INSERT INTO usage_logs
    (id, user_id, conversation_id, message_id, provider, model, input_tokens, output_tokens,
     cached_tokens, cost_micros, latency_ms, ttft_ms, status, attempts, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
);

pub(crate) mod postgres {
    use super::*;
    use bestchat_domain::ports::store::StoreError;
    use bestchat_domain::usage::UsageLog;
    use deadpool_postgres::Transaction;

    use crate::postgres::db_error;

    pub(crate) fn int(n: u32) -> Result<i32, StoreError> {
        i32::try_from(n).map_err(|_| StoreError::Internal(format!("count {n} overflows")))
    }

    pub(crate) async fn append(tx: &Transaction<'_>, u: &UsageLog) -> Result<(), StoreError> {
        let stmt = tx
            .prepare_cached(INSERT.postgres())
            .await
            .map_err(db_error)?;
        tx.execute(
            &stmt,
            &[
                &u.id,
                u.user_id.as_uuid(),
                u.conversation_id.as_uuid(),
                u.message_id.as_uuid(),
                &u.provider.as_str(),
                &u.model.as_str(),
                &int(u.input_tokens)?,
                &int(u.output_tokens)?,
                &int(u.cached_tokens)?,
                &u.cost_micros,
                &int(u.latency_ms)?,
                &u.ttft_ms.map(int).transpose()?,
                &u.status.as_str(),
                &u.attempts,
                &u.created_at,
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
    use bestchat_domain::ports::store::StoreError;
    use bestchat_domain::time::to_micros;
    use bestchat_domain::usage::UsageLog;
    use rusqlite::{Transaction, params};

    use crate::sqlite::db_error;

    pub(crate) fn append(tx: &Transaction<'_>, u: &UsageLog) -> Result<(), StoreError> {
        tx.prepare_cached(&INSERT.sqlite())
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
}
