use crate::sql::Sql;

macro_rules! columns {
    () => {
        "id, user_id, title, provider, model, system_prompt, settings, created_at, updated_at"
    };
}

const INSERT: Sql = Sql::same(
    "INSERT INTO conversations
    (id, user_id, title, provider, model, system_prompt, settings, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
);

const GET: Sql = Sql::same(concat!(
    "SELECT ",
    columns!(),
    " FROM conversations WHERE id = $1 AND user_id = $2"
));

const LIST_FIRST: Sql = Sql::differs(
    concat!(
    "SELECT ",
    columns!(),
    " FROM conversations WHERE user_id = $1 AND ($3::text IS NULL OR strpos(lower(title), lower($3)) > 0)
      ORDER BY updated_at DESC, id DESC LIMIT $2"
),
    concat!(
    "SELECT ",
    columns!(),
    " FROM conversations WHERE user_id = ?1 AND (?3 IS NULL OR instr(lower(title), lower(?3)) > 0)
      ORDER BY updated_at DESC, id DESC LIMIT ?2"
),
);

const LIST_AFTER: Sql = Sql::differs(
    concat!(
    "SELECT ",
    columns!(),
    " FROM conversations WHERE user_id = $1 AND (updated_at, id) < ($2, $3) AND ($5::text IS NULL OR strpos(lower(title), lower($5)) > 0)
      ORDER BY updated_at DESC, id DESC LIMIT $4"
),
    concat!(
    "SELECT ",
    columns!(),
    " FROM conversations WHERE user_id = ?1 AND (updated_at, id) < (?2, ?3) AND (?5 IS NULL OR instr(lower(title), lower(?5)) > 0)
      ORDER BY updated_at DESC, id DESC LIMIT ?4"
),
);

const UPDATE: Sql = Sql::same(concat!(
    "UPDATE conversations SET
        title = COALESCE($3, title),
        provider = COALESCE($4, provider),
        model = COALESCE($5, model),
        system_prompt = CASE WHEN $6 THEN $7 ELSE system_prompt END,
        settings = COALESCE($8, settings),
        updated_at = $9
     WHERE id = $1 AND user_id = $2 RETURNING ",
    columns!()
));

const DELETE: Sql = Sql::same("DELETE FROM conversations WHERE id = $1 AND user_id = $2");

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::conversation::{Conversation, ConversationPatch};
    use bestchat_domain::ids::{ConversationId, UserId};
    use bestchat_domain::model_ref::{ModelId, ProviderId};
    use bestchat_domain::page::{Page, PageRequest};
    use bestchat_domain::ports::store::{AuditEntry, ConversationStore, StoreError};
    use bestchat_domain::time::Timestamp;
    use tokio_postgres::Row;

    use crate::postgres::{PgStore, db_error, sql_limit};
    use crate::records::{ConversationRow, settings_json};
    use crate::tables::audit::postgres as audit;

    fn from_row(row: &Row) -> Result<Conversation, StoreError> {
        ConversationRow {
            id: row.try_get(0).map_err(db_error)?,
            user_id: row.try_get(1).map_err(db_error)?,
            title: row.try_get(2).map_err(db_error)?,
            provider: row.try_get(3).map_err(db_error)?,
            model: row.try_get(4).map_err(db_error)?,
            system_prompt: row.try_get(5).map_err(db_error)?,
            settings: row.try_get(6).map_err(db_error)?,
            created_at: row.try_get(7).map_err(db_error)?,
            updated_at: row.try_get(8).map_err(db_error)?,
        }
        .into_domain()
    }

    #[async_trait]
    impl ConversationStore for PgStore {
        async fn create_conversation(&self, c: &Conversation) -> Result<(), StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(INSERT.postgres())
                .await
                .map_err(db_error)?;
            client
                .execute(
                    &stmt,
                    &[
                        c.id.as_uuid(),
                        c.user_id.as_uuid(),
                        &c.title,
                        &c.provider.as_str(),
                        &c.model.as_str(),
                        &c.system_prompt,
                        &settings_json(&c.settings)?,
                        &c.created_at,
                        &c.updated_at,
                    ],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        }

        async fn get_conversation(
            &self,
            user: UserId,
            id: ConversationId,
        ) -> Result<Option<Conversation>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(GET.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_opt(&stmt, &[id.as_uuid(), user.as_uuid()])
                .await
                .map_err(db_error)?;
            row.as_ref().map(from_row).transpose()
        }

        async fn list_conversations(
            &self,
            user: UserId,
            title: Option<&str>,
            page: &PageRequest,
        ) -> Result<Page<Conversation>, StoreError> {
            let client = self.client().await?;
            let limit = sql_limit(page.fetch_limit());
            let rows = match &page.after {
                None => {
                    let stmt = client
                        .prepare_cached(LIST_FIRST.postgres())
                        .await
                        .map_err(db_error)?;
                    client.query(&stmt, &[user.as_uuid(), &limit, &title]).await
                }
                Some(after) => {
                    let stmt = client
                        .prepare_cached(LIST_AFTER.postgres())
                        .await
                        .map_err(db_error)?;
                    client
                        .query(
                            &stmt,
                            &[user.as_uuid(), &after.at, &after.id, &limit, &title],
                        )
                        .await
                }
            }
            .map_err(db_error)?;
            let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_rows(items, page, Conversation::cursor_key))
        }

        async fn update_conversation(
            &self,
            user: UserId,
            id: ConversationId,
            patch: &ConversationPatch,
            now: Timestamp,
        ) -> Result<Option<Conversation>, StoreError> {
            if patch.is_empty() {
                return self.get_conversation(user, id).await;
            }
            let settings = patch.settings.as_ref().map(settings_json).transpose()?;
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(UPDATE.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_opt(
                    &stmt,
                    &[
                        id.as_uuid(),
                        user.as_uuid(),
                        &patch.title,
                        &patch.provider.as_ref().map(ProviderId::as_str),
                        &patch.model.as_ref().map(ModelId::as_str),
                        &patch.system_prompt.is_some(),
                        &patch.system_prompt.clone().flatten(),
                        &settings,
                        &now,
                    ],
                )
                .await
                .map_err(db_error)?;
            row.as_ref().map(from_row).transpose()
        }

        async fn delete_conversation(
            &self,
            user: UserId,
            id: ConversationId,
            entry: &AuditEntry,
        ) -> Result<bool, StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx
                .prepare_cached(DELETE.postgres())
                .await
                .map_err(db_error)?;
            let n = tx
                .execute(&stmt, &[id.as_uuid(), user.as_uuid()])
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
    use bestchat_domain::conversation::{Conversation, ConversationPatch};
    use bestchat_domain::ids::{ConversationId, UserId};
    use bestchat_domain::model_ref::{ModelId, ProviderId};
    use bestchat_domain::page::{Page, PageRequest};
    use bestchat_domain::ports::store::{AuditEntry, ConversationStore, StoreError};
    use bestchat_domain::time::{Timestamp, to_micros};
    use rusqlite::{OptionalExtension, Row, params};

    use crate::records::{ConversationRow, settings_json};
    use crate::sqlite::{SqliteStore, db_error, json_at, sql_limit, time_at, uuid_at};
    use crate::tables::audit::sqlite as audit;

    fn read_row(row: &Row<'_>) -> rusqlite::Result<ConversationRow> {
        Ok(ConversationRow {
            id: uuid_at(row, 0)?,
            user_id: uuid_at(row, 1)?,
            title: row.get(2)?,
            provider: row.get(3)?,
            model: row.get(4)?,
            system_prompt: row.get(5)?,
            settings: json_at(row, 6)?,
            created_at: time_at(row, 7)?,
            updated_at: time_at(row, 8)?,
        })
    }

    #[async_trait]
    impl ConversationStore for SqliteStore {
        async fn create_conversation(&self, c: &Conversation) -> Result<(), StoreError> {
            let settings = settings_json(&c.settings)?.to_string();
            let c = c.clone();
            self.call(move |conn| {
                let mut stmt = conn.prepare_cached(&INSERT.sqlite()).map_err(db_error)?;
                stmt.execute(params![
                    c.id.to_string(),
                    c.user_id.to_string(),
                    c.title,
                    c.provider.as_str(),
                    c.model.as_str(),
                    c.system_prompt,
                    settings,
                    to_micros(c.created_at),
                    to_micros(c.updated_at),
                ])
                .map_err(db_error)?;
                Ok(())
            })
            .await
        }

        async fn get_conversation(
            &self,
            user: UserId,
            id: ConversationId,
        ) -> Result<Option<Conversation>, StoreError> {
            self.call(move |conn| {
                let mut stmt = conn.prepare_cached(&GET.sqlite()).map_err(db_error)?;
                stmt.query_row(params![id.to_string(), user.to_string()], read_row)
                    .optional()
                    .map_err(db_error)?
                    .map(ConversationRow::into_domain)
                    .transpose()
            })
            .await
        }

        async fn list_conversations(
            &self,
            user: UserId,
            title: Option<&str>,
            page: &PageRequest,
        ) -> Result<Page<Conversation>, StoreError> {
            let page = *page;
            let title = title.map(str::to_owned);
            self.call(move |conn| {
                let limit = sql_limit(page.fetch_limit());
                let rows = match page.after {
                    None => {
                        let mut stmt = conn
                            .prepare_cached(&LIST_FIRST.sqlite())
                            .map_err(db_error)?;
                        stmt.query_map(params![user.to_string(), limit, title], read_row)
                            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    }
                    Some(after) => {
                        let mut stmt = conn
                            .prepare_cached(&LIST_AFTER.sqlite())
                            .map_err(db_error)?;
                        stmt.query_map(
                            params![
                                user.to_string(),
                                to_micros(after.at),
                                after.id.to_string(),
                                limit,
                                title
                            ],
                            read_row,
                        )
                        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    }
                }
                .map_err(db_error)?;
                let items = rows
                    .into_iter()
                    .map(ConversationRow::into_domain)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_rows(items, &page, Conversation::cursor_key))
            })
            .await
        }

        async fn update_conversation(
            &self,
            user: UserId,
            id: ConversationId,
            patch: &ConversationPatch,
            now: Timestamp,
        ) -> Result<Option<Conversation>, StoreError> {
            if patch.is_empty() {
                return self.get_conversation(user, id).await;
            }
            let settings = patch
                .settings
                .as_ref()
                .map(settings_json)
                .transpose()?
                .map(|v| v.to_string());
            let patch = patch.clone();
            self.call(move |conn| {
                let mut stmt = conn.prepare_cached(&UPDATE.sqlite()).map_err(db_error)?;
                stmt.query_row(
                    params![
                        id.to_string(),
                        user.to_string(),
                        patch.title,
                        patch.provider.as_ref().map(ProviderId::as_str),
                        patch.model.as_ref().map(ModelId::as_str),
                        patch.system_prompt.is_some(),
                        patch.system_prompt.clone().flatten(),
                        settings,
                        to_micros(now),
                    ],
                    read_row,
                )
                .optional()
                .map_err(db_error)?
                .map(ConversationRow::into_domain)
                .transpose()
            })
            .await
        }

        async fn delete_conversation(
            &self,
            user: UserId,
            id: ConversationId,
            entry: &AuditEntry,
        ) -> Result<bool, StoreError> {
            let entry = entry.clone();
            self.call(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                let n = tx
                    .prepare_cached(&DELETE.sqlite())
                    .map_err(db_error)?
                    .execute(params![id.to_string(), user.to_string()])
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
