//! `sslmode=require` gives a verified TLS connection. Runs against the test server's own
//! certificate (Debian's PostgreSQL ships with TLS on and a certificate for `localhost`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bestchat_domain::ports::credentials::{ConnectionPassword, CredentialError};

use bestchat_domain::ids::UserId;
use bestchat_domain::page::PageRequest;
use bestchat_domain::ports::store::{ConversationStore, StoreError};
use bestchat_store::{PgSettings, PgStore, TlsRoots};
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
        roots: TlsRoots::File(cert),
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
        roots: TlsRoots::File(PathBuf::from("/nonexistent/ca.pem")),
        ..PgSettings::default()
    };
    let Err(StoreError::Internal(message)) =
        PgStore::connect("postgres://u@h/db?sslmode=require", &settings)
    else {
        panic!("expected a start error");
    };
    assert!(message.contains("DATABASE_CA_FILE"), "{message}");
}

/// Counts the passwords it hands out, as IAM authentication makes one per connection.
struct CountingPassword(AtomicUsize);

#[async_trait]
impl ConnectionPassword for CountingPassword {
    async fn password(&self) -> Result<String, CredentialError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(format!("token-{n}"))
    }
}

#[tokio::test]
async fn a_password_source_is_asked_once_per_new_connection() {
    let Some(cert) = server_certificate().await else {
        eprintln!("skipped: the test PostgreSQL server has no readable TLS certificate");
        return;
    };
    let db = TestDatabase::create().await;
    let settings = PgSettings {
        roots: TlsRoots::File(cert),
        pool_size: 2,
        ..PgSettings::default()
    };
    let source = Arc::new(CountingPassword(AtomicUsize::new(0)));
    let store = PgStore::connect_with(&tls_url(db.url()), &settings, Some(source.clone())).unwrap();
    store.migrate().await.unwrap();
    let user = UserId::generate();
    for _ in 0..5 {
        store
            .list_conversations(user, None, &PageRequest::default())
            .await
            .unwrap();
    }
    // Reused connections ask for nothing; two concurrent requests need a second connection.
    let reused = source.0.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&reused),
        "{reused} passwords for sequential queries"
    );
    let page = PageRequest::default();
    let (a, b) = tokio::join!(
        store.list_conversations(user, None, &page),
        store.list_conversations(user, None, &page)
    );
    assert!(a.is_ok() && b.is_ok());
    assert_eq!(source.0.load(Ordering::SeqCst), 2);
}

#[test]
fn a_connection_password_is_never_sent_without_tls() {
    let source = Arc::new(CountingPassword(AtomicUsize::new(0)));
    let Err(StoreError::Internal(message)) =
        PgStore::connect_with("postgres://u@h/db", &PgSettings::default(), Some(source))
    else {
        panic!("expected a start error");
    };
    assert!(message.contains("sslmode=require"), "{message}");
}

#[tokio::test]
async fn the_shipped_aws_bundle_refuses_a_certificate_it_does_not_vouch_for() {
    if server_certificate().await.is_none() {
        eprintln!("skipped: the test PostgreSQL server has no readable TLS certificate");
        return;
    }
    let db = TestDatabase::create().await;
    let settings = PgSettings {
        roots: TlsRoots::AwsRds,
        ..PgSettings::default()
    };
    let store = PgStore::connect(&tls_url(db.url()), &settings).unwrap();
    assert!(matches!(
        store
            .list_conversations(UserId::generate(), None, &PageRequest::default())
            .await,
        Err(StoreError::Unavailable(_))
    ));
}
