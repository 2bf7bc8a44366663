//! Secrets go only where they belong and internal detail never reaches a client: the
//! operator's key only to the catalog's own URL, each protocol's key in the header its SDK
//! uses, and failures told as a code, a fixed sentence and a request id.

use bestchat_tests::TempDir;
use bestchat_tests::api::Api;
use bestchat_tests::chat::{new_conversation, send_action};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::fixture;
use bestchat_tests::gateway::{GatewayProcess, Running, postgres, sqlite};
use bestchat_tests::ws::WsClient;
use reqwest::StatusCode;
use serde_json::{Value, json};

const OPERATOR_KEY: &str = "sk-operator-secret-0123456789";

async fn ask(gateway: &GatewayProcess, user: &str, provider: &str, model: &str) -> Vec<Value> {
    let conversation = new_conversation(
        gateway,
        user,
        &json!({"provider": provider, "model": model}),
    )
    .await;
    let mut ws = WsClient::connect(gateway, user).await;
    ws.send(&send_action(&conversation, "c-1", "hello")).await;
    ws.until(|e| e["type"] == "message.completed").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_key_never_goes_to_a_users_url() {
    let running = sqlite(&[("BESTCHAT_ENV_KEYS", "1"), ("OPENAI_API_KEY", OPERATOR_KEY)]).await;
    let gateway = &running.gateway;
    let attacker = FakeProvider::start(vec![], Reply::sse(fixture("openai-text-usage.sse"))).await;
    let api = Api::new(gateway, "mallory");
    let (status, body) = api
        .put(
            "/api/provider-configs/openai",
            &json!({"base_url": format!("{}/v1", attacker.base_url)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = ask(gateway, "mallory", "openai", "gpt-4o-mini").await;
    let done = &events.last().unwrap()["message"];
    assert_eq!(done["error"]["code"], "provider_not_configured", "{done}");
    let (_, providers) = api.get("/api/providers").await;
    let openai = providers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "openai")
        .unwrap();
    assert_eq!(
        openai["configured"], false,
        "the operator's key does not count there"
    );
    // With a key of their own, that key goes, and only it.
    let (status, _) = api
        .put(
            "/api/provider-configs/openai",
            &json!({"api_key": "sk-mallory-own-key-000001"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = ask(gateway, "mallory", "openai", "gpt-4o-mini").await;
    assert_eq!(events.last().unwrap()["message"]["status"], "complete");
    let requests = attacker.requests();
    assert_eq!(requests.len(), 1, "one call, with the user's own key");
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sk-mallory-own-key-000001")
    );
    for r in &requests {
        let all = format!("{:?}{}", r.headers, String::from_utf8_lossy(&r.body));
        assert!(!all.contains(OPERATOR_KEY), "the operator's key leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_providers_send_keys_as_their_protocols_sdks_do() {
    let running = sqlite(&[]).await;
    let gateway = &running.gateway;
    let api = Api::new(gateway, "alice");
    for (protocol, fixture_name, header, value) in [
        (
            "anthropic",
            "anthropic-text.sse",
            "x-api-key",
            "sk-ant-custom-000000001",
        ),
        (
            "gemini",
            "gemini-text.sse",
            "x-goog-api-key",
            "AIza-custom-0000000001",
        ),
        (
            "openai",
            "openai-text-usage.sse",
            "authorization",
            "Bearer sk-custom-000000001",
        ),
    ] {
        let fake = FakeProvider::start(vec![], Reply::sse(fixture(fixture_name))).await;
        let key = value.trim_start_matches("Bearer ");
        let provider = format!("my-{protocol}");
        let (status, body) = api
            .put(
                &format!("/api/provider-configs/{provider}"),
                &json!({"protocol": protocol, "base_url": fake.base_url.clone(), "api_key": key,
                        "models": [{"id": "m", "context_window": 8000, "max_output_tokens": 100}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let events = ask(gateway, "alice", &provider, "m").await;
        assert_eq!(
            events.last().unwrap()["message"]["status"],
            "complete",
            "{protocol}: {events:?}"
        );
        let sent = &fake.requests()[0];
        assert_eq!(sent.header(header), Some(value), "{protocol}");
        if protocol != "openai" {
            assert_eq!(
                sent.header("authorization"),
                None,
                "{protocol}: no bearer token"
            );
        }
    }
}

/// Words that only the server's internals would use.
const INTERNAL: &[&str] = &[
    "wrapped by",
    "local:",
    "relation",
    "SQLSTATE",
    "UPSTREAM-SECRET-DETAIL",
    "10.9.8.7",
    "conversations_gone",
    "db error",
];

fn assert_no_internals(text: &str) {
    for word in INTERNAL {
        assert!(!text.contains(word), "{word:?} reached a client: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_reach_clients_as_codes_and_fixed_sentences() {
    // An upstream's own words stay in the log.
    let dir = TempDir::new("details");
    let gateway = GatewayProcess::start(dir.path(), None, &[]);
    let chatty = Reply::json(
        401,
        r#"{"error":{"message":"UPSTREAM-SECRET-DETAIL: key sk-x for org at 10.9.8.7"}}"#,
    );
    let fake = FakeProvider::start(vec![], chatty).await;
    let api = Api::new(&gateway, "alice");
    api.put(
        "/api/provider-configs/chatty",
        &json!({"protocol": "openai", "base_url": format!("{}/v1", fake.base_url),
                "api_key": "sk-alice-000000000001",
                "models": [{"id": "m", "context_window": 8000, "max_output_tokens": 100}]}),
    )
    .await;
    let events = ask(&gateway, "alice", "chatty", "m").await;
    let error = events
        .iter()
        .find(|e| e["type"] == "message.error")
        .unwrap();
    assert_eq!(error["code"], "provider_key_refused");
    assert_eq!(error["message"], "the model provider refused the API key");
    assert!(error["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_no_internals(&serde_json::to_string(&events).unwrap());
    let (_, page) = api
        .get(&format!(
            "/api/conversations/{}/messages",
            events[0]["message"]["conversation_id"].as_str().unwrap()
        ))
        .await;
    assert_no_internals(&page.to_string());
    assert!(
        gateway.log().contains("UPSTREAM-SECRET-DETAIL"),
        "the log has it"
    );

    // A stored key that no longer opens (the vault's master key was replaced).
    gateway.stop();
    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    let gateway = GatewayProcess::start(dir.path(), None, &[]);
    let events = ask(&gateway, "alice", "chatty", "m").await;
    let done = &events.last().unwrap()["message"];
    assert_eq!(done["error"]["code"], "provider_not_configured", "{done}");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("set it again")
    );
    assert_no_internals(&serde_json::to_string(&events).unwrap());
    let (status, body) = Api::new(&gateway, "alice").get("/api/models").await;
    assert!(status.as_u16() < 500, "{body}");
    assert_no_internals(&body.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_database_is_an_internal_error_without_its_words() {
    let running = postgres(&[]).await;
    let api = Api::new(&running.gateway, "alice");
    let (status, _) = api.post("/api/conversations", &json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let db = running.db.as_ref().unwrap();
    db.execute("ALTER TABLE conversations RENAME TO conversations_gone")
        .await;
    let response = reqwest::Client::new()
        .get(running.gateway.url("/api/conversations"))
        .bearer_auth(bestchat_tests::gateway::token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let request_id = response.headers()["apigw-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal");
    assert_eq!(body["error"]["message"], "an internal error occurred");
    assert_eq!(body["error"]["request_id"], request_id.as_str());
    assert_no_internals(&body.to_string());
    let log = running.gateway.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&request_id) && l.contains("conversations")),
        "the log has the detail under the request id"
    );
}

/// A stolen session can change a provider's base URL, but never turn the stored key into a key
/// sent to the thief: the API asks for the key again with a new origin, and the key is sealed
/// for its origin, so even a row pointed elsewhere in the database opens for no other.
async fn a_stored_key_never_follows_its_record_to_another_origin(running: &Running) {
    let gateway = &running.gateway;
    let honest = FakeProvider::start(vec![], Reply::sse(fixture("openai-text-usage.sse"))).await;
    let thief = FakeProvider::start(vec![], Reply::sse(fixture("openai-text-usage.sse"))).await;
    let api = Api::new(gateway, "alice");
    let key = "sk-alice-bound-0123456789";
    let (status, body) = api
        .put(
            "/api/provider-configs/mine",
            &json!({"protocol": "openai", "base_url": format!("{}/v1", honest.base_url),
                    "api_key": key,
                    "models": [{"id": "m", "context_window": 8000, "max_output_tokens": 100}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ask(gateway, "alice", "mine", "m").await;
    assert_eq!(
        honest.requests()[0].header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    // Moving the URL alone is refused: the key must come with it.
    for provider in ["mine", "openai"] {
        if provider == "openai" {
            let (status, _) = api
                .put("/api/provider-configs/openai", &json!({"api_key": key}))
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, body) = api
            .put(
                &format!("/api/provider-configs/{provider}"),
                &json!({"base_url": format!("{}/v1", thief.base_url)}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{provider}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("give the API key again"),
            "{body}"
        );
    }
    // The row pointed at the thief behind the API's back: the key does not open there.
    let thief_url = format!("{}/v1", thief.base_url);
    running
        .try_sql(&format!(
            "UPDATE provider_configs SET base_url = '{thief_url}' WHERE provider = 'mine'"
        ))
        .await
        .unwrap();
    let events = ask(gateway, "alice", "mine", "m").await;
    let done = &events.last().unwrap()["message"];
    assert_eq!(done["error"]["code"], "provider_not_configured", "{done}");
    assert!(
        thief
            .requests()
            .iter()
            .all(|r| r.header("authorization") != Some(format!("Bearer {key}").as_str())),
        "the key never reached the thief"
    );
    assert!(thief.requests().is_empty(), "nothing was sent there at all");
}

mod origin_binding {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        let running = sqlite(&[]).await;
        a_stored_key_never_follows_its_record_to_another_origin(&running).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        let running = postgres(&[]).await;
        a_stored_key_never_follows_its_record_to_another_origin(&running).await;
    }
}
