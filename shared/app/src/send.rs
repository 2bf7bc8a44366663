//! Sending a user message: stored with its pending answer (once per `client_message_id`),
//! announced to the user's connections, and the turn handed to `chat-turn` asynchronously so no
//! client ever waits on the provider.

use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::limits::{CLIENT_MESSAGE_ID_MAX_CHARS, MESSAGE_CONTENT_MAX_CHARS};
use bestchat_domain::message::{FinishReason, Message, MessageError, MessageStatus, Role};
use bestchat_domain::model_ref::{ModelId, ProviderId};
use bestchat_domain::ports::realtime::ConnectionId;
use bestchat_domain::ports::store::{Finisher, TurnStart};
use bestchat_domain::time::{after, now};
use bestchat_domain::wire::ServerEvent;
use bestchat_domain::{DomainError, ErrorCode};
use serde::Deserialize;

use crate::error::AppError;
use crate::events::CHAT_TURN;
use crate::state::AppState;
use crate::tokens::message_tokens;
use crate::turn::{TurnJob, announce_end, broadcast, completed_event};

/// Body of `POST /api/conversations/{id}/messages`; the same fields as the `sendMessage` action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub client_message_id: String,
    pub content: String,
    pub provider: Option<ProviderId>,
    pub model: Option<ModelId>,
}

/// The stored pair, and whether this request created it.
pub struct Sent {
    pub user: Message,
    pub assistant: Message,
    pub created: bool,
}

impl SendMessage {
    fn validate(&self) -> Result<(), DomainError> {
        let id = &self.client_message_id;
        if id.is_empty()
            || id.chars().count() > CLIENT_MESSAGE_ID_MAX_CHARS
            || id.chars().any(char::is_control)
        {
            return Err(DomainError::validation(format!(
                "client_message_id must be 1 to {CLIENT_MESSAGE_ID_MAX_CHARS} characters without control characters"
            )));
        }
        if self.content.contains('\0') {
            return Err(DomainError::validation(
                "text must not contain NUL (U+0000) characters",
            ));
        }
        if self.content.trim().is_empty() {
            return Err(DomainError::validation("content must not be empty"));
        }
        if self.content.chars().count() > MESSAGE_CONTENT_MAX_CHARS {
            return Err(DomainError::validation(format!(
                "content must be at most {MESSAGE_CONTENT_MAX_CHARS} characters"
            )));
        }
        if self.provider.is_some() && self.model.is_none() {
            return Err(DomainError::validation(
                "model is required when provider is given",
            ));
        }
        Ok(())
    }
}

/// `subscriber`, the connection that sent the message, is subscribed to the conversation before
/// anything about the new turn is announced, so it sees all of it.
pub async fn send(
    state: &AppState,
    user: UserId,
    conversation_id: ConversationId,
    input: SendMessage,
    subscriber: Option<&ConnectionId>,
) -> Result<Sent, AppError> {
    input.validate()?;
    let conversation = state
        .store()
        .get_conversation(user, conversation_id)
        .await?
        .ok_or_else(DomainError::conversation_not_found)?;
    let at = now();
    let model = input
        .model
        .clone()
        .unwrap_or_else(|| conversation.model.clone());
    let question = Message {
        id: MessageId::generate(),
        conversation_id,
        user_id: user,
        role: Role::User,
        token_count: message_tokens(model.as_str(), &input.content, &[]),
        content: input.content,
        status: MessageStatus::Complete,
        client_message_id: Some(input.client_message_id),
        reply_to: None,
        provider: None,
        model: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
        usage: None,
        finish_reason: None,
        error: None,
        created_at: at,
        updated_at: at,
        content_omitted: false,
    };
    let answer = Message {
        id: MessageId::generate(),
        role: Role::Assistant,
        content: String::new(),
        status: MessageStatus::Pending,
        client_message_id: None,
        reply_to: Some(question.id),
        provider: Some(
            input
                .provider
                .unwrap_or_else(|| conversation.provider.clone()),
        ),
        model: Some(model),
        token_count: 0,
        ..question.clone()
    };
    let claim_by = after(at, state.config.turn_start_timeout);
    match state
        .store()
        .start_turn(&question, &answer, claim_by)
        .await?
    {
        TurnStart::Existing { user, assistant } => Ok(Sent {
            user,
            assistant,
            created: false,
        }),
        TurnStart::Started {
            user: question,
            assistant,
        } => {
            if let Some(connection) = subscriber
                && let Err(e) = state
                    .connections
                    .subscribe(connection, user, conversation_id)
                    .await
            {
                tracing::warn!(error = %e, "cannot subscribe the sender");
            }
            for message in [&question, &assistant] {
                let event = ServerEvent::MessageCreated {
                    message: message.clone(),
                };
                broadcast(state, user, conversation_id, &event).await;
            }
            let job = TurnJob {
                user_id: user,
                conversation_id,
                message_id: assistant.id,
            };
            let payload = serde_json::to_value(&job).unwrap_or_default();
            if let Err(e) = state.invoker.invoke_async(CHAT_TURN, &payload).await {
                tracing::error!(error = %e, message = %assistant.id, "cannot start the turn");
                let failed = fail_to_start(state, assistant).await?;
                return Ok(Sent {
                    user: question,
                    assistant: failed,
                    created: true,
                });
            }
            Ok(Sent {
                user: question,
                assistant,
                created: true,
            })
        }
    }
}

/// The turn could not be handed over: the answer ends as an error rather than waiting for the
/// janitor, unless a turn claimed it after all (then it is that turn's to finish).
async fn fail_to_start(state: &AppState, assistant: Message) -> Result<Message, AppError> {
    let failed = Message {
        status: MessageStatus::Error,
        finish_reason: Some(FinishReason::Error),
        error: Some(MessageError::of(ErrorCode::Unavailable)),
        updated_at: now(),
        ..assistant
    };
    if !state
        .store()
        .finish_turn(&failed, None, Finisher::Unclaimed)
        .await?
    {
        let current = state.store().get_message(failed.user_id, failed.id).await?;
        return Ok(current.unwrap_or(failed));
    }
    announce_end(state, &failed, &[completed_event(failed.clone())]).await;
    Ok(failed)
}
