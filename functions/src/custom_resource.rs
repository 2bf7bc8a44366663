//! CloudFormation custom resources (`migrate`, `web-publish`): run the work for `Create` and
//! `Update`, nothing for `Delete`, and always answer CloudFormation's response URL — a function
//! that fails without answering leaves the stack waiting for an hour.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// The functions that serve CloudFormation custom resources (their binaries).
pub const FUNCTIONS: &[&str] = &["migrate", "web-publish"];

/// Longest answer CloudFormation accepts.
pub const MAX_RESPONSE_BYTES: usize = 4096;
/// How long the answer to CloudFormation may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);

/// The fields of a custom resource request that the answer echoes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_properties: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// Whether `event` is a CloudFormation request rather than a direct invocation.
pub fn is_request(event: &Value) -> bool {
    event.get("RequestType").is_some() && event.get("ResponseURL").is_some()
}

/// Runs `work` for Create and Update (Delete keeps what exists: a schema or a published site is
/// never removed by a stack operation) and answers CloudFormation. `work`'s error becomes the
/// stack event's reason, so it must name what failed without secrets.
pub async fn handle<W, F>(request: Request, work: W) -> Result<(), String>
where
    W: FnOnce(RequestType, Value) -> F,
    F: Future<Output = Result<Value, String>>,
{
    let outcome = match request.request_type {
        RequestType::Delete => Ok(Value::Null),
        kind => work(kind, request.resource_properties.clone()).await,
    };
    if let Err(reason) = &outcome {
        tracing::error!(
            reason,
            logical = request.logical_resource_id,
            "custom resource failed"
        );
    }
    answer(&request, outcome).await
}

fn response_body(request: &Request, outcome: Result<Value, String>) -> Value {
    // The same physical id on every update: a new one would make CloudFormation delete the old.
    let physical = request
        .physical_resource_id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", request.logical_resource_id, request.stack_id));
    let (status, reason, data) = match outcome {
        Ok(data) => ("SUCCESS", "done".to_owned(), data),
        Err(reason) => (
            "FAILED",
            truncate(&reason, MAX_RESPONSE_BYTES / 2),
            Value::Null,
        ),
    };
    let mut body = json!({
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical,
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
    });
    if data.is_object() {
        body["Data"] = data;
    }
    body
}

async fn answer(request: &Request, outcome: Result<Value, String>) -> Result<(), String> {
    let body = response_body(request, outcome).to_string();
    let client = reqwest::Client::builder()
        .timeout(RESPONSE_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    // The URL is presigned without a content type; sending one would break its signature.
    let response = client
        .put(&request.response_url)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot answer CloudFormation: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "CloudFormation's response URL answered {}",
            response.status()
        ));
    }
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
