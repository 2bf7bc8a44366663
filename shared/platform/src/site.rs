//! A static web site in an S3 bucket (served by CloudFront): each object with the content type
//! and cache policy it is served with.

use aws_sdk_s3::primitives::ByteStream;
use tokio::sync::OnceCell;

/// One file of the site.
pub struct SiteFile<'a> {
    /// The object key: the URL path without its leading `/`.
    pub key: &'a str,
    pub bytes: &'a [u8],
    pub content_type: &'a str,
    pub cache_control: &'a str,
}

/// An object that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write s3://{bucket}/{key}: {detail}")]
pub struct SiteError {
    bucket: String,
    key: String,
    detail: String,
}

pub struct S3Site {
    bucket: String,
    client: OnceCell<aws_sdk_s3::Client>,
}

impl S3Site {
    pub fn new(bucket: String) -> Self {
        Self {
            bucket,
            client: OnceCell::new(),
        }
    }

    pub fn with_client(bucket: String, client: aws_sdk_s3::Client) -> Self {
        Self {
            bucket,
            client: OnceCell::new_with(Some(client)),
        }
    }

    async fn client(&self) -> &aws_sdk_s3::Client {
        self.client
            .get_or_init(|| async {
                let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                aws_sdk_s3::Client::new(&shared)
            })
            .await
    }

    pub async fn put(&self, file: &SiteFile<'_>) -> Result<(), SiteError> {
        self.client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(file.key)
            .content_type(file.content_type)
            .cache_control(file.cache_control)
            .body(ByteStream::from(file.bytes.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SiteError {
                bucket: self.bucket.clone(),
                key: file.key.to_owned(),
                detail: format!("{e:?}"),
            })
    }
}
