//! Presigned URLs for the directory store: the local gateway serves `/blobs/<key>` to whoever
//! holds a URL this module signed, as S3 serves a presigned request. The HMAC key is a file
//! beside the blobs, so every process on the laptop (the gateway, a function run apart) signs
//! and checks alike.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use bestchat_domain::ports::blobs::{BlobError, DownloadTerms, Presigned, UploadTerms};
use bestchat_domain::time::{Timestamp, now};

use crate::files::read_or_create_private;

/// The path the gateway serves presigned requests under.
const BLOB_PATH: &str = "/blobs/";

/// What a valid URL lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Put {
        size_bytes: u64,
        content_type: String,
        sha256: String,
    },
    Get {
        file_name: String,
        content_type: String,
        inline: bool,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("the URL is not signed, or not for this request")]
    BadSignature,
    #[error("the URL has expired")]
    Expired,
}

pub(super) struct UrlSigner {
    key_path: PathBuf,
    key: OnceLock<Vec<u8>>,
    /// The gateway's origin (`http://127.0.0.1:3000`); without one, URLs are paths on it.
    base: Option<String>,
}

impl UrlSigner {
    pub(super) fn new(dir: &std::path::Path, base: Option<String>) -> Self {
        Self {
            key_path: dir.join(".url-signing.key"),
            key: OnceLock::new(),
            base,
        }
    }

    fn key(&self) -> Result<&[u8], BlobError> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let bytes = read_or_create_private(&self.key_path, || {
            crate::aead::random_bytes::<32>().map_or_else(|_| Vec::new(), |b| b.to_vec())
        })
        .map_err(|e| BlobError::Internal(format!("URL signing key: {e}")))?;
        if bytes.len() < 32 {
            return Err(BlobError::Internal("URL signing key is too short".into()));
        }
        Ok(self.key.get_or_init(|| bytes))
    }

    fn sign(&self, key: &str, params: &[(&str, String)]) -> Result<String, BlobError> {
        Ok(crate::hmac::sha256_hex(
            self.key()?,
            canonical(key, params).as_bytes(),
        ))
    }

    fn url(&self, key: &str, mut params: Vec<(&'static str, String)>) -> Result<String, BlobError> {
        let signature = self.sign(key, &params)?;
        params.push(("sig", signature));
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        Ok(format!(
            "{}{BLOB_PATH}{key}?{query}",
            self.base.as_deref().unwrap_or("").trim_end_matches('/')
        ))
    }

    pub(super) fn put(&self, terms: &UploadTerms) -> Result<Presigned, BlobError> {
        let expires_at = expiry(terms.expires_in);
        let url = self.url(
            &terms.key,
            vec![
                ("op", "put".into()),
                ("size", terms.size_bytes.to_string()),
                ("type", terms.content_type.clone()),
                ("sha256", terms.sha256.clone()),
                ("exp", expires_at.timestamp().to_string()),
            ],
        )?;
        Ok(Presigned {
            url,
            method: "PUT",
            headers: vec![("content-type".into(), terms.content_type.clone())],
            expires_at,
        })
    }

    pub(super) fn get(&self, terms: &DownloadTerms) -> Result<Presigned, BlobError> {
        let expires_at = expiry(terms.expires_in);
        let url = self.url(
            &terms.key,
            vec![
                ("op", "get".into()),
                ("name", terms.file_name.clone()),
                ("type", terms.content_type.clone()),
                ("inline", u8::from(terms.inline).to_string()),
                ("exp", expires_at.timestamp().to_string()),
            ],
        )?;
        Ok(Presigned {
            url,
            method: "GET",
            headers: Vec::new(),
            expires_at,
        })
    }

    /// The grant a request's key and query carry, checked against the signature and the clock.
    pub(super) fn verify(
        &self,
        key: &str,
        query: &HashMap<String, String>,
    ) -> Result<Grant, UrlError> {
        let field = |name: &str| query.get(name).cloned().ok_or(UrlError::BadSignature);
        let op = field("op")?;
        let names: &[&'static str] = match op.as_str() {
            "put" => &["op", "size", "type", "sha256", "exp"],
            "get" => &["op", "name", "type", "inline", "exp"],
            _ => return Err(UrlError::BadSignature),
        };
        let params = names
            .iter()
            .map(|name| field(name).map(|v| (*name, v)))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = self
            .sign(key, &params)
            .map_err(|_| UrlError::BadSignature)?;
        let given = field("sig")?;
        if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes())
            .is_err()
        {
            return Err(UrlError::BadSignature);
        }
        let exp: i64 = field("exp")?.parse().map_err(|_| UrlError::BadSignature)?;
        if now().timestamp() > exp {
            return Err(UrlError::Expired);
        }
        Ok(match op.as_str() {
            "put" => Grant::Put {
                size_bytes: field("size")?.parse().map_err(|_| UrlError::BadSignature)?,
                content_type: field("type")?,
                sha256: field("sha256")?,
            },
            _ => Grant::Get {
                file_name: field("name")?,
                content_type: field("type")?,
                inline: field("inline")? == "1",
            },
        })
    }
}

fn expiry(expires_in: std::time::Duration) -> Timestamp {
    now() + chrono::Duration::from_std(expires_in).unwrap_or(chrono::Duration::MAX / 2)
}

/// One line per field, so no value can pass for another (values cannot hold a newline that
/// survives: each is length-prefixed).
fn canonical(key: &str, params: &[(&str, String)]) -> String {
    let mut out = format!("{}:{key}\n", key.len());
    for (name, value) in params {
        out.push_str(&format!("{name}={}:{value}\n", value.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn query(url: &str) -> (String, HashMap<String, String>) {
        let (path, query) = url.split_once('?').unwrap();
        let key = path.split_once(BLOB_PATH).unwrap().1.to_owned();
        (
            key,
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    #[test]
    fn a_signed_url_grants_what_it_names_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("bestchat-urls-{}", crate::files::uuid_like()));
        let signer = UrlSigner::new(&dir, Some("http://127.0.0.1:1".into()));
        let terms = UploadTerms {
            key: "files/u/abc".into(),
            size_bytes: 12,
            content_type: "application/pdf".into(),
            sha256: "ab".repeat(32),
            expires_in: Duration::from_secs(60),
        };
        let put = signer.put(&terms).unwrap();
        assert!(put.url.starts_with("http://127.0.0.1:1/blobs/files/u/abc?"));
        let (key, q) = query(&put.url);
        assert_eq!(
            signer.verify(&key, &q),
            Ok(Grant::Put {
                size_bytes: 12,
                content_type: "application/pdf".into(),
                sha256: "ab".repeat(32)
            })
        );
        // Another key, a bigger size, or an op changed: refused.
        assert_eq!(
            signer.verify("files/u/abd", &q),
            Err(UrlError::BadSignature)
        );
        let mut bigger = q.clone();
        bigger.insert("size".into(), "13".into());
        assert_eq!(signer.verify(&key, &bigger), Err(UrlError::BadSignature));
        let mut as_get = q.clone();
        as_get.insert("op".into(), "get".into());
        assert_eq!(signer.verify(&key, &as_get), Err(UrlError::BadSignature));
        // Signed right but past its time.
        let mut stale = q.clone();
        stale.insert("exp".into(), (now().timestamp() - 5).to_string());
        let params: Vec<(&str, String)> = ["op", "size", "type", "sha256", "exp"]
            .iter()
            .map(|n| (*n, stale[*n].clone()))
            .collect();
        stale.insert("sig".into(), signer.sign(&key, &params).unwrap());
        assert_eq!(signer.verify(&key, &stale), Err(UrlError::Expired));
        drop(terms);
        let _ = std::fs::remove_dir_all(dir);
    }
}
