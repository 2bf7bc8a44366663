//! Usage records, written inside the transaction of what they account for.

use bestchat_domain::usage::{UsageGroup, UsageItem, UsageReport, UsageSums};

use crate::sql::Sql;

const INSERT: Sql = Sql::same(
    "INSERT INTO usage_logs
    (id, user_id, conversation_id, message_id, provider, model, input_tokens, output_tokens,
     cached_tokens, cost_micros, latency_ms, ttft_ms, status, attempts, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
);

/// The rows of `$who` (one user's, `$1`, or every user's when `$1` is NULL) in `[$2, $3)`
/// (either end open) summed per `$inner` key, at most `$4` groups in `$order`, each row also
/// carrying the sums of every group (a window over the groups, taken before the limit): one
/// scan answers the groups and the total. `$outer` formats the key.
macro_rules! grouped {
    ($who:literal, $outer:literal, $inner:literal, $order:literal) => {
        concat!(
            "SELECT ",
            $outer,
            ", calls, input, output, cached, cost,
                CAST(SUM(calls) OVER () AS bigint), CAST(SUM(input) OVER () AS bigint),
                CAST(SUM(output) OVER () AS bigint), CAST(SUM(cached) OVER () AS bigint),
                CAST(SUM(cost) OVER () AS bigint)
            FROM (SELECT ",
            $inner,
            " AS key, count(*) AS calls,
                    CAST(COALESCE(SUM(input_tokens), 0) AS bigint) AS input,
                    CAST(COALESCE(SUM(output_tokens), 0) AS bigint) AS output,
                    CAST(COALESCE(SUM(cached_tokens), 0) AS bigint) AS cached,
                    CAST(COALESCE(SUM(cost_micros), 0) AS bigint) AS cost
                FROM usage_logs WHERE ",
            $who,
            "
                  AND ($2::timestamptz IS NULL OR created_at >= $2)
                  AND ($3::timestamptz IS NULL OR created_at < $3)
                GROUP BY 1) AS groups
            ORDER BY ",
            $order,
            " LIMIT $4"
        )
    };
}

/// `grouped!` by the UTC day as SQLite spells it: less its casts, `$N` as `?N`, the day by
/// strftime (SQLite keeps times as microseconds since the epoch).
macro_rules! sqlite_by_day {
    ($who:literal) => {
        concat!(
            "SELECT key, calls, input, output, cached, cost,
                SUM(calls) OVER (), SUM(input) OVER (), SUM(output) OVER (), SUM(cached) OVER (),
                SUM(cost) OVER ()
            FROM (SELECT strftime('%Y-%m-%d', created_at / 1000000, 'unixepoch') AS key,
                    count(*) AS calls, COALESCE(SUM(input_tokens), 0) AS input,
                    COALESCE(SUM(output_tokens), 0) AS output,
                    COALESCE(SUM(cached_tokens), 0) AS cached,
                    COALESCE(SUM(cost_micros), 0) AS cost
                FROM usage_logs WHERE ",
            $who,
            " AND (?2 IS NULL OR created_at >= ?2) AND (?3 IS NULL OR created_at < ?3)
                GROUP BY 1) AS groups
            ORDER BY key DESC LIMIT ?4"
        )
    };
}

/// The statements of one user's report, or of every user's (`$1` bound NULL).
macro_rules! statements {
    ($name:ident, $who:literal, $sqlite_who:literal) => {
        mod $name {
            use crate::sql::Sql;

            /// Grouped by the UTC day, newest first so the limit keeps the latest (the answer
            /// lists them oldest first), each day formatted once (formatting every row was half
            /// the time of a heavy user's month).
            pub(super) const BY_DAY: Sql = Sql::differs(
                grouped!(
                    $who,
                    "to_char(key AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
                    "date_trunc('day', created_at, 'UTC')",
                    "key DESC"
                ),
                sqlite_by_day!($sqlite_who),
            );
            pub(super) const BY_MODEL: Sql = Sql::same(grouped!(
                $who,
                "key",
                "provider || '/' || model",
                "cost DESC, key"
            ));
            pub(super) const BY_PROVIDER: Sql =
                Sql::same(grouped!($who, "key", "provider", "cost DESC, key"));
            /// A deleted conversation's rows stay (their conversation set to NULL) and sum as
            /// `deleted`.
            pub(super) const BY_CONVERSATION: Sql = Sql::same(grouped!(
                $who,
                "key",
                "COALESCE(CAST(conversation_id AS text), 'deleted')",
                "cost DESC, key"
            ));
            pub(super) const BY_USER: Sql = Sql::same(grouped!(
                $who,
                "key",
                "CAST(user_id AS text)",
                "cost DESC, key"
            ));
        }
    };
}

statements!(one_user, "user_id = $1", "user_id = ?1");
statements!(every_user, "$1::uuid IS NULL", "?1 IS NULL");

fn statement(group: UsageGroup, everyone: bool) -> Sql {
    macro_rules! pick {
        ($m:ident) => {
            match group {
                UsageGroup::Day => $m::BY_DAY,
                UsageGroup::Model => $m::BY_MODEL,
                UsageGroup::Provider => $m::BY_PROVIDER,
                UsageGroup::Conversation => $m::BY_CONVERSATION,
                UsageGroup::User => $m::BY_USER,
            }
        };
    }
    if everyone {
        pick!(every_user)
    } else {
        pick!(one_user)
    }
}

/// The groups (days oldest first), and the total every row carries (none when the range holds
/// no row).
fn report(rows: Vec<(UsageItem, UsageSums)>, group: UsageGroup) -> UsageReport {
    let total = rows
        .first()
        .map(|(_, total)| total.clone())
        .unwrap_or_default();
    let mut items: Vec<UsageItem> = rows.into_iter().map(|(item, _)| item).collect();
    if group == UsageGroup::Day {
        items.reverse();
    }
    UsageReport { items, total }
}

pub(crate) mod postgres {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::ports::store::{StoreError, UsageStore};
    use bestchat_domain::usage::{UsageLog, UsageQuery};
    use deadpool_postgres::Transaction;

    use crate::postgres::{PgStore, db_error};

    pub(crate) fn int(n: u32) -> Result<i32, StoreError> {
        i32::try_from(n).map_err(|_| StoreError::Internal(format!("count {n} overflows")))
    }

    fn sums_at(row: &tokio_postgres::Row, at: usize) -> Result<UsageSums, StoreError> {
        Ok(UsageSums {
            turns: row.try_get(at).map_err(db_error)?,
            input_tokens: row.try_get(at + 1).map_err(db_error)?,
            output_tokens: row.try_get(at + 2).map_err(db_error)?,
            cached_tokens: row.try_get(at + 3).map_err(db_error)?,
            cost_micros: row.try_get(at + 4).map_err(db_error)?,
        })
    }

    fn item(row: &tokio_postgres::Row) -> Result<(UsageItem, UsageSums), StoreError> {
        let item = UsageItem {
            key: row.try_get(0).map_err(db_error)?,
            sums: sums_at(row, 1)?,
        };
        Ok((item, sums_at(row, 6)?))
    }

    #[async_trait]
    impl UsageStore for PgStore {
        async fn usage(
            &self,
            user: Option<UserId>,
            query: &UsageQuery,
            max_groups: u32,
        ) -> Result<UsageReport, StoreError> {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(statement(query.group_by, user.is_none()).postgres())
                .await
                .map_err(db_error)?;
            let rows = client
                .query(
                    &stmt,
                    &[
                        &user.map(|u| *u.as_uuid()),
                        &query.from,
                        &query.to,
                        &i64::from(max_groups),
                    ],
                )
                .await
                .map_err(db_error)?;
            Ok(report(
                rows.iter().map(item).collect::<Result<_, _>>()?,
                query.group_by,
            ))
        }
    }

    pub(crate) async fn append(tx: &Transaction<'_>, u: &UsageLog) -> Result<(), StoreError> {
        let stmt = tx
            .prepare_cached(INSERT.postgres())
            .await
            .map_err(db_error)?;
        tx.execute(
            &stmt,
            &[
                &u.id,
                u.user_id.as_uuid(),
                u.conversation_id.as_uuid(),
                u.message_id.as_uuid(),
                &u.provider.as_str(),
                &u.model.as_str(),
                &int(u.input_tokens)?,
                &int(u.output_tokens)?,
                &int(u.cached_tokens)?,
                &u.cost_micros,
                &int(u.latency_ms)?,
                &u.ttft_ms.map(int).transpose()?,
                &u.status.as_str(),
                &u.attempts,
                &u.created_at,
            ],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use super::*;
    use async_trait::async_trait;
    use bestchat_domain::ids::UserId;
    use bestchat_domain::ports::store::{StoreError, UsageStore};
    use bestchat_domain::time::to_micros;
    use bestchat_domain::usage::{UsageLog, UsageQuery};
    use rusqlite::{Row, Transaction, params};

    use crate::sqlite::{SqliteStore, db_error};

    fn sums_at(row: &Row<'_>, at: usize) -> rusqlite::Result<UsageSums> {
        Ok(UsageSums {
            turns: row.get(at)?,
            input_tokens: row.get(at + 1)?,
            output_tokens: row.get(at + 2)?,
            cached_tokens: row.get(at + 3)?,
            cost_micros: row.get(at + 4)?,
        })
    }

    fn item(row: &Row<'_>) -> rusqlite::Result<(UsageItem, UsageSums)> {
        let item = UsageItem {
            key: row.get(0)?,
            sums: sums_at(row, 1)?,
        };
        Ok((item, sums_at(row, 6)?))
    }

    #[async_trait]
    impl UsageStore for SqliteStore {
        async fn usage(
            &self,
            user: Option<UserId>,
            query: &UsageQuery,
            max_groups: u32,
        ) -> Result<UsageReport, StoreError> {
            let query = *query;
            self.call(move |conn| {
                let (user, from, to) = (
                    user.map(|u| u.to_string()),
                    query.from.map(to_micros),
                    query.to.map(to_micros),
                );
                let rows = conn
                    .prepare_cached(&statement(query.group_by, user.is_none()).sqlite())
                    .map_err(db_error)?
                    .query_map(params![user, from, to, i64::from(max_groups)], item)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                    .map_err(db_error)?;
                Ok(report(rows, query.group_by))
            })
            .await
        }
    }

    pub(crate) fn append(tx: &Transaction<'_>, u: &UsageLog) -> Result<(), StoreError> {
        tx.prepare_cached(&INSERT.sqlite())
            .map_err(db_error)?
            .execute(params![
                u.id.to_string(),
                u.user_id.to_string(),
                u.conversation_id.to_string(),
                u.message_id.to_string(),
                u.provider.as_str(),
                u.model.as_str(),
                u.input_tokens,
                u.output_tokens,
                u.cached_tokens,
                u.cost_micros,
                u.latency_ms,
                u.ttft_ms,
                u.status.as_str(),
                u.attempts.to_string(),
                to_micros(u.created_at),
            ])
            .map_err(db_error)?;
        Ok(())
    }
}
