//! Storage adapters: PostgreSQL for production, SQLite embedded for a laptop. Both implement the
//! same ports from `bestchat-domain` and pass the same contract suite.

pub mod migrations;
pub mod postgres;
mod records;
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod tables;

pub use postgres::{PgSettings, PgStore, TlsRoots};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
