use async_trait::async_trait;
use bestchat_domain::ids::{Subject, UserId};
use bestchat_domain::ports::store::{StoreError, UserStore};
use bestchat_domain::time::{now, to_micros};

use super::{SqliteStore, db_error};

#[async_trait]
impl UserStore for SqliteStore {
    async fn ensure_user(&self, id: UserId, subject: &Subject) -> Result<(), StoreError> {
        let subject = subject.as_str().to_owned();
        self.call(move |conn| {
            conn.prepare_cached(
                "INSERT INTO users (id, subject, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut stmt| stmt.execute((id.to_string(), subject, to_micros(now()))))
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }
}
