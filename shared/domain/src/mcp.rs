//! A remote MCP server a user registered: where it is, the headers it is called with (sealed
//! like provider keys; only their names are ever shown), whether the user trusts its tool
//! annotations, and its tool list as last fetched.

use crate::error::DomainError;
use crate::ids::UserId;
use crate::provider::SealedKey;
use crate::time::Timestamp;

/// Most characters of a server id; its tools are offered as `<id>_<tool>`, which must fit a
/// tool name (64).
pub const MCP_SERVER_ID_MAX_CHARS: usize = 24;

/// A user's name for one of their servers: `^[a-z][a-z0-9_]{0,23}$`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, ::schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct McpServerId(String);

impl McpServerId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let mut chars = raw.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && raw.len() <= MCP_SERVER_ID_MAX_CHARS;
        if !valid {
            return Err(DomainError::validation(format!(
                "an MCP server id is a lowercase letter then up to {} lowercase letters, digits or '_'",
                MCP_SERVER_ID_MAX_CHARS - 1
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for McpServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct McpServer {
    pub user_id: UserId,
    pub id: McpServerId,
    pub url: String,
    /// The names of the headers it is called with; the values are in `headers`, sealed.
    pub header_names: Vec<String>,
    /// The headers as a sealed JSON object of name to value.
    pub headers: Option<SealedKey>,
    /// The user takes its tool annotations as true (they may then make a tool `read`).
    pub trusted: bool,
    pub enabled: bool,
    /// The revision it speaks, as found when its tools were listed.
    pub protocol: Option<String>,
    /// Its tools as it listed them (`name`, `description`, `inputSchema`, `annotations`).
    pub tools: serde_json::Value,
    pub tools_fetched_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_are_short_lowercase_names() {
        for good in ["a", "github", "my_server_2", "abcdefghijklmnopqrstuvwx"] {
            assert!(McpServerId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "GitHub",
            "my-server",
            "a b",
            "abcdefghijklmnopqrstuvwxy",
            "é",
        ] {
            assert!(McpServerId::parse(bad).is_err(), "{bad}");
        }
    }
}
