//! WebSocket API functions: API Gateway's WebSocket event (the REST-style proxy format with the
//! connection id and the authorizer's context) to the app's `WsRequest`, and the status back.

use bestchat_app::AppState;
use bestchat_app::config::Uses;
use bestchat_app::ws::{WsHandler, WsRequest};
use bestchat_domain::ports::realtime::ConnectionId;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    request_context: Context,
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Context {
    route_key: String,
    connection_id: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    authorizer: Option<Authorizer>,
}

/// API Gateway puts the authorizer's context keys next to its `principalId`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Authorizer {
    sub: Option<String>,
    principal_id: Option<String>,
    /// A JSON array, as the authorizer put it in its context.
    groups: Option<String>,
}

/// The request as the handlers see it; `None` for an event that is not a WebSocket event.
pub fn ws_request(event: Value) -> Option<WsRequest> {
    let event: Event = serde_json::from_value(event).ok()?;
    let ctx = event.request_context;
    let authorizer = ctx.authorizer;
    let groups = authorizer
        .as_ref()
        .and_then(|a| a.groups.as_deref())
        .map(bestchat_app::roles::parse_groups)
        .unwrap_or_default();
    // Binary frames are not part of the API: a base64 body is not an action.
    let body = event.body.filter(|_| !event.is_base64_encoded);
    Some(WsRequest {
        route_key: ctx.route_key,
        connection_id: ConnectionId::parse(&ctx.connection_id).ok()?,
        subject: authorizer.and_then(|a| a.sub.or(a.principal_id)),
        groups,
        body,
        request_id: ctx.request_id.unwrap_or_default(),
    })
}

/// What API Gateway expects back from a WebSocket integration.
pub fn ws_response(status: u16) -> Value {
    json!({ "statusCode": status })
}

/// Runs one WebSocket route's function with the adapters `uses` names.
pub async fn run(handler: WsHandler, uses: Uses) -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let state = AppState::for_function(uses)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = std::sync::Arc::clone(&state);
        async move {
            let status = match ws_request(event.payload) {
                Some(request) => handler(state, request).await,
                None => 400,
            };
            Ok::<_, Error>(ws_response(status))
        }
    }))
    .await
}
