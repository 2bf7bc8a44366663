//! What context management did to a conversation: the context_optimizations rows.

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, MessageId, UserId};
use crate::time::Timestamp;

/// The strategies, in the order the planner applies them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ::schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Compression,
    Summarization,
    Truncation,
}

impl Strategy {
    pub const ALL: &'static [Self] = &[Self::Compression, Self::Summarization, Self::Truncation];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Compression => "compression",
            Self::Summarization => "summarization",
            Self::Truncation => "truncation",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == raw)
    }
}

/// One optimization: what was done, to which messages, and the prompt's size before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
pub struct ContextOptimization {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    /// The answer whose request was optimized; `None` for a summary written on its own.
    pub message_id: Option<MessageId>,
    pub strategy: Strategy,
    pub tokens_before: u32,
    pub tokens_after: u32,
    /// The first and last message affected, oldest first.
    pub range_start: Option<MessageId>,
    pub range_end: Option<MessageId>,
    pub messages_affected: u32,
    /// The summary text (summarization only).
    pub summary: Option<String>,
    /// `provider/model` that wrote the summary.
    pub summary_model: Option<String>,
    pub created_at: Timestamp,
}
