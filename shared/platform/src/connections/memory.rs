//! In-process connection registry for the local gateway.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::ports::realtime::{
    ConnectionId, ConnectionRecord, Connections, RegistryError,
};
use bestchat_domain::time::Timestamp;

struct Entry {
    user: UserId,
    connected_at: Timestamp,
    expires: Instant,
    subscriptions: BTreeSet<ConversationId>,
    resumes: HashMap<MessageId, u64>,
}

#[derive(Default)]
pub struct MemoryConnections {
    entries: Mutex<HashMap<ConnectionId, Entry>>,
}

impl MemoryConnections {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<ConnectionId, Entry>) -> T,
    ) -> Result<T, RegistryError> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| RegistryError("connection registry lock poisoned".into()))?;
        let now = Instant::now();
        map.retain(|_, e| e.expires > now);
        Ok(f(&mut map))
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
        self.with(|map| {
            map.insert(
                id.clone(),
                Entry {
                    user,
                    connected_at: now,
                    expires: Instant::now() + ttl,
                    subscriptions: BTreeSet::new(),
                    resumes: HashMap::new(),
                },
            );
        })
    }

    async fn remove(&self, id: &ConnectionId) -> Result<(), RegistryError> {
        self.with(|map| {
            map.remove(id);
        })
    }

    async fn subscribe(
        &self,
        id: &ConnectionId,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<bool, RegistryError> {
        self.with(|map| match map.get_mut(id) {
            Some(e) if e.user == user => {
                e.subscriptions.insert(conversation);
                true
            }
            _ => false,
        })
    }

    async fn of_user(&self, user: UserId) -> Result<Vec<ConnectionRecord>, RegistryError> {
        self.with(|map| {
            let mut records: Vec<ConnectionRecord> = map
                .iter()
                .filter(|(_, e)| e.user == user)
                .map(|(id, e)| ConnectionRecord {
                    id: id.clone(),
                    user_id: e.user,
                    connected_at: e.connected_at,
                    subscriptions: e.subscriptions.clone(),
                    pending_resumes: e.resumes.keys().copied().collect(),
                })
                .collect();
            records.sort_by(|a, b| a.id.cmp(&b.id));
            records
        })
    }

    async fn request_resume(
        &self,
        id: &ConnectionId,
        message: MessageId,
        after_seq: u64,
    ) -> Result<(), RegistryError> {
        self.with(|map| {
            if let Some(e) = map.get_mut(id) {
                e.resumes.insert(message, after_seq);
            }
        })
    }

    async fn claim_resume(
        &self,
        id: &ConnectionId,
        message: MessageId,
    ) -> Result<Option<u64>, RegistryError> {
        self.with(|map| map.get_mut(id).and_then(|e| e.resumes.remove(&message)))
    }
}
