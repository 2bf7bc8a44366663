//! One assistant turn: claim the pending answer under a lease, build the request, stream it from
//! the provider through the failover chain to every subscribed connection, and store the result
//! with its usage, if the lease is still ours. An answer that asks for tools is one step of a
//! loop: its calls are decided and stored with it (`calls`), the approved ones run (`round`),
//! and the next step is a new answer, streamed the same way, until an answer without calls, a
//! call that waits for the user (the invocation ends; the last decision starts a new one), or
//! the step limit.

pub(crate) mod calls;
pub(crate) mod chain;
mod context;
mod fanout;
mod frames;
pub(crate) mod history;
mod lease;
pub(crate) mod round;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bestchat_domain::ErrorCode;
use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::message::{FinishReason, Message, MessageError, MessageStatus, Role, Usage};
use bestchat_domain::ports::store::{Finisher, StepRecords, StoreError};
use bestchat_domain::time::{after, now};
use bestchat_domain::wire::ServerEvent;
use bestchat_providers::failover::{Failover, Target};
use bestchat_providers::{ErrorKind, TokenUsage, ToolSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use calls::{DecidedCalls, StepOf, Toolbox};
use fanout::Fanout;
pub use fanout::{announce_end, broadcast, send_to, to_every_device};
pub use frames::encode_event;

use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::message_tokens;
use chain::{Call, Candidate};
use lease::Lease;
use stream::{Batch, Clocks, Ending, Streamed};

/// What `chat-turn` is invoked with: stream the pending answer `message_id`, or, with
/// `continue_tools`, run the decided calls of the step `message_id` and go on with the loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnJob {
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_tools: bool,
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
    let mut steps = Vec::new();
    let mut next = Some(job);
    // The steps this invocation runs share one deadline, so the chain ends (its last answer
    // `incomplete`, honestly) before the function's own timeout could kill it mid-write.
    let deadline = tokio::time::Instant::now() + state.config.turn_max_duration;
    // Bounded: each step's answer is a new message, and the step limit ends the chain.
    while let Some(job) = next.take() {
        let outcome = if job.continue_tools {
            round::advance(&state, &job).await?
        } else {
            run(&state, &job, deadline).await?
        };
        steps.push(outcome.name());
        next = outcome.then();
    }
    Ok(json!({ "outcome": steps.last().copied().unwrap_or_default(), "steps": steps }))
}

/// What a step did; the two that go on carry the loop's next job in this invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Another invocation runs this answer.
    AlreadyClaimed,
    /// The janitor ended the answer while the turn ran; the turn stopped without writing.
    LeaseLost,
    ConversationGone,
    MessageGone,
    /// The answer ended with this status, and nothing follows.
    Ended(MessageStatus),
    /// Tool calls wait for the user's decision.
    ToolsWaiting,
    /// The answer asked for tools, all decided: they run next.
    ToolCalls(TurnJob),
    /// The tools' results are in: the model's next step follows.
    ToolsDone(TurnJob),
}

impl StepOutcome {
    /// The step's name in chat-turn's answer.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AlreadyClaimed => "already_claimed",
            Self::LeaseLost => "lease_lost",
            Self::ConversationGone => "conversation_gone",
            Self::MessageGone => "message_gone",
            Self::Ended(status) => status.as_str(),
            Self::ToolsWaiting => "tools_waiting",
            Self::ToolCalls(_) => "tool_calls",
            Self::ToolsDone(_) => "tools_done",
        }
    }

    /// The job that follows in this invocation, if any.
    pub fn then(self) -> Option<TurnJob> {
        match self {
            Self::ToolCalls(job) | Self::ToolsDone(job) => Some(job),
            _ => None,
        }
    }
}

/// Claims the answer, then runs the turn while its lease is kept. If the lease is lost (the
/// janitor ended the answer), the turn is dropped where it stands: it can no longer write, and
/// must not post anything more.
pub async fn run(
    state: &AppState,
    job: &TurnJob,
    deadline: tokio::time::Instant,
) -> Result<StepOutcome, AppError> {
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
        return Ok(StepOutcome::AlreadyClaimed);
    }
    // Cancel safety: `keep` returns only when the lease is lost, and then dropping the turn
    // wherever it waits is the point; the turn finishing first drops `keep`, which at worst
    // abandons a renewal in flight.
    tokio::select! {
        outcome = answer(state, job, &lease, deadline) => outcome,
        () = lease.keep(store) => {
            tracing::warn!(message = %job.message_id, lease = %lease.id(), "lease lost; the turn stops without writing");
            Ok(StepOutcome::LeaseLost)
        }
    }
}

async fn answer(
    state: &AppState,
    job: &TurnJob,
    lease: &Lease,
    deadline: tokio::time::Instant,
) -> Result<StepOutcome, AppError> {
    let store = state.store();
    let Some(conversation) = store
        .get_conversation(job.user_id, job.conversation_id)
        .await?
    else {
        return Ok(StepOutcome::ConversationGone);
    };
    let Some(answer) = store.get_message(job.user_id, job.message_id).await? else {
        return Ok(StepOutcome::MessageGone);
    };
    let started = Instant::now();
    let mut fanout = Fanout::start(state, job.user_id, job.conversation_id, job.message_id).await;
    let produced = match produce(
        state,
        &mut fanout,
        &conversation,
        &answer,
        Clocks { started, deadline },
        job,
        lease,
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
    /// Where this answer stands in its tool loop.
    position: LoopPosition,
    /// The tools the model was offered, when it was.
    toolbox: Option<Toolbox>,
    /// The request's input tokens as planned, when a request was made.
    planned_input: Option<u32>,
}

impl Produced {
    fn failed(code: ErrorCode, message: String) -> Self {
        Self {
            streamed: Streamed::default(),
            ending: Ending::Failed(MessageError { code, message }),
            unsent: Batch::default(),
            answered: None,
            position: LoopPosition::default(),
            toolbox: None,
            planned_input: None,
        }
    }
}

/// The earlier steps of the answer being streamed: the assistant messages since the user's.
#[derive(Debug, Clone, Default)]
struct LoopPosition {
    earlier_steps: Vec<MessageId>,
    /// What the earlier steps cost, for the answer's total.
    earlier_usage: Vec<Usage>,
}

impl LoopPosition {
    fn of(history: &[Message]) -> Self {
        let mut position = Self::default();
        for m in history.iter().rev().take_while(|m| m.role != Role::User) {
            if m.role == Role::Assistant {
                position.earlier_steps.push(m.id);
                position.earlier_usage.extend(m.usage);
            }
        }
        position
    }

    fn number(&self) -> u32 {
        u32::try_from(self.earlier_steps.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }
}

async fn produce(
    state: &AppState,
    fanout: &mut Fanout<'_>,
    conversation: &bestchat_domain::conversation::Conversation,
    answer: &Message,
    clocks: Clocks,
    job: &TurnJob,
    lease: &Lease,
) -> Result<Produced, AppError> {
    let history = history::load(state, conversation, answer).await?;
    let position = LoopPosition::of(&history);
    let mut candidates = match chain::candidates(state, conversation, answer).await? {
        Ok(c) => c,
        Err(unusable) => {
            return Ok(Produced::failed(
                ErrorCode::ProviderNotConfigured,
                unusable.sentence(),
            ));
        }
    };
    // Tools go only to models that take them: offered when the first model does, and then
    // the fallbacks that do not are left out of the chain.
    let toolbox = if candidates.first().is_some_and(Candidate::supports_tools) {
        candidates.retain(Candidate::supports_tools);
        Some(round::toolbox(state, conversation.user_id).await?)
    } else {
        None
    };
    let specs: Vec<ToolSpec> = toolbox.as_ref().map_or_else(Vec::new, Toolbox::specs);
    let (request, planned_input) =
        match context::build(state, conversation, answer, &history, &candidates, specs).await? {
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
                (built.request, built.input_tokens)
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
                    // A refused key is the user's to fix (their settings), not worth a retry.
                    code: if exhausted.error.kind == ErrorKind::Auth {
                        ErrorCode::ProviderKeyRefused
                    } else {
                        ErrorCode::ProviderError
                    },
                    message: exhausted.error.kind.public_sentence().to_owned(),
                }),
                unsent: Batch::default(),
                answered: Some(candidates.swap_remove(index)),
                position,
                toolbox,
                planned_input: Some(planned_input),
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
                clocks,
            )
            .await;
            Ok(Produced {
                streamed,
                ending,
                unsent,
                answered: Some(candidates.swap_remove(ready.target)),
                position,
                toolbox,
                planned_input: Some(planned_input),
            })
        }
    }
}

/// Stores the final answer and its usage if the lease is still ours, with the executions of the
/// tool calls it asked for, then tells every connection. A write the lease forbids ends the
/// turn silently: whoever took the answer told the clients.
async fn finish(
    state: &AppState,
    fanout: &mut Fanout<'_>,
    answer: Message,
    produced: Produced,
    lease: &Lease,
    started: Instant,
) -> Result<StepOutcome, AppError> {
    let Produced {
        streamed: got,
        ending,
        mut unsent,
        answered,
        position,
        toolbox,
        planned_input,
    } = produced;
    let answered = answered.as_ref();
    let (mut status, finish_reason, mut error) = ending.into_parts();
    // The provider call's own outcome, for its usage record, whatever the calls then make of
    // the answer's status.
    let call_status = status;
    let answered_model = answered.map_or(answer.model.as_ref().map_or("", |m| m.as_str()), |c| {
        c.target.model.as_str()
    });
    let token_count = message_tokens(answered_model, &got.text, &got.tool_calls);
    let tokens = got
        .usage
        .or_else(|| estimate(status, !got.attempts.is_empty(), planned_input, token_count));
    let usage = tokens.map(|u| Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cached_tokens: u.cached_tokens,
        cost_micros: answered.and_then(|c| c.cost(&u)),
    });
    let mut final_message = Message {
        token_count,
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
    // Calls are acted on only when the answer ended properly; a cut or cancelled answer keeps
    // its calls on record, and the history leaves them out (they have no results).
    let decided = if status == MessageStatus::Complete && !final_message.tool_calls.is_empty() {
        Some(decide_calls(state, &final_message, &position, toolbox).await?)
    } else {
        None
    };
    if let Some(d) = &decided {
        if position.number() >= state.config.tools.loop_limits.max_steps {
            status = MessageStatus::Incomplete;
            error = Some(MessageError::of(ErrorCode::ToolStepLimit));
        } else if d.waiting().next().is_some() {
            status = MessageStatus::AwaitingApproval;
        }
        final_message.status = status;
        final_message.error.clone_from(&error);
    }
    // A usage record for every turn that reached a provider.
    let log = answered.filter(|_| !got.attempts.is_empty()).map(|c| {
        c.usage_log(Call {
            user: final_message.user_id,
            conversation: final_message.conversation_id,
            message: final_message.id,
            tokens,
            started,
            first_token: got.first_token,
            status: call_status,
            attempts: &got.attempts,
        })
    });
    // A step whose loop goes on holds the conversation's turn open until its next step
    // exists; should the continuation be lost, the janitor makes it after this deadline.
    let goes_on = matches!(
        status,
        MessageStatus::Complete | MessageStatus::AwaitingApproval
    );
    let records = decided
        .as_ref()
        .map_or_else(StepRecords::default, |d| StepRecords {
            executions: &d.executions,
            results: &d.results,
            audit: &d.audit,
            continue_by: goes_on.then(|| after(now(), state.config.turn_start_timeout)),
        });
    lease.ending();
    if !write_final(state, &final_message, log.as_ref(), lease, &records).await? {
        tracing::warn!(message = %final_message.id, lease = %lease.id(), "the answer was ended by someone else; nothing written");
        return Ok(StepOutcome::LeaseLost);
    }
    tracing::info!(
        message = %final_message.id, lease = %lease.id(), status = status.as_str(),
        frames = fanout.delivered(), provider = ?final_message.provider,
        model = ?final_message.model, latency_ms = millis(started.elapsed()),
        ttft_ms = ?got.first_token.map(millis), step = position.number(),
        tool_calls = final_message.tool_calls.len(), "turn finished"
    );
    if let Some(log) = &log {
        record_metrics(state, log, fanout.delivered());
    }
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
    let (user, conversation, step) = (
        final_message.user_id,
        final_message.conversation_id,
        final_message.id,
    );
    let turn_usage = (decided.is_none() && !position.earlier_steps.is_empty()).then(|| {
        sum_usage(
            position
                .earlier_usage
                .iter()
                .chain(final_message.usage.iter()),
        )
    });
    fanout
        .event(&completed_event_with(final_message, turn_usage))
        .await;
    let Some(decided) = decided else {
        return Ok(StepOutcome::Ended(status));
    };
    round::announce_decided(state, &decided).await;
    if status != MessageStatus::Complete {
        return Ok(StepOutcome::Ended(status));
    }
    Ok(StepOutcome::ToolCalls(TurnJob {
        user_id: user,
        conversation_id: conversation,
        message_id: step,
        continue_tools: true,
    }))
}

/// A stopped or cut answer never gets the provider's own count, yet the provider bills what it
/// read and wrote before the cut: the planned input and the tokens of what arrived stand in, so
/// the answer shows a cost and spending totals include it.
fn estimate(
    status: MessageStatus,
    reached_provider: bool,
    planned_input: Option<u32>,
    output_tokens: u32,
) -> Option<TokenUsage> {
    let stopped = matches!(status, MessageStatus::Cancelled | MessageStatus::Incomplete);
    (stopped && reached_provider).then(|| TokenUsage {
        input_tokens: planned_input.unwrap_or(0),
        output_tokens,
        cached_tokens: 0,
        reasoning_tokens: 0,
    })
}

/// Decides the answer's calls against the user's tools and rules.
async fn decide_calls(
    state: &AppState,
    message: &Message,
    position: &LoopPosition,
    toolbox: Option<Toolbox>,
) -> Result<DecidedCalls, AppError> {
    let toolbox = match toolbox {
        Some(t) => t,
        None => round::toolbox(state, message.user_id).await?,
    };
    let step = StepOf {
        user: message.user_id,
        conversation: message.conversation_id,
        message: message.id,
        number: position.number(),
        auto_so_far: round::auto_approved_before(state, message.user_id, &position.earlier_steps)
            .await?,
        model: message.model.as_ref().map_or("", |m| m.as_str()).to_owned(),
        at: now(),
    };
    let tools = &state.config.tools;
    Ok(calls::decide(
        &toolbox,
        &step,
        &message.tool_calls,
        &tools.loop_limits,
        &tools.ceilings,
    ))
}

fn sum_usage<'a>(steps: impl Iterator<Item = &'a Usage>) -> Usage {
    steps.fold(Usage::default(), |sum, u| Usage {
        input_tokens: sum.input_tokens.saturating_add(u.input_tokens),
        output_tokens: sum.output_tokens.saturating_add(u.output_tokens),
        cached_tokens: sum.cached_tokens.saturating_add(u.cached_tokens),
        // Unknown if any step's cost is unknown: never a made-up partial sum.
        cost_micros: sum
            .cost_micros
            .zip(u.cost_micros)
            .map(|(a, b)| a.saturating_add(b)),
    })
}

/// The final write, repeated a few times when the store is briefly unavailable (a connection
/// killed under the turn): `false` when the lease no longer allows it.
async fn write_final(
    state: &AppState,
    message: &Message,
    log: Option<&bestchat_domain::usage::UsageLog>,
    lease: &Lease,
    records: &StepRecords<'_>,
) -> Result<bool, AppError> {
    let mut delay = FINISH_RETRY_DELAY;
    for attempt in 1..=FINISH_ATTEMPTS {
        match state
            .store()
            .finish_turn(message, log, Finisher::Lease(lease.id()), records)
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
    completed_event_with(message, None)
}

fn completed_event_with(message: Message, turn_usage: Option<Usage>) -> ServerEvent {
    ServerEvent::MessageCompleted {
        conversation_id: message.conversation_id,
        message_id: message.id,
        usage: message.usage,
        turn_usage,
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
            Self::TooLarge => (
                MessageStatus::Incomplete,
                Some(FinishReason::Length),
                Some(MessageError::of(ErrorCode::AnswerTooLarge)),
            ),
            Self::Failed(error) => (MessageStatus::Error, Some(FinishReason::Error), Some(error)),
        }
    }
}

/// The turn's CloudWatch metrics: what users wait for (time to first token, latency), what it
/// costs (tokens, dollars) and how many frames it posted (the WebSocket bill), per provider.
fn record_metrics(state: &AppState, log: &bestchat_domain::usage::UsageLog, frames: u64) {
    use crate::metrics::Metric;
    let mut values = vec![
        Metric::millis("TurnLatency", u64::from(log.latency_ms)),
        Metric::count("InputTokens", u64::from(log.input_tokens)),
        Metric::count("OutputTokens", u64::from(log.output_tokens)),
        Metric::count("Frames", frames),
    ];
    if let Some(ttft) = log.ttft_ms {
        values.push(Metric::millis("TimeToFirstToken", u64::from(ttft)));
    }
    if let Some(micros) = log.cost_micros {
        values.push(Metric::value("CostUSD", micros as f64 / 1_000_000.0));
    }
    state
        .metrics
        .emit(&[("Provider", log.provider.as_str())], &values);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_steps_that_go_on_carry_a_job_and_each_keeps_its_name() {
        let job = TurnJob {
            user_id: UserId::from_uuid(uuid::Uuid::now_v7()),
            conversation_id: ConversationId::from_uuid(uuid::Uuid::now_v7()),
            message_id: MessageId::from_uuid(uuid::Uuid::now_v7()),
            continue_tools: true,
        };
        let going_on = [
            (StepOutcome::ToolCalls(job.clone()), "tool_calls"),
            (StepOutcome::ToolsDone(job.clone()), "tools_done"),
        ];
        for (outcome, name) in going_on {
            assert_eq!(outcome.name(), name);
            assert_eq!(outcome.then(), Some(job.clone()));
        }
        let ending = [
            (StepOutcome::AlreadyClaimed, "already_claimed"),
            (StepOutcome::LeaseLost, "lease_lost"),
            (StepOutcome::ConversationGone, "conversation_gone"),
            (StepOutcome::MessageGone, "message_gone"),
            (StepOutcome::ToolsWaiting, "tools_waiting"),
            (StepOutcome::Ended(MessageStatus::Incomplete), "incomplete"),
        ];
        for (outcome, name) in ending {
            assert_eq!(outcome.name(), name);
            assert_eq!(outcome.then(), None);
        }
    }
}
