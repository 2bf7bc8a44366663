//! In-process connection registry for the local gateway, indexed by user so a turn's lookups
//! stay cheap with thousands of sockets open.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::ports::realtime::{
    ConnectionId, ConnectionRecord, Connections, RegistryError,
};
use bestchat_domain::time::Timestamp;

/// Operations between two sweeps of expired connections.
const SWEEP_EVERY: u64 = 10_000;

struct Entry {
    user: UserId,
    connected_at: Timestamp,
    expires: Instant,
    subscriptions: BTreeSet<ConversationId>,
    resumes: HashMap<MessageId, u64>,
}

#[derive(Default)]
struct Registry {
    entries: HashMap<ConnectionId, Entry>,
    by_user: HashMap<UserId, BTreeSet<ConnectionId>>,
    operations: u64,
}

impl Registry {
    fn remove(&mut self, id: &ConnectionId) {
        if let Some(entry) = self.entries.remove(id)
            && let Some(ids) = self.by_user.get_mut(&entry.user)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.by_user.remove(&entry.user);
            }
        }
    }

    /// The entry, unless it has expired (then it is dropped).
    fn live(&mut self, id: &ConnectionId) -> Option<&mut Entry> {
        if self
            .entries
            .get(id)
            .is_some_and(|e| e.expires <= Instant::now())
        {
            self.remove(id);
        }
        self.entries.get_mut(id)
    }

    fn sweep(&mut self) {
        self.operations += 1;
        if self.operations.is_multiple_of(SWEEP_EVERY) {
            let now = Instant::now();
            let expired: Vec<ConnectionId> = self
                .entries
                .iter()
                .filter(|(_, e)| e.expires <= now)
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                self.remove(&id);
            }
        }
    }
}

#[derive(Default)]
pub struct MemoryConnections {
    registry: Mutex<Registry>,
}

impl MemoryConnections {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> Result<T, RegistryError> {
        let mut registry = self
            .registry
            .lock()
            .map_err(|_| RegistryError("connection registry lock poisoned".into()))?;
        registry.sweep();
        Ok(f(&mut registry))
    }
}

#[async_trait]
impl Connections for MemoryConnections {
    async fn register(
        &self,
        id: &ConnectionId,
        user: UserId,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(), RegistryError> {
        self.with(|r| {
            r.remove(id);
            r.entries.insert(
                id.clone(),
                Entry {
                    user,
                    connected_at: now,
                    expires: Instant::now() + ttl,
                    subscriptions: BTreeSet::new(),
                    resumes: HashMap::new(),
                },
            );
            r.by_user.entry(user).or_default().insert(id.clone());
        })
    }

    async fn remove(&self, id: &ConnectionId) -> Result<(), RegistryError> {
        self.with(|r| r.remove(id))
    }

    async fn subscribe(
        &self,
        id: &ConnectionId,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<bool, RegistryError> {
        self.with(|r| match r.live(id) {
            Some(e) if e.user == user => {
                e.subscriptions.insert(conversation);
                true
            }
            _ => false,
        })
    }

    async fn of_user(&self, user: UserId) -> Result<Vec<ConnectionRecord>, RegistryError> {
        self.with(|r| {
            let ids: Vec<ConnectionId> = r
                .by_user
                .get(&user)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            ids.iter()
                .filter_map(|id| {
                    let e = r.live(id)?;
                    Some(ConnectionRecord {
                        id: id.clone(),
                        user_id: e.user,
                        connected_at: e.connected_at,
                        subscriptions: e.subscriptions.clone(),
                        pending_resumes: e.resumes.keys().copied().collect(),
                    })
                })
                .collect()
        })
    }

    async fn request_resume(
        &self,
        id: &ConnectionId,
        message: MessageId,
        after_seq: u64,
    ) -> Result<(), RegistryError> {
        self.with(|r| {
            if let Some(e) = r.live(id) {
                e.resumes.insert(message, after_seq);
            }
        })
    }

    async fn claim_resume(
        &self,
        id: &ConnectionId,
        message: MessageId,
    ) -> Result<Option<u64>, RegistryError> {
        self.with(|r| r.live(id).and_then(|e| e.resumes.remove(&message)))
    }
}
