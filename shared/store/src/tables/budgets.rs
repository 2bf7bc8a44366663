//! Budgets the operator set per user and the caps users set themselves, with what was spent.

use bestchat_domain::budget::Period;
use bestchat_domain::ports::store::BudgetRecord;
use bestchat_domain::time::Timestamp;

use crate::sql::Sql;

const GET: Sql = Sql::same(
    "SELECT operator_set, limit_micros, period, personal_limit_micros, updated_at
    FROM budgets WHERE user_id = $1",
);

const PUT_OPERATOR: Sql = Sql::same(
    "INSERT INTO budgets (user_id, operator_set, limit_micros, period, updated_at)
    VALUES ($1, true, $2, $3, $4)
    ON CONFLICT (user_id) DO UPDATE SET operator_set = true, limit_micros = EXCLUDED.limit_micros,
        period = EXCLUDED.period, updated_at = EXCLUDED.updated_at",
);

const PUT_PERSONAL: Sql = Sql::same(
    "INSERT INTO budgets (user_id, personal_limit_micros, updated_at) VALUES ($1, $2, $3)
    ON CONFLICT (user_id) DO UPDATE SET personal_limit_micros = EXCLUDED.personal_limit_micros,
        updated_at = EXCLUDED.updated_at",
);

/// Reads the usage index's covering columns only.
const SPENT: Sql = Sql::same(
    "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS bigint) FROM usage_logs
    WHERE user_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)",
);

/// Users after `$1` in id order, at most `$2`, each with their budget row and what they spent
/// since the start of their period (`$3` without an operator's; `$4` the day's start, `$5` the
/// month's).
const USERS_PAGE: Sql = Sql::same(
    "SELECT u.id, u.subject, u.roles, u.created_at, b.operator_set, b.limit_micros, b.period,
        b.personal_limit_micros, b.updated_at,
        (SELECT CAST(COALESCE(SUM(l.cost_micros), 0) AS bigint) FROM usage_logs l
         WHERE l.user_id = u.id AND l.created_at >=
            CASE (CASE WHEN b.operator_set THEN b.period ELSE $3 END)
            WHEN 'day' THEN $4::timestamptz ELSE $5::timestamptz END)
    FROM users u LEFT JOIN budgets b ON b.user_id = u.id
    WHERE ($1::uuid IS NULL OR u.id > $1)
    ORDER BY u.id LIMIT $2",
);

fn record(
    operator_set: bool,
    limit_micros: Option<i64>,
    period: &str,
    personal_limit_micros: Option<i64>,
    updated_at: Timestamp,
) -> BudgetRecord {
    BudgetRecord {
        operator_set,
        limit_micros,
        period: Period::parse(period).unwrap_or_default(),
        personal_limit_micros,
        updated_at: Some(updated_at),
    }
}

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::ports::store::{
        AuditEntry, BudgetStore, PeriodStarts, StoreError, UserSummary,
    };
    use bestchat_domain::time::Timestamp;

    use crate::postgres::{PgStore, db_error};
    use crate::tables::audit::postgres as audit;

    fn budget_at(row: &tokio_postgres::Row, at: usize) -> Result<Option<BudgetRecord>, StoreError> {
        let set: Option<bool> = row.try_get(at).map_err(db_error)?;
        let Some(set) = set else { return Ok(None) };
        let period: String = row.try_get(at + 2).map_err(db_error)?;
        Ok(Some(record(
            set,
            row.try_get(at + 1).map_err(db_error)?,
            &period,
            row.try_get(at + 3).map_err(db_error)?,
            row.try_get(at + 4).map_err(db_error)?,
        )))
    }

    #[async_trait]
    impl BudgetStore for PgStore {
        async fn budget(&self, user: UserId) -> Result<Option<BudgetRecord>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(GET.postgres())
                .await
                .map_err(db_error)?;
            let row = client
                .query_opt(&stmt, &[user.as_uuid()])
                .await
                .map_err(db_error)?;
            row.map_or(Ok(None), |r| budget_at(&r, 0))
        }

        async fn put_operator_budget(
            &self,
            user: UserId,
            limit_micros: Option<i64>,
            period: Period,
            at: Timestamp,
            entry: &AuditEntry,
        ) -> Result<(), StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let stmt = tx
                .prepare_cached(PUT_OPERATOR.postgres())
                .await
                .map_err(db_error)?;
            tx.execute(
                &stmt,
                &[user.as_uuid(), &limit_micros, &period.as_str(), &at],
            )
            .await
            .map_err(db_error)?;
            audit::append(&tx, entry).await?;
            tx.commit().await.map_err(db_error)
        }

        async fn put_personal_limit(
            &self,
            user: UserId,
            limit_micros: Option<i64>,
            at: Timestamp,
        ) -> Result<(), StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(PUT_PERSONAL.postgres())
                .await
                .map_err(db_error)?;
            client
                .execute(&stmt, &[user.as_uuid(), &limit_micros, &at])
                .await
                .map_err(db_error)?;
            Ok(())
        }

        async fn spent_since(
            &self,
            user: UserId,
            since: Option<Timestamp>,
        ) -> Result<i64, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(SPENT.postgres())
                .await
                .map_err(db_error)?;
            client
                .query_one(&stmt, &[user.as_uuid(), &since])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(db_error)
        }

        async fn users_page(
            &self,
            after: Option<UserId>,
            limit: u32,
            default_period: Period,
            starts: PeriodStarts,
        ) -> Result<Vec<UserSummary>, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(USERS_PAGE.postgres())
                .await
                .map_err(db_error)?;
            let rows = client
                .query(
                    &stmt,
                    &[
                        &after.map(|u| *u.as_uuid()),
                        &i64::from(limit),
                        &default_period.as_str(),
                        &starts.day,
                        &starts.month,
                    ],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|row| {
                    let id: uuid::Uuid = row.try_get(0).map_err(db_error)?;
                    let roles: serde_json::Value = row.try_get(2).map_err(db_error)?;
                    Ok(UserSummary {
                        id: UserId::from_uuid(id),
                        subject: row.try_get(1).map_err(db_error)?,
                        roles: serde_json::from_value(roles).unwrap_or_default(),
                        created_at: row.try_get(3).map_err(db_error)?,
                        budget: budget_at(row, 4)?,
                        spent_micros: row.try_get(9).map_err(db_error)?,
                    })
                })
                .collect()
        }
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::ports::store::{
        AuditEntry, BudgetStore, PeriodStarts, StoreError, UserSummary,
    };
    use bestchat_domain::time::{Timestamp, to_micros};
    use rusqlite::{OptionalExtension, Row, params};

    use crate::sqlite::{SqliteStore, db_error, json_at, time_at, uuid_at};
    use crate::tables::audit::sqlite as audit;

    fn budget_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<BudgetRecord>> {
        let set: Option<bool> = row.get(at)?;
        let Some(set) = set else { return Ok(None) };
        let period: String = row.get(at + 2)?;
        Ok(Some(record(
            set,
            row.get(at + 1)?,
            &period,
            row.get(at + 3)?,
            time_at(row, at + 4)?,
        )))
    }

    #[async_trait]
    impl BudgetStore for SqliteStore {
        async fn budget(&self, user: UserId) -> Result<Option<BudgetRecord>, StoreError> {
            self.call(move |conn| {
                conn.prepare_cached(&GET.sqlite())
                    .and_then(|mut stmt| {
                        stmt.query_row(params![user.to_string()], |row| budget_at(row, 0))
                            .optional()
                    })
                    .map(Option::flatten)
                    .map_err(db_error)
            })
            .await
        }

        async fn put_operator_budget(
            &self,
            user: UserId,
            limit_micros: Option<i64>,
            period: Period,
            at: Timestamp,
            entry: &AuditEntry,
        ) -> Result<(), StoreError> {
            let entry = entry.clone();
            self.call(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                tx.prepare_cached(&PUT_OPERATOR.sqlite())
                    .map_err(db_error)?
                    .execute(params![
                        user.to_string(),
                        limit_micros,
                        period.as_str(),
                        to_micros(at)
                    ])
                    .map_err(db_error)?;
                audit::append(&tx, &entry)?;
                tx.commit().map_err(db_error)
            })
            .await
        }

        async fn put_personal_limit(
            &self,
            user: UserId,
            limit_micros: Option<i64>,
            at: Timestamp,
        ) -> Result<(), StoreError> {
            self.call(move |conn| {
                conn.prepare_cached(&PUT_PERSONAL.sqlite())
                    .and_then(|mut stmt| {
                        stmt.execute(params![user.to_string(), limit_micros, to_micros(at)])
                    })
                    .map_err(db_error)?;
                Ok(())
            })
            .await
        }

        async fn spent_since(
            &self,
            user: UserId,
            since: Option<Timestamp>,
        ) -> Result<i64, StoreError> {
            self.call(move |conn| {
                conn.prepare_cached(&SPENT.sqlite())
                    .and_then(|mut stmt| {
                        stmt.query_row(params![user.to_string(), since.map(to_micros)], |row| {
                            row.get(0)
                        })
                    })
                    .map_err(db_error)
            })
            .await
        }

        async fn users_page(
            &self,
            after: Option<UserId>,
            limit: u32,
            default_period: Period,
            starts: PeriodStarts,
        ) -> Result<Vec<UserSummary>, StoreError> {
            self.call(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&USERS_PAGE.sqlite())
                    .map_err(db_error)?;
                let rows = stmt
                    .query_map(
                        params![
                            after.map(|u| u.to_string()),
                            i64::from(limit),
                            default_period.as_str(),
                            to_micros(starts.day),
                            to_micros(starts.month),
                        ],
                        |row| {
                            Ok(UserSummary {
                                id: UserId::from_uuid(uuid_at(row, 0)?),
                                subject: row.get(1)?,
                                roles: serde_json::from_value(json_at(row, 2)?).unwrap_or_default(),
                                created_at: time_at(row, 3)?,
                                budget: budget_at(row, 4)?,
                                spent_micros: row.get(9)?,
                            })
                        },
                    )
                    .map_err(db_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
            })
            .await
        }
    }
}
