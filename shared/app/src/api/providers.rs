//! `GET /api/providers` and `GET /api/models`.

use bestchat_domain::page::Items;
use http::StatusCode;

use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::models::{ProviderList, provider_views, usable_models};
use crate::state::AppState;

pub const LIST_PROVIDERS: Handler = handler!(list_providers);
pub const LIST_MODELS: Handler = handler!(list_models);

async fn list_providers(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    json_response(
        StatusCode::OK,
        &ProviderList {
            items: provider_views(&state.provider_access(), user).await?,
            default: state.config.default_model.clone(),
        },
    )
}

async fn list_models(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    json_response(
        StatusCode::OK,
        &Items {
            items: usable_models(&state.provider_access(), user).await?,
        },
    )
}
