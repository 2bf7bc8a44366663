//! `GET /api/mcp-servers`, `PUT` and `DELETE /api/mcp-servers/{id}`.

use bestchat_domain::page::Items;
use bestchat_domain::{DomainError, ErrorCode};
use http::StatusCode;

use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response, no_content};
use crate::mcp::servers::{PutServer, Registration, delete, list, put, server_id};
use crate::state::AppState;

pub const LIST: Handler = handler!(list_servers);
pub const PUT: Handler = handler!(put_server);
pub const DELETE: Handler = handler!(delete_server);

async fn list_servers(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    json_response(
        StatusCode::OK,
        &Items {
            items: list(state.store(), user).await?,
        },
    )
}

async fn put_server(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id =
        bestchat_domain::mcp::McpServerId::parse(request.path_param("id").unwrap_or_default())?;
    let body: PutServer = request.json()?;
    let registration = Registration {
        servers: state.store(),
        vault: state.vault.as_ref(),
        guard: &state.guard,
        client: state,
        limits: &state.config.mcp,
    };
    json_response(StatusCode::OK, &put(&registration, user, id, body).await?)
}

async fn delete_server(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id = server_id(request.path_param("id"))?;
    if delete(state.store(), user, id).await? {
        Ok(no_content())
    } else {
        Err(DomainError::of(ErrorCode::McpServerNotFound).into())
    }
}
