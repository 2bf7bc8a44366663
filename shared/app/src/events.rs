//! Functions invoked with an event rather than an HTTP request (`chat-turn`, `summarize`,
//! `janitor`, `tool-executor`, `migrate`), and the
//! in-process invoker that runs them when no Lambda is configured.

use std::sync::Arc;
#[cfg(feature = "in-process")]
use std::sync::Weak;

#[cfg(feature = "in-process")]
use async_trait::async_trait;
#[cfg(feature = "in-process")]
use bestchat_domain::ports::realtime::{InvokeError, Invoker};
use serde_json::{Value, json};

use crate::api::BoxFuture;
use crate::error::AppError;
use crate::state::AppState;

/// Runs one event; the error is what the function reports as its failure (its code and error
/// type name what failed; the detail is for the log).
pub type EventHandler = fn(Arc<AppState>, Value) -> BoxFuture<Result<Value, AppError>>;

pub struct EventFunction {
    pub name: &'static str,
    pub handler: EventHandler,
}

pub const CHAT_TURN: &str = "chat-turn";
pub const SUMMARIZE: &str = "summarize";

// Each function is its own constant so a binary that runs one links only that one.
pub const CHAT_TURN_FUNCTION: EventFunction = EventFunction {
    name: CHAT_TURN,
    handler: |state, payload| Box::pin(crate::turn::handle(state, payload)),
};
pub const SUMMARIZE_FUNCTION: EventFunction = EventFunction {
    name: SUMMARIZE,
    handler: |state, payload| Box::pin(crate::summarize::handle(state, payload)),
};
pub const JANITOR_FUNCTION: EventFunction = EventFunction {
    name: crate::janitor::JANITOR,
    handler: |state, payload| Box::pin(crate::janitor::handle(state, payload)),
};

pub const EVENT_FUNCTIONS: &[EventFunction] = &[
    CHAT_TURN_FUNCTION,
    SUMMARIZE_FUNCTION,
    JANITOR_FUNCTION,
    EventFunction {
        name: crate::tools::TOOL_EXECUTOR,
        handler: |state, payload| Box::pin(crate::tools::executor::handle(state, payload)),
    },
    EventFunction {
        name: "migrate",
        handler: |state, _| Box::pin(migrate(state)),
    },
];

async fn migrate(state: Arc<AppState>) -> Result<Value, AppError> {
    let report = state.migrate().await?;
    Ok(json!({ "applied": report.applied }))
}

pub fn event_function(name: &str) -> Option<EventHandler> {
    EVENT_FUNCTIONS
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.handler)
}

/// Runs event functions on this process's runtime, as the local gateway does for Lambda. Left
/// out of the Lambda binaries (feature `in-process`): it would link every event function into
/// each of them, and a deployed function must never run another's work in its own container.
#[cfg(feature = "in-process")]
pub struct InProcessInvoker {
    state: Weak<AppState>,
}

#[cfg(feature = "in-process")]
impl InProcessInvoker {
    pub fn new(state: Weak<AppState>) -> Self {
        Self { state }
    }

    fn prepare(&self, function: &str) -> Result<(EventHandler, Arc<AppState>), InvokeError> {
        let failed = |reason: &str| InvokeError::Failed {
            function: function.to_owned(),
            reason: reason.to_owned(),
        };
        let handler = event_function(function).ok_or_else(|| failed("no such function"))?;
        let state = self
            .state
            .upgrade()
            .ok_or_else(|| failed("the application is stopping"))?;
        Ok((handler, state))
    }
}

#[cfg(feature = "in-process")]
#[async_trait]
impl Invoker for InProcessInvoker {
    async fn invoke_async(&self, function: &str, payload: &Value) -> Result<(), InvokeError> {
        let (handler, state) = self.prepare(function)?;
        let (name, payload) = (function.to_owned(), payload.clone());
        tokio::spawn(async move {
            if let Err(e) = handler(state, payload).await {
                tracing::error!(function = name, error = %e, error_type = e.error_type(), "invocation failed");
            }
        });
        Ok(())
    }

    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        let (handler, state) = self.prepare(function)?;
        handler(state, payload.clone())
            .await
            .map_err(|e| InvokeError::FunctionError {
                function: function.to_owned(),
                payload: e.to_string(),
            })
    }
}
