//! `POST /2015-03-31/functions/{name}/invocations`: the Lambda Invoke API, emulated for the
//! event functions (`chat-turn`, `migrate`) so the real aws-sdk-lambda client can invoke them,
//! asynchronously (`Event`, 202) or waiting (`RequestResponse`, 200; a failed function answers
//! with `X-Amz-Function-Error`).

use std::sync::Arc;

use axum::extract::{Path, Request};
use axum::response::{IntoResponse, Response};
use bestchat_app::events::event_function;
use http::{StatusCode, header};
use serde_json::{Value, json};

use crate::gateway::Gateway;

/// Lambda's limit on a synchronous invocation's payload.
pub const SYNC_PAYLOAD_MAX_BYTES: usize = 6 * 1024 * 1024;
/// Lambda's limit on an asynchronous invocation's payload.
pub const ASYNC_PAYLOAD_MAX_BYTES: usize = 256 * 1024;

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::HeaderName::from_static("x-amzn-errortype"), kind),
        ],
        json!({ "Type": "User", "message": message }).to_string(),
    )
        .into_response()
}

/// The function's name from a name, a `name:qualifier` or a full ARN.
fn function_name(raw: &str) -> &str {
    match raw.strip_prefix("arn:") {
        Some(_) => raw.split(':').nth(6).unwrap_or(raw),
        None => raw.split(':').next().unwrap_or(raw),
    }
}

pub async fn invoke(gateway: Arc<Gateway>, Path(name): Path<String>, request: Request) -> Response {
    let name = function_name(&name).to_owned();
    let Some(handler) = event_function(&name) else {
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {name}"),
        );
    };
    let kind = request
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let limit = if kind == "Event" {
        ASYNC_PAYLOAD_MAX_BYTES
    } else {
        SYNC_PAYLOAD_MAX_BYTES
    };
    let Ok(body) = axum::body::to_bytes(request.into_body(), limit).await else {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            "the request payload is too large",
        );
    };
    let payload: Value = if body.is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    "the payload is not JSON",
                );
            }
        }
    };
    let state = Arc::clone(&gateway.state);
    match kind.as_str() {
        "DryRun" => StatusCode::NO_CONTENT.into_response(),
        "Event" => {
            tokio::spawn(async move {
                if let Err(e) = handler(state, payload).await {
                    tracing::error!(function = name, error = %e, error_type = e.error_type(), "asynchronous invocation failed");
                }
            });
            StatusCode::ACCEPTED.into_response()
        }
        _ => match handler(state, payload).await {
            Ok(result) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (
                        header::HeaderName::from_static("x-amz-executed-version"),
                        "$LATEST",
                    ),
                ],
                result.to_string(),
            )
                .into_response(),
            Err(e) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (
                        header::HeaderName::from_static("x-amz-function-error"),
                        "Unhandled",
                    ),
                ],
                json!({ "errorMessage": e.to_string(), "errorType": e.error_type() }).to_string(),
            )
                .into_response(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn names_from_arns_and_qualifiers() {
        assert_eq!(function_name("chat-turn"), "chat-turn");
        assert_eq!(function_name("chat-turn:$LATEST"), "chat-turn");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:chat-turn"),
            "chat-turn"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:chat-turn:7"),
            "chat-turn"
        );
    }
}
