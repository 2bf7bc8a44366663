//! Tokens signed by an identity provider, verified against its published JWKS as the WebSocket
//! authorizer does in AWS.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use bestchat_app::auth::{JwtVerifier, KeySource};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::now_epoch;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const ISSUER: &str = "https://idp.example.com/pool";
const AUDIENCE: &str = "bestchat-app";

fn key_pair() -> EncodingKey {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    EncodingKey::from_ec_der(pkcs8.as_ref())
}

fn jwk(key: &EncodingKey, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

fn token(key: &EncodingKey, kid: &str, sub: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let claims = serde_json::json!({
        "sub": sub, "iss": ISSUER, "aud": AUDIENCE,
        "iat": now_epoch(), "exp": now_epoch() + 600, "cognito:groups": ["admins", "users"],
    });
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

#[tokio::test]
async fn tokens_verify_against_the_published_keys() {
    let signing = key_pair();
    let set = JwkSet {
        keys: vec![jwk(&signing, "key-1")],
    };
    let idp =
        FakeProvider::start(vec![], Reply::json(200, serde_json::to_vec(&set).unwrap())).await;
    let verifier = JwtVerifier::new(
        KeySource::Jwks(format!("{}/.well-known/jwks.json", idp.base_url)),
        ISSUER,
        AUDIENCE,
    );

    let claims = verifier
        .verify(Some(&token(&signing, "key-1", "user-42")))
        .await
        .unwrap();
    assert_eq!(claims["sub"], "user-42");
    assert_eq!(
        claims["cognito:groups"], "[admins users]",
        "rendered as API Gateway does"
    );
    // The keys are fetched once and reused.
    verifier
        .verify(Some(&token(&signing, "key-1", "user-43")))
        .await
        .unwrap();
    assert_eq!(idp.requests().len(), 1);
    assert_eq!(idp.requests()[0].path, "/.well-known/jwks.json");

    // Another key under a known id, and an id nobody published, are refused.
    let impostor = key_pair();
    assert!(
        verifier
            .verify(Some(&token(&impostor, "key-1", "user-42")))
            .await
            .is_err()
    );
    assert!(
        verifier
            .verify(Some(&token(&impostor, "key-9", "user-42")))
            .await
            .is_err()
    );
    // An unknown id does not make the verifier fetch again at once.
    assert!(
        verifier
            .verify(Some(&token(&impostor, "key-8", "user-42")))
            .await
            .is_err()
    );
    assert!(
        idp.requests().len() <= 2,
        "{} fetches",
        idp.requests().len()
    );
}

#[tokio::test]
async fn a_failing_identity_provider_is_asked_at_most_once_a_minute() {
    let signing = key_pair();
    let idp = FakeProvider::start(vec![], Reply::json(503, "{}")).await;
    let verifier = JwtVerifier::new(
        KeySource::Jwks(format!("{}/.well-known/jwks.json", idp.base_url)),
        ISSUER,
        AUDIENCE,
    );
    for i in 0..20 {
        let refused = verifier
            .verify(Some(&token(&signing, "key-1", &format!("user-{i}"))))
            .await;
        assert!(refused.is_err());
    }
    assert_eq!(
        idp.requests().len(),
        1,
        "one fetch, however many tokens arrive"
    );
}

#[tokio::test]
async fn an_oversized_key_set_is_not_read() {
    let signing = key_pair();
    let padding = "x".repeat(bestchat_app::auth::JWKS_MAX_BYTES + 1);
    let huge = format!(r#"{{"keys":[],"padding":"{padding}"}}"#);
    let idp = FakeProvider::start(vec![], Reply::json(200, huge)).await;
    let verifier = JwtVerifier::new(
        KeySource::Jwks(format!("{}/.well-known/jwks.json", idp.base_url)),
        ISSUER,
        AUDIENCE,
    );
    let refused = verifier
        .verify(Some(&token(&signing, "key-1", "user-1")))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("exceeds"), "{refused}");
}
