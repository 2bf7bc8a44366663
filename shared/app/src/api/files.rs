//! `/api/files`: announce an upload (answered with a presigned PUT), complete it (the stored
//! bytes verified and sniffed, processing started), list, read, download and delete files.

use bestchat_domain::file::{FileRecord, FileStatus, is_sha256_hex, original_key};
use bestchat_domain::ids::FileId;
use bestchat_domain::page::{CursorKey, PageRequest};
use bestchat_domain::ports::blobs::{BlobError, DownloadTerms, Presigned, UploadTerms};
use bestchat_domain::time::now;
use bestchat_domain::{DomainError, ErrorCode};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::files::{self, FILES_PROCESS, declared_kind};
use crate::http::{ApiRequest, ApiResponse, json_response, no_content};
use crate::state::AppState;

pub const CREATE: Handler = handler!(create);
pub const COMPLETE: Handler = handler!(complete);
pub const LIST: Handler = handler!(list);
pub const GET: Handler = handler!(get);
pub const CONTENT: Handler = handler!(content);
pub const DELETE: Handler = handler!(delete);
pub const LIMITS: Handler = handler!(limits);

/// What the caller may upload, to show before an upload starts.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FileLimits {
    pub max_bytes: u64,
    pub per_message: usize,
    pub storage_bytes: u64,
    /// What the caller stores now (the same bytes once).
    pub stored_bytes: u64,
    /// The formats accepted, by name.
    pub formats: Vec<String>,
}

/// `POST /api/files`: what the client is about to upload.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFile {
    pub name: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// The SHA-256 of the bytes, in hex.
    pub sha256: String,
}

/// The request that uploads the bytes: send them as the body with exactly these headers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Upload {
    pub url: String,
    pub method: &'static str,
    pub headers: std::collections::BTreeMap<String, String>,
    pub expires_at: bestchat_domain::time::Timestamp,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Announced {
    pub file: FileRecord,
    /// `null` when the user already stores these bytes: nothing to upload.
    pub upload: Option<Upload>,
}

const MAX_NAME_CHARS: usize = 255;
const MAX_TYPE_CHARS: usize = 255;

fn file_id(request: &ApiRequest) -> Result<FileId, DomainError> {
    request
        .path_param("id")
        .and_then(|raw| raw.parse().ok())
        .ok_or_else(file_not_found)
}

fn file_not_found() -> DomainError {
    DomainError::of(ErrorCode::FileNotFound)
}

fn not_ready(why: &str) -> AppError {
    DomainError::new(ErrorCode::FileNotReady, why).into()
}

/// Presigned URLs of the embedded store are paths on the gateway that answered.
fn absolute(mut presigned: Presigned, request: &ApiRequest) -> Presigned {
    if presigned.url.starts_with('/') {
        let host = request
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
            })
            .unwrap_or("localhost");
        presigned.url = format!("http://{host}{}", presigned.url);
    }
    presigned
}

fn upload(presigned: Presigned) -> Upload {
    Upload {
        url: presigned.url,
        method: presigned.method,
        headers: presigned.headers.into_iter().collect(),
        expires_at: presigned.expires_at,
    }
}

fn validate(body: &NewFile, max_bytes: u64) -> Result<(String, String), DomainError> {
    let name = body.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(DomainError::validation(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters, without control characters or slashes"
        )));
    }
    let content_type = body.content_type.trim().to_ascii_lowercase();
    if content_type.is_empty()
        || content_type.len() > MAX_TYPE_CHARS
        || !content_type
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(DomainError::validation(
            "content_type must be a media type such as application/pdf",
        ));
    }
    let sha256 = body.sha256.to_ascii_lowercase();
    if !is_sha256_hex(&sha256) {
        return Err(DomainError::validation(
            "sha256 must be the 64 hex digits of the file's SHA-256",
        ));
    }
    if body.size_bytes == 0 {
        return Err(DomainError::validation("size_bytes must be above 0"));
    }
    if body.size_bytes > max_bytes {
        return Err(DomainError::new(
            ErrorCode::FileTooLarge,
            format!("files may be at most {max_bytes} bytes"),
        ));
    }
    Ok((name.to_owned(), sha256))
}

async fn create(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let body: NewFile = request.json()?;
    let settings = &state.config.files;
    let (name, sha256) = validate(&body, settings.max_bytes)?;
    let content_type = body.content_type.trim().to_ascii_lowercase();
    let store = state.store();
    let at = now();
    let mut file = FileRecord {
        id: FileId::generate(),
        user_id: user,
        kind: declared_kind(&content_type, &name),
        name,
        content_type,
        size_bytes: i64::try_from(body.size_bytes).unwrap_or(i64::MAX),
        sha256,
        status: FileStatus::Uploading,
        pages: None,
        text_chars: None,
        width: None,
        height: None,
        error: None,
        created_at: at,
        updated_at: at,
    };
    // A failed result is not shared: the bytes may be uploaded and processed again.
    if let Some(held) = store
        .file_with_bytes(user, &file.sha256)
        .await?
        .filter(|held| held.status != FileStatus::Failed)
    {
        // The same bytes again: a new name for them, sharing what processing found.
        file = FileRecord {
            kind: held.kind,
            content_type: held.content_type,
            status: held.status,
            pages: held.pages,
            text_chars: held.text_chars,
            width: held.width,
            height: held.height,
            error: held.error,
            ..file
        };
        store.create_file(&file).await?;
        return json_response(StatusCode::CREATED, &Announced { file, upload: None });
    }
    let stored = u64::try_from(store.storage_bytes(user).await?).unwrap_or(0);
    if stored.saturating_add(body.size_bytes) > settings.storage_bytes {
        return Err(DomainError::new(
            ErrorCode::StorageQuotaExceeded,
            format!(
                "this file would pass the {} bytes this user may store ({stored} stored)",
                settings.storage_bytes
            ),
        )
        .into());
    }
    let presigned = state
        .blobs()
        .presign_put(&UploadTerms {
            key: original_key(user, &file.sha256),
            size_bytes: body.size_bytes,
            content_type: file.content_type.clone(),
            sha256: file.sha256.clone(),
            expires_in: settings.upload_url_ttl,
        })
        .await?;
    store.create_file(&file).await?;
    json_response(
        StatusCode::CREATED,
        &Announced {
            file,
            upload: Some(upload(absolute(presigned, &request))),
        },
    )
}

async fn complete(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id = file_id(&request)?;
    let store = state.store();
    let file = store.get_file(user, id).await?.ok_or_else(file_not_found)?;
    if file.status != FileStatus::Uploading {
        return json_response(StatusCode::ACCEPTED, &file);
    }
    let key = original_key(user, &file.sha256);
    let declared = u64::try_from(file.size_bytes).unwrap_or(0);
    let digest = match state.blobs().digest(&key, declared).await {
        Ok(Some(digest)) if digest.size_bytes == declared && digest.sha256 == file.sha256 => digest,
        Ok(None) => {
            return Err(not_ready(
                "the file's bytes have not arrived; upload them first",
            ));
        }
        Ok(Some(_)) | Err(BlobError::TooLarge(_)) => {
            // What sits under this key is not these bytes: it goes, so a new upload can take
            // its place.
            state.blobs().delete(&key).await?;
            return Err(not_ready(
                "the stored bytes differ from the size or SHA-256 declared; upload them again",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let sniffed = bestchat_files::sniff(&digest.head, &file.name)
        .filter(|s| state.config.files.accepts(s.format));
    let Some(sniffed) = sniffed else {
        store.delete_file(user, id).await?;
        files::forget_bytes(store, state.blobs().as_ref(), user, &file.sha256).await?;
        return Err(DomainError::new(
            ErrorCode::UnsupportedFileType,
            "the file's bytes are not a kind this deployment accepts (documents, spreadsheets, \
             text, code and images); it was removed",
        )
        .into());
    };
    let started = store
        .start_processing(user, id, sniffed.format.kind(), sniffed.content_type, now())
        .await?
        .ok_or_else(file_not_found)?;
    // Announced before processing starts, so no device hears `processing` after `ready`.
    files::announce(&state.devices(), &started).await;
    let job = json!({ "user_id": user, "sha256": file.sha256 });
    if let Err(e) = state.invoker.invoke_async(FILES_PROCESS, &job).await {
        tracing::error!(error = %e, "cannot start processing a file");
        let failure = bestchat_domain::message::MessageError::of(ErrorCode::Unavailable);
        for failed in store
            .finish_processing(user, &file.sha256, &Err(failure), now())
            .await?
        {
            files::announce(&state.devices(), &failed).await;
        }
        return Err(DomainError::of(ErrorCode::Unavailable).into());
    }
    json_response(StatusCode::ACCEPTED, &started)
}

async fn list(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let page = PageRequest::parse(request.query_param("limit"), request.query_param("cursor"))?;
    let files = state.store().list_files(user, &page).await?.within_bytes(
        state.config.max_response_bytes,
        |f| CursorKey {
            at: f.created_at,
            id: *f.id.as_uuid(),
        },
    );
    json_response(StatusCode::OK, &files)
}

async fn limits(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let settings = &state.config.files;
    let stored = state.store().storage_bytes(user).await?;
    json_response(
        StatusCode::OK,
        &FileLimits {
            max_bytes: settings.max_bytes,
            per_message: settings.per_message,
            storage_bytes: settings.storage_bytes,
            stored_bytes: u64::try_from(stored).unwrap_or(0),
            formats: settings
                .types
                .split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
        },
    )
}

async fn get(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let file = state
        .store()
        .get_file(user, file_id(&request)?)
        .await?
        .ok_or_else(file_not_found)?;
    json_response(StatusCode::OK, &file)
}

/// Types a browser may show in place: images and PDFs (which it renders in its own viewer).
/// Everything else is saved, never rendered on a page.
fn shown_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "application/pdf"
    )
}

async fn content(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let file = state
        .store()
        .get_file(user, file_id(&request)?)
        .await?
        .ok_or_else(file_not_found)?;
    if file.status == FileStatus::Uploading {
        return Err(not_ready("the file has not been uploaded yet"));
    }
    let inline = shown_inline(&file.content_type);
    let presigned = state
        .blobs()
        .presign_get(&DownloadTerms {
            key: original_key(user, &file.sha256),
            file_name: file.name.clone(),
            content_type: if inline {
                file.content_type.clone()
            } else {
                "application/octet-stream".into()
            },
            inline,
            expires_in: state.config.files.download_url_ttl,
        })
        .await?;
    let location = absolute(presigned, &request).url;
    http::Response::builder()
        .status(StatusCode::FOUND)
        .header(http::header::LOCATION, location)
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Vec::new())
        .map_err(|e| AppError::Internal(e.to_string()))
}

async fn delete(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let store = state.store();
    let file = store
        .delete_file(user, file_id(&request)?)
        .await?
        .ok_or_else(file_not_found)?;
    files::forget_bytes(store, state.blobs().as_ref(), user, &file.sha256).await?;
    Ok(no_content())
}
