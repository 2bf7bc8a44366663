//! `/blobs/<key>`: the embedded store's stand-in for S3's presigned requests. An upload is
//! stored only if it is exactly the bytes its URL was signed for; a download is served as the
//! URL says, never as a page of this origin (a sandbox policy, no sniffing).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use bestchat_app::config::BlobConfig;
use bestchat_platform::blobs::{Grant, LocalBlobs, UploadError, UrlError, content_disposition};
use futures_util::TryStreamExt;
use http::{StatusCode, header};
use tokio_util::io::{ReaderStream, StreamReader};

/// The routes, when blobs are files on this machine (with S3 the URLs point at S3).
pub fn router(config: &BlobConfig) -> Router {
    let BlobConfig::Local { dir } = config else {
        return Router::new();
    };
    let blobs = Arc::new(LocalBlobs::new(dir.clone()));
    let reader = Arc::clone(&blobs);
    Router::new().route(
        "/blobs/{*key}",
        put(move |key, query, body| upload(blobs, key, query, body))
            .get(move |key, query| download(reader, key, query)),
    )
}

fn fields(query: Option<String>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// S3's way of refusing: a status and a short reason, no detail of the store.
fn refusal(status: StatusCode, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        reason.to_owned(),
    )
        .into_response()
}

async fn upload(
    blobs: Arc<LocalBlobs>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let query = fields(query);
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    match blobs
        .put_presigned(&key, &query, StreamReader::new(stream))
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(UploadError::Url(UrlError::Expired)) => {
            refusal(StatusCode::FORBIDDEN, "the URL has expired")
        }
        Err(UploadError::Url(UrlError::BadSignature) | UploadError::NotAnUpload) => {
            refusal(StatusCode::FORBIDDEN, "the signature does not match")
        }
        Err(e @ (UploadError::WrongSize | UploadError::WrongChecksum)) => {
            refusal(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(UploadError::Store(e)) => {
            tracing::error!(error = %e, "cannot store an upload");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store cannot take it now",
            )
        }
    }
}

async fn download(
    blobs: Arc<LocalBlobs>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = fields(query);
    let opened = match blobs.open_presigned(&key, &query).await {
        Ok(Some(opened)) => opened,
        Ok(None) => return refusal(StatusCode::NOT_FOUND, "no such object"),
        Err(UploadError::Url(UrlError::Expired)) => {
            return refusal(StatusCode::FORBIDDEN, "the URL has expired");
        }
        Err(UploadError::Store(e)) => {
            tracing::error!(error = %e, "cannot read a stored object");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store cannot answer now",
            );
        }
        Err(_) => return refusal(StatusCode::FORBIDDEN, "the signature does not match"),
    };
    let (file, length, grant) = opened;
    let Grant::Get {
        file_name,
        content_type,
        inline,
    } = grant
    else {
        return refusal(StatusCode::FORBIDDEN, "the signature does not match");
    };
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_LENGTH, length.to_string()),
        (
            header::CONTENT_DISPOSITION,
            content_disposition(&file_name, inline),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'".into(),
        ),
        (header::CACHE_CONTROL, "private, max-age=300".into()),
    ];
    (headers, Body::from_stream(ReaderStream::new(file))).into_response()
}
