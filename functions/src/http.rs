//! HTTP API functions: API Gateway's payload v2, as lambda_http decodes it, to and from the
//! app's transport-neutral request and response.

use std::sync::Arc;

use bestchat_app::AppState;
use bestchat_app::http::{ApiRequest, ApiResponse};
use bestchat_app::routes;
use bestchat_app::serve::serve;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, service_fn};

/// The variable that names a function's operation in the route table: every HTTP function
/// deploys the same binary, and this selects its handler.
pub const OPERATION_VARIABLE: &str = "BESTCHAT_OPERATION";

/// Runs the HTTP function `BESTCHAT_OPERATION` names: adapters are built once per cold start
/// for what the operation reaches, then every event goes to its handler.
pub async fn run() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let name = std::env::var(OPERATION_VARIABLE).unwrap_or_default();
    let operation = routes::operation(&name).ok_or_else(|| {
        format!("{OPERATION_VARIABLE}={name:?} names no operation of the route table")
    })?;
    let state = AppState::for_function(operation.reaches)?;
    lambda_http::run(service_fn(move |event: Request| {
        let state = Arc::clone(&state);
        async move {
            Ok::<_, Error>(lambda_response(
                serve(operation, state, api_request(event)).await,
            ))
        }
    }))
    .await
}

/// The request as the handlers see it. The subject comes only from the claims API Gateway's
/// JWT authorizer verified, never from headers or the body.
pub fn api_request(event: Request) -> ApiRequest {
    let (claims, request_id) = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => (
            ctx.authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| jwt.claims.clone())
                .unwrap_or_default(),
            ctx.request_id.clone().unwrap_or_default(),
        ),
        _ => (std::collections::HashMap::new(), String::new()),
    };
    let subject = claims.get("sub").cloned();
    let path_params = event
        .path_parameters_ref()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    // A repeated query parameter counts once: the first value wins.
    let mut query = std::collections::HashMap::new();
    if let Some(m) = event.query_string_parameters_ref() {
        for (k, v) in m.iter() {
            query.entry(k.to_owned()).or_insert_with(|| v.to_owned());
        }
    }
    let (parts, body) = event.into_parts();
    ApiRequest {
        method: parts.method,
        path_params,
        query,
        headers: parts.headers,
        body: match body {
            Body::Empty => Vec::new(),
            Body::Text(text) => text.into_bytes(),
            Body::Binary(bytes) => bytes,
            _ => Vec::new(),
        },
        subject,
        claims,
        request_id,
    }
}

/// JSON bodies go back as text so API Gateway does not need to decode base64.
pub fn lambda_response(response: ApiResponse) -> lambda_http::Response<Body> {
    let (parts, bytes) = response.into_parts();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    lambda_http::Response::from_parts(parts, body)
}
