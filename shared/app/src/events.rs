//! Functions invoked with an event rather than an HTTP request (`chat-turn`, `summarize`,
//! `janitor`, `tool-executor`, `tool-compiler`, `migrate`).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::BoxFuture;
use crate::error::AppError;
use crate::jobs::{CHAT_TURN, SUMMARIZE};
use crate::state::AppState;

/// Runs one event; the error is what the function reports as its failure (its code and error
/// type name what failed; the detail is for the log).
pub type EventHandler = fn(Arc<AppState>, Value) -> BoxFuture<Result<Value, AppError>>;

pub struct EventFunction {
    pub name: &'static str,
    pub handler: EventHandler,
}

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

pub const FILES_PROCESS_FUNCTION: EventFunction = EventFunction {
    name: crate::files::FILES_PROCESS,
    handler: |state, payload| Box::pin(crate::files::process::handle(state, payload)),
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
        name: crate::tools::TOOL_COMPILER,
        handler: |state, payload| Box::pin(crate::tools::compiler::handle(state, payload)),
    },
    FILES_PROCESS_FUNCTION,
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
