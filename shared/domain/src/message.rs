//! Messages of a conversation.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::file::Attachment;
use crate::ids::{ConversationId, MessageId, UserId};
use crate::model_ref::{ModelId, ProviderId};
use crate::time::Timestamp;

/// An enum stored and sent as one of a fixed set of strings.
#[macro_export]
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

string_enum!(Role {
    User => "user",
    Assistant => "assistant",
    Tool => "tool",
});

string_enum!(
    /// `streaming` while the provider answers; a message is never `complete` unless it is.
    /// `awaiting_approval`: the answer ended with tool calls of which some wait for the user.
    MessageStatus {
        Pending => "pending",
        Streaming => "streaming",
        Complete => "complete",
        Cancelled => "cancelled",
        Error => "error",
        Incomplete => "incomplete",
        AwaitingApproval => "awaiting_approval",
    }
);

impl MessageStatus {
    /// Its turn has not ended yet: the answer may still change.
    pub const fn is_unfinished(self) -> bool {
        matches!(self, Self::Pending | Self::Streaming)
    }
}

string_enum!(
    /// Why a provider stopped, normalized across providers.
    FinishReason {
        Stop => "stop",
        Length => "length",
        ToolCalls => "tool_calls",
        ContentFilter => "content_filter",
        Error => "error",
    }
);

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema,
)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cached_tokens: u32,
    /// `None` when the model's price is unknown: never a made-up zero.
    pub cost_micros: Option<i64>,
}

/// Why a message ended badly: a stable code and its public sentence; the detail is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
pub struct MessageError {
    pub code: ErrorCode,
    pub message: String,
}

impl MessageError {
    /// The code with its fixed public sentence.
    pub fn of(code: ErrorCode) -> Self {
        Self {
            code,
            message: code.sentence().to_owned(),
        }
    }
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ::schemars::JsonSchema)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
    /// Opaque state the provider attached to the call and wants back with it (Gemini's
    /// thought signature); meaningless to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ::schemars::JsonSchema)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    #[serde(skip)]
    pub user_id: UserId,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    /// For an assistant message, the user message it answers; for a later step of a tool loop,
    /// the assistant message whose tool calls it follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MessageId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    pub token_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<MessageError>,
    /// The files sent with a user message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Set only in a server event whose frame could not carry the whole message: its content
    /// and tool calls are left out; `GET /api/conversations/{id}/messages/{message_id}` has
    /// them.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub content_omitted: bool,
}

impl Message {
    /// A message with nothing yet but its place, role, status and time: every constructor starts
    /// here, so a new field is given its empty value once.
    pub fn new(
        user: UserId,
        conversation: ConversationId,
        role: Role,
        status: MessageStatus,
        at: Timestamp,
    ) -> Self {
        Self {
            id: MessageId::generate(),
            conversation_id: conversation,
            user_id: user,
            role,
            content: String::new(),
            status,
            client_message_id: None,
            reply_to: None,
            provider: None,
            model: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            token_count: 0,
            usage: None,
            finish_reason: None,
            error: None,
            attachments: Vec::new(),
            created_at: at,
            updated_at: at,
            content_omitted: false,
        }
    }

    /// What the user sent (complete as it arrives), under the client's idempotency key.
    pub fn from_user(
        user: UserId,
        conversation: ConversationId,
        content: String,
        client_message_id: String,
        token_count: u32,
        at: Timestamp,
    ) -> Self {
        Self {
            content,
            client_message_id: Some(client_message_id),
            token_count,
            ..Self::new(user, conversation, Role::User, MessageStatus::Complete, at)
        }
    }

    /// The answer to `question`, pending until its turn starts, by this provider and model.
    pub fn pending_answer(
        question: &Self,
        provider: ProviderId,
        model: ModelId,
        at: Timestamp,
    ) -> Self {
        Self {
            reply_to: Some(question.id),
            provider: Some(provider),
            model: Some(model),
            ..Self::new(
                question.user_id,
                question.conversation_id,
                Role::Assistant,
                MessageStatus::Pending,
                at,
            )
        }
    }

    /// The next answer of a tool loop: pending, after `step`, by the same provider and model.
    pub fn next_step(step: &Self, at: Timestamp) -> Self {
        Self {
            reply_to: Some(step.id),
            provider: step.provider.clone(),
            model: step.model.clone(),
            ..Self::new(
                step.user_id,
                step.conversation_id,
                Role::Assistant,
                MessageStatus::Pending,
                at,
            )
        }
    }

    /// The `tool` message that carries one call's result back to the model.
    pub fn tool_result(
        user: UserId,
        conversation: ConversationId,
        tool_call_id: String,
        content: String,
        token_count: u32,
        at: Timestamp,
    ) -> Self {
        Self {
            content,
            tool_call_id: Some(tool_call_id),
            token_count,
            ..Self::new(user, conversation, Role::Tool, MessageStatus::Complete, at)
        }
    }

    /// Where a list of these stands after this one (messages are listed oldest first, by `created_at`).
    pub fn cursor_key(&self) -> crate::page::CursorKey {
        crate::page::CursorKey {
            at: self.created_at,
            id: *self.id.as_uuid(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_messages_take_their_place_from_what_they_follow() {
        let (user, conversation, at) = (
            UserId::generate(),
            ConversationId::generate(),
            crate::time::now(),
        );
        let question = Message::from_user(user, conversation, "hi".into(), "c1".into(), 2, at);
        assert_eq!(
            (question.role, question.status),
            (Role::User, MessageStatus::Complete)
        );
        assert_eq!(question.client_message_id.as_deref(), Some("c1"));
        let provider = ProviderId::parse("openai").unwrap();
        let model = ModelId::parse("gpt-x").unwrap();
        let answer = Message::pending_answer(&question, provider.clone(), model.clone(), at);
        assert_eq!(
            (answer.role, answer.status),
            (Role::Assistant, MessageStatus::Pending)
        );
        assert_eq!(
            (answer.user_id, answer.conversation_id),
            (user, conversation)
        );
        assert_eq!(answer.reply_to, Some(question.id));
        assert_eq!(answer.client_message_id, None);
        let step = Message::next_step(&answer, at);
        assert_eq!(step.reply_to, Some(answer.id));
        assert_eq!((step.provider, step.model), (Some(provider), Some(model)));
        assert_ne!(step.id, answer.id);
        let result = Message::tool_result(user, conversation, "call-1".into(), "{}".into(), 1, at);
        assert_eq!(
            (result.role, result.tool_call_id.as_deref()),
            (Role::Tool, Some("call-1"))
        );
    }

    #[test]
    fn string_enums_round_trip() {
        for s in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(*r));
        }
        for f in FinishReason::ALL {
            assert_eq!(FinishReason::parse(f.as_str()), Some(*f));
        }
        assert_eq!(Role::parse("system"), None);
    }
}
