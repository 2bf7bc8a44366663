//! End to end over real HTTP: `bestchat-local` as a child process, once on SQLite and once on a
//! fresh PostgreSQL database, driven the way a client would.

use std::time::Duration;

use bestchat_tests::TempDir;
use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::gateway::{
    AUDIENCE, GatewayProcess, ISSUER, auth, now_epoch, postgres, signer, sqlite,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let running = super::sqlite(&[]).await;
                    super::$case(&running.gateway).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let running = super::postgres(&[]).await;
                    super::$case(&running.gateway).await;
                }
            )*
        }
    };
}

on_both_stores!(
    conversation_crud,
    another_user_gets_404,
    lists_page_newest_first_with_cursors,
    bad_input_gets_clear_errors,
    tokens_are_checked_like_api_gateway,
    messages_of_a_conversation,
    usage_adds_up_to_the_stored_answers,
);

async fn conversation_crud(gateway: &GatewayProcess) {
    let api = Api::new(gateway, "alice");
    let (status, health) = api.get("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");

    let (status, created) = api
        .post(
            "/api/conversations",
            &json!({
                "title": "Trip planning",
                "provider": "openai",
                "model": "gpt-4o",
                "system_prompt": "You are concise.",
                "settings": {"temperature": 0.3, "fallbacks": [{"provider": "anthropic", "model": "claude-sonnet-4"}]}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["title"], "Trip planning");
    assert_eq!(created["settings"]["temperature"], 0.3);
    assert_eq!(created["settings"]["fallbacks"][0]["provider"], "anthropic");
    assert!(created.get("user_id").is_none(), "user ids are not exposed");

    let (status, fetched) = api.get(&format!("/api/conversations/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let (status, updated) = api
        .patch(
            &format!("/api/conversations/{id}"),
            &json!({"title": "Trip to Lisbon", "system_prompt": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["title"], "Trip to Lisbon");
    assert_eq!(updated["system_prompt"], Value::Null);
    assert_eq!(updated["model"], "gpt-4o");
    assert_ne!(updated["updated_at"], created["updated_at"]);

    let (status, list) = api.get("/api/conversations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["title"], "Trip to Lisbon");
    assert_eq!(list["next_cursor"], Value::Null);

    let (status, body) = api.delete(&format!("/api/conversations/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, body) = api.get(&format!("/api/conversations/{id}")).await;
    assert_error(status, &body, 404, "conversation_not_found");
    let (status, body) = api.delete(&format!("/api/conversations/{id}")).await;
    assert_error(status, &body, 404, "conversation_not_found");
}

async fn another_user_gets_404(gateway: &GatewayProcess) {
    let alice = Api::new(gateway, "alice");
    let mallory = Api::new(gateway, "mallory");
    let (_, created) = alice
        .post("/api/conversations", &json!({"title": "Private"}))
        .await;
    let path = format!("/api/conversations/{}", created["id"].as_str().unwrap());

    let (status, body) = mallory.get(&path).await;
    assert_error(status, &body, 404, "conversation_not_found");
    let (status, body) = mallory.patch(&path, &json!({"title": "Mine now"})).await;
    assert_error(status, &body, 404, "conversation_not_found");
    let (status, body) = mallory.delete(&path).await;
    assert_error(status, &body, 404, "conversation_not_found");
    let (status, body) = mallory.get(&format!("{path}/messages")).await;
    assert_error(status, &body, 404, "conversation_not_found");
    let (_, list) = mallory.get("/api/conversations").await;
    assert_eq!(list["items"], json!([]));

    // Nothing of Alice's changed.
    let (status, still) = alice.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["title"], "Private");
}

async fn lists_page_newest_first_with_cursors(gateway: &GatewayProcess) {
    let api = Api::new(gateway, "paginator");
    for i in 0..5 {
        let (status, _) = api
            .post("/api/conversations", &json!({"title": format!("c{i}")}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut titles = Vec::new();
    let mut path = "/api/conversations?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        titles.extend(
            items
                .iter()
                .map(|c| c["title"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/conversations?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(titles, vec!["c4", "c3", "c2", "c1", "c0"]);

    let (status, body) = api.get("/api/conversations?cursor=not-a-cursor").await;
    assert_error(status, &body, 400, "invalid_cursor");
    let (status, body) = api.get("/api/conversations?limit=0").await;
    assert_error(status, &body, 422, "validation_failed");
    let (status, body) = api.get("/api/conversations?limit=201").await;
    assert_error(status, &body, 422, "validation_failed");

    // Title search over HTTP: the query is text, never a pattern; past a title's length, refused.
    let (status, page) = api.get("/api/conversations?q=C3").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["title"], "c3");
    let (_, page) = api.get("/api/conversations?q=%25").await;
    assert_eq!(page["items"], json!([]));
    let (_, page) = api.get("/api/conversations?q=").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let long = "x".repeat(201);
    let (status, body) = api.get(&format!("/api/conversations?q={long}")).await;
    assert_error(status, &body, 400, "invalid_request");
}

async fn bad_input_gets_clear_errors(gateway: &GatewayProcess) {
    let api = Api::new(gateway, "careless");
    let (status, body) = api
        .send(Method::POST, "/api/conversations", Some("{\"title\": "))
        .await;
    assert_error(status, &body, 400, "invalid_json");
    let (status, body) = api.send(Method::POST, "/api/conversations", Some("")).await;
    assert_error(status, &body, 400, "invalid_json");
    let (status, body) = api.post("/api/conversations", &json!({"title": 42})).await;
    assert_error(status, &body, 422, "validation_failed");
    let (status, body) = api
        .post("/api/conversations", &json!({"titel": "typo"}))
        .await;
    assert_error(status, &body, 422, "validation_failed");
    let (status, body) = api
        .post("/api/conversations", &json!({"title": "x".repeat(201)}))
        .await;
    assert_error(status, &body, 422, "validation_failed");
    let (status, body) = api
        .post(
            "/api/conversations",
            &json!({"settings": {"temperature": 9}}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");

    // A body over the configured limit (BESTCHAT_MAX_REQUEST_BYTES, 1 MiB by default).
    let huge = json!({"title": "big", "system_prompt": "x".repeat(1024 * 1024 + 10)});
    let (status, body) = api.post("/api/conversations", &huge).await;
    assert_error(status, &body, 413, "payload_too_large");

    // Ids that are not UUIDs name nothing.
    let (status, body) = api.get("/api/conversations/not-a-uuid").await;
    assert_error(status, &body, 404, "conversation_not_found");
    let (status, body) = api.get("/api/no-such-route").await;
    assert_error(status, &body, 404, "route_not_found");
    let (status, body) = api
        .send(Method::PUT, "/api/conversations", Some("{}"))
        .await;
    assert_error(status, &body, 404, "route_not_found");

    // Nothing was stored by any of the refused requests.
    let (_, list) = api.get("/api/conversations").await;
    assert_eq!(list["items"], json!([]));
}

async fn tokens_are_checked_like_api_gateway(gateway: &GatewayProcess) {
    let client = Client::new();
    let url = gateway.url("/api/conversations");
    let expired = auth()
        .mint("alice", now_epoch() - 7200, Duration::from_secs(3600))
        .unwrap();
    let forged = signer(b"some-other-secret-some-other-secret", ISSUER, AUDIENCE)
        .mint("alice", now_epoch(), Duration::from_secs(3600))
        .unwrap();
    let other_audience = signer(
        bestchat_tests::gateway::TEST_SECRET.as_bytes(),
        ISSUER,
        "someone-else",
    )
    .mint("alice", now_epoch(), Duration::from_secs(3600))
    .unwrap();
    for header in [
        None,
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {forged}")),
        Some(format!("Bearer {other_audience}")),
        Some("Bearer garbage".to_owned()),
    ] {
        let mut request = client.get(&url);
        if let Some(h) = &header {
            request = request.header("authorization", h);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_error(status, &body, 401, "unauthorized");
    }
    // Health needs no token; a dev token from the gateway works.
    let health = client.get(gateway.url("/api/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let dev: Value = client
        .post(gateway.url("/dev/token"))
        .body(r#"{"user": "alice"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: Value = client
        .post(gateway.url("/dev/token"))
        .body(r#"{"user": "alice"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dev["user_id"], again["user_id"], "same name, same user");
    let ok = client
        .get(&url)
        .bearer_auth(dev["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

async fn messages_of_a_conversation(gateway: &GatewayProcess) {
    let api = Api::new(gateway, "reader");
    let (_, created) = api.post("/api/conversations", &json!({})).await;
    assert_eq!(created["title"], "New conversation");
    let id = created["id"].as_str().unwrap();
    let (status, page) = api
        .get(&format!("/api/conversations/{id}/messages?limit=10"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page, json!({"items": [], "next_cursor": null}));
    let (status, body) = api
        .get(&format!("/api/conversations/{id}/messages?cursor=%%%"))
        .await;
    assert_error(status, &body, 400, "invalid_cursor");
}

async fn usage_adds_up_to_the_stored_answers(gateway: &GatewayProcess) {
    use bestchat_tests::chat::send_action;
    use bestchat_tests::ws::WsClient;

    let api = Api::new(gateway, "spender");
    let (_, conversation) = api.post("/api/conversations", &json!({})).await;
    let id = conversation["id"].as_str().unwrap().to_owned();
    let mut ws = WsClient::connect(gateway, "spender").await;
    for (n, words) in ["one two three", "four five six seven"].iter().enumerate() {
        ws.send(&send_action(&id, &format!("use-{n}"), words)).await;
        ws.until(|e| e["type"] == "message.completed").await;
    }
    let (_, messages) = api.get(&format!("/api/conversations/{id}/messages")).await;
    let answers: Vec<&Value> = messages["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .collect();
    let stored = |field: &str| -> i64 {
        answers
            .iter()
            .map(|m| m["usage"][field].as_i64().unwrap_or(0))
            .sum()
    };
    let (status, report) = api.get("/api/usage?group_by=model").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["items"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["items"][0]["key"], "echo/echo-1");
    for field in ["input_tokens", "output_tokens", "cached_tokens"] {
        assert_eq!(
            report["total"][field].as_i64().unwrap(),
            stored(field),
            "{field}: {report}"
        );
        assert_eq!(report["items"][0][field], report["total"][field], "{field}");
    }
    assert_eq!(report["total"]["turns"], 2);
    let (_, by_conversation) = api.get("/api/usage?group_by=conversation").await;
    assert_eq!(by_conversation["items"][0]["key"], id.as_str());
    // Another user spent nothing; a range before the turns holds nothing.
    let (_, theirs) = Api::new(gateway, "saver").get("/api/usage").await;
    assert_eq!(theirs["items"], json!([]));
    assert_eq!(theirs["total"]["turns"], 0);
    let (_, early) = api.get("/api/usage?to=2000-01-01T00:00:00Z").await;
    assert_eq!(early["total"]["turns"], 0);
    for bad in [
        "group_by=week",
        "from=yesterday",
        "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let (status, body) = api.get(&format!("/api/usage?{bad}")).await;
        assert_error(status, &body, 422, "validation_failed");
    }
}

#[tokio::test]
async fn sqlite_data_survives_a_restart() {
    let dir = TempDir::new("restart");
    let gateway = GatewayProcess::start(dir.path(), None, &[]);
    let api = Api::new(&gateway, "alice");
    let (status, created) = api
        .post("/api/conversations", &json!({"title": "Keep me"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    gateway.stop();

    let gateway = GatewayProcess::start(dir.path(), None, &[]);
    let api = Api::new(&gateway, "alice");
    let (status, fetched) = api
        .get(&format!(
            "/api/conversations/{}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn request_size_limit_is_a_setting() {
    let running = sqlite(&[("BESTCHAT_MAX_REQUEST_BYTES", "2048")]).await;
    let api = Api::new(&running.gateway, "alice");
    let (status, body) = api
        .post(
            "/api/conversations",
            &json!({"system_prompt": "x".repeat(3000)}),
        )
        .await;
    assert_error(status, &body, 413, "payload_too_large");
    let (status, _) = api
        .post(
            "/api/conversations",
            &json!({"system_prompt": "x".repeat(1000)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

/// Limits low enough to reach in a test: 30 reads a minute (one every 2 s after the burst), one
/// turn, two new connections.
const LOW_LIMITS: [(&str, &str); 4] = [
    ("BESTCHAT_RATE_READ_PER_MINUTE", "30"),
    ("BESTCHAT_RATE_WRITE_PER_MINUTE", "0"),
    ("BESTCHAT_RATE_TURN_PER_MINUTE", "1"),
    ("BESTCHAT_RATE_CONNECT_PER_MINUTE", "2"),
];

#[tokio::test]
async fn rate_limits_hold_in_process() {
    let running = sqlite(&LOW_LIMITS).await;
    rate_limits_hold(&running.gateway).await;
}

#[tokio::test]
async fn rate_limits_hold_on_redis() {
    let redis = bestchat_tests::redis_url();
    let prefix = bestchat_tests::unique_prefix();
    let mut env = LOW_LIMITS.to_vec();
    env.extend([
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ]);
    let running = postgres(&env).await;
    rate_limits_hold(&running.gateway).await;
}

async fn rate_limits_hold(gateway: &GatewayProcess) {
    use bestchat_tests::chat::send_action;
    use bestchat_tests::ws::WsClient;

    let client = Client::new();
    let get = |user: &str| {
        client
            .get(gateway.url("/api/conversations"))
            .bearer_auth(bestchat_tests::gateway::token(user))
            .send()
    };
    // A request every 2 s refills one, so the counts are at least the burst's (a slow machine
    // may see one come back) and the refusal waits at most one interval.
    let mut passed = 0;
    let refused = loop {
        let response = get("rl-reader").await.unwrap();
        if response.status() != 200 {
            break response;
        }
        passed += 1;
        assert!(passed <= 40, "the limit never refused");
        let state = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(state.starts_with("\"read\";r="), "{state}");
    };
    assert!(passed >= 30, "the whole burst passes first: {passed}");
    assert_eq!(refused.status(), 429);
    let headers = refused.headers().clone();
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(headers["ratelimit-policy"], "\"read\";q=30;w=60");
    assert!(
        headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"read\";r=0;")
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another user is counted apart, and public routes are not counted.
    assert_eq!(get("rl-other").await.unwrap().status(), 200);
    let health = client.get(gateway.url("/api/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("ratelimit").is_none());
    // After the wait the limit names, the next request passes.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(get("rl-reader").await.unwrap().status(), 200);

    // One turn a minute: the second send is refused before a turn starts.
    let api = Api::new(gateway, "rl-sender");
    let (_, conversation) = api.post("/api/conversations", &json!({})).await;
    let id = conversation["id"].as_str().unwrap().to_owned();
    let mut ws = WsClient::connect(gateway, "rl-sender").await;
    ws.send(&send_action(&id, "rl-1", "first")).await;
    ws.until(|e| e["type"] == "message.completed").await;
    ws.send(&send_action(&id, "rl-2", "second")).await;
    let refusal = ws
        .until(|e| e["type"] == "message.error")
        .await
        .pop()
        .unwrap();
    assert_eq!(refusal["code"], "rate_limited");
    let wait = refusal["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 60_000, "{refusal}");
    let (status, body) = api
        .post(
            &format!("/api/conversations/{id}/messages"),
            &json!({"client_message_id": "rl-3", "content": "third"}),
        )
        .await;
    assert_error(status, &body, 429, "rate_limited");
    let (_, messages) = api.get(&format!("/api/conversations/{id}/messages")).await;
    assert_eq!(
        messages["items"].as_array().unwrap().len(),
        2,
        "only the first turn was stored: {messages}"
    );

    // Two new connections a minute: the third is refused at the upgrade.
    let _second = WsClient::connect(gateway, "rl-sender").await;
    let third = WsClient::connect_url(&bestchat_tests::ws::ws_url(
        gateway,
        &bestchat_tests::gateway::token("rl-sender"),
    ))
    .await;
    assert!(
        third.is_err(),
        "a third connection within the minute is refused"
    );
}
