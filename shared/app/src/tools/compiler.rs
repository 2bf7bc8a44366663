//! The `tool-compiler` function: compiles a module (a user's, within the deployment's budget,
//! or a built-in) into the shared store and tags it. It is the only function whose role may
//! write compiled code and tag it; the executor, which runs guests, only reads and verifies.

use bestchat_tools::executor::CompileModule;
use serde_json::Value;
use std::sync::Arc;

use super::ToolRuntime;
use crate::error::AppError;
use crate::state::AppState;

/// The event function as the local gateway and the in-process invoker run it.
pub async fn handle(state: Arc<AppState>, payload: Value) -> Result<Value, AppError> {
    serve(state.tools()?, payload).await
}

/// One invocation: the answer says whether the code is there now, or why not.
pub async fn serve(runtime: &ToolRuntime, payload: Value) -> Result<Value, AppError> {
    let request: CompileModule =
        serde_json::from_value(payload).map_err(|e| AppError::Payload(e.to_string()))?;
    serde_json::to_value(runtime.executor.compile_to_share(&request).await)
        .map_err(|e| AppError::Internal(e.to_string()))
}
