//! Blobs in an S3 bucket (`BLOB_BUCKET`).

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use bestchat_domain::ports::blobs::{BlobError, BlobInfo, BlobStore};
use tokio::sync::OnceCell;

use super::check_key;

pub struct S3Blobs {
    bucket: String,
    /// Path-style addressing, for S3 twins on localhost.
    path_style: bool,
    client: OnceCell<aws_sdk_s3::Client>,
}

impl S3Blobs {
    pub fn new(bucket: String, path_style: bool) -> Self {
        Self {
            bucket,
            path_style,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &aws_sdk_s3::Client {
        self.client
            .get_or_init(|| async {
                let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let config = aws_sdk_s3::config::Builder::from(&shared)
                    .force_path_style(self.path_style)
                    .build();
                aws_sdk_s3::Client::from_conf(config)
            })
            .await
    }
}

fn unavailable(e: impl std::fmt::Debug) -> BlobError {
    BlobError::Unavailable(format!("{e:?}"))
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        check_key(key)?;
        self.client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, BlobError> {
        check_key(key)?;
        let sent = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let object = match sent {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let length = object.content_length().and_then(|n| u64::try_from(n).ok());
        if length.is_none_or(|n| n > max_bytes) {
            return Err(BlobError::TooLarge(max_bytes));
        }
        let bytes = object
            .body
            .collect()
            .await
            .map_err(unavailable)?
            .into_bytes();
        if bytes.len() as u64 > max_bytes {
            return Err(BlobError::TooLarge(max_bytes));
        }
        Ok(Some(bytes.to_vec()))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        // S3 answers a delete of a missing key with success too.
        self.client()
            .await
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BlobInfo>, BlobError> {
        check_key(prefix.trim_end_matches('/'))?;
        let page = self
            .client()
            .await
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(after.map(str::to_owned))
            .max_keys(i32::try_from(limit.min(1_000)).unwrap_or(1_000))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(page
            .contents()
            .iter()
            .filter_map(|object| {
                let modified = object.last_modified()?;
                Some(BlobInfo {
                    key: object.key()?.to_owned(),
                    modified: chrono::DateTime::from_timestamp(
                        modified.secs(),
                        modified.subsec_nanos(),
                    )?,
                })
            })
            .collect())
    }
}
