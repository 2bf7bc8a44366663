//! The turn's shared vocabulary: the job `chat-turn` is invoked with, what a step did, how a
//! cancellation is asked for, and the `message.completed` event. Every step module reads these;
//! none of them reads the turn's entry.

use std::time::Duration;

use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::message::{Message, MessageStatus, Usage};
use bestchat_domain::wire::ServerEvent;
use serde::{Deserialize, Serialize};

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

pub(crate) fn completed_event_with(message: Message, turn_usage: Option<Usage>) -> ServerEvent {
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
