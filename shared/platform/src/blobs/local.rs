//! Blobs as files under one directory (the laptop's `BESTCHAT_DATA_DIR/blobs`).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bestchat_domain::ports::blobs::{BlobError, BlobInfo, BlobStore};

use super::check_key;
use crate::files::uuid_like;

pub struct LocalBlobs {
    dir: PathBuf,
}

impl LocalBlobs {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
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
}
