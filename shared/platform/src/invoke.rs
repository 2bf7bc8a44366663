//! Invoking another Lambda function through aws-sdk-lambda, asynchronously (`Event`) or waiting
//! for its answer (`RequestResponse`); a function that reports an error is an error here.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use bestchat_domain::ports::realtime::{InvokeError, Invoker};
use tokio::sync::OnceCell;

use crate::emulator::with_secret;

pub struct LambdaInvoker {
    /// Logical function name (`chat-turn`) to deployed name or ARN.
    functions: HashMap<String, String>,
    client: OnceCell<aws_sdk_lambda::Client>,
    /// Proves to the local gateway's emulation that this process is its own; unset in AWS.
    emulator_secret: Option<String>,
}

impl LambdaInvoker {
    pub fn new(functions: HashMap<String, String>, emulator_secret: Option<String>) -> Self {
        Self {
            functions,
            client: OnceCell::new(),
            emulator_secret,
        }
    }

    pub fn with_client(
        functions: HashMap<String, String>,
        client: aws_sdk_lambda::Client,
        emulator_secret: Option<String>,
    ) -> Self {
        Self {
            functions,
            client: OnceCell::new_with(Some(client)),
            emulator_secret,
        }
    }

    async fn client(&self) -> &aws_sdk_lambda::Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                aws_sdk_lambda::Client::new(&config)
            })
            .await
    }

    async fn call(
        &self,
        function: &str,
        payload: &serde_json::Value,
        kind: InvocationType,
    ) -> Result<Option<Vec<u8>>, InvokeError> {
        let failed = |reason: String| InvokeError::Failed {
            function: function.to_owned(),
            reason,
        };
        let name = self
            .functions
            .get(function)
            .ok_or_else(|| failed("no deployed function is configured for it".into()))?;
        let body = serde_json::to_vec(payload).map_err(|e| failed(e.to_string()))?;
        let out = self
            .client()
            .await
            .invoke()
            .function_name(name)
            .invocation_type(kind)
            .payload(Blob::new(body))
            .customize()
            .mutate_request(with_secret(self.emulator_secret.clone()))
            .send()
            .await
            .map_err(|e| failed(format!("{e:?}")))?;
        let payload = out.payload.map(Blob::into_inner);
        if out.function_error.is_some() {
            return Err(InvokeError::FunctionError {
                function: function.to_owned(),
                payload: String::from_utf8_lossy(&payload.unwrap_or_default()).into_owned(),
            });
        }
        Ok(payload)
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke_async(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<(), InvokeError> {
        self.call(function, payload, InvocationType::Event)
            .await
            .map(|_| ())
    }

    async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, InvokeError> {
        let body = self
            .call(function, payload, InvocationType::RequestResponse)
            .await?;
        serde_json::from_slice(&body.unwrap_or_default()).map_err(|e| InvokeError::Failed {
            function: function.to_owned(),
            reason: format!("the answer is not JSON: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deployed function only invokes what its environment names; nothing runs in its place.
    #[tokio::test]
    async fn a_function_not_configured_is_refused_without_a_call() {
        let invoker = LambdaInvoker::new(
            HashMap::from([("chat-turn".to_owned(), "stack-ChatTurn".to_owned())]),
            None,
        );
        let payload = serde_json::json!({});
        for result in [
            invoker.invoke_async("summarize", &payload).await,
            invoker.invoke("tool-executor", &payload).await.map(|_| ()),
        ] {
            match result {
                Err(InvokeError::Failed { reason, .. }) => {
                    assert!(reason.contains("no deployed function"), "{reason}")
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    }
}
