//! Blob stores: S3 in AWS, a directory on a laptop.

mod local;
mod local_urls;
mod s3;

pub use local::{LocalBlobs, UploadError};
pub use local_urls::{Grant, UrlError};
pub use s3::S3Blobs;
pub use s3::content_disposition;

use bestchat_domain::ports::blobs::{BlobDigest, BlobError, DIGEST_HEAD_BYTES};

/// An object's size, SHA-256 and first bytes, from its pieces as they are read, refusing to
/// read past a bound: both stores digest this way.
struct Digester {
    hash: aws_lc_rs::digest::Context,
    head: Vec<u8>,
    size: u64,
    max_bytes: u64,
}

impl Digester {
    fn new(max_bytes: u64) -> Self {
        Self {
            hash: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            head: Vec::new(),
            size: 0,
            max_bytes,
        }
    }

    fn update(&mut self, piece: &[u8]) -> Result<(), BlobError> {
        self.size += piece.len() as u64;
        if self.size > self.max_bytes {
            return Err(BlobError::TooLarge(self.max_bytes));
        }
        let room = DIGEST_HEAD_BYTES
            .saturating_sub(self.head.len())
            .min(piece.len());
        self.head.extend_from_slice(&piece[..room]);
        self.hash.update(piece);
        Ok(())
    }

    fn finish(self) -> BlobDigest {
        BlobDigest {
            size_bytes: self.size,
            sha256: hex(self.hash.finish().as_ref()),
            head: self.head,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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
