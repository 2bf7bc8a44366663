//! A WebSocket client of the BestChat API, as tests drive it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::gateway::{GatewayProcess, token};

/// Longest a test waits for one event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

pub fn ws_url(gateway: &GatewayProcess, token: &str) -> String {
    format!(
        "{}/ws?token={token}",
        gateway.base_url.replacen("http://", "ws://", 1)
    )
}

impl WsClient {
    pub async fn connect(gateway: &GatewayProcess, user: &str) -> Self {
        Self::connect_url(&ws_url(gateway, &token(user)))
            .await
            .expect("websocket connects")
    }

    pub async fn connect_url(url: &str) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let (stream, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(limits()), false).await?;
        Ok(Self { stream })
    }

    pub async fn send(&mut self, action: &Value) {
        self.stream
            .send(Message::Text(action.to_string().into()))
            .await
            .expect("send a frame");
    }

    pub async fn send_raw(
        &mut self,
        message: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.stream.send(message).await
    }

    /// The next server event, or `None` when the connection closed.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(EVENT_TIMEOUT, self.stream.next())
                .await
                .expect("an event arrives in time")?;
            match frame {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).expect("events are JSON"));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Events up to and including the first that `last` accepts.
    pub async fn until(&mut self, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let event = self
                .next()
                .await
                .unwrap_or_else(|| panic!("closed before the end; got {events:?}"));
            let done = last(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }

    /// Waits briefly for an event; `None` when nothing came.
    pub async fn maybe_next(&mut self, wait: Duration) -> Option<Value> {
        match tokio::time::timeout(wait, self.stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str(&text).ok(),
            _ => None,
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// API Gateway's limits, held to on the client side too: a frame over 32 KB or a message over
/// 128 KB from the server ends the connection, so a test sees it as a missing event.
fn limits() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_frame_size(Some(WS_FRAME_MAX_BYTES))
        .max_message_size(Some(WS_MESSAGE_MAX_BYTES))
}

/// API Gateway's WebSocket frame and message limits.
pub const WS_FRAME_MAX_BYTES: usize = 32 * 1024;
pub const WS_MESSAGE_MAX_BYTES: usize = 128 * 1024;

impl WsClient {
    /// Every event that arrives within `window`.
    pub async fn events_for(&mut self, window: Duration) -> Vec<Value> {
        let end = tokio::time::Instant::now() + window;
        let mut events = Vec::new();
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(end, self.stream.next()).await {
            if let Message::Text(text) = frame {
                events.push(serde_json::from_str(&text).expect("events are JSON"));
            }
        }
        events
    }
}

/// Every `message.completed` for `message`.
pub fn completed(message: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["type"] == "message.completed" && e["message_id"] == message
}

/// The text of the `message.delta` events, in order, and their seqs.
pub fn deltas(events: &[Value]) -> (String, Vec<u64>) {
    let mut text = String::new();
    let mut seqs = Vec::new();
    for e in events.iter().filter(|e| e["type"] == "message.delta") {
        text.push_str(e["text"].as_str().unwrap_or_default());
        seqs.push(e["seq"].as_u64().unwrap_or_default());
    }
    (text, seqs)
}
