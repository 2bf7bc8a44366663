//! The HTTP side of the emulator: routes from the template, JWT checks, the payload v2 event,
//! and the in-process call to the function's handler.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, RawQuery, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, any, get, post};
use bestchat_app::AppState;
use bestchat_app::auth::{AuthError, DEV_TOKEN_TTL, JwtVerifier, dev_subject};
use bestchat_app::http::{ApiRequest, ApiResponse, error_response};
use bestchat_app::routes::{Operation, operation};
use bestchat_app::serve::serve;
use bestchat_domain::{DomainError, ErrorCode};
use bestchat_platform::emulator::{EMULATOR_SECRET_HEADER, secret_matches};
use bestchat_platform::publish::ConnectionHub;
use http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::LambdaRequest;

use crate::config::EmulatorSecret;
use crate::event::{EventContext, http_api_v2};
use crate::sockets::SocketInfo;
use crate::template::{HttpRoute, WsApi};

/// API Gateway HTTP APIs refuse request bodies over 10 MB before any function runs.
pub const API_GATEWAY_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Largest body `POST /dev/token` reads.
const DEV_TOKEN_MAX_BODY_BYTES: usize = 4096;

pub struct Gateway {
    pub state: Arc<AppState>,
    /// The local sockets behind `/ws`; the `@connections` endpoint posts into it.
    pub hub: ConnectionHub,
    pub ws: WsApi,
    /// `BESTCHAT_WS_IDLE_TIMEOUT_MS`.
    pub ws_idle_timeout: Duration,
    pub sockets: SocketInfo,
}

impl Gateway {
    pub fn auth(&self) -> Result<&JwtVerifier, DomainError> {
        self.state
            .auth
            .as_ref()
            .ok_or_else(|| DomainError::new(ErrorCode::Internal, "no token keys are configured"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("template route {0} names function {1}, which has no handler")]
    NoHandler(String, String),
    #[error("template route {0} has an unsupported method")]
    Method(String),
}

pub struct RouteTarget {
    pub route: HttpRoute,
    pub operation: &'static Operation,
}

/// The HTTP routes of the template, `/ws`, `/dev/token` when `dev_auth`, and the AWS emulation
/// when `emulator` names the secret its callers must show.
pub fn router(
    gateway: Arc<Gateway>,
    routes: &[HttpRoute],
    dev_auth: bool,
    emulator: Option<EmulatorSecret>,
) -> Result<Router, RouterError> {
    let mut by_path: BTreeMap<&str, MethodRouter> = BTreeMap::new();
    for route in routes {
        let operation = operation(&route.function)
            .ok_or_else(|| RouterError::NoHandler(route.route_key(), route.function.clone()))?;
        let filter = Method::from_bytes(route.method.as_bytes())
            .ok()
            .and_then(|m| MethodFilter::try_from(m).ok())
            .ok_or_else(|| RouterError::Method(route.route_key()))?;
        let target = Arc::new(RouteTarget {
            route: route.clone(),
            operation,
        });
        let gateway = Arc::clone(&gateway);
        let endpoint =
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                  params: Result<Path<HashMap<String, String>>, PathRejection>,
                  request: Request| { invoke(gateway, target, peer, params, request) };
        let methods = by_path.remove(route.path.as_str()).unwrap_or_default();
        by_path.insert(&route.path, methods.on(filter, endpoint));
    }
    let mut app = Router::new();
    for (path, methods) in by_path {
        // API Gateway answers a known path with an unknown method as it does an unknown path.
        app = app.route(path, methods.fallback(not_found));
    }
    if dev_auth {
        let g = Arc::clone(&gateway);
        app = app.route(
            "/dev/token",
            post(move |request: Request| dev_token(g, request)),
        );
    }
    let ws = Arc::clone(&gateway);
    app = app.route(
        "/ws",
        get(
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                  RawQuery(query): RawQuery,
                  headers: http::HeaderMap,
                  upgrade: WebSocketUpgrade| {
                crate::sockets::upgrade(ws, peer, query, headers, upgrade)
            },
        ),
    );
    if let Some(secret) = emulator {
        let management = Arc::clone(&gateway);
        let lambda = Arc::clone(&gateway);
        let emulation = Router::new()
            .route(
                "/@connections/{id}",
                any(move |params: Path<String>, request: Request| {
                    crate::management::connection(management, params, request)
                }),
            )
            .route(
                "/2015-03-31/functions/{name}/invocations",
                post(move |params: Path<String>, request: Request| {
                    crate::lambda_api::invoke(lambda, params, request)
                }),
            )
            .layer(middleware::from_fn(move |request: Request, next: Next| {
                own_process_only(secret.clone(), request, next)
            }));
        app = app.merge(emulation);
    }
    Ok(app
        .fallback(not_found)
        .layer(middleware::from_fn(log_request)))
}

async fn invoke(
    gateway: Arc<Gateway>,
    target: Arc<RouteTarget>,
    peer: SocketAddr,
    params: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
) -> Response {
    let request_id = uuid::Uuid::now_v7().to_string();
    let streaming = crate::sse::wanted(&target.route, request.headers());
    let response = match prepare(&gateway, &target, peer, params, request, &request_id).await {
        Ok(api_request) if streaming => {
            crate::sse::respond(Arc::clone(&gateway), target.operation, api_request).await
        }
        Ok(api_request) => {
            into_axum(serve(target.operation, Arc::clone(&gateway.state), api_request).await)
        }
        Err(e) => into_axum(error_response(&e, &request_id)),
    };
    with_request_id(response, &request_id)
}

/// Checks the token like the JWT authorizer, then builds the payload v2 event and decodes it
/// exactly as lambda_http does in Lambda.
async fn prepare(
    gateway: &Gateway,
    target: &RouteTarget,
    peer: SocketAddr,
    params: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
    request_id: &str,
) -> Result<ApiRequest, DomainError> {
    let Path(path_params) = params.map_err(|_| route_not_found())?;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, API_GATEWAY_MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            DomainError::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body exceeds {API_GATEWAY_MAX_BODY_BYTES} bytes"),
            )
        })?;
    let claims = if target.route.requires_auth {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        Some(gateway.auth()?.verify(authorization).await.map_err(|e| {
            tracing::debug!(request_id, error = %e, "token refused");
            DomainError::unauthorized(match e {
                AuthError::Missing => "a bearer token is required",
                _ => "the bearer token is invalid or expired",
            })
        })?)
    } else {
        None
    };
    let event = http_api_v2(
        &parts,
        &body,
        &EventContext {
            route: &target.route,
            path_params: &path_params,
            claims,
            request_id,
            peer,
            now: chrono::Utc::now(),
        },
    );
    let lambda_request: LambdaRequest = serde_json::from_value(event).map_err(|e| {
        tracing::error!(request_id, error = %e, "event does not decode");
        DomainError::new(ErrorCode::Internal, "the gateway built an invalid event")
    })?;
    Ok(bestchat_functions::http::api_request(http::Request::from(
        lambda_request,
    )))
}

fn route_not_found() -> DomainError {
    DomainError::of(ErrorCode::RouteNotFound)
}

async fn not_found() -> Response {
    let request_id = uuid::Uuid::now_v7().to_string();
    let response = into_axum(error_response(&route_not_found(), &request_id));
    with_request_id(response, &request_id)
}

pub fn into_axum(response: ApiResponse) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from(body))
}

/// API Gateway tags every response with its request id.
fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    response
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenRequest {
    user: String,
}

async fn dev_token(gateway: Arc<Gateway>, request: Request) -> Response {
    let result = async {
        let body = axum::body::to_bytes(request.into_body(), DEV_TOKEN_MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                DomainError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
            })?;
        let body: DevTokenRequest = serde_json::from_slice(&body).map_err(|_| {
            DomainError::new(ErrorCode::InvalidJson, r#"expected {"user": "<name>"}"#)
        })?;
        let (subject, user_id) = dev_subject(&body.user).ok_or_else(|| {
            DomainError::validation("user must be 1 to 64 letters, digits, '-', '_', '.' or '@'")
        })?;
        let token = gateway
            .auth()?
            .mint(&subject, chrono::Utc::now().timestamp(), DEV_TOKEN_TTL)
            .map_err(|_| DomainError::new(ErrorCode::Internal, "cannot sign the token"))?;
        Ok::<_, DomainError>(serde_json::json!({ "token": token, "user_id": user_id }))
    }
    .await;
    match result {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response(),
        Err(e) => into_axum(error_response(&e, "")),
    }
}

/// The AWS emulation answers only this process's own SDK clients, which send the secret made
/// at start; anyone else gets what AWS answers an unsigned request.
async fn own_process_only(secret: EmulatorSecret, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(EMULATOR_SECRET_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if secret_matches(presented, secret.0.as_bytes()) {
        return next.run(request).await;
    }
    tracing::warn!(path = %request.uri().path(), "AWS emulation refused a caller without the secret");
    (
        StatusCode::FORBIDDEN,
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::HeaderName::from_static("x-amzn-errortype"),
                "AccessDeniedException",
            ),
        ],
        r#"{"message":"Forbidden"}"#,
    )
        .into_response()
}

/// One line per request: method, path, status, latency.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        "{method} {path} {} {:.1}ms",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}
