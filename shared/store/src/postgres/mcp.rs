//! Users' MCP servers. Every change is written with its audit entry, in one transaction.

use async_trait::async_trait;
use bestchat_domain::ids::UserId;
use bestchat_domain::mcp::{McpServer, McpServerId};
use bestchat_domain::ports::store::{AuditEntry, McpServerStore, StoreError};
use tokio_postgres::Row;

use super::{PgStore, audit, db_error, has_room};
use crate::records::{McpServerRow, mcp_columns};

const LIST: &str = concat!(
    "SELECT ",
    mcp_columns!(),
    " FROM mcp_servers WHERE user_id = $1 ORDER BY id"
);
const GET: &str = concat!(
    "SELECT ",
    mcp_columns!(),
    " FROM mcp_servers WHERE user_id = $1 AND id = $2"
);
const PUT: &str = concat!(
    "INSERT INTO mcp_servers (",
    mcp_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (user_id, id) DO UPDATE SET url = EXCLUDED.url,
        header_names = EXCLUDED.header_names, headers_sealed = EXCLUDED.headers_sealed,
        trusted = EXCLUDED.trusted, enabled = EXCLUDED.enabled, protocol = EXCLUDED.protocol,
        tools = EXCLUDED.tools, tools_fetched_at = EXCLUDED.tools_fetched_at,
        updated_at = EXCLUDED.updated_at"
);
const DELETE: &str = "DELETE FROM mcp_servers WHERE user_id = $1 AND id = $2";
/// The user's servers but the one being put.
const COUNT_OTHERS: &str = "SELECT count(*) FROM mcp_servers WHERE user_id = $1 AND id <> $2";

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
        let stmt = client.prepare_cached(LIST).await.map_err(db_error)?;
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
        let stmt = client.prepare_cached(GET).await.map_err(db_error)?;
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
        if !has_room(&tx, &r.user_id, COUNT_OTHERS, &r.id, max).await? {
            return Ok(false);
        }
        let stmt = tx.prepare_cached(PUT).await.map_err(db_error)?;
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
        let stmt = tx.prepare_cached(DELETE).await.map_err(db_error)?;
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
