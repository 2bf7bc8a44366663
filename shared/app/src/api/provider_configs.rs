//! `GET /api/provider-configs`, `PUT` and `DELETE /api/provider-configs/{provider}`.

use bestchat_domain::page::Items;
use bestchat_domain::provider::PutProviderConfig;
use bestchat_domain::{DomainError, ErrorCode};
use http::StatusCode;

use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response, no_content};
use crate::provider_configs::{delete, list, provider_id, put};
use crate::state::AppState;

pub const LIST: Handler = handler!(list_configs);
pub const PUT: Handler = handler!(put_config);
pub const DELETE: Handler = handler!(delete_config);

async fn list_configs(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    json_response(
        StatusCode::OK,
        &Items {
            items: list(&state.provider_access(), user).await?,
        },
    )
}

async fn put_config(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let provider = provider_id(request.path_param("provider"))?;
    let body: PutProviderConfig = request.json()?;
    json_response(
        StatusCode::OK,
        &put(&state.provider_access(), user, provider, body).await?,
    )
}

async fn delete_config(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let provider = provider_id(request.path_param("provider"))?;
    if delete(&state.provider_access(), user, &provider).await? {
        Ok(no_content())
    } else {
        Err(DomainError::new(
            ErrorCode::ProviderConfigNotFound,
            format!("there is no configuration for {provider}"),
        )
        .into())
    }
}
