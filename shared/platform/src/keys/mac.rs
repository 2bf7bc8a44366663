//! Tags for what the deployment reads back from shared storage: HMAC-SHA-256 under a KMS HMAC
//! key (`GenerateMac`/`VerifyMac`, so the key never leaves KMS) or under a local key file.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::KmsKey;
use async_trait::async_trait;
use aws_lc_rs::hmac;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use bestchat_domain::ports::keys::{Authenticator, VaultError};

use crate::aead::random_bytes;
use crate::files::read_or_create_private;

/// A key in a file created with mode 0600, read (or made) on first use: building one touches no
/// file, so a process that never tags or verifies never needs a writable directory.
pub struct LocalMac {
    path: PathBuf,
    key: OnceLock<Result<hmac::Key, VaultError>>,
}

impl LocalMac {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            key: OnceLock::new(),
        }
    }

    fn key(&self) -> Result<&hmac::Key, VaultError> {
        self.key
            .get_or_init(|| open(&self.path))
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn open(path: &Path) -> Result<hmac::Key, VaultError> {
    let bytes = read_or_create_private(path, || {
        random_bytes::<32>().map(|k| k.to_vec()).unwrap_or_default()
    })
    .map_err(|e| VaultError::Unavailable(format!("{}: {e}", path.display())))?;
    if bytes.len() != 32 || bytes.iter().all(|b| *b == 0) {
        return Err(VaultError::Unavailable(format!(
            "{}: not a 32-byte key",
            path.display()
        )));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

#[async_trait]
impl Authenticator for LocalMac {
    async fn tag(&self, message: &[u8]) -> Result<Vec<u8>, VaultError> {
        Ok(hmac::sign(self.key()?, message).as_ref().to_vec())
    }

    async fn verify(&self, message: &[u8], tag: &[u8]) -> Result<bool, VaultError> {
        Ok(hmac::verify(self.key()?, message, tag).is_ok())
    }
}

/// A KMS HMAC key (`HMAC_256`, usage `GENERATE_VERIFY_MAC`).
pub struct KmsMac {
    key: KmsKey,
}

impl KmsMac {
    pub fn new(key_id: String) -> Self {
        Self {
            key: KmsKey::new(key_id),
        }
    }

    pub fn with_client(key_id: String, client: aws_sdk_kms::Client) -> Self {
        Self {
            key: KmsKey::with_client(key_id, client),
        }
    }
}

fn unavailable(e: impl std::fmt::Debug) -> VaultError {
    VaultError::Unavailable(format!("{e:?}"))
}

#[async_trait]
impl Authenticator for KmsMac {
    async fn tag(&self, message: &[u8]) -> Result<Vec<u8>, VaultError> {
        let out = self
            .key
            .client()
            .await
            .generate_mac()
            .key_id(&self.key.id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .send()
            .await
            .map_err(unavailable)?;
        out.mac
            .map(Blob::into_inner)
            .ok_or_else(|| VaultError::Unavailable("GenerateMac returned no MAC".into()))
    }

    async fn verify(&self, message: &[u8], tag: &[u8]) -> Result<bool, VaultError> {
        let sent = self
            .key
            .client()
            .await
            .verify_mac()
            .key_id(&self.key.id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .mac(Blob::new(tag))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(out.mac_valid),
            // KMS answers a MAC that does not verify with an error, not `false`.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_kms_invalid_mac_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tag_verifies_only_its_message_under_its_key() {
        let dir = std::env::temp_dir().join(format!("bestchat-mac-{}", crate::files::uuid_like()));
        let mac = LocalMac::new(dir.join("k"));
        let tag = mac.tag(b"code").await.unwrap();
        assert!(mac.verify(b"code", &tag).await.unwrap());
        assert!(!mac.verify(b"other", &tag).await.unwrap());
        assert!(!mac.verify(b"code", &tag[..16]).await.unwrap());
        let other = LocalMac::new(dir.join("k2"));
        assert!(!other.verify(b"code", &tag).await.unwrap());
        // The key is kept: a second process verifies the first one's tags.
        let again = LocalMac::new(dir.join("k"));
        assert!(again.verify(b"code", &tag).await.unwrap());
        // A key that cannot be made is an error at use, not at start.
        let nowhere = LocalMac::new(dir.join("k").join("under-a-file"));
        assert!(matches!(
            nowhere.tag(b"code").await,
            Err(VaultError::Unavailable(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
