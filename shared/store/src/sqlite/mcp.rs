//! Users' MCP servers. Every change is written with its audit entry, in one transaction.

use async_trait::async_trait;
use bestchat_domain::ids::UserId;
use bestchat_domain::mcp::{McpServer, McpServerId};
use bestchat_domain::ports::store::{AuditEntry, McpServerStore, StoreError};
use bestchat_domain::time::to_micros;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, audit, db_error, has_room, json_at, time_at, uuid_at};
use crate::records::{McpServerRow, mcp_columns};

const LIST: &str = concat!(
    "SELECT ",
    mcp_columns!(),
    " FROM mcp_servers WHERE user_id = ?1 ORDER BY id"
);
const GET: &str = concat!(
    "SELECT ",
    mcp_columns!(),
    " FROM mcp_servers WHERE user_id = ?1 AND id = ?2"
);
const PUT: &str = concat!(
    "INSERT INTO mcp_servers (",
    mcp_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT (user_id, id) DO UPDATE SET url = excluded.url,
        header_names = excluded.header_names, headers_sealed = excluded.headers_sealed,
        trusted = excluded.trusted, enabled = excluded.enabled, protocol = excluded.protocol,
        tools = excluded.tools, tools_fetched_at = excluded.tools_fetched_at,
        updated_at = excluded.updated_at"
);
const DELETE: &str = "DELETE FROM mcp_servers WHERE user_id = ?1 AND id = ?2";
/// The user's servers but the one being put.
const COUNT_OTHERS: &str = "SELECT count(*) FROM mcp_servers WHERE user_id = ?1 AND id <> ?2";

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
                .prepare_cached(LIST)
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
            conn.prepare_cached(GET)
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
            if !has_room(&tx, COUNT_OTHERS, &r.user_id.to_string(), &r.id, max)? {
                return Ok(false);
            }
            tx.prepare_cached(PUT)
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
                .prepare_cached(DELETE)
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
