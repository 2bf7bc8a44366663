//! A tool a user registered: its manifest (checked by `bestchat-tools` before it is stored) and
//! where its module is kept.

use serde::Serialize;

use crate::ids::{ConversationId, MessageId, ToolExecutionId, ToolId, UserId};
use crate::string_enum;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, ::schemars::JsonSchema)]
pub struct UserTool {
    pub id: ToolId,
    #[serde(skip)]
    pub user_id: UserId,
    pub name: String,
    pub description: String,
    /// The whole manifest as registered (name, description, parameters, risk, grants).
    pub manifest: serde_json::Value,
    pub risk: String,
    /// The blob store key of the module.
    #[serde(skip)]
    pub module_key: String,
    pub module_sha256: String,
    pub created_at: Timestamp,
}

/// Where a module with this sha256 lives in the blob store: by content, so the same module
/// registered twice is stored once.
pub fn module_key(sha256: &str) -> String {
    format!("tools/{sha256}.wasm")
}

string_enum!(
    /// Where a call is in its life: decided (`pending` → `approved` | `denied` | `expired`), then
    /// run (`approved` → `running` → `succeeded` | `failed`). A call refused before any decision
    /// (arguments that do not fit the schema, an unknown tool) is `failed` at once.
    ExecutionStatus {
        Pending => "pending",
        Approved => "approved",
        Denied => "denied",
        Expired => "expired",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

impl ExecutionStatus {
    /// Nothing more happens to it.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            Self::Denied | Self::Expired | Self::Succeeded | Self::Failed
        )
    }
}

string_enum!(
    /// Who decided a call.
    DecidedBy {
        Policy => "policy",
        User => "user",
    }
);

string_enum!(
    Verdict {
        Approve => "approve",
        Deny => "deny",
    }
);

/// How a call was decided, for the audit trail: by whom, by which rule (`risk:read`,
/// `tool:http_fetch`, `destructive:always_ask`, `user`, `timeout`, …), when and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ::schemars::JsonSchema)]
pub struct ExecutionDecision {
    pub by: DecidedBy,
    pub verdict: Verdict,
    pub rule: String,
    pub at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
}

/// Why a call produced no output: a stable code (the executor's failure kinds, and
/// `invalid_arguments`, `tool_not_found`, `denied`, `expired`, `interrupted`) and its sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ::schemars::JsonSchema)]
pub struct ExecutionError {
    pub code: String,
    pub message: String,
}

/// What the executor reports a call used.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    ::schemars::JsonSchema,
)]
pub struct ExecutionUsage {
    pub wall_ms: u64,
    pub fuel: u64,
    pub memory_bytes: u64,
}

/// One tool call of one assistant message, from the model's request to its result.
#[derive(Debug, Clone, PartialEq, Serialize, ::schemars::JsonSchema)]
pub struct ToolExecution {
    pub id: ToolExecutionId,
    #[serde(skip)]
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub tool_call_id: String,
    pub tool: String,
    pub risk: String,
    pub arguments: serde_json::Value,
    pub status: ExecutionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<ExecutionDecision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ExecutionError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<ExecutionUsage>,
    /// What the executor was (or will be) asked: the tool's source, module and limits.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub request: serde_json::Value,
    /// A `pending` call expires then; a `running` one is presumed lost after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ToolExecution {
    /// Where a list of these stands after this one (executions are listed newest first, by `created_at`).
    pub fn cursor_key(&self) -> crate::page::CursorKey {
        crate::page::CursorKey {
            at: self.created_at,
            id: *self.id.as_uuid(),
        }
    }
}
