//! The end of a step: what arrived becomes the stored answer (written once, retried, else left
//! to the janitor), its tool calls are decided, its usage and cost recorded and announced.

use std::time::{Duration, Instant};

use bestchat_domain::ErrorCode;
use bestchat_domain::message::{FinishReason, Message, MessageError, MessageStatus, Usage};
use bestchat_domain::ports::store::{Finisher, StepRecords, StoreError};
use bestchat_domain::time::{after, now};
use bestchat_domain::wire::ServerEvent;
use bestchat_providers::TokenUsage;

use super::calls::{DecidedCalls, StepOf, Toolbox};
use super::chain::Call;
use super::fanout::Fanout;
use super::lease::Lease;
use super::step::{LoopPosition, Produced};
use super::stream::Ending;
use super::{StepOutcome, TurnJob, calls, completed_event_with, millis, round, stream};
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::message_tokens;

/// Attempts at the final write before the turn leaves its answer to the janitor.
const FINISH_ATTEMPTS: u32 = 4;
/// Wait before the first repeat of a failed final write; doubled each time.
const FINISH_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Stores the final answer and its usage if the lease is still ours, with the executions of the
/// tool calls it asked for, then tells every connection. A write the lease forbids ends the
/// turn silently: whoever took the answer told the clients.
pub(super) async fn finish(
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
