//! One assistant turn: claim the pending answer under a lease, build the request, stream it from
//! the provider through the failover chain to every subscribed connection, and store the result
//! with its usage, if the lease is still ours. An answer that asks for tools is one step of a
//! loop: its calls are decided and stored with it (`calls`), the approved ones run (`round`),
//! and the next step is a new answer, streamed the same way, until an answer without calls, a
//! call that waits for the user (the invocation ends; the last decision starts a new one), or
//! the step limit.

pub(crate) mod calls;
pub(crate) mod chain;
mod context;
mod fanout;
mod finish;
pub(crate) mod frames;
pub(crate) mod history;
pub(crate) mod job;
mod lease;
pub(crate) mod ports;
pub(crate) mod round;
mod step;
mod stream;

use std::sync::Arc;

use serde_json::{Value, json};

pub use frames::encode_event;
pub use job::{CANCEL_TTL, StepOutcome, TurnJob, cancel_key, completed_event};
use step::run;

use crate::error::AppError;
use crate::state::AppState;

/// The `chat-turn` function.
pub async fn handle(state: Arc<AppState>, payload: Value) -> Result<Value, AppError> {
    let job: TurnJob = serde_json::from_value(payload)
        .map_err(|e| AppError::Payload(format!("chat-turn: {e}")))?;
    let mut steps = Vec::new();
    let mut next = Some(job);
    // The steps this invocation runs share one deadline, so the chain ends (its last answer
    // `incomplete`, honestly) before the function's own timeout could kill it mid-write.
    let deadline = tokio::time::Instant::now() + state.config.turn_max_duration;
    // Bounded: each step's answer is a new message, and the step limit ends the chain.
    while let Some(job) = next.take() {
        let outcome = if job.continue_tools {
            round::advance(&state.step_ports(), &job).await?
        } else {
            run(&state.turn_ports(), &job, deadline).await?
        };
        steps.push(outcome.name());
        next = outcome.then();
    }
    Ok(json!({ "outcome": steps.last().copied().unwrap_or_default(), "steps": steps }))
}
