use async_trait::async_trait;
use bestchat_domain::ids::UserId;
use bestchat_domain::ports::store::{AuditEntry, AutoApprovalRecord, SettingsStore, StoreError};
use bestchat_domain::time::{Timestamp, to_micros};
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, audit, db_error, json_at, time_at};

const GET: &str = "SELECT by_risk, by_tool, max_per_turn, updated_at
    FROM auto_approval_settings WHERE user_id = ?1";
const PUT: &str =
    "INSERT INTO auto_approval_settings (user_id, by_risk, by_tool, max_per_turn, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (user_id) DO UPDATE SET by_risk = excluded.by_risk, by_tool = excluded.by_tool,
        max_per_turn = excluded.max_per_turn, updated_at = excluded.updated_at";

const GET_HOSTS: &str = "SELECT hosts FROM fetch_hosts_settings WHERE user_id = ?1";
const PUT_HOSTS: &str =
    "INSERT INTO fetch_hosts_settings (user_id, hosts, updated_at) VALUES (?1, ?2, ?3)
    ON CONFLICT (user_id) DO UPDATE SET hosts = excluded.hosts, updated_at = excluded.updated_at";

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn get_fetch_hosts(&self, user: UserId) -> Result<Option<Vec<String>>, StoreError> {
        let hosts = self
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(GET_HOSTS).map_err(db_error)?;
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
            tx.prepare_cached(PUT_HOSTS)
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
            let mut stmt = conn.prepare_cached(GET).map_err(db_error)?;
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
            tx.prepare_cached(PUT)
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
