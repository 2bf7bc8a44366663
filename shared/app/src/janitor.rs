//! The `janitor` function, run on a schedule: answers whose turn died (the function crashed, ran
//! out of memory or time, or its invocation was lost) are ended with what was streamed of them,
//! recovered from the resume buffer, and announced, so no client waits forever and nothing that
//! reached a screen is lost. Evidence, not age: an answer is ended only once its turn's lease
//! lapsed, and only if it still has, in the same write.

use std::sync::Arc;

use bestchat_domain::ErrorCode;
use bestchat_domain::ids::MessageId;
use bestchat_domain::message::{FinishReason, Message, MessageError, MessageStatus};
use bestchat_domain::ports::realtime::StreamBuffer;
use bestchat_domain::ports::store::{Finisher, TurnStore};
use bestchat_domain::text::replace_nul_owned;
use bestchat_domain::time::{Timestamp, now};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::message_tokens;
use bestchat_domain::wire::ServerEvent;

use crate::turn::{announce_end, completed_event};

pub const JANITOR: &str = "janitor";

/// Answers read per query.
pub const JANITOR_BATCH: u32 = 200;
/// Queries per run; what is left waits for the next run, so a run ends within its timeout.
pub const JANITOR_MAX_BATCHES: u32 = 25;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Answers this run ended.
    pub ended: u32,
    /// Answers that could not be written; the next run tries them again.
    pub failed: u32,
}

pub async fn handle(state: Arc<AppState>, _payload: Value) -> Result<Value, AppError> {
    let swept = run(&state).await?;
    if swept.ended > 0 || swept.failed > 0 {
        tracing::warn!(
            ended = swept.ended,
            failed = swept.failed,
            "ended answers whose turn died"
        );
    }
    Ok(json!({ "ended": swept.ended, "failed": swept.failed }))
}

pub async fn run(state: &AppState) -> Result<Swept, AppError> {
    let ended = sweep(state.store(), state.stream_buffer.as_ref(), now()).await?;
    let swept = Swept {
        ended: u32::try_from(ended.ended.len()).unwrap_or(u32::MAX),
        failed: ended.failed,
    };
    for last in ended.ended {
        announce(state, last).await;
    }
    Ok(swept)
}

/// The answers a sweep ended, to be announced, and how many it could not.
pub struct Ended {
    pub ended: Vec<Message>,
    pub failed: u32,
}

/// Ends every answer whose lease lapsed before `at`. One answer that cannot be written is
/// logged and skipped (later queries skip past it), and never stops the work on the others.
pub async fn sweep(
    store: &dyn TurnStore,
    buffer: &dyn StreamBuffer,
    at: Timestamp,
) -> Result<Ended, AppError> {
    let mut out = Ended {
        ended: Vec::new(),
        failed: 0,
    };
    for _ in 0..JANITOR_MAX_BATCHES {
        let lapsed = store.lapsed_turns(at, out.failed, JANITOR_BATCH).await?;
        let last_batch = lapsed.len() < JANITOR_BATCH as usize;
        for message in lapsed {
            match end(store, buffer, message, at).await {
                Ok(Some(last)) => out.ended.push(last),
                // Its turn finished it, or another janitor ended it, meanwhile.
                Ok(None) => {}
                Err(_) => out.failed += 1,
            }
        }
        if last_batch {
            break;
        }
    }
    Ok(out)
}

/// Ends one answer with what was streamed; when even that cannot be stored, as an error with
/// nothing, so the row cannot block the sweep. `None` when someone else ended it first.
async fn end(
    store: &dyn TurnStore,
    buffer: &dyn StreamBuffer,
    message: Message,
    at: Timestamp,
) -> Result<Option<Message>, AppError> {
    let id = message.id;
    let text = streamed_text(buffer, id).await;
    let recovered = ended_message(message.clone(), text);
    match store
        .finish_turn(&recovered, None, Finisher::Lapsed(at))
        .await
    {
        Ok(true) => return Ok(Some(recovered)),
        Ok(false) => return Ok(None),
        Err(e) => {
            tracing::error!(message = %id, error = %e, "cannot store the recovered answer; ending it empty");
        }
    }
    let empty = ended_message(message, String::new());
    match store.finish_turn(&empty, None, Finisher::Lapsed(at)).await {
        Ok(true) => Ok(Some(empty)),
        Ok(false) => Ok(None),
        Err(e) => {
            tracing::error!(message = %id, error = %e, "cannot end the answer; the next run tries again");
            Err(e.into())
        }
    }
}

/// The text deltas the turn had sent, in order, from the resume buffer.
async fn streamed_text(buffer: &dyn StreamBuffer, message: MessageId) -> String {
    let frames = match buffer.read_after(message, 0).await {
        Ok(frames) => frames,
        Err(e) => {
            tracing::warn!(error = %e, %message, "cannot read the resume buffer");
            return String::new();
        }
    };
    let mut text: String = frames
        .iter()
        .filter_map(|(_, frame)| serde_json::from_str::<Value>(frame).ok())
        .filter(|f| f["type"] == "message.delta" && f.get("channel").is_none_or(|c| c == "text"))
        .filter_map(|f| f["text"].as_str().map(str::to_owned))
        .collect();
    replace_nul_owned(&mut text);
    text
}

fn ended_message(message: Message, text: String) -> Message {
    let (status, finish_reason, error) = if text.is_empty() {
        (
            MessageStatus::Error,
            Some(FinishReason::Error),
            MessageError {
                code: ErrorCode::TurnLost,
                message: "the answer stopped before anything arrived; send the message again"
                    .into(),
            },
        )
    } else {
        (
            MessageStatus::Incomplete,
            None,
            MessageError::of(ErrorCode::TurnLost),
        )
    };
    let model = message.model.as_ref().map_or("", |m| m.as_str()).to_owned();
    Message {
        token_count: message_tokens(&model, &text, &[]),
        content: text,
        status,
        finish_reason,
        error: Some(error),
        updated_at: now(),
        ..message
    }
}

async fn announce(state: &AppState, last: Message) {
    let mut events = Vec::new();
    if let Some(e) = &last.error {
        events.push(ServerEvent::MessageError {
            conversation_id: Some(last.conversation_id),
            message_id: Some(last.id),
            code: e.code,
            message: e.message.clone(),
            request_id: None,
        });
    }
    events.push(completed_event(last.clone()));
    announce_end(state, &last, &events).await;
}
