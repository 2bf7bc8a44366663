//! A client of the BestChat HTTP API, as tests drive it.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

use crate::gateway::{GatewayProcess, token};

pub struct Api<'a> {
    gateway: &'a GatewayProcess,
    client: Client,
    token: String,
}

/// Longest a test waits for one API call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl<'a> Api<'a> {
    pub fn new(gateway: &'a GatewayProcess, user: &str) -> Self {
        Self {
            gateway,
            client: Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap(),
            token: token(user),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, self.gateway.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    /// Sends `body` as it is, bytes that need not be JSON or even UTF-8; the answer's status
    /// and text.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let response = self
            .client
            .request(method, self.gateway.url(path))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(&body.to_string())).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(Method::PATCH, path, Some(&body.to_string()))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(&body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, None).await
    }
}

pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// A refusal in the API's shape: a 4xx status and `{"error": {"code", "message"}}`; never a
/// 5xx, whatever the request was.
pub fn assert_refused(status: StatusCode, text: &str, what: &str) {
    assert!(
        status.is_client_error(),
        "{what}: expected a 4xx refusal, got {status}: {text}"
    );
    let body: Value = serde_json::from_str(text)
        .unwrap_or_else(|_| panic!("{what}: the refusal is not JSON: {text}"));
    assert!(
        body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{what}: no error code: {text}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: no error message: {text}"
    );
}
