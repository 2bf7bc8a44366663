use async_trait::async_trait;
use bestchat_domain::ids::{Subject, UserId};
use bestchat_domain::ports::store::{StoreError, UserStore};

use super::{PgStore, db_error};

#[async_trait]
impl UserStore for PgStore {
    async fn ensure_user(&self, id: UserId, subject: &Subject) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO users (id, subject) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            )
            .await
            .map_err(db_error)?;
        client
            .execute(&stmt, &[id.as_uuid(), &subject.as_str()])
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
