//! Every way a token can be wrong, refused alike by the HTTP routes and by the WebSocket
//! `$connect` authorizer (the code that runs in AWS as the REQUEST authorizer).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bestchat_tests::api::assert_refused;
use bestchat_tests::gateway::{AUDIENCE, ISSUER, TEST_SECRET, now_epoch, sqlite, token};
use bestchat_tests::ws::{WsClient, ws_url};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn claims(overrides: Value) -> Value {
    let now = now_epoch();
    let mut c =
        json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600});
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn signed(algorithm: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn unsigned(alg: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

/// Tokens no route may accept, each named by what is wrong with it.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let key = TEST_SECRET.as_bytes();
    let now = now_epoch();
    let ok = |over: Value| signed(Algorithm::HS256, key, &claims(over));
    vec![
        ("alg none", unsigned("none", &claims(json!({})))),
        ("alg None", unsigned("None", &claims(json!({})))),
        (
            "alg HS512",
            signed(Algorithm::HS512, key, &claims(json!({}))),
        ),
        (
            "alg HS384",
            signed(Algorithm::HS384, key, &claims(json!({}))),
        ),
        (
            "another key",
            signed(
                Algorithm::HS256,
                b"not-the-secret-not-the-secret-xx",
                &claims(json!({})),
            ),
        ),
        ("another issuer", ok(json!({"iss": "https://evil.example"}))),
        ("another audience", ok(json!({"aud": "someone-else"}))),
        (
            "expired an hour ago",
            ok(json!({"exp": now - 3600, "iat": now - 7200})),
        ),
        ("expired beyond the leeway", ok(json!({"exp": now - 45}))),
        (
            "not valid before an hour from now",
            ok(json!({"nbf": now + 3600})),
        ),
        (
            "issued a day ahead",
            ok(json!({"iat": now + 86_400, "exp": now + 90_000})),
        ),
        ("no subject", ok(json!({"sub": null}))),
        ("an empty subject", ok(json!({"sub": ""}))),
        ("no expiry", ok(json!({"exp": null}))),
        ("a tampered payload", {
            let t = token("alice");
            let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
            parts[1] = URL_SAFE_NO_PAD.encode(claims(json!({"sub": "admin"})).to_string());
            parts.join(".")
        }),
        ("not a JWT", "not.a.jwt".to_owned()),
        ("garbage", "%%%".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_on_http_and_websocket() {
    let running = sqlite(&[]).await;
    let gateway = &running.gateway;
    let http = reqwest::Client::new();
    for (what, bad) in bad_tokens() {
        let response = http
            .get(gateway.url("/api/conversations"))
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status.as_u16(), 401, "{what}: {text}");
        assert_refused(status, &text, what);
        let refused = WsClient::connect_url(&ws_url(gateway, &bad)).await;
        assert!(
            refused.is_err(),
            "{what}: the WebSocket authorizer let it in"
        );
    }
    // Skew within the 30 s leeway is forgiven, on both.
    let now = now_epoch();
    let skewed = signed(
        Algorithm::HS256,
        TEST_SECRET.as_bytes(),
        &claims(json!({"iat": now + 10, "nbf": now + 10})),
    );
    let response = http
        .get(gateway.url("/api/conversations"))
        .bearer_auth(&skewed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        WsClient::connect_url(&ws_url(gateway, &skewed))
            .await
            .is_ok()
    );
}
