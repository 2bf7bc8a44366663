//! JWT checks as API Gateway performs them (signature, expiry, issuer, audience): HS256 with a
//! shared secret, or any key of the identity provider's JWKS (RS256, ES256, …). Used by the
//! WebSocket `$connect` authorizer and by the local gateway for every route.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bestchat_domain::ids::{Subject, UserId};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::RwLock;

/// Lifetime of a token from `POST /dev/token` (API.md: 24 h).
pub const DEV_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest secret accepted: HS256 keys shorter than the hash are weak.
pub const MIN_SECRET_BYTES: usize = 32;
/// Characters in a dev user name.
pub const DEV_USER_MAX_CHARS: usize = 64;
/// How long fetched signing keys are trusted before they are fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(60 * 60);
/// Least time between two fetches caused by an unknown key id.
pub const JWKS_REFETCH_MIN: Duration = Duration::from_secs(60);
/// Longest a JWKS fetch may take.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read (real ones are a few kilobytes).
pub const JWKS_MAX_BYTES: usize = 64 * 1024;
/// Clock skew forgiven on `exp`, `nbf` and `iat` unless `BESTCHAT_JWT_LEEWAY_S` says otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Where signing keys come from.
pub enum KeySource {
    /// HS256 with a shared secret (the local gateway, or a self-issued deployment).
    Secret(Vec<u8>),
    /// The identity provider's published keys (`BESTCHAT_JWKS_URL`).
    Jwks(String),
}

type KeySet = HashMap<String, (DecodingKey, Algorithm)>;

/// The identity provider's keys as last fetched, and when a fetch was last tried.
#[derive(Default)]
struct Jwks {
    keys: Option<(KeySet, Instant)>,
    tried: Option<Instant>,
}

pub struct JwtVerifier {
    issuer: String,
    audience: String,
    leeway: Duration,
    source: KeySource,
    jwks: RwLock<Jwks>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the token is invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token was issued in the future")]
    IssuedInTheFuture,
    #[error("the token has no subject")]
    NoSubject,
    #[error("the token is not for this application (aud or client_id)")]
    WrongAudience,
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the signing keys cannot be fetched: {0}")]
    Keys(String),
    #[error("no token keys are configured (BESTCHAT_JWT_SECRET or BESTCHAT_JWKS_URL)")]
    NotConfigured,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

impl JwtVerifier {
    pub fn new(source: KeySource, issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway: DEFAULT_LEEWAY,
            source,
            jwks: RwLock::new(Jwks::default()),
        }
    }

    /// Forgives `leeway` of clock skew on `exp`, `nbf` and `iat`.
    pub fn with_leeway(self, leeway: Duration) -> Self {
        Self { leeway, ..self }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        // Checked by `check_audience`, as API Gateway does it.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway.as_secs();
        validation
    }

    /// API Gateway's rule: `aud` must name this application; a token without `aud` must carry
    /// it as `client_id` instead (Cognito access tokens).
    fn check_audience(&self, claims: &serde_json::Map<String, Value>) -> Result<(), AuthError> {
        let names_us = |v: &Value| v.as_str() == Some(self.audience.as_str());
        let ok = match (claims.get("aud"), claims.get("client_id")) {
            (Some(Value::Array(audiences)), _) => audiences.iter().any(names_us),
            (Some(aud), _) => names_us(aud),
            (None, Some(client_id)) => names_us(client_id),
            (None, None) => false,
        };
        ok.then_some(()).ok_or(AuthError::WrongAudience)
    }

    /// jsonwebtoken does not look at `iat`; a token issued later than now is forged or minted
    /// by a clock that cannot be trusted.
    fn check_issued_at(&self, claims: &serde_json::Map<String, Value>) -> Result<(), AuthError> {
        let Some(iat) = claims.get("iat") else {
            return Ok(());
        };
        let now = jsonwebtoken::get_current_timestamp();
        let latest = now.saturating_add(self.leeway.as_secs());
        match iat.as_f64() {
            Some(at) if at.is_finite() && at <= latest as f64 => Ok(()),
            _ => Err(AuthError::IssuedInTheFuture),
        }
    }

    /// Verifies an `Authorization` header (or a bare token) and returns the claims the way API
    /// Gateway hands them to a function: every value a string.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
    ) -> Result<HashMap<String, String>, AuthError> {
        let raw = authorization
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(AuthError::Missing)?;
        // API Gateway accepts the token with or without the Bearer prefix.
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        let claims = match &self.source {
            KeySource::Secret(secret) => jsonwebtoken::decode::<serde_json::Map<String, Value>>(
                token,
                &DecodingKey::from_secret(secret),
                &self.validation(Algorithm::HS256),
            )?,
            KeySource::Jwks(url) => {
                let kid = jsonwebtoken::decode_header(token)?
                    .kid
                    .ok_or(AuthError::UnknownKey)?;
                let (key, algorithm) = self.key(url, &kid).await?;
                jsonwebtoken::decode::<serde_json::Map<String, Value>>(
                    token,
                    &key,
                    &self.validation(algorithm),
                )?
            }
        }
        .claims;
        self.check_audience(&claims)?;
        self.check_issued_at(&claims)?;
        let claims: HashMap<String, String> = claims
            .into_iter()
            .map(|(k, v)| (k, claim_text(v)))
            .collect();
        match claims.get("sub") {
            Some(sub) if Subject::parse(sub).is_ok() => Ok(claims),
            _ => Err(AuthError::NoSubject),
        }
    }

    /// The key with this id, fetching the set when it is stale or the id is new. Fetches are at
    /// most one a minute whatever happens, so forged key ids or a failing identity provider
    /// cannot make us hammer it; while a fetch fails, the keys fetched before still serve.
    async fn key(&self, url: &str, kid: &str) -> Result<(DecodingKey, Algorithm), AuthError> {
        let settled = |jwks: &Jwks| {
            let known = jwks
                .keys
                .as_ref()
                .and_then(|(keys, _)| keys.get(kid).cloned());
            let fresh = jwks
                .keys
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() < JWKS_TTL);
            let throttled = jwks.tried.is_some_and(|at| at.elapsed() < JWKS_REFETCH_MIN);
            match known {
                Some(found) if fresh || throttled => Some(Ok(found)),
                None if throttled => Some(Err(AuthError::UnknownKey)),
                _ => None,
            }
        };
        if let Some(answer) = settled(&*self.jwks.read().await) {
            return answer;
        }
        let mut jwks = self.jwks.write().await;
        // Another request may have fetched while this one waited for the lock.
        if let Some(answer) = settled(&jwks) {
            return answer;
        }
        jwks.tried = Some(Instant::now());
        match fetch_jwks(url).await {
            Ok(keys) => {
                let found = keys.get(kid).cloned();
                jwks.keys = Some((keys, Instant::now()));
                found.ok_or(AuthError::UnknownKey)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the signing keys; using the ones fetched before");
                jwks.keys
                    .as_ref()
                    .and_then(|(keys, _)| keys.get(kid).cloned())
                    .ok_or(e)
            }
        }
    }

    /// A token for `subject`, valid for `ttl` from `now_epoch` (seconds). Only a secret can sign.
    pub fn mint(&self, subject: &str, now_epoch: i64, ttl: Duration) -> Result<String, AuthError> {
        let KeySource::Secret(secret) = &self.source else {
            return Err(AuthError::Keys(
                "only a shared secret can sign tokens".into(),
            ));
        };
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: subject,
            iss: &self.issuer,
            aud: &self.audience,
            iat: now_epoch,
            exp: now_epoch.saturating_add(ttl),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )?)
    }
}

async fn fetch_jwks(url: &str) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
    let failed = |e: String| AuthError::Keys(e);
    let client = reqwest::Client::builder()
        .timeout(JWKS_FETCH_TIMEOUT)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| failed(e.to_string()))?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
        if body.len() + chunk.len() > JWKS_MAX_BYTES {
            return Err(failed(format!("the JWKS exceeds {JWKS_MAX_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let set: JwkSet = serde_json::from_slice(&body).map_err(|e| failed(e.to_string()))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let algorithm = Algorithm::from_str(&jwk.common.key_algorithm?.to_string()).ok()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, (key, algorithm)))
        })
        .collect())
}

/// API Gateway renders non-string claims as text: arrays as `[a b]`, others as JSON.
fn claim_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Array(items) => {
            let parts: Vec<String> = items.into_iter().map(claim_text).collect();
            format!("[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

/// The subject and user id of a dev user: the same name always gives the same user.
pub fn dev_subject(name: &str) -> Option<(String, UserId)> {
    let valid = !name.is_empty()
        && name.chars().count() <= DEV_USER_MAX_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if !valid {
        return None;
    }
    let subject = format!("dev:{name}");
    let user = UserId::from_subject(&Subject::parse(&subject).ok()?);
    Some((subject, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn auth() -> JwtVerifier {
        JwtVerifier::new(KeySource::Secret(SECRET.to_vec()), "iss-a", "aud-a")
    }

    fn with(secret: &[u8], iss: &str, aud: &str) -> JwtVerifier {
        JwtVerifier::new(KeySource::Secret(secret.to_vec()), iss, aud)
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[tokio::test]
    async fn minted_tokens_verify_with_or_without_bearer() {
        let token = auth().mint("dev:alice", now(), DEV_TOKEN_TTL).unwrap();
        let claims = auth()
            .verify(Some(&format!("Bearer {token}")))
            .await
            .unwrap();
        assert_eq!(claims["sub"], "dev:alice");
        assert_eq!(claims["iss"], "iss-a");
        assert!(auth().verify(Some(&token)).await.is_ok());
    }

    #[tokio::test]
    async fn refuses_missing_expired_forged_and_foreign_tokens() {
        assert!(matches!(auth().verify(None).await, Err(AuthError::Missing)));
        let expired = auth()
            .mint("u", now() - 7200, Duration::from_secs(3600))
            .unwrap();
        assert!(auth().verify(Some(&expired)).await.is_err());
        let forged = with(b"another-secret-another-secret-xx", "iss-a", "aud-a")
            .mint("u", now(), DEV_TOKEN_TTL)
            .unwrap();
        assert!(auth().verify(Some(&forged)).await.is_err());
        let other_issuer = with(SECRET, "iss-b", "aud-a")
            .mint("u", now(), DEV_TOKEN_TTL)
            .unwrap();
        assert!(auth().verify(Some(&other_issuer)).await.is_err());
        let other_audience = with(SECRET, "iss-a", "aud-b")
            .mint("u", now(), DEV_TOKEN_TTL)
            .unwrap();
        assert!(auth().verify(Some(&other_audience)).await.is_err());
        assert!(auth().verify(Some("Bearer not.a.jwt")).await.is_err());
    }

    fn signed(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn claims(iat: i64, nbf: Option<i64>, exp: i64) -> serde_json::Value {
        let mut c =
            serde_json::json!({"sub": "u", "iss": "iss-a", "aud": "aud-a", "iat": iat, "exp": exp});
        if let Some(nbf) = nbf {
            c["nbf"] = nbf.into();
        }
        c
    }

    #[tokio::test]
    async fn cognito_access_tokens_name_the_client_instead_of_an_audience() {
        let t = now();
        let access = |client: &str| {
            signed(serde_json::json!({
                "sub": "u", "iss": "iss-a", "client_id": client, "token_use": "access",
                "iat": t, "exp": t + 600
            }))
        };
        assert!(auth().verify(Some(&access("aud-a"))).await.is_ok());
        assert!(matches!(
            auth().verify(Some(&access("another-client"))).await,
            Err(AuthError::WrongAudience)
        ));
        // An `aud` is authoritative: a matching client_id does not rescue a foreign audience.
        let both = signed(serde_json::json!({
            "sub": "u", "iss": "iss-a", "aud": "aud-b", "client_id": "aud-a", "iat": t, "exp": t + 600
        }));
        assert!(auth().verify(Some(&both)).await.is_err());
        let listed = signed(serde_json::json!({
            "sub": "u", "iss": "iss-a", "aud": ["x", "aud-a"], "iat": t, "exp": t + 600
        }));
        assert!(auth().verify(Some(&listed)).await.is_ok());
        let neither =
            signed(serde_json::json!({"sub": "u", "iss": "iss-a", "iat": t, "exp": t + 600}));
        assert!(matches!(
            auth().verify(Some(&neither)).await,
            Err(AuthError::WrongAudience)
        ));
        let numeric = signed(
            serde_json::json!({"sub": "u", "iss": "iss-a", "client_id": 7, "iat": t, "exp": t + 600}),
        );
        assert!(auth().verify(Some(&numeric)).await.is_err());
    }

    #[tokio::test]
    async fn the_token_clock_is_checked_within_the_leeway() {
        let t = now();
        let ok = signed(claims(t, Some(t), t + 600));
        assert!(auth().verify(Some(&ok)).await.is_ok());
        let not_yet = signed(claims(t, Some(t + 3600), t + 7200));
        assert!(auth().verify(Some(&not_yet)).await.is_err(), "nbf ahead");
        let from_tomorrow = signed(claims(t + 86_400, None, t + 90_000));
        assert!(matches!(
            auth().verify(Some(&from_tomorrow)).await,
            Err(AuthError::IssuedInTheFuture)
        ));
        // Skew within the leeway is forgiven; beyond it is not.
        let skewed = signed(claims(t + 20, Some(t + 20), t + 600));
        assert!(auth().verify(Some(&skewed)).await.is_ok());
        let just_expired = signed(claims(t - 600, None, t - 20));
        assert!(auth().verify(Some(&just_expired)).await.is_ok());
        let expired = signed(claims(t - 600, None, t - 45));
        assert!(auth().verify(Some(&expired)).await.is_err(), "past 30 s");
        let strict = auth().with_leeway(Duration::ZERO);
        assert!(strict.verify(Some(&skewed)).await.is_err());
        assert!(DEFAULT_LEEWAY <= Duration::from_secs(30));
    }

    #[tokio::test]
    async fn unsigned_and_other_algorithm_tokens_are_refused() {
        use base64::Engine;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let t = now();
        let body = b64(claims(t, None, t + 600));
        for alg in ["none", "None", "NONE"] {
            let header = b64(serde_json::json!({"alg": alg, "typ": "JWT"}));
            let unsigned = format!("{header}.{body}.");
            assert!(auth().verify(Some(&unsigned)).await.is_err(), "{alg}");
        }
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(t, None, t + 600),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(auth().verify(Some(&hs512)).await.is_err(), "only HS256");
    }

    #[test]
    fn claims_are_rendered_as_text() {
        assert_eq!(claim_text(serde_json::json!(["a", "b"])), "[a b]");
        assert_eq!(claim_text(serde_json::json!(5)), "5");
    }

    #[test]
    fn dev_subjects() {
        let (sub, id) = dev_subject("alice").unwrap();
        assert_eq!(sub, "dev:alice");
        assert_eq!(dev_subject("alice").unwrap().1, id);
        assert_ne!(dev_subject("bob").unwrap().1, id);
        assert!(dev_subject("").is_none());
        assert!(dev_subject("a b").is_none());
    }
}
