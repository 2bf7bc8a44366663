//! The transport-neutral request and response the handlers speak. The Lambda glue and the local
//! gateway convert API Gateway's payload to and from these.

use std::collections::HashMap;

use bestchat_domain::ids::{Subject, UserId};
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

    /// Syntax errors are 400 `invalid_json`; well-formed JSON of the wrong shape is 422.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, DomainError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(DomainError::new(
                ErrorCode::InvalidJson,
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            let code = match e.classify() {
                serde_json::error::Category::Data => ErrorCode::ValidationFailed,
                _ => ErrorCode::InvalidJson,
            };
            DomainError::new(code, public_serde_message(&e))
        })
    }
}

/// serde's message without the line/column suffix, which means nothing to an API client.
fn public_serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Result<ApiResponse, AppError> {
    let bytes = serde_json::to_vec(body).map_err(|e| {
        AppError::Domain(DomainError::new(
            ErrorCode::Internal,
            format!("encoding: {e}"),
        ))
    })?;
    Ok(with_json_type(http::Response::new(bytes), status))
}

pub fn no_content() -> ApiResponse {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

pub fn error_response(error: &DomainError) -> ApiResponse {
    let body = serde_json::json!({
        "error": { "code": error.code, "message": error.message }
    });
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_json_type(http::Response::new(body.to_string().into_bytes()), status)
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
        Err(e) => error_response(&e.to_public(request_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> ApiRequest {
        ApiRequest {
            body: text.as_bytes().to_vec(),
            ..ApiRequest::default()
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        n: u32,
    }

    #[test]
    fn json_errors_are_classified() {
        assert_eq!(
            body("{").json::<Shape>().unwrap_err().code,
            ErrorCode::InvalidJson
        );
        assert_eq!(
            body("").json::<Shape>().unwrap_err().code,
            ErrorCode::InvalidJson
        );
        let wrong = body(r#"{"n":"x"}"#).json::<Shape>().unwrap_err();
        assert_eq!(wrong.code, ErrorCode::ValidationFailed);
        assert!(!wrong.message.contains("line"), "{}", wrong.message);
        assert_eq!(body(r#"{"n":1}"#).json::<Shape>().unwrap().n, 1);
    }

    #[test]
    fn missing_subject_is_unauthorized() {
        assert_eq!(
            ApiRequest::default().user().unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn error_shape() {
        let r = error_response(&DomainError::conversation_not_found());
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error"]["code"], "conversation_not_found");
        assert!(v["error"]["message"].is_string());
    }
}
