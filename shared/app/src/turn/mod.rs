//! One assistant turn: claim the pending answer under a lease, build the request, stream it from
//! the provider through the failover chain to every subscribed connection, and store the result
//! with its usage, if the lease is still ours.

pub(crate) mod chain;
mod context;
mod fanout;
mod frames;
pub(crate) mod history;
mod lease;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bestchat_domain::ErrorCode;
use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::message::{FinishReason, Message, MessageError, MessageStatus, Usage};
use bestchat_domain::ports::store::{Finisher, StoreError};
use bestchat_domain::time::now;
use bestchat_domain::wire::ServerEvent;
use bestchat_providers::failover::{Failover, Target};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use fanout::Fanout;
pub use fanout::{announce_end, broadcast, send_to};
pub use frames::encode_event;

use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::message_tokens;
use chain::{Call, Candidate};
use lease::Lease;
use stream::{Batch, Ending, Streamed};

/// What `chat-turn` is invoked with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnJob {
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
}

/// Cancellation requests, checked between batches.
pub fn cancel_key(message: MessageId) -> String {
    format!("cancel:{message}")
}

/// How long a cancellation request is kept.
pub const CANCEL_TTL: Duration = Duration::from_secs(60 * 60);

/// Attempts at the final write before the turn leaves its answer to the janitor.
const FINISH_ATTEMPTS: u32 = 4;
/// Wait before the first repeat of a failed final write; doubled each time.
const FINISH_RETRY_DELAY: Duration = Duration::from_millis(100);

/// The `chat-turn` function.
pub async fn handle(state: Arc<AppState>, payload: Value) -> Result<Value, AppError> {
    let job: TurnJob = serde_json::from_value(payload)
        .map_err(|e| AppError::Payload(format!("chat-turn: {e}")))?;
    let outcome = run(&state, &job).await?;
    Ok(json!({ "outcome": outcome }))
}

/// Claims the answer, then runs the turn while its lease is kept. If the lease is lost (the
/// janitor ended the answer), the turn is dropped where it stands: it can no longer write, and
/// must not post anything more.
pub async fn run(state: &AppState, job: &TurnJob) -> Result<&'static str, AppError> {
    let store = state.store();
    let lease = Lease::new(job.message_id, state.config.turn_lease);
    let at = now();
    if !store
        .claim_turn(
            job.user_id,
            job.message_id,
            lease.id(),
            at,
            lease.expiry(at),
        )
        .await?
    {
        tracing::info!(message = %job.message_id, "turn already claimed; nothing to do");
        return Ok("already_claimed");
    }
    // Cancel safety: `keep` returns only when the lease is lost, and then dropping the turn
    // wherever it waits is the point; the turn finishing first drops `keep`, which at worst
    // abandons a renewal in flight.
    tokio::select! {
        outcome = answer(state, job, &lease) => outcome,
        () = lease.keep(store) => {
            tracing::warn!(message = %job.message_id, lease = %lease.id(), "lease lost; the turn stops without writing");
            Ok("lease_lost")
        }
    }
}

async fn answer(state: &AppState, job: &TurnJob, lease: &Lease) -> Result<&'static str, AppError> {
    let store = state.store();
    let Some(conversation) = store
        .get_conversation(job.user_id, job.conversation_id)
        .await?
    else {
        return Ok("conversation_gone");
    };
    let Some(answer) = store.get_message(job.user_id, job.message_id).await? else {
        return Ok("message_gone");
    };
    let started = Instant::now();
    let mut fanout = Fanout::start(state, job.user_id, job.conversation_id, job.message_id).await;
    let produced = match produce(
        state,
        &mut fanout,
        &conversation,
        &answer,
        job,
        lease,
        started,
    )
    .await
    {
        Ok(produced) => produced,
        Err(e) => {
            let public = e.to_public(&lease.id().to_string());
            Produced::failed(public.code, public.message)
        }
    };
    finish(state, &mut fanout, answer, produced, lease, started).await
}

/// What the provider part of a turn yielded, and from which model.
struct Produced {
    streamed: Streamed,
    ending: Ending,
    /// Deltas not yet posted (held back while the lease could not be counted on).
    unsent: Batch,
    answered: Option<Candidate>,
}

impl Produced {
    fn failed(code: ErrorCode, message: String) -> Self {
        Self {
            streamed: Streamed::default(),
            ending: Ending::Failed(MessageError { code, message }),
            unsent: Batch::default(),
            answered: None,
        }
    }
}

async fn produce(
    state: &AppState,
    fanout: &mut Fanout<'_>,
    conversation: &bestchat_domain::conversation::Conversation,
    answer: &Message,
    job: &TurnJob,
    lease: &Lease,
    started: Instant,
) -> Result<Produced, AppError> {
    let history = history::load(state, conversation, answer).await?;
    let mut candidates = match chain::candidates(state, conversation, answer).await? {
        Ok(c) => c,
        Err(unusable) => {
            return Ok(Produced::failed(
                ErrorCode::ProviderNotConfigured,
                unusable.sentence(),
            ));
        }
    };
    let request = match context::build(state, conversation, answer, &history, &candidates).await? {
        Ok(built) => {
            for o in &built.optimizations {
                fanout
                    .event(&ServerEvent::ContextOptimized {
                        conversation_id: conversation.id,
                        message_id: Some(answer.id),
                        strategy: o.strategy.as_str().to_owned(),
                        tokens_before: o.tokens_before,
                        tokens_after: o.tokens_after,
                    })
                    .await;
            }
            built.request
        }
        Err(too_large) => {
            return Ok(Produced::failed(
                ErrorCode::ContextTooLarge,
                too_large.to_string(),
            ));
        }
    };
    drop(history);
    let chain: Vec<Target> = candidates.iter().map(|c| c.target.clone()).collect();
    let failover = Failover {
        providers: &state.providers,
        breaker: &state.breaker,
        settings: &state.config.retry,
    };
    match failover.start(&chain, &request).await {
        Err(exhausted) => {
            tracing::warn!(message = %answer.id, lease = %lease.id(), error = %exhausted.error, "every provider of the chain failed");
            let last = exhausted.attempts.last().map(|a| a.provider.clone());
            let index = candidates
                .iter()
                .position(|c| Some(c.target.provider.to_string()) == last)
                .unwrap_or(0);
            Ok(Produced {
                streamed: Streamed {
                    attempts: exhausted.attempts,
                    ..Streamed::default()
                },
                ending: Ending::Failed(MessageError {
                    code: ErrorCode::ProviderError,
                    message: exhausted.error.kind.public_sentence().to_owned(),
                }),
                unsent: Batch::default(),
                answered: Some(candidates.swap_remove(index)),
            })
        }
        Ok(ready) => {
            let (streamed, ending, unsent) = stream::run(
                state,
                fanout,
                ready.stream,
                ready.attempts,
                job,
                lease,
                started,
            )
            .await;
            Ok(Produced {
                streamed,
                ending,
                unsent,
                answered: Some(candidates.swap_remove(ready.target)),
            })
        }
    }
}

/// Stores the final answer and its usage if the lease is still ours, then tells every
/// connection. A write the lease forbids ends the turn silently: whoever took the answer told
/// the clients.
async fn finish(
    state: &AppState,
    fanout: &mut Fanout<'_>,
    answer: Message,
    produced: Produced,
    lease: &Lease,
    started: Instant,
) -> Result<&'static str, AppError> {
    let Produced {
        streamed: got,
        ending,
        mut unsent,
        answered,
    } = produced;
    let answered = answered.as_ref();
    let (status, finish_reason, error) = ending.into_parts();
    let usage = got.usage.map(|u| Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cached_tokens: u.cached_tokens,
        cost_micros: answered.and_then(|c| c.cost(&u)),
    });
    let final_message = Message {
        token_count: message_tokens(
            answered.map_or(answer.model.as_ref().map_or("", |m| m.as_str()), |c| {
                c.target.model.as_str()
            }),
            &got.text,
            &got.tool_calls,
        ),
        content: got.text,
        status,
        provider: answered
            .map(|c| c.target.provider.clone())
            .or(answer.provider.clone()),
        model: answered
            .map(|c| c.target.model.clone())
            .or(answer.model.clone()),
        tool_calls: got.tool_calls,
        usage,
        finish_reason,
        error: error.clone(),
        updated_at: now(),
        ..answer
    };
    // A usage record for every turn that reached a provider.
    let log = answered.filter(|_| !got.attempts.is_empty()).map(|c| {
        c.usage_log(Call {
            user: final_message.user_id,
            conversation: final_message.conversation_id,
            message: final_message.id,
            tokens: got.usage,
            started,
            first_token: got.first_token,
            status,
            attempts: &got.attempts,
        })
    });
    lease.ending();
    if !write_final(state, &final_message, log.as_ref(), lease).await? {
        tracing::warn!(message = %final_message.id, lease = %lease.id(), "the answer was ended by someone else; nothing written");
        return Ok("lease_lost");
    }
    tracing::info!(
        message = %final_message.id, lease = %lease.id(), status = status.as_str(),
        frames = fanout.delivered(), provider = ?final_message.provider,
        model = ?final_message.model, latency_ms = millis(started.elapsed()),
        ttft_ms = ?got.first_token.map(millis), "turn finished"
    );
    // What was held back is stored now, so it can be posted.
    stream::flush(fanout, &mut unsent).await;
    // Serve resumes that arrived while the answer was being stored, then close the stream.
    fanout.refresh().await;
    if let Some(e) = error {
        fanout
            .event(&ServerEvent::MessageError {
                conversation_id: Some(final_message.conversation_id),
                message_id: Some(final_message.id),
                code: e.code,
                message: e.message,
                request_id: Some(lease.id().to_string()),
            })
            .await;
    }
    fanout.event(&completed_event(final_message)).await;
    Ok(status.as_str())
}

/// The final write, repeated a few times when the store is briefly unavailable (a connection
/// killed under the turn): `false` when the lease no longer allows it.
async fn write_final(
    state: &AppState,
    message: &Message,
    log: Option<&bestchat_domain::usage::UsageLog>,
    lease: &Lease,
) -> Result<bool, AppError> {
    let mut delay = FINISH_RETRY_DELAY;
    for attempt in 1..=FINISH_ATTEMPTS {
        match state
            .store()
            .finish_turn(message, log, Finisher::Lease(lease.id()))
            .await
        {
            Ok(written) => return Ok(written),
            Err(StoreError::Unavailable(detail)) if attempt < FINISH_ATTEMPTS => {
                tracing::warn!(message = %message.id, attempt, detail, "final write failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// `message.completed` for a stored answer.
pub fn completed_event(message: Message) -> ServerEvent {
    ServerEvent::MessageCompleted {
        conversation_id: message.conversation_id,
        message_id: message.id,
        usage: message.usage,
        finish_reason: message.finish_reason,
        message,
    }
}

pub(crate) fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Ending {
    /// The stored status, finish reason and error of an answer that ended so.
    fn into_parts(self) -> (MessageStatus, Option<FinishReason>, Option<MessageError>) {
        match self {
            Self::Finished(reason) => (MessageStatus::Complete, Some(reason), None),
            Self::Cancelled => (MessageStatus::Cancelled, None, None),
            Self::Cut(e) => (
                MessageStatus::Incomplete,
                None,
                Some(MessageError {
                    code: ErrorCode::Incomplete,
                    message: format!(
                        "the answer was cut off ({}); what arrived is kept",
                        e.kind.public_sentence()
                    ),
                }),
            ),
            Self::TimedOut => (
                MessageStatus::Incomplete,
                None,
                Some(MessageError::of(ErrorCode::TurnTimeout)),
            ),
            Self::Failed(error) => (MessageStatus::Error, Some(FinishReason::Error), Some(error)),
        }
    }
}
