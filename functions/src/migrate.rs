//! The `migrate` function: brings the database schema up to date. Invoked on deploy; safe to run
//! any number of times and from several places at once.

use bestchat_app::AppState;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

pub async fn run() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let state = AppState::from_env()?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let state = std::sync::Arc::clone(&state);
        async move {
            let report = state.migrate().await?;
            Ok::<_, Error>(json!({ "applied": report.applied }))
        }
    }))
    .await
}
