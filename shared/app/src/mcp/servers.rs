//! `GET /api/mcp-servers`, `PUT` and `DELETE /api/mcp-servers/{id}`: a user's servers, checked
//! and listed when they are put (a server that cannot be listed is refused with the reason),
//! their headers sealed, every change on the audit trail.

use std::collections::BTreeMap;

use bestchat_domain::ids::UserId;
use bestchat_domain::mcp::{McpServer, McpServerId};
use bestchat_domain::ports::keys::KeyVault;
use bestchat_domain::ports::store::{AuditEntry, McpServerStore};
use bestchat_domain::time::{Timestamp, now};
use bestchat_domain::{DomainError, ErrorCode};
use bestchat_egress::Guard;
use bestchat_mcp::{ListedTool, McpError};
use bestchat_tools::Arguments;
use bestchat_tools::manifest::{MAX_DESCRIPTION_CHARS, MAX_SCHEMA_BYTES};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{McpClientSource, McpTool, offered};
use crate::config::McpConfig;
use crate::error::AppError;
use crate::secrets::{Binding, open, origin_of, seal};

/// Headers one server may be given, and their sizes.
pub const MAX_HEADERS: usize = 16;
pub const MAX_HEADER_NAME_BYTES: usize = 64;
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
pub const MAX_URL_CHARS: usize = 2048;
/// Headers the client sets itself.
const RESERVED: &[&str] = &[
    "accept",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
];

/// `PUT /api/mcp-servers/{id}`. Absent fields keep their value; `headers: {}` removes them.
#[derive(Debug, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutServer {
    pub url: String,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub trusted: Option<bool>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A server as the API shows it: header names, never their values.
#[derive(Debug, Serialize, ::schemars::JsonSchema)]
pub struct ServerView {
    pub id: McpServerId,
    pub url: String,
    pub header_names: Vec<String>,
    pub trusted: bool,
    pub enabled: bool,
    pub protocol: Option<String>,
    pub tools: Vec<ToolView>,
    pub tools_fetched_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One of its tools, with the risk the policy decides it by and its (untrusted) hints.
#[derive(Debug, Serialize, ::schemars::JsonSchema)]
#[schemars(rename = "McpToolView")]
pub struct ToolView {
    pub name: String,
    pub server_tool: String,
    pub description: String,
    pub risk: bestchat_tools::Risk,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

impl ServerView {
    fn of(server: &McpServer) -> Self {
        Self {
            id: server.id.clone(),
            url: server.url.clone(),
            header_names: server.header_names.clone(),
            trusted: server.trusted,
            enabled: server.enabled,
            protocol: server.protocol.clone(),
            tools: offered(server).into_iter().map(ToolView::of).collect(),
            tools_fetched_at: server.tools_fetched_at,
            created_at: server.created_at,
            updated_at: server.updated_at,
        }
    }
}

impl ToolView {
    fn of(tool: McpTool) -> Self {
        Self {
            name: tool.exposed,
            server_tool: tool.tool,
            description: tool.description,
            risk: tool.risk,
            annotations: tool.annotations,
        }
    }
}

pub fn server_id(raw: Option<&str>) -> Result<McpServerId, AppError> {
    raw.and_then(|s| McpServerId::parse(s).ok())
        .ok_or_else(|| DomainError::of(ErrorCode::McpServerNotFound).into())
}

pub async fn list(servers: &dyn McpServerStore, user: UserId) -> Result<Vec<ServerView>, AppError> {
    let servers = servers.list_mcp_servers(user).await?;
    Ok(servers.iter().map(ServerView::of).collect())
}

/// What registering a server reads and writes: the user's servers, the vault that seals their
/// headers, the address guard, the MCP client that lists the server's tools, and the limits.
pub struct Registration<'a> {
    pub servers: &'a dyn McpServerStore,
    pub vault: &'a dyn KeyVault,
    pub guard: &'a Guard,
    /// Built on first use: after every check that needs no server.
    pub client: &'a dyn McpClientSource,
    pub limits: &'a McpConfig,
}

pub async fn put(
    access: &Registration<'_>,
    user: UserId,
    id: McpServerId,
    body: PutServer,
) -> Result<ServerView, AppError> {
    let url = checked_url(access.guard, &body.url).await?;
    let store = access.servers;
    let existing = store.get_mcp_server(user, &id).await?;
    let max = access.limits.max_servers;
    let too_many = || -> AppError {
        DomainError::new(
            ErrorCode::Conflict,
            format!("a user may register at most {max} MCP servers; delete one first"),
        )
        .into()
    };
    // Refused before the server is asked anything; checked again as it is written.
    if existing.is_none() && store.list_mcp_servers(user).await?.len() >= max {
        return Err(too_many());
    }
    // Headers are sealed for the origin they are sent to, and open for no other.
    let origin = origin_of(&url)
        .ok_or_else(|| DomainError::validation("url must name a server (scheme, host, port)"))?;
    let (header_names, sealed, headers) = match body.headers {
        Some(headers) => {
            let headers = checked_headers(headers)?;
            let names: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
            let sealed = if headers.is_empty() {
                None
            } else {
                let text =
                    serde_json::to_string(&headers.iter().cloned().collect::<BTreeMap<_, _>>())
                        .map_err(|e| AppError::Internal(e.to_string()))?;
                Some(
                    seal(
                        access.vault,
                        user,
                        Binding::mcp_headers(id.as_str(), &origin),
                        &text,
                    )
                    .await?,
                )
            };
            (names, sealed, headers)
        }
        None => match &existing {
            Some(server)
                if server.headers.is_some() && origin_of(&server.url) != Some(origin.clone()) =>
            {
                return Err(DomainError::validation(format!(
                    "the url now points to {origin}, not {}: give the headers again with it \
                     (they are only ever sent where they were given for)",
                    origin_of(&server.url).as_deref().unwrap_or("nowhere")
                ))
                .into());
            }
            Some(server) => (
                server.header_names.clone(),
                server.headers.clone(),
                open_headers(access.vault, server)
                    .await
                    .map_err(|e| DomainError::new(ErrorCode::McpUnavailable, e.to_string()))?,
            ),
            None => (Vec::new(), None, Vec::new()),
        },
    };
    let client = access.client.mcp_client()?;
    // One deadline for the whole registration, however many exchanges it takes.
    let listing = tokio::time::timeout(access.limits.timeout, async {
        let connection = client.connect(&url, &headers).await?;
        let tools = client.list_tools(&url, &headers, &connection).await;
        client.close(&url, &headers, &connection).await;
        Ok::<_, McpError>((connection.protocol, tools?))
    })
    .await
    .unwrap_or(Err(McpError::Timeout));
    let (protocol, tools) = listing.map_err(|e| {
        tracing::info!(server = %id, error = %e, "an MCP server could not be listed");
        DomainError::new(
            ErrorCode::McpUnavailable,
            format!("the MCP server could not be listed: {}", public(&e)),
        )
    })?;
    let usable = within_limits(&id, tools, access.limits.max_listing_bytes)?;
    let at = now();
    let server = McpServer {
        user_id: user,
        id: id.clone(),
        url,
        header_names,
        headers: sealed,
        trusted: body
            .trusted
            .unwrap_or_else(|| existing.as_ref().is_some_and(|s| s.trusted)),
        enabled: body
            .enabled
            .unwrap_or_else(|| existing.as_ref().is_none_or(|s| s.enabled)),
        protocol: Some(protocol.to_owned()),
        tools: serde_json::to_value(&usable).map_err(|e| AppError::Internal(e.to_string()))?,
        tools_fetched_at: Some(at),
        created_at: existing.as_ref().map_or(at, |s| s.created_at),
        updated_at: at,
    };
    let details = json!({
        "url": server.url, "header_names": server.header_names, "trusted": server.trusted,
        "enabled": server.enabled, "tools": usable.len(), "protocol": protocol,
    });
    let entry = audit(user, "mcp_server.put", &id, details, at);
    if !store.put_mcp_server(&server, max, &entry).await? {
        return Err(too_many());
    }
    Ok(ServerView::of(&server))
}

/// The listed tools that pass what a registered tool's manifest must: a schema of at most
/// `MAX_SCHEMA_BYTES` that compiles, a description of at most `MAX_DESCRIPTION_CHARS` (a longer
/// one is cut); the rest are left out, and said so in the log. The listing kept must fit
/// `max_bytes`, or the server is refused: every turn of its user carries it to the model.
fn within_limits(
    id: &McpServerId,
    tools: Vec<ListedTool>,
    max_bytes: usize,
) -> Result<Vec<ListedTool>, AppError> {
    let mut usable = Vec::new();
    for mut tool in tools {
        let schema_bytes = serde_json::to_vec(&tool.input_schema).map_or(usize::MAX, |b| b.len());
        let compiles =
            tool.input_schema.is_null() || Arguments::compile(&tool.input_schema).is_ok();
        if schema_bytes > MAX_SCHEMA_BYTES || !compiles {
            tracing::warn!(server = %id, tool = tool.name, schema_bytes, compiles, "an MCP tool's schema is too large or does not compile; left out");
            continue;
        }
        if tool.description.chars().count() > MAX_DESCRIPTION_CHARS {
            tool.description = tool
                .description
                .chars()
                .take(MAX_DESCRIPTION_CHARS)
                .collect();
        }
        usable.push(tool);
    }
    let listing = serde_json::to_vec(&usable).map_or(usize::MAX, |b| b.len());
    if listing > max_bytes {
        return Err(DomainError::new(
            ErrorCode::McpUnavailable,
            format!(
                "the server's tool listing is {listing} bytes, more than the {max_bytes} one server may bring"
            ),
        )
        .into());
    }
    Ok(usable)
}

pub async fn delete(
    servers: &dyn McpServerStore,
    user: UserId,
    id: McpServerId,
) -> Result<bool, AppError> {
    let entry = audit(user, "mcp_server.delete", &id, json!({}), now());
    Ok(servers.delete_mcp_server(user, &id, &entry).await?)
}

/// Why a stored server's headers cannot be used; the sentence is for the user.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadersError {
    #[error("the server's stored headers cannot be opened: set them again")]
    Sealed,
    #[error("the server's stored headers are unreadable: set them again")]
    Unreadable,
}

/// The server's headers, opened.
pub(crate) async fn open_headers(
    vault: &dyn KeyVault,
    server: &McpServer,
) -> Result<Vec<(String, String)>, HeadersError> {
    let Some(sealed) = &server.headers else {
        return Ok(Vec::new());
    };
    let origin = origin_of(&server.url).unwrap_or_default();
    let text = open(
        vault,
        server.user_id,
        Binding::mcp_headers(server.id.as_str(), &origin),
        sealed,
    )
    .await
    .map_err(|e| {
        tracing::error!(server = %server.id, error = %e, "the MCP server's headers do not open");
        HeadersError::Sealed
    })?;
    let map: BTreeMap<String, String> =
        serde_json::from_str(&text).map_err(|_| HeadersError::Unreadable)?;
    Ok(map.into_iter().collect())
}

/// What a client may be told of a failed exchange: the kind, not the server's internals.
pub(crate) fn public(error: &McpError) -> String {
    match error {
        McpError::Refused(_) => "its address is not one this service may call".into(),
        McpError::Unreachable(_) => "it could not be reached".into(),
        McpError::Timeout => "it answered too slowly".into(),
        McpError::TooLarge(max) => format!("its answer is larger than {max} bytes"),
        McpError::Protocol(_) => "its answer is not MCP".into(),
        McpError::Rpc(message) => format!("it refused: {message}"),
    }
}

async fn checked_url(guard: &Guard, raw: &str) -> Result<String, AppError> {
    let invalid = |why: &str| DomainError::validation(format!("url: {why}"));
    if raw.len() > MAX_URL_CHARS {
        return Err(invalid(&format!("at most {MAX_URL_CHARS} characters")).into());
    }
    let url = url::Url::parse(raw).map_err(|_| invalid("not a URL"))?;
    if !matches!(url.scheme(), "https" | "http")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(invalid("an http(s) URL without credentials (put them in headers)").into());
    }
    guard
        .check_url_now(&url)
        .await
        .map_err(|_| invalid("its address is not one this service may call"))?;
    Ok(url.to_string())
}

fn checked_headers(headers: BTreeMap<String, String>) -> Result<Vec<(String, String)>, AppError> {
    if headers.len() > MAX_HEADERS {
        return Err(DomainError::validation(format!("at most {MAX_HEADERS} headers")).into());
    }
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let valid_name = !lower.is_empty()
            && lower.len() <= MAX_HEADER_NAME_BYTES
            && lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid_name || RESERVED.contains(&lower.as_str()) {
            return Err(DomainError::validation(format!(
                "headers: {name:?} is not a header name this service may send"
            ))
            .into());
        }
        let valid_value = value.len() <= MAX_HEADER_VALUE_BYTES
            && value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        if !valid_value {
            return Err(DomainError::validation(format!(
                "headers: the value of {name} must be printable ASCII, at most {MAX_HEADER_VALUE_BYTES} bytes"
            ))
            .into());
        }
        out.push((lower, value));
    }
    Ok(out)
}

fn audit(
    user: UserId,
    action: &str,
    id: &McpServerId,
    details: Value,
    at: Timestamp,
) -> AuditEntry {
    AuditEntry::of(user, action, ("mcp_server", id.as_str()), details, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_before_anything_is_sealed() {
        let ok = BTreeMap::from([("Authorization".to_owned(), "Bearer abc".to_owned())]);
        assert_eq!(
            checked_headers(ok).unwrap(),
            [("authorization".to_owned(), "Bearer abc".to_owned())]
        );
        for (name, value) in [
            ("Mcp-Session-Id", "x"),
            ("host", "evil"),
            ("bad name", "x"),
            ("x-ok", "line\nbreak"),
            ("x-ok", "é"),
        ] {
            let one = BTreeMap::from([(name.to_owned(), value.to_owned())]);
            assert!(checked_headers(one).is_err(), "{name}: {value:?}");
        }
        let many: BTreeMap<String, String> = (0..=MAX_HEADERS)
            .map(|i| (format!("x-{i}"), "v".to_owned()))
            .collect();
        assert!(checked_headers(many).is_err());
    }
}
