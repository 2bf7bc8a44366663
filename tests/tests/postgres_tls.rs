//! `sslmode=require` gives a verified TLS connection. Runs against the test server's own
//! certificate (Debian's PostgreSQL ships with TLS on and a certificate for `localhost`).

use std::path::PathBuf;

use bestchat_domain::ids::UserId;
use bestchat_domain::page::PageRequest;
use bestchat_domain::ports::store::{ConversationStore, StoreError};
use bestchat_store::{PgSettings, PgStore};
use bestchat_tests::postgres::{TestDatabase, admin_url};
use tokio_postgres::NoTls;

/// The server certificate file, when the server has TLS on and the file is readable here.
async fn server_certificate() -> Option<PathBuf> {
    let (client, connection) = tokio_postgres::connect(&admin_url(), NoTls).await.ok()?;
    tokio::spawn(connection);
    let ssl: String = client.query_one("SHOW ssl", &[]).await.ok()?.get(0);
    let file: String = client
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .ok()?
        .get(0);
    let path = PathBuf::from(file);
    (ssl == "on" && std::fs::read(&path).is_ok()).then_some(path)
}

fn tls_url(plain: &str) -> String {
    let url = plain.replace("@127.0.0.1", "@localhost");
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode=require")
}

#[tokio::test]
async fn sslmode_require_verifies_the_server_certificate() {
    let Some(cert) = server_certificate().await else {
        eprintln!("skipped: the test PostgreSQL server has no readable TLS certificate");
        return;
    };
    let db = TestDatabase::create().await;
    let url = tls_url(db.url());

    let trusted = PgSettings {
        ca_file: Some(cert),
        ..PgSettings::default()
    };
    let store = PgStore::connect(&url, &trusted).unwrap();
    store.migrate().await.unwrap();
    let page = store
        .list_conversations(UserId::generate(), None, &PageRequest::default())
        .await
        .unwrap();
    assert!(page.items.is_empty());
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    let encrypted: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
             WHERE datname = current_database() AND pg_stat_ssl.ssl AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "the pooled connection uses TLS");

    // A certificate nobody vouches for is refused rather than silently accepted.
    let untrusted = PgStore::connect(&url, &PgSettings::default()).unwrap();
    assert!(matches!(
        untrusted
            .list_conversations(UserId::generate(), None, &PageRequest::default())
            .await,
        Err(StoreError::Unavailable(_))
    ));
}

#[test]
fn a_missing_ca_file_is_a_clear_start_error() {
    let settings = PgSettings {
        ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
        ..PgSettings::default()
    };
    let Err(StoreError::Internal(message)) =
        PgStore::connect("postgres://u@h/db?sslmode=require", &settings)
    else {
        panic!("expected a start error");
    };
    assert!(message.contains("DATABASE_CA_FILE"), "{message}");
}
