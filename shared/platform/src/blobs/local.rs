//! Blobs as files under one directory (the laptop's `BESTCHAT_DATA_DIR/blobs`).

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use async_trait::async_trait;
use bestchat_domain::ports::blobs::{
    BlobDigest, BlobError, BlobInfo, BlobStore, DownloadTerms, Presigned, UploadTerms,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::local_urls::{Grant, UrlError, UrlSigner};
use super::{Digester, check_key};
use crate::files::uuid_like;

pub struct LocalBlobs {
    dir: PathBuf,
    urls: UrlSigner,
}

/// Why a presigned upload was refused (the gateway answers as S3 would).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("this URL is for reading, not for writing")]
    NotAnUpload,
    #[error("the body is not the size the URL was signed for")]
    WrongSize,
    #[error("the body's SHA-256 is not the one the URL was signed for")]
    WrongChecksum,
    #[error(transparent)]
    Store(#[from] BlobError),
}

/// Read buffer for hashing and copying.
const CHUNK: usize = 64 * 1024;

impl LocalBlobs {
    /// URLs it presigns are paths on whatever origin serves them.
    pub fn new(dir: PathBuf) -> Self {
        Self::with_origin(dir, None)
    }

    /// URLs it presigns start with `origin` (the local gateway's address).
    pub fn with_origin(dir: PathBuf, origin: Option<String>) -> Self {
        let urls = UrlSigner::new(&dir, origin);
        Self { dir, urls }
    }

    /// What a presigned URL for `key` lets its holder do.
    pub fn grant(&self, key: &str, query: &HashMap<String, String>) -> Result<Grant, UrlError> {
        check_key(key).map_err(|_| UrlError::BadSignature)?;
        self.urls.verify(key, query)
    }

    /// Stores a presigned upload's body if it is exactly the bytes the URL names; a reader
    /// never sees a partial or refused body.
    pub async fn put_presigned(
        &self,
        key: &str,
        query: &HashMap<String, String>,
        mut body: impl AsyncRead + Unpin,
    ) -> Result<(), UploadError> {
        let Grant::Put {
            size_bytes, sha256, ..
        } = self.grant(key, query)?
        else {
            return Err(UploadError::NotAnUpload);
        };
        let path = self.dir.join(key);
        let dir = path
            .parent()
            .map_or_else(|| self.dir.clone(), PathBuf::from);
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        let temp = dir.join(format!(".{}.tmp", uuid_like()));
        let copied = async {
            let mut file = tokio::fs::File::create(&temp).await.map_err(io)?;
            let mut digest = Digester::new(size_bytes);
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = body.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                digest
                    .update(&buf[..n])
                    .map_err(|_| UploadError::WrongSize)?;
                file.write_all(&buf[..n]).await.map_err(io)?;
            }
            let got = digest.finish();
            if got.size_bytes != size_bytes {
                return Err(UploadError::WrongSize);
            }
            if got.sha256 != sha256 {
                return Err(UploadError::WrongChecksum);
            }
            file.sync_all().await.map_err(io)?;
            tokio::fs::rename(&temp, &path).await.map_err(io)?;
            Ok(())
        }
        .await;
        if copied.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        copied
    }

    /// The file a presigned download reads, with how to serve it; `None` when it is gone.
    pub async fn open_presigned(
        &self,
        key: &str,
        query: &HashMap<String, String>,
    ) -> Result<Option<(tokio::fs::File, u64, Grant)>, UploadError> {
        let grant = self.grant(key, query)?;
        if !matches!(grant, Grant::Get { .. }) {
            return Err(UrlError::BadSignature.into());
        }
        match tokio::fs::File::open(self.dir.join(key)).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e).into()),
            Ok(file) => {
                let len = file.metadata().await.map_err(io)?.len();
                Ok(Some((file, len, grant)))
            }
        }
    }
}

fn io(e: std::io::Error) -> BlobError {
    BlobError::Internal(e.to_string())
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        check_key(key)?;
        let path = self.dir.join(key);
        let dir = path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| self.dir.clone());
        let temp = dir.join(format!(".{}.tmp", uuid_like()));
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&temp, bytes)?;
            std::fs::rename(&temp, &path).inspect_err(|_| {
                let _ = std::fs::remove_file(&temp);
            })
        })
        .await
        .map_err(|e| BlobError::Internal(e.to_string()))?
        .map_err(io)
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, BlobError> {
        check_key(key)?;
        let path = self.dir.join(key);
        match tokio::fs::metadata(&path).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
            Ok(meta) if meta.len() > max_bytes => return Err(BlobError::TooLarge(max_bytes)),
            Ok(_) => {}
        }
        tokio::fs::read(&path).await.map(Some).map_err(io)
    }

    async fn digest(&self, key: &str, max_bytes: u64) -> Result<Option<BlobDigest>, BlobError> {
        check_key(key)?;
        let mut file = match tokio::fs::File::open(self.dir.join(key)).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other.map_err(io)?,
        };
        let mut digest = Digester::new(max_bytes);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            digest.update(&buf[..n])?;
        }
        Ok(Some(digest.finish()))
    }

    async fn presign_put(&self, terms: &UploadTerms) -> Result<Presigned, BlobError> {
        check_key(&terms.key)?;
        self.urls.put(terms)
    }

    async fn presign_get(&self, terms: &DownloadTerms) -> Result<Presigned, BlobError> {
        check_key(&terms.key)?;
        self.urls.get(terms)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        match tokio::fs::remove_file(self.dir.join(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BlobInfo>, BlobError> {
        check_key(prefix.trim_end_matches('/'))?;
        let (root, prefix) = (self.dir.clone(), prefix.to_owned());
        let after = after.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            walk(&root, &root.join(&prefix), &mut found)?;
            found.retain(|b: &BlobInfo| after.as_deref().is_none_or(|a| b.key.as_str() > a));
            found.sort_by(|a, b| a.key.cmp(&b.key));
            found.truncate(limit);
            Ok(found)
        })
        .await
        .map_err(|e| BlobError::Internal(e.to_string()))?
    }
}

/// Every object under `dir`, named by its path from `root`; half-written files (hidden
/// temporaries) are not objects.
fn walk(root: &Path, dir: &Path, found: &mut Vec<BlobInfo>) -> Result<(), BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.map_err(io)?,
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let meta = entry.metadata().map_err(io)?;
        if meta.is_dir() {
            walk(root, &path, found)?;
            continue;
        }
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        let key = relative.to_string_lossy().replace('\\', "/");
        if check_key(&key).is_err() || entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let modified = meta.modified().map_err(io)?;
        found.push(BlobInfo {
            key,
            modified: chrono::DateTime::<chrono::Utc>::from(modified),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_is_put_is_got_within_its_bound() {
        let dir = std::env::temp_dir().join(format!("bestchat-blobs-{}", uuid_like()));
        let blobs = LocalBlobs::new(dir.clone());
        assert!(blobs.get("tools/a.wasm", 10).await.unwrap().is_none());
        blobs.delete("tools/a.wasm").await.unwrap();
        blobs
            .put("tools/a.wasm", b"0123456789".to_vec())
            .await
            .unwrap();
        assert_eq!(
            blobs.get("tools/a.wasm", 10).await.unwrap().unwrap(),
            b"0123456789"
        );
        assert!(matches!(
            blobs.get("tools/a.wasm", 9).await,
            Err(BlobError::TooLarge(9))
        ));
        assert!(blobs.put("../escape", vec![1]).await.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn query_of(url: &str) -> HashMap<String, String> {
        let query = url.split_once('?').unwrap().1;
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    #[tokio::test]
    async fn a_presigned_upload_stores_only_the_bytes_it_names() {
        let dir = std::env::temp_dir().join(format!("bestchat-blobs-{}", uuid_like()));
        let blobs = LocalBlobs::new(dir.clone());
        let body = b"hello, file".to_vec();
        let sha = crate::blobs::hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body).as_ref(),
        );
        let terms = UploadTerms {
            key: "files/u/f".into(),
            size_bytes: body.len() as u64,
            content_type: "text/plain".into(),
            sha256: sha.clone(),
            expires_in: std::time::Duration::from_secs(60),
        };
        let q = query_of(&blobs.presign_put(&terms).await.unwrap().url);
        for (wrong, expected) in [
            (b"hello, fil".to_vec(), "size"),
            (b"hello, file!".to_vec(), "size"),
            (b"hello, filE".to_vec(), "SHA-256"),
        ] {
            let refused = blobs.put_presigned("files/u/f", &q, wrong.as_slice()).await;
            assert!(refused.unwrap_err().to_string().contains(expected));
            assert!(blobs.digest("files/u/f", 100).await.unwrap().is_none());
        }
        let refused = blobs.put_presigned("files/u/g", &q, body.as_slice()).await;
        assert!(matches!(
            refused,
            Err(UploadError::Url(UrlError::BadSignature))
        ));
        blobs
            .put_presigned("files/u/f", &q, body.as_slice())
            .await
            .unwrap();
        let digest = blobs.digest("files/u/f", 100).await.unwrap().unwrap();
        assert_eq!(
            (digest.size_bytes, digest.sha256, digest.head),
            (11, sha, body)
        );
        assert!(matches!(
            blobs.digest("files/u/f", 10).await,
            Err(BlobError::TooLarge(10))
        ));
        // A download URL opens the file; it cannot be used to write.
        let get = blobs
            .presign_get(&DownloadTerms {
                key: "files/u/f".into(),
                file_name: "f.txt".into(),
                content_type: "text/plain".into(),
                inline: false,
                expires_in: std::time::Duration::from_secs(60),
            })
            .await
            .unwrap();
        let gq = query_of(&get.url);
        let (_, len, _) = blobs
            .open_presigned("files/u/f", &gq)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(len, 11);
        assert!(matches!(
            blobs.put_presigned("files/u/f", &gq, &b"x"[..]).await,
            Err(UploadError::NotAnUpload)
        ));
        assert!(blobs.open_presigned("files/u/f", &q).await.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
