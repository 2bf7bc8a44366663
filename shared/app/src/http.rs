//! The transport-neutral request and response the handlers speak. The Lambda glue and the local
//! gateway convert API Gateway's payload to and from these.

use std::collections::HashMap;

use bestchat_domain::ids::{Subject, UserId};
use bestchat_domain::text::decode_json;
use bestchat_domain::{DomainError, ErrorCode};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;

#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: Method,
    pub path_params: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The `sub` claim the authorizer verified; `None` on routes without auth.
    pub subject: Option<String>,
    /// Every claim the authorizer verified (the groups claim names the caller's roles).
    pub claims: HashMap<String, String>,
    pub request_id: String,
}

pub type ApiResponse = http::Response<Vec<u8>>;

impl ApiRequest {
    /// The caller, from the verified token. Handlers never take a user id from the body.
    pub fn user(&self) -> Result<(UserId, Subject), DomainError> {
        let raw = self
            .subject
            .as_deref()
            .ok_or_else(|| DomainError::unauthorized("a bearer token is required"))?;
        let subject = Subject::parse(raw)?;
        Ok((UserId::from_subject(&subject), subject))
    }

    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params.get(name).map(String::as_str)
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The body as `T`; see [`decode_json`] for how failures are classified.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, DomainError> {
        decode_json(&self.body)
    }

    /// A body that must be nothing or `{}`: anything else is refused rather than ignored.
    pub fn empty_body(&self) -> Result<(), DomainError> {
        if !self.body.is_empty() {
            self.json::<Empty>()?;
        }
        Ok(())
    }
}

/// The body of an action that takes no input: nothing, or `{}`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Result<ApiResponse, AppError> {
    let bytes =
        serde_json::to_vec(body).map_err(|e| AppError::Internal(format!("encoding: {e}")))?;
    Ok(with_json_type(http::Response::new(bytes), status))
}

pub fn no_content() -> ApiResponse {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// The API's error shape; `request_id` names the failure in the log.
/// The body of every failure: `{"error": {code, message, request_id?}}`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorDetail<'a> {
    pub code: ErrorCode,
    pub message: &'a str,
    /// Names the failure in the server's log.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub request_id: &'a str,
}

pub fn error_response(error: &DomainError, request_id: &str) -> ApiResponse {
    let body = ErrorBody {
        error: ErrorDetail {
            code: error.code,
            message: &error.message,
            request_id,
        },
    };
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    with_json_type(http::Response::new(bytes), status)
}

fn with_json_type(mut response: ApiResponse, status: StatusCode) -> ApiResponse {
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Turns a use case's result into the response, logging what the client does not see.
pub fn finish(request_id: &str, result: Result<ApiResponse, AppError>) -> ApiResponse {
    match result {
        Ok(response) => response,
        Err(e) => error_response(&e.to_public(request_id), request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_domain::ErrorCode;

    #[test]
    fn missing_subject_is_unauthorized() {
        assert_eq!(
            ApiRequest::default().user().unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn error_shape() {
        let r = error_response(&DomainError::conversation_not_found(), "req-7");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error"]["code"], "conversation_not_found");
        assert!(v["error"]["message"].is_string());
        assert_eq!(v["error"]["request_id"], "req-7");
    }
}
