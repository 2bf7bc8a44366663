//! The local gateway's live WebSocket connections, in process: each has a queue its socket
//! drains. It is the embedded publisher, and what the gateway's `@connections` endpoint serves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bestchat_domain::ports::realtime::{ConnectionId, PublishError, Publisher};
use tokio::sync::mpsc;

/// Frames queued for one socket before a publisher waits: a slow client slows only its own
/// stream.
pub const HUB_QUEUE_FRAMES: usize = 1024;

/// What a socket receives.
#[derive(Debug)]
pub enum Outgoing {
    Frame(Vec<u8>),
    /// Close the socket (`DELETE @connections/{id}`).
    Close,
}

#[derive(Clone, Default)]
pub struct ConnectionHub {
    sockets: Arc<Mutex<HashMap<ConnectionId, mpsc::Sender<Outgoing>>>>,
}

impl ConnectionHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a socket; the receiver yields what is posted to it.
    pub fn attach(&self, id: ConnectionId) -> mpsc::Receiver<Outgoing> {
        let (tx, rx) = mpsc::channel(HUB_QUEUE_FRAMES);
        if let Ok(mut map) = self.sockets.lock() {
            map.insert(id, tx);
        }
        rx
    }

    pub fn detach(&self, id: &ConnectionId) {
        if let Ok(mut map) = self.sockets.lock() {
            map.remove(id);
        }
    }

    pub fn is_connected(&self, id: &ConnectionId) -> bool {
        self.sockets.lock().is_ok_and(|m| m.contains_key(id))
    }

    fn sender(&self, id: &ConnectionId) -> Option<mpsc::Sender<Outgoing>> {
        self.sockets.lock().ok()?.get(id).cloned()
    }

    /// Asks the socket to close; `false` when it is not connected.
    pub async fn close(&self, id: &ConnectionId) -> bool {
        match self.sender(id) {
            Some(tx) => tx.send(Outgoing::Close).await.is_ok(),
            None => false,
        }
    }
}

#[async_trait]
impl Publisher for ConnectionHub {
    async fn post(&self, id: &ConnectionId, frame: &[u8]) -> Result<(), PublishError> {
        let tx = self.sender(id).ok_or(PublishError::Gone)?;
        tx.send(Outgoing::Frame(frame.to_vec()))
            .await
            .map_err(|_| PublishError::Gone)
    }
}
