//! Dev auth mints a token for any name. It may only ever run where that harms nobody: on a
//! loopback address, with no identity provider configured. Anywhere else the gateway starts
//! without it, or refuses to start when it was asked for, unless forced by a setting that says
//! how unsafe it is (and the banner says so too).

use bestchat_tests::TempDir;
use bestchat_tests::gateway::GatewayProcess;
use reqwest::StatusCode;
use serde_json::json;

/// An empty value leaves a setting unset (the test harness turns dev auth on by default).
const DEFAULT_DEV_AUTH: (&str, &str) = ("BESTCHAT_DEV_AUTH", "");

async fn dev_token_status(base: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/dev/token"))
        .json(&json!({"user": "mallory"}))
        .send()
        .await
        .unwrap()
        .status()
}

/// `http://127.0.0.1:<port>` of a gateway listening on every address.
fn local_url(gateway: &GatewayProcess) -> String {
    let port = gateway.base_url.rsplit(':').next().unwrap().to_owned();
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_shared_on_a_network_starts_without_dev_auth() {
    let dir = TempDir::new("shared-addr");
    // The README's setting for a shared gateway.
    let gateway = GatewayProcess::start_at(
        dir.path(),
        None,
        &[
            ("BESTCHAT_ADDR", "0.0.0.0:0"),
            ("BESTCHAT_EMULATE_AWS", "0"),
            DEFAULT_DEV_AUTH,
            // Unset, as the README's shared gateway has it (the harness allows loopback).
            ("BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS", ""),
        ],
    );
    let base = local_url(&gateway);
    assert_eq!(dev_token_status(&base).await, StatusCode::NOT_FOUND);
    let said = |what: &str| gateway.stdout_lines().iter().any(|l| l.contains(what));
    assert!(said("dev auth: off"), "{:?}", gateway.stdout_lines());
    // Nor may its users reach the machine's own services through a provider's URL.
    assert!(said("provider URLs: public addresses only"));
    let refused = reqwest::Client::new()
        .put(format!("{base}/api/provider-configs/mine"))
        .bearer_auth(bestchat_tests::gateway::token("mallory"))
        .json(
            &json!({"protocol": "openai", "base_url": "http://127.0.0.1:11434/v1",
                      "models": [{"id": "m", "context_window": 8000, "max_output_tokens": 100}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn dev_auth_asked_for_on_a_shared_address_is_refused() {
    let dir = TempDir::new("shared-dev");
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.10:0"] {
        let err = GatewayProcess::refused_start(
            dir.path(),
            &[
                ("BESTCHAT_ADDR", addr),
                ("BESTCHAT_EMULATE_AWS", "0"),
                ("BESTCHAT_DEV_AUTH", "1"),
            ],
        );
        assert!(
            err.contains("not a loopback address") && err.contains("BESTCHAT_INSECURE_DEV_AUTH"),
            "{addr}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_provider_turns_dev_auth_off_and_asking_for_both_is_refused() {
    let dir = TempDir::new("idp");
    let oidc = [
        ("BESTCHAT_OIDC_ISSUER", "https://login.example.com"),
        ("BESTCHAT_OIDC_CLIENT_ID", "bestchat-web"),
    ];
    let mut env = vec![DEFAULT_DEV_AUTH];
    env.extend_from_slice(&oidc);
    let gateway = GatewayProcess::start(dir.path(), None, &env);
    assert_eq!(
        dev_token_status(&gateway.base_url).await,
        StatusCode::NOT_FOUND,
        "SQLite on loopback, but an identity provider is configured"
    );
    let config: serde_json::Value = reqwest::get(format!("{}/config.json", gateway.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["auth"]["mode"], "oidc");
    drop(gateway);
    for idp in [
        vec![oidc[0], oidc[1]],
        // The harness signs with a secret: an IdP's keys replace it.
        vec![
            ("BESTCHAT_JWT_SECRET", ""),
            ("BESTCHAT_JWKS_URL", "https://login.example.com/jwks"),
        ],
    ] {
        let mut env = vec![("BESTCHAT_DEV_AUTH", "1")];
        env.extend(idp);
        let err = GatewayProcess::refused_start(dir.path(), &env);
        assert!(err.contains("identity provider"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forcing_dev_auth_where_it_is_unsafe_is_said_loudly() {
    let dir = TempDir::new("forced");
    let gateway = GatewayProcess::start_at(
        dir.path(),
        None,
        &[
            ("BESTCHAT_ADDR", "0.0.0.0:0"),
            ("BESTCHAT_EMULATE_AWS", "0"),
            ("BESTCHAT_DEV_AUTH", "1"),
            ("BESTCHAT_INSECURE_DEV_AUTH", "1"),
        ],
    );
    assert_eq!(dev_token_status(&local_url(&gateway)).await, StatusCode::OK);
    assert!(
        gateway
            .stdout_lines()
            .iter()
            .any(|l| l.contains("UNSAFE") && l.contains("BESTCHAT_INSECURE_DEV_AUTH=1")),
        "{:?}",
        gateway.stdout_lines()
    );
}
