use crate::sql::Sql;

const GET: Sql = Sql::same(
    "SELECT by_risk, by_tool, max_per_turn, updated_at
    FROM auto_approval_settings WHERE user_id = $1",
);

const PUT: Sql = Sql::same(
    "INSERT INTO auto_approval_settings (user_id, by_risk, by_tool, max_per_turn, updated_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (user_id) DO UPDATE SET by_risk = EXCLUDED.by_risk, by_tool = EXCLUDED.by_tool,
        max_per_turn = EXCLUDED.max_per_turn, updated_at = EXCLUDED.updated_at",
);

const GET_HOSTS: Sql = Sql::same("SELECT hosts FROM fetch_hosts_settings WHERE user_id = $1");

const PUT_HOSTS: Sql = Sql::same(
    "INSERT INTO fetch_hosts_settings (user_id, hosts, updated_at) VALUES ($1, $2, $3)
    ON CONFLICT (user_id) DO UPDATE SET hosts = EXCLUDED.hosts, updated_at = EXCLUDED.updated_at",
);

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::ports::store::{
        AuditEntry, AutoApprovalRecord, SettingsStore, StoreError,
    };
    use bestchat_domain::time::Timestamp;

    use crate::postgres::{PgStore, db_error};
    use crate::tables::audit::postgres as audit;

    #[async_trait]
    impl SettingsStore for PgStore {
        async fn get_fetch_hosts(&self, user: UserId) -> Result<Option<Vec<String>>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(GET_HOSTS.postgres())
                .await
                .map_err(db_error)?;
            let Some(row) = client
                .query_opt(&stmt, &[user.as_uuid()])
                .await
                .map_err(db_error)?
            else {
                return Ok(None);
            };
            let hosts: serde_json::Value = row.try_get(0).map_err(db_error)?;
            serde_json::from_value(hosts)
                .map(Some)
                .map_err(|e| StoreError::Internal(e.to_string()))
        }

        async fn put_fetch_hosts(
            &self,
            user: UserId,
            hosts: &[String],
            at: Timestamp,
            entry: &AuditEntry,
        ) -> Result<(), StoreError> {
            let hosts = serde_json::json!(hosts);
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx
                .prepare_cached(PUT_HOSTS.postgres())
                .await
                .map_err(db_error)?;
            tx.execute(&stmt, &[user.as_uuid(), &hosts, &at])
                .await
                .map_err(db_error)?;
            audit::append(&tx, entry).await?;
            tx.commit().await.map_err(db_error)
        }

        async fn get_auto_approval(
            &self,
            user: UserId,
        ) -> Result<Option<AutoApprovalRecord>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(GET.postgres())
                .await
                .map_err(db_error)?;
            let Some(row) = client
                .query_opt(&stmt, &[user.as_uuid()])
                .await
                .map_err(db_error)?
            else {
                return Ok(None);
            };
            let max: i32 = row.try_get(2).map_err(db_error)?;
            Ok(Some(AutoApprovalRecord {
                user_id: user,
                by_risk: row.try_get(0).map_err(db_error)?,
                by_tool: row.try_get(1).map_err(db_error)?,
                max_per_turn: u32::try_from(max)
                    .map_err(|e| StoreError::Internal(e.to_string()))?,
                updated_at: row.try_get(3).map_err(db_error)?,
            }))
        }

        async fn put_auto_approval(
            &self,
            record: &AutoApprovalRecord,
            entry: &AuditEntry,
        ) -> Result<(), StoreError> {
            let max = i32::try_from(record.max_per_turn)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx.prepare_cached(PUT.postgres()).await.map_err(db_error)?;
            tx.execute(
                &stmt,
                &[
                    record.user_id.as_uuid(),
                    &record.by_risk,
                    &record.by_tool,
                    &max,
                    &record.updated_at,
                ],
            )
            .await
            .map_err(db_error)?;
            audit::append(&tx, entry).await?;
            tx.commit().await.map_err(db_error)
        }
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::ports::store::{
        AuditEntry, AutoApprovalRecord, SettingsStore, StoreError,
    };
    use bestchat_domain::time::{Timestamp, to_micros};
    use rusqlite::{OptionalExtension, params};

    use crate::sqlite::{SqliteStore, db_error, json_at, time_at};
    use crate::tables::audit::sqlite as audit;

    #[async_trait]
    impl SettingsStore for SqliteStore {
        async fn get_fetch_hosts(&self, user: UserId) -> Result<Option<Vec<String>>, StoreError> {
            let hosts = self
                .call(move |conn| {
                    let mut stmt = conn.prepare_cached(&GET_HOSTS.sqlite()).map_err(db_error)?;
                    stmt.query_row(params![user.to_string()], |row| json_at(row, 0))
                        .optional()
                        .map_err(db_error)
                })
                .await?;
            hosts
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| StoreError::Internal(e.to_string()))
        }

        async fn put_fetch_hosts(
            &self,
            user: UserId,
            hosts: &[String],
            at: Timestamp,
            entry: &AuditEntry,
        ) -> Result<(), StoreError> {
            let (hosts, entry) = (serde_json::json!(hosts).to_string(), entry.clone());
            self.call(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                tx.prepare_cached(&PUT_HOSTS.sqlite())
                    .map_err(db_error)?
                    .execute(params![user.to_string(), hosts, to_micros(at)])
                    .map_err(db_error)?;
                audit::append(&tx, &entry)?;
                tx.commit().map_err(db_error)
            })
            .await
        }

        async fn get_auto_approval(
            &self,
            user: UserId,
        ) -> Result<Option<AutoApprovalRecord>, StoreError> {
            self.call(move |conn| {
                let mut stmt = conn.prepare_cached(&GET.sqlite()).map_err(db_error)?;
                stmt.query_row(params![user.to_string()], |row| {
                    Ok(AutoApprovalRecord {
                        user_id: user,
                        by_risk: json_at(row, 0)?,
                        by_tool: json_at(row, 1)?,
                        max_per_turn: row.get(2)?,
                        updated_at: time_at(row, 3)?,
                    })
                })
                .optional()
                .map_err(db_error)
            })
            .await
        }

        async fn put_auto_approval(
            &self,
            record: &AutoApprovalRecord,
            entry: &AuditEntry,
        ) -> Result<(), StoreError> {
            let (record, entry) = (record.clone(), entry.clone());
            self.call(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                tx.prepare_cached(&PUT.sqlite())
                    .map_err(db_error)?
                    .execute(params![
                        record.user_id.to_string(),
                        record.by_risk.to_string(),
                        record.by_tool.to_string(),
                        record.max_per_turn,
                        to_micros(record.updated_at),
                    ])
                    .map_err(db_error)?;
                audit::append(&tx, &entry)?;
                tx.commit().map_err(db_error)
            })
            .await
        }
    }
}
