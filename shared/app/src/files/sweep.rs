//! The janitor's part for files: uploads never completed expire, and bytes no file refers to
//! any more (a user or conversation deleted, a deletion that died half-way) are removed.

use bestchat_domain::file::owner_of;
use std::time::Duration;

use bestchat_domain::ports::blobs::BlobStore;
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::ports::store::FileStore;
use bestchat_domain::time::now;

use crate::error::AppError;
use crate::files::settings::FileSettings;

/// Rows expired per run, and objects looked at per run, at most; the rest wait.
const MAX_EXPIRED: u32 = 1_000;
const MAX_SWEPT: usize = 20_000;
const PAGE: usize = 1_000;
/// Where the last run stopped: each run goes on from there, and starts again at the end.
const CURSOR_KEY: &str = "files:sweep:after";
const CURSOR_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How many uploads expired and how many objects went.
pub async fn files(
    store: &dyn FileStore,
    blobs: &dyn BlobStore,
    cache: &dyn Cache,
    settings: &FileSettings,
) -> Result<(u32, u32), AppError> {
    let grace = chrono::Duration::from_std(settings.orphan_after).unwrap_or(chrono::Duration::MAX);
    let cutoff = now() - grace;
    let expired = store.expire_uploads(cutoff, MAX_EXPIRED).await?;
    // Without the cache every run starts at the beginning: slower to reach the end, not wrong.
    let mut after = cache
        .get(CURSOR_KEY)
        .await
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok());
    let (mut seen, mut removed, mut reached_end) = (0usize, 0u32, false);
    while seen < MAX_SWEPT {
        let page = blobs.list("files/", after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else {
            reached_end = true;
            break;
        };
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
            reached_end = true;
            break;
        }
    }
    let saved = match (&after, reached_end) {
        (Some(last), false) => cache.set(CURSOR_KEY, last.as_bytes(), CURSOR_TTL).await,
        _ => cache.delete(CURSOR_KEY).await,
    };
    if let Err(e) = saved {
        tracing::warn!(error = %e, "cannot keep where the file sweep stopped");
    }
    Ok((u32::try_from(expired.len()).unwrap_or(u32::MAX), removed))
}
