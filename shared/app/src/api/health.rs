//! `GET /api/health`: liveness, without touching the store.

use http::StatusCode;
use serde_json::json;

use super::{Handler, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::state::AppState;

pub const GET: Handler = handler!(get);

async fn get(_: &AppState, _: ApiRequest) -> Result<ApiResponse, AppError> {
    json_response(
        StatusCode::OK,
        &json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
    )
}
