//! The ports the turn's steps take, each a struct of the few adapters and settings one step
//! uses; `AppState` builds them at the entry point.

use bestchat_domain::ports::cache::Cache;
use bestchat_domain::ports::realtime::{Invoker, StreamBuffer};
use bestchat_domain::ports::store::ContextStore;

use crate::config::{ContextConfig, RealtimeConfig};
use crate::devices::Devices;

/// What planning a turn's context reads and writes: stored summaries and optimizations, the
/// cache of the latest summary and of the summarize lock, the invoker that starts a summary,
/// and the context settings.
pub(crate) struct ContextPorts<'a> {
    pub store: &'a dyn ContextStore,
    pub cache: &'a dyn Cache,
    pub invoker: &'a dyn Invoker,
    pub settings: &'a ContextConfig,
}

/// What streaming an answer to the user's devices reads and writes: the devices, the resume
/// buffer, the cache that counts each user's buffered bytes, and the real-time settings.
pub(crate) struct FanoutPorts<'a> {
    pub devices: Devices,
    pub buffer: &'a dyn StreamBuffer,
    pub cache: &'a dyn Cache,
    pub realtime: &'a RealtimeConfig,
}
