//! `files-process`: reads a completed upload, extracts its text or resizes its image, stores
//! what it made beside the original, and records the outcome on every file of the user with
//! these bytes. It runs as its own function, so a parser's memory or a crash stays away from
//! chat; a file that cannot be processed fails with the reason, never the function.

use std::sync::Arc;

use bestchat_domain::ErrorCode;
use bestchat_domain::file::{FileStatus, Processed, image_key, original_key, text_key};
use bestchat_domain::ids::UserId;
use bestchat_domain::message::MessageError;
use bestchat_domain::time::now;
use bestchat_files::{Extracted, Failure};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::AppError;
use crate::files;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
struct ProcessJob {
    user_id: UserId,
    sha256: String,
}

pub async fn handle(state: Arc<AppState>, payload: Value) -> Result<Value, AppError> {
    let job: ProcessJob = serde_json::from_value(payload)
        .map_err(|e| AppError::Payload(format!("files-process: {e}")))?;
    let store = state.store();
    let Some(file) = store.file_with_bytes(job.user_id, &job.sha256).await? else {
        return Ok(json!({ "outcome": "gone" }));
    };
    if file.status != FileStatus::Processing {
        return Ok(json!({ "outcome": "done_already" }));
    }
    let outcome = run(&state, job.user_id, &job.sha256, &file.name).await;
    let outcome = match outcome {
        Ok(processed) => Ok(processed),
        Err(Fail::File(failure)) => Err(reason(&failure)),
        // The store or the function failed, not the file: the file says so, and can be
        // uploaded again.
        Err(Fail::App(e)) => {
            tracing::error!(error = %e, "processing a file failed");
            Err(MessageError::of(ErrorCode::Unavailable))
        }
    };
    let ok = outcome.is_ok();
    for changed in store
        .finish_processing(job.user_id, &job.sha256, &outcome, now())
        .await?
    {
        files::announce(&state.devices(), &changed).await;
    }
    Ok(json!({ "outcome": if ok { "ready" } else { "failed" } }))
}

enum Fail {
    File(Failure),
    App(AppError),
}

impl<E: Into<AppError>> From<E> for Fail {
    fn from(e: E) -> Self {
        Self::App(e.into())
    }
}

fn reason(failure: &Failure) -> MessageError {
    let code = match failure {
        Failure::TooLarge(_) => ErrorCode::FileTooLarge,
        Failure::Malformed(_) | Failure::Unsupported(_) => ErrorCode::UnsupportedFileType,
    };
    MessageError {
        code,
        message: failure.to_string(),
    }
}

async fn run(state: &AppState, user: UserId, sha256: &str, name: &str) -> Result<Processed, Fail> {
    let settings = &state.config.files;
    let blobs = state.blobs();
    let bytes = blobs
        .get(&original_key(user, sha256), settings.max_bytes)
        .await?
        .ok_or_else(|| Fail::File(Failure::Malformed("its bytes are gone".into())))?;
    let sniffed = bestchat_files::sniff(&bytes, name)
        .filter(|s| settings.accepts(s.format))
        .ok_or_else(|| Fail::File(Failure::Unsupported("not a kind accepted".into())))?;
    let limits = settings.limits();
    let format = sniffed.format;
    let work =
        tokio::task::spawn_blocking(move || bestchat_files::process(&bytes, format, &limits));
    let extracted = match tokio::time::timeout(settings.process_timeout, work).await {
        Err(_) => {
            return Err(Fail::File(Failure::TooLarge(format!(
                "processing took longer than {} s",
                settings.process_timeout.as_secs()
            ))));
        }
        Ok(Err(joined)) => return Err(Fail::App(AppError::Internal(joined.to_string()))),
        Ok(Ok(result)) => result.map_err(Fail::File)?,
    };
    store_derived(state, user, sha256, &extracted).await?;
    Ok(Processed {
        kind: Some(format.kind()),
        content_type: Some(sniffed.content_type.to_owned()),
        pages: extracted.pages,
        text_chars: extracted
            .text
            .as_ref()
            .map(|t| i64::try_from(t.chars().count()).unwrap_or(i64::MAX)),
        width: extracted.width,
        height: extracted.height,
    })
}

async fn store_derived(
    state: &AppState,
    user: UserId,
    sha256: &str,
    extracted: &Extracted,
) -> Result<(), AppError> {
    let blobs = state.blobs();
    if let Some(text) = &extracted.text {
        blobs
            .put(&text_key(user, sha256), text.as_bytes().to_vec())
            .await?;
    }
    if let Some(image) = &extracted.image {
        blobs
            .put(&image_key(user, sha256, 0), image.bytes.clone())
            .await?;
    }
    for (n, page) in (1u32..).zip(&extracted.page_images) {
        blobs
            .put(&image_key(user, sha256, n), page.bytes.clone())
            .await?;
    }
    Ok(())
}
