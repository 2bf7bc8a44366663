//! Settings of the local gateway, on top of the app's own.

use std::path::Path;
use std::time::Duration;

use bestchat_app::Config;
use bestchat_app::auth::MIN_SECRET_BYTES;
use bestchat_app::config::{AuthKeys, StoreConfig};
use bestchat_platform::aead::random_bytes;
use bestchat_platform::files::read_or_create_private;

pub use crate::web::WebAuth;

pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";
/// File under the data directory holding the generated signing secret.
pub const SECRET_FILE: &str = "jwt-secret";
/// API Gateway closes a WebSocket connection idle for ten minutes.
pub const DEFAULT_WS_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The deployed janitor runs every five minutes; locally, every minute.
pub const DEFAULT_JANITOR_INTERVAL: Duration = Duration::from_secs(60);

pub struct LocalConfig {
    /// `BESTCHAT_ADDR`; port 0 picks a free port (the banner prints the one chosen).
    pub addr: String,
    /// `BESTCHAT_DEV_AUTH`: serve `POST /dev/token`, which mints a token for any name. On by
    /// default only with the embedded store, on a loopback address and with no identity provider
    /// configured; on anywhere else only with `BESTCHAT_INSECURE_DEV_AUTH=1` as well.
    pub dev_auth: bool,
    /// `BESTCHAT_INSECURE_DEV_AUTH=1`: dev auth was forced on where anyone who reaches the
    /// gateway, or who holds no identity provider's token, could sign in as anyone.
    pub insecure_dev_auth: bool,
    /// `BESTCHAT_WS_IDLE_TIMEOUT_MS`: an idle WebSocket is closed after this.
    pub ws_idle_timeout: Duration,
    /// `BESTCHAT_JANITOR_INTERVAL_MS`: how often the janitor runs (a schedule in the cloud).
    pub janitor_interval: Duration,
    /// `BESTCHAT_EMULATE_AWS`: serve `/@connections/*` and `/2015-03-31/functions/*`, for the
    /// app's own SDK clients (they send the start's secret). Only on a loopback address.
    pub emulate_aws: Option<EmulatorSecret>,
    /// How the web client signs in: dev auth when it is on, else OpenID Connect with PKCE when
    /// `BESTCHAT_OIDC_ISSUER` and `BESTCHAT_OIDC_CLIENT_ID` are set (`BESTCHAT_OIDC_SCOPE`,
    /// default `openid profile email`).
    pub web_auth: WebAuth,
}

/// The scope the client asks the identity provider for when none is configured.
pub const DEFAULT_OIDC_SCOPE: &str = "openid profile email";

/// What the AWS emulation endpoints require of a caller.
#[derive(Clone)]
pub struct EmulatorSecret(pub String);

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct LocalConfigError(String);

impl LocalConfig {
    /// Reads the gateway's own settings, and gives the app a signing secret of its own when the
    /// environment names no keys: a file under the data directory, kept across restarts.
    pub fn from_env(app: &mut Config) -> Result<Self, LocalConfigError> {
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        let flag = |key: &str| match var(key).as_deref() {
            None => Ok(None),
            Some("1" | "true" | "on") => Ok(Some(true)),
            Some("0" | "false" | "off") => Ok(Some(false)),
            Some(other) => Err(LocalConfigError(format!(
                "{key} must be 1 or 0, got {other:?}"
            ))),
        };
        let addr = var("BESTCHAT_ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let loopback = is_loopback(&addr);
        // Tokens come from an identity provider: a name alone must not be one.
        let identity_provider =
            matches!(app.auth.keys, AuthKeys::Jwks(_)) || var("BESTCHAT_OIDC_ISSUER").is_some();
        let insecure_dev_auth = flag("BESTCHAT_INSECURE_DEV_AUTH")?.unwrap_or(false);
        let dev_auth = match flag("BESTCHAT_DEV_AUTH")? {
            Some(on) => on,
            None => {
                matches!(app.store, StoreConfig::Sqlite { .. }) && loopback && !identity_provider
            }
        };
        if dev_auth && !insecure_dev_auth {
            if !loopback {
                return Err(LocalConfigError(format!(
                    "dev auth mints a token for any name, and BESTCHAT_ADDR {addr} is not a \
                     loopback address: anyone who reaches it could sign in as anyone. Set \
                     BESTCHAT_DEV_AUTH=0 and sign in through an identity provider \
                     (BESTCHAT_OIDC_ISSUER, BESTCHAT_JWKS_URL), listen on 127.0.0.1, or force it \
                     with BESTCHAT_INSECURE_DEV_AUTH=1"
                )));
            }
            if identity_provider {
                return Err(LocalConfigError(
                    "dev auth mints a token for any name, and an identity provider is configured \
                     (BESTCHAT_OIDC_ISSUER or BESTCHAT_JWKS_URL): its users could be signed in as \
                     by name. Set BESTCHAT_DEV_AUTH=0, or force it with \
                     BESTCHAT_INSECURE_DEV_AUTH=1"
                        .into(),
                ));
            }
        }
        // A laptop's Ollama is reachable by default only where nobody else reaches the gateway.
        if !loopback && var("BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS").is_none() {
            app.allow_private_provider_urls = false;
        }
        if app.auth.keys == AuthKeys::Unset {
            let secret = stored_secret(&app.data_dir.join(SECRET_FILE))?;
            app.auth.keys = AuthKeys::Secret(String::from_utf8_lossy(&secret).into_owned());
        }
        let millis = |key: &str, default: Duration| match var(key) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map(Duration::from_millis).map_err(|_| {
                LocalConfigError(format!("{key} must be a whole number, got {raw:?}"))
            }),
        };
        let ws_idle_timeout = millis("BESTCHAT_WS_IDLE_TIMEOUT_MS", DEFAULT_WS_IDLE_TIMEOUT)?;
        let janitor_interval = millis("BESTCHAT_JANITOR_INTERVAL_MS", DEFAULT_JANITOR_INTERVAL)?;
        if janitor_interval.is_zero() {
            return Err(LocalConfigError(
                "BESTCHAT_JANITOR_INTERVAL_MS must be at least 1".into(),
            ));
        }
        let emulate_aws = if flag("BESTCHAT_EMULATE_AWS")?.unwrap_or(true) {
            if !loopback {
                return Err(LocalConfigError(format!(
                    "BESTCHAT_ADDR {addr} is not a loopback address, and the AWS emulation \
                     (/@connections, /2015-03-31/functions) must not be reachable from other \
                     machines: listen on 127.0.0.1, or set BESTCHAT_EMULATE_AWS=0 to serve \
                     without it"
                )));
            }
            // The app's SDK clients send this; a secret from the environment lets a test's
            // own clients use the emulation too.
            let secret = match &app.realtime.emulator_secret {
                Some(secret) => secret.clone(),
                None => hex(&random_bytes::<32>().map_err(|e| {
                    LocalConfigError(format!("cannot make the emulator secret: {e}"))
                })?),
            };
            app.realtime.emulator_secret = Some(secret.clone());
            Some(EmulatorSecret(secret))
        } else {
            None
        };
        let web_auth = match (var("BESTCHAT_OIDC_ISSUER"), var("BESTCHAT_OIDC_CLIENT_ID")) {
            _ if dev_auth => WebAuth::Dev,
            (Some(issuer), Some(client_id)) => WebAuth::Oidc {
                issuer,
                client_id,
                scope: var("BESTCHAT_OIDC_SCOPE").unwrap_or_else(|| DEFAULT_OIDC_SCOPE.to_owned()),
            },
            (None, None) => WebAuth::None,
            _ => {
                return Err(LocalConfigError(
                    "set both BESTCHAT_OIDC_ISSUER and BESTCHAT_OIDC_CLIENT_ID, or neither".into(),
                ));
            }
        };
        Ok(Self {
            addr,
            dev_auth,
            insecure_dev_auth: dev_auth && insecure_dev_auth,
            ws_idle_timeout,
            janitor_interval,
            emulate_aws,
            web_auth,
        })
    }
}

/// Whether `addr` (`host:port`) listens on this machine only.
fn is_loopback(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|x| format!("{x:02x}")).collect()
}

/// The signing secret survives restarts, so tokens handed out stay valid; it is created on
/// first run, readable by the owner only.
fn stored_secret(path: &Path) -> Result<Vec<u8>, LocalConfigError> {
    let bytes = read_or_create_private(path, || {
        random_bytes::<32>()
            .map(|b| hex(&b).into_bytes())
            .unwrap_or_default()
    })
    .map_err(|e| LocalConfigError(format!("cannot read or create {}: {e}", path.display())))?;
    let secret = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(LocalConfigError(format!(
            "{} holds fewer than {MIN_SECRET_BYTES} characters; delete it to make a new one",
            path.display()
        )));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_count_as_local() {
        for local in [
            "127.0.0.1:8787",
            "127.0.0.1:0",
            "[::1]:80",
            "localhost:8787",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for open in [
            "0.0.0.0:8787",
            "[::]:8787",
            "192.168.1.5:80",
            "example.com:80",
        ] {
            assert!(!is_loopback(open), "{open}");
        }
    }

    #[test]
    fn secret_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("bestchat-secret-{}", uuid::Uuid::now_v7()));
        let path = dir.join(SECRET_FILE);
        let first = stored_secret(&path).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(stored_secret(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
