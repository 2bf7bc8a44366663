//! What one provider call cost: the usage_logs row written when a turn ends.

use serde::Serialize;

use crate::error::DomainError;

use crate::ids::{ConversationId, MessageId, UserId};
use crate::message::MessageStatus;
use crate::model_ref::{ModelId, ProviderId};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageLog {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    /// The provider and model that answered (or last failed).
    pub provider: ProviderId,
    pub model: ModelId,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cached_tokens: u32,
    /// `None` when a price is unknown.
    pub cost_micros: Option<i64>,
    pub latency_ms: u32,
    /// Time to first token; `None` when none came.
    pub ttft_ms: Option<u32>,
    /// `complete`, `cancelled`, `error` or `incomplete`.
    pub status: MessageStatus,
    /// Every attempt of the failover chain, as JSON.
    pub attempts: serde_json::Value,
    pub created_at: Timestamp,
}

/// Most groups one usage answer lists (a day a year is 366; the rest are ordered by cost).
pub const USAGE_GROUPS_MAX: u32 = 1_000;

/// What `GET /api/usage` groups the usage rows by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// The UTC day, `YYYY-MM-DD`.
    Day,
    /// `provider/model`.
    Model,
    Provider,
    /// The conversation's id (`deleted` for the rows of conversations deleted since).
    Conversation,
    /// The user's id: only in an admin's report of every user.
    User,
}

impl UsageGroup {
    /// What a user may group their own usage by (an admin may also group by user).
    pub const ALL: [Self; 4] = [Self::Day, Self::Model, Self::Provider, Self::Conversation];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Model => "model",
            Self::Provider => "provider",
            Self::Conversation => "conversation",
            Self::User => "user",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == raw)
            .ok_or_else(|| {
                DomainError::validation(
                    "group_by must be one of day, model, provider, conversation",
                )
            })
    }

    /// As [`UsageGroup::parse`], and `user` too (an admin's report of every user).
    pub fn parse_for_admin(raw: &str) -> Result<Self, DomainError> {
        if raw == Self::User.as_str() {
            return Ok(Self::User);
        }
        Self::parse(raw).map_err(|_| {
            DomainError::validation(
                "group_by must be one of day, model, provider, conversation, user",
            )
        })
    }
}

/// Which usage rows a report covers: `[from, to)`, either end open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageQuery {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub group_by: UsageGroup,
}

/// One group's (or all groups') calls, tokens and money.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UsageSums {
    /// Model calls (a tool loop's every step is one).
    pub turns: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    /// Micro-dollars; calls whose price is unknown count 0.
    pub cost_micros: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UsageItem {
    pub key: String,
    #[serde(flatten)]
    pub sums: UsageSums,
}

/// `GET /api/usage`: the groups, costliest first (by day: oldest first), and the total of every
/// row in the range (not only the groups listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UsageReport {
    pub items: Vec<UsageItem>,
    pub total: UsageSums,
}
