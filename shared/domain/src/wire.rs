//! The WebSocket protocol of API.md: what clients send (`action`) and what the server sends
//! (`type`). Server events are also what `POST …/messages` streams as SSE.

use serde::{Deserialize, Serialize};

use crate::conversation::Conversation;
use crate::error::ErrorCode;
use crate::file::FileRecord;
use crate::ids::{ConversationId, FileId, MessageId, ToolExecutionId};
use crate::message::{FinishReason, Message, Usage};
use crate::model_ref::{ModelId, ProviderId};
use crate::tool::{ExecutionDecision, ExecutionError, ExecutionStatus, ToolExecution, Verdict};

/// A client's message on the WebSocket, selected by its `action`.
#[derive(Debug, Clone, PartialEq, Deserialize, ::schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientAction {
    SendMessage {
        conversation_id: ConversationId,
        client_message_id: String,
        content: String,
        provider: Option<ProviderId>,
        model: Option<ModelId>,
        /// Files to send with the message.
        #[serde(default)]
        attachments: Vec<FileId>,
    },
    Subscribe {
        conversation_id: ConversationId,
    },
    Resume {
        message_id: MessageId,
        after_seq: u64,
    },
    Cancel {
        message_id: MessageId,
    },
    ApproveTool {
        tool_execution_id: ToolExecutionId,
        decision: Verdict,
    },
    /// A struct variant, so that unknown fields are refused here as on every other action.
    Ping {},
}

/// Which part of an answer a delta belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeltaChannel {
    Text,
    /// The model's visible reasoning, for models that stream it.
    Reasoning,
}

impl DeltaChannel {
    fn is_text(&self) -> bool {
        *self == Self::Text
    }
}

/// A server event, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, ::schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum ServerEvent {
    #[serde(rename = "message.created")]
    MessageCreated { message: Message },
    /// A stored message changed outside its own stream: a tool step whose calls were decided
    /// and ended goes from `awaiting_approval` to `complete` as the loop goes on.
    #[serde(rename = "message.updated")]
    MessageUpdated { message: Message },
    #[serde(rename = "message.delta")]
    MessageDelta {
        conversation_id: ConversationId,
        message_id: MessageId,
        /// 1, 2, 3, … per message, with no gaps.
        seq: u64,
        text: String,
        #[serde(skip_serializing_if = "DeltaChannel::is_text")]
        channel: DeltaChannel,
    },
    #[serde(rename = "message.completed")]
    MessageCompleted {
        conversation_id: ConversationId,
        message_id: MessageId,
        message: Message,
        usage: Option<Usage>,
        /// For the last step of a tool loop: the usage of all its steps, summed.
        #[serde(skip_serializing_if = "Option::is_none")]
        turn_usage: Option<Usage>,
        finish_reason: Option<FinishReason>,
    },
    #[serde(rename = "message.error")]
    MessageError {
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<ConversationId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<MessageId>,
        code: ErrorCode,
        message: String,
        /// Names the failure in the server's log.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        /// With `rate_limited`: how long to wait before the action can pass.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    #[serde(rename = "context.optimized")]
    ContextOptimized {
        conversation_id: ConversationId,
        /// The answer whose request was optimized; absent for a summary written between turns.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<MessageId>,
        strategy: String,
        tokens_before: u32,
        tokens_after: u32,
    },
    /// A call waits for the user's decision; sent to every device of the user.
    #[serde(rename = "tool.pending")]
    ToolPending {
        conversation_id: ConversationId,
        message_id: MessageId,
        tool_execution_id: ToolExecutionId,
        tool_execution: ToolExecution,
    },
    /// A decision was made (on any device, by the policy, or by the timeout).
    #[serde(rename = "tool.decided")]
    ToolDecided {
        conversation_id: ConversationId,
        message_id: MessageId,
        tool_execution_id: ToolExecutionId,
        status: ExecutionStatus,
        decision: Option<ExecutionDecision>,
    },
    /// A call ended: its output, or why it has none.
    #[serde(rename = "tool.result")]
    ToolResult {
        conversation_id: ConversationId,
        message_id: MessageId,
        tool_execution_id: ToolExecutionId,
        status: ExecutionStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<serde_json::Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ExecutionError>,
    },
    /// To every device of the user: a conversation was created on one of them.
    #[serde(rename = "conversation.created")]
    ConversationCreated {
        conversation: Conversation,
        /// The system prompt was left out to fit the frame: fetch the conversation.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        omitted: bool,
    },
    /// To every device of the user: a conversation's title, model or settings changed.
    #[serde(rename = "conversation.updated")]
    ConversationUpdated {
        conversation: Conversation,
        /// The system prompt was left out to fit the frame: fetch the conversation.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        omitted: bool,
    },
    /// To every device of the user: a conversation and everything in it was deleted.
    #[serde(rename = "conversation.deleted")]
    ConversationDeleted { conversation_id: ConversationId },
    /// To every device of the user: an upload's status changed (processing, ready, failed).
    #[serde(rename = "file.updated")]
    FileUpdated { file: FileRecord },
    #[serde(rename = "pong")]
    Pong,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_actions_parse_by_name() {
        let id = ConversationId::generate();
        let send: ClientAction = serde_json::from_str(&format!(
            r#"{{"action":"sendMessage","conversation_id":"{id}","client_message_id":"c1","content":"hi"}}"#
        ))
        .unwrap();
        assert!(matches!(send, ClientAction::SendMessage { .. }));
        let ping: ClientAction = serde_json::from_str(r#"{"action":"ping"}"#).unwrap();
        assert_eq!(ping, ClientAction::Ping {});
        assert!(serde_json::from_str::<ClientAction>(r#"{"action":"ping","x":1}"#).is_err());
        assert!(serde_json::from_str::<ClientAction>(r#"{"action":"dance"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientAction>(r#"{"action":"resume","message_id":"x"}"#)
                .is_err()
        );
    }

    #[test]
    fn deltas_omit_the_default_channel() {
        let delta = ServerEvent::MessageDelta {
            conversation_id: ConversationId::generate(),
            message_id: MessageId::generate(),
            seq: 1,
            text: "Hi".into(),
            channel: DeltaChannel::Text,
        };
        let json = serde_json::to_value(&delta).unwrap();
        assert_eq!(json["type"], "message.delta");
        assert_eq!(json["seq"], 1);
        assert!(json.get("channel").is_none());
        assert_eq!(
            serde_json::to_value(ServerEvent::Pong).unwrap(),
            serde_json::json!({"type": "pong"})
        );
    }
}
