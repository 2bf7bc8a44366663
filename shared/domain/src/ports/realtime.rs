//! Ports of the real-time path: the registry of live WebSocket connections, pushing to one
//! connection, invoking another function, and the per-message buffer that makes `resume` exact.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{ConversationId, MessageId, UserId};
use crate::limits::CONNECTION_ID_MAX_CHARS;
use crate::ports::cache::CacheError;
use crate::time::Timestamp;

/// API Gateway's id of a WebSocket connection (`L0SM9cOFvHcCIhw=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty()
            || raw.len() > CONNECTION_ID_MAX_CHARS
            || !raw.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(DomainError::validation("not a connection id"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: ConnectionId,
    pub user_id: UserId,
    pub connected_at: Timestamp,
    /// Conversations whose events this connection receives.
    pub subscriptions: BTreeSet<ConversationId>,
    /// Messages this connection has asked to resume and nobody has served yet.
    pub pending_resumes: BTreeSet<MessageId>,
}

#[derive(Debug, thiserror::Error)]
#[error("connection registry unavailable: {0}")]
pub struct RegistryError(pub String);

/// Live WebSocket connections (DynamoDB in production, in-process on a laptop).
#[async_trait]
pub trait Connections: Send + Sync {
    /// Records a new connection; it expires by itself after `ttl` if `$disconnect` never comes.
    async fn register(
        &self,
        id: &ConnectionId,
        user: UserId,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(), RegistryError>;

    async fn remove(&self, id: &ConnectionId) -> Result<(), RegistryError>;

    /// Adds a conversation to the connection's subscriptions; `false` when the connection is
    /// not registered to this user.
    async fn subscribe(
        &self,
        id: &ConnectionId,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<bool, RegistryError>;

    /// Every live connection of the user.
    async fn of_user(&self, user: UserId) -> Result<Vec<ConnectionRecord>, RegistryError>;

    /// Asks whoever streams `message` to send this connection what came after `after_seq`.
    async fn request_resume(
        &self,
        id: &ConnectionId,
        message: MessageId,
        after_seq: u64,
    ) -> Result<(), RegistryError>;

    /// Takes a pending resume request, atomically: exactly one caller gets it.
    async fn claim_resume(
        &self,
        id: &ConnectionId,
        message: MessageId,
    ) -> Result<Option<u64>, RegistryError>;
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The connection no longer exists (API Gateway's `GoneException`, HTTP 410).
    #[error("the connection is gone")]
    Gone,
    #[error("cannot post to the connection: {0}")]
    Failed(String),
}

/// Pushes one frame to one connection.
#[async_trait]
pub trait Publisher: Send + Sync {
    async fn post(&self, id: &ConnectionId, frame: &[u8]) -> Result<(), PublishError>;
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("cannot invoke {function}: {reason}")]
    Failed { function: String, reason: String },
    /// The function ran and reported an error.
    #[error("{function} failed: {payload}")]
    FunctionError { function: String, payload: String },
}

/// Runs another function: asynchronously (fire and forget), or waiting for its answer.
#[async_trait]
pub trait Invoker: Send + Sync {
    async fn invoke_async(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<(), InvokeError>;

    async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, InvokeError>;
}

/// The frames of each streaming message, by `seq`, kept for a while so a client that lost its
/// connection can `resume` (Redis Streams in production, in-process on a laptop).
#[async_trait]
pub trait StreamBuffer: Send + Sync {
    async fn append(&self, message: MessageId, seq: u64, frame: &str) -> Result<(), CacheError>;

    /// Frames after `after_seq`, in order.
    async fn read_after(
        &self,
        message: MessageId,
        after_seq: u64,
    ) -> Result<Vec<(u64, String)>, CacheError>;

    /// Forgets the message's frames (an answer run again numbers its frames from 1).
    async fn clear(&self, message: MessageId) -> Result<(), CacheError>;
}
