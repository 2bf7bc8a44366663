//! `POST /api/tools`, `GET /api/tools`, `DELETE /api/tools/{id}`.

use bestchat_domain::DomainError;
use bestchat_domain::ErrorCode;
use bestchat_domain::page::Items;
use http::StatusCode;

use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response, no_content};
use crate::state::AppState;
use crate::tools::registration::{RegisterTool, Registering, delete, list, register, tool_id};

pub const CREATE: Handler = handler!(create_tool, registration_body_limit);
pub const LIST: Handler = handler!(list_tools);
pub const DELETE: Handler = handler!(delete_tool);

/// Room for the manifest beside the module in a registration's body (the schema alone may be
/// 32 KiB).
const MANIFEST_ALLOWANCE_BYTES: usize = 64 * 1024;

/// A registration carries the module in base64; other routes keep the general limit.
fn registration_body_limit(state: &AppState) -> usize {
    let module = state.config.tools.max_module_bytes;
    (module.div_ceil(3) * 4).saturating_add(MANIFEST_ALLOWANCE_BYTES)
}

async fn create_tool(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let body: RegisterTool = request.json()?;
    let ports = Registering {
        tools: state.store(),
        cache: state.cache.as_ref(),
        invoker: state.invoker.as_ref(),
        blobs: state.blobs().as_ref(),
        config: &state.config.tools,
    };
    json_response(StatusCode::CREATED, &register(&ports, user, body).await?)
}

async fn list_tools(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    json_response(
        StatusCode::OK,
        &Items {
            items: list(state.store(), state.store(), user).await?,
        },
    )
}

async fn delete_tool(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id = tool_id(request.path_param("id"))?;
    if delete(state.store(), user, id).await? {
        Ok(no_content())
    } else {
        Err(DomainError::of(ErrorCode::ToolNotFound).into())
    }
}
