//! Blobs in an S3 bucket (`BLOB_BUCKET`).

use async_trait::async_trait;
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use bestchat_domain::ports::blobs::{
    BlobDigest, BlobError, BlobInfo, BlobStore, DownloadTerms, Presigned, UploadTerms,
};
use bestchat_domain::time::now;
use tokio::sync::OnceCell;

use super::{Digester, check_key};

pub struct S3Blobs {
    bucket: String,
    /// Path-style addressing, for S3 twins on localhost.
    path_style: bool,
    client: OnceCell<aws_sdk_s3::Client>,
}

impl S3Blobs {
    /// The object, `None` when there is no such key.
    async fn object(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, BlobError> {
        check_key(key)?;
        let sent = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match sent {
            Ok(object) => Ok(Some(object)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

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
                // Checksums only where S3 requires them: otherwise the SDK would sign a CRC of
                // a presigned request's empty body, and S3 would refuse the client's bytes.
                let config = aws_sdk_s3::config::Builder::from(&shared)
                    .force_path_style(self.path_style)
                    .request_checksum_calculation(
                        aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                    )
                    .build();
                aws_sdk_s3::Client::from_conf(config)
            })
            .await
    }
}

fn unavailable(e: impl std::fmt::Debug) -> BlobError {
    BlobError::Unavailable(format!("{e:?}"))
}

fn presigning(expires_in: std::time::Duration) -> Result<PresigningConfig, BlobError> {
    PresigningConfig::expires_in(expires_in).map_err(|e| BlobError::Internal(e.to_string()))
}

/// The request as a client must send it; `content-length` is left to the client's HTTP stack
/// (browsers refuse to set it), and S3 still refuses another length since it was signed.
fn presigned(request: &PresignedRequest, expires_in: std::time::Duration) -> Presigned {
    Presigned {
        url: request.uri().to_owned(),
        method: if request.method() == "PUT" {
            "PUT"
        } else {
            "GET"
        },
        headers: request
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        expires_at: now()
            + chrono::Duration::from_std(expires_in).unwrap_or(chrono::Duration::MAX / 2),
    }
}

/// `attachment; filename="…"` with the name reduced to what every browser reads safely, and
/// the whole name in RFC 5987's form.
pub fn content_disposition(file_name: &str, inline: bool) -> String {
    let plain: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = form_urlencoded::byte_serialize(file_name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
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
        let Some(object) = self.object(key).await? else {
            return Ok(None);
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

    async fn digest(&self, key: &str, max_bytes: u64) -> Result<Option<BlobDigest>, BlobError> {
        let Some(mut object) = self.object(key).await? else {
            return Ok(None);
        };
        if object
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .is_some_and(|n| n > max_bytes)
        {
            return Err(BlobError::TooLarge(max_bytes));
        }
        let mut digest = Digester::new(max_bytes);
        while let Some(chunk) = object.body.try_next().await.map_err(unavailable)? {
            digest.update(&chunk)?;
        }
        Ok(Some(digest.finish()))
    }

    async fn presign_put(&self, terms: &UploadTerms) -> Result<Presigned, BlobError> {
        check_key(&terms.key)?;
        let raw = (0..terms.sha256.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(terms.sha256.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| BlobError::Internal("the SHA-256 is not hex".into()))?;
        let request = self
            .client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(&terms.key)
            .content_length(i64::try_from(terms.size_bytes).unwrap_or(i64::MAX))
            .content_type(&terms.content_type)
            .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(raw))
            .presigned(presigning(terms.expires_in)?)
            .await
            .map_err(unavailable)?;
        Ok(presigned(&request, terms.expires_in))
    }

    async fn presign_get(&self, terms: &DownloadTerms) -> Result<Presigned, BlobError> {
        check_key(&terms.key)?;
        let request = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(&terms.key)
            .response_content_type(&terms.content_type)
            .response_content_disposition(content_disposition(&terms.file_name, terms.inline))
            .presigned(presigning(terms.expires_in)?)
            .await
            .map_err(unavailable)?;
        Ok(presigned(&request, terms.expires_in))
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
