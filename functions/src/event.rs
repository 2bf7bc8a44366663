//! Functions invoked with a JSON event (`chat-turn`, `summarize`, `janitor`, `tool-executor`,
//! `migrate`).

use bestchat_app::config::Uses;
use bestchat_app::events::EventHandler;
use bestchat_app::tools::ToolRuntime;
use bestchat_app::{AppError, AppState, Config};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;

pub async fn run(handler: EventHandler) -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let state = AppState::from_env()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = std::sync::Arc::clone(&state);
        // A returned error is reported to Lambda as the function's error, typed.
        async move { handler(state, event.payload).await.map_err(diagnostic) }
    }))
    .await
}

/// `main` of the tool functions (`tool-executor`, `tool-compiler`): in a compile child it
/// compiles a user's module and exits (see the tools' sandbox); otherwise it serves.
pub fn tools_main(serve: ToolsHandler) -> Result<(), Error> {
    bestchat_tools::sandbox::serve_compile_child();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run_tools(serve))
}

/// The tool functions need no database, cache or keys, so they build only the tool runtime.
async fn run_tools(serve: ToolsHandler) -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env_for(Uses::NOTHING)?;
    let runtime = std::sync::Arc::new(ToolRuntime::new(
        &config.tools,
        bestchat_app::tools::blob_store(&config.tools.blobs),
    )?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let runtime = std::sync::Arc::clone(&runtime);
        async move { serve(&runtime, event.payload).await.map_err(diagnostic) }
    }))
    .await
}

/// `tool-executor`'s or `tool-compiler`'s `serve`.
pub type ToolsHandler = for<'a> fn(
    &'a ToolRuntime,
    Value,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Value, AppError>> + Send + 'a>,
>;

/// What Lambda records of a failed invocation: the error's type name (what failed, for alarms
/// and failure destinations) and its detail (this is the operator's log, not a client).
pub fn diagnostic(error: AppError) -> Diagnostic {
    tracing::error!(error = %error, error_type = error.error_type(), "invocation failed");
    Diagnostic {
        error_type: error.error_type().to_owned(),
        error_message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_domain::ports::store::StoreError;

    #[test]
    fn failures_become_typed_diagnostics() {
        let d = diagnostic(AppError::Store(StoreError::Unavailable(
            "pool timed out".into(),
        )));
        assert_eq!(d.error_type, "BestChat.StoreUnavailable");
        assert!(d.error_message.contains("pool timed out"));
        let d = diagnostic(AppError::Payload("missing field message_id".into()));
        assert_eq!(d.error_type, "BestChat.InvalidPayload");
    }
}
