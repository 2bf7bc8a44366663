//! The `tool-executor` function: one call in, its result or typed failure out; or a user's
//! module to prepare for registration (compiling belongs here alone). It needs no database,
//! cache or keys: only the blob store (modules read, compiled code written).

use bestchat_tools::ExecutorRequest;
use serde_json::Value;
use std::sync::Arc;

use super::ToolRuntime;
use crate::error::AppError;
use crate::state::AppState;

/// The event function as the local gateway and the in-process invoker run it.
pub async fn handle(state: Arc<AppState>, payload: Value) -> Result<Value, AppError> {
    serve(state.tools()?, payload).await
}

/// One invocation. A call that fails is an answer (`status: failed`); only a payload that is
/// not a request is the function's error.
pub async fn serve(runtime: &ToolRuntime, payload: Value) -> Result<Value, AppError> {
    let request: ExecutorRequest =
        serde_json::from_value(payload).map_err(|e| AppError::Payload(e.to_string()))?;
    let answer = match request {
        ExecutorRequest::Run(call) => serde_json::to_value(runtime.executor.execute(call).await),
        ExecutorRequest::Prepare { prepare } => {
            serde_json::to_value(runtime.executor.prepare(&prepare).await)
        }
    };
    answer.map_err(|e| AppError::Internal(e.to_string()))
}
