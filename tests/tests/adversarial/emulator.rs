//! The gateway's emulation of API Gateway's Management API and Lambda's Invoke API answers
//! only its own process: anyone else who reaches the port gets nothing, and the gateway will
//! not listen beyond loopback while the emulation is on.

use bestchat_tests::TempDir;
use bestchat_tests::gateway::{EMULATOR_SECRET, GatewayProcess, sqlite};
use bestchat_tests::ws::WsClient;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_emulation_refuses_every_other_caller() {
    let running = sqlite(&[]).await;
    let gateway = &running.gateway;
    // A live connection to post to, and a job a caller might try to run.
    let _victim = WsClient::connect(gateway, "alice").await;
    let http = reqwest::Client::new();
    let attempts = [
        (
            "/2015-03-31/functions/chat-turn/invocations",
            json!({"user_id": "00000000-0000-0000-0000-000000000000"}),
        ),
        ("/2015-03-31/functions/migrate/invocations", json!({})),
        ("/2015-03-31/functions/janitor/invocations", json!({})),
        ("/@connections/AAAAAAAAAAAAAAA=", json!({"type": "pong"})),
    ];
    for (path, body) in &attempts {
        for secret in [
            None,
            Some(""),
            Some("guess"),
            Some("bestchat-test-emulator-secret-012345678"),
        ] {
            let mut request = http.post(gateway.url(path)).json(body);
            if let Some(secret) = secret {
                request = request.header("x-bestchat-emulator-secret", secret);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{path} with {secret:?}"
            );
        }
        let response = http.get(gateway.url(path)).send().await.unwrap();
        assert!(
            response.status() == StatusCode::FORBIDDEN
                || response.status() == StatusCode::NOT_FOUND,
            "{path}: {}",
            response.status()
        );
    }
    // The process's own secret opens it (that is how its SDK clients get in).
    let response = http
        .post(gateway.url("/2015-03-31/functions/migrate/invocations"))
        .header("x-bestchat-emulator-secret", EMULATOR_SECRET)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn the_gateway_refuses_to_listen_beyond_loopback_while_emulating() {
    let dir = TempDir::new("open-addr");
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let err = GatewayProcess::refused_start(
            dir.path(),
            &[("BESTCHAT_ADDR", addr), ("BESTCHAT_DEV_AUTH", "0")],
        );
        assert!(err.contains("BESTCHAT_EMULATE_AWS"), "{addr}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_emulation_the_gateway_may_listen_anywhere() {
    let dir = TempDir::new("no-emulation");
    let gateway = GatewayProcess::start_at(
        dir.path(),
        None,
        &[
            ("BESTCHAT_ADDR", "0.0.0.0:0"),
            ("BESTCHAT_EMULATE_AWS", "0"),
            // Dev auth is refused beyond loopback (see dev_auth.rs).
            ("BESTCHAT_DEV_AUTH", "0"),
        ],
    );
    let port = gateway.base_url.rsplit(':').next().unwrap().to_owned();
    let local = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{local}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let invoke = http
        .post(format!("{local}/2015-03-31/functions/migrate/invocations"))
        .header("x-bestchat-emulator-secret", EMULATOR_SECRET)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        invoke.status(),
        StatusCode::NOT_FOUND,
        "the emulation is not served"
    );
}
