//! Tool executions: each status change a compare-and-set, written with the call's `tool`
//! message and audit entry in the same transaction.

use crate::records::execution_columns;
use crate::sql::Sql;

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT ",
            execution_columns!(),
            " FROM tool_executions ",
            $tail
        )
    };
}

const INSERT: Sql = Sql::same(concat!(
    "INSERT INTO tool_executions (",
    execution_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
               $19, $20, $21, $22, $23)"
));

const GET: Sql = Sql::same(select!("WHERE id = $1 AND user_id = $2"));

const OF_MESSAGE: Sql = Sql::same(select!(
    "WHERE message_id = $1 AND user_id = $2 ORDER BY created_at, id"
));

const LIST: Sql = Sql::same(select!(
    "WHERE user_id = $1 AND ($2::text IS NULL OR status = $2)
       AND ($3::uuid IS NULL OR conversation_id = $3)
       AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
     ORDER BY created_at DESC, id DESC LIMIT $6"
));

const OVERDUE: Sql = Sql::same(select!(
    "WHERE status IN ('pending', 'approved', 'running') AND expires_at < $1 ORDER BY expires_at, id LIMIT $2"
));

const UPDATE: Sql = Sql::same(
    "UPDATE tool_executions SET status = $3, decision = $4, decided_at = $5,
        decision_verdict = $6, decision_rule = $7, decision_connection = $8, result = $9,
        error_code = $10, error = $11, duration_ms = $12, usage = $13, request = $14,
        expires_at = $15, updated_at = $16
    WHERE id = $1 AND user_id = $2 AND status = $17",
);

/// A call of the step has not ended, or the next step exists already.
const BLOCKED: Sql = Sql::differs(
    "SELECT EXISTS (SELECT 1 FROM tool_executions
        WHERE message_id = $1 AND user_id = $2 AND status IN ('pending', 'approved', 'running'))
    OR EXISTS (SELECT 1 FROM messages WHERE reply_to = $1)",
    "SELECT EXISTS (SELECT 1 FROM tool_executions
        WHERE message_id = ?1 AND user_id = ?2 AND status IN ('pending', 'approved', 'running'))
    OR EXISTS (SELECT 1 FROM messages WHERE reply_to = ?1)
    OR NOT EXISTS (SELECT 1 FROM messages WHERE id = ?1 AND user_id = ?2)",
);

/// The step the loop goes on from: no longer waiting, and its continuation done.
const END_WAIT: Sql = Sql::same(
    "UPDATE messages SET status = 'complete', lease_expires_at = NULL,
        updated_at = $3
    WHERE id = $1 AND user_id = $2 AND status IN ('awaiting_approval', 'complete')",
);

const END_WAITING: Sql = Sql::same(
    "UPDATE messages SET status = $3, lease_expires_at = NULL, updated_at = $4
    WHERE id = $1 AND user_id = $2 AND status = 'awaiting_approval'
      AND NOT EXISTS (SELECT 1 FROM tool_executions WHERE message_id = $1
                      AND status IN ('pending', 'approved', 'running'))",
);

const CLAIM_BY: Sql = Sql::same("UPDATE messages SET lease_expires_at = $2 WHERE id = $1");

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::{MessageId, ToolExecutionId, UserId};
    use bestchat_domain::message::{Message, MessageStatus};
    use bestchat_domain::page::{Page, PageRequest};
    use bestchat_domain::ports::store::{
        AuditEntry, ExecutionFilter, StoreError, ToolExecutionStore,
    };
    use bestchat_domain::time::Timestamp;
    use bestchat_domain::tool::{ExecutionStatus, ToolExecution};
    use deadpool_postgres::GenericClient;
    use tokio_postgres::Row;
    use tokio_postgres::types::ToSql;

    use crate::postgres::{PgStore, db_error, sql_limit};
    use crate::records::ExecutionRow;
    use crate::tables::audit::postgres as audit;
    use crate::tables::messages::postgres::insert as insert_message;

    fn from_row(row: &Row) -> Result<ToolExecution, StoreError> {
        let duration: Option<i32> = row.try_get(17).map_err(db_error)?;
        ExecutionRow {
            id: row.try_get(0).map_err(db_error)?,
            user_id: row.try_get(1).map_err(db_error)?,
            conversation_id: row.try_get(2).map_err(db_error)?,
            message_id: row.try_get(3).map_err(db_error)?,
            tool_call_id: row.try_get(4).map_err(db_error)?,
            tool_name: row.try_get(5).map_err(db_error)?,
            arguments: row.try_get(6).map_err(db_error)?,
            risk: row.try_get(7).map_err(db_error)?,
            status: row.try_get(8).map_err(db_error)?,
            decision: row.try_get(9).map_err(db_error)?,
            decided_at: row.try_get(10).map_err(db_error)?,
            decision_verdict: row.try_get(11).map_err(db_error)?,
            decision_rule: row.try_get(12).map_err(db_error)?,
            decision_connection: row.try_get(13).map_err(db_error)?,
            result: row.try_get(14).map_err(db_error)?,
            error_code: row.try_get(15).map_err(db_error)?,
            error: row.try_get(16).map_err(db_error)?,
            duration_ms: duration.map(i64::from),
            usage: row.try_get(18).map_err(db_error)?,
            request: row.try_get(19).map_err(db_error)?,
            expires_at: row.try_get(20).map_err(db_error)?,
            created_at: row.try_get(21).map_err(db_error)?,
            updated_at: row.try_get(22).map_err(db_error)?,
        }
        .into_domain()
    }

    fn duration(r: &ExecutionRow) -> Option<i32> {
        r.duration_ms.map(|d| i32::try_from(d).unwrap_or(i32::MAX))
    }

    /// Inserts executions inside the transaction that writes their answer.
    pub(crate) async fn insert_all(
        client: &impl GenericClient,
        executions: &[ToolExecution],
    ) -> Result<(), StoreError> {
        if executions.is_empty() {
            return Ok(());
        }
        let stmt = client
            .prepare_cached(INSERT.postgres())
            .await
            .map_err(db_error)?;
        for e in executions {
            let r = ExecutionRow::from_domain(e)?;
            client
                .execute(
                    &stmt,
                    &[
                        &r.id,
                        &r.user_id,
                        &r.conversation_id,
                        &r.message_id,
                        &r.tool_call_id,
                        &r.tool_name,
                        &r.arguments,
                        &r.risk,
                        &r.status,
                        &r.decision,
                        &r.decided_at,
                        &r.decision_verdict,
                        &r.decision_rule,
                        &r.decision_connection,
                        &r.result,
                        &r.error_code,
                        &r.error,
                        &duration(&r),
                        &r.usage,
                        &r.request,
                        &r.expires_at,
                        &r.created_at,
                        &r.updated_at,
                    ],
                )
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    impl PgStore {
        /// The executions `sql` selects.
        async fn executions(
            &self,
            sql: &str,
            params: &[&(dyn ToSql + Sync)],
        ) -> Result<Vec<ToolExecution>, StoreError> {
            let client = self.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(db_error)?;
            let rows = client.query(&stmt, params).await.map_err(db_error)?;
            rows.iter().map(from_row).collect()
        }
    }

    #[async_trait]
    impl ToolExecutionStore for PgStore {
        async fn get_execution(
            &self,
            user: UserId,
            id: ToolExecutionId,
        ) -> Result<Option<ToolExecution>, StoreError> {
            let found = self
                .executions(GET.postgres(), &[id.as_uuid(), user.as_uuid()])
                .await?;
            Ok(found.into_iter().next())
        }

        async fn executions_of(
            &self,
            user: UserId,
            message: MessageId,
        ) -> Result<Vec<ToolExecution>, StoreError> {
            self.executions(OF_MESSAGE.postgres(), &[message.as_uuid(), user.as_uuid()])
                .await
        }

        async fn list_executions(
            &self,
            user: UserId,
            filter: &ExecutionFilter,
            page: &PageRequest,
        ) -> Result<Page<ToolExecution>, StoreError> {
            let status = filter.status.map(|s| s.as_str());
            let conversation = filter.conversation.map(|c| *c.as_uuid());
            let items = self
                .executions(
                    LIST.postgres(),
                    &[
                        user.as_uuid(),
                        &status,
                        &conversation,
                        &page.after.map(|a| a.at),
                        &page.after.map(|a| a.id),
                        &sql_limit(page.fetch_limit()),
                    ],
                )
                .await?;
            Ok(Page::from_rows(items, page, ToolExecution::cursor_key))
        }

        async fn transition_execution(
            &self,
            next: &ToolExecution,
            from: ExecutionStatus,
            result: Option<&Message>,
            audit_entry: Option<&AuditEntry>,
        ) -> Result<bool, StoreError> {
            let r = ExecutionRow::from_domain(next)?;
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx
                .prepare_cached(UPDATE.postgres())
                .await
                .map_err(db_error)?;
            let n = tx
                .execute(
                    &stmt,
                    &[
                        &r.id,
                        &r.user_id,
                        &r.status,
                        &r.decision,
                        &r.decided_at,
                        &r.decision_verdict,
                        &r.decision_rule,
                        &r.decision_connection,
                        &r.result,
                        &r.error_code,
                        &r.error,
                        &duration(&r),
                        &r.usage,
                        &r.request,
                        &r.expires_at,
                        &r.updated_at,
                        &from.as_str(),
                    ],
                )
                .await
                .map_err(db_error)?;
            if n == 0 {
                return Ok(false);
            }
            if let Some(m) = result {
                insert_message(&tx, m).await?;
            }
            if let Some(e) = audit_entry {
                audit::append(&tx, e).await?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        }

        async fn overdue_executions(
            &self,
            at: Timestamp,
            limit: u32,
        ) -> Result<Vec<ToolExecution>, StoreError> {
            self.executions(OVERDUE.postgres(), &[&at, &sql_limit(limit)])
                .await
        }

        async fn end_waiting_step(
            &self,
            user: UserId,
            step: MessageId,
            status: MessageStatus,
            at: Timestamp,
        ) -> Result<bool, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(END_WAITING.postgres())
                .await
                .map_err(db_error)?;
            let n = client
                .execute(
                    &stmt,
                    &[step.as_uuid(), user.as_uuid(), &status.as_str(), &at],
                )
                .await
                .map_err(db_error)?;
            Ok(n == 1)
        }

        async fn continue_step(
            &self,
            user: UserId,
            previous: MessageId,
            next: &Message,
            claim_by: Timestamp,
        ) -> Result<bool, StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            // The answer's row is locked first, so racing continuations take turns here and the
            // second sees the first's next step.
            let stmt = tx
                .prepare_cached("SELECT 1 FROM messages WHERE id = $1 AND user_id = $2 FOR UPDATE")
                .await
                .map_err(db_error)?;
            if tx
                .query_opt(&stmt, &[previous.as_uuid(), user.as_uuid()])
                .await
                .map_err(db_error)?
                .is_none()
            {
                return Ok(false);
            }
            let stmt = tx
                .prepare_cached(BLOCKED.postgres())
                .await
                .map_err(db_error)?;
            let blocked: bool = tx
                .query_one(&stmt, &[previous.as_uuid(), user.as_uuid()])
                .await
                .map_err(db_error)?
                .get(0);
            if blocked {
                return Ok(false);
            }
            let stmt = tx
                .prepare_cached(END_WAIT.postgres())
                .await
                .map_err(db_error)?;
            tx.execute(
                &stmt,
                &[previous.as_uuid(), user.as_uuid(), &next.created_at],
            )
            .await
            .map_err(db_error)?;
            insert_message(&tx, next).await?;
            let stmt = tx
                .prepare_cached(CLAIM_BY.postgres())
                .await
                .map_err(db_error)?;
            tx.execute(&stmt, &[next.id.as_uuid(), &claim_by])
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        }
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::{MessageId, ToolExecutionId, UserId};
    use bestchat_domain::message::{Message, MessageStatus};
    use bestchat_domain::page::{Page, PageRequest};
    use bestchat_domain::ports::store::{
        AuditEntry, ExecutionFilter, StoreError, ToolExecutionStore,
    };
    use bestchat_domain::time::{Timestamp, to_micros};
    use bestchat_domain::tool::{ExecutionStatus, ToolExecution};
    use rusqlite::types::Value as Sql;
    use rusqlite::{Connection, Row, TransactionBehavior, params};

    use crate::records::{ExecutionRow, MessageRow};
    use crate::sqlite::{SqliteStore, db_error, json_at, sql_limit, time_at, uuid_at};
    use crate::tables::audit::sqlite as audit;
    use crate::tables::messages::sqlite::insert as insert_message;

    fn opt_json(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<serde_json::Value>> {
        let text: Option<String> = row.get(idx)?;
        match text {
            Some(_) => json_at(row, idx).map(Some),
            None => Ok(None),
        }
    }

    fn opt_time(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
        let micros: Option<i64> = row.get(idx)?;
        match micros {
            Some(_) => time_at(row, idx).map(Some),
            None => Ok(None),
        }
    }

    fn read_row(row: &Row<'_>) -> rusqlite::Result<ExecutionRow> {
        Ok(ExecutionRow {
            id: uuid_at(row, 0)?,
            user_id: uuid_at(row, 1)?,
            conversation_id: uuid_at(row, 2)?,
            message_id: uuid_at(row, 3)?,
            tool_call_id: row.get(4)?,
            tool_name: row.get(5)?,
            arguments: json_at(row, 6)?,
            risk: row.get(7)?,
            status: row.get(8)?,
            decision: row.get(9)?,
            decided_at: opt_time(row, 10)?,
            decision_verdict: row.get(11)?,
            decision_rule: row.get(12)?,
            decision_connection: row.get(13)?,
            result: opt_json(row, 14)?,
            error_code: row.get(15)?,
            error: row.get(16)?,
            duration_ms: row.get(17)?,
            usage: opt_json(row, 18)?,
            request: opt_json(row, 19)?,
            expires_at: opt_time(row, 20)?,
            created_at: time_at(row, 21)?,
            updated_at: time_at(row, 22)?,
        })
    }

    fn text(v: Option<&serde_json::Value>) -> Option<String> {
        v.map(serde_json::Value::to_string)
    }

    /// The row's mutable fields, `?3` to `?16` of `UPDATE`.
    fn changes(r: &ExecutionRow) -> [Sql; 14] {
        let s = |v: Option<&String>| v.map_or(Sql::Null, |s| Sql::Text(s.clone()));
        let t = |v: Option<Timestamp>| v.map_or(Sql::Null, |at| Sql::Integer(to_micros(at)));
        [
            Sql::Text(r.status.clone()),
            s(r.decision.as_ref()),
            t(r.decided_at),
            s(r.decision_verdict.as_ref()),
            s(r.decision_rule.as_ref()),
            s(r.decision_connection.as_ref()),
            s(text(r.result.as_ref()).as_ref()),
            s(r.error_code.as_ref()),
            s(r.error.as_ref()),
            r.duration_ms.map_or(Sql::Null, Sql::Integer),
            s(text(r.usage.as_ref()).as_ref()),
            s(text(r.request.as_ref()).as_ref()),
            t(r.expires_at),
            Sql::Integer(to_micros(r.updated_at)),
        ]
    }

    /// Inserts executions inside the transaction that writes their answer.
    pub(crate) fn insert_all(
        conn: &Connection,
        executions: &[ToolExecution],
    ) -> Result<(), StoreError> {
        for e in executions {
            let r = ExecutionRow::from_domain(e)?;
            let [
                status,
                decision,
                decided_at,
                verdict,
                rule,
                connection,
                result,
                error_code,
                error,
                duration,
                usage,
                request,
                expires,
                updated,
            ] = changes(&r);
            conn.prepare_cached(&INSERT.sqlite())
                .map_err(db_error)?
                .execute(params![
                    r.id.to_string(),
                    r.user_id.to_string(),
                    r.conversation_id.to_string(),
                    r.message_id.to_string(),
                    r.tool_call_id,
                    r.tool_name,
                    r.arguments.to_string(),
                    r.risk,
                    status,
                    decision,
                    decided_at,
                    verdict,
                    rule,
                    connection,
                    result,
                    error_code,
                    error,
                    duration,
                    usage,
                    request,
                    expires,
                    to_micros(r.created_at),
                    updated,
                ])
                .map_err(db_error)?;
        }
        Ok(())
    }

    /// The executions `sql` selects.
    fn select(
        conn: &Connection,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<ToolExecution>, StoreError> {
        let rows = conn
            .prepare_cached(sql)
            .map_err(db_error)?
            .query_map(params, read_row)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(db_error)?;
        rows.into_iter().map(ExecutionRow::into_domain).collect()
    }

    #[async_trait]
    impl ToolExecutionStore for SqliteStore {
        async fn get_execution(
            &self,
            user: UserId,
            id: ToolExecutionId,
        ) -> Result<Option<ToolExecution>, StoreError> {
            self.call(move |conn| {
                let found = select(
                    conn,
                    &GET.sqlite(),
                    params![id.to_string(), user.to_string()],
                )?;
                Ok(found.into_iter().next())
            })
            .await
        }

        async fn executions_of(
            &self,
            user: UserId,
            message: MessageId,
        ) -> Result<Vec<ToolExecution>, StoreError> {
            self.call(move |conn| {
                select(
                    conn,
                    &OF_MESSAGE.sqlite(),
                    params![message.to_string(), user.to_string()],
                )
            })
            .await
        }

        async fn list_executions(
            &self,
            user: UserId,
            filter: &ExecutionFilter,
            page: &PageRequest,
        ) -> Result<Page<ToolExecution>, StoreError> {
            let (filter, page) = (filter.clone(), *page);
            self.call(move |conn| {
                let items = select(
                    conn,
                    &LIST.sqlite(),
                    params![
                        user.to_string(),
                        filter.status.map(|s| s.as_str()),
                        filter.conversation.map(|c| c.to_string()),
                        page.after.map(|a| to_micros(a.at)),
                        page.after.map(|a| a.id.to_string()),
                        sql_limit(page.fetch_limit()),
                    ],
                )?;
                Ok(Page::from_rows(items, &page, ToolExecution::cursor_key))
            })
            .await
        }

        async fn transition_execution(
            &self,
            next: &ToolExecution,
            from: ExecutionStatus,
            result: Option<&Message>,
            audit_entry: Option<&AuditEntry>,
        ) -> Result<bool, StoreError> {
            let r = ExecutionRow::from_domain(next)?;
            let result = result.map(MessageRow::from_domain).transpose()?;
            let audit_entry = audit_entry.cloned();
            self.call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db_error)?;
                let mut values: Vec<Sql> = vec![
                    Sql::Text(r.id.to_string()),
                    Sql::Text(r.user_id.to_string()),
                ];
                values.extend(changes(&r));
                values.push(Sql::Text(from.as_str().to_owned()));
                let n = tx
                    .prepare_cached(&UPDATE.sqlite())
                    .map_err(db_error)?
                    .execute(rusqlite::params_from_iter(values))
                    .map_err(db_error)?;
                if n == 0 {
                    return Ok(false);
                }
                if let Some(m) = &result {
                    insert_message(&tx, m)?;
                }
                if let Some(e) = &audit_entry {
                    audit::append(&tx, e)?;
                }
                tx.commit().map_err(db_error)?;
                Ok(true)
            })
            .await
        }

        async fn overdue_executions(
            &self,
            at: Timestamp,
            limit: u32,
        ) -> Result<Vec<ToolExecution>, StoreError> {
            self.call(move |conn| {
                select(
                    conn,
                    &OVERDUE.sqlite(),
                    params![to_micros(at), sql_limit(limit)],
                )
            })
            .await
        }

        async fn end_waiting_step(
            &self,
            user: UserId,
            step: MessageId,
            status: MessageStatus,
            at: Timestamp,
        ) -> Result<bool, StoreError> {
            self.call(move |conn| {
                let n = conn
                    .prepare_cached(&END_WAITING.sqlite())
                    .map_err(db_error)?
                    .execute(params![
                        step.to_string(),
                        user.to_string(),
                        status.as_str(),
                        to_micros(at)
                    ])
                    .map_err(db_error)?;
                Ok(n == 1)
            })
            .await
        }

        async fn continue_step(
            &self,
            user: UserId,
            previous: MessageId,
            next: &Message,
            claim_by: Timestamp,
        ) -> Result<bool, StoreError> {
            let next = MessageRow::from_domain(next)?;
            self.call(move |conn| {
                // IMMEDIATE takes the write lock first: racing continuations take turns, and the
                // second sees the first's next step.
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db_error)?;
                let blocked: bool = tx
                    .prepare_cached(&BLOCKED.sqlite())
                    .map_err(db_error)?
                    .query_row(params![previous.to_string(), user.to_string()], |row| {
                        row.get(0)
                    })
                    .map_err(db_error)?;
                if blocked {
                    return Ok(false);
                }
                tx.prepare_cached(&END_WAIT.sqlite())
                    .map_err(db_error)?
                    .execute(params![
                        previous.to_string(),
                        user.to_string(),
                        to_micros(next.created_at)
                    ])
                    .map_err(db_error)?;
                insert_message(&tx, &next)?;
                tx.prepare_cached(&CLAIM_BY.sqlite())
                    .map_err(db_error)?
                    .execute(params![next.id.to_string(), to_micros(claim_by)])
                    .map_err(db_error)?;
                tx.commit().map_err(db_error)?;
                Ok(true)
            })
            .await
        }
    }
}
