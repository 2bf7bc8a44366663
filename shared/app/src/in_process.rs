//! The in-process invoker: runs event functions on this process's runtime when no Lambda is
//! configured (the local gateway, tests). Only built with the feature `in-process`, which the
//! Lambda binaries leave off: it would link every event function into each of them, and a
//! deployed function must never run another's work in its own container.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use bestchat_domain::ports::realtime::{InvokeError, Invoker};
use serde_json::Value;

use crate::config::Config;
use crate::events::{EventHandler, event_function};
use crate::state::{AppState, StartError};

impl AppState {
    /// Builds every adapter (none connects yet); with no Lambda function named, event
    /// functions run on this process.
    pub fn new(config: Config) -> Result<Arc<Self>, StartError> {
        Self::assemble(config, Some(|state| Arc::new(InProcessInvoker::new(state))))
    }
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
