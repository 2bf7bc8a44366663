//! `GET` and `PUT /api/settings/auto-approval`.

use bestchat_tools::policy::AutoApproval;
use http::StatusCode;

use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::settings::{auto_approval, put_auto_approval};
use crate::state::AppState;

pub const GET: Handler = handler!(get_settings);
pub const PUT: Handler = handler!(put_settings);

async fn get_settings(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    json_response(StatusCode::OK, &auto_approval(state, user).await?)
}

async fn put_settings(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let rules: AutoApproval = request.json()?;
    json_response(
        StatusCode::OK,
        &put_auto_approval(state, user, rules).await?,
    )
}
