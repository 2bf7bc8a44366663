//! Uploaded files: announced, uploaded by the client straight to the blob store with a
//! presigned request, verified and sniffed at `complete`, processed by their own function
//! (`files-process`), and removed with their bytes. A user's files with the same bytes share
//! one stored object (`files/<user>/<sha256>`).

pub mod attach;
pub mod process;
pub mod settings;
pub mod sweep;

use bestchat_domain::file::{FileKind, FileRecord, prefix_of};
use bestchat_domain::ids::UserId;
use bestchat_domain::ports::blobs::BlobStore;
use bestchat_domain::ports::store::FileStore;
use bestchat_domain::wire::ServerEvent;

use crate::devices::Devices;
use crate::error::AppError;

pub use settings::FileSettings;

/// The logical name of the processing function.
pub const FILES_PROCESS: &str = "files-process";

/// Objects a file's bytes may have left (the original, its text, its images), listed at once.
const DERIVED_MAX: usize = 1_000;

/// A kind to show until the bytes are sniffed, from what the client declared.
pub fn declared_kind(content_type: &str, name: &str) -> FileKind {
    let lower = name.to_ascii_lowercase();
    match content_type {
        t if t.starts_with("image/") => FileKind::Image,
        t if t.contains("spreadsheet") || t == "text/csv" || lower.ends_with(".csv") => {
            FileKind::Spreadsheet
        }
        t if t.starts_with("text/") => FileKind::Text,
        _ => FileKind::Document,
    }
}

/// Removes the bytes of `file` (and what processing made of them) once no file of the user
/// holds them any more.
pub async fn forget_bytes(
    store: &dyn FileStore,
    blobs: &dyn BlobStore,
    user: UserId,
    sha256: &str,
) -> Result<u32, AppError> {
    if store.bytes_in_use(user, sha256).await? {
        return Ok(0);
    }
    let mut removed = 0;
    for blob in blobs
        .list(&prefix_of(user, sha256), None, DERIVED_MAX)
        .await?
    {
        blobs.delete(&blob.key).await?;
        removed += 1;
    }
    Ok(removed)
}

/// Tells every device of the owner what became of the file.
pub async fn announce(devices: &Devices, file: &FileRecord) {
    devices
        .to_every_device(
            file.user_id,
            &ServerEvent::FileUpdated { file: file.clone() },
        )
        .await;
}
