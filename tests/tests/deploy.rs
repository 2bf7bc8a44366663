//! What a deploy runs: the `migrate` custom resource against a real PostgreSQL, answering a
//! stand-in for CloudFormation's response URL over real HTTP.

use bestchat_app::Config;
use bestchat_functions::custom_resource::{self, MAX_RESPONSE_BYTES, RequestType};
use bestchat_functions::migrate::{self, USES};
use bestchat_tests::cfn::{ResponseUrl, request};
use bestchat_tests::postgres::TestDatabase;
use serde_json::{Value, json};

fn config(database_url: &str) -> Result<Config, bestchat_app::config::ConfigError> {
    let url = database_url.to_owned();
    Config::from_lookup_for(
        move |key| (key == "DATABASE_URL").then(|| url.clone()),
        USES,
    )
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
    let out = migrate::handle(config(db.url()), request("Create", &cfn.url, None)).await;
    assert_eq!(out, Ok(json!({})));
    let answer = cfn.answer().await;
    assert!(answer.head.starts_with("PUT /cfn-response?X-Amz-Signature=abc "));
    // The URL is presigned without a content type.
    assert!(!answer.head.to_ascii_lowercase().contains("content-type"));
    assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
    assert_eq!(answer.body["RequestId"], "req-1");
    assert_eq!(answer.body["LogicalResourceId"], "Migrations");
    let applied = answer.body["Data"]["Applied"].as_str().unwrap();
    assert!(applied.starts_with("1,"), "{applied}");
    let physical = answer.body["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_eq!(tables(&db).await, 1);

    let cfn = ResponseUrl::start(200).await;
    let out = migrate::handle(config(db.url()), request("Update", &cfn.url, Some(&physical))).await;
    assert_eq!(out, Ok(json!({})));
    let answer = cfn.answer().await;
    assert_eq!(answer.body["Status"], "SUCCESS");
    assert_eq!(answer.body["Data"]["Applied"], "");
    // The same physical id, or CloudFormation would delete the old resource.
    assert_eq!(answer.body["PhysicalResourceId"], physical.as_str());
}

#[tokio::test]
async fn an_unreachable_database_fails_the_deploy_with_a_reason() {
    let cfn = ResponseUrl::start(200).await;
    let out = migrate::handle(
        config("postgres://postgres@127.0.0.1:1/none"),
        request("Create", &cfn.url, None),
    )
    .await;
    assert_eq!(out, Ok(json!({})), "the failure is answered, not thrown");
    let answer = cfn.answer().await;
    assert_eq!(answer.body["Status"], "FAILED");
    let reason = answer.body["Reason"].as_str().unwrap();
    assert!(reason.starts_with("migrations failed"), "{reason}");
}

#[tokio::test]
async fn a_bad_configuration_fails_the_resource_instead_of_hanging_the_stack() {
    let cfn = ResponseUrl::start(200).await;
    let out = migrate::handle(config("mysql://x@y/z"), request("Update", &cfn.url, Some("p"))).await;
    assert_eq!(out, Ok(json!({})));
    let answer = cfn.answer().await;
    assert_eq!(answer.body["Status"], "FAILED");
    assert!(answer.body["Reason"].as_str().unwrap().contains("DATABASE_URL"));
}

#[tokio::test]
async fn delete_keeps_the_schema() {
    let db = TestDatabase::create().await;
    let cfn = ResponseUrl::start(200).await;
    let out = migrate::handle(config(db.url()), request("Delete", &cfn.url, Some("p"))).await;
    assert_eq!(out, Ok(json!({})));
    assert_eq!(cfn.answer().await.body["Status"], "SUCCESS");
    assert_eq!(tables(&db).await, 0, "delete ran no migration and dropped nothing");
}

#[tokio::test]
async fn a_direct_invocation_reports_the_versions_applied() {
    let db = TestDatabase::create().await;
    let first = migrate::handle(config(db.url()), json!({})).await.unwrap();
    assert!(!first["applied"].as_array().unwrap().is_empty());
    let second = migrate::handle(config(db.url()), json!({})).await.unwrap();
    assert_eq!(second, json!({ "applied": [] }));
    let failed = migrate::handle(config("postgres://postgres@127.0.0.1:1/none"), json!({})).await;
    assert!(failed.is_err_and(|e| e.starts_with("migrations failed")));
}

#[tokio::test]
async fn a_long_failure_reason_is_cut_to_what_cloudformation_accepts() {
    let cfn = ResponseUrl::start(200).await;
    let event: custom_resource::Request =
        serde_json::from_value(request("Create", &cfn.url, None)).unwrap();
    let result = custom_resource::handle(event, |kind, props| async move {
        assert_eq!(kind, RequestType::Create);
        assert_eq!(props["SchemaVersion"], "7");
        Err::<Value, _>(format!("failed: {}", "é".repeat(10_000)))
    })
    .await;
    assert_eq!(result, Ok(()));
    let reason = cfn.answer().await.body["Reason"].as_str().unwrap().to_owned();
    assert!(reason.starts_with("failed: é"));
    assert!(reason.len() <= MAX_RESPONSE_BYTES / 2);
}

#[tokio::test]
async fn a_refused_answer_is_the_invocations_error() {
    let cfn = ResponseUrl::start(403).await;
    let event: custom_resource::Request =
        serde_json::from_value(request("Create", &cfn.url, None)).unwrap();
    let result = custom_resource::handle(event, |_, _| async move { Ok(json!({})) }).await;
    assert!(result.is_err_and(|e| e.contains("403")));
    assert_eq!(cfn.answer().await.body["Status"], "SUCCESS");
}
