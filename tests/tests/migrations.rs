//! The migration runners: idempotent, safe when two start at once, and the two schemas agree.

use std::collections::{BTreeMap, BTreeSet};

use bestchat_store::migrations::MIGRATIONS;
use bestchat_store::{PgSettings, PgStore, SqliteStore};
use bestchat_tests::TempDir;
use bestchat_tests::postgres::TestDatabase;
use tokio_postgres::NoTls;

fn all_versions(migrations: &[bestchat_store::migrations::Migration]) -> Vec<i32> {
    migrations.iter().map(|m| m.version).collect()
}

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn postgres_runner_is_idempotent() {
    let db = TestDatabase::create().await;
    let store = PgStore::connect(db.url(), &PgSettings::default()).unwrap();
    assert_eq!(
        store.migrate().await.unwrap().applied,
        all_versions(MIGRATIONS)
    );
    assert_eq!(store.migrate().await.unwrap().applied, Vec::<i32>::new());
    let rows = pg_client(db.url())
        .await
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let recorded: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(recorded, all_versions(MIGRATIONS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_runners_at_once_apply_each_file_once() {
    let db = TestDatabase::create().await;
    // Separate pools, as two cold-starting functions would have.
    let first = PgStore::connect(db.url(), &PgSettings::default()).unwrap();
    let second = PgStore::connect(db.url(), &PgSettings::default()).unwrap();
    let (a, b) = tokio::join!(first.migrate(), second.migrate());
    let mut applied = a.unwrap().applied;
    applied.extend(b.unwrap().applied);
    applied.sort();
    assert_eq!(
        applied,
        all_versions(MIGRATIONS),
        "each file applied by exactly one runner"
    );
    let count: i64 = pg_client(db.url())
        .await
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, MIGRATIONS.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runner_is_idempotent_and_safe_across_connections() {
    let dir = TempDir::new("migrate");
    let path = dir.path().join("m.db");
    let first = SqliteStore::open(&path).unwrap();
    let second = SqliteStore::open(&path).unwrap();
    let (a, b) = tokio::join!(first.migrate(), second.migrate());
    let mut applied = a.unwrap().applied;
    applied.extend(b.unwrap().applied);
    applied.sort();
    assert_eq!(applied, all_versions(MIGRATIONS));
    assert_eq!(first.migrate().await.unwrap().applied, Vec::<i32>::new());
}

type Schema = BTreeMap<String, BTreeSet<String>>;

async fn postgres_schema(url: &str) -> (Schema, BTreeSet<String>) {
    let client = pg_client(url).await;
    let mut tables = Schema::new();
    for row in client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> 'schema_migrations'",
            &[],
        )
        .await
        .unwrap()
    {
        tables.entry(row.get(0)).or_default().insert(row.get(1));
    }
    // Indexes that back a primary key or UNIQUE constraint are named by the server.
    let indexes = client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'
             AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (tables, indexes)
}

fn sqlite_schema(path: &std::path::Path) -> (Schema, BTreeSet<String>) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name <> 'schema_migrations'",
        )
        .unwrap();
    let mut tables = Schema::new();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (table, column) = row.unwrap();
        tables.entry(table).or_default().insert(column);
    }
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index'
             AND name NOT LIKE 'sqlite_autoindex%'",
        )
        .unwrap();
    let indexes = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (tables, indexes)
}

#[tokio::test]
async fn postgres_and_sqlite_schemas_have_the_same_tables_columns_and_indexes() {
    let db = TestDatabase::create().await;
    PgStore::connect(db.url(), &PgSettings::default())
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let dir = TempDir::new("parity");
    let path = dir.path().join("p.db");
    SqliteStore::open(&path).unwrap().migrate().await.unwrap();
    let (pg_tables, pg_indexes) = postgres_schema(db.url()).await;
    let (lite_tables, lite_indexes) = sqlite_schema(&path);
    assert!(pg_tables.contains_key("messages"));
    assert_eq!(pg_tables, lite_tables);
    assert_eq!(pg_indexes, lite_indexes);
}
