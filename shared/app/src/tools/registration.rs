//! A user's own tools: registered with a module and a manifest (both checked before anything
//! is stored), listed beside the built-ins, deleted. Visible and callable by that user only.

use base64::Engine as _;
use bestchat_domain::ids::{ToolId, UserId};
use bestchat_domain::ports::blobs::BlobStore;
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::ports::realtime::Invoker;
use bestchat_domain::ports::store::{AuditEntry, McpServerStore, ToolStore};
use bestchat_domain::time::{Timestamp, now};
use bestchat_domain::tool::{UserTool, module_key};
use bestchat_domain::{DomainError, ErrorCode};
use bestchat_tools::registry::{Entry, Registry};
use bestchat_tools::sandbox::sha256_hex;
use bestchat_tools::{
    ExecutorRequest, Manifest, ModuleRef, PrepareModule, Prepared, Risk, builtin,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::tools::config::ToolsConfig;

/// `POST /api/tools`.
#[derive(Debug, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterTool {
    pub manifest: Value,
    /// The `.wasm` file, base64 (standard alphabet, padding optional).
    pub module: String,
}

/// A tool as `GET /api/tools` lists it.
#[derive(Debug, Serialize, ::schemars::JsonSchema)]
pub struct ToolView {
    /// `None` for built-in tools.
    pub id: Option<ToolId>,
    pub name: String,
    pub description: String,
    pub parameters: Value,
    pub risk: Risk,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub grants: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// For an MCP tool: its server, and the server's (untrusted) hints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<bestchat_domain::mcp::McpServerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

impl ToolView {
    /// An entry of the user's registry; `stored` is its row when it is one of the user's own.
    fn of(entry: &Entry, stored: Option<&UserTool>) -> Self {
        let grants = serde_json::to_value(&entry.manifest.grants).unwrap_or(Value::Null);
        Self {
            id: stored.map(|t| t.id),
            name: entry.manifest.name.to_string(),
            description: entry.manifest.description.clone(),
            parameters: entry.manifest.parameters.clone(),
            risk: entry.manifest.risk,
            source: match entry.module {
                ModuleRef::Builtin(_) => "builtin",
                ModuleRef::Sha256(_) => "user",
            },
            grants: if grants == json!({}) {
                Value::Null
            } else {
                grants
            },
            module_sha256: stored.map(|t| t.module_sha256.clone()),
            created_at: stored.map(|t| t.created_at),
            server: None,
            annotations: None,
        }
    }

    fn of_mcp(tool: crate::mcp::McpTool) -> Self {
        Self {
            id: None,
            name: tool.exposed,
            description: tool.description,
            parameters: tool.parameters,
            risk: tool.risk,
            source: "mcp",
            grants: Value::Null,
            module_sha256: None,
            created_at: None,
            server: Some(tool.server),
            annotations: tool.annotations,
        }
    }
}

/// The tools `user` can call: the built-ins and the user's own.
pub async fn registry(
    tools: &dyn ToolStore,
    user: UserId,
) -> Result<(Registry, Vec<UserTool>), AppError> {
    let own = tools.list_tools(user).await?;
    let manifests = own.iter().filter_map(|tool| match Manifest::stored(tool.manifest.clone()) {
        Ok(manifest) => Some((manifest, tool.module_sha256.clone())),
        Err(e) => {
            tracing::error!(tool = %tool.id, error = %e, "a stored manifest does not parse; the tool is left out");
            None
        }
    });
    Ok((
        Registry::with_user_tools(manifests.collect::<Vec<_>>()),
        own,
    ))
}

/// What registering a module reads and writes: the user's tools, the cache that holds the
/// compile lock, the invoker that has the executor compile it, the module storage and the tool
/// limits. Not the sandbox: compiling is the executor's, so the HTTP functions link no wasmtime.
pub struct Registering<'a> {
    pub tools: &'a dyn ToolStore,
    pub cache: &'a dyn Cache,
    pub invoker: &'a dyn Invoker,
    pub blobs: &'a dyn BlobStore,
    pub config: &'a ToolsConfig,
}

pub async fn register(
    ports: &Registering<'_>,
    user: UserId,
    body: RegisterTool,
) -> Result<ToolView, AppError> {
    let config = ports.config;
    let module = decode_module(&body.module, config.max_module_bytes)?;
    let manifest = Manifest::parse(body.manifest, &config.ceilings)
        .map_err(|e| invalid_tool(format!("manifest: {e}")))?;
    if builtin::find(manifest.name.as_str()).is_some() {
        return Err(conflict(format!(
            "{} is the name of a built-in tool",
            manifest.name
        )));
    }
    let too_many = || {
        conflict(format!(
            "a user may register at most {} tools; delete one first",
            config.max_per_user
        ))
    };
    // Refused before anything compiles; checked again as the tool is written.
    let existing = ports.tools.list_tools(user).await?;
    if existing.len() >= config.max_per_user {
        return Err(too_many());
    }
    if existing.iter().any(|t| t.name == manifest.name.as_str()) {
        return Err(conflict(format!(
            "you already have a tool named {}",
            manifest.name
        )));
    }
    let sha = sha256_hex(&module);
    let key = module_key(&sha);
    // One compile per user at a time: a user cannot queue the executor's budget up.
    let lock = compile_lock(user);
    let held = ports
        .cache
        .set_if_absent(&lock, b"1", config.compile.timeout + COMPILE_LOCK_SLACK)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot take the compile lock");
            AppError::from(DomainError::of(ErrorCode::Unavailable))
        })?;
    if !held {
        return Err(conflict(
            "another of your modules is being compiled; register this one when it is done".into(),
        ));
    }
    let prepared = prepare(ports, &key, module, &sha, manifest.risk == Risk::Network).await;
    if let Err(e) = ports.cache.delete(&lock).await {
        tracing::warn!(error = %e, "cannot release the compile lock; it lapses");
    }
    prepared?;
    let at = now();
    let tool = UserTool {
        id: ToolId::generate(),
        user_id: user,
        name: manifest.name.to_string(),
        description: manifest.description.clone(),
        manifest: serde_json::to_value(&manifest).map_err(|e| AppError::Internal(e.to_string()))?,
        risk: manifest.risk.as_str().to_owned(),
        module_key: key,
        module_sha256: sha.clone(),
        created_at: at,
    };
    let details = json!({ "name": tool.name, "risk": tool.risk, "module_sha256": sha });
    let entry = audit(user, "tool.register", tool.id, details, at);
    if !ports
        .tools
        .create_tool(&tool, config.max_per_user, &entry)
        .await?
    {
        return Err(too_many());
    }
    let entry = Entry {
        manifest,
        module: ModuleRef::Sha256(sha),
        hosts_from_user: false,
    };
    Ok(ToolView::of(&entry, Some(&tool)))
}

/// Longer than a compile may take, so the lock outlives the compile it guards.
const COMPILE_LOCK_SLACK: std::time::Duration = std::time::Duration::from_secs(30);

fn compile_lock(user: UserId) -> String {
    format!("compiling:{user}")
}

/// Stores the module and has the executor compile and check it (compiling belongs to the
/// executor: in AWS a function of its own, locally a child process of the gateway). A module it
/// refuses is not kept.
async fn prepare(
    ports: &Registering<'_>,
    key: &str,
    module: Vec<u8>,
    sha: &str,
    network: bool,
) -> Result<(), AppError> {
    ports.blobs.put(key, module).await?;
    let request = ExecutorRequest::Prepare {
        prepare: PrepareModule {
            sha256: sha.to_owned(),
            network,
        },
    };
    let payload = serde_json::to_value(&request).map_err(|e| AppError::Internal(e.to_string()))?;
    let answer = ports
        .invoker
        .invoke(crate::tools::TOOL_EXECUTOR, &payload)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the executor could not prepare a module");
            AppError::from(DomainError::of(ErrorCode::Unavailable))
        })?;
    match serde_json::from_value::<Prepared>(answer) {
        Ok(Prepared::Ok) => Ok(()),
        Ok(Prepared::Refused { reason }) => {
            // Refused bytes are refused for anyone: nothing may use them.
            if let Err(e) = ports.blobs.delete(key).await {
                tracing::warn!(error = %e, "cannot delete a refused module");
            }
            Err(invalid_tool(format!("module: {reason}")))
        }
        Ok(Prepared::Unavailable { reason }) => {
            tracing::error!(reason, "the executor could not prepare a module");
            Err(DomainError::of(ErrorCode::Unavailable).into())
        }
        Err(e) => Err(AppError::Internal(format!(
            "unreadable prepare answer: {e}"
        ))),
    }
}

/// The built-ins first, then the user's own by name, then their MCP servers' tools.
pub async fn list(
    tools: &dyn ToolStore,
    servers: &dyn McpServerStore,
    user: UserId,
) -> Result<Vec<ToolView>, AppError> {
    let (registry, own) = registry(tools, user).await?;
    let mut views: Vec<ToolView> = registry
        .entries()
        .iter()
        .map(|entry| {
            let stored = own.iter().find(|t| t.name == entry.manifest.name.as_str());
            ToolView::of(
                entry,
                stored.filter(|_| matches!(entry.module, ModuleRef::Sha256(_))),
            )
        })
        .collect();
    let mcp = crate::mcp::tools_of(servers, user, &|name| registry.find(name).is_some()).await?;
    views.extend(mcp.into_iter().map(ToolView::of_mcp));
    Ok(views)
}

/// `false` when the id is not one of the user's tools. The module is kept by content and
/// another tool may use the same bytes: the janitor removes it once none does (`sweep`).
pub async fn delete(tools: &dyn ToolStore, user: UserId, id: ToolId) -> Result<bool, AppError> {
    let entry = audit(user, "tool.delete", id, json!({}), now());
    Ok(tools.delete_tool(user, id, &entry).await?)
}

pub fn tool_id(raw: Option<&str>) -> Result<ToolId, AppError> {
    raw.and_then(|s| s.parse().ok())
        .ok_or_else(|| DomainError::of(ErrorCode::ToolNotFound).into())
}

fn decode_module(encoded: &str, max: usize) -> Result<Vec<u8>, AppError> {
    // Refuse by length before decoding: base64 is 4 characters per 3 bytes.
    if encoded.len() > max.div_ceil(3) * 4 + 4 {
        return Err(too_large(max));
    }
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::general_purpose::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(encoded.trim())
        .map_err(|_| invalid_tool("module must be the .wasm file in base64".into()))?;
    if bytes.len() > max {
        return Err(too_large(max));
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(invalid_tool(
            "module is not a WebAssembly binary (no \\0asm header)".into(),
        ));
    }
    Ok(bytes)
}

fn too_large(max: usize) -> AppError {
    DomainError::new(
        ErrorCode::PayloadTooLarge,
        format!("module is larger than {max} bytes"),
    )
    .into()
}

fn invalid_tool(message: String) -> AppError {
    DomainError::new(ErrorCode::InvalidTool, message).into()
}

fn conflict(message: String) -> AppError {
    DomainError::new(ErrorCode::Conflict, message).into()
}

fn audit(user: UserId, action: &str, id: ToolId, details: Value, at: Timestamp) -> AuditEntry {
    AuditEntry::of(user, action, ("tool", &id.to_string()), details, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_refused_by_size_before_decoding_and_by_header_after() {
        let max = 30;
        let small = base64::engine::general_purpose::STANDARD.encode(b"\0asm\x01\0\0\0");
        assert!(decode_module(&small, max).is_ok());
        let big = "A".repeat(100);
        assert!(
            matches!(decode_module(&big, max), Err(AppError::Domain(e)) if e.code == ErrorCode::PayloadTooLarge)
        );
        let not_wasm = base64::engine::general_purpose::STANDARD.encode(b"MZ\x90\0");
        assert!(
            matches!(decode_module(&not_wasm, max), Err(AppError::Domain(e)) if e.code == ErrorCode::InvalidTool)
        );
        assert!(
            matches!(decode_module("!!!", max), Err(AppError::Domain(e)) if e.code == ErrorCode::InvalidTool)
        );
    }
}
