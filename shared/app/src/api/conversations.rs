//! Conversation CRUD.

use bestchat_domain::conversation::{Conversation, CreateConversation, UpdateConversation};
use bestchat_domain::ids::ConversationId;
use bestchat_domain::limits::TITLE_MAX_CHARS;
use bestchat_domain::page::PageRequest;
use bestchat_domain::{DomainError, ErrorCode};
use http::{HeaderValue, StatusCode, header};

use super::{Handler, caller, handler};
use crate::conversations;
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response, no_content};
use crate::state::AppState;

pub const CREATE: Handler = handler!(create);
pub const LIST: Handler = handler!(list);
pub const GET: Handler = handler!(get);
pub const UPDATE: Handler = handler!(update);
pub const DELETE: Handler = handler!(delete);

/// The `{id}` path parameter. An id that is not a UUID names no conversation: 404, like one
/// that belongs to someone else.
pub(crate) fn conversation_id(request: &ApiRequest) -> Result<ConversationId, DomainError> {
    request
        .path_param("id")
        .and_then(|raw| raw.parse().ok())
        .ok_or_else(DomainError::conversation_not_found)
}

async fn create(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let body: CreateConversation = request.json()?;
    let default_model = &state.config.default_model;
    let conversation =
        conversations::create(state.store(), &state.devices(), default_model, user, body).await?;
    let mut response = json_response(StatusCode::CREATED, &conversation)?;
    if let Ok(location) = HeaderValue::from_str(&format!("/api/conversations/{}", conversation.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `?q=`: a title search. Empty means no search; longer than a title can be cannot match
/// and is refused as the mistake it is.
fn title_query(raw: Option<&str>) -> Result<Option<String>, DomainError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(q) if q.chars().count() > TITLE_MAX_CHARS => Err(DomainError::new(
            ErrorCode::InvalidRequest,
            format!("q must be at most {TITLE_MAX_CHARS} characters"),
        )),
        // No title holds one: stored text never has NUL or other control characters.
        Some(q) if q.chars().any(char::is_control) => Err(DomainError::new(
            ErrorCode::InvalidRequest,
            "q must not contain control characters",
        )),
        Some(q) => Ok(Some(q.to_owned())),
    }
}

async fn list(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let page = PageRequest::parse(request.query_param("limit"), request.query_param("cursor"))?;
    let title = title_query(request.query_param("q"))?;
    let conversations = state
        .store()
        .list_conversations(user, title.as_deref(), &page)
        .await?
        .within_bytes(state.config.max_response_bytes, Conversation::cursor_key);
    json_response(StatusCode::OK, &conversations)
}

async fn get(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id = conversation_id(&request)?;
    let conversation = state
        .store()
        .get_conversation(user, id)
        .await?
        .ok_or_else(DomainError::conversation_not_found)?;
    json_response(StatusCode::OK, &conversation)
}

async fn update(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id = conversation_id(&request)?;
    let body: UpdateConversation = request.json()?;
    let conversation =
        conversations::update(state.store(), &state.devices(), user, id, body).await?;
    json_response(StatusCode::OK, &conversation)
}

async fn delete(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id = conversation_id(&request)?;
    // The files first attached here go with it (their rows by the database's cascade); their
    // bytes are removed after, and by the janitor if this dies in between.
    let files = state.store().files_of_conversation(user, id).await?;
    conversations::delete(state.store(), &state.devices(), user, id).await?;
    for file in files {
        crate::files::forget_bytes(state.store(), state.blobs().as_ref(), user, &file.sha256)
            .await?;
    }
    Ok(no_content())
}
