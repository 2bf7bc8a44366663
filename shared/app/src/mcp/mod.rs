//! Remote MCP servers as a tool source: registered by the user (`/api/mcp-servers`), their
//! headers sealed like provider keys, their tool list fetched when they are put and kept with
//! them, their tools offered beside the registry's as `<server>_<tool>`, and their calls made
//! from the turn through the private-address guard within the client's limits.
//!
//! A server's annotations (`readOnlyHint`, `destructiveHint`, …) are its claims: shown to the
//! user, and used to make a tool `read` only when the user marked the server trusted. The risk
//! of an MCP tool is `network` otherwise (`destructive` when the server says so: a claim that
//! makes a call more careful is taken either way).

pub mod servers;

use std::time::{Duration, Instant};

use bestchat_domain::ids::UserId;
use bestchat_domain::mcp::{McpServer, McpServerId};
use bestchat_domain::ports::keys::KeyVault;
use bestchat_domain::ports::store::McpServerStore;
use bestchat_domain::tool::{ExecutionError, ExecutionUsage, McpTarget};
use bestchat_mcp::{ListedTool, McpClient, McpError};
use bestchat_tools::Risk;
use serde_json::{Value, json};

use crate::error::AppError;

/// Most of a failed tool's text the model and the audit trail are given.
pub const MAX_ERROR_CHARS: usize = 2_000;

/// One tool of one of the user's servers, as a step may call it.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    /// The name the model sees: `<server>_<tool>`, fitted to a tool name.
    pub exposed: String,
    pub server: McpServerId,
    /// Where the server was when the call was decided: the call goes there or nowhere.
    pub origin: String,
    pub tool: String,
    pub description: String,
    pub parameters: Value,
    pub risk: Risk,
    pub annotations: Option<Value>,
}

/// What a stored call of an MCP tool asks.
pub fn request(tool: &McpTool, arguments: &Value) -> Value {
    McpTarget {
        server: tool.server.to_string(),
        tool: tool.tool.clone(),
        origin: tool.origin.clone(),
    }
    .request(arguments)
}

/// The tools of the user's enabled servers, as last listed, except those whose name is
/// `taken` (the registry's tools come first) or another server's tool already has: a model is
/// never offered two tools of one name.
pub async fn tools_of(
    servers: &dyn McpServerStore,
    user: UserId,
    taken: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<McpTool>, AppError> {
    let servers = servers.list_mcp_servers(user).await?;
    let mut out: Vec<McpTool> = Vec::new();
    for tool in servers.iter().filter(|s| s.enabled).flat_map(offered) {
        if taken(&tool.exposed) || out.iter().any(|t| t.exposed == tool.exposed) {
            tracing::warn!(tool = tool.exposed, server = %tool.server, "an MCP tool's name is taken; it is left out");
            continue;
        }
        out.push(tool);
    }
    Ok(out)
}

/// The tools a server listed, named for the model; tools whose names collide are left out.
pub fn offered(server: &McpServer) -> Vec<McpTool> {
    let listed: Vec<ListedTool> = serde_json::from_value(server.tools.clone()).unwrap_or_default();
    let mut out: Vec<McpTool> = Vec::new();
    for tool in listed {
        let exposed = exposed_name(&server.id, &tool.name);
        if out.iter().any(|t| t.exposed == exposed) {
            tracing::warn!(server = %server.id, tool = tool.name, "two tools of one MCP server share a name once fitted; the second is left out");
            continue;
        }
        out.push(McpTool {
            risk: risk_of(tool.annotations.as_ref(), server.trusted),
            exposed,
            server: server.id.clone(),
            origin: crate::secrets::origin_of(&server.url).unwrap_or_default(),
            description: tool
                .description
                .chars()
                .take(bestchat_tools::manifest::MAX_DESCRIPTION_CHARS)
                .collect(),
            parameters: if tool.input_schema.is_object() {
                tool.input_schema
            } else {
                json!({"type": "object"})
            },
            annotations: tool.annotations,
            tool: tool.name,
        });
    }
    out
}

/// `<server>_<tool>`, with what a tool name cannot hold made `_`, at most 64 characters.
pub fn exposed_name(server: &McpServerId, tool: &str) -> String {
    let fitted: String = tool
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{server}_{fitted}")
        .chars()
        .take(bestchat_tools::ToolName::MAX_CHARS)
        .collect()
}

/// The risk the policy decides by: the server's hints count only when the user trusts it,
/// except the one that asks for more care.
pub fn risk_of(annotations: Option<&Value>, trusted: bool) -> Risk {
    let hint = |name: &str| {
        annotations
            .and_then(|a| a.get(name))
            .and_then(Value::as_bool)
    };
    // Of contradicting claims, the careful one counts.
    if hint("destructiveHint") == Some(true) {
        return Risk::Destructive;
    }
    if trusted && hint("readOnlyHint") == Some(true) {
        return Risk::Read;
    }
    Risk::Network
}

/// Where the MCP client comes from: it is built on first use, since most steps never call a
/// server.
pub trait McpClientSource: Send + Sync {
    fn mcp_client(&self) -> Result<&McpClient, AppError>;
}

/// What running a call on a user's server reads: their servers, the vault that opens the
/// server's headers, the client (`None` when it could not be built), and the call's deadline.
pub struct CallPorts<'a> {
    pub servers: &'a dyn McpServerStore,
    pub vault: &'a dyn KeyVault,
    pub client: Option<&'a McpClient>,
    /// `BESTCHAT_MCP_TIMEOUT_MS`.
    pub timeout: Duration,
}

/// Runs a stored call against its server: the tool's result, or why there is none.
pub async fn call(
    ports: &CallPorts<'_>,
    user: UserId,
    target: Option<McpTarget>,
    arguments: &Value,
) -> (
    Option<Value>,
    Option<ExecutionError>,
    Option<ExecutionUsage>,
) {
    let started = Instant::now();
    let failed = |code: &str, message: String| {
        (
            None,
            Some(ExecutionError {
                code: code.to_owned(),
                message,
            }),
            None,
        )
    };
    let Some((server, McpTarget { tool, origin, .. })) =
        target.and_then(|t| McpServerId::parse(&t.server).ok().map(|server| (server, t)))
    else {
        return failed(
            "invalid_request",
            "the stored call names no MCP tool".into(),
        );
    };
    let server = match ports.servers.get_mcp_server(user, &server).await {
        Ok(Some(s)) if s.enabled => s,
        Ok(_) => {
            return failed(
                "tool_not_found",
                "the MCP server is gone or disabled".into(),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the MCP server");
            return failed(
                "executor_unavailable",
                "the tool could not be run just now".into(),
            );
        }
    };
    // Approved for one server, the call never goes to wherever the server was moved since.
    if crate::secrets::origin_of(&server.url).as_deref() != Some(origin.as_str()) {
        return failed(
            "server_moved",
            "the MCP server's address changed after this call was decided; it was not sent".into(),
        );
    }
    // One deadline for the whole call, however many exchanges it takes.
    let outcome = tokio::time::timeout(ports.timeout, async {
        let headers = servers::open_headers(ports.vault, &server).await?;
        let client = ports.client.ok_or(CallError::NoClient)?;
        let connection = client
            .reconnect(&server.url, &headers, server.protocol.as_deref())
            .await?;
        let result = client
            .call_tool(&server.url, &headers, &connection, &tool, arguments)
            .await
            .map_err(CallError::from);
        client.close(&server.url, &headers, &connection).await;
        result
    })
    .await
    .unwrap_or(Err(CallError::Exchange(McpError::Timeout)));
    let usage = Some(ExecutionUsage {
        wall_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        fuel: 0,
        memory_bytes: 0,
    });
    match outcome {
        Ok(result) if result.get("isError").and_then(Value::as_bool) == Some(true) => (
            None,
            Some(ExecutionError {
                code: "tool_error".into(),
                message: text_of(&result).chars().take(MAX_ERROR_CHARS).collect(),
            }),
            usage,
        ),
        Ok(result) => {
            let output = result.get("structuredContent").cloned().unwrap_or_else(
                || json!({ "content": result.get("content").cloned().unwrap_or_default() }),
            );
            (Some(output), None, usage)
        }
        Err(error) => (
            None,
            Some(ExecutionError {
                code: "mcp_unavailable".into(),
                message: error.to_string(),
            }),
            usage,
        ),
    }
}

/// Why a call to an MCP server ended without its result; the sentence is for the model and the
/// audit trail, never the server's internals.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error(transparent)]
    Headers(#[from] servers::HeadersError),
    #[error("the MCP client could not start")]
    NoClient,
    #[error("{}", servers::public(.0))]
    Exchange(#[from] McpError),
}

/// The text parts of a tool result.
fn text_of(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_count_only_from_trusted_servers_except_the_careful_one() {
        let read_only = json!({"readOnlyHint": true});
        let destructive = json!({"destructiveHint": true});
        assert_eq!(risk_of(Some(&read_only), false), Risk::Network);
        assert_eq!(risk_of(Some(&read_only), true), Risk::Read);
        assert_eq!(risk_of(Some(&destructive), false), Risk::Destructive);
        assert_eq!(risk_of(Some(&destructive), true), Risk::Destructive);
        let both = json!({"readOnlyHint": true, "destructiveHint": true});
        assert_eq!(risk_of(Some(&both), true), Risk::Destructive);
        assert_eq!(risk_of(None, true), Risk::Network);
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_model_is_never_offered_two_tools_of_one_name() {
        use bestchat_domain::ports::store::AuditEntry;
        use bestchat_domain::time::now;
        let embedded = crate::testing::state(&[]).await;
        let state = &embedded.state;
        let (user, _) = crate::testing::conversation(state, "namer").await;
        for (id, tools) in [
            ("http", json!([{"name": "fetch"}, {"name": "other"}])),
            ("a", json!([{"name": "b_c"}])),
            ("a_b", json!([{"name": "c"}, {"name": "d"}])),
        ] {
            let at = now();
            let server = McpServer {
                user_id: user,
                id: McpServerId::parse(id).unwrap(),
                url: "https://mcp.example.com/".into(),
                header_names: Vec::new(),
                headers: None,
                trusted: false,
                enabled: true,
                protocol: None,
                tools,
                tools_fetched_at: Some(at),
                created_at: at,
                updated_at: at,
            };
            let entry = AuditEntry {
                id: uuid::Uuid::now_v7(),
                user_id: user,
                action: "mcp_server.put".into(),
                target_type: None,
                target_id: None,
                details: json!({}),
                created_at: at,
            };
            state
                .store()
                .put_mcp_server(&server, 20, &entry)
                .await
                .unwrap();
        }
        let builtins = bestchat_tools::registry::Registry::with_user_tools(Vec::new());
        let tools = tools_of(state.store(), user, &|name| builtins.find(name).is_some())
            .await
            .unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.exposed.as_str()).collect();
        // `http_fetch` is the built-in's; `a_b_c` is the first server's (by id).
        assert_eq!(names, ["a_b_c", "a_b_d", "http_other"]);
        assert_eq!(tools[0].server.as_str(), "a");
    }

    #[test]
    fn exposed_names_fit_a_tool_name() {
        let server = McpServerId::parse("gh").unwrap();
        assert_eq!(exposed_name(&server, "Get-Issue.v2"), "gh_get_issue_v2");
        assert_eq!(exposed_name(&server, &"x".repeat(100)).len(), 64);
        assert!(bestchat_tools::ToolName::parse(&exposed_name(&server, "Ünï code")).is_ok());
    }
}
