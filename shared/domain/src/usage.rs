//! What one provider call cost: the usage_logs row written when a turn ends.

use serde::Serialize;

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
