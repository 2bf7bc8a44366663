//! CloudFormation custom resources (`migrate-resource`, `web-publish`): run the work for
//! `Create` and `Update`, nothing for `Delete`, and always answer CloudFormation's response URL,
//! before the function's own deadline — a function that ends without answering leaves the
//! stack waiting (until the resource's `ServiceTimeout`). Both run outside the VPC, so the
//! answer goes out whatever a deletion or rollback has already taken down inside it.

use std::future::Future;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};

/// The functions a deploy runs (their binaries): the custom resources, and the migration that
/// `migrate-resource` starts inside the VPC.
pub const FUNCTIONS: &[&str] = &["migrate", "migrate-resource", "web-publish"];

/// Longest answer CloudFormation accepts.
pub const MAX_RESPONSE_BYTES: usize = 4096;
/// How long the answer to CloudFormation may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);
/// Kept back from the function's deadline besides the answer's own time.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// How long the work may take so that the answer still goes out before `deadline` (the
/// invocation's, from its context).
pub fn budget_until(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(RESPONSE_TIMEOUT + DEADLINE_MARGIN)
}

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

/// CloudFormation could not be told the outcome (the stack then waits for its
/// `ServiceTimeout`): the invocation's own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("cannot answer CloudFormation: {0}")]
    Unsent(String),
    #[error("CloudFormation's response URL answered {0}")]
    Refused(u16),
}

/// Why a custom resource function could not serve its event.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("not a CloudFormation request: {0}")]
    NotARequest(serde_json::Error),
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

/// What the work came to: data for `Fn::GetAtt`, or the reason the stack event shows.
enum Outcome {
    Done(Value),
    Failed(String),
}

/// Runs `work` for Create and Update (Delete keeps what exists and touches nothing: a schema or
/// a published site is never removed by a stack operation) and answers CloudFormation. Work
/// that takes longer than `budget` is answered as failed, in time. `work`'s error becomes the
/// stack event's reason, so it must name what failed without secrets.
pub async fn handle<W, F, E>(request: Request, budget: Duration, work: W) -> Result<(), AnswerError>
where
    W: FnOnce(RequestType, Value) -> F,
    F: Future<Output = Result<Value, E>>,
    E: std::fmt::Display,
{
    let outcome = match request.request_type {
        RequestType::Delete => Outcome::Done(Value::Null),
        kind => match tokio::time::timeout(budget, work(kind, request.resource_properties.clone()))
            .await
        {
            Ok(Ok(data)) => Outcome::Done(data),
            Ok(Err(reason)) => Outcome::Failed(reason.to_string()),
            Err(_) => Outcome::Failed(format!(
                "did not finish within {} s; see the function's log",
                budget.as_secs()
            )),
        },
    };
    if let Outcome::Failed(reason) = &outcome {
        tracing::error!(
            reason,
            logical = request.logical_resource_id,
            "custom resource failed"
        );
    }
    answer(&request, outcome).await
}

fn response_body(request: &Request, outcome: Outcome) -> Value {
    // The same physical id on every update: a new one would make CloudFormation delete the old.
    let physical = request
        .physical_resource_id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", request.logical_resource_id, request.stack_id));
    let (status, reason, data) = match outcome {
        Outcome::Done(data) => ("SUCCESS", "done".to_owned(), data),
        Outcome::Failed(reason) => (
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

async fn answer(request: &Request, outcome: Outcome) -> Result<(), AnswerError> {
    let body = response_body(request, outcome).to_string();
    let client = reqwest::Client::builder()
        .timeout(RESPONSE_TIMEOUT)
        .build()
        .map_err(|e| AnswerError::Client(e.to_string()))?;
    // The URL is presigned without a content type; sending one would break its signature.
    let response = client
        .put(&request.response_url)
        .body(body)
        .send()
        .await
        .map_err(|e| AnswerError::Unsent(e.to_string()))?;
    if !response.status().is_success() {
        return Err(AnswerError::Refused(response.status().as_u16()));
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
