//! A tool a user registered: its manifest (checked by `bestchat-tools` before it is stored) and
//! where its module is kept.

use serde::Serialize;

use crate::ids::{ToolId, UserId};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize)]
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
