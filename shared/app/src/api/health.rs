//! `GET /api/health`: liveness, without touching the store.

use http::StatusCode;

use super::{Handler, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::state::AppState;

pub const GET: Handler = handler!(get);

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Health {
    /// Always `ok`: the function answered.
    pub status: &'static str,
    pub version: &'static str,
}

async fn get(_: &AppState, _: ApiRequest) -> Result<ApiResponse, AppError> {
    json_response(
        StatusCode::OK,
        &Health {
            status: "ok",
            version: env!("CARGO_PKG_VERSION"),
        },
    )
}
