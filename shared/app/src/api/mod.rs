//! The HTTP operations. Each is one Lambda function; [`HTTP_FUNCTIONS`] names them as
//! `infra/template.yaml` does, so the local gateway can serve every route in-process.

pub mod conversations;
pub mod health;
pub mod mcp_servers;
pub mod messages;
pub mod openapi;
pub mod provider_configs;
pub mod providers;
pub mod settings;
pub mod tool_executions;
pub mod tools;

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

/// A function of the template: its binary name (`BuildProperties.Binary`) and handler.
pub struct HttpFunction {
    pub name: &'static str,
    pub handler: Handler,
}

pub const HTTP_FUNCTIONS: &[HttpFunction] = &[
    HttpFunction {
        name: "health",
        handler: health::GET,
    },
    HttpFunction {
        name: "openapi",
        handler: openapi::GET,
    },
    HttpFunction {
        name: "conversations-create",
        handler: conversations::CREATE,
    },
    HttpFunction {
        name: "conversations-list",
        handler: conversations::LIST,
    },
    HttpFunction {
        name: "conversations-get",
        handler: conversations::GET,
    },
    HttpFunction {
        name: "conversations-update",
        handler: conversations::UPDATE,
    },
    HttpFunction {
        name: "conversations-delete",
        handler: conversations::DELETE,
    },
    HttpFunction {
        name: "messages-list",
        handler: messages::LIST,
    },
    HttpFunction {
        name: "messages-get",
        handler: messages::GET,
    },
    HttpFunction {
        name: "messages-send",
        handler: messages::SEND,
    },
    HttpFunction {
        name: "messages-retry",
        handler: messages::RETRY,
    },
    HttpFunction {
        name: "providers-list",
        handler: providers::LIST_PROVIDERS,
    },
    HttpFunction {
        name: "models-list",
        handler: providers::LIST_MODELS,
    },
    HttpFunction {
        name: "provider-configs-list",
        handler: provider_configs::LIST,
    },
    HttpFunction {
        name: "provider-configs-put",
        handler: provider_configs::PUT,
    },
    HttpFunction {
        name: "provider-configs-delete",
        handler: provider_configs::DELETE,
    },
    HttpFunction {
        name: "settings-auto-approval-get",
        handler: settings::GET_AUTO_APPROVAL,
    },
    HttpFunction {
        name: "settings-auto-approval-put",
        handler: settings::PUT_AUTO_APPROVAL,
    },
    HttpFunction {
        name: "settings-fetch-hosts-get",
        handler: settings::GET_FETCH_HOSTS,
    },
    HttpFunction {
        name: "settings-fetch-hosts-put",
        handler: settings::PUT_FETCH_HOSTS,
    },
    HttpFunction {
        name: "tools-create",
        handler: tools::CREATE,
    },
    HttpFunction {
        name: "tools-list",
        handler: tools::LIST,
    },
    HttpFunction {
        name: "tools-delete",
        handler: tools::DELETE,
    },
    HttpFunction {
        name: "mcp-servers-list",
        handler: mcp_servers::LIST,
    },
    HttpFunction {
        name: "mcp-servers-put",
        handler: mcp_servers::PUT,
    },
    HttpFunction {
        name: "mcp-servers-delete",
        handler: mcp_servers::DELETE,
    },
    HttpFunction {
        name: "tool-executions-list",
        handler: tool_executions::LIST,
    },
    HttpFunction {
        name: "tool-executions-approve",
        handler: tool_executions::APPROVE,
    },
    HttpFunction {
        name: "tool-executions-deny",
        handler: tool_executions::DENY,
    },
];

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

/// The verified caller, recorded on first sight.
pub(crate) async fn caller(state: &AppState, request: &ApiRequest) -> Result<UserId, AppError> {
    let (user, subject) = request.user()?;
    state.store().ensure_user(user, &subject).await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::HTTP_FUNCTIONS;
    use std::collections::HashSet;

    #[test]
    fn function_names_are_unique() {
        let mut seen = HashSet::new();
        for f in HTTP_FUNCTIONS {
            assert!(seen.insert(f.name), "{} listed twice", f.name);
        }
    }
}
