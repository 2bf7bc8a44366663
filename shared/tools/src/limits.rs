//! What one call may use. A manifest asks; the deployment's ceilings cap what it may ask for;
//! the executor enforces the result.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most any tool may be granted, and what a tool gets when its manifest names nothing.
/// Each is a named setting (`BESTCHAT_TOOL_*`, read by the app's configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
/// Read from the environment by the app: each field's variable is on it, its default in `Default`.
#[serde(default)]
pub struct Ceilings {
    #[serde(rename = "BESTCHAT_TOOL_MAX_MEMORY_BYTES")]
    pub max_memory_bytes: u64,
    #[serde(rename = "BESTCHAT_TOOL_DEFAULT_MEMORY_BYTES")]
    pub default_memory_bytes: u64,
    #[serde(rename = "BESTCHAT_TOOL_MAX_FUEL")]
    pub max_fuel: u64,
    #[serde(rename = "BESTCHAT_TOOL_DEFAULT_FUEL")]
    pub default_fuel: u64,
    #[serde(
        rename = "BESTCHAT_TOOL_MAX_WALL_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub max_wall: Duration,
    #[serde(
        rename = "BESTCHAT_TOOL_DEFAULT_WALL_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub default_wall: Duration,
    #[serde(rename = "BESTCHAT_TOOL_MAX_OUTPUT_BYTES")]
    pub max_output_bytes: u64,
    #[serde(rename = "BESTCHAT_TOOL_DEFAULT_OUTPUT_BYTES")]
    pub default_output_bytes: u64,
    /// Largest response body a network tool reads, and the longest one fetch may take.
    #[serde(rename = "BESTCHAT_TOOL_FETCH_MAX_BYTES")]
    pub fetch_max_bytes: u64,
    #[serde(
        rename = "BESTCHAT_TOOL_FETCH_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub fetch_timeout: Duration,
    /// Redirects a fetch follows, each hop checked like the first.
    #[serde(rename = "BESTCHAT_TOOL_FETCH_MAX_REDIRECTS")]
    pub fetch_max_redirects: u32,
    /// Fetches one call may make.
    #[serde(rename = "BESTCHAT_TOOL_FETCH_MAX_CALLS")]
    pub fetch_max_calls: u32,
    /// Hosts one manifest may name.
    #[serde(rename = "BESTCHAT_TOOL_MAX_HOSTS")]
    pub max_hosts: usize,
}

impl Default for Ceilings {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 * MIB,
            default_memory_bytes: 64 * MIB,
            // About a second of interpreted work per billion units on this class of machine.
            max_fuel: 20_000_000_000,
            default_fuel: 2_000_000_000,
            max_wall: Duration::from_secs(30),
            default_wall: Duration::from_secs(5),
            // A result is stored as a message: at most BESTCHAT_MESSAGE_MAX_BYTES (1 MiB).
            max_output_bytes: MIB,
            default_output_bytes: 256 * KIB,
            fetch_max_bytes: 2 * MIB,
            fetch_timeout: Duration::from_secs(10),
            fetch_max_redirects: 5,
            fetch_max_calls: 8,
            max_hosts: 32,
        }
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// What a manifest asks for; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Hosts a network tool may fetch from (`example.com`, or `*.example.com` for its
    /// subdomains). Only the `network` risk may name any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
}

/// What one call may use, as sent to the executor. The executor clamps it to its own ceilings
/// again: a request is not trusted to be within them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub memory_bytes: u64,
    pub fuel: u64,
    pub wall_ms: u64,
    pub output_bytes: u64,
    #[serde(default)]
    pub hosts: Vec<String>,
}

impl Limits {
    /// The manifest's grants within the ceilings (a grant over a ceiling is refused at
    /// registration; here it is capped, for requests from elsewhere).
    pub fn granted(grants: &Grants, ceilings: &Ceilings) -> Self {
        Self {
            memory_bytes: grants.memory_bytes.unwrap_or(ceilings.default_memory_bytes),
            fuel: grants.fuel.unwrap_or(ceilings.default_fuel),
            wall_ms: grants.timeout_ms.unwrap_or(millis(ceilings.default_wall)),
            output_bytes: grants.output_bytes.unwrap_or(ceilings.default_output_bytes),
            hosts: grants.hosts.clone(),
        }
        .within(ceilings)
    }

    pub fn within(mut self, ceilings: &Ceilings) -> Self {
        self.memory_bytes = self.memory_bytes.min(ceilings.max_memory_bytes);
        self.fuel = self.fuel.min(ceilings.max_fuel);
        self.wall_ms = self.wall_ms.min(millis(ceilings.max_wall));
        self.output_bytes = self.output_bytes.min(ceilings.max_output_bytes);
        self.hosts.truncate(ceilings.max_hosts);
        self
    }

    pub fn wall(&self) -> Duration {
        Duration::from_millis(self.wall_ms)
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_fill_from_defaults_and_stop_at_ceilings() {
        let ceilings = Ceilings::default();
        let none = Limits::granted(&Grants::default(), &ceilings);
        assert_eq!(none.memory_bytes, ceilings.default_memory_bytes);
        assert_eq!(none.wall(), ceilings.default_wall);
        let greedy = Grants {
            memory_bytes: Some(u64::MAX),
            fuel: Some(u64::MAX),
            timeout_ms: Some(u64::MAX),
            output_bytes: Some(u64::MAX),
            hosts: vec!["a.example".into(); 100],
        };
        let capped = Limits::granted(&greedy, &ceilings);
        assert_eq!(capped.memory_bytes, ceilings.max_memory_bytes);
        assert_eq!(capped.fuel, ceilings.max_fuel);
        assert_eq!(capped.wall(), ceilings.max_wall);
        assert_eq!(capped.output_bytes, ceilings.max_output_bytes);
        assert_eq!(capped.hosts.len(), ceilings.max_hosts);
    }
}
