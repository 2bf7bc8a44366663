//! A Streamable HTTP client of remote MCP servers, speaking both revisions a server may: the
//! stateless 2026-07-28 one (no handshake; every request carries its protocol version and client
//! capabilities in `_meta`, mirrored in the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`
//! headers), and 2025-06-18 (`initialize`, then `Mcp-Session-Id` on every request). Every
//! connection goes through the core's private-address guard; every answer is read within a size
//! and a time limit; an answer may be one JSON object or a request-scoped SSE stream.

use std::time::Duration;

use bestchat_egress::Guard;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

/// The stateless revision, tried first.
pub const MODERN: &str = "2026-07-28";
/// The session revision, for servers that do not speak the stateless one.
pub const LEGACY: &str = "2025-06-18";

const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// Most of a server's error message kept (it reaches the user).
const MAX_RPC_MESSAGE_CHARS: usize = 500;
/// Pages of `tools/list` read at most.
const MAX_LIST_PAGES: usize = 20;

/// The limits of every exchange with a server (named settings, see `McpConfig`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub max_response_bytes: usize,
    pub max_tools: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The guard refused the address, or the URL is not one we may call.
    #[error("the server's address is not allowed: {0}")]
    Refused(String),
    #[error("the server could not be reached: {0}")]
    Unreachable(String),
    #[error("the server answered too slowly")]
    Timeout,
    #[error("the server's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the server's answer is not MCP: {0}")]
    Protocol(String),
    /// A JSON-RPC error object from the server.
    #[error("the server refused the request: {0}")]
    Rpc(String),
}

/// How to talk to one server, once it is known which revision it speaks.
#[derive(Debug, Clone)]
pub struct Connection {
    pub protocol: &'static str,
    session: Option<String>,
}

/// A tool as the server lists it; its annotations are the server's claims, nothing more.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ListedTool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "inputSchema", default)]
    pub input_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

pub struct McpClient {
    http: reqwest::Client,
    guard: Guard,
    limits: Limits,
}

impl McpClient {
    pub fn new(guard: Guard, limits: Limits) -> Result<Self, McpError> {
        let http = guard
            .client_builder()
            .connect_timeout(limits.timeout)
            .build()
            .map_err(|e| McpError::Unreachable(e.to_string()))?;
        Ok(Self {
            http,
            guard,
            limits,
        })
    }

    /// Finds the revision the server speaks: the stateless one if it answers `server/discover`,
    /// else a 2025-06-18 session.
    pub async fn connect(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Connection, McpError> {
        let modern = Connection {
            protocol: MODERN,
            session: None,
        };
        match self
            .request(url, headers, &modern, "server/discover", json!({}))
            .await
        {
            Ok(found)
                if found["supportedVersions"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| v == MODERN)) =>
            {
                return Ok(modern);
            }
            Ok(_) => tracing::debug!("the server does not list the stateless revision"),
            Err(McpError::Refused(r)) => return Err(McpError::Refused(r)),
            Err(e) => tracing::debug!(error = %e, "no stateless MCP; trying a session"),
        }
        let legacy = Connection {
            protocol: LEGACY,
            session: None,
        };
        let params = json!({
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": client_info(),
        });
        let (result, session) = self
            .exchange(url, headers, &legacy, "initialize", Some(params))
            .await?;
        let result = result.ok_or_else(|| McpError::Protocol("initialize had no answer".into()))?;
        if result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(McpError::Protocol(
                "initialize named no protocol version".into(),
            ));
        }
        let connection = Connection {
            protocol: LEGACY,
            session,
        };
        self.exchange(url, headers, &connection, "notifications/initialized", None)
            .await?;
        Ok(connection)
    }

    /// A connection to a server known to speak `protocol`: the stateless revision needs no
    /// handshake; anything else gets a fresh session.
    pub async fn reconnect(
        &self,
        url: &str,
        headers: &[(String, String)],
        protocol: Option<&str>,
    ) -> Result<Connection, McpError> {
        if protocol == Some(MODERN) {
            return Ok(Connection {
                protocol: MODERN,
                session: None,
            });
        }
        self.connect(url, headers).await
    }

    /// Ends a session (a stateless connection has none), as the transport asks of a client
    /// that is done; best effort.
    pub async fn close(&self, url: &str, headers: &[(String, String)], connection: &Connection) {
        let Some(session) = &connection.session else {
            return;
        };
        let Ok(parsed) = url::Url::parse(url) else {
            return;
        };
        if self.guard.check_url(&parsed).is_err() {
            return;
        }
        let mut request = self
            .http
            .delete(parsed)
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", connection.protocol);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Err(e) = tokio::time::timeout(self.limits.timeout, request.send()).await {
            tracing::debug!(error = %e, "ending an MCP session timed out");
        }
    }

    /// Every tool the server lists, following its cursors, at most `max_tools`.
    pub async fn list_tools(
        &self,
        url: &str,
        headers: &[(String, String)],
        connection: &Connection,
    ) -> Result<Vec<ListedTool>, McpError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let params = cursor
                .as_ref()
                .map_or_else(|| json!({}), |c| json!({ "cursor": c }));
            let result = self
                .request(url, headers, connection, "tools/list", params)
                .await?;
            let page: Vec<ListedTool> =
                serde_json::from_value(result.get("tools").cloned().unwrap_or_else(|| json!([])))
                    .map_err(|e| McpError::Protocol(format!("tools/list: {e}")))?;
            tools.extend(page);
            if tools.len() > self.limits.max_tools {
                return Err(McpError::Protocol(format!(
                    "the server lists more than {} tools",
                    self.limits.max_tools
                )));
            }
            cursor = result
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }

    /// Calls a tool; the server's result (`content`, `structuredContent`, `isError`).
    pub async fn call_tool(
        &self,
        url: &str,
        headers: &[(String, String)],
        connection: &Connection,
        name: &str,
        arguments: &Value,
    ) -> Result<Value, McpError> {
        self.request(
            url,
            headers,
            connection,
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        )
        .await
    }

    /// One request and its result.
    async fn request(
        &self,
        url: &str,
        headers: &[(String, String)],
        connection: &Connection,
        method: &str,
        params: Value,
    ) -> Result<Value, McpError> {
        let (result, _) = self
            .exchange(url, headers, connection, method, Some(params))
            .await?;
        result.ok_or_else(|| McpError::Protocol(format!("{method} had no answer")))
    }

    /// One POST: a request when `params` is given (its result, and the session the server
    /// named), else the notification `method`.
    async fn exchange(
        &self,
        url: &str,
        user_headers: &[(String, String)],
        connection: &Connection,
        method: &str,
        params: Option<Value>,
    ) -> Result<(Option<Value>, Option<String>), McpError> {
        let parsed = url::Url::parse(url).map_err(|e| McpError::Refused(e.to_string()))?;
        self.guard
            .check_url(&parsed)
            .map_err(|e| McpError::Refused(e.to_string()))?;
        let is_request = params.is_some();
        let mut params = params.unwrap_or_else(|| json!({}));
        if connection.protocol == MODERN
            && let Some(object) = params.as_object_mut()
        {
            object.insert(
                "_meta".into(),
                json!({
                    PROTOCOL_VERSION: MODERN,
                    CLIENT_CAPABILITIES: {},
                    CLIENT_INFO: client_info(),
                }),
            );
        }
        let body = if is_request {
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        } else {
            json!({"jsonrpc": "2.0", "method": method})
        };
        let mut headers = HeaderMap::new();
        for (name, value) in user_headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Err(McpError::Protocol(format!("header {name} cannot be sent")));
            };
            headers.insert(name, value);
        }
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static(connection.protocol),
        );
        if connection.protocol == MODERN {
            if let Ok(m) = HeaderValue::from_str(method) {
                headers.insert("mcp-method", m);
            }
            if let Some(name) = params.get("name").and_then(Value::as_str)
                && let Ok(n) = HeaderValue::from_str(name)
            {
                headers.insert("mcp-name", n);
            }
        }
        if let Some(session) = &connection.session
            && let Ok(s) = HeaderValue::from_str(session)
        {
            headers.insert("mcp-session-id", s);
        }
        let send = self.http.post(parsed).headers(headers).json(&body).send();
        let response = tokio::time::timeout(self.limits.timeout, send)
            .await
            .map_err(|_| McpError::Timeout)?
            .map_err(|e| match bestchat_egress::refusal_of(&e) {
                Some(refusal) => McpError::Refused(refusal.to_string()),
                None => McpError::Unreachable(e.to_string()),
            })?;
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = response.status();
        let sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        let text = tokio::time::timeout(self.limits.timeout, self.read(response))
            .await
            .map_err(|_| McpError::Timeout)??;
        if !is_request {
            return if status.is_success() {
                Ok((None, session))
            } else {
                Err(McpError::Protocol(format!("{method}: HTTP {status}")))
            };
        }
        let message = if sse {
            answer_in_stream(&text)?
        } else {
            serde_json::from_str(&text)
                .map_err(|_| McpError::Protocol(format!("{method}: HTTP {status}, not JSON")))?
        };
        if let Some(error) = message.get("error") {
            let text = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(McpError::Rpc(
                text.chars().take(MAX_RPC_MESSAGE_CHARS).collect(),
            ));
        }
        let result = message
            .get("result")
            .cloned()
            .ok_or_else(|| McpError::Protocol(format!("{method}: no result")))?;
        Ok((Some(result), session))
    }

    /// The body, refused past the size limit.
    async fn read(&self, response: reqwest::Response) -> Result<String, McpError> {
        let max = self.limits.max_response_bytes;
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| McpError::Unreachable(e.to_string()))?
        {
            if body.len() + chunk.len() > max {
                return Err(McpError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| McpError::Protocol("the answer is not UTF-8".into()))
    }
}

fn client_info() -> Value {
    json!({"name": "bestchat", "version": env!("CARGO_PKG_VERSION")})
}

/// The JSON-RPC response among a request-scoped stream's events (the server may send
/// notifications before it).
fn answer_in_stream(text: &str) -> Result<Value, McpError> {
    let mut data = String::new();
    let mut found = None;
    for line in text.lines().chain(std::iter::once("")) {
        if let Some(rest) = line.strip_prefix("data:") {
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            data.push('\n');
        } else if line.is_empty() && !data.is_empty() {
            if let Ok(message) = serde_json::from_str::<Value>(data.trim_end())
                && (message.get("result").is_some() || message.get("error").is_some())
            {
                found = Some(message);
            }
            data.clear();
        }
    }
    found.ok_or_else(|| McpError::Protocol("the stream ended without an answer".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_found_among_a_streams_notifications() {
        let stream = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                      event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\n\
                      data: \"result\":{\"ok\":true}}\n\n";
        assert_eq!(answer_in_stream(stream).unwrap()["result"]["ok"], true);
        assert!(answer_in_stream("data: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n").is_err());
        assert!(answer_in_stream("").is_err());
    }
}
