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

/// Where a call runs, as its stored request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// The tool executor's sandbox: the request is an executor request.
    Sandbox,
    /// A remote MCP server's tool; `None` when the stored request does not name one whole (the
    /// call then fails, never runs elsewhere).
    Mcp(Option<McpTarget>),
}

/// An MCP server's tool, at the origin the call was decided for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpTarget {
    pub server: String,
    pub tool: String,
    pub origin: String,
}

/// The key a stored request names its MCP target under; written and read only here.
const MCP_KEY: &str = "mcp";

impl McpTarget {
    /// The stored request of a call of this tool with `arguments`.
    pub fn request(&self, arguments: &serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            MCP_KEY: { "server": self.server, "tool": self.tool, "origin": self.origin },
            "arguments": arguments,
        })
    }
}

impl ToolExecution {
    /// Where this call runs.
    pub fn runner(&self) -> Runner {
        let Some(mcp) = self.request.get(MCP_KEY) else {
            return Runner::Sandbox;
        };
        let field = |key: &str| {
            mcp.get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Runner::Mcp(match (field("server"), field("tool"), field("origin")) {
            (Some(server), Some(tool), Some(origin)) => Some(McpTarget {
                server,
                tool,
                origin,
            }),
            _ => None,
        })
    }

    /// What the audit trail records of where the call runs: the MCP target as stored, or the
    /// module.
    pub fn runs_on(&self) -> serde_json::Value {
        match (self.request.get(MCP_KEY), self.request.get("module")) {
            (Some(mcp), _) => serde_json::json!({ MCP_KEY: mcp }),
            (None, Some(module)) => serde_json::json!({ "module": module }),
            (None, None) => serde_json::Value::Null,
        }
    }

    /// Where a list of these stands after this one (executions are listed newest first, by `created_at`).
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

    fn with_request(request: serde_json::Value) -> ToolExecution {
        let at = crate::time::now();
        ToolExecution {
            id: ToolExecutionId::generate(),
            user_id: UserId::generate(),
            conversation_id: ConversationId::generate(),
            message_id: MessageId::generate(),
            tool_call_id: "c1".into(),
            tool: "t".into(),
            risk: "read".into(),
            arguments: serde_json::json!({}),
            status: ExecutionStatus::Pending,
            decision: None,
            output: None,
            error: None,
            usage: None,
            request,
            expires_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn where_a_call_runs_is_read_from_what_was_stored() {
        let target = McpTarget {
            server: "gh".into(),
            tool: "search".into(),
            origin: "https://mcp.example.com".into(),
        };
        let stored = with_request(target.request(&serde_json::json!({"q": 1})));
        assert_eq!(stored.runner(), Runner::Mcp(Some(target)));
        assert_eq!(stored.request["arguments"]["q"], 1);
        assert_eq!(stored.runs_on()["mcp"]["origin"], "https://mcp.example.com");
        // Half a target never runs anywhere else.
        let partial = with_request(serde_json::json!({"mcp": {"server": "gh"}}));
        assert_eq!(partial.runner(), Runner::Mcp(None));
        let sandboxed = with_request(serde_json::json!({"module": {"builtin": "calculator"}}));
        assert_eq!(sandboxed.runner(), Runner::Sandbox);
        assert_eq!(
            sandboxed.runs_on(),
            serde_json::json!({"module": {"builtin": "calculator"}})
        );
    }
}
