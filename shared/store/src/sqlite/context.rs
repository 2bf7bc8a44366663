use async_trait::async_trait;
use bestchat_domain::context::ContextOptimization;
use bestchat_domain::ids::{ConversationId, UserId};
use bestchat_domain::ports::store::{ContextStore, StoreError};
use bestchat_domain::time::to_micros;
use bestchat_domain::usage::UsageLog;
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, db_error, opt_uuid_at, time_at, usage, uuid_at};
use crate::records::OptimizationRow;

macro_rules! columns {
    () => {
        "id, user_id, conversation_id, message_id, strategy, tokens_before, tokens_after,
         range_start_id, range_end_id, messages_affected, summary, summary_model, created_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO context_optimizations (",
    columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
);
const LATEST_SUMMARY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM context_optimizations
      WHERE conversation_id = ?1 AND user_id = ?2 AND strategy = 'summarization'
        AND message_id IS NULL
      ORDER BY created_at DESC, id DESC LIMIT 1"
);

fn read_row(row: &Row<'_>) -> rusqlite::Result<OptimizationRow> {
    Ok(OptimizationRow {
        id: uuid_at(row, 0)?,
        user_id: uuid_at(row, 1)?,
        conversation_id: uuid_at(row, 2)?,
        message_id: opt_uuid_at(row, 3)?,
        strategy: row.get(4)?,
        tokens_before: row.get(5)?,
        tokens_after: row.get(6)?,
        range_start_id: opt_uuid_at(row, 7)?,
        range_end_id: opt_uuid_at(row, 8)?,
        messages_affected: row.get(9)?,
        summary: row.get(10)?,
        summary_model: row.get(11)?,
        created_at: time_at(row, 12)?,
    })
}

#[async_trait]
impl ContextStore for SqliteStore {
    async fn record_optimizations(
        &self,
        rows: &[ContextOptimization],
        usage: &[UsageLog],
    ) -> Result<(), StoreError> {
        let rows: Vec<OptimizationRow> = rows.iter().map(OptimizationRow::from_domain).collect();
        let usage = usage.to_vec();
        self.call(move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            {
                let mut stmt = tx.prepare_cached(INSERT).map_err(db_error)?;
                for r in rows {
                    stmt.execute(params![
                        r.id.to_string(),
                        r.user_id.to_string(),
                        r.conversation_id.to_string(),
                        r.message_id.map(|m| m.to_string()),
                        r.strategy,
                        r.tokens_before,
                        r.tokens_after,
                        r.range_start_id.map(|m| m.to_string()),
                        r.range_end_id.map(|m| m.to_string()),
                        r.messages_affected,
                        r.summary,
                        r.summary_model,
                        to_micros(r.created_at),
                    ])
                    .map_err(db_error)?;
                }
            }
            for u in &usage {
                usage::append(&tx, u)?;
            }
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn latest_summary(
        &self,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<Option<ContextOptimization>, StoreError> {
        self.call(move |conn| {
            conn.prepare_cached(LATEST_SUMMARY)
                .map_err(db_error)?
                .query_row(
                    params![conversation.to_string(), user.to_string()],
                    read_row,
                )
                .optional()
                .map_err(db_error)?
                .map(OptimizationRow::into_domain)
                .transpose()
        })
        .await
    }
}
