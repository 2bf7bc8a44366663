//! `@connections/{id}`: API Gateway's Management API, emulated for the local sockets, so the
//! real aws-sdk-apigatewaymanagement client can post to them. Gone connections answer 410
//! (`GoneException`).

use std::sync::Arc;

use axum::extract::{Path, Request};
use axum::response::{IntoResponse, Response};
use bestchat_domain::ports::realtime::{ConnectionId, PublishError, Publisher};
use http::{Method, StatusCode, header};
use serde_json::json;

use crate::gateway::Gateway;
use crate::sockets::WS_MESSAGE_MAX_BYTES;

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::HeaderName::from_static("x-amzn-errortype"), kind),
        ],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn gone() -> Response {
    aws_error(StatusCode::GONE, "GoneException", "the connection is gone")
}

pub async fn connection(
    gateway: Arc<Gateway>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let Ok(id) = ConnectionId::parse(&id) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "Invalid connectionId",
        );
    };
    match *request.method() {
        Method::POST => {
            let Ok(body) = axum::body::to_bytes(request.into_body(), WS_MESSAGE_MAX_BYTES).await
            else {
                return aws_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PayloadTooLargeException",
                    "the message exceeds 128 KB",
                );
            };
            match gateway.hub.post(&id, &body).await {
                Ok(()) => StatusCode::OK.into_response(),
                Err(PublishError::Gone) => gone(),
                Err(PublishError::Failed(e)) => aws_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerErrorException",
                    &e,
                ),
            }
        }
        Method::GET => match gateway.sockets.get(&id) {
            Some(meta) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                json!({
                    "connectedAt": meta.connected_at.to_rfc3339(),
                    "lastActiveAt": meta.last_active.to_rfc3339(),
                    "identity": {"sourceIp": meta.source_ip, "userAgent": meta.user_agent},
                })
                .to_string(),
            )
                .into_response(),
            None => gone(),
        },
        Method::DELETE => {
            if gateway.hub.close(&id).await {
                StatusCode::NO_CONTENT.into_response()
            } else {
                gone()
            }
        }
        _ => aws_error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            "no such operation",
        ),
    }
}
