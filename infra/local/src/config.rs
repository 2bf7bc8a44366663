//! Settings of the local gateway, on top of the app's own.

use std::path::Path;

use bestchat_app::Config;
use bestchat_app::config::StoreConfig;
use bestchat_platform::aead::random_bytes;
use bestchat_platform::files::read_or_create_private;

use crate::auth::MIN_SECRET_BYTES;

pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";
pub const DEFAULT_ISSUER: &str = "bestchat-local";
pub const DEFAULT_AUDIENCE: &str = "bestchat";
/// File under the data directory holding the generated signing secret.
pub const SECRET_FILE: &str = "jwt-secret";

pub struct LocalConfig {
    /// `BESTCHAT_ADDR`; port 0 picks a free port (the banner prints the one chosen).
    pub addr: String,
    /// `BESTCHAT_DEV_AUTH`: serve `POST /dev/token`. On by default with the embedded store only.
    pub dev_auth: bool,
    pub jwt_secret: Vec<u8>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct LocalConfigError(String);

impl LocalConfig {
    pub fn from_env(app: &Config) -> Result<Self, LocalConfigError> {
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        let dev_auth = match var("BESTCHAT_DEV_AUTH").as_deref() {
            None => matches!(app.store, StoreConfig::Sqlite { .. }),
            Some("1" | "true" | "on") => true,
            Some("0" | "false" | "off") => false,
            Some(other) => {
                return Err(LocalConfigError(format!(
                    "BESTCHAT_DEV_AUTH must be 1 or 0, got {other:?}"
                )));
            }
        };
        let jwt_secret = match var("BESTCHAT_JWT_SECRET") {
            Some(secret) if secret.len() >= MIN_SECRET_BYTES => secret.into_bytes(),
            Some(_) => {
                return Err(LocalConfigError(format!(
                    "BESTCHAT_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
                )));
            }
            None => stored_secret(&app.data_dir.join(SECRET_FILE))?,
        };
        Ok(Self {
            addr: var("BESTCHAT_ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_owned()),
            dev_auth,
            jwt_secret,
            jwt_issuer: var("BESTCHAT_JWT_ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
            jwt_audience: var("BESTCHAT_JWT_AUDIENCE")
                .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned()),
        })
    }
}

/// The signing secret survives restarts, so tokens handed out stay valid; it is created on
/// first run, readable by the owner only.
fn stored_secret(path: &Path) -> Result<Vec<u8>, LocalConfigError> {
    let bytes = read_or_create_private(path, || {
        random_bytes::<32>()
            .map(|b| {
                b.iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<String>()
                    .into_bytes()
            })
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
