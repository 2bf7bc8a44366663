use crate::sql::Sql;

/// The final write; `$17` is what the finisher's condition compares with.
macro_rules! finish {
    ($condition:literal) => {
        concat!(
            "UPDATE messages SET content = $3, status = $4, provider = $5, model = $6,
                tool_calls = $7, token_count = $8, input_tokens = $9, output_tokens = $10,
                cached_tokens = $11, cost_micros = $12, finish_reason = $13, error_code = $14,
                error_message = $15, updated_at = $16, lease_owner = NULL, lease_expires_at = NULL
            WHERE id = $1 AND user_id = $2 AND ",
            $condition
        )
    };
}

/// Inserts the user message unless its `client_message_id` was seen in this conversation.
const INSERT_USER: Sql = Sql::same(
    "INSERT INTO messages
    (id, conversation_id, user_id, role, content, status, client_message_id, token_count,
     created_at, updated_at, attachments)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (conversation_id, client_message_id) WHERE client_message_id IS NOT NULL
    DO NOTHING",
);

const BY_CLIENT_ID: Sql = Sql::same(
    "SELECT id FROM messages
    WHERE conversation_id = $1 AND user_id = $2 AND client_message_id = $3",
);

/// A turn of the conversation still going: an answer not ended, a step whose loop has not yet
/// gone on (its `continue_by` is set until the next step exists), or a tool call not ended.
const OPEN_TURN: Sql = Sql::same(
    "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id = $1
        AND (status IN ('pending', 'streaming', 'awaiting_approval')
             OR (status = 'complete' AND lease_expires_at IS NOT NULL)))
    OR EXISTS (SELECT 1 FROM tool_executions WHERE conversation_id = $1
        AND status IN ('pending', 'approved', 'running'))",
);

/// A failed answer, when it is the last message and no call is open, made pending again. The
/// model asked for again is the conversation's (the failed attempt recorded the last fallback
/// it reached).
const RETRY: Sql = Sql::same(
    "UPDATE messages SET status = 'pending', content = '', tool_calls = '[]',
        provider = (SELECT c.provider FROM conversations c WHERE c.id = messages.conversation_id),
        model = (SELECT c.model FROM conversations c WHERE c.id = messages.conversation_id),
        token_count = 0, input_tokens = NULL, output_tokens = NULL, cached_tokens = NULL,
        cost_micros = NULL, finish_reason = NULL, error_code = NULL, error_message = NULL,
        updated_at = $3, lease_owner = NULL, lease_expires_at = $4
    WHERE id = $1 AND user_id = $2 AND role = 'assistant' AND status = 'error' AND content = ''
        AND NOT EXISTS (SELECT 1 FROM messages later
            WHERE later.conversation_id = messages.conversation_id
                AND later.created_at > messages.created_at)
        AND NOT EXISTS (SELECT 1 FROM tool_executions e
            WHERE e.conversation_id = messages.conversation_id
                AND e.status IN ('pending', 'approved', 'running'))",
);

const CONTINUE_BY: Sql = Sql::same("UPDATE messages SET lease_expires_at = $2 WHERE id = $1");

const TOUCH_CONVERSATION: Sql =
    Sql::same("UPDATE conversations SET updated_at = $3 WHERE id = $1 AND user_id = $2");

/// The pending answer must be claimed before this, or the janitor ends it.
const CLAIM_BY: Sql = Sql::same("UPDATE messages SET lease_expires_at = $2 WHERE id = $1");

const CLAIM: Sql = Sql::same(
    "UPDATE messages
    SET status = 'streaming', lease_owner = $3, lease_expires_at = $5, updated_at = $4
    WHERE id = $1 AND user_id = $2 AND status = 'pending'",
);

const RENEW: Sql = Sql::same(
    "UPDATE messages SET lease_expires_at = $3
    WHERE id = $1 AND lease_owner = $2 AND status = 'streaming'",
);

const FINISH_LEASED: Sql = Sql::same(finish!("status = 'streaming' AND lease_owner = $17"));

const FINISH_LAPSED: Sql = Sql::same(finish!(
    "status IN ('pending', 'streaming') AND lease_expires_at < $17"
));

const FINISH_UNCLAIMED: Sql = Sql::same(finish!("status = 'pending' AND $17::boolean"));

pub(crate) mod postgres {
    use super::*;
    /// Taken first: the turn starts of one conversation wait for each other, so the open-turn check
    /// below sees every earlier start.
    const LOCK_CONVERSATION: &str =
        "SELECT 1 FROM conversations WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE";
    const CONVERSATION_OF: &str =
        "SELECT conversation_id FROM messages WHERE id = $1 AND user_id = $2";
    use async_trait::async_trait;
    use bestchat_domain::ids::{MessageId, UserId};
    use bestchat_domain::message::Message;
    use bestchat_domain::ports::store::{
        Finisher, LeaseId, StepRecords, StoreError, TurnStart, TurnStore,
    };
    use bestchat_domain::time::Timestamp;
    use bestchat_domain::usage::UsageLog;
    use deadpool_postgres::GenericClient;
    use tokio_postgres::types::ToSql;

    use crate::postgres::{PgStore, db_error, sql_limit};
    use crate::records::MessageRow;
    use crate::tables::audit::postgres as audit;
    use crate::tables::executions::postgres as executions;
    use crate::tables::messages::postgres::{from_row, insert, to_int};
    use crate::tables::messages::{GET_BY_ID, GET_BY_REPLY, LAPSED, STALLED};
    use crate::tables::usage::postgres as usage;

    async fn one(
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Message>, StoreError> {
        let stmt = client.prepare_cached(sql).await.map_err(db_error)?;
        let row = client.query_opt(&stmt, params).await.map_err(db_error)?;
        row.as_ref().map(from_row).transpose()
    }

    fn missing(what: &str) -> StoreError {
        StoreError::Internal(format!("the earlier turn's {what} message is missing"))
    }

    /// Writes an answer's final fields if `by` may; the rows it changed.
    async fn write_final(
        client: &impl GenericClient,
        r: &MessageRow,
        by: Finisher,
    ) -> Result<u64, StoreError> {
        let (sql, lease, lapsed_before) = match by {
            Finisher::Lease(lease) => (FINISH_LEASED.postgres(), Some(lease.0), None),
            Finisher::Lapsed(at) => (FINISH_LAPSED.postgres(), None, Some(at)),
            Finisher::Unclaimed => (FINISH_UNCLAIMED.postgres(), None, None),
        };
        let condition: &(dyn ToSql + Sync) = match (&lease, &lapsed_before) {
            (Some(lease), _) => lease,
            (_, Some(at)) => at,
            _ => &true,
        };
        let stmt = client.prepare_cached(sql).await.map_err(db_error)?;
        client
            .execute(
                &stmt,
                &[
                    &r.id,
                    &r.user_id,
                    &r.content,
                    &r.status,
                    &r.provider,
                    &r.model,
                    &r.tool_calls,
                    &to_int(Some(r.token_count))?,
                    &to_int(r.input_tokens)?,
                    &to_int(r.output_tokens)?,
                    &to_int(r.cached_tokens)?,
                    &r.cost_micros,
                    &r.finish_reason,
                    &r.error_code,
                    &r.error_message,
                    &r.updated_at,
                    condition,
                ],
            )
            .await
            .map_err(db_error)
    }

    #[async_trait]
    impl TurnStore for PgStore {
        async fn start_turn(
            &self,
            user: &Message,
            assistant: &Message,
            claim_by: Timestamp,
        ) -> Result<TurnStart, StoreError> {
            let u = MessageRow::from_domain(user)?;
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx
                .prepare_cached(LOCK_CONVERSATION)
                .await
                .map_err(db_error)?;
            tx.query_opt(&stmt, &[&u.conversation_id, &u.user_id])
                .await
                .map_err(db_error)?;
            let stmt = tx
                .prepare_cached(INSERT_USER.postgres())
                .await
                .map_err(db_error)?;
            let inserted = tx
                .execute(
                    &stmt,
                    &[
                        &u.id,
                        &u.conversation_id,
                        &u.user_id,
                        &u.role,
                        &u.content,
                        &u.status,
                        &u.client_message_id,
                        &to_int(Some(u.token_count))?,
                        &u.created_at,
                        &u.updated_at,
                        &u.attachments,
                    ],
                )
                .await
                .map_err(db_error)?;
            if inserted == 0 {
                let stmt = tx
                    .prepare_cached(BY_CLIENT_ID.postgres())
                    .await
                    .map_err(db_error)?;
                let id: uuid::Uuid = tx
                    .query_one(
                        &stmt,
                        &[&u.conversation_id, &u.user_id, &u.client_message_id],
                    )
                    .await
                    .map_err(db_error)?
                    .get(0);
                let original = one(&tx, GET_BY_ID.postgres(), &[&id, &u.user_id])
                    .await?
                    .ok_or_else(|| missing("user"))?;
                let answer = one(&tx, GET_BY_REPLY.postgres(), &[&id, &u.user_id])
                    .await?
                    .ok_or_else(|| missing("assistant"))?;
                tx.commit().await.map_err(db_error)?;
                return Ok(TurnStart::Existing {
                    user: original,
                    assistant: answer,
                });
            }
            let stmt = tx
                .prepare_cached(OPEN_TURN.postgres())
                .await
                .map_err(db_error)?;
            let open: bool = tx
                .query_one(&stmt, &[&u.conversation_id])
                .await
                .map_err(db_error)?
                .get(0);
            if open {
                // Dropping the transaction rolls the user message back.
                return Ok(TurnStart::Busy);
            }
            insert(&tx, assistant).await?;
            let stmt = tx
                .prepare_cached(CLAIM_BY.postgres())
                .await
                .map_err(db_error)?;
            tx.execute(&stmt, &[assistant.id.as_uuid(), &claim_by])
                .await
                .map_err(db_error)?;
            let stmt = tx
                .prepare_cached(TOUCH_CONVERSATION.postgres())
                .await
                .map_err(db_error)?;
            tx.execute(&stmt, &[&u.conversation_id, &u.user_id, &u.created_at])
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(TurnStart::Started {
                user: user.clone(),
                assistant: assistant.clone(),
            })
        }

        async fn retry_turn(
            &self,
            user: UserId,
            message: MessageId,
            at: Timestamp,
            claim_by: Timestamp,
        ) -> Result<Option<Message>, StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx.prepare_cached(CONVERSATION_OF).await.map_err(db_error)?;
            let Some(row) = tx
                .query_opt(&stmt, &[message.as_uuid(), user.as_uuid()])
                .await
                .map_err(db_error)?
            else {
                return Ok(None);
            };
            let conversation: uuid::Uuid = row.get(0);
            // Serialized with turn starts, like they are with each other.
            let stmt = tx
                .prepare_cached(LOCK_CONVERSATION)
                .await
                .map_err(db_error)?;
            tx.query_opt(&stmt, &[&conversation, user.as_uuid()])
                .await
                .map_err(db_error)?;
            let stmt = tx
                .prepare_cached(RETRY.postgres())
                .await
                .map_err(db_error)?;
            let changed = tx
                .execute(&stmt, &[message.as_uuid(), user.as_uuid(), &at, &claim_by])
                .await
                .map_err(db_error)?;
            if changed == 0 {
                return Ok(None);
            }
            let retried = one(
                &tx,
                GET_BY_ID.postgres(),
                &[message.as_uuid(), user.as_uuid()],
            )
            .await?;
            tx.commit().await.map_err(db_error)?;
            Ok(retried)
        }

        async fn claim_turn(
            &self,
            user: UserId,
            message: MessageId,
            lease: LeaseId,
            now: Timestamp,
            expires: Timestamp,
        ) -> Result<bool, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(CLAIM.postgres())
                .await
                .map_err(db_error)?;
            let n = client
                .execute(
                    &stmt,
                    &[message.as_uuid(), user.as_uuid(), &lease.0, &now, &expires],
                )
                .await
                .map_err(db_error)?;
            Ok(n == 1)
        }

        async fn renew_lease(
            &self,
            message: MessageId,
            lease: LeaseId,
            expires: Timestamp,
        ) -> Result<bool, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(RENEW.postgres())
                .await
                .map_err(db_error)?;
            let n = client
                .execute(&stmt, &[message.as_uuid(), &lease.0, &expires])
                .await
                .map_err(db_error)?;
            Ok(n == 1)
        }

        async fn finish_turn(
            &self,
            message: &Message,
            usage: Option<&UsageLog>,
            by: Finisher,
            step: &StepRecords<'_>,
        ) -> Result<bool, StoreError> {
            let r = MessageRow::from_domain(message)?;
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            if write_final(&tx, &r, by).await? == 0 {
                return Ok(false);
            }
            if let Some(u) = usage {
                usage::append(&tx, u).await?;
            }
            executions::insert_all(&tx, step.executions).await?;
            for m in step.results {
                insert(&tx, m).await?;
            }
            for e in step.audit {
                audit::append(&tx, e).await?;
            }
            if let Some(by) = step.continue_by {
                let stmt = tx
                    .prepare_cached(CONTINUE_BY.postgres())
                    .await
                    .map_err(db_error)?;
                tx.execute(&stmt, &[message.id.as_uuid(), &by])
                    .await
                    .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        }

        async fn stalled_steps(
            &self,
            at: Timestamp,
            limit: u32,
        ) -> Result<Vec<Message>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(STALLED.postgres())
                .await
                .map_err(db_error)?;
            let rows = client
                .query(&stmt, &[&at, &sql_limit(limit)])
                .await
                .map_err(db_error)?;
            rows.iter().map(from_row).collect()
        }

        async fn get_message(
            &self,
            user: UserId,
            id: MessageId,
        ) -> Result<Option<Message>, StoreError> {
            let client = self.client().await?;
            one(
                &client,
                GET_BY_ID.postgres(),
                &[id.as_uuid(), user.as_uuid()],
            )
            .await
        }

        async fn lapsed_turns(
            &self,
            at: Timestamp,
            skip: u32,
            limit: u32,
        ) -> Result<Vec<Message>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(LAPSED.postgres())
                .await
                .map_err(db_error)?;
            let rows = client
                .query(&stmt, &[&at, &sql_limit(skip), &sql_limit(limit)])
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
    use bestchat_domain::ids::{MessageId, UserId};
    use bestchat_domain::message::Message;
    use bestchat_domain::ports::store::{
        Finisher, LeaseId, StepRecords, StoreError, TurnStart, TurnStore,
    };
    use bestchat_domain::time::{Timestamp, to_micros};
    use bestchat_domain::usage::UsageLog;
    use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

    use crate::records::MessageRow;
    use crate::sqlite::{SqliteStore, db_error, sql_limit};
    use crate::tables::audit::sqlite as audit;
    use crate::tables::executions::sqlite as executions;
    use crate::tables::messages::sqlite::{insert, read_row};
    use crate::tables::messages::{GET_BY_ID, GET_BY_REPLY, LAPSED, STALLED};
    use crate::tables::usage::sqlite as usage;

    fn one(
        conn: &Connection,
        sql: &str,
        id: &str,
        user: &str,
    ) -> Result<Option<Message>, StoreError> {
        conn.prepare_cached(sql)
            .map_err(db_error)?
            .query_row(params![id, user], read_row)
            .optional()
            .map_err(db_error)?
            .map(MessageRow::into_domain)
            .transpose()
    }

    /// Writes an answer's final fields if `by` may; the rows it changed.
    fn write_final(conn: &Connection, r: &MessageRow, by: Finisher) -> Result<usize, StoreError> {
        let (sql, condition) = match by {
            Finisher::Lease(lease) => (
                &FINISH_LEASED.sqlite(),
                rusqlite::types::Value::Text(lease.to_string()),
            ),
            Finisher::Lapsed(at) => (
                &FINISH_LAPSED.sqlite(),
                rusqlite::types::Value::Integer(to_micros(at)),
            ),
            Finisher::Unclaimed => (
                &FINISH_UNCLAIMED.sqlite(),
                rusqlite::types::Value::Integer(1),
            ),
        };
        conn.prepare_cached(sql)
            .map_err(db_error)?
            .execute(params![
                r.id.to_string(),
                r.user_id.to_string(),
                r.content,
                r.status,
                r.provider,
                r.model,
                r.tool_calls.to_string(),
                r.token_count,
                r.input_tokens,
                r.output_tokens,
                r.cached_tokens,
                r.cost_micros,
                r.finish_reason,
                r.error_code,
                r.error_message,
                to_micros(r.updated_at),
                condition,
            ])
            .map_err(db_error)
    }

    fn missing(what: &str) -> StoreError {
        StoreError::Internal(format!("the earlier turn's {what} message is missing"))
    }

    #[async_trait]
    impl TurnStore for SqliteStore {
        async fn start_turn(
            &self,
            user: &Message,
            assistant: &Message,
            claim_by: Timestamp,
        ) -> Result<TurnStart, StoreError> {
            let u = MessageRow::from_domain(user)?;
            let a = MessageRow::from_domain(assistant)?;
            let (user, assistant) = (user.clone(), assistant.clone());
            self.call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db_error)?;
                let inserted = tx
                    .prepare_cached(&INSERT_USER.sqlite())
                    .map_err(db_error)?
                    .execute(params![
                        u.id.to_string(),
                        u.conversation_id.to_string(),
                        u.user_id.to_string(),
                        u.role,
                        u.content,
                        u.status,
                        u.client_message_id,
                        u.token_count,
                        to_micros(u.created_at),
                        to_micros(u.updated_at),
                        u.attachments.to_string(),
                    ])
                    .map_err(db_error)?;
                let user_id = u.user_id.to_string();
                if inserted == 0 {
                    let id: String = tx
                        .prepare_cached(&BY_CLIENT_ID.sqlite())
                        .map_err(db_error)?
                        .query_row(
                            params![u.conversation_id.to_string(), user_id, u.client_message_id],
                            |row| row.get(0),
                        )
                        .map_err(db_error)?;
                    let original = one(&tx, &GET_BY_ID.sqlite(), &id, &user_id)?
                        .ok_or_else(|| missing("user"))?;
                    let answer = one(&tx, &GET_BY_REPLY.sqlite(), &id, &user_id)?
                        .ok_or_else(|| missing("assistant"))?;
                    tx.commit().map_err(db_error)?;
                    return Ok(TurnStart::Existing {
                        user: original,
                        assistant: answer,
                    });
                }
                let open: bool = tx
                    .prepare_cached(&OPEN_TURN.sqlite())
                    .map_err(db_error)?
                    .query_row(params![u.conversation_id.to_string()], |row| row.get(0))
                    .map_err(db_error)?;
                if open {
                    // Dropping the transaction rolls the user message back.
                    return Ok(TurnStart::Busy);
                }
                insert(&tx, &a)?;
                tx.prepare_cached(&CLAIM_BY.sqlite())
                    .map_err(db_error)?
                    .execute(params![a.id.to_string(), to_micros(claim_by)])
                    .map_err(db_error)?;
                tx.prepare_cached(&TOUCH_CONVERSATION.sqlite())
                    .map_err(db_error)?
                    .execute(params![
                        u.conversation_id.to_string(),
                        user_id,
                        to_micros(u.created_at)
                    ])
                    .map_err(db_error)?;
                tx.commit().map_err(db_error)?;
                Ok(TurnStart::Started { user, assistant })
            })
            .await
        }

        async fn retry_turn(
            &self,
            user: UserId,
            message: MessageId,
            at: Timestamp,
            claim_by: Timestamp,
        ) -> Result<Option<Message>, StoreError> {
            let (id, user) = (message.to_string(), user.to_string());
            self.call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db_error)?;
                let changed = tx
                    .prepare_cached(&RETRY.sqlite())
                    .map_err(db_error)?
                    .execute(params![id, user, to_micros(at), to_micros(claim_by)])
                    .map_err(db_error)?;
                if changed == 0 {
                    return Ok(None);
                }
                let retried = one(&tx, &GET_BY_ID.sqlite(), &id, &user)?;
                tx.commit().map_err(db_error)?;
                Ok(retried)
            })
            .await
        }

        async fn claim_turn(
            &self,
            user: UserId,
            message: MessageId,
            lease: LeaseId,
            now: Timestamp,
            expires: Timestamp,
        ) -> Result<bool, StoreError> {
            self.call(move |conn| {
                let n = conn
                    .prepare_cached(&CLAIM.sqlite())
                    .map_err(db_error)?
                    .execute(params![
                        message.to_string(),
                        user.to_string(),
                        lease.to_string(),
                        to_micros(now),
                        to_micros(expires),
                    ])
                    .map_err(db_error)?;
                Ok(n == 1)
            })
            .await
        }

        async fn renew_lease(
            &self,
            message: MessageId,
            lease: LeaseId,
            expires: Timestamp,
        ) -> Result<bool, StoreError> {
            self.call(move |conn| {
                let n = conn
                    .prepare_cached(&RENEW.sqlite())
                    .map_err(db_error)?
                    .execute(params![
                        message.to_string(),
                        lease.to_string(),
                        to_micros(expires)
                    ])
                    .map_err(db_error)?;
                Ok(n == 1)
            })
            .await
        }

        async fn finish_turn(
            &self,
            message: &Message,
            usage: Option<&UsageLog>,
            by: Finisher,
            step: &StepRecords<'_>,
        ) -> Result<bool, StoreError> {
            let r = MessageRow::from_domain(message)?;
            let usage = usage.cloned();
            let executions = step.executions.to_vec();
            let results = step
                .results
                .iter()
                .map(MessageRow::from_domain)
                .collect::<Result<Vec<_>, _>>()?;
            let continue_by = step.continue_by;
            let entries = step.audit.to_vec();
            self.call(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                if write_final(&tx, &r, by)? == 0 {
                    return Ok(false);
                }
                if let Some(u) = usage {
                    usage::append(&tx, &u)?;
                }
                executions::insert_all(&tx, &executions)?;
                for m in &results {
                    insert(&tx, m)?;
                }
                for e in &entries {
                    audit::append(&tx, e)?;
                }
                if let Some(by) = continue_by {
                    tx.prepare_cached(&CONTINUE_BY.sqlite())
                        .map_err(db_error)?
                        .execute(params![r.id.to_string(), to_micros(by)])
                        .map_err(db_error)?;
                }
                tx.commit().map_err(db_error)?;
                Ok(true)
            })
            .await
        }

        async fn stalled_steps(
            &self,
            at: Timestamp,
            limit: u32,
        ) -> Result<Vec<Message>, StoreError> {
            self.call(move |conn| {
                let rows = conn
                    .prepare_cached(&STALLED.sqlite())
                    .map_err(db_error)?
                    .query_map(params![to_micros(at), sql_limit(limit)], read_row)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    .map_err(db_error)?;
                rows.into_iter().map(MessageRow::into_domain).collect()
            })
            .await
        }

        async fn get_message(
            &self,
            user: UserId,
            id: MessageId,
        ) -> Result<Option<Message>, StoreError> {
            self.call(move |conn| {
                one(
                    conn,
                    &GET_BY_ID.sqlite(),
                    &id.to_string(),
                    &user.to_string(),
                )
            })
            .await
        }

        async fn lapsed_turns(
            &self,
            at: Timestamp,
            skip: u32,
            limit: u32,
        ) -> Result<Vec<Message>, StoreError> {
            self.call(move |conn| {
                let rows = conn
                    .prepare_cached(&LAPSED.sqlite())
                    .map_err(db_error)?
                    .query_map(
                        params![to_micros(at), sql_limit(skip), sql_limit(limit)],
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
