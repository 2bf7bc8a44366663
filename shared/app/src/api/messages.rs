//! Reading a conversation's messages.

use bestchat_domain::DomainError;
use bestchat_domain::ids::MessageId;
use bestchat_domain::message::Message;
use bestchat_domain::page::PageRequest;
use http::StatusCode;

use super::conversations::conversation_id;
use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::send::{SendMessage, SentPair, retry, send};
use crate::state::AppState;

pub const LIST: Handler = handler!(list);
pub const GET: Handler = handler!(get);
pub const SEND: Handler = handler!(send_message);
pub const RETRY: Handler = handler!(retry_answer);

async fn list(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id = conversation_id(&request)?;
    let page = PageRequest::parse(request.query_param("limit"), request.query_param("cursor"))?;
    state
        .store()
        .get_conversation(user, id)
        .await?
        .ok_or_else(DomainError::conversation_not_found)?;
    let mut messages = state
        .store()
        .list_messages(user, id, &page)
        .await?
        .within_bytes(state.config.max_response_bytes, Message::cursor_key);
    crate::files::attach::mark_deleted(state.store(), user, &mut messages.items).await?;
    json_response(StatusCode::OK, &messages)
}

/// The `{message_id}` path parameter; one that is not a UUID names no message (404).
fn message_id(request: &ApiRequest) -> Result<MessageId, DomainError> {
    request
        .path_param("message_id")
        .and_then(|raw| raw.parse().ok())
        .ok_or_else(DomainError::message_not_found)
}

/// One message whole: what an event too large for a WebSocket frame leaves out.
async fn get(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let conversation = conversation_id(&request)?;
    let id = message_id(&request)?;
    let message = state
        .store()
        .get_message(user, id)
        .await?
        .filter(|m| m.conversation_id == conversation)
        .ok_or_else(DomainError::message_not_found)?;
    let mut one = [message];
    crate::files::attach::mark_deleted(state.store(), user, &mut one).await?;
    json_response(StatusCode::OK, &one[0])
}

/// 202 when the message is new and its answer has started; 200 with the original pair when the
/// `client_message_id` was sent before.
async fn send_message(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let id = conversation_id(&request)?;
    let body: SendMessage = request.json()?;
    let sent = send(&state.send_ports(), user, id, body, None).await?;
    let status = if sent.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    json_response(
        status,
        &SentPair {
            user_message: sent.user,
            assistant_message: sent.assistant,
        },
    )
}

/// The answer to `POST …/messages/{message_id}/retry`.
#[derive(Debug, serde::Serialize, ::schemars::JsonSchema)]
pub struct Retried {
    pub assistant_message: Message,
}

/// 202: the failed answer runs again as the same turn.
async fn retry_answer(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let conversation = conversation_id(&request)?;
    let id = message_id(&request)?;
    request.empty_body()?;
    let answer = retry(&state.send_ports(), user, conversation, id).await?;
    json_response(
        StatusCode::ACCEPTED,
        &Retried {
            assistant_message: answer,
        },
    )
}
