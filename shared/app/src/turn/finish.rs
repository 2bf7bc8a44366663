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
use super::chain::{Call, Candidate};
use super::fanout::Fanout;
use super::job::{StepOutcome, TurnJob, completed_event_with, millis};
use super::lease::Lease;
use super::ports::StepPorts;
use super::step::{LoopPosition, Produced};
use super::stream::{Batch, Ending, Streamed};
use super::{calls, round, stream};
use crate::error::AppError;
use crate::tokens::message_tokens;

/// Attempts at the final write before the turn leaves its answer to the janitor.
const FINISH_ATTEMPTS: u32 = 4;
/// Wait before the first repeat of a failed final write; doubled each time.
const FINISH_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Stores the final answer and its usage if the lease is still ours, with the executions of the
/// tool calls it asked for, then tells every connection. A write the lease forbids ends the
/// turn silently: whoever took the answer told the clients.
pub(super) async fn finish(
    ports: &StepPorts<'_>,
    fanout: &mut Fanout<'_>,
    answer: Message,
    produced: Produced,
    lease: &Lease,
    started: Instant,
) -> Result<StepOutcome, AppError> {
    let Produced {
        streamed: mut got,
        ending,
        mut unsent,
        answered,
        position,
        toolbox,
        planned_input,
        held,
    } = produced;
    let answered = answered.as_ref();
    let (mut message, tokens) = stored_answer(answer, &mut got, ending, answered, planned_input);
    // Settled first, whatever becomes of the rest of the step: the provider was paid.
    if held {
        let cost = message.usage.and_then(|u| u.cost_micros).unwrap_or(0);
        ports
            .budgets
            .settle(message.user_id, &message.id.to_string(), cost)
            .await;
    }
    // The provider call's own outcome, for its usage record, whatever the calls then make of
    // the answer's status.
    let call_status = message.status;
    let decided = decide_step(ports, &mut message, &position, toolbox).await?;
    // A usage record for every turn that reached a provider.
    let log = answered.filter(|_| !got.attempts.is_empty()).map(|c| {
        c.usage_log(Call {
            user: message.user_id,
            conversation: message.conversation_id,
            message: message.id,
            tokens,
            started,
            first_token: got.first_token,
            status: call_status,
            attempts: &got.attempts,
        })
    });
    let records = step_records(ports, &message, decided.as_ref());
    lease.ending();
    if !write_final(ports, &message, log.as_ref(), lease, &records).await? {
        tracing::warn!(message = %message.id, lease = %lease.id(), "the answer was ended by someone else; nothing written");
        return Ok(StepOutcome::LeaseLost);
    }
    tracing::info!(
        message = %message.id, lease = %lease.id(), status = message.status.as_str(),
        frames = fanout.delivered(), provider = ?message.provider,
        model = ?message.model, latency_ms = millis(started.elapsed()),
        ttft_ms = ?got.first_token.map(millis), step = position.number(),
        tool_calls = message.tool_calls.len(), "turn finished"
    );
    if let Some(log) = &log {
        record_metrics(ports, log, fanout.delivered());
    }
    let next = next_outcome(&message, decided.is_some());
    // A turn's total goes with its last step, when there were several.
    let turn_usage = (decided.is_none() && !position.earlier_steps.is_empty())
        .then(|| sum_usage(position.earlier_usage.iter().chain(message.usage.iter())));
    announce(fanout, &mut unsent, message, turn_usage, lease).await;
    if let Some(decided) = &decided {
        round::announce_decided(ports, decided).await;
    }
    Ok(next)
}

/// What arrived, as the answer to store: its content, calls, status, model, tokens and cost
/// (the provider's count, else an estimate for a stopped answer the provider still bills).
fn stored_answer(
    answer: Message,
    got: &mut Streamed,
    ending: Ending,
    answered: Option<&Candidate>,
    planned_input: Option<u32>,
) -> (Message, Option<TokenUsage>) {
    let (status, finish_reason, error) = ending.into_parts();
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
    let message = Message {
        token_count,
        content: std::mem::take(&mut got.text),
        status,
        provider: answered
            .map(|c| c.target.provider.clone())
            .or(answer.provider.clone()),
        model: answered
            .map(|c| c.target.model.clone())
            .or(answer.model.clone()),
        tool_calls: std::mem::take(&mut got.tool_calls),
        usage,
        finish_reason,
        error,
        updated_at: now(),
        ..answer
    };
    (message, tokens)
}

/// Decides the calls of an answer that ended properly; the step limit or a call that waits for
/// the user sets its status. A cut or cancelled answer keeps its calls on record, undecided
/// (the history leaves them out: they have no results).
async fn decide_step(
    ports: &StepPorts<'_>,
    message: &mut Message,
    position: &LoopPosition,
    toolbox: Option<Toolbox>,
) -> Result<Option<DecidedCalls>, AppError> {
    if message.status != MessageStatus::Complete || message.tool_calls.is_empty() {
        return Ok(None);
    }
    let decided = decide_calls(ports, message, position, toolbox).await?;
    if position.number() >= ports.tools_config.loop_limits.max_steps {
        message.status = MessageStatus::Incomplete;
        message.error = Some(MessageError::of(ErrorCode::ToolStepLimit));
    } else if decided.waiting().next().is_some() {
        message.status = MessageStatus::AwaitingApproval;
    }
    Ok(Some(decided))
}

/// What is written with the answer: its calls' executions, results and audit entries. A step
/// whose loop goes on holds the conversation's turn open until its next step exists; should
/// the continuation be lost, the janitor makes it after this deadline.
fn step_records<'a>(
    ports: &StepPorts<'_>,
    message: &Message,
    decided: Option<&'a DecidedCalls>,
) -> StepRecords<'a> {
    let goes_on = matches!(
        message.status,
        MessageStatus::Complete | MessageStatus::AwaitingApproval
    );
    decided.map_or_else(StepRecords::default, |d| StepRecords {
        executions: &d.executions,
        results: &d.results,
        audit: &d.audit,
        continue_by: goes_on.then(|| after(now(), ports.turn_start_timeout)),
    })
}

/// Posts what was held back, serves resumes that arrived while the answer was being stored,
/// then closes the stream: the error, if any, and `message.completed`.
async fn announce(
    fanout: &mut Fanout<'_>,
    unsent: &mut Batch,
    message: Message,
    turn_usage: Option<Usage>,
    lease: &Lease,
) {
    stream::flush(fanout, unsent).await;
    fanout.refresh().await;
    if let Some(e) = &message.error {
        fanout
            .event(&ServerEvent::MessageError {
                conversation_id: Some(message.conversation_id),
                message_id: Some(message.id),
                code: e.code,
                message: e.message.clone(),
                request_id: Some(lease.id().to_string()),
                retry_after_ms: None,
            })
            .await;
    }
    fanout
        .event(&completed_event_with(message, turn_usage))
        .await;
}

/// The step's outcome: the calls run next only when the answer is complete and they were all
/// decided to run; otherwise the answer ended with its status.
fn next_outcome(message: &Message, decided: bool) -> StepOutcome {
    if !decided || message.status != MessageStatus::Complete {
        return StepOutcome::Ended(message.status);
    }
    StepOutcome::ToolCalls(TurnJob {
        user_id: message.user_id,
        conversation_id: message.conversation_id,
        message_id: message.id,
        continue_tools: true,
    })
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
    // A failed stream that got as far as text was billed for it too.
    let stopped = matches!(status, MessageStatus::Cancelled | MessageStatus::Incomplete)
        || (status == MessageStatus::Error && output_tokens > 0);
    (stopped && reached_provider).then(|| TokenUsage {
        input_tokens: planned_input.unwrap_or(0),
        output_tokens,
        cached_tokens: 0,
        reasoning_tokens: 0,
    })
}

/// Decides the answer's calls against the user's tools and rules.
async fn decide_calls(
    ports: &StepPorts<'_>,
    message: &Message,
    position: &LoopPosition,
    toolbox: Option<Toolbox>,
) -> Result<DecidedCalls, AppError> {
    let toolbox = match toolbox {
        Some(t) => t,
        None => round::toolbox(ports, message.user_id).await?,
    };
    let step = StepOf {
        user: message.user_id,
        conversation: message.conversation_id,
        message: message.id,
        number: position.number(),
        auto_so_far: round::auto_approved_before(ports, message.user_id, &position.earlier_steps)
            .await?,
        model: message.model.as_ref().map_or("", |m| m.as_str()).to_owned(),
        at: now(),
    };
    let tools = ports.tools_config;
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
    ports: &StepPorts<'_>,
    message: &Message,
    log: Option<&bestchat_domain::usage::UsageLog>,
    lease: &Lease,
    records: &StepRecords<'_>,
) -> Result<bool, AppError> {
    let mut delay = FINISH_RETRY_DELAY;
    for attempt in 1..=FINISH_ATTEMPTS {
        match ports
            .turns
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
fn record_metrics(ports: &StepPorts<'_>, log: &bestchat_domain::usage::UsageLog, frames: u64) {
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
    ports
        .metrics
        .emit(&[("Provider", log.provider.as_str())], &values);
}
