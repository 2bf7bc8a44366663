//! `/ws`: API Gateway's WebSocket API, emulated. The `$connect` REQUEST authorizer checks
//! `?token=`, `$connect` may refuse the connection, each text frame is routed by
//! `$request.body.action` (else `$default`), `$disconnect` runs on close, frames and messages
//! are size-limited as API Gateway limits them, and an idle connection is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bestchat_app::ws::WS_FUNCTIONS;
use bestchat_domain::ports::realtime::ConnectionId;
use bestchat_platform::aead::random_bytes;
use bestchat_platform::publish::Outgoing;
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use serde_json::{Value, json};

use crate::gateway::Gateway;

/// API Gateway's WebSocket frame limit.
pub const WS_FRAME_MAX_BYTES: usize = 32 * 1024;
/// API Gateway's WebSocket message limit (frames of one message together).
pub const WS_MESSAGE_MAX_BYTES: usize = 128 * 1024;
/// Read buffer per socket. tungstenite's default (128 KiB) would make each idle connection cost
/// that much memory; messages larger than this are still read whole.
pub const WS_READ_BUFFER_BYTES: usize = 8 * 1024;
/// Outgoing bytes buffered before a write is forced.
pub const WS_WRITE_BUFFER_BYTES: usize = 8 * 1024;
/// The stage name in the emulated events and ARNs.
const STAGE: &str = "live";

/// What `GET @connections/{id}` reports.
#[derive(Debug, Clone)]
pub struct Meta {
    pub connected_at: DateTime<Utc>,
    pub last_active: DateTime<Utc>,
    pub source_ip: String,
    pub user_agent: String,
}

#[derive(Clone, Default)]
pub struct SocketInfo(Arc<Mutex<HashMap<ConnectionId, Meta>>>);

impl SocketInfo {
    pub fn get(&self, id: &ConnectionId) -> Option<Meta> {
        self.0.lock().ok()?.get(id).cloned()
    }

    fn set(&self, id: ConnectionId, meta: Meta) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(id, meta);
        }
    }

    fn touch(&self, id: &ConnectionId) {
        if let Ok(mut map) = self.0.lock()
            && let Some(meta) = map.get_mut(id)
        {
            meta.last_active = Utc::now();
        }
    }

    fn remove(&self, id: &ConnectionId) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }
}

/// An id in API Gateway's shape (16 base64 characters).
fn new_connection_id() -> Option<ConnectionId> {
    let bytes = random_bytes::<11>().ok()?;
    ConnectionId::parse(&STANDARD.encode(bytes)).ok()
}

struct Client {
    id: ConnectionId,
    sub: String,
    /// The authorizer context's groups (a JSON array in a string).
    groups: String,
    source_ip: String,
    user_agent: String,
}

impl Client {
    /// The event API Gateway sends a WebSocket integration.
    fn event(&self, route_key: &str, event_type: &str, body: Option<&str>) -> Value {
        let request_id = uuid::Uuid::now_v7().to_string();
        json!({
            "requestContext": {
                "routeKey": route_key,
                "eventType": event_type,
                "messageDirection": "IN",
                "connectionId": self.id.as_str(),
                "requestId": request_id,
                "messageId": request_id,
                "apiId": "local",
                "stage": STAGE,
                "domainName": "localhost",
                "requestTimeEpoch": Utc::now().timestamp_millis(),
                "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
                "authorizer": {"principalId": self.sub, "sub": self.sub, "groups": self.groups, "integrationLatency": 0},
            },
            "body": body,
            "isBase64Encoded": false,
        })
    }
}

/// Runs the function behind a route; the WebSocket integration's status code.
async fn call(
    gateway: &Gateway,
    client: &Client,
    route_key: &str,
    event_type: &str,
    body: Option<&str>,
) -> u16 {
    let Some(function) = gateway.ws.function_for(route_key) else {
        return 404;
    };
    let Some(handler) = WS_FUNCTIONS
        .iter()
        .find(|f| f.name == function)
        .map(|f| f.handler)
    else {
        return 500;
    };
    match bestchat_functions::ws::ws_request(client.event(route_key, event_type, body)) {
        Some(request) => handler(std::sync::Arc::clone(&gateway.state), request).await,
        None => 400,
    }
}

pub async fn upgrade(
    gateway: Arc<Gateway>,
    peer: SocketAddr,
    query: Option<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let token = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let authorizer_event = json!({
        "type": "REQUEST",
        "methodArn": format!("arn:aws:execute-api:local:000000000000:local/{STAGE}/$connect"),
        "queryStringParameters": {"token": token},
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "apiId": "local", "stage": STAGE},
    });
    let Ok(policy) =
        bestchat_functions::authorizer::decide(&gateway.state, &authorizer_event).await
    else {
        return (
            StatusCode::UNAUTHORIZED,
            [(http::header::CONTENT_TYPE, "application/json")],
            r#"{"message":"Unauthorized"}"#,
        )
            .into_response();
    };
    let sub = policy
        .pointer("/context/sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let groups = policy
        .pointer("/context/groups")
        .and_then(Value::as_str)
        .unwrap_or("[]")
        .to_owned();
    let Some(id) = new_connection_id() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let client = Client {
        id,
        sub,
        groups,
        source_ip: peer.ip().to_string(),
        user_agent,
    };
    // The socket is attached before $connect so nothing posted right after it is lost.
    let outgoing = gateway.hub.attach(client.id.clone());
    let status = call(&gateway, &client, "$connect", "CONNECT", None).await;
    if !(200..300).contains(&status) {
        gateway.hub.detach(&client.id);
        return StatusCode::from_u16(status)
            .unwrap_or(StatusCode::FORBIDDEN)
            .into_response();
    }
    let now = Utc::now();
    gateway.sockets.set(
        client.id.clone(),
        Meta {
            connected_at: now,
            last_active: now,
            source_ip: client.source_ip.clone(),
            user_agent: client.user_agent.clone(),
        },
    );
    upgrade
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .max_frame_size(WS_FRAME_MAX_BYTES)
        .max_message_size(WS_MESSAGE_MAX_BYTES)
        .on_upgrade(move |socket| session(gateway, socket, client, outgoing))
}

/// The route a frame selects: its `action` when the template has that route, else `$default`.
fn route_for(gateway: &Gateway, body: &str) -> Option<String> {
    let action = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned));
    match action {
        Some(a) if !a.starts_with('$') && gateway.ws.function_for(&a).is_some() => Some(a),
        _ => gateway
            .ws
            .function_for("$default")
            .map(|_| "$default".to_owned()),
    }
}

async fn session(
    gateway: Arc<Gateway>,
    socket: WebSocket,
    client: Client,
    mut outgoing: tokio::sync::mpsc::Receiver<Outgoing>,
) {
    let client = Arc::new(client);
    let (mut sink, mut stream) = socket.split();
    let mut idle = Box::pin(tokio::time::sleep(gateway.ws_idle_timeout));
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    // Binary frames are base64 in API Gateway's events; no route here takes them.
                    Some(Ok(Message::Binary(_))) => String::new(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                idle.as_mut().reset(tokio::time::Instant::now() + gateway.ws_idle_timeout);
                gateway.sockets.touch(&client.id);
                match route_for(&gateway, &text) {
                    Some(route) => {
                        // API Gateway invokes the integration for each message on its own.
                        let (gateway, client) = (Arc::clone(&gateway), Arc::clone(&client));
                        tokio::spawn(async move {
                            call(&gateway, &client, &route, "MESSAGE", Some(&text)).await;
                        });
                    }
                    None => {
                        let refusal = json!({"message": "Forbidden", "connectionId": client.id.as_str(), "requestId": uuid::Uuid::now_v7().to_string()});
                        if sink.send(Message::Text(refusal.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                }
            }
            out = outgoing.recv() => match out {
                Some(Outgoing::Frame(bytes)) => {
                    idle.as_mut().reset(tokio::time::Instant::now() + gateway.ws_idle_timeout);
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close) | None => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            },
            () = &mut idle => {
                let frame = CloseFrame { code: 1001, reason: "Going away".into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                break;
            }
        }
    }
    gateway.hub.detach(&client.id);
    gateway.sockets.remove(&client.id);
    call(&gateway, &client, "$disconnect", "DISCONNECT", None).await;
}
