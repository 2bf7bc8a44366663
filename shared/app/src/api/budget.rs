//! `GET` and `PUT /api/budget`: the caller's spending limit, what they spent and hold, and the
//! cap they set themselves (it only ever lowers the operator's).

use bestchat_domain::DomainError;
use bestchat_domain::time::now;
use http::StatusCode;
use serde::Deserialize;

use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::state::AppState;

pub const GET: Handler = handler!(get_budget);
pub const PUT: Handler = handler!(put_budget);

/// `PUT /api/budget`: the caller's own cap per period; `null` removes it.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonalLimit {
    pub personal_limit_micros: Option<i64>,
}

async fn get_budget(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    json_response(StatusCode::OK, &state.budgets().view(user).await?)
}

async fn put_budget(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let body: PersonalLimit = request.json()?;
    if body.personal_limit_micros.is_some_and(|l| l < 0) {
        return Err(DomainError::validation("personal_limit_micros must not be negative").into());
    }
    state
        .store()
        .put_personal_limit(user, body.personal_limit_micros, now())
        .await?;
    json_response(StatusCode::OK, &state.budgets().view(user).await?)
}
