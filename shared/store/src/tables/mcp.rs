//! Users' MCP servers. Every change is written with its audit entry, in one transaction.

use crate::records::mcp_columns;
use crate::sql::Sql;

const LIST: Sql = Sql::same(concat!(
    "SELECT ",
    mcp_columns!(),
    " FROM mcp_servers WHERE user_id = $1 ORDER BY id"
));

const GET: Sql = Sql::same(concat!(
    "SELECT ",
    mcp_columns!(),
    " FROM mcp_servers WHERE user_id = $1 AND id = $2"
));

const PUT: Sql = Sql::same(concat!(
    "INSERT INTO mcp_servers (",
    mcp_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (user_id, id) DO UPDATE SET url = EXCLUDED.url,
        header_names = EXCLUDED.header_names, headers_sealed = EXCLUDED.headers_sealed,
        trusted = EXCLUDED.trusted, enabled = EXCLUDED.enabled, protocol = EXCLUDED.protocol,
        tools = EXCLUDED.tools, tools_fetched_at = EXCLUDED.tools_fetched_at,
        updated_at = EXCLUDED.updated_at"
));

const DELETE: Sql = Sql::same("DELETE FROM mcp_servers WHERE user_id = $1 AND id = $2");

/// The user's servers but the one being put.
const COUNT_OTHERS: Sql =
    Sql::same("SELECT count(*) FROM mcp_servers WHERE user_id = $1 AND id <> $2");

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::mcp::{McpServer, McpServerId};
    use bestchat_domain::ports::store::{AuditEntry, McpServerStore, StoreError};
    use tokio_postgres::Row;

    use crate::postgres::{PgStore, db_error, has_room};
    use crate::records::McpServerRow;
    use crate::tables::audit::postgres as audit;

    fn from_row(row: &Row) -> Result<McpServer, StoreError> {
        McpServerRow {
            user_id: row.try_get(0).map_err(db_error)?,
            id: row.try_get(1).map_err(db_error)?,
            url: row.try_get(2).map_err(db_error)?,
            header_names: row.try_get(3).map_err(db_error)?,
            headers_sealed: row.try_get(4).map_err(db_error)?,
            trusted: row.try_get(5).map_err(db_error)?,
            enabled: row.try_get(6).map_err(db_error)?,
            protocol: row.try_get(7).map_err(db_error)?,
            tools: row.try_get(8).map_err(db_error)?,
            tools_fetched_at: row.try_get(9).map_err(db_error)?,
            created_at: row.try_get(10).map_err(db_error)?,
            updated_at: row.try_get(11).map_err(db_error)?,
        }
        .into_domain()
    }

    #[async_trait]
    impl McpServerStore for PgStore {
        async fn list_mcp_servers(&self, user: UserId) -> Result<Vec<McpServer>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(LIST.postgres())
                .await
                .map_err(db_error)?;
            let rows = client
                .query(&stmt, &[user.as_uuid()])
                .await
                .map_err(db_error)?;
            rows.iter().map(from_row).collect()
        }

        async fn get_mcp_server(
            &self,
            user: UserId,
            id: &McpServerId,
        ) -> Result<Option<McpServer>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(GET.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_opt(&stmt, &[user.as_uuid(), &id.as_str()])
                .await
                .map_err(db_error)?;
            row.as_ref().map(from_row).transpose()
        }

        async fn put_mcp_server(
            &self,
            server: &McpServer,
            max: usize,
            entry: &AuditEntry,
        ) -> Result<bool, StoreError> {
            let r = McpServerRow::from_domain(server)?;
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            if !has_room(&tx, &r.user_id, COUNT_OTHERS.postgres(), &r.id, max).await? {
                return Ok(false);
            }
            let stmt = tx.prepare_cached(PUT.postgres()).await.map_err(db_error)?;
            tx.execute(
                &stmt,
                &[
                    &r.user_id,
                    &r.id,
                    &r.url,
                    &r.header_names,
                    &r.headers_sealed,
                    &r.trusted,
                    &r.enabled,
                    &r.protocol,
                    &r.tools,
                    &r.tools_fetched_at,
                    &r.created_at,
                    &r.updated_at,
                ],
            )
            .await
            .map_err(db_error)?;
            audit::append(&tx, entry).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        }

        async fn delete_mcp_server(
            &self,
            user: UserId,
            id: &McpServerId,
            entry: &AuditEntry,
        ) -> Result<bool, StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx
                .prepare_cached(DELETE.postgres())
                .await
                .map_err(db_error)?;
            let n = tx
                .execute(&stmt, &[user.as_uuid(), &id.as_str()])
                .await
                .map_err(db_error)?;
            if n > 0 {
                audit::append(&tx, entry).await?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(n > 0)
        }
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::mcp::{McpServer, McpServerId};
    use bestchat_domain::ports::store::{AuditEntry, McpServerStore, StoreError};
    use bestchat_domain::time::to_micros;
    use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

    use crate::records::McpServerRow;
    use crate::sqlite::{SqliteStore, db_error, has_room, json_at, time_at, uuid_at};
    use crate::tables::audit::sqlite as audit;

    fn read_row(row: &Row<'_>) -> rusqlite::Result<McpServerRow> {
        let sealed: Option<String> = row.get(4)?;
        let fetched: Option<i64> = row.get(9)?;
        Ok(McpServerRow {
            user_id: uuid_at(row, 0)?,
            id: row.get(1)?,
            url: row.get(2)?,
            header_names: json_at(row, 3)?,
            headers_sealed: match sealed {
                Some(_) => Some(json_at(row, 4)?),
                None => None,
            },
            trusted: row.get(5)?,
            enabled: row.get(6)?,
            protocol: row.get(7)?,
            tools: json_at(row, 8)?,
            tools_fetched_at: match fetched {
                Some(_) => Some(time_at(row, 9)?),
                None => None,
            },
            created_at: time_at(row, 10)?,
            updated_at: time_at(row, 11)?,
        })
    }

    #[async_trait]
    impl McpServerStore for SqliteStore {
        async fn list_mcp_servers(&self, user: UserId) -> Result<Vec<McpServer>, StoreError> {
            self.call(move |conn| {
                let rows = conn
                    .prepare_cached(&LIST.sqlite())
                    .map_err(db_error)?
                    .query_map(params![user.to_string()], read_row)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    .map_err(db_error)?;
                rows.into_iter().map(McpServerRow::into_domain).collect()
            })
            .await
        }

        async fn get_mcp_server(
            &self,
            user: UserId,
            id: &McpServerId,
        ) -> Result<Option<McpServer>, StoreError> {
            let id = id.as_str().to_owned();
            self.call(move |conn| {
                conn.prepare_cached(&GET.sqlite())
                    .map_err(db_error)?
                    .query_row(params![user.to_string(), id], read_row)
                    .optional()
                    .map_err(db_error)?
                    .map(McpServerRow::into_domain)
                    .transpose()
            })
            .await
        }

        async fn put_mcp_server(
            &self,
            server: &McpServer,
            max: usize,
            entry: &AuditEntry,
        ) -> Result<bool, StoreError> {
            let r = McpServerRow::from_domain(server)?;
            let entry = entry.clone();
            self.call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db_error)?;
                if !has_room(
                    &tx,
                    &COUNT_OTHERS.sqlite(),
                    &r.user_id.to_string(),
                    &r.id,
                    max,
                )? {
                    return Ok(false);
                }
                tx.prepare_cached(&PUT.sqlite())
                    .map_err(db_error)?
                    .execute(params![
                        r.user_id.to_string(),
                        r.id,
                        r.url,
                        r.header_names.to_string(),
                        r.headers_sealed.as_ref().map(ToString::to_string),
                        r.trusted,
                        r.enabled,
                        r.protocol,
                        r.tools.to_string(),
                        r.tools_fetched_at.map(to_micros),
                        to_micros(r.created_at),
                        to_micros(r.updated_at),
                    ])
                    .map_err(db_error)?;
                audit::append(&tx, &entry)?;
                tx.commit().map_err(db_error)?;
                Ok(true)
            })
            .await
        }

        async fn delete_mcp_server(
            &self,
            user: UserId,
            id: &McpServerId,
            entry: &AuditEntry,
        ) -> Result<bool, StoreError> {
            let (id, entry) = (id.as_str().to_owned(), entry.clone());
            self.call(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                let n = tx
                    .prepare_cached(&DELETE.sqlite())
                    .map_err(db_error)?
                    .execute(params![user.to_string(), id])
                    .map_err(db_error)?;
                if n > 0 {
                    audit::append(&tx, &entry)?;
                }
                tx.commit().map_err(db_error)?;
                Ok(n > 0)
            })
            .await
        }
    }
}
