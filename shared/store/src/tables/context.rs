use crate::sql::Sql;

macro_rules! columns {
    () => {
        "id, user_id, conversation_id, message_id, strategy, tokens_before, tokens_after,
         range_start_id, range_end_id, messages_affected, summary, summary_model, created_at"
    };
}

const INSERT: Sql = Sql::same(concat!(
    "INSERT INTO context_optimizations (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
));

const LATEST_SUMMARY: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM context_optimizations
      WHERE conversation_id = $1 AND user_id = $2 AND strategy = 'summarization'
        AND message_id IS NULL
      ORDER BY created_at DESC, id DESC LIMIT 1"
));

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::context::ContextOptimization;
    use bestchat_domain::ids::{ConversationId, UserId};
    use bestchat_domain::ports::store::{ContextStore, StoreError};
    use bestchat_domain::usage::UsageLog;
    use tokio_postgres::Row;

    use crate::postgres::{PgStore, db_error};
    use crate::records::OptimizationRow;
    use crate::tables::usage::postgres as usage;

    fn from_row(row: &Row) -> Result<ContextOptimization, StoreError> {
        let int = |i: usize| row.try_get::<_, i32>(i).map(i64::from).map_err(db_error);
        OptimizationRow {
            id: row.try_get(0).map_err(db_error)?,
            user_id: row.try_get(1).map_err(db_error)?,
            conversation_id: row.try_get(2).map_err(db_error)?,
            message_id: row.try_get(3).map_err(db_error)?,
            strategy: row.try_get(4).map_err(db_error)?,
            tokens_before: int(5)?,
            tokens_after: int(6)?,
            range_start_id: row.try_get(7).map_err(db_error)?,
            range_end_id: row.try_get(8).map_err(db_error)?,
            messages_affected: int(9)?,
            summary: row.try_get(10).map_err(db_error)?,
            summary_model: row.try_get(11).map_err(db_error)?,
            created_at: row.try_get(12).map_err(db_error)?,
        }
        .into_domain()
    }

    #[async_trait]
    impl ContextStore for PgStore {
        async fn record_optimizations(
            &self,
            rows: &[ContextOptimization],
            usage: &[UsageLog],
        ) -> Result<(), StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx
                .prepare_cached(INSERT.postgres())
                .await
                .map_err(db_error)?;
            for o in rows {
                let r = OptimizationRow::from_domain(o);
                tx.execute(
                    &stmt,
                    &[
                        &r.id,
                        &r.user_id,
                        &r.conversation_id,
                        &r.message_id,
                        &r.strategy,
                        &usage::int(o.tokens_before)?,
                        &usage::int(o.tokens_after)?,
                        &r.range_start_id,
                        &r.range_end_id,
                        &usage::int(o.messages_affected)?,
                        &r.summary,
                        &r.summary_model,
                        &r.created_at,
                    ],
                )
                .await
                .map_err(db_error)?;
            }
            for u in usage {
                usage::append(&tx, u).await?;
            }
            tx.commit().await.map_err(db_error)
        }

        async fn latest_summary(
            &self,
            user: UserId,
            conversation: ConversationId,
        ) -> Result<Option<ContextOptimization>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(LATEST_SUMMARY.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_opt(&stmt, &[conversation.as_uuid(), user.as_uuid()])
                .await
                .map_err(db_error)?;
            row.as_ref().map(from_row).transpose()
        }
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::context::ContextOptimization;
    use bestchat_domain::ids::{ConversationId, UserId};
    use bestchat_domain::ports::store::{ContextStore, StoreError};
    use bestchat_domain::time::to_micros;
    use bestchat_domain::usage::UsageLog;
    use rusqlite::{OptionalExtension, Row, params};

    use crate::records::OptimizationRow;
    use crate::sqlite::{SqliteStore, db_error, opt_uuid_at, time_at, uuid_at};
    use crate::tables::usage::sqlite as usage;

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
            let rows: Vec<OptimizationRow> =
                rows.iter().map(OptimizationRow::from_domain).collect();
            let usage = usage.to_vec();
            self.call(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                {
                    let mut stmt = tx.prepare_cached(&INSERT.sqlite()).map_err(db_error)?;
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
                conn.prepare_cached(&LATEST_SUMMARY.sqlite())
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
}
