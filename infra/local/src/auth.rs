//! JWT checks as API Gateway's JWT authorizer performs them (signature, expiry, issuer,
//! audience), and dev tokens for a laptop. HS256 with a local secret.

use std::collections::HashMap;
use std::time::Duration;

use bestchat_domain::ids::{Subject, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::Value;

/// Lifetime of a token from `POST /dev/token` (API.md: 24 h).
pub const DEV_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest secret accepted: HS256 keys shorter than the hash are weak.
pub const MIN_SECRET_BYTES: usize = 32;
/// Characters in a dev user name.
pub const DEV_USER_MAX_CHARS: usize = 64;

pub struct JwtAuth {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the token is invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token has no subject")]
    NoSubject,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

impl JwtAuth {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies the `Authorization` header and returns the claims the way API Gateway hands
    /// them to a function: every value a string.
    pub fn verify(
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
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
            token,
            &self.decoding,
            &self.validation,
        )?;
        let claims: HashMap<String, String> = data
            .claims
            .into_iter()
            .map(|(k, v)| (k, claim_text(v)))
            .collect();
        match claims.get("sub") {
            Some(sub) if Subject::parse(sub).is_ok() => Ok(claims),
            _ => Err(AuthError::NoSubject),
        }
    }

    /// A token for `subject`, valid for `ttl` from `now_epoch` (seconds).
    pub fn mint(
        &self,
        subject: &str,
        now_epoch: i64,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: subject,
            iss: &self.issuer,
            aud: &self.audience,
            iat: now_epoch,
            exp: now_epoch.saturating_add(ttl),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }
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

    fn auth() -> JwtAuth {
        JwtAuth::new(SECRET, "iss-a", "aud-a")
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn minted_tokens_verify_with_or_without_bearer() {
        let token = auth().mint("dev:alice", now(), DEV_TOKEN_TTL).unwrap();
        let claims = auth().verify(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(claims["sub"], "dev:alice");
        assert_eq!(claims["iss"], "iss-a");
        assert!(auth().verify(Some(&token)).is_ok());
    }

    #[test]
    fn refuses_missing_expired_forged_and_foreign_tokens() {
        assert!(matches!(auth().verify(None), Err(AuthError::Missing)));
        let expired = auth()
            .mint("u", now() - 7200, Duration::from_secs(3600))
            .unwrap();
        assert!(auth().verify(Some(&expired)).is_err());
        let forged = JwtAuth::new(b"another-secret-another-secret-xx", "iss-a", "aud-a")
            .mint("u", now(), DEV_TOKEN_TTL)
            .unwrap();
        assert!(auth().verify(Some(&forged)).is_err());
        let other_issuer = JwtAuth::new(SECRET, "iss-b", "aud-a")
            .mint("u", now(), DEV_TOKEN_TTL)
            .unwrap();
        assert!(auth().verify(Some(&other_issuer)).is_err());
        let other_audience = JwtAuth::new(SECRET, "iss-a", "aud-b")
            .mint("u", now(), DEV_TOKEN_TTL)
            .unwrap();
        assert!(auth().verify(Some(&other_audience)).is_err());
        assert!(auth().verify(Some("Bearer not.a.jwt")).is_err());
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
