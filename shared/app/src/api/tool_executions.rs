//! `GET /api/tool-executions`, `POST /api/tool-executions/{id}/approve` and `/deny`.

use bestchat_domain::ids::{ConversationId, ToolExecutionId};
use bestchat_domain::page::PageRequest;
use bestchat_domain::ports::store::ExecutionFilter;
use bestchat_domain::tool::{ExecutionStatus, ToolExecution, Verdict};
use bestchat_domain::{DomainError, ErrorCode};
use http::StatusCode;

use super::{Handler, caller, handler};
use crate::decisions::decide;
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::state::AppState;

pub const LIST: Handler = handler!(list_executions);
pub const APPROVE: Handler = handler!(approve);
pub const DENY: Handler = handler!(deny);

async fn list_executions(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let page = PageRequest::parse(request.query_param("limit"), request.query_param("cursor"))?;
    let filter = ExecutionFilter {
        status: request
            .query_param("status")
            .map(|raw| {
                ExecutionStatus::parse(raw).ok_or_else(|| {
                    DomainError::validation(format!(
                        "status must be one of {}",
                        ExecutionStatus::ALL
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .transpose()?,
        conversation: request
            .query_param("conversation_id")
            .map(|raw| {
                raw.parse::<ConversationId>().map_err(|_| {
                    DomainError::validation("conversation_id must be a conversation's id")
                })
            })
            .transpose()?,
    };
    let executions = state
        .store()
        .list_executions(user, &filter, &page)
        .await?
        .within_bytes(state.config.max_response_bytes, ToolExecution::cursor_key);
    json_response(StatusCode::OK, &executions)
}

async fn approve(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    decided(state, request, Verdict::Approve).await
}

async fn deny(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    decided(state, request, Verdict::Deny).await
}

async fn decided(
    state: &AppState,
    request: ApiRequest,
    verdict: Verdict,
) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id: ToolExecutionId = request
        .path_param("id")
        .and_then(|raw| raw.parse().ok())
        .ok_or_else(|| DomainError::of(ErrorCode::ToolExecutionNotFound))?;
    request.empty_body()?;
    json_response(
        StatusCode::OK,
        &decide(&state.decision_ports(), user, id, verdict, None).await?,
    )
}
