//! IAM authentication tokens for RDS (through RDS Proxy) and ElastiCache: a SigV4-presigned
//! `connect` request, minus its scheme, used as the password. A token is valid for 15 minutes
//! for opening a connection, so one is made for every new connection and no password is ever
//! stored or rotated.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use bestchat_domain::ports::credentials::{ConnectionPassword, CredentialError};
use tokio::sync::OnceCell;

/// How long a token may be used to open a connection (the services' maximum).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// What a token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenTarget {
    /// A database user through RDS or RDS Proxy at `host:port`.
    Rds {
        host: String,
        port: u16,
        user: String,
    },
    /// An ElastiCache user of the cache named `cache` (its id, not its endpoint).
    ElastiCache {
        cache: String,
        user: String,
        serverless: bool,
    },
}

impl TokenTarget {
    fn service(&self) -> &'static str {
        match self {
            Self::Rds { .. } => "rds-db",
            Self::ElastiCache { .. } => "elasticache",
        }
    }

    /// The URL that is presigned, and the query parameters it carries before signing.
    fn request(&self) -> (String, Vec<(&'static str, &str)>) {
        match self {
            Self::Rds { host, port, user } => (
                format!("https://{host}:{port}/"),
                vec![("Action", "connect"), ("DBUser", user)],
            ),
            Self::ElastiCache {
                cache,
                user,
                serverless,
            } => {
                let mut params = vec![("Action", "connect"), ("User", user.as_str())];
                if *serverless {
                    params.push(("ResourceType", "ServerlessCache"));
                }
                (format!("http://{cache}/"), params)
            }
        }
    }
}

/// Presigns the `connect` request for `target` at `now`; the token is the URL without scheme.
pub fn presign(
    target: &TokenTarget,
    region: &str,
    credentials: Credentials,
    now: SystemTime,
) -> Result<String, CredentialError> {
    let failed = |e: &dyn std::fmt::Display| CredentialError(format!("SigV4 presign: {e}"));
    let (base, params) = target.request();
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let url = format!("{base}?{query}");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.into();
    let signing = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(target.service())
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(request, &signing)
        .map_err(|e| failed(&e))?
        .into_parts();
    let (_, signature_params) = instructions.into_parts();
    let mut token = url
        .split_once("://")
        .map_or(url.as_str(), |(_, rest)| rest)
        .to_owned();
    for (name, value) in signature_params {
        token.push('&');
        token.push_str(name);
        token.push('=');
        token.push_str(&encode(&value));
    }
    Ok(token)
}

/// SigV4's URI encoding: everything but the unreserved characters.
fn encode(value: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
    if value.bytes().all(unreserved) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

/// Makes a fresh token per connection with the function's own credentials (its role).
pub struct IamAuthToken {
    target: TokenTarget,
    region: Option<String>,
    credentials: OnceCell<(SharedCredentialsProvider, String)>,
}

impl IamAuthToken {
    /// `region` defaults to the environment's (`AWS_REGION` in Lambda).
    pub fn new(target: TokenTarget, region: Option<String>) -> Self {
        Self {
            target,
            region,
            credentials: OnceCell::new(),
        }
    }

    async fn provider(&self) -> Result<&(SharedCredentialsProvider, String), CredentialError> {
        self.credentials
            .get_or_try_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let provider = config
                    .credentials_provider()
                    .ok_or_else(|| CredentialError("no AWS credentials are configured".into()))?;
                let region = self
                    .region
                    .clone()
                    .or_else(|| config.region().map(|r| r.to_string()))
                    .ok_or_else(|| CredentialError("no AWS region is configured".into()))?;
                Ok((provider, region))
            })
            .await
    }
}

#[async_trait]
impl ConnectionPassword for IamAuthToken {
    async fn password(&self) -> Result<String, CredentialError> {
        let (provider, region) = self.provider().await?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| CredentialError(format!("AWS credentials: {e}")))?;
        presign(&self.target, region, credentials, SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(session_token: Option<&str>) -> Credentials {
        Credentials::new(
            "akid",
            "skid",
            session_token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    fn query(token: &str) -> Vec<(String, String)> {
        let (_, query) = token.split_once('?').unwrap_or_default();
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn rds_token_matches_botocore() {
        // botocore's tests/unit/test_signers.py::test_generate_db_auth_token.
        let target = TokenTarget::Rds {
            host: "prod-instance.us-east-1.rds.amazonaws.com".into(),
            port: 3306,
            user: "someusername".into(),
        };
        let credentials = keys(None);
        // 2016-11-07T17:39:33Z
        let token = presign(&target, "us-east-1", credentials, at(1_478_540_373));
        let token = token.unwrap_or_default();
        let expected = "prod-instance.us-east-1.rds.amazonaws.com:3306/?Action=connect\
            &DBUser=someusername&X-Amz-Algorithm=AWS4-HMAC-SHA256\
            &X-Amz-Date=20161107T173933Z&X-Amz-SignedHeaders=host\
            &X-Amz-Expires=900&X-Amz-Credential=akid%2F20161107%2F\
            us-east-1%2Frds-db%2Faws4_request&X-Amz-Signature\
            =d1138cdbc0ca63eec012ec0fc6c2267e03642168f5884a7795320d4c18374c61";
        assert!(token.starts_with("prod-instance.us-east-1.rds.amazonaws.com:3306/?"));
        assert_eq!(query(&token), query(expected));
    }

    #[test]
    fn session_tokens_are_signed_into_the_token() {
        let target = TokenTarget::Rds {
            host: "proxy.example".into(),
            port: 5432,
            user: "app user".into(),
        };
        let credentials = keys(Some("tok/en+="));
        let token =
            presign(&target, "eu-west-1", credentials, at(1_700_000_000)).unwrap_or_default();
        let pairs = query(&token);
        assert!(pairs.contains(&("DBUser".into(), "app%20user".into())));
        assert!(pairs.contains(&("X-Amz-Security-Token".into(), "tok%2Fen%2B%3D".into())));
    }

    #[test]
    fn elasticache_serverless_tokens_name_the_cache_and_resource_type() {
        let target = TokenTarget::ElastiCache {
            cache: "bestchat-cache".into(),
            user: "bestchat-app".into(),
            serverless: true,
        };
        let credentials = keys(None);
        let token =
            presign(&target, "eu-west-1", credentials, at(1_700_000_000)).unwrap_or_default();
        assert!(token.starts_with("bestchat-cache/?"), "{token}");
        let pairs = query(&token);
        for expected in [
            ("Action", "connect"),
            ("User", "bestchat-app"),
            ("ResourceType", "ServerlessCache"),
            ("X-Amz-Expires", "900"),
            (
                "X-Amz-Credential",
                "akid%2F20231114%2Feu-west-1%2Felasticache%2Faws4_request",
            ),
        ] {
            assert!(
                pairs.contains(&(expected.0.into(), expected.1.into())),
                "{expected:?} in {pairs:?}"
            );
        }
        // A node-based cache has no resource type.
        let target = TokenTarget::ElastiCache {
            cache: "bestchat-cache".into(),
            user: "bestchat-app".into(),
            serverless: false,
        };
        let credentials = keys(None);
        let token =
            presign(&target, "eu-west-1", credentials, at(1_700_000_000)).unwrap_or_default();
        assert!(!token.contains("ResourceType"));
    }
}
