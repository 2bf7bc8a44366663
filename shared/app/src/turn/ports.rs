//! The ports the turn's steps take, each a struct of the few adapters and settings one step
//! uses; `AppState` builds them at the entry point.

use std::collections::BTreeMap;
use std::time::Duration;

use bestchat_domain::ports::blobs::BlobStore;
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::ports::keys::KeyVault;
use bestchat_domain::ports::realtime::{Invoker, StreamBuffer};
use bestchat_domain::ports::store::{
    ContextStore, FileStore, McpServerStore, SettingsStore, Store, ToolExecutionStore, ToolStore,
    TurnStore, UserStore,
};
use bestchat_providers::failover::Failover;
use bestchat_tools::policy::AutoApproval;

use crate::budget::Budgets;
use crate::config::{ContextConfig, RealtimeConfig};
use crate::devices::Devices;
use crate::files::FileSettings;
use crate::mcp::McpClientSource;
use crate::metrics::Metrics;
use crate::models::ProviderAccess;
use crate::tools::config::ToolsConfig;

/// What planning a turn's context reads and writes: stored summaries and optimizations, the
/// cache of the latest summary and of the summarize lock, the invoker that starts a summary,
/// and the context settings.
pub(crate) struct ContextPorts<'a> {
    pub store: &'a dyn ContextStore,
    pub cache: &'a dyn Cache,
    pub invoker: &'a dyn Invoker,
    pub settings: &'a ContextConfig,
    /// Attachments: their rows, their text and images, and the limits they were made within.
    pub files: &'a dyn FileStore,
    pub blobs: &'a dyn BlobStore,
    pub file_settings: &'a FileSettings,
}

/// What streaming an answer to the user's devices reads and writes: the devices, the resume
/// buffer, the cache that counts each user's buffered bytes, and the real-time settings.
#[derive(Clone)]
pub(crate) struct FanoutPorts<'a> {
    pub devices: Devices,
    pub buffer: &'a dyn StreamBuffer,
    pub cache: &'a dyn Cache,
    pub realtime: &'a RealtimeConfig,
}

/// What ending a step and running its tool calls reads and writes: the user's tools, servers
/// and rules, the executions and turns, the vault that opens servers' headers, the MCP client,
/// the invoker that reaches the tool executor, the metrics, the user's devices, and the limits.
pub(crate) struct StepPorts<'a> {
    pub tools: &'a dyn ToolStore,
    pub servers: &'a dyn McpServerStore,
    pub settings: &'a dyn SettingsStore,
    pub executions: &'a dyn ToolExecutionStore,
    pub turns: &'a dyn TurnStore,
    pub vault: &'a dyn KeyVault,
    pub mcp: &'a dyn McpClientSource,
    pub invoker: &'a dyn Invoker,
    pub metrics: &'a Metrics,
    pub devices: Devices,
    pub tools_config: &'a ToolsConfig,
    /// `BESTCHAT_MCP_TIMEOUT_MS`.
    pub mcp_timeout: Duration,
    /// `BESTCHAT_TURN_START_TIMEOUT_MS`.
    pub turn_start_timeout: Duration,
    /// Each provider call holds its worst case before it starts and settles after.
    pub budgets: Budgets<'a>,
    /// The user's roles, whose tool ceilings (`BESTCHAT_ROLE_TOOL_POLICIES`) bound their rules.
    pub users: &'a dyn UserStore,
    pub role_ceilings: &'a BTreeMap<String, AutoApproval>,
}

/// Everything one step of a turn reaches, composed by the turn's entry: the store (claim,
/// lease, conversation and history), the lease's length, the providers' access and failover,
/// and the ports of the context plan, the fanout and the step's end.
pub(crate) struct TurnPorts<'a> {
    pub store: &'a dyn Store,
    /// `BESTCHAT_TURN_LEASE_MS`.
    pub turn_lease: Duration,
    pub access: ProviderAccess<'a>,
    pub failover: Failover<'a>,
    pub context: ContextPorts<'a>,
    pub fanout: FanoutPorts<'a>,
    pub step: StepPorts<'a>,
}
