//! Large objects by key: tool modules (and uploads later). S3 in AWS, a directory locally.

use async_trait::async_trait;

use crate::time::Timestamp;

/// One stored object, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub key: String,
    /// When it was last written.
    pub modified: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The object is larger than the caller will read.
    #[error("the object is larger than {0} bytes")]
    TooLarge(u64),
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    #[error("blob store failure: {0}")]
    Internal(String),
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes the object whole (a reader never sees part of it).
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;

    /// `None` when there is no such object; `TooLarge` rather than reading past `max_bytes`.
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, BlobError>;

    /// Removes the object; removing one that is not there is no error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// The objects whose keys start with `prefix` (a folder: `tools/`), in key order, after
    /// `after`, at most `limit`.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BlobInfo>, BlobError>;
}
