//! Reading a conversation's messages.

use bestchat_domain::DomainError;
use bestchat_domain::page::PageRequest;
use http::StatusCode;

use super::conversations::conversation_id;
use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::state::AppState;

pub const LIST: Handler = handler!(list);

async fn list(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id = conversation_id(&request)?;
    let page = PageRequest::parse(request.query_param("limit"), request.query_param("cursor"))?;
    state
        .store()
        .get_conversation(user, id)
        .await?
        .ok_or_else(DomainError::conversation_not_found)?;
    let messages = state.store().list_messages(user, id, &page).await?;
    json_response(StatusCode::OK, &messages)
}
