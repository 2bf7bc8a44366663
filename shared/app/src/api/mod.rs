//! The HTTP operations. Each is one Lambda function; the route table
//! ([`crate::routes::OPERATIONS`]) declares each once, with its handler, so the local gateway
//! can serve every route in-process.

pub mod admin;
pub mod billing;
pub mod budget;
pub mod conversations;
pub mod files;
pub mod health;
pub mod mcp_servers;
pub mod messages;
pub mod provider_configs;
pub mod providers;
pub mod settings;
pub mod tool_executions;
pub mod tools;
pub mod usage;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bestchat_domain::ids::UserId;
use bestchat_domain::{DomainError, ErrorCode};

use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, error_response};
use crate::state::AppState;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One operation: the same function pointer runs in its Lambda binary and in the local gateway.
pub type Handler = fn(Arc<AppState>, ApiRequest) -> BoxFuture<ApiResponse>;

/// Wraps a use case `async fn(&AppState, ApiRequest) -> Result<ApiResponse, AppError>` into a
/// [`Handler`] that enforces the request-size limit and renders errors in the API's shape.
macro_rules! handler {
    ($operation:path) => {
        $crate::api::handler!($operation, $crate::api::general_body_limit)
    };
    ($operation:path, $limit:path) => {
        |state: std::sync::Arc<$crate::state::AppState>, request: $crate::http::ApiRequest| {
            Box::pin(async move {
                $crate::api::guarded(&state, request, $limit(&state), $operation).await
            }) as $crate::api::BoxFuture<$crate::http::ApiResponse>
        }
    };
}
pub(crate) use handler;

/// `BESTCHAT_MAX_REQUEST_BYTES`, for every route that does not name its own limit.
pub(crate) fn general_body_limit(state: &AppState) -> usize {
    state.config.max_request_bytes
}

pub(crate) async fn guarded<'a, F, Fut>(
    state: &'a AppState,
    request: ApiRequest,
    limit: usize,
    operation: F,
) -> ApiResponse
where
    F: FnOnce(&'a AppState, ApiRequest) -> Fut,
    Fut: Future<Output = Result<ApiResponse, AppError>>,
{
    let request_id = request.request_id.clone();
    if request.body.len() > limit {
        let refusal = DomainError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body exceeds {limit} bytes"),
        );
        return error_response(&refusal, &request_id);
    }
    crate::http::finish(&request_id, operation(state, request).await)
}

/// The verified caller, recorded on first sight with the roles their token names.
pub(crate) async fn caller(state: &AppState, request: &ApiRequest) -> Result<UserId, AppError> {
    Ok(caller_with_roles(state, request).await?.0)
}

/// The caller and their roles.
pub(crate) async fn caller_with_roles(
    state: &AppState,
    request: &ApiRequest,
) -> Result<(UserId, Vec<String>), AppError> {
    let (user, subject) = request.user()?;
    let access = &state.config.access;
    let groups = request
        .claims
        .get(&access.roles_claim)
        .map(|raw| crate::roles::parse_groups(raw))
        .unwrap_or_default();
    let roles = access.roles_of(subject.as_str(), &groups);
    state.store().ensure_user(user, &subject, &roles).await?;
    Ok((user, roles))
}

/// The caller, who must be an admin (403 otherwise).
pub(crate) async fn admin(state: &AppState, request: &ApiRequest) -> Result<UserId, AppError> {
    let (user, roles) = caller_with_roles(state, request).await?;
    crate::roles::require_admin(&roles)?;
    Ok(user)
}
