//! Functions invoked with an event rather than an HTTP request (`chat-turn`, `summarize`,
//! `janitor`, `tool-executor`, `migrate`), and the
//! in-process invoker that runs them when no Lambda is configured.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
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

pub const EVENT_FUNCTIONS: &[EventFunction] = &[
    EventFunction {
        name: CHAT_TURN,
        handler: |state, payload| Box::pin(crate::turn::handle(state, payload)),
    },
    EventFunction {
        name: SUMMARIZE,
        handler: |state, payload| Box::pin(crate::summarize::handle(state, payload)),
    },
    EventFunction {
        name: crate::janitor::JANITOR,
        handler: |state, payload| Box::pin(crate::janitor::handle(state, payload)),
    },
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

/// Runs event functions on this process's runtime, as the local gateway does for Lambda.
pub struct InProcessInvoker {
    state: Weak<AppState>,
}

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
