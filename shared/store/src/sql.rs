//! One statement, two dialects. Statements are written once, in PostgreSQL's spelling; SQLite
//! reads the same text with two mechanical changes, and the few statements whose meaning needs a
//! different form in each database say so with [`Sql::differs`], next to the shared one.

use std::borrow::Cow;

/// A statement for both stores.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql {
    postgres: &'static str,
    /// Set only where SQLite needs its own form (no `strpos`, no arrays as parameters, a row
    /// lock the other store takes with `FOR UPDATE`).
    sqlite: Option<&'static str>,
}

impl Sql {
    /// A statement both databases run once translated by [`to_sqlite`].
    pub(crate) const fn same(text: &'static str) -> Self {
        Self {
            postgres: text,
            sqlite: None,
        }
    }

    /// A statement whose SQLite form differs in more than spelling.
    pub(crate) const fn differs(postgres: &'static str, sqlite: &'static str) -> Self {
        Self {
            postgres,
            sqlite: Some(sqlite),
        }
    }

    pub(crate) const fn postgres(&self) -> &'static str {
        self.postgres
    }

    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn sqlite(&self) -> Cow<'static, str> {
        match self.sqlite {
            Some(text) => Cow::Borrowed(text),
            None => Cow::Owned(to_sqlite(self.postgres)),
        }
    }
}

/// PostgreSQL's statement text in SQLite's spelling: parameters `$N` become `?N` (SQLite reads
/// `$N` as a *named* parameter numbered by first appearance, so they must not stay), and casts
/// `::type` are dropped (PostgreSQL needs them to type a parameter it sees only in `IS NULL`;
/// SQLite's values carry their own type). Quoted text and comments are left as they are.
#[cfg_attr(not(any(feature = "sqlite", test)), allow(dead_code))]
pub(crate) fn to_sqlite(postgres: &str) -> String {
    translate(postgres, |_| None)
}

/// A migration's PostgreSQL DDL for SQLite: [`to_sqlite`], and each column type in the one SQLite
/// stores it as (the conventions of `migrations/sqlite/0001_init.sql`: uuids and json as text,
/// times as integer microseconds, booleans as 0/1).
pub(crate) fn ddl_to_sqlite(postgres: &str) -> String {
    translate(postgres, |word| {
        Some(match word.to_ascii_lowercase().as_str() {
            "uuid" | "text" | "jsonb" => "TEXT",
            "timestamptz" | "boolean" | "integer" | "bigint" | "smallint" => "INTEGER",
            "jsonb_typeof" => "json_type",
            _ => return None,
        })
    })
}

/// Walks the text once, rewriting parameters, casts and (through `word`) whole identifiers
/// outside quotes and `--` comments.
fn translate(postgres: &str, word: impl Fn(&str) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(postgres.len());
    let mut rest = postgres;
    while let Some(c) = rest.chars().next() {
        let taken = match c {
            '\'' => {
                let end = rest[1..].find('\'').map_or(rest.len(), |i| i + 2);
                out.push_str(&rest[..end]);
                end
            }
            '-' if rest.starts_with("--") => {
                let end = rest.find('\n').unwrap_or(rest.len());
                out.push_str(&rest[..end]);
                end
            }
            '$' if rest[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                out.push('?');
                1
            }
            ':' if rest.starts_with("::") => 2 + identifier_len(&rest[2..]),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let end = identifier_len(rest);
                out.push_str(word(&rest[..end]).unwrap_or(&rest[..end]));
                end
            }
            c => {
                out.push(c);
                c.len_utf8()
            }
        };
        rest = &rest[taken..];
    }
    out
}

fn identifier_len(text: &str) -> usize {
    text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_casts_are_spelled_for_sqlite() {
        assert_eq!(
            to_sqlite("SELECT a FROM t WHERE ($2::text IS NULL OR b = $2) AND c = $10"),
            "SELECT a FROM t WHERE (?2 IS NULL OR b = ?2) AND c = ?10"
        );
        assert_eq!(
            to_sqlite("DEFAULT '{}'::jsonb"),
            "DEFAULT '{}'",
            "a cast after a literal goes too"
        );
    }

    #[test]
    fn quoted_text_is_left_alone() {
        assert_eq!(
            to_sqlite("SELECT '$1::x', $1 FROM t"),
            "SELECT '$1::x', ?1 FROM t"
        );
    }

    #[test]
    fn column_types_are_sqlites() {
        assert_eq!(
            ddl_to_sqlite(
                "CREATE TABLE t (id uuid PRIMARY KEY, at timestamptz NOT NULL, -- uuid here stays\n\
                 on boolean, n bigint, doc jsonb NOT NULL DEFAULT '{}'::jsonb \
                 CHECK (jsonb_typeof(doc) = 'object'), uuid_count integer, note text)"
            ),
            "CREATE TABLE t (id TEXT PRIMARY KEY, at INTEGER NOT NULL, -- uuid here stays\n\
             on INTEGER, n INTEGER, doc TEXT NOT NULL DEFAULT '{}' \
             CHECK (json_type(doc) = 'object'), uuid_count INTEGER, note TEXT)"
        );
    }

    #[test]
    fn a_statement_that_differs_keeps_its_own_form() {
        let sql = Sql::differs("SELECT strpos($1, $2)", "SELECT instr(?1, ?2)");
        assert_eq!(sql.postgres(), "SELECT strpos($1, $2)");
        assert_eq!(sql.sqlite(), "SELECT instr(?1, ?2)");
        assert_eq!(Sql::same("SELECT $1").sqlite(), "SELECT ?1");
    }
}
