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

use super::messages::{GET_BY_ID, GET_BY_REPLY, LAPSED, STALLED, from_row, insert, to_int};
use super::{PgStore, audit, db_error, executions, sql_limit, usage};
use crate::records::MessageRow;

/// Inserts the user message unless its `client_message_id` was seen in this conversation.
const INSERT_USER: &str = "INSERT INTO messages
    (id, conversation_id, user_id, role, content, status, client_message_id, token_count,
     created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (conversation_id, client_message_id) WHERE client_message_id IS NOT NULL
    DO NOTHING";
const BY_CLIENT_ID: &str = "SELECT id FROM messages
    WHERE conversation_id = $1 AND user_id = $2 AND client_message_id = $3";
/// Taken first: the turn starts of one conversation wait for each other, so the open-turn check
/// below sees every earlier start.
const LOCK_CONVERSATION: &str =
    "SELECT 1 FROM conversations WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE";
/// A turn of the conversation still going: an answer not ended, a step whose loop has not yet
/// gone on (its `continue_by` is set until the next step exists), or a tool call not ended.
const OPEN_TURN: &str = "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id = $1
        AND (status IN ('pending', 'streaming', 'awaiting_approval')
             OR (status = 'complete' AND lease_expires_at IS NOT NULL)))
    OR EXISTS (SELECT 1 FROM tool_executions WHERE conversation_id = $1
        AND status IN ('pending', 'approved', 'running'))";
const CONVERSATION_OF: &str = "SELECT conversation_id FROM messages WHERE id = $1 AND user_id = $2";
/// A failed answer, when it is the last message and no call is open, made pending again. The
/// model asked for again is the conversation's (the failed attempt recorded the last fallback
/// it reached).
const RETRY: &str = "UPDATE messages SET status = 'pending', content = '', tool_calls = '[]',
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
                AND e.status IN ('pending', 'approved', 'running'))";
const CONTINUE_BY: &str = "UPDATE messages SET lease_expires_at = $2 WHERE id = $1";
const TOUCH_CONVERSATION: &str =
    "UPDATE conversations SET updated_at = $3 WHERE id = $1 AND user_id = $2";
/// The pending answer must be claimed before this, or the janitor ends it.
const CLAIM_BY: &str = "UPDATE messages SET lease_expires_at = $2 WHERE id = $1";
const CLAIM: &str = "UPDATE messages
    SET status = 'streaming', lease_owner = $3, lease_expires_at = $5, updated_at = $4
    WHERE id = $1 AND user_id = $2 AND status = 'pending'";
const RENEW: &str = "UPDATE messages SET lease_expires_at = $3
    WHERE id = $1 AND lease_owner = $2 AND status = 'streaming'";
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
const FINISH_LEASED: &str = finish!("status = 'streaming' AND lease_owner = $17");
const FINISH_LAPSED: &str =
    finish!("status IN ('pending', 'streaming') AND lease_expires_at < $17");
const FINISH_UNCLAIMED: &str = finish!("status = 'pending' AND $17::boolean");

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
        Finisher::Lease(lease) => (FINISH_LEASED, Some(lease.0), None),
        Finisher::Lapsed(at) => (FINISH_LAPSED, None, Some(at)),
        Finisher::Unclaimed => (FINISH_UNCLAIMED, None, None),
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
        let stmt = tx.prepare_cached(INSERT_USER).await.map_err(db_error)?;
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
                ],
            )
            .await
            .map_err(db_error)?;
        if inserted == 0 {
            let stmt = tx.prepare_cached(BY_CLIENT_ID).await.map_err(db_error)?;
            let id: uuid::Uuid = tx
                .query_one(
                    &stmt,
                    &[&u.conversation_id, &u.user_id, &u.client_message_id],
                )
                .await
                .map_err(db_error)?
                .get(0);
            let original = one(&tx, GET_BY_ID, &[&id, &u.user_id])
                .await?
                .ok_or_else(|| missing("user"))?;
            let answer = one(&tx, GET_BY_REPLY, &[&id, &u.user_id])
                .await?
                .ok_or_else(|| missing("assistant"))?;
            tx.commit().await.map_err(db_error)?;
            return Ok(TurnStart::Existing {
                user: original,
                assistant: answer,
            });
        }
        let stmt = tx.prepare_cached(OPEN_TURN).await.map_err(db_error)?;
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
        let stmt = tx.prepare_cached(CLAIM_BY).await.map_err(db_error)?;
        tx.execute(&stmt, &[assistant.id.as_uuid(), &claim_by])
            .await
            .map_err(db_error)?;
        let stmt = tx
            .prepare_cached(TOUCH_CONVERSATION)
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
        let stmt = tx.prepare_cached(RETRY).await.map_err(db_error)?;
        let changed = tx
            .execute(&stmt, &[message.as_uuid(), user.as_uuid(), &at, &claim_by])
            .await
            .map_err(db_error)?;
        if changed == 0 {
            return Ok(None);
        }
        let retried = one(&tx, GET_BY_ID, &[message.as_uuid(), user.as_uuid()]).await?;
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
        let stmt = client.prepare_cached(CLAIM).await.map_err(db_error)?;
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
        let stmt = client.prepare_cached(RENEW).await.map_err(db_error)?;
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
            let stmt = tx.prepare_cached(CONTINUE_BY).await.map_err(db_error)?;
            tx.execute(&stmt, &[message.id.as_uuid(), &by])
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn stalled_steps(&self, at: Timestamp, limit: u32) -> Result<Vec<Message>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(STALLED).await.map_err(db_error)?;
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
        one(&client, GET_BY_ID, &[id.as_uuid(), user.as_uuid()]).await
    }

    async fn lapsed_turns(
        &self,
        at: Timestamp,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(LAPSED).await.map_err(db_error)?;
        let rows = client
            .query(&stmt, &[&at, &sql_limit(skip), &sql_limit(limit)])
            .await
            .map_err(db_error)?;
        rows.iter().map(from_row).collect()
    }
}
