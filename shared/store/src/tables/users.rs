use crate::sql::Sql;

/// The row a token's subject maps to, created on first sight.
const ENSURE: Sql = Sql::same(
    "INSERT INTO users (id, subject, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
);

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::{Subject, UserId};
    use bestchat_domain::ports::store::{StoreError, UserStore};
    use bestchat_domain::time::now;

    use crate::postgres::{PgStore, db_error};

    #[async_trait]
    impl UserStore for PgStore {
        async fn ensure_user(&self, id: UserId, subject: &Subject) -> Result<(), StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(ENSURE.postgres())
                .await
                .map_err(db_error)?;
            client
                .execute(&stmt, &[id.as_uuid(), &subject.as_str(), &now()])
                .await
                .map_err(db_error)?;
            Ok(())
        }
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::{Subject, UserId};
    use bestchat_domain::ports::store::{StoreError, UserStore};
    use bestchat_domain::time::{now, to_micros};

    use crate::sqlite::{SqliteStore, db_error};

    #[async_trait]
    impl UserStore for SqliteStore {
        async fn ensure_user(&self, id: UserId, subject: &Subject) -> Result<(), StoreError> {
            let subject = subject.as_str().to_owned();
            self.call(move |conn| {
                conn.prepare_cached(&ENSURE.sqlite())
                    .and_then(|mut stmt| stmt.execute((id.to_string(), subject, to_micros(now()))))
                    .map_err(db_error)?;
                Ok(())
            })
            .await
        }
    }
}
