//! What a deploy runs: the `Migrations` custom resource (`migrate-resource`, which starts
//! `migrate`) against a real PostgreSQL and `web-publish` against S3 (moto), each answering a
//! stand-in for CloudFormation's response URL over real HTTP.

use std::time::Duration;

use bestchat_app::Config;
use bestchat_functions::custom_resource::{self, MAX_RESPONSE_BYTES, RequestType};
use bestchat_functions::migrate::{self, USES};
use bestchat_functions::migrate_resource;
use bestchat_tests::cfn::{ResponseUrl, request};
use bestchat_tests::postgres::TestDatabase;
use serde_json::{Value, json};

/// Time enough for any test's work; the deadline test gives less.
const BUDGET: Duration = Duration::from_secs(60);

fn config_with(
    database_url: &str,
    more: &[(&'static str, &'static str)],
) -> Result<Config, bestchat_app::config::ConfigError> {
    let url = database_url.to_owned();
    let more = more.to_vec();
    Config::from_lookup_for(
        move |key| {
            if key == "DATABASE_URL" {
                return Some(url.clone());
            }
            more.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        },
        USES,
    )
}

fn config(database_url: &str) -> Result<Config, bestchat_app::config::ConfigError> {
    config_with(database_url, &[])
}

/// The Migrations resource as deployed, its `migrate` run in this process.
async fn migrations(
    database_url: &str,
    event: Value,
) -> Result<Value, custom_resource::ResourceError> {
    let url = database_url.to_owned();
    migrate_resource::handle(event, BUDGET, |payload, _version| async move {
        migrate::handle(config(&url), payload).await
    })
    .await
}

/// The reason of the FAILED answer CloudFormation was sent.
async fn failure_reason(cfn: ResponseUrl) -> String {
    let answer = cfn.answer().await;
    assert_eq!(answer.body["Status"], "FAILED", "{}", answer.body);
    answer.body["Reason"].as_str().unwrap().to_owned()
}

async fn tables(db: &TestDatabase) -> i64 {
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'conversations'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn create_migrates_and_update_is_idempotent() {
    let db = TestDatabase::create().await;
    let cfn = ResponseUrl::start(200).await;
    let out = migrations(db.url(), request("Create", &cfn.url, None)).await;
    assert_eq!(out.unwrap(), json!({}));
    let answer = cfn.answer().await;
    assert!(
        answer
            .head
            .starts_with("PUT /cfn-response?X-Amz-Signature=abc ")
    );
    // The URL is presigned without a content type.
    assert!(!answer.head.to_ascii_lowercase().contains("content-type"));
    assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
    assert_eq!(answer.body["RequestId"], "req-1");
    assert_eq!(answer.body["LogicalResourceId"], "Migrations");
    let applied = answer.body["Data"]["Applied"].as_str().unwrap();
    assert!(applied.starts_with("1,"), "{applied}");
    let physical = answer.body["PhysicalResourceId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(tables(&db).await, 1);

    let cfn = ResponseUrl::start(200).await;
    let out = migrations(db.url(), request("Update", &cfn.url, Some(&physical))).await;
    assert_eq!(out.unwrap(), json!({}));
    let answer = cfn.answer().await;
    assert_eq!(answer.body["Status"], "SUCCESS");
    assert_eq!(answer.body["Data"]["Applied"], "");
    // The same physical id, or CloudFormation would delete the old resource.
    assert_eq!(answer.body["PhysicalResourceId"], physical.as_str());
}

#[tokio::test]
async fn an_unreachable_database_fails_the_deploy_with_a_reason() {
    let cfn = ResponseUrl::start(200).await;
    let out = migrations(
        "postgres://postgres@127.0.0.1:1/none",
        request("Create", &cfn.url, None),
    )
    .await;
    assert_eq!(
        out.unwrap(),
        json!({}),
        "the failure is answered, not thrown"
    );
    let answer = cfn.answer().await;
    assert_eq!(answer.body["Status"], "FAILED");
    let reason = answer.body["Reason"].as_str().unwrap();
    assert!(reason.starts_with("migrations failed"), "{reason}");
}

#[tokio::test]
async fn a_bad_configuration_fails_the_resource_instead_of_hanging_the_stack() {
    let cfn = ResponseUrl::start(200).await;
    let out = migrations("mysql://x@y/z", request("Update", &cfn.url, Some("p"))).await;
    assert_eq!(out.unwrap(), json!({}));
    assert!(failure_reason(cfn).await.contains("DATABASE_URL"));
}

/// On delete or rollback nothing inside the VPC may be reachable any more: the resource answers
/// without starting `migrate`, and drops nothing.
#[tokio::test]
async fn delete_is_answered_without_touching_the_database() {
    let db = TestDatabase::create().await;
    let cfn = ResponseUrl::start(200).await;
    let out = migrate_resource::handle(
        request("Delete", &cfn.url, Some("p")),
        BUDGET,
        |_, _| -> std::future::Ready<Result<Value, String>> { panic!("a delete started migrate") },
    )
    .await;
    assert_eq!(out.unwrap(), json!({}));
    assert_eq!(cfn.answer().await.body["Status"], "SUCCESS");
    assert_eq!(tables(&db).await, 0, "nothing ran, nothing was dropped");
}

/// An update runs the version of `migrate` it names: the rollback of a failed update names the
/// old one (which finds nothing to do), not the alias that still points at the new one.
#[tokio::test]
async fn an_update_runs_the_migrate_version_it_names() {
    let cfn = ResponseUrl::start(200).await;
    let mut event = request("Update", &cfn.url, Some("p"));
    let old = "arn:aws:lambda:eu-west-1:123456789012:function:bestchat-migrate:3";
    event["ResourceProperties"]["CodeVersion"] = json!(old);
    let ran = std::sync::Mutex::new(None);
    let out = migrate_resource::handle(event, BUDGET, |_, version| {
        *ran.lock().unwrap() = version;
        async { Ok::<_, String>(json!({"applied": []})) }
    })
    .await;
    assert_eq!(out.unwrap(), json!({}));
    assert_eq!(cfn.answer().await.body["Status"], "SUCCESS");
    assert_eq!(ran.lock().unwrap().as_deref(), Some(old));
}

/// A migration that never ends is answered as failed before the function's deadline, never
/// left for CloudFormation to wait out.
#[tokio::test]
async fn a_hanging_migration_is_answered_failed_in_time() {
    let cfn = ResponseUrl::start(200).await;
    let out = migrate_resource::handle(
        request("Create", &cfn.url, None),
        Duration::from_secs(1),
        |_, _| std::future::pending::<Result<Value, String>>(),
    )
    .await;
    assert_eq!(out.unwrap(), json!({}));
    assert!(
        failure_reason(cfn)
            .await
            .contains("did not finish within 1 s")
    );
}

/// A lock nobody releases (another runner, a long transaction) fails the migration at its lock
/// timeout instead of hanging it.
#[tokio::test]
async fn a_held_lock_fails_the_migration_at_its_lock_timeout() {
    let db = TestDatabase::create().await;
    let (holder, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    holder
        .execute("SELECT pg_advisory_lock(7300544823519146349)", &[])
        .await
        .unwrap();
    let failed = migrate::handle(
        config_with(db.url(), &[("BESTCHAT_MIGRATION_LOCK_TIMEOUT_MS", "300")]),
        Value::Null,
    )
    .await;
    let reason = failed.unwrap_err().to_string();
    assert!(reason.contains("lock timeout"), "{reason}");
}

/// The functions connect as a user of their own that reads and writes the data and nothing
/// else: no schema change, no ledger, no rewriting the audit trail. A user's erasure still
/// takes their trail with them (the cascade runs as the table's owner).
#[tokio::test]
async fn the_application_user_reads_and_writes_data_only() {
    let db = TestDatabase::create().await;
    let cfn = ResponseUrl::start(200).await;
    let mut event = request("Create", &cfn.url, None);
    event["ResourceProperties"]["AppUser"] = json!("bestchat_app_test");
    event["ResourceProperties"]["AppPassword"] = json!("it's a secret");
    let out = migrations(db.url(), event).await;
    assert_eq!(out.unwrap(), json!({}));
    let answer = cfn.answer().await;
    assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
    assert!(
        !answer.body.to_string().contains("secret"),
        "the password stays out of the answer"
    );
    assert_stored_as_scram_of(&db, "bestchat_app_test", "it's a secret").await;
    let url = db.url().replacen("postgres@", "bestchat_app_test@", 1);
    let (app, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let user = uuid::Uuid::now_v7();
    app.batch_execute(&format!(
        "INSERT INTO users (id, subject) VALUES ('{user}', 'app-test');
         INSERT INTO audit_log (id, user_id, action, created_at)
             VALUES ('{}', '{user}', 'test', now());",
        uuid::Uuid::now_v7()
    ))
    .await
    .expect("data may be written");
    for forbidden in [
        "CREATE TABLE sneaky (id int)",
        "DROP TABLE conversations",
        "ALTER TABLE messages ADD COLUMN x int",
        "DELETE FROM schema_migrations",
        "UPDATE audit_log SET action = 'other'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    ] {
        let refused = app.batch_execute(forbidden).await.unwrap_err();
        let message = refused
            .as_db_error()
            .map(|e| e.message().to_owned())
            .unwrap_or_default();
        assert!(
            message.contains("permission denied") || message.contains("must be owner"),
            "{forbidden}: {message}"
        );
    }
    app.batch_execute(&format!("DELETE FROM users WHERE id = '{user}'"))
        .await
        .expect("erasing a user takes their trail with them");
    // A second deploy changes the password and keeps the grants.
    let cfn = ResponseUrl::start(200).await;
    let mut event = request("Update", &cfn.url, Some("p"));
    event["ResourceProperties"]["AppUser"] = json!("bestchat_app_test");
    event["ResourceProperties"]["AppPassword"] = json!("another");
    assert_eq!(migrations(db.url(), event).await.unwrap(), json!({}));
    assert_eq!(cfn.answer().await.body["Status"], "SUCCESS");
    assert_stored_as_scram_of(&db, "bestchat_app_test", "another").await;
}

/// The role's stored password is a SCRAM-SHA-256 verifier of `password` (migrate sends the
/// verifier, never the password: a failed statement is logged): its server key is recomputed
/// from the password and the stored salt, as the server does at sign-in.
async fn assert_stored_as_scram_of(db: &TestDatabase, role: &str, password: &str) {
    use aws_lc_rs::{digest, hmac, pbkdf2};
    use base64::Engine as _;
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let stored: String = client
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap()
        .get(0);
    let rest = stored.strip_prefix("SCRAM-SHA-256$").expect(&stored);
    let (params, keys) = rest.split_once('$').unwrap();
    let (iterations, salt) = params.split_once(':').unwrap();
    let (stored_key, server_key) = keys.split_once(':').unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations.parse().unwrap(),
        &b64.decode(salt).unwrap(),
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    assert_eq!(
        b64.decode(stored_key).unwrap(),
        digest::digest(&digest::SHA256, client_key.as_ref()).as_ref()
    );
    assert_eq!(
        b64.decode(server_key).unwrap(),
        hmac::sign(&key, b"Server Key").as_ref()
    );
}

#[tokio::test]
async fn a_direct_invocation_reports_the_versions_applied() {
    let db = TestDatabase::create().await;
    let first = migrate::handle(config(db.url()), Value::Null)
        .await
        .unwrap();
    assert!(!first["applied"].as_array().unwrap().is_empty());
    let second = migrate::handle(config(db.url()), Value::Null)
        .await
        .unwrap();
    assert_eq!(second, json!({ "applied": [] }));
    let failed = migrate::handle(config("postgres://postgres@127.0.0.1:1/none"), Value::Null).await;
    assert!(failed.is_err_and(|e| e.to_string().starts_with("migrations failed")));
}

#[tokio::test]
async fn a_long_failure_reason_is_cut_to_what_cloudformation_accepts() {
    let cfn = ResponseUrl::start(200).await;
    let event: custom_resource::Request =
        serde_json::from_value(request("Create", &cfn.url, None)).unwrap();
    let result = custom_resource::handle(event, BUDGET, |kind, props| async move {
        assert_eq!(kind, RequestType::Create);
        assert_eq!(props["SchemaVersion"], "7");
        Err::<Value, _>(format!("failed: {}", "é".repeat(10_000)))
    })
    .await;
    assert_eq!(result, Ok(()));
    let reason = cfn.answer().await.body["Reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.starts_with("failed: é"));
    assert!(reason.len() <= MAX_RESPONSE_BYTES / 2);
}

#[tokio::test]
async fn a_refused_answer_is_the_invocations_error() {
    let cfn = ResponseUrl::start(403).await;
    let event: custom_resource::Request =
        serde_json::from_value(request("Create", &cfn.url, None)).unwrap();
    let result =
        custom_resource::handle(
            event,
            BUDGET,
            |_, _| async move { Ok::<_, String>(json!({})) },
        )
        .await;
    assert_eq!(result, Err(custom_resource::AnswerError::Refused(403)));
    assert_eq!(cfn.answer().await.body["Status"], "SUCCESS");
}

fn publish_request(url: &str, bucket: &str) -> Value {
    let mut event = request("Create", url, None);
    event["LogicalResourceId"] = json!("WebClient");
    event["ResourceProperties"] = json!({
        "ServiceToken": "arn:x",
        "Bucket": bucket,
        "ApiBase": "https://api.example.test",
        "WsUrl": "wss://ws.example.test/live",
        "Issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
        "ClientId": "client-123",
        "Scope": "openid email profile"
    });
    event
}

async fn object(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> (String, String, Vec<u8>) {
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let content_type = got.content_type().unwrap_or_default().to_owned();
    let cache = got.cache_control().unwrap_or_default().to_owned();
    let bytes = got.body.collect().await.unwrap().into_bytes().to_vec();
    (content_type, cache, bytes)
}

#[tokio::test]
async fn web_publish_writes_the_client_and_its_config_to_the_bucket() {
    let client = bestchat_tests::gateway::s3();
    let bucket = format!("site-{}", uuid::Uuid::now_v7());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let cfn = ResponseUrl::start(200).await;
    let out = bestchat_functions::web_publish::handle(
        publish_request(&cfn.url, &bucket),
        BUDGET,
        Some(client.clone()),
    )
    .await;
    assert_eq!(out.unwrap(), json!({}));
    let answer = cfn.answer().await;
    if bestchat_web::FILES.is_empty() {
        // Built without npm: the deploy fails and says why rather than publishing nothing.
        assert_eq!(answer.body["Status"], "FAILED");
        assert!(answer.body["Reason"].as_str().unwrap().contains("npm"));
        return;
    }
    assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
    assert_eq!(
        answer.body["Data"]["Files"],
        (bestchat_web::FILES.len() + 1).to_string()
    );
    let (kind, cache, bytes) = object(&client, &bucket, "config.json").await;
    assert_eq!(kind, "application/json");
    assert_eq!(cache, "no-store");
    let config: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(config["api_base"], "https://api.example.test");
    assert_eq!(config["ws_url"], "wss://ws.example.test/live");
    assert_eq!(config["auth"]["mode"], "oidc");
    assert_eq!(config["auth"]["client_id"], "client-123");
    let (kind, cache, bytes) = object(&client, &bucket, "index.html").await;
    assert_eq!(kind, "text/html; charset=utf-8");
    assert_eq!(cache, "no-cache");
    assert!(String::from_utf8_lossy(&bytes).contains("<div id=\"app\">"));
    let asset = bestchat_web::FILES
        .iter()
        .find(|(p, _)| p.starts_with("/assets/"))
        .unwrap();
    let (_, cache, bytes) = object(&client, &bucket, asset.0.trim_start_matches('/')).await;
    assert_eq!(cache, "public, max-age=31536000, immutable");
    assert_eq!(bytes, asset.1);
}

#[tokio::test]
async fn web_publish_fails_the_deploy_when_the_bucket_is_missing() {
    let cfn = ResponseUrl::start(200).await;
    let out = bestchat_functions::web_publish::handle(
        publish_request(&cfn.url, "no-such-bucket-bestchat"),
        BUDGET,
        Some(bestchat_tests::gateway::s3()),
    )
    .await;
    assert_eq!(out.unwrap(), json!({}));
    let answer = cfn.answer().await;
    assert_eq!(answer.body["Status"], "FAILED");
    assert!(!answer.body["Reason"].as_str().unwrap().is_empty());
}
