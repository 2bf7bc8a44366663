//! The audit trail of tool calls: an entry when a call is decided (by the user's rules, the
//! user, or the clock) and one when it ends, each written in the transaction that moves the
//! call. An entry identifies the call without holding its data: the tool and what runs it (the
//! module, or the MCP server's origin), the argument's hash, who decided by which rule, and the
//! outcome. The trail outlives the conversation (its rows reference only the user) and the
//! databases refuse to change or delete it while the user exists.

use bestchat_domain::ports::store::AuditEntry;
use bestchat_domain::time::Timestamp;
use bestchat_domain::tool::ToolExecution;
use bestchat_tools::sandbox::sha256_hex;
use serde_json::json;

/// `tool_execution.<what>` for `execution` as it stands after the move.
pub fn execution(execution: &ToolExecution, what: &str, at: Timestamp) -> AuditEntry {
    let decision = execution.decision.as_ref();
    let runs = execution.runs_on();
    AuditEntry::of(
        execution.user_id,
        &format!("tool_execution.{what}"),
        ("tool_execution", &execution.id.to_string()),
        json!({
            "tool": execution.tool,
            "risk": execution.risk,
            "status": execution.status,
            "conversation_id": execution.conversation_id,
            "message_id": execution.message_id,
            "tool_call_id": execution.tool_call_id,
            "arguments_sha256": sha256_hex(execution.arguments.to_string().as_bytes()),
            "runs": runs,
            "decided_by": decision.map(|d| d.by),
            "verdict": decision.map(|d| d.verdict),
            "rule": decision.map(|d| d.rule.clone()),
            "connection_id": decision.and_then(|d| d.connection_id.clone()),
            "error_code": execution.error.as_ref().map(|e| e.code.clone()),
            "usage": execution.usage,
        }),
        at,
    )
}

#[cfg(test)]
mod tests {
    use bestchat_domain::ids::{ConversationId, MessageId, ToolExecutionId, UserId};
    use bestchat_domain::time::now;
    use bestchat_domain::tool::{DecidedBy, ExecutionDecision, ExecutionStatus, Verdict};

    use super::*;

    #[test]
    fn an_entry_names_the_call_and_its_server_but_holds_no_arguments() {
        let at = now();
        let call = ToolExecution {
            id: ToolExecutionId::generate(),
            user_id: UserId::generate(),
            conversation_id: ConversationId::generate(),
            message_id: MessageId::generate(),
            tool_call_id: "c1".into(),
            tool: "gh_search".into(),
            risk: "network".into(),
            arguments: json!({"q": "a secret query"}),
            status: ExecutionStatus::Approved,
            decision: Some(ExecutionDecision {
                by: DecidedBy::Policy,
                verdict: Verdict::Approve,
                rule: "tool:gh_search".into(),
                at,
                connection_id: None,
            }),
            output: None,
            error: None,
            usage: None,
            request: json!({
                "mcp": {"server": "gh", "tool": "search", "origin": "https://mcp.example.com"},
                "arguments": {"q": "a secret query"},
            }),
            expires_at: None,
            created_at: at,
            updated_at: at,
        };
        let entry = execution(&call, "requested", at);
        assert_eq!(entry.action, "tool_execution.requested");
        assert_eq!(entry.target_id, Some(call.id.to_string()));
        let d = &entry.details;
        assert_eq!(d["runs"]["mcp"]["origin"], "https://mcp.example.com");
        assert_eq!(d["decided_by"], "policy");
        assert_eq!(d["rule"], "tool:gh_search");
        assert_eq!(
            d["arguments_sha256"],
            sha256_hex(br#"{"q":"a secret query"}"#)
        );
        assert!(
            !d.to_string().contains("secret query"),
            "the arguments stay out"
        );
    }
}
