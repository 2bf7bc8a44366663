use crate::sql::Sql;

macro_rules! columns {
    () => {
        "user_id, provider, protocol, base_url, enabled, default_model, models, key_ciphertext,
         key_nonce, wrapped_data_key, key_vault_id, key_last4, created_at, updated_at, summary_model"
    };
}

const LIST: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM provider_configs WHERE user_id = $1 ORDER BY provider"
));

const GET: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM provider_configs WHERE user_id = $1 AND provider = $2"
));

const PUT: Sql = Sql::same(concat!(
    "INSERT INTO provider_configs (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     ON CONFLICT (user_id, provider) DO UPDATE SET
        protocol = EXCLUDED.protocol, base_url = EXCLUDED.base_url,
        enabled = EXCLUDED.enabled, default_model = EXCLUDED.default_model,
        models = EXCLUDED.models, key_ciphertext = EXCLUDED.key_ciphertext,
        key_nonce = EXCLUDED.key_nonce, wrapped_data_key = EXCLUDED.wrapped_data_key,
        key_vault_id = EXCLUDED.key_vault_id, key_last4 = EXCLUDED.key_last4,
        updated_at = EXCLUDED.updated_at, summary_model = EXCLUDED.summary_model"
));

const DELETE: Sql = Sql::same("DELETE FROM provider_configs WHERE user_id = $1 AND provider = $2");

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::model_ref::ProviderId;
    use bestchat_domain::ports::store::{AuditEntry, ProviderConfigStore, StoreError};
    use bestchat_domain::provider::ProviderConfig;
    use tokio_postgres::Row;

    use crate::postgres::{PgStore, db_error};
    use crate::records::ProviderConfigRow;
    use crate::tables::audit::postgres as audit;

    fn from_row(row: &Row) -> Result<ProviderConfig, StoreError> {
        ProviderConfigRow {
            user_id: row.try_get(0).map_err(db_error)?,
            provider: row.try_get(1).map_err(db_error)?,
            protocol: row.try_get(2).map_err(db_error)?,
            base_url: row.try_get(3).map_err(db_error)?,
            enabled: row.try_get(4).map_err(db_error)?,
            default_model: row.try_get(5).map_err(db_error)?,
            models: row.try_get(6).map_err(db_error)?,
            key_ciphertext: row.try_get(7).map_err(db_error)?,
            key_nonce: row.try_get(8).map_err(db_error)?,
            wrapped_data_key: row.try_get(9).map_err(db_error)?,
            key_vault_id: row.try_get(10).map_err(db_error)?,
            key_last4: row.try_get(11).map_err(db_error)?,
            created_at: row.try_get(12).map_err(db_error)?,
            updated_at: row.try_get(13).map_err(db_error)?,
            summary_model: row.try_get(14).map_err(db_error)?,
        }
        .into_domain()
    }

    #[async_trait]
    impl ProviderConfigStore for PgStore {
        async fn list_provider_configs(
            &self,
            user: UserId,
        ) -> Result<Vec<ProviderConfig>, StoreError> {
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

        async fn get_provider_config(
            &self,
            user: UserId,
            provider: &ProviderId,
        ) -> Result<Option<ProviderConfig>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(GET.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_opt(&stmt, &[user.as_uuid(), &provider.as_str()])
                .await
                .map_err(db_error)?;
            row.as_ref().map(from_row).transpose()
        }

        async fn put_provider_config(
            &self,
            config: &ProviderConfig,
            entry: &AuditEntry,
        ) -> Result<(), StoreError> {
            let r = ProviderConfigRow::from_domain(config)?;
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx.prepare_cached(PUT.postgres()).await.map_err(db_error)?;
            tx.execute(
                &stmt,
                &[
                    &r.user_id,
                    &r.provider,
                    &r.protocol,
                    &r.base_url,
                    &r.enabled,
                    &r.default_model,
                    &r.models,
                    &r.key_ciphertext,
                    &r.key_nonce,
                    &r.wrapped_data_key,
                    &r.key_vault_id,
                    &r.key_last4,
                    &r.created_at,
                    &r.updated_at,
                    &r.summary_model,
                ],
            )
            .await
            .map_err(db_error)?;
            audit::append(&tx, entry).await?;
            tx.commit().await.map_err(db_error)
        }

        async fn delete_provider_config(
            &self,
            user: UserId,
            provider: &ProviderId,
            entry: &AuditEntry,
        ) -> Result<bool, StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx
                .prepare_cached(DELETE.postgres())
                .await
                .map_err(db_error)?;
            let n = tx
                .execute(&stmt, &[user.as_uuid(), &provider.as_str()])
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
    use bestchat_domain::model_ref::ProviderId;
    use bestchat_domain::ports::store::{AuditEntry, ProviderConfigStore, StoreError};
    use bestchat_domain::provider::ProviderConfig;
    use bestchat_domain::time::to_micros;
    use rusqlite::{OptionalExtension, Row, params};

    use crate::records::ProviderConfigRow;
    use crate::sqlite::{SqliteStore, db_error, json_at, time_at, uuid_at};
    use crate::tables::audit::sqlite as audit;

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
        async fn list_provider_configs(
            &self,
            user: UserId,
        ) -> Result<Vec<ProviderConfig>, StoreError> {
            self.call(move |conn| {
                let mut stmt = conn.prepare_cached(&LIST.sqlite()).map_err(db_error)?;
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
                let mut stmt = conn.prepare_cached(&GET.sqlite()).map_err(db_error)?;
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
                tx.prepare_cached(&PUT.sqlite())
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
                    .prepare_cached(&DELETE.sqlite())
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
}
