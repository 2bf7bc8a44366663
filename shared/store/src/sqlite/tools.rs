use async_trait::async_trait;
use bestchat_domain::ids::{ToolId, UserId};
use bestchat_domain::ports::store::{AuditEntry, StoreError, ToolStore};
use bestchat_domain::time::to_micros;
use bestchat_domain::tool::UserTool;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, audit, db_error, has_room, json_at, time_at, uuid_at};

const COLUMNS: &str =
    "id, user_id, name, description, manifest, risk, module_key, module_sha256, created_at";

/// The user's other tools (one of the same name is refused as a conflict anyway).
const COUNT_OTHERS: &str = "SELECT count(*) FROM tools WHERE user_id = ?1 AND name <> ?2";

const IN_USE: &str = "SELECT DISTINCT module_sha256 FROM tools
    WHERE module_sha256 IN (SELECT value FROM json_each(?1))";

fn read_row(row: &Row<'_>) -> rusqlite::Result<UserTool> {
    Ok(UserTool {
        id: ToolId::from_uuid(uuid_at(row, 0)?),
        user_id: UserId::from_uuid(uuid_at(row, 1)?),
        name: row.get(2)?,
        description: row.get(3)?,
        manifest: json_at(row, 4)?,
        risk: row.get(5)?,
        module_key: row.get(6)?,
        module_sha256: row.get(7)?,
        created_at: time_at(row, 8)?,
    })
}

#[async_trait]
impl ToolStore for SqliteStore {
    async fn create_tool(
        &self,
        tool: &UserTool,
        max: usize,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (tool, entry) = (tool.clone(), entry.clone());
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            if !has_room(
                &tx,
                COUNT_OTHERS,
                &tool.user_id.to_string(),
                &tool.name,
                max,
            )? {
                return Ok(false);
            }
            let sql = format!(
                "INSERT INTO tools ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            );
            tx.prepare_cached(&sql)
                .map_err(db_error)?
                .execute(params![
                    tool.id.to_string(),
                    tool.user_id.to_string(),
                    tool.name,
                    tool.description,
                    tool.manifest.to_string(),
                    tool.risk,
                    tool.module_key,
                    tool.module_sha256,
                    to_micros(tool.created_at),
                ])
                .map_err(db_error)?;
            audit::append(&tx, &entry)?;
            tx.commit().map_err(db_error)?;
            Ok(true)
        })
        .await
    }

    async fn modules_in_use(&self, sha256s: &[String]) -> Result<Vec<String>, StoreError> {
        let wanted =
            serde_json::to_string(sha256s).map_err(|e| StoreError::Internal(e.to_string()))?;
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(IN_USE).map_err(db_error)?;
            let rows = stmt
                .query_map([wanted], |row| row.get(0))
                .map_err(db_error)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(db_error)
        })
        .await
    }

    async fn list_tools(&self, user: UserId) -> Result<Vec<UserTool>, StoreError> {
        self.call(move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM tools WHERE user_id = ?1 ORDER BY name");
            let mut stmt = conn.prepare_cached(&sql).map_err(db_error)?;
            stmt.query_map(params![user.to_string()], read_row)
                .and_then(Iterator::collect)
                .map_err(db_error)
        })
        .await
    }

    async fn get_tool(&self, user: UserId, id: ToolId) -> Result<Option<UserTool>, StoreError> {
        self.call(move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM tools WHERE user_id = ?1 AND id = ?2");
            let mut stmt = conn.prepare_cached(&sql).map_err(db_error)?;
            stmt.query_row(params![user.to_string(), id.to_string()], read_row)
                .optional()
                .map_err(db_error)
        })
        .await
    }

    async fn delete_tool(
        &self,
        user: UserId,
        id: ToolId,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let entry = entry.clone();
        self.call(move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            let n = tx
                .prepare_cached("DELETE FROM tools WHERE user_id = ?1 AND id = ?2")
                .map_err(db_error)?
                .execute(params![user.to_string(), id.to_string()])
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
