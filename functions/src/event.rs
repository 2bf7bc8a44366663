//! Functions invoked with a JSON event (`chat-turn`, `migrate`).

use bestchat_app::AppState;
use bestchat_app::events::EventHandler;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

pub async fn run(handler: EventHandler) -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let state = AppState::from_env()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = std::sync::Arc::clone(&state);
        // A returned error is reported to Lambda as the function's error.
        async move { handler(state, event.payload).await.map_err(Error::from) }
    }))
    .await
}
