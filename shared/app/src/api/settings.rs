//! `GET` and `PUT /api/settings/auto-approval`, `GET` and `PUT /api/settings/fetch-hosts`.

use bestchat_tools::policy::AutoApproval;
use http::StatusCode;

use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::settings::{FetchHosts, auto_approval, fetch_hosts, put_auto_approval, put_fetch_hosts};
use crate::state::AppState;

pub const GET_AUTO_APPROVAL: Handler = handler!(get_rules);
pub const PUT_AUTO_APPROVAL: Handler = handler!(put_rules);
pub const GET_FETCH_HOSTS: Handler = handler!(get_hosts);
pub const PUT_FETCH_HOSTS: Handler = handler!(put_hosts);

async fn get_rules(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    json_response(StatusCode::OK, &auto_approval(state.store(), user).await?)
}

async fn put_rules(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let rules: AutoApproval = request.json()?;
    json_response(
        StatusCode::OK,
        &put_auto_approval(state.store(), user, rules).await?,
    )
}

async fn get_hosts(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    json_response(StatusCode::OK, &fetch_hosts(state.store(), user).await?)
}

async fn put_hosts(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let body: FetchHosts = request.json()?;
    let max_hosts = state.config.tools.ceilings.max_hosts;
    let stored = put_fetch_hosts(state.store(), max_hosts, user, body).await?;
    json_response(StatusCode::OK, &stored)
}
