//! The WebSocket `$connect` authorizer (a Lambda REQUEST authorizer): the `token` query
//! parameter is checked like API Gateway checks JWTs; the answer is an IAM policy for the
//! connection with the token's subject as context, or `Unauthorized` (API Gateway's 401).

use bestchat_app::AppState;
use bestchat_app::ws::authorize;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// The refusal: its message is the one API Gateway turns into a 401.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("Unauthorized")]
pub struct Unauthorized;

pub async fn decide(state: &AppState, event: &Value) -> Result<Value, Unauthorized> {
    let token = event
        .pointer("/queryStringParameters/token")
        .and_then(Value::as_str);
    let method_arn = event
        .get("methodArn")
        .and_then(Value::as_str)
        .unwrap_or("*");
    match authorize(state, token).await {
        Ok(authorized) => Ok(json!({
            "principalId": authorized.sub,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": method_arn}],
            },
            // Context values must be strings: the groups go as a JSON array in one.
            "context": {
                "sub": authorized.sub,
                "groups": serde_json::to_string(&authorized.groups).unwrap_or_default(),
            },
        })),
        Err(reason) => {
            tracing::info!(reason = %reason, "connection refused");
            Err(Unauthorized)
        }
    }
}

/// Checks tokens only: no database, no cache, outside the VPC.
pub async fn run() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let state = AppState::for_function(bestchat_app::config::Uses::NOTHING)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = std::sync::Arc::clone(&state);
        async move { decide(&state, &event.payload).await.map_err(Error::from) }
    }))
    .await
}
