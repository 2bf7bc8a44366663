//! The WebSocket functions: `$connect` (behind the token authorizer), `$disconnect`, and the
//! message routes (`sendMessage`, `subscribe`, `resume`, `cancel`, `approveTool`, `ping`). Replies that are not
//! part of a message's stream are posted back to the connection.

use std::sync::Arc;

use bestchat_domain::ids::{MessageId, Subject, UserId};
use bestchat_domain::ports::realtime::ConnectionId;
use bestchat_domain::text::decode_json;
use bestchat_domain::time::now;
use bestchat_domain::wire::{ClientAction, ServerEvent};
use bestchat_domain::{DomainError, ErrorCode};

use crate::api::BoxFuture;
use crate::auth::AuthError;
use crate::error::AppError;
use crate::rate_limit::{Limited, RateClass, Refused, admit};
use crate::send::{SendMessage, send};
use crate::state::AppState;
use crate::turn::{CANCEL_TTL, cancel_key};

/// One WebSocket event, as the functions and the local gateway hand it over.
#[derive(Debug, Clone)]
pub struct WsRequest {
    pub route_key: String,
    pub connection_id: ConnectionId,
    /// The `sub` the `$connect` authorizer verified; API Gateway repeats it on every event.
    pub subject: Option<String>,
    /// The groups the token named at `$connect` (the authorizer's context repeats them).
    pub groups: Vec<String>,
    pub body: Option<String>,
    pub request_id: String,
}

pub type WsHandler = fn(Arc<AppState>, WsRequest) -> BoxFuture<u16>;

pub struct WsFunction {
    pub name: &'static str,
    pub handler: WsHandler,
}

pub const WS_FUNCTIONS: &[WsFunction] = &[
    WsFunction {
        name: "ws-connect",
        handler: |state, request| Box::pin(async move { connect(&state, request).await }),
    },
    WsFunction {
        name: "ws-disconnect",
        handler: |state, request| Box::pin(async move { disconnect(&state, request).await }),
    },
    WsFunction {
        name: "ws-message",
        handler: |state, request| Box::pin(async move { message(&state, request).await }),
    },
];

/// Whom the `$connect` authorizer let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub sub: String,
    /// The token's groups claim (`BESTCHAT_ROLES_CLAIM`).
    pub groups: Vec<String>,
}

/// The `$connect` authorizer's decision: the token's subject and groups, or why it is refused.
pub async fn authorize(state: &AppState, token: Option<&str>) -> Result<Authorized, AuthError> {
    let verifier = state.auth.as_ref().ok_or(AuthError::NotConfigured)?;
    let claims = verifier.verify(token).await?;
    let groups = claims
        .get(&state.config.access.roles_claim)
        .map(|raw| crate::roles::parse_groups(raw))
        .unwrap_or_default();
    let sub = claims.get("sub").cloned().ok_or(AuthError::NoSubject)?;
    Ok(Authorized { sub, groups })
}

/// Records the roles the connection's token names before a turn starts: the turn reads them
/// to apply the roles' tool permissions. A failure is logged (the stored roles stand).
async fn record_roles(state: &AppState, request: &WsRequest, user: UserId) {
    let Some(subject) = request
        .subject
        .as_deref()
        .and_then(|s| Subject::parse(s).ok())
    else {
        return;
    };
    let roles = state
        .config
        .access
        .roles_of(subject.as_str(), &request.groups);
    if let Err(e) = state.store().ensure_user(user, &subject, &roles).await {
        tracing::warn!(%user, error = %e, "cannot record the user's roles");
    }
}

fn user_of(request: &WsRequest) -> Option<UserId> {
    let subject = Subject::parse(request.subject.as_deref()?).ok()?;
    Some(UserId::from_subject(&subject))
}

/// Connections of the local gateway's SSE streams carry this prefix in the registry.
pub const SSE_CONNECTION_PREFIX: &str = "sse-";

/// How many of the user's registered connections are WebSockets and how many SSE streams.
pub async fn open_connections(state: &AppState, user: UserId) -> Result<(usize, usize), AppError> {
    let all = state.connections.of_user(user).await?;
    let sse = all
        .iter()
        .filter(|c| c.id.as_str().starts_with(SSE_CONNECTION_PREFIX))
        .count();
    Ok((all.len() - sse, sse))
}

async fn connect(state: &AppState, request: WsRequest) -> u16 {
    let Some(user) = user_of(&request) else {
        return 401;
    };
    let limits = &state.config.rate_limits;
    if let Err(refused) = admit(state.cache.as_ref(), limits, user, Limited::Connect).await {
        tracing::info!(%user, error = %refused.error(), "connection refused: too many new connections");
        return 429;
    }
    // A soft cap: two connections racing may both pass, never many.
    match open_connections(state, user).await {
        Ok((sockets, _)) if sockets >= state.config.realtime.max_connections_per_user => {
            tracing::info!(%user, sockets, "connection refused: too many open");
            return 429;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot count the user's connections");
            return 500;
        }
    }
    match state
        .connections
        .register(
            &request.connection_id,
            user,
            now(),
            state.config.realtime.connection_ttl,
        )
        .await
    {
        Ok(()) => 200,
        Err(e) => {
            tracing::error!(error = %e, "cannot register the connection");
            500
        }
    }
}

async fn disconnect(state: &AppState, request: WsRequest) -> u16 {
    if let Err(e) = state.connections.remove(&request.connection_id).await {
        tracing::warn!(error = %e, "cannot remove the connection");
    }
    200
}

fn error_event(e: &DomainError, request_id: &str) -> ServerEvent {
    ServerEvent::MessageError {
        conversation_id: None,
        message_id: None,
        code: e.code,
        message: e.message.clone(),
        request_id: (!request_id.is_empty()).then(|| request_id.to_owned()),
        retry_after_ms: None,
    }
}

/// Which of the user's rate limits an action counts against: sending starts a turn; cancelling
/// and deciding a tool call write; the rest read.
pub const fn action_class(action: &ClientAction) -> RateClass {
    match action {
        ClientAction::SendMessage { .. } => RateClass::Turn,
        ClientAction::Cancel { .. } | ClientAction::ApproveTool { .. } => RateClass::Write,
        ClientAction::Subscribe { .. } | ClientAction::Resume { .. } | ClientAction::Ping {} => {
            RateClass::Read
        }
    }
}

/// The refusal of a rate-limited action, with when it may pass.
fn refusal_event(refused: &Refused, request_id: &str) -> ServerEvent {
    let mut event = error_event(&refused.error(), request_id);
    if let ServerEvent::MessageError { retry_after_ms, .. } = &mut event {
        *retry_after_ms = refused
            .retry_after()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    }
    event
}

async fn message(state: &AppState, request: WsRequest) -> u16 {
    let connection = request.connection_id.clone();
    let Some(user) = user_of(&request) else {
        return 401;
    };
    let action = match decode_action(request.body.as_deref().unwrap_or_default()) {
        Ok(a) => a,
        Err(error) => {
            // A frame that is no action still costs an answer: it counts as a read.
            let read = Limited::Class(RateClass::Read);
            if let Err(refused) =
                admit(state.cache.as_ref(), &state.config.rate_limits, user, read).await
            {
                state
                    .devices()
                    .send_to(&connection, &refusal_event(&refused, &request.request_id))
                    .await;
                return 200;
            }
            state
                .devices()
                .send_to(&connection, &error_event(&error, &request.request_id))
                .await;
            return 200;
        }
    };
    let limited = Limited::Class(action_class(&action));
    if let Err(refused) = admit(
        state.cache.as_ref(),
        &state.config.rate_limits,
        user,
        limited,
    )
    .await
    {
        state
            .devices()
            .send_to(&connection, &refusal_event(&refused, &request.request_id))
            .await;
        return 200;
    }
    if matches!(action, ClientAction::SendMessage { .. }) {
        record_roles(state, &request, user).await;
    }
    if let Err(e) = act(state, user, &connection, action).await {
        let public = e.to_public(&request.request_id);
        state
            .devices()
            .send_to(&connection, &error_event(&public, &request.request_id))
            .await;
    }
    200
}

/// A frame as an action: the same rules as an HTTP body, and an unknown action is
/// `invalid_request` whatever else is wrong with it.
pub fn decode_action(body: &str) -> Result<ClientAction, DomainError> {
    decode_json::<ClientAction>(body.as_bytes()).map_err(|e| match e.code {
        ErrorCode::ValidationFailed if !e.message.contains("NUL") => DomainError::new(
            ErrorCode::InvalidRequest,
            format!("not an action this API knows: {}", e.message),
        ),
        _ => e,
    })
}

async fn act(
    state: &AppState,
    user: UserId,
    connection: &ConnectionId,
    action: ClientAction,
) -> Result<(), AppError> {
    match action {
        ClientAction::SendMessage {
            conversation_id,
            client_message_id,
            content,
            provider,
            model,
            attachments,
        } => {
            // The sender sees its own turn, like every other device of the user.
            let sent = send(
                &state.send_ports(),
                user,
                conversation_id,
                SendMessage {
                    client_message_id,
                    content,
                    provider,
                    model,
                    attachments,
                },
                Some(connection),
            )
            .await?;
            if !sent.created {
                // A repeat: nothing new happens; this connection gets the answer as it stands.
                resume(state, user, connection, sent.assistant.id, 0).await?;
            }
            Ok(())
        }
        ClientAction::Subscribe { conversation_id } => {
            state
                .store()
                .get_conversation(user, conversation_id)
                .await?
                .ok_or_else(DomainError::conversation_not_found)?;
            state
                .connections
                .subscribe(connection, user, conversation_id)
                .await?;
            Ok(())
        }
        ClientAction::Resume {
            message_id,
            after_seq,
        } => resume(state, user, connection, message_id, after_seq).await,
        ClientAction::Cancel { message_id } => {
            let message = state
                .store()
                .get_message(user, message_id)
                .await?
                .ok_or_else(DomainError::message_not_found)?;
            if message.status == bestchat_domain::message::MessageStatus::AwaitingApproval {
                crate::decisions::cancel_step(
                    &state.decision_ports(),
                    user,
                    message_id,
                    Some(connection),
                )
                .await?;
                return Ok(());
            }
            // A cancel that cannot be recorded is refused aloud, never silently dropped.
            if message.status.is_unfinished() {
                state
                    .cache
                    .set(&cancel_key(message_id), b"1", CANCEL_TTL)
                    .await?;
            }
            Ok(())
        }
        ClientAction::ApproveTool {
            tool_execution_id,
            decision,
        } => {
            crate::decisions::decide(
                &state.decision_ports(),
                user,
                tool_execution_id,
                decision,
                Some(connection),
            )
            .await?;
            Ok(())
        }
        ClientAction::Ping {} => {
            state
                .devices()
                .send_to(connection, &ServerEvent::Pong)
                .await;
            Ok(())
        }
    }
}

/// Sends `connection` what it missed of `message` after `after_seq`, then the rest live.
///
/// The connection files a resume request and subscribes, then reads the message's status.
/// While the message streams, its turn serves the request in order with the live frames; once it
/// has ended, whoever takes the request first (this call or the turn's last look) replays the
/// buffer and sends `message.completed`. Either way the frames arrive exactly once.
pub async fn resume(
    state: &AppState,
    user: UserId,
    connection: &ConnectionId,
    message_id: MessageId,
    after_seq: u64,
) -> Result<(), AppError> {
    let message = state
        .store()
        .get_message(user, message_id)
        .await?
        .ok_or_else(DomainError::message_not_found)?;
    // The request is filed before the subscription: whoever sees this connection subscribed also
    // sees that it waits for a replay, so it is never handed live frames it would then get again.
    state
        .connections
        .request_resume(connection, message_id, after_seq)
        .await?;
    state
        .connections
        .subscribe(connection, user, message.conversation_id)
        .await?;
    let message = state
        .store()
        .get_message(user, message_id)
        .await?
        .ok_or_else(DomainError::message_not_found)?;
    if message.status.is_unfinished() {
        return Ok(());
    }
    if state
        .connections
        .claim_resume(connection, message_id)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let frames = state
        .stream_buffer
        .read_after(message_id, after_seq)
        .await
        .unwrap_or_default();
    for (_, frame) in frames {
        if state
            .publisher
            .post(connection, frame.as_bytes())
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    let event = ServerEvent::MessageCompleted {
        conversation_id: message.conversation_id,
        message_id: message.id,
        usage: message.usage,
        turn_usage: None,
        finish_reason: message.finish_reason,
        message,
    };
    state.devices().send_to(connection, &event).await;
    Ok(())
}
