use crate::sql::Sql;

macro_rules! columns {
    () => {
        "id, conversation_id, user_id, role, content, status, client_message_id, reply_to,
         provider, model, tool_calls, tool_call_id, token_count, input_tokens, output_tokens,
         cached_tokens, cost_micros, finish_reason, error_code, error_message, created_at,
         updated_at, attachments"
    };
}

pub(crate) const GET_BY_ID: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE id = $1 AND user_id = $2"
));

pub(crate) const GET_BY_REPLY: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE reply_to = $1 AND user_id = $2"
));

pub(crate) const STALLED: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM messages s WHERE s.status IN ('complete', 'awaiting_approval')
        AND s.lease_expires_at < $1
        AND NOT EXISTS (SELECT 1 FROM messages n WHERE n.reply_to = s.id)
        AND NOT EXISTS (SELECT 1 FROM tool_executions e WHERE e.message_id = s.id
            AND e.status IN ('pending', 'approved', 'running'))
      ORDER BY s.lease_expires_at, s.id LIMIT $2"
));

pub(crate) const LAPSED: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE status IN ('pending', 'streaming') AND lease_expires_at < $1
      ORDER BY lease_expires_at, id LIMIT $3 OFFSET $2"
));

const INSERT: Sql = Sql::same(concat!(
    "INSERT INTO messages (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
               $19, $20, $21, $22, $23)"
));

const LIST_FIRST: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE conversation_id = $1 AND user_id = $2
      ORDER BY created_at, id LIMIT $3"
));

const BEFORE: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE conversation_id = $1 AND user_id = $2 AND (created_at, id) < ($3, $4)
      ORDER BY created_at DESC, id DESC LIMIT $5"
));

const LIST_AFTER: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE conversation_id = $1 AND user_id = $2 AND (created_at, id) > ($3, $4)
      ORDER BY created_at, id LIMIT $5"
));

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::{ConversationId, UserId};
    use bestchat_domain::message::Message;
    use bestchat_domain::page::{CursorKey, Page, PageRequest};
    use bestchat_domain::ports::store::{MessageStore, StoreError};
    use deadpool_postgres::GenericClient;
    use tokio_postgres::Row;

    use crate::postgres::{PgStore, db_error, sql_limit};
    use crate::records::MessageRow;

    /// Answers whose turn died: unfinished, and nobody renewed the lease, for the janitor.
    /// Tool steps whose continuation is overdue, with every call ended and no next step.
    /// PostgreSQL keeps counts as `integer`; the shared row keeps them as `i64`.
    fn int(row: &Row, idx: usize) -> Result<Option<i64>, StoreError> {
        let v: Option<i32> = row.try_get(idx).map_err(db_error)?;
        Ok(v.map(i64::from))
    }

    pub(crate) fn from_row(row: &Row) -> Result<Message, StoreError> {
        MessageRow {
            id: row.try_get(0).map_err(db_error)?,
            conversation_id: row.try_get(1).map_err(db_error)?,
            user_id: row.try_get(2).map_err(db_error)?,
            role: row.try_get(3).map_err(db_error)?,
            content: row.try_get(4).map_err(db_error)?,
            status: row.try_get(5).map_err(db_error)?,
            client_message_id: row.try_get(6).map_err(db_error)?,
            reply_to: row.try_get(7).map_err(db_error)?,
            provider: row.try_get(8).map_err(db_error)?,
            model: row.try_get(9).map_err(db_error)?,
            tool_calls: row.try_get(10).map_err(db_error)?,
            tool_call_id: row.try_get(11).map_err(db_error)?,
            token_count: int(row, 12)?.unwrap_or(0),
            input_tokens: int(row, 13)?,
            output_tokens: int(row, 14)?,
            cached_tokens: int(row, 15)?,
            cost_micros: row.try_get(16).map_err(db_error)?,
            finish_reason: row.try_get(17).map_err(db_error)?,
            error_code: row.try_get(18).map_err(db_error)?,
            error_message: row.try_get(19).map_err(db_error)?,
            created_at: row.try_get(20).map_err(db_error)?,
            updated_at: row.try_get(21).map_err(db_error)?,
            attachments: row.try_get(22).map_err(db_error)?,
        }
        .into_domain()
    }

    /// Inserts one message on a client or inside a transaction.
    pub(crate) async fn insert(
        client: &impl GenericClient,
        message: &Message,
    ) -> Result<(), StoreError> {
        let r = MessageRow::from_domain(message)?;
        let stmt = client
            .prepare_cached(INSERT.postgres())
            .await
            .map_err(db_error)?;
        client
            .execute(
                &stmt,
                &[
                    &r.id,
                    &r.conversation_id,
                    &r.user_id,
                    &r.role,
                    &r.content,
                    &r.status,
                    &r.client_message_id,
                    &r.reply_to,
                    &r.provider,
                    &r.model,
                    &r.tool_calls,
                    &r.tool_call_id,
                    &to_int(Some(r.token_count))?,
                    &to_int(r.input_tokens)?,
                    &to_int(r.output_tokens)?,
                    &to_int(r.cached_tokens)?,
                    &r.cost_micros,
                    &r.finish_reason,
                    &r.error_code,
                    &r.error_message,
                    &r.created_at,
                    &r.updated_at,
                    &r.attachments,
                ],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub(crate) fn to_int(v: Option<i64>) -> Result<Option<i32>, StoreError> {
        v.map(|n| {
            i32::try_from(n).map_err(|_| StoreError::Internal(format!("count {n} overflows")))
        })
        .transpose()
    }

    #[async_trait]
    impl MessageStore for PgStore {
        async fn insert_message(&self, message: &Message) -> Result<(), StoreError> {
            let client = self.client().await?;
            insert(&client, message).await
        }

        async fn list_messages(
            &self,
            user: UserId,
            conversation: ConversationId,
            page: &PageRequest,
        ) -> Result<Page<Message>, StoreError> {
            let client = self.client().await?;
            let limit = sql_limit(page.fetch_limit());
            let rows = match &page.after {
                None => {
                    let stmt = client
                        .prepare_cached(LIST_FIRST.postgres())
                        .await
                        .map_err(db_error)?;
                    client
                        .query(&stmt, &[conversation.as_uuid(), user.as_uuid(), &limit])
                        .await
                }
                Some(after) => {
                    let stmt = client
                        .prepare_cached(LIST_AFTER.postgres())
                        .await
                        .map_err(db_error)?;
                    client
                        .query(
                            &stmt,
                            &[
                                conversation.as_uuid(),
                                user.as_uuid(),
                                &after.at,
                                &after.id,
                                &limit,
                            ],
                        )
                        .await
                }
            }
            .map_err(db_error)?;
            let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_rows(items, page, Message::cursor_key))
        }

        async fn messages_before(
            &self,
            user: UserId,
            conversation: ConversationId,
            before: CursorKey,
            limit: u32,
        ) -> Result<Vec<Message>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(BEFORE.postgres())
                .await
                .map_err(db_error)?;
            let rows = client
                .query(
                    &stmt,
                    &[
                        conversation.as_uuid(),
                        user.as_uuid(),
                        &before.at,
                        &before.id,
                        &sql_limit(limit),
                    ],
                )
                .await
                .map_err(db_error)?;
            rows.iter().map(from_row).collect()
        }
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::{ConversationId, UserId};
    use bestchat_domain::message::Message;
    use bestchat_domain::page::{CursorKey, Page, PageRequest};
    use bestchat_domain::ports::store::{MessageStore, StoreError};
    use bestchat_domain::time::to_micros;
    use rusqlite::{Connection, Row, params};

    use crate::records::MessageRow;
    use crate::sqlite::{SqliteStore, db_error, json_at, opt_uuid_at, sql_limit, time_at, uuid_at};

    /// Answers whose turn died: unfinished, and nobody renewed the lease, for the janitor.
    /// Tool steps whose continuation is overdue, with every call ended and no next step.
    pub(crate) fn read_row(row: &Row<'_>) -> rusqlite::Result<MessageRow> {
        Ok(MessageRow {
            id: uuid_at(row, 0)?,
            conversation_id: uuid_at(row, 1)?,
            user_id: uuid_at(row, 2)?,
            role: row.get(3)?,
            content: row.get(4)?,
            status: row.get(5)?,
            client_message_id: row.get(6)?,
            reply_to: opt_uuid_at(row, 7)?,
            provider: row.get(8)?,
            model: row.get(9)?,
            tool_calls: json_at(row, 10)?,
            tool_call_id: row.get(11)?,
            token_count: row.get(12)?,
            input_tokens: row.get(13)?,
            output_tokens: row.get(14)?,
            cached_tokens: row.get(15)?,
            cost_micros: row.get(16)?,
            finish_reason: row.get(17)?,
            error_code: row.get(18)?,
            error_message: row.get(19)?,
            created_at: time_at(row, 20)?,
            updated_at: time_at(row, 21)?,
            attachments: json_at(row, 22)?,
        })
    }

    /// Inserts one message, inside whatever transaction `conn` is in.
    pub(crate) fn insert(conn: &Connection, r: &MessageRow) -> Result<(), StoreError> {
        let mut stmt = conn.prepare_cached(&INSERT.sqlite()).map_err(db_error)?;
        stmt.execute(params![
            r.id.to_string(),
            r.conversation_id.to_string(),
            r.user_id.to_string(),
            r.role,
            r.content,
            r.status,
            r.client_message_id,
            r.reply_to.map(|id| id.to_string()),
            r.provider,
            r.model,
            r.tool_calls.to_string(),
            r.tool_call_id,
            r.token_count,
            r.input_tokens,
            r.output_tokens,
            r.cached_tokens,
            r.cost_micros,
            r.finish_reason,
            r.error_code,
            r.error_message,
            to_micros(r.created_at),
            to_micros(r.updated_at),
            r.attachments.to_string(),
        ])
        .map_err(db_error)?;
        Ok(())
    }

    #[async_trait]
    impl MessageStore for SqliteStore {
        async fn insert_message(&self, message: &Message) -> Result<(), StoreError> {
            let r = MessageRow::from_domain(message)?;
            self.call(move |conn| insert(conn, &r)).await
        }

        async fn list_messages(
            &self,
            user: UserId,
            conversation: ConversationId,
            page: &PageRequest,
        ) -> Result<Page<Message>, StoreError> {
            let page = *page;
            self.call(move |conn| {
                let limit = sql_limit(page.fetch_limit());
                let rows = match page.after {
                    None => {
                        let mut stmt = conn
                            .prepare_cached(&LIST_FIRST.sqlite())
                            .map_err(db_error)?;
                        stmt.query_map(
                            params![conversation.to_string(), user.to_string(), limit],
                            read_row,
                        )
                        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    }
                    Some(after) => {
                        let mut stmt = conn
                            .prepare_cached(&LIST_AFTER.sqlite())
                            .map_err(db_error)?;
                        stmt.query_map(
                            params![
                                conversation.to_string(),
                                user.to_string(),
                                to_micros(after.at),
                                after.id.to_string(),
                                limit
                            ],
                            read_row,
                        )
                        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    }
                }
                .map_err(db_error)?;
                let items = rows
                    .into_iter()
                    .map(MessageRow::into_domain)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_rows(items, &page, Message::cursor_key))
            })
            .await
        }

        async fn messages_before(
            &self,
            user: UserId,
            conversation: ConversationId,
            before: CursorKey,
            limit: u32,
        ) -> Result<Vec<Message>, StoreError> {
            self.call(move |conn| {
                let rows = conn
                    .prepare_cached(&BEFORE.sqlite())
                    .map_err(db_error)?
                    .query_map(
                        params![
                            conversation.to_string(),
                            user.to_string(),
                            to_micros(before.at),
                            before.id.to_string(),
                            sql_limit(limit)
                        ],
                        read_row,
                    )
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    .map_err(db_error)?;
                rows.into_iter().map(MessageRow::into_domain).collect()
            })
            .await
        }
    }
}
