//! A user-set base URL cannot reach this machine or its networks when the deployment forbids
//! it: no spelling of a private address, no name that resolves to one, no redirect to one. The
//! proof that nothing got through is the fake provider on loopback: it records every request.

use std::time::Duration;

use bestchat_tests::TempDir;
use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::chat::{new_conversation, send_action};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{GatewayProcess, sqlite};
use bestchat_tests::scripted::{openai_stream, words};
use bestchat_tests::ws::WsClient;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PUBLIC_ONLY: &[(&str, &str)] = &[("BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS", "0")];

/// Every spelling of loopback, the metadata service and private networks a URL parser accepts.
fn private_literals(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "017700000001",
        "0177.0.0.1",
        "0",
        "0.0.0.0",
        "%31%32%37.0.0.1",
        "[::1]",
        "[::]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:a9fe:a9fe]",
        "169.254.169.254",
        "[fd00:ec2::254]",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "[fe80::1]",
        "[64:ff9b::7f00:1]",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/v1"))
    .collect()
}

fn custom(base_url: &str) -> Value {
    json!({"protocol": "openai", "base_url": base_url,
           "models": [{"id": "m", "context_window": 8000, "max_output_tokens": 100}]})
}

/// Sends one message on `provider`/`m` and returns the finished answer.
async fn ask(gateway: &GatewayProcess, user: &str, provider: &str) -> Value {
    let conversation =
        new_conversation(gateway, user, &json!({"provider": provider, "model": "m"})).await;
    let mut ws = WsClient::connect(gateway, user).await;
    ws.send(&send_action(&conversation, "c-1", "hello")).await;
    let events = ws.until(|e| e["type"] == "message.completed").await;
    events.last().unwrap()["message"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_a_private_address_is_refused() {
    let running = sqlite(PUBLIC_ONLY).await;
    let api = Api::new(&running.gateway, "eve");
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(3)))).await;
    let port = fake.base_url.rsplit(':').next().unwrap().parse().unwrap();
    for url in private_literals(port) {
        let (status, body) = api.put("/api/provider-configs/evil", &custom(&url)).await;
        assert_error(status, &body, 422, "validation_failed");
    }
    assert!(fake.requests().is_empty());
}

/// Names that resolve to this machine, whatever the resolver (no /etc/hosts edits needed).
const LOCAL_NAMES: &[&str] = &["localhost", "ip6-localhost"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_to_a_private_address_is_refused() {
    let running = sqlite(PUBLIC_ONLY).await;
    let api = Api::new(&running.gateway, "eve");
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(3)))).await;
    let port = fake.base_url.rsplit(':').next().unwrap();
    let url = format!("http://localhost:{port}/v1");
    let (status, body) = api
        .put("/api/provider-configs/by-name", &custom(&url))
        .await;
    assert_error(status, &body, 422, "validation_failed");
    assert!(fake.requests().is_empty());
}

/// URLs stored while the deployment allowed them (or names that resolved elsewhere then): the
/// guard still holds at each connection, for answers and for model discovery alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_urls_stored_earlier_are_refused_at_connection() {
    let dir = TempDir::new("ssrf-later");
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(3)))).await;
    let port = fake.base_url.rsplit(':').next().unwrap().to_owned();
    let open = GatewayProcess::start(dir.path(), None, &[]);
    let mut providers = vec![("literal".to_owned(), format!("{}/v1", fake.base_url))];
    for (i, host) in LOCAL_NAMES.iter().enumerate() {
        providers.push((format!("name{i}"), format!("http://{host}:{port}/v1")));
    }
    let api = Api::new(&open, "eve");
    for (provider, url) in &providers {
        let (status, body) = api
            .put(&format!("/api/provider-configs/{provider}"), &custom(url))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = api
        .put(
            "/api/provider-configs/discover",
            &json!({"protocol": "openai", "base_url": format!("http://localhost:{port}/v1")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    open.stop();
    let closed = GatewayProcess::start(dir.path(), None, PUBLIC_ONLY);
    for (provider, _) in &providers {
        let answer = ask(&closed, "eve", provider).await;
        assert_eq!(answer["status"], "error", "{provider}: {answer}");
        assert_eq!(answer["error"]["code"], "provider_error");
        // A name that does not resolve here at all is unreachable, which it is.
        let sentence = answer["error"]["message"].as_str().unwrap();
        assert!(
            sentence.contains("private or local network")
                || (provider.starts_with("name") && sentence.contains("could not be reached")),
            "{provider}: {answer}"
        );
    }
    let (status, models) = Api::new(&closed, "eve").get("/api/models").await;
    assert_eq!(status, StatusCode::OK, "{models}");
    assert!(fake.requests().is_empty(), "nothing reached the machine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_never_followed() {
    // Private addresses allowed, so only the redirect rule stands between A and B.
    let running = sqlite(&[]).await;
    let gateway = &running.gateway;
    let target = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(3)))).await;
    for status in [301, 302, 303, 307, 308] {
        let redirect = Reply::json(status, "{}").header(
            "location",
            &format!("{}/v1/chat/completions", target.base_url),
        );
        let hop = FakeProvider::start(vec![], redirect).await;
        let provider = format!("hop{status}");
        let (code, body) = Api::new(gateway, "eve")
            .put(
                &format!("/api/provider-configs/{provider}"),
                &custom(&format!("{}/v1", hop.base_url)),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let answer = ask(gateway, "eve", &provider).await;
        assert_eq!(answer["status"], "error", "{status}: {answer}");
        assert!(!hop.requests().is_empty(), "the first hop was asked");
    }
    // Model discovery does not follow them either.
    let redirect =
        Reply::json(302, "{}").header("location", &format!("{}/v1/models", target.base_url));
    let hop = FakeProvider::start(vec![], redirect).await;
    Api::new(gateway, "eve")
        .put(
            "/api/provider-configs/hop-list",
            &json!({"protocol": "openai", "base_url": format!("{}/v1", hop.base_url)}),
        )
        .await;
    let (status, _) = Api::new(gateway, "eve").get("/api/models").await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(target.requests().is_empty(), "no redirect was followed");
}
