//! `GET /api/openapi.json`: the contract of this API, for clients and their generated types.

use http::StatusCode;

use super::{Handler, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::state::AppState;

pub const GET: Handler = handler!(get);

async fn get(_: &AppState, _: ApiRequest) -> Result<ApiResponse, AppError> {
    json_response(StatusCode::OK, crate::openapi::document())
}
