//! The `janitor` function, run on a schedule: answers whose turn died without finishing (the
//! function crashed or ran out of memory) are ended with what was streamed of them, recovered
//! from the resume buffer, and announced, so no client waits forever and nothing that reached a
//! screen is lost.

use std::sync::Arc;
use std::time::Duration;

use bestchat_domain::ids::MessageId;
use bestchat_domain::message::{FinishReason, Message, MessageError, MessageStatus};
use bestchat_domain::time::{Timestamp, from_micros, now, to_micros};
use bestchat_domain::wire::ServerEvent;
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::message_tokens;
use crate::turn::broadcast;

pub const JANITOR: &str = "janitor";

/// Answers ended per run; the next run takes the rest.
pub const JANITOR_BATCH: u32 = 200;

pub async fn handle(state: Arc<AppState>, _payload: Value) -> Result<Value, String> {
    let ended = run(&state).await.map_err(|e| e.to_string())?;
    if ended > 0 {
        tracing::warn!(ended, "ended answers whose turn died");
    }
    Ok(json!({ "ended": ended }))
}

/// Ends every answer unfinished for longer than a turn may last plus the grace period.
pub async fn run(state: &AppState) -> Result<u32, AppError> {
    let Some(before) = cutoff(
        now(),
        state.config.turn_max_duration + state.config.janitor_grace,
    ) else {
        return Ok(0);
    };
    let stale = state
        .store()
        .unfinished_turns(before, JANITOR_BATCH)
        .await?;
    let mut ended = 0;
    for message in stale {
        let text = streamed_text(state, message.id).await;
        let last = ended_message(message, text);
        if state.store().abandon_turn(&last).await? {
            ended += 1;
            announce(state, last).await;
        }
    }
    Ok(ended)
}

fn cutoff(at: Timestamp, age: Duration) -> Option<Timestamp> {
    let age = i64::try_from(age.as_micros()).ok()?;
    from_micros(to_micros(at).checked_sub(age)?)
}

/// The text deltas the turn had sent, in order, from the resume buffer.
async fn streamed_text(state: &AppState, message: MessageId) -> String {
    let frames = match state.stream_buffer.read_after(message, 0).await {
        Ok(frames) => frames,
        Err(e) => {
            tracing::warn!(error = %e, %message, "cannot read the resume buffer");
            return String::new();
        }
    };
    frames
        .iter()
        .filter_map(|(_, frame)| serde_json::from_str::<Value>(frame).ok())
        .filter(|f| f["type"] == "message.delta" && f.get("channel").is_none_or(|c| c == "text"))
        .filter_map(|f| f["text"].as_str().map(str::to_owned))
        .collect()
}

fn ended_message(message: Message, text: String) -> Message {
    let (status, finish_reason, sentence) = if text.is_empty() {
        (
            MessageStatus::Error,
            Some(FinishReason::Error),
            "the answer stopped before anything arrived; send the message again",
        )
    } else {
        (
            MessageStatus::Incomplete,
            None,
            "the answer stopped unexpectedly; what arrived is kept",
        )
    };
    let model = message.model.as_ref().map_or("", |m| m.as_str()).to_owned();
    Message {
        token_count: message_tokens(&model, &text, &[]),
        content: text,
        status,
        finish_reason,
        error: Some(MessageError {
            code: "turn_lost".into(),
            message: sentence.into(),
        }),
        updated_at: now(),
        ..message
    }
}

async fn announce(state: &AppState, last: Message) {
    let (user, conversation) = (last.user_id, last.conversation_id);
    if let Some(e) = &last.error {
        let event = ServerEvent::MessageError {
            conversation_id: Some(conversation),
            message_id: Some(last.id),
            code: e.code.clone(),
            message: e.message.clone(),
        };
        broadcast(state, user, conversation, &event).await;
    }
    let event = ServerEvent::MessageCompleted {
        conversation_id: conversation,
        message_id: last.id,
        usage: None,
        finish_reason: last.finish_reason,
        message: last,
    };
    broadcast(state, user, conversation, &event).await;
}
