use async_trait::async_trait;
use bestchat_domain::ids::{ToolId, UserId};
use bestchat_domain::ports::store::{AuditEntry, StoreError, ToolStore};
use bestchat_domain::tool::UserTool;
use tokio_postgres::Row;

use super::{PgStore, audit, db_error, has_room};

const COLUMNS: &str =
    "id, user_id, name, description, manifest, risk, module_key, module_sha256, created_at";

/// The user's other tools (one of the same name is refused as a conflict anyway).
const COUNT_OTHERS: &str = "SELECT count(*) FROM tools WHERE user_id = $1 AND name <> $2";

const IN_USE: &str = "SELECT DISTINCT module_sha256 FROM tools WHERE module_sha256 = ANY($1)";

fn from_row(row: &Row) -> Result<UserTool, StoreError> {
    Ok(UserTool {
        id: ToolId::from_uuid(row.try_get(0).map_err(db_error)?),
        user_id: UserId::from_uuid(row.try_get(1).map_err(db_error)?),
        name: row.try_get(2).map_err(db_error)?,
        description: row.try_get(3).map_err(db_error)?,
        manifest: row.try_get(4).map_err(db_error)?,
        risk: row.try_get(5).map_err(db_error)?,
        module_key: row.try_get(6).map_err(db_error)?,
        module_sha256: row.try_get(7).map_err(db_error)?,
        created_at: row.try_get(8).map_err(db_error)?,
    })
}

#[async_trait]
impl ToolStore for PgStore {
    async fn create_tool(
        &self,
        tool: &UserTool,
        max: usize,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if !has_room(&tx, tool.user_id.as_uuid(), COUNT_OTHERS, &tool.name, max).await? {
            return Ok(false);
        }
        let sql =
            format!("INSERT INTO tools ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
        let stmt = tx.prepare_cached(&sql).await.map_err(db_error)?;
        tx.execute(
            &stmt,
            &[
                tool.id.as_uuid(),
                tool.user_id.as_uuid(),
                &tool.name,
                &tool.description,
                &tool.manifest,
                &tool.risk,
                &tool.module_key,
                &tool.module_sha256,
                &tool.created_at,
            ],
        )
        .await
        .map_err(db_error)?;
        audit::append(&tx, entry).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn modules_in_use(&self, sha256s: &[String]) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(IN_USE).await.map_err(db_error)?;
        let rows = client.query(&stmt, &[&sha256s]).await.map_err(db_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn list_tools(&self, user: UserId) -> Result<Vec<UserTool>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM tools WHERE user_id = $1 ORDER BY name");
        let stmt = client.prepare_cached(&sql).await.map_err(db_error)?;
        let rows = client
            .query(&stmt, &[user.as_uuid()])
            .await
            .map_err(db_error)?;
        rows.iter().map(from_row).collect()
    }

    async fn get_tool(&self, user: UserId, id: ToolId) -> Result<Option<UserTool>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM tools WHERE user_id = $1 AND id = $2");
        let stmt = client.prepare_cached(&sql).await.map_err(db_error)?;
        let row = client
            .query_opt(&stmt, &[user.as_uuid(), id.as_uuid()])
            .await
            .map_err(db_error)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn delete_tool(
        &self,
        user: UserId,
        id: ToolId,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let stmt = tx
            .prepare_cached("DELETE FROM tools WHERE user_id = $1 AND id = $2")
            .await
            .map_err(db_error)?;
        let n = tx
            .execute(&stmt, &[user.as_uuid(), id.as_uuid()])
            .await
            .map_err(db_error)?;
        if n > 0 {
            audit::append(&tx, entry).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(n > 0)
    }
}
