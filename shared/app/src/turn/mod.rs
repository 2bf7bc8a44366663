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
mod finish;
mod frames;
pub(crate) mod history;
mod lease;
pub(crate) mod round;
mod step;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::message::{Message, MessageStatus, Usage};
use bestchat_domain::wire::ServerEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use fanout::{announce_end, broadcast, send_to, to_every_device};
pub use frames::encode_event;
pub use step::run;

use crate::error::AppError;
use crate::state::AppState;

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
