//! One HTTP request through its operation: the caller's rate limit for the operation's class,
//! then the handler. The Lambda binary and the local gateway both serve through here.

use std::sync::Arc;

use crate::http::{ApiRequest, ApiResponse, error_response};
use crate::rate_limit::{Limited, Refused, admit, whole_seconds};
use crate::routes::Operation;
use crate::state::AppState;

/// Runs `operation` for `request`: the caller's rate limit for the operation's class first
/// (public routes have no caller and no limit), then its handler; the limit's state goes out
/// as `RateLimit-Policy`/`RateLimit` headers either way, and a refusal carries `Retry-After`.
pub async fn serve(
    operation: &'static Operation,
    state: Arc<AppState>,
    request: ApiRequest,
) -> ApiResponse {
    let caller = request.user().ok().filter(|_| !operation.public);
    let admitted = match caller {
        None => None,
        Some((user, _)) => {
            let limited = Limited::Class(operation.class);
            match admit(
                state.cache.as_ref(),
                &state.config.rate_limits,
                user,
                limited,
            )
            .await
            {
                Ok(admitted) => admitted,
                Err(refused) => return refusal(&refused, &request.request_id),
            }
        }
    };
    let mut response = (operation.handler)(state, request).await;
    if let Some(admitted) = admitted {
        with_headers(&mut response, &admitted.headers());
    }
    response
}

fn refusal(refused: &Refused, request_id: &str) -> ApiResponse {
    let mut response = error_response(&refused.error(), request_id);
    if let Refused::Limited(admitted) = refused {
        with_headers(&mut response, &admitted.headers());
    }
    if let Some(wait) = refused.retry_after() {
        with_headers(
            &mut response,
            &[("Retry-After", whole_seconds(wait).max(1).to_string())],
        );
    }
    response
}

fn with_headers(response: &mut ApiResponse, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
}
