//! Large objects by key: tool modules and uploaded files. S3 in AWS, a directory locally.
//! Uploads and downloads of files go straight between the client and the store by presigned
//! requests: their bytes never pass through a function.

use std::time::Duration;

use async_trait::async_trait;

use crate::time::Timestamp;

/// One stored object, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub key: String,
    /// When it was last written.
    pub modified: Timestamp,
}

/// A request a client may make itself, without credentials, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: String,
    pub method: &'static str,
    /// Headers the request must carry as they are (they are part of what was signed).
    pub headers: Vec<(String, String)>,
    pub expires_at: Timestamp,
}

/// What a presigned upload is bound to: the store refuses other bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTerms {
    pub key: String,
    pub size_bytes: u64,
    pub content_type: String,
    /// Lower-case hex.
    pub sha256: String,
    pub expires_in: Duration,
}

/// How a presigned download is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadTerms {
    pub key: String,
    /// The file name the browser saves it as.
    pub file_name: String,
    /// The type it is served as; `inline` shows it in the browser rather than saving it.
    pub content_type: String,
    pub inline: bool,
    pub expires_in: Duration,
}

/// The stored object's size and hash, and its first bytes (to sniff what it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDigest {
    pub size_bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
    pub head: Vec<u8>,
}

/// Bytes of an object's start a digest keeps.
pub const DIGEST_HEAD_BYTES: usize = 8 * 1024;

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

    /// Size and SHA-256 of the object, read in pieces (never whole in memory); `None` when
    /// absent; `TooLarge` rather than reading past `max_bytes`.
    async fn digest(&self, key: &str, max_bytes: u64) -> Result<Option<BlobDigest>, BlobError>;

    /// A PUT the client makes to store exactly the bytes the terms describe.
    async fn presign_put(&self, terms: &UploadTerms) -> Result<Presigned, BlobError>;

    /// A GET the client makes to read the object.
    async fn presign_get(&self, terms: &DownloadTerms) -> Result<Presigned, BlobError>;

    /// The objects whose keys start with `prefix` (a folder: `tools/`), in key order, after
    /// `after`, at most `limit`.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BlobInfo>, BlobError>;
}
