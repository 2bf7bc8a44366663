use async_trait::async_trait;
use bestchat_domain::ids::UserId;
use bestchat_domain::model_ref::ProviderId;
use bestchat_domain::ports::store::{AuditEntry, ProviderConfigStore, StoreError};
use bestchat_domain::provider::ProviderConfig;
use bestchat_domain::time::to_micros;
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, audit, db_error, json_at, time_at, uuid_at};
use crate::records::ProviderConfigRow;

macro_rules! columns {
    () => {
        "user_id, provider, protocol, base_url, enabled, default_model, models, key_ciphertext,
         key_nonce, wrapped_data_key, key_vault_id, key_last4, created_at, updated_at, summary_model"
    };
}

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM provider_configs WHERE user_id = ?1 ORDER BY provider"
);
const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM provider_configs WHERE user_id = ?1 AND provider = ?2"
);
const PUT: &str = concat!(
    "INSERT INTO provider_configs (",
    columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
     ON CONFLICT (user_id, provider) DO UPDATE SET
        protocol = excluded.protocol, base_url = excluded.base_url,
        enabled = excluded.enabled, default_model = excluded.default_model,
        models = excluded.models, key_ciphertext = excluded.key_ciphertext,
        key_nonce = excluded.key_nonce, wrapped_data_key = excluded.wrapped_data_key,
        key_vault_id = excluded.key_vault_id, key_last4 = excluded.key_last4,
        updated_at = excluded.updated_at, summary_model = excluded.summary_model"
);
const DELETE: &str = "DELETE FROM provider_configs WHERE user_id = ?1 AND provider = ?2";

fn read_row(row: &Row<'_>) -> rusqlite::Result<ProviderConfigRow> {
    Ok(ProviderConfigRow {
        user_id: uuid_at(row, 0)?,
        provider: row.get(1)?,
        protocol: row.get(2)?,
        base_url: row.get(3)?,
        enabled: row.get(4)?,
        default_model: row.get(5)?,
        models: json_at(row, 6)?,
        key_ciphertext: row.get(7)?,
        key_nonce: row.get(8)?,
        wrapped_data_key: row.get(9)?,
        key_vault_id: row.get(10)?,
        key_last4: row.get(11)?,
        created_at: time_at(row, 12)?,
        updated_at: time_at(row, 13)?,
        summary_model: row.get(14)?,
    })
}

#[async_trait]
impl ProviderConfigStore for SqliteStore {
    async fn list_provider_configs(&self, user: UserId) -> Result<Vec<ProviderConfig>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(LIST).map_err(db_error)?;
            let rows = stmt
                .query_map(params![user.to_string()], read_row)
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(db_error)?;
            rows.into_iter()
                .map(ProviderConfigRow::into_domain)
                .collect()
        })
        .await
    }

    async fn get_provider_config(
        &self,
        user: UserId,
        provider: &ProviderId,
    ) -> Result<Option<ProviderConfig>, StoreError> {
        let provider = provider.as_str().to_owned();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(GET).map_err(db_error)?;
            stmt.query_row(params![user.to_string(), provider], read_row)
                .optional()
                .map_err(db_error)?
                .map(ProviderConfigRow::into_domain)
                .transpose()
        })
        .await
    }

    async fn put_provider_config(
        &self,
        config: &ProviderConfig,
        entry: &AuditEntry,
    ) -> Result<(), StoreError> {
        let r = ProviderConfigRow::from_domain(config)?;
        let entry = entry.clone();
        self.call(move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            tx.prepare_cached(PUT)
                .map_err(db_error)?
                .execute(params![
                    r.user_id.to_string(),
                    r.provider,
                    r.protocol,
                    r.base_url,
                    r.enabled,
                    r.default_model,
                    r.models.to_string(),
                    r.key_ciphertext,
                    r.key_nonce,
                    r.wrapped_data_key,
                    r.key_vault_id,
                    r.key_last4,
                    to_micros(r.created_at),
                    to_micros(r.updated_at),
                    r.summary_model,
                ])
                .map_err(db_error)?;
            audit::append(&tx, &entry)?;
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn delete_provider_config(
        &self,
        user: UserId,
        provider: &ProviderId,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let provider = provider.as_str().to_owned();
        let entry = entry.clone();
        self.call(move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            let n = tx
                .prepare_cached(DELETE)
                .map_err(db_error)?
                .execute(params![user.to_string(), provider])
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
