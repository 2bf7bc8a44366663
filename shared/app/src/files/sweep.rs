//! The janitor's part for files: uploads never completed expire, and bytes no file refers to
//! any more (a user or conversation deleted, a deletion that died half-way) are removed.

use bestchat_domain::file::owner_of;
use bestchat_domain::ports::blobs::BlobStore;
use bestchat_domain::ports::store::FileStore;
use bestchat_domain::time::now;

use crate::error::AppError;
use crate::files::settings::FileSettings;

/// Rows expired per run, and objects looked at per run, at most; the rest wait.
const MAX_EXPIRED: u32 = 1_000;
const MAX_SWEPT: usize = 20_000;
const PAGE: usize = 1_000;

/// How many uploads expired and how many objects went.
pub async fn files(
    store: &dyn FileStore,
    blobs: &dyn BlobStore,
    settings: &FileSettings,
) -> Result<(u32, u32), AppError> {
    let grace = chrono::Duration::from_std(settings.orphan_after).unwrap_or(chrono::Duration::MAX);
    let cutoff = now() - grace;
    let expired = store.expire_uploads(cutoff, MAX_EXPIRED).await?;
    let (mut after, mut seen, mut removed) = (None::<String>, 0usize, 0u32);
    while seen < MAX_SWEPT {
        let page = blobs.list("files/", after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        seen += page.len();
        let full = page.len() == PAGE;
        // Objects younger than the grace may belong to an upload whose row is being written.
        for blob in page.iter().filter(|b| b.modified < cutoff) {
            let Some((user, sha)) = owner_of(&blob.key) else {
                continue;
            };
            if !store.bytes_in_use(user, sha).await? {
                blobs.delete(&blob.key).await?;
                removed += 1;
            }
        }
        if !full {
            break;
        }
    }
    Ok((u32::try_from(expired.len()).unwrap_or(u32::MAX), removed))
}
