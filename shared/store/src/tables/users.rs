use crate::sql::Sql;

/// The row a token's subject maps to, created on first sight; its roles follow the token.
const ENSURE: Sql = Sql::same(
    "INSERT INTO users (id, subject, created_at, roles) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO UPDATE SET roles = EXCLUDED.roles
    WHERE users.roles IS DISTINCT FROM EXCLUDED.roles",
);

const ROLES: Sql = Sql::same("SELECT roles FROM users WHERE id = $1");

fn roles_of(value: serde_json::Value) -> Vec<String> {
    serde_json::from_value(value).unwrap_or_default()
}

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::{Subject, UserId};
    use bestchat_domain::ports::store::{StoreError, UserStore};
    use bestchat_domain::time::now;

    use crate::postgres::{PgStore, db_error};

    #[async_trait]
    impl UserStore for PgStore {
        async fn ensure_user(
            &self,
            id: UserId,
            subject: &Subject,
            roles: &[String],
        ) -> Result<(), StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(ENSURE.postgres())
                .await
                .map_err(db_error)?;
            client
                .execute(
                    &stmt,
                    &[
                        id.as_uuid(),
                        &subject.as_str(),
                        &now(),
                        &serde_json::json!(roles),
                    ],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        }

        async fn roles(&self, id: UserId) -> Result<Option<Vec<String>>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(ROLES.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_opt(&stmt, &[id.as_uuid()])
                .await
                .map_err(db_error)?;
            row.map(|r| r.try_get(0).map(roles_of))
                .transpose()
                .map_err(db_error)
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
    use rusqlite::OptionalExtension;

    use crate::sqlite::{SqliteStore, db_error, json_at};

    #[async_trait]
    impl UserStore for SqliteStore {
        async fn ensure_user(
            &self,
            id: UserId,
            subject: &Subject,
            roles: &[String],
        ) -> Result<(), StoreError> {
            let subject = subject.as_str().to_owned();
            let roles = serde_json::json!(roles).to_string();
            self.call(move |conn| {
                conn.prepare_cached(&ENSURE.sqlite())
                    .and_then(|mut stmt| {
                        stmt.execute((id.to_string(), subject, to_micros(now()), roles))
                    })
                    .map_err(db_error)?;
                Ok(())
            })
            .await
        }

        async fn roles(&self, id: UserId) -> Result<Option<Vec<String>>, StoreError> {
            self.call(move |conn| {
                conn.prepare_cached(&ROLES.sqlite())
                    .and_then(|mut stmt| {
                        stmt.query_row([id.to_string()], |row| json_at(row, 0))
                            .optional()
                    })
                    .map(|v| v.map(roles_of))
                    .map_err(db_error)
            })
            .await
        }
    }
}
