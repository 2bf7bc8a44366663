//! Sending a user message: stored with its pending answer (once per `client_message_id`),
//! announced to the user's connections, and the turn handed to `chat-turn` asynchronously so no
//! client ever waits on the provider.

use std::time::Duration;

use bestchat_domain::ids::{ConversationId, FileId, MessageId, UserId};
use bestchat_domain::limits::{CLIENT_MESSAGE_ID_MAX_CHARS, MESSAGE_CONTENT_MAX_CHARS};
use bestchat_domain::message::{FinishReason, Message, MessageError, MessageStatus, Role};
use bestchat_domain::model_ref::{ModelId, ProviderId};
use bestchat_domain::ports::realtime::{ConnectionId, Invoker, StreamBuffer};
use bestchat_domain::ports::store::{
    ConversationStore, FileStore, Finisher, StepRecords, TurnStart, TurnStore,
};
use bestchat_domain::time::{after, now};
use bestchat_domain::wire::ServerEvent;
use bestchat_domain::{DomainError, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::budget::Budgets;
use crate::devices::Devices;
use crate::error::AppError;
use crate::files::{FileSettings, attach};
use crate::jobs::CHAT_TURN;
use crate::tokens::message_tokens;
use crate::turn::job::{TurnJob, completed_event};

/// Body of `POST /api/conversations/{id}/messages`; the same fields as the `sendMessage` action.
#[derive(Debug, Clone, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    #[schemars(length(max = CLIENT_MESSAGE_ID_MAX_CHARS))]
    pub client_message_id: String,
    #[schemars(length(max = MESSAGE_CONTENT_MAX_CHARS))]
    pub content: String,
    pub provider: Option<ProviderId>,
    pub model: Option<ModelId>,
    /// Files to send with the message (uploaded and processed first).
    #[serde(default)]
    pub attachments: Vec<FileId>,
}

/// The answer to `POST …/messages`: the user's message and the answer it started.
#[derive(Debug, Serialize, ::schemars::JsonSchema)]
pub struct SentPair {
    pub user_message: Message,
    pub assistant_message: Message,
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

/// What sending (and retrying) reads and writes: the conversation, its turns, the resume buffer,
/// the user's devices, the invoker that starts `chat-turn`, and how soon a turn must claim its
/// answer (`BESTCHAT_TURN_START_TIMEOUT_MS`).
pub struct SendPorts<'a> {
    pub conversations: &'a dyn ConversationStore,
    pub turns: &'a dyn TurnStore,
    pub buffer: &'a dyn StreamBuffer,
    pub devices: Devices,
    pub invoker: &'a dyn Invoker,
    pub turn_start_timeout: Duration,
    /// A user whose limit is used up is refused before a turn starts.
    pub budgets: Budgets<'a>,
    pub files: &'a dyn FileStore,
    pub file_settings: &'a FileSettings,
}

/// `subscriber`, the connection that sent the message, is subscribed to the conversation before
/// anything about the new turn is announced, so it sees all of it.
pub async fn send(
    ports: &SendPorts<'_>,
    user: UserId,
    conversation_id: ConversationId,
    input: SendMessage,
    subscriber: Option<&ConnectionId>,
) -> Result<Sent, AppError> {
    input.validate()?;
    let conversation = ports
        .conversations
        .get_conversation(user, conversation_id)
        .await?
        .ok_or_else(DomainError::conversation_not_found)?;
    ports.budgets.check(user).await??;
    let at = now();
    let model = input
        .model
        .clone()
        .unwrap_or_else(|| conversation.model.clone());
    let files =
        attach::for_message(ports.files, ports.file_settings, user, &input.attachments).await?;
    let tokens = message_tokens(model.as_str(), &input.content, &[])
        .saturating_add(attach::estimated_tokens(&files));
    let mut question = Message::from_user(
        user,
        conversation_id,
        input.content,
        input.client_message_id,
        tokens,
        at,
    );
    question.attachments = files.iter().map(attach::attachment).collect();
    let provider = input
        .provider
        .unwrap_or_else(|| conversation.provider.clone());
    let answer = Message::pending_answer(&question, provider, model, at);
    let claim_by = after(at, ports.turn_start_timeout);
    match ports.turns.start_turn(&question, &answer, claim_by).await? {
        // A new message while the previous turn still runs a step (or a call waits for the
        // user) would interleave with it in the transcript: the user waits, stops or decides.
        TurnStart::Busy => Err(DomainError::new(
            ErrorCode::Conflict,
            "the previous answer in this conversation is still going (or a tool call waits for \
             your decision): wait for it, stop it, or decide, then send again",
        )
        .into()),
        TurnStart::Existing { user, assistant } => Ok(Sent {
            user,
            assistant,
            created: false,
        }),
        TurnStart::Started {
            user: question,
            assistant,
        } => {
            // A file first attached here goes when the conversation goes.
            let ids: Vec<FileId> = files.iter().map(|f| f.id).collect();
            if !ids.is_empty() {
                ports
                    .files
                    .attach_files(user, &ids, conversation_id)
                    .await?;
            }
            if let Some(connection) = subscriber
                && let Err(e) = ports
                    .devices
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
                ports.devices.broadcast(user, conversation_id, &event).await;
            }
            Ok(Sent {
                user: question,
                assistant: hand_over(ports, assistant).await?,
                created: true,
            })
        }
    }
}

/// `POST …/messages/{message_id}/retry`: a failed answer runs again as the same turn, so the
/// question is not asked twice; its devices see it `pending` again, then streaming.
pub async fn retry(
    ports: &SendPorts<'_>,
    user: UserId,
    conversation_id: ConversationId,
    message_id: MessageId,
) -> Result<Message, AppError> {
    ports
        .turns
        .get_message(user, message_id)
        .await?
        .filter(|m| m.conversation_id == conversation_id && m.role == Role::Assistant)
        .ok_or_else(DomainError::message_not_found)?;
    ports.budgets.check(user).await??;
    let at = now();
    let claim_by = after(at, ports.turn_start_timeout);
    let Some(pending) = ports
        .turns
        .retry_turn(user, message_id, at, claim_by)
        .await?
    else {
        return Err(DomainError::new(
            ErrorCode::Conflict,
            "only a failed answer that is the last message of its conversation can be retried, \
             and only while nothing else runs in it",
        )
        .into());
    };
    // The failed attempt may have left frames (reasoning before the failure): the new one
    // numbers its frames from 1 again, and a resume must not replay the old ones.
    if let Err(e) = ports.buffer.clear(message_id).await {
        tracing::warn!(error = %e, message = %message_id, "cannot clear a retried answer's frames");
    }
    ports
        .devices
        .broadcast(
            user,
            conversation_id,
            &ServerEvent::MessageUpdated {
                message: pending.clone(),
            },
        )
        .await;
    hand_over(ports, pending).await
}

/// Starts `chat-turn` for a pending answer; the answer as it stands afterwards.
async fn hand_over(ports: &SendPorts<'_>, assistant: Message) -> Result<Message, AppError> {
    let job = TurnJob {
        user_id: assistant.user_id,
        conversation_id: assistant.conversation_id,
        message_id: assistant.id,
        continue_tools: false,
    };
    let payload = serde_json::to_value(&job).unwrap_or_default();
    match ports.invoker.invoke_async(CHAT_TURN, &payload).await {
        Ok(()) => Ok(assistant),
        Err(e) => {
            tracing::error!(error = %e, message = %assistant.id, "cannot start the turn");
            fail_to_start(ports, assistant).await
        }
    }
}

/// The turn could not be handed over: the answer ends as an error rather than waiting for the
/// janitor, unless a turn claimed it after all (then it is that turn's to finish).
async fn fail_to_start(ports: &SendPorts<'_>, assistant: Message) -> Result<Message, AppError> {
    let failed = Message {
        status: MessageStatus::Error,
        finish_reason: Some(FinishReason::Error),
        error: Some(MessageError::of(ErrorCode::Unavailable)),
        updated_at: now(),
        ..assistant
    };
    if !ports
        .turns
        .finish_turn(&failed, None, Finisher::Unclaimed, &StepRecords::default())
        .await?
    {
        let current = ports.turns.get_message(failed.user_id, failed.id).await?;
        return Ok(current.unwrap_or(failed));
    }
    let ended = [completed_event(failed.clone())];
    ports
        .devices
        .announce_end(ports.buffer, &failed, &ended)
        .await;
    Ok(failed)
}

#[cfg(test)]
#[cfg(feature = "sqlite")]
mod tests {
    use std::time::Duration;

    use bestchat_platform::publish::Outgoing;
    use serde_json::Value;
    use tokio::sync::mpsc::Receiver;

    use super::*;
    use crate::state::AppState;
    use crate::testing;

    /// A user with a conversation on the default (echo) model, and a device subscribed to it.
    async fn alice(state: &AppState) -> (UserId, ConversationId, Receiver<Outgoing>) {
        let (user, conversation) = testing::conversation(state, "alice").await;
        let device = ConnectionId::parse("device-1=").unwrap();
        let hub = state.hub.as_ref().expect("the embedded publisher");
        let rx = hub.attach(device.clone());
        state
            .connections
            .register(&device, user, now(), Duration::from_secs(60))
            .await
            .unwrap();
        state
            .connections
            .subscribe(&device, user, conversation.id)
            .await
            .unwrap();
        (user, conversation.id, rx)
    }

    async fn next_event(rx: &mut Receiver<Outgoing>) -> Value {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Outgoing::Frame(bytes))) => serde_json::from_slice(&bytes).unwrap(),
            other => panic!("no event: {other:?}"),
        }
    }

    fn message(content: &str, client_id: &str) -> SendMessage {
        SendMessage {
            client_message_id: client_id.into(),
            content: content.into(),
            provider: None,
            model: None,
            attachments: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_message_is_stored_announced_and_answered_once() {
        let embedded = testing::state(&[]).await;
        let state = &embedded.state;
        let (user, conversation, mut device) = alice(state).await;
        let sent = send(
            &state.send_ports(),
            user,
            conversation,
            message("hello there", "c-1"),
            None,
        )
        .await
        .unwrap();
        assert!(sent.created);
        assert_eq!(sent.user.status, MessageStatus::Complete);
        assert_eq!(sent.assistant.status, MessageStatus::Pending);
        assert_eq!(sent.assistant.reply_to, Some(sent.user.id));
        let first = next_event(&mut device).await;
        assert_eq!(first["type"], "message.created");
        assert_eq!(first["message"]["role"], "user");
        let second = next_event(&mut device).await;
        assert_eq!(second["message"]["id"], sent.assistant.id.to_string());
        // The turn runs in process and ends with one message.completed.
        let mut text = String::new();
        loop {
            let event = next_event(&mut device).await;
            match event["type"].as_str() {
                Some("message.delta") => text.push_str(event["text"].as_str().unwrap()),
                Some("message.completed") => {
                    assert_eq!(event["message"]["status"], "complete");
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(text, "Echo (echo-1): hello there");
        let stored = state
            .store()
            .get_message(user, sent.assistant.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.content, text);
        // The same client message id again: the same pair, no second turn.
        let again = send(
            &state.send_ports(),
            user,
            conversation,
            message("hello there", "c-1"),
            None,
        )
        .await
        .unwrap();
        assert!(!again.created);
        assert_eq!(again.assistant.id, sent.assistant.id);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), device.recv())
                .await
                .is_err(),
            "a repeat announces nothing"
        );
    }

    #[tokio::test]
    async fn bad_messages_are_refused_before_anything_is_stored() {
        let embedded = testing::state(&[]).await;
        let state = &embedded.state;
        let (user, conversation, _device) = alice(state).await;
        let too_long = "x".repeat(MESSAGE_CONTENT_MAX_CHARS + 1);
        for (content, client_id) in [
            ("a\u{0}b", "nul"),
            ("   ", "blank"),
            (too_long.as_str(), "long"),
            ("fine", ""),
            ("fine", "bad\nid"),
        ] {
            let refused = send(
                &state.send_ports(),
                user,
                conversation,
                message(content, client_id),
                None,
            )
            .await
            .err()
            .expect("refused");
            assert!(
                matches!(refused, AppError::Domain(ref e) if e.code == ErrorCode::ValidationFailed),
                "{refused:?}"
            );
        }
        let provider_only = SendMessage {
            provider: Some(ProviderId::parse("openai").unwrap()),
            ..message("fine", "p")
        };
        assert!(
            send(&state.send_ports(), user, conversation, provider_only, None)
                .await
                .is_err()
        );
        let elsewhere = send(
            &state.send_ports(),
            user,
            ConversationId::generate(),
            message("fine", "x"),
            None,
        )
        .await
        .err()
        .unwrap();
        assert_eq!(elsewhere.code(), ErrorCode::ConversationNotFound);
        let page = state
            .store()
            .list_messages(user, conversation, &Default::default())
            .await
            .unwrap();
        assert!(page.items.is_empty(), "nothing was stored");
    }
}
