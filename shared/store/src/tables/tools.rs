use crate::sql::Sql;

macro_rules! columns {
    () => {
        "id, user_id, name, description, manifest, risk, module_key, module_sha256, created_at"
    };
}

const INSERT: Sql = Sql::same(concat!(
    "INSERT INTO tools (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
));
const LIST: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM tools WHERE user_id = $1 ORDER BY name"
));
const GET: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM tools WHERE user_id = $1 AND id = $2"
));
const DELETE: Sql = Sql::same("DELETE FROM tools WHERE user_id = $1 AND id = $2");

/// The user's other tools (one of the same name is refused as a conflict anyway).
const COUNT_OTHERS: Sql = Sql::same("SELECT count(*) FROM tools WHERE user_id = $1 AND name <> $2");

const IN_USE: Sql = Sql::differs(
    "SELECT DISTINCT module_sha256 FROM tools WHERE module_sha256 = ANY($1)",
    "SELECT DISTINCT module_sha256 FROM tools
    WHERE module_sha256 IN (SELECT value FROM json_each(?1))",
);

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::{ToolId, UserId};
    use bestchat_domain::ports::store::{AuditEntry, StoreError, ToolStore};
    use bestchat_domain::tool::UserTool;
    use tokio_postgres::Row;

    use crate::postgres::{PgStore, db_error, has_room};
    use crate::tables::audit::postgres as audit;

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
            if !has_room(
                &tx,
                tool.user_id.as_uuid(),
                COUNT_OTHERS.postgres(),
                &tool.name,
                max,
            )
            .await?
            {
                return Ok(false);
            }
            let stmt = tx
                .prepare_cached(INSERT.postgres())
                .await
                .map_err(db_error)?;
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
            let stmt = client
                .prepare_cached(IN_USE.postgres())
                .await
                .map_err(db_error)?;
            let rows = client.query(&stmt, &[&sha256s]).await.map_err(db_error)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        }

        async fn list_tools(&self, user: UserId) -> Result<Vec<UserTool>, StoreError> {
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

        async fn get_tool(&self, user: UserId, id: ToolId) -> Result<Option<UserTool>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(GET.postgres())
                .await
                .map_err(db_error)?;
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
                .prepare_cached(DELETE.postgres())
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
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::{ToolId, UserId};
    use bestchat_domain::ports::store::{AuditEntry, StoreError, ToolStore};
    use bestchat_domain::time::to_micros;
    use bestchat_domain::tool::UserTool;
    use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

    use crate::sqlite::{SqliteStore, db_error, has_room, json_at, time_at, uuid_at};
    use crate::tables::audit::sqlite as audit;

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
                    &COUNT_OTHERS.sqlite(),
                    &tool.user_id.to_string(),
                    &tool.name,
                    max,
                )? {
                    return Ok(false);
                }
                tx.prepare_cached(&INSERT.sqlite())
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
                let mut stmt = conn.prepare_cached(&IN_USE.sqlite()).map_err(db_error)?;
                let rows = stmt
                    .query_map([wanted], |row| row.get(0))
                    .map_err(db_error)?;
                rows.collect::<Result<Vec<String>, _>>().map_err(db_error)
            })
            .await
        }

        async fn list_tools(&self, user: UserId) -> Result<Vec<UserTool>, StoreError> {
            self.call(move |conn| {
                let mut stmt = conn.prepare_cached(&LIST.sqlite()).map_err(db_error)?;
                stmt.query_map(params![user.to_string()], read_row)
                    .and_then(Iterator::collect)
                    .map_err(db_error)
            })
            .await
        }

        async fn get_tool(&self, user: UserId, id: ToolId) -> Result<Option<UserTool>, StoreError> {
            self.call(move |conn| {
                let mut stmt = conn.prepare_cached(&GET.sqlite()).map_err(db_error)?;
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
                    .prepare_cached(&DELETE.sqlite())
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
}
