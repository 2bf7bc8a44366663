//! Prepaid credit: payments (one per Stripe Checkout Session) and the Stripe events handled.

use bestchat_domain::ports::store::PaymentStatus;

use crate::sql::Sql;

const ADD: Sql = Sql::same(
    "INSERT INTO payments (id, user_id, amount_micros, status, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $5)",
);

const LIST: Sql = Sql::same(
    "SELECT id, user_id, amount_micros, status, created_at FROM payments
    WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2",
);

const CREDITS: Sql = Sql::same(
    "SELECT CAST(COALESCE(SUM(amount_micros), 0) AS bigint), MIN(created_at) FROM payments
    WHERE user_id = $1 AND status = 'paid'",
);

/// Only a pending payment turns paid, so a second delivery of its event changes nothing.
const MARK_PAID: Sql = Sql::same(
    "UPDATE payments SET status = 'paid', updated_at = $2 WHERE id = $1 AND status = 'pending'
    RETURNING id, user_id, amount_micros, status, created_at",
);

const RECORD_EVENT: Sql = Sql::same(
    "INSERT INTO stripe_events (id, type, received_at) VALUES ($1, $2, $3)
    ON CONFLICT (id) DO NOTHING",
);

fn status(raw: &str) -> PaymentStatus {
    PaymentStatus::parse(raw).unwrap_or(PaymentStatus::Pending)
}

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::ports::store::{BillingStore, Credits, Payment, StoreError};
    use bestchat_domain::time::Timestamp;

    use crate::postgres::{PgStore, db_error};

    fn payment(row: &tokio_postgres::Row) -> Result<Payment, StoreError> {
        let user: uuid::Uuid = row.try_get(1).map_err(db_error)?;
        let raw: String = row.try_get(3).map_err(db_error)?;
        Ok(Payment {
            id: row.try_get(0).map_err(db_error)?,
            user_id: UserId::from_uuid(user),
            amount_micros: row.try_get(2).map_err(db_error)?,
            status: status(&raw),
            created_at: row.try_get(4).map_err(db_error)?,
        })
    }

    #[async_trait]
    impl BillingStore for PgStore {
        async fn add_payment(&self, p: &Payment) -> Result<(), StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(ADD.postgres())
                .await
                .map_err(db_error)?;
            client
                .execute(
                    &stmt,
                    &[
                        &p.id,
                        p.user_id.as_uuid(),
                        &p.amount_micros,
                        &p.status.as_str(),
                        &p.created_at,
                    ],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        }

        async fn payments(&self, user: UserId, limit: u32) -> Result<Vec<Payment>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(LIST.postgres())
                .await
                .map_err(db_error)?;
            client
                .query(&stmt, &[user.as_uuid(), &i64::from(limit)])
                .await
                .map_err(db_error)?
                .iter()
                .map(payment)
                .collect()
        }

        async fn credits(&self, user: UserId) -> Result<Credits, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(CREDITS.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_one(&stmt, &[user.as_uuid()])
                .await
                .map_err(db_error)?;
            Ok(Credits {
                total_micros: row.try_get(0).map_err(db_error)?,
                since: row.try_get(1).map_err(db_error)?,
            })
        }

        async fn mark_paid(&self, id: &str, at: Timestamp) -> Result<Option<Payment>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(MARK_PAID.postgres())
                .await
                .map_err(db_error)?;
            client
                .query_opt(&stmt, &[&id, &at])
                .await
                .map_err(db_error)?
                .as_ref()
                .map(payment)
                .transpose()
        }

        async fn record_event(
            &self,
            id: &str,
            kind: &str,
            at: Timestamp,
        ) -> Result<bool, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(RECORD_EVENT.postgres())
                .await
                .map_err(db_error)?;
            let n = client
                .execute(&stmt, &[&id, &kind, &at])
                .await
                .map_err(db_error)?;
            Ok(n == 1)
        }
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::ports::store::{BillingStore, Credits, Payment, StoreError};
    use bestchat_domain::time::{Timestamp, to_micros};
    use rusqlite::{OptionalExtension, Row, params};

    use crate::sqlite::{SqliteStore, db_error, time_at, uuid_at};

    fn payment(row: &Row<'_>) -> rusqlite::Result<Payment> {
        let raw: String = row.get(3)?;
        Ok(Payment {
            id: row.get(0)?,
            user_id: UserId::from_uuid(uuid_at(row, 1)?),
            amount_micros: row.get(2)?,
            status: status(&raw),
            created_at: time_at(row, 4)?,
        })
    }

    #[async_trait]
    impl BillingStore for SqliteStore {
        async fn add_payment(&self, p: &Payment) -> Result<(), StoreError> {
            let p = p.clone();
            self.call(move |conn| {
                conn.prepare_cached(&ADD.sqlite())
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            p.id,
                            p.user_id.to_string(),
                            p.amount_micros,
                            p.status.as_str(),
                            to_micros(p.created_at)
                        ])
                    })
                    .map_err(db_error)?;
                Ok(())
            })
            .await
        }

        async fn payments(&self, user: UserId, limit: u32) -> Result<Vec<Payment>, StoreError> {
            self.call(move |conn| {
                let mut stmt = conn.prepare_cached(&LIST.sqlite()).map_err(db_error)?;
                stmt.query_map(params![user.to_string(), i64::from(limit)], payment)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    .map_err(db_error)
            })
            .await
        }

        async fn credits(&self, user: UserId) -> Result<Credits, StoreError> {
            self.call(move |conn| {
                conn.prepare_cached(&CREDITS.sqlite())
                    .and_then(|mut stmt| {
                        stmt.query_row(params![user.to_string()], |r| {
                            let since: Option<i64> = r.get(1)?;
                            Ok(Credits {
                                total_micros: r.get(0)?,
                                since: since.and_then(bestchat_domain::time::from_micros),
                            })
                        })
                    })
                    .map_err(db_error)
            })
            .await
        }

        async fn mark_paid(&self, id: &str, at: Timestamp) -> Result<Option<Payment>, StoreError> {
            let id = id.to_owned();
            self.call(move |conn| {
                conn.prepare_cached(&MARK_PAID.sqlite())
                    .and_then(|mut stmt| {
                        stmt.query_row(params![id, to_micros(at)], payment)
                            .optional()
                    })
                    .map_err(db_error)
            })
            .await
        }

        async fn record_event(
            &self,
            id: &str,
            kind: &str,
            at: Timestamp,
        ) -> Result<bool, StoreError> {
            let (id, kind) = (id.to_owned(), kind.to_owned());
            self.call(move |conn| {
                conn.prepare_cached(&RECORD_EVENT.sqlite())
                    .and_then(|mut stmt| stmt.execute(params![id, kind, to_micros(at)]))
                    .map(|n| n == 1)
                    .map_err(db_error)
            })
            .await
        }
    }
}
