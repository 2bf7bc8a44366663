//! Blob stores: S3 in AWS, a directory on a laptop.

mod local;
mod local_urls;
mod s3;

pub use local::{LocalBlobs, UploadError};
pub use local_urls::{BLOB_PATH, Grant, UrlError};
pub use s3::S3Blobs;
pub use s3::content_disposition;

use bestchat_domain::ports::blobs::BlobError;

/// Keys are paths the app makes (`tools/<sha256>.wasm`); anything else is refused before it
/// reaches a file system or a bucket.
fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BlobError::Internal(format!("{key:?} is not a blob key")))
    }
}

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys_cannot_leave_their_place() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "a/./b",
            "a b",
            "a\0b",
            "tools/%2e%2e",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key("tools/0123abcd.wasm").is_ok());
    }
}
