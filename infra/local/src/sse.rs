//! `POST /api/conversations/{id}/messages` with `Accept: text/event-stream`: the events the
//! WebSocket API would send about this message, as server-sent events on the same request. The
//! stream is a connection of its own in the registry that resumes the answer from its first
//! frame, and ends with the answer's `message.completed`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bestchat_app::http::{ApiRequest, error_response};
use bestchat_app::routes::Operation;
use bestchat_app::serve::serve;
use bestchat_app::ws::{SSE_CONNECTION_PREFIX, open_connections, resume};
use bestchat_domain::ids::MessageId;
use bestchat_domain::ports::realtime::ConnectionId;
use bestchat_domain::time::now;
use bestchat_domain::{DomainError, ErrorCode};
use bestchat_platform::publish::Outgoing;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;
use tokio::sync::mpsc::Receiver;

use crate::gateway::{Gateway, into_axum};
use crate::template::HttpRoute;

/// Extra time an SSE stream may stay open beyond the longest turn.
const SSE_GRACE: Duration = Duration::from_secs(60);

pub fn wanted(route: &HttpRoute, headers: &HeaderMap) -> bool {
    route.function == "messages-send"
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"))
}

/// Removes the stream's connection however the stream ends.
struct Registration {
    gateway: Arc<Gateway>,
    id: ConnectionId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.gateway.hub.detach(&self.id);
        let (state, id) = (Arc::clone(&self.gateway.state), self.id.clone());
        tokio::spawn(async move {
            let _ = state.connections.remove(&id).await;
        });
    }
}

pub async fn respond(
    gateway: Arc<Gateway>,
    operation: &'static Operation,
    request: ApiRequest,
) -> Response {
    let Ok((user, _)) = request.user() else {
        return into_axum(serve(operation, Arc::clone(&gateway.state), request).await);
    };
    let state = Arc::clone(&gateway.state);
    let request_id = request.request_id.clone();
    match open_connections(&state, user).await {
        Ok((_, streams)) if streams >= state.config.realtime.max_sse_streams_per_user => {
            return into_axum(error_response(
                &DomainError::of(ErrorCode::TooManyConnections),
                &request_id,
            ));
        }
        Ok(_) => {}
        Err(e) => return into_axum(error_response(&e.to_public(&request_id), &request_id)),
    }
    let Ok(id) = ConnectionId::parse(&format!(
        "{SSE_CONNECTION_PREFIX}{}",
        uuid::Uuid::now_v7().simple()
    )) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let outgoing = gateway.hub.attach(id.clone());
    let registration = Registration {
        gateway: Arc::clone(&gateway),
        id: id.clone(),
    };
    if let Err(e) = state
        .connections
        .register(&id, user, now(), state.config.turn_max_duration + SSE_GRACE)
        .await
    {
        tracing::warn!(error = %e, "cannot register the stream");
    }
    let response = serve(operation, Arc::clone(&state), request).await;
    // The rate limit's state goes out on the stream's head as on any other answer.
    let limit_headers: Vec<(HeaderName, HeaderValue)> = ["ratelimit-policy", "ratelimit"]
        .into_iter()
        .filter_map(|name| {
            let value = response.headers().get(name)?.clone();
            Some((HeaderName::from_static(name), value))
        })
        .collect();
    let body = serde_json::from_slice::<Value>(response.body()).ok();
    let pair = body.as_ref().and_then(|v| {
        let user_message = v
            .pointer("/user_message/id")?
            .as_str()?
            .parse::<MessageId>()
            .ok()?;
        let answer = v
            .pointer("/assistant_message/id")?
            .as_str()?
            .parse::<MessageId>()
            .ok()?;
        Some((user_message, answer))
    });
    let (Some((question, answer)), Some(body)) =
        (pair.filter(|_| response.status().is_success()), body)
    else {
        return into_axum(response);
    };
    // The two messages as stored, then the answer from its first frame: a resume from seq 0 is
    // served in order by the turn, or from the buffer once it has ended.
    let created: String = ["user_message", "assistant_message"]
        .iter()
        .map(|key| {
            let event = serde_json::json!({"type": "message.created", "message": body[key]});
            format!("event: message.created\ndata: {event}\n\n")
        })
        .collect();
    if let Err(e) = resume(&state, user, &id, answer, 0).await {
        return into_axum(error_response(&e.to_public(&request_id), &request_id));
    }
    let deadline = tokio::time::Instant::now() + state.config.turn_max_duration + SSE_GRACE;
    let head = futures_util::stream::once(async move { Ok::<_, std::io::Error>(created) });
    let events = futures_util::stream::unfold(Some((outgoing, registration)), move |open| {
        events(open, [question, answer], answer, deadline)
    });
    let events = futures_util::StreamExt::chain(head, events);
    let mut streamed = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response();
    streamed.headers_mut().extend(limit_headers);
    streamed
}

type Open = Option<(Receiver<Outgoing>, Registration)>;

/// The next SSE event about `ours`, until the answer's `message.completed`.
async fn events(
    open: Open,
    ours: [MessageId; 2],
    answer: MessageId,
    deadline: tokio::time::Instant,
) -> Option<(Result<String, std::io::Error>, Open)> {
    let (mut outgoing, registration) = open?;
    loop {
        let frame = tokio::select! {
            f = outgoing.recv() => f,
            () = tokio::time::sleep_until(deadline) => None,
        };
        let Some(Outgoing::Frame(bytes)) = frame else {
            return None;
        };
        let Ok(event) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let about = event
            .get("message_id")
            .or_else(|| event.pointer("/message/id"))
            .and_then(Value::as_str)
            .and_then(|m| m.parse::<MessageId>().ok());
        if about.is_some_and(|m| !ours.contains(&m)) {
            continue;
        }
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message")
            .to_owned();
        let text = format!("event: {kind}\ndata: {event}\n\n");
        let last = kind == "message.completed" && about == Some(answer);
        let next = if last {
            None
        } else {
            Some((outgoing, registration))
        };
        return Some((Ok(text), next));
    }
}
