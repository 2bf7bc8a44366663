//! One assistant turn: claim the pending answer, build the request, stream it from the provider
//! through the failover chain to every subscribed connection, and store the result with its usage.

pub(crate) mod chain;
mod context;
mod fanout;
mod frames;
pub(crate) mod history;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::message::{
    FinishReason, Message, MessageError, MessageStatus, ToolCall, Usage,
};
use bestchat_domain::time::now;
use bestchat_domain::wire::{DeltaChannel, ServerEvent};
use bestchat_providers::failover::{Attempt, Failover, Target};
use bestchat_providers::{EventStream, ProviderError, StreamEvent, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use fanout::Fanout;
pub use fanout::{broadcast, send_to};

use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::message_tokens;
use chain::{Call, Candidate};

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

/// The `chat-turn` function.
pub async fn handle(state: Arc<AppState>, payload: Value) -> Result<Value, String> {
    let job: TurnJob =
        serde_json::from_value(payload).map_err(|e| format!("bad chat-turn payload: {e}"))?;
    let outcome = run(&state, &job).await.map_err(|e| e.to_string())?;
    Ok(json!({ "outcome": outcome }))
}

/// How the provider part of a turn ended.
enum Ending {
    Finished(FinishReason),
    Cancelled,
    /// The provider failed after content arrived.
    Cut(ProviderError),
    /// Nothing usable came: every target failed, or none could be called.
    Failed {
        code: &'static str,
        message: String,
    },
    TimedOut,
}

pub async fn run(state: &AppState, job: &TurnJob) -> Result<&'static str, AppError> {
    let store = state.store();
    if !store.claim_turn(job.user_id, job.message_id, now()).await? {
        tracing::info!(message = %job.message_id, "turn already claimed; nothing to do");
        return Ok("already_claimed");
    }
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
    let history = history::load(state, &conversation, answer.id).await?;
    let candidates = match chain::candidates(state, &conversation, &answer).await {
        Ok(c) => c,
        Err(message) => {
            let ending = Ending::Failed {
                code: "provider_not_configured",
                message,
            };
            return unanswered(state, &mut fanout, answer, ending, started).await;
        }
    };
    let request = match context::build(state, &conversation, &answer, &history, &candidates).await?
    {
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
            let ending = Ending::Failed {
                code: "context_too_large",
                message: too_large.to_string(),
            };
            return unanswered(state, &mut fanout, answer, ending, started).await;
        }
    };
    let chain: Vec<Target> = candidates.iter().map(|c| c.target.clone()).collect();
    let failover = Failover {
        providers: &state.providers,
        breaker: &state.breaker,
        settings: &state.config.retry,
    };
    match failover.start(&chain, &request).await {
        Err(exhausted) => {
            let ending = Ending::Failed {
                code: "provider_error",
                message: exhausted.error.message.clone(),
            };
            let last = exhausted.attempts.last().map(|a| a.provider.clone());
            let answered = candidates
                .iter()
                .find(|c| Some(c.target.provider.to_string()) == last)
                .or(candidates.first());
            let streamed = Streamed {
                attempts: exhausted.attempts,
                ..Streamed::empty()
            };
            finish(
                state,
                &mut fanout,
                answer,
                streamed,
                ending,
                answered,
                started,
            )
            .await
        }
        Ok(ready) => {
            let answered = &candidates[ready.target];
            let (streamed, ending) = stream(
                state,
                &mut fanout,
                ready.stream,
                ready.attempts,
                job,
                started,
            )
            .await;
            finish(
                state,
                &mut fanout,
                answer,
                streamed,
                ending,
                Some(answered),
                started,
            )
            .await
        }
    }
}

/// What arrived from the provider.
struct Streamed {
    text: String,
    tool_calls: Vec<ToolCall>,
    usage: Option<TokenUsage>,
    first_token: Option<Duration>,
    attempts: Vec<Attempt>,
}

impl Streamed {
    fn empty() -> Self {
        Self {
            text: String::new(),
            tool_calls: Vec::new(),
            usage: None,
            first_token: None,
            attempts: Vec::new(),
        }
    }
}

/// A batch of deltas waiting for its window to close.
struct Batch {
    text: String,
    channel: DeltaChannel,
    due: Option<tokio::time::Instant>,
}

async fn stream(
    state: &AppState,
    fanout: &mut Fanout<'_>,
    mut events: EventStream,
    attempts: Vec<Attempt>,
    job: &TurnJob,
    started: Instant,
) -> (Streamed, Ending) {
    let realtime = &state.config.realtime;
    let deadline = tokio::time::Instant::now() + state.config.turn_max_duration;
    let mut got = Streamed {
        attempts,
        ..Streamed::empty()
    };
    let mut calls: Vec<(u32, ToolCall, String)> = Vec::new();
    let mut batch = Batch {
        text: String::new(),
        channel: DeltaChannel::Text,
        due: None,
    };
    let mut poll = tokio::time::interval(realtime.cancel_poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ending = loop {
        let due = batch.due.unwrap_or(deadline);
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { break Ending::Cut(ProviderError::incomplete()) };
                match event {
                    StreamEvent::TextDelta(t) | StreamEvent::ReasoningDelta(t) if t.is_empty() => {}
                    StreamEvent::TextDelta(t) => {
                        got.text.push_str(&t);
                        if add(fanout, &mut batch, &mut got, t, DeltaChannel::Text, started, realtime).await
                            && cancelled(state, job).await
                        {
                            break Ending::Cancelled;
                        }
                    }
                    StreamEvent::ReasoningDelta(t) => {
                        if add(fanout, &mut batch, &mut got, t, DeltaChannel::Reasoning, started, realtime).await
                            && cancelled(state, job).await
                        {
                            break Ending::Cancelled;
                        }
                    }
                    StreamEvent::ToolCallStart { index, id, name } => calls.push((
                        index,
                        ToolCall { id, name, arguments: Value::Null },
                        String::new(),
                    )),
                    StreamEvent::ToolCallDelta { index, arguments } => {
                        if let Some(call) = calls.iter_mut().find(|c| c.0 == index) {
                            call.2.push_str(&arguments);
                        }
                    }
                    StreamEvent::ToolCallEnd { .. } => {}
                    StreamEvent::Usage(u) => got.usage = Some(u),
                    StreamEvent::Finish(reason) => break Ending::Finished(reason),
                    StreamEvent::Error(e) => break Ending::Cut(e),
                }
            }
            () = tokio::time::sleep_until(due), if batch.due.is_some() => {
                flush(fanout, &mut batch).await;
                if cancelled(state, job).await {
                    break Ending::Cancelled;
                }
            }
            _ = poll.tick() => {
                fanout.refresh_if_due().await;
                if cancelled(state, job).await {
                    break Ending::Cancelled;
                }
            }
            () = tokio::time::sleep_until(deadline) => break Ending::TimedOut,
        }
    };
    flush(fanout, &mut batch).await;
    got.tool_calls = calls
        .into_iter()
        .map(|(_, mut call, arguments)| {
            call.arguments = serde_json::from_str(&arguments).unwrap_or(Value::String(arguments));
            call
        })
        .collect();
    (got, ending)
}

/// Adds a delta to the batch; the first delta of the answer goes out at once, later ones wait
/// for the window or a full frame. Returns whether a batch was sent.
async fn add(
    fanout: &mut Fanout<'_>,
    batch: &mut Batch,
    got: &mut Streamed,
    text: String,
    channel: DeltaChannel,
    started: Instant,
    realtime: &crate::config::RealtimeConfig,
) -> bool {
    let mut sent = false;
    if !batch.text.is_empty() && batch.channel != channel {
        flush(fanout, batch).await;
        sent = true;
    }
    batch.channel = channel;
    batch.text.push_str(&text);
    if got.first_token.is_none() {
        got.first_token = Some(started.elapsed());
        flush(fanout, batch).await;
        return true;
    }
    if batch.text.len() >= realtime.frame_max_bytes / 2 {
        flush(fanout, batch).await;
        return true;
    }
    if batch.due.is_none() {
        batch.due = Some(tokio::time::Instant::now() + realtime.coalesce_window);
    }
    sent
}

async fn flush(fanout: &mut Fanout<'_>, batch: &mut Batch) {
    batch.due = None;
    if batch.text.is_empty() {
        return;
    }
    let text = std::mem::take(&mut batch.text);
    fanout.delta(&text, batch.channel).await;
    fanout.refresh_if_due().await;
}

async fn cancelled(state: &AppState, job: &TurnJob) -> bool {
    matches!(
        state.cache.get(&cancel_key(job.message_id)).await,
        Ok(Some(_))
    )
}

/// Ends a turn that never reached a provider.
async fn unanswered(
    state: &AppState,
    fanout: &mut Fanout<'_>,
    answer: Message,
    ending: Ending,
    started: Instant,
) -> Result<&'static str, AppError> {
    finish(
        state,
        fanout,
        answer,
        Streamed::empty(),
        ending,
        None,
        started,
    )
    .await
}

/// Stores the final answer and its usage, then tells every connection.
async fn finish(
    state: &AppState,
    fanout: &mut Fanout<'_>,
    answer: Message,
    got: Streamed,
    ending: Ending,
    answered: Option<&Candidate>,
    started: Instant,
) -> Result<&'static str, AppError> {
    let (status, finish_reason, error, outcome) = match ending {
        Ending::Finished(reason) => (MessageStatus::Complete, Some(reason), None, "complete"),
        Ending::Cancelled => (MessageStatus::Cancelled, None, None, "cancelled"),
        Ending::Cut(e) => (
            MessageStatus::Incomplete,
            None,
            Some(MessageError {
                code: "incomplete".into(),
                message: e.to_string(),
            }),
            "incomplete",
        ),
        Ending::TimedOut => (
            MessageStatus::Incomplete,
            None,
            Some(MessageError {
                code: "turn_timeout".into(),
                message: "the answer took longer than this deployment allows".into(),
            }),
            "incomplete",
        ),
        Ending::Failed { code, message } => (
            MessageStatus::Error,
            Some(FinishReason::Error),
            Some(MessageError {
                code: code.into(),
                message,
            }),
            "error",
        ),
    };
    let usage = got.usage.map(|u| Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cached_tokens: u.cached_tokens,
        cost_micros: answered.and_then(|c| c.cost(&u)),
    });
    let at = now();
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
        updated_at: at,
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
    state
        .store()
        .finish_turn(&final_message, log.as_ref())
        .await?;
    tracing::info!(
        message = %final_message.id, outcome, frames = fanout.delivered(),
        provider = ?final_message.provider, model = ?final_message.model,
        latency_ms = millis(started.elapsed()), ttft_ms = ?got.first_token.map(millis),
        "turn finished"
    );
    // Serve resumes that arrived while the answer was being stored, then close the stream.
    fanout.refresh().await;
    if let Some(e) = error {
        fanout
            .event(&ServerEvent::MessageError {
                conversation_id: Some(final_message.conversation_id),
                message_id: Some(final_message.id),
                code: e.code,
                message: e.message,
            })
            .await;
    }
    fanout
        .event(&ServerEvent::MessageCompleted {
            conversation_id: final_message.conversation_id,
            message_id: final_message.id,
            usage: final_message.usage,
            finish_reason: final_message.finish_reason,
            message: final_message,
        })
        .await;
    Ok(outcome)
}

pub(crate) fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
