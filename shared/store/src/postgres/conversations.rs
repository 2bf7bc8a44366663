use async_trait::async_trait;
use bestchat_domain::conversation::{Conversation, ConversationPatch};
use bestchat_domain::ids::{ConversationId, UserId};
use bestchat_domain::model_ref::{ModelId, ProviderId};
use bestchat_domain::page::{Page, PageRequest};
use bestchat_domain::ports::store::{AuditEntry, ConversationStore, StoreError};
use bestchat_domain::time::Timestamp;
use tokio_postgres::Row;

use super::{PgStore, audit, db_error, sql_limit};
use crate::records::{ConversationRow, settings_json};

macro_rules! columns {
    () => {
        "id, user_id, title, provider, model, system_prompt, settings, created_at, updated_at"
    };
}

const INSERT: &str = "INSERT INTO conversations
    (id, user_id, title, provider, model, system_prompt, settings, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM conversations WHERE id = $1 AND user_id = $2"
);
const LIST_FIRST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM conversations WHERE user_id = $1 AND ($3::text IS NULL OR strpos(lower(title), lower($3)) > 0)
      ORDER BY updated_at DESC, id DESC LIMIT $2"
);
const LIST_AFTER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM conversations WHERE user_id = $1 AND (updated_at, id) < ($2, $3) AND ($5::text IS NULL OR strpos(lower(title), lower($5)) > 0)
      ORDER BY updated_at DESC, id DESC LIMIT $4"
);
const UPDATE: &str = concat!(
    "UPDATE conversations SET
        title = COALESCE($3, title),
        provider = COALESCE($4, provider),
        model = COALESCE($5, model),
        system_prompt = CASE WHEN $6 THEN $7 ELSE system_prompt END,
        settings = COALESCE($8, settings),
        updated_at = $9
     WHERE id = $1 AND user_id = $2 RETURNING ",
    columns!()
);
const DELETE: &str = "DELETE FROM conversations WHERE id = $1 AND user_id = $2";

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
        let stmt = client.prepare_cached(INSERT).await.map_err(db_error)?;
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
        let stmt = client.prepare_cached(GET).await.map_err(db_error)?;
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
                let stmt = client.prepare_cached(LIST_FIRST).await.map_err(db_error)?;
                client.query(&stmt, &[user.as_uuid(), &limit, &title]).await
            }
            Some(after) => {
                let stmt = client.prepare_cached(LIST_AFTER).await.map_err(db_error)?;
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
        let stmt = client.prepare_cached(UPDATE).await.map_err(db_error)?;
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
        let stmt = tx.prepare_cached(DELETE).await.map_err(db_error)?;
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
