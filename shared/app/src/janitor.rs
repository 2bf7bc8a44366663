//! The `janitor` function, run on a schedule: answers whose turn died (the function crashed, ran
//! out of memory or time, or its invocation was lost) are ended with what was streamed of them,
//! recovered from the resume buffer, and announced, so no client waits forever and nothing that
//! reached a screen is lost. Evidence, not age: an answer is ended only once its turn's lease
//! lapsed, and only if it still has, in the same write. Tool calls nobody decided in time are
//! ended as denied by timeout, and lost runs as interrupted (`decisions::sweep_overdue`).

use std::sync::Arc;

use bestchat_domain::ErrorCode;
use bestchat_domain::ids::MessageId;
use bestchat_domain::message::{FinishReason, Message, MessageError, MessageStatus};
use bestchat_domain::ports::realtime::StreamBuffer;
use bestchat_domain::ports::store::{Finisher, StepRecords, TurnStore};
use bestchat_domain::text::replace_nul_owned;
use bestchat_domain::time::{Timestamp, now};
use serde_json::Value;

use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::message_tokens;
use bestchat_domain::wire::ServerEvent;

use crate::turn::completed_event;

pub const JANITOR: &str = "janitor";

/// Answers read per query.
pub const JANITOR_BATCH: u32 = 200;
/// Queries per run; what is left waits for the next run, so a run ends within its timeout.
pub const JANITOR_MAX_BATCHES: u32 = 25;

/// Tool steps whose lost continuation one run makes at most.
pub const STALLED_STEPS_BATCH: u32 = 100;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Answers this run ended.
    pub ended: u32,
    /// Answers that could not be written; the next run tries them again.
    pub failed: u32,
    pub tool_calls_expired: u32,
    pub tool_calls_interrupted: u32,
    pub tool_calls_restarted: u32,
    /// Tool steps whose loop this run went on with (their continuation was lost).
    pub steps_continued: u32,
    /// Tool modules (and compiled code) no tool uses any more, removed from storage.
    pub modules_removed: u32,
    /// Uploads never completed, forgotten.
    pub uploads_expired: u32,
    /// Stored file bytes no file refers to any more, removed.
    pub file_blobs_removed: u32,
}

/// The scheduled function.
pub async fn handle(state: Arc<AppState>, _payload: Value) -> Result<Value, AppError> {
    let report = run(&state).await?;
    serde_json::to_value(report).map_err(|e| AppError::Internal(e.to_string()))
}

/// Everything one janitor run does, in one place for the scheduled function and the local
/// gateway alike: dead turns' answers ended, overdue tool calls ended or restarted, lost loop
/// continuations made, and modules no tool uses removed.
pub async fn run(state: &AppState) -> Result<Report, AppError> {
    let ended = sweep(state.store(), state.stream_buffer.as_ref(), now()).await?;
    let mut report = Report {
        ended: u32::try_from(ended.ended.len()).unwrap_or(u32::MAX),
        failed: ended.failed,
        ..Report::default()
    };
    for last in ended.ended {
        announce(state, last).await;
    }
    let overdue = crate::decisions::sweep_overdue(&state.decision_ports()).await?;
    report.tool_calls_expired = overdue.expired;
    report.tool_calls_interrupted = overdue.interrupted;
    report.tool_calls_restarted = overdue.restarted;
    report.steps_continued = continue_stalled(state).await?;
    // Storage waits for the next run when it cannot be reached; the turns above could not.
    let (blobs, tools) = (state.blobs().as_ref(), &state.config.tools);
    report.modules_removed = crate::tools::sweep::unused_modules(blobs, state.store(), tools)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot sweep unused tool modules");
            0
        });
    (report.uploads_expired, report.file_blobs_removed) = crate::files::sweep::files(
        state.store(),
        blobs,
        state.cache.as_ref(),
        &state.config.files,
    )
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot sweep files");
        (0, 0)
    });
    if report != Report::default() {
        tracing::warn!(?report, "the janitor ended or continued what died");
    }
    Ok(report)
}

/// Makes the next step of each loop whose continuation was lost, and starts its turn.
async fn continue_stalled(state: &AppState) -> Result<u32, AppError> {
    let mut continued = 0u32;
    for step in state
        .store()
        .stalled_steps(now(), STALLED_STEPS_BATCH)
        .await?
    {
        let Some(job) = crate::turn::round::next_step(&state.step_ports(), &step)
            .await?
            .then()
        else {
            continue;
        };
        continued = continued.saturating_add(1);
        let payload = serde_json::to_value(&job).unwrap_or_default();
        // If this start is lost too, the new step's own claim deadline ends it.
        if let Err(e) = state
            .invoker
            .invoke_async(crate::jobs::CHAT_TURN, &payload)
            .await
        {
            tracing::error!(message = %job.message_id, error = %e, "cannot start a continued step");
        }
    }
    Ok(continued)
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
        .finish_turn(
            &recovered,
            None,
            Finisher::Lapsed(at),
            &StepRecords::default(),
        )
        .await
    {
        Ok(true) => return Ok(Some(recovered)),
        Ok(false) => return Ok(None),
        Err(e) => {
            tracing::error!(message = %id, error = %e, "cannot store the recovered answer; ending it empty");
        }
    }
    let empty = ended_message(message, String::new());
    match store
        .finish_turn(&empty, None, Finisher::Lapsed(at), &StepRecords::default())
        .await
    {
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
                message: "the answer stopped before anything arrived; retry it".into(),
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
            retry_after_ms: None,
        });
    }
    events.push(completed_event(last.clone()));
    (state.devices())
        .announce_end(state.stream_buffer.as_ref(), &last, &events)
        .await;
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use bestchat_cache::{BufferSettings, FileStreamBuffer};
    use bestchat_domain::ids::{ConversationId, UserId};
    use bestchat_domain::ports::store::{LeaseId, StoreError, TurnStart};
    use bestchat_domain::usage::UsageLog;

    use super::*;
    use crate::testing;

    /// The janitor's narrow port, in memory: lapsed answers, and ids whose write fails.
    #[derive(Default)]
    struct Lapsed {
        unfinished: Mutex<Vec<Message>>,
        /// Writes of these always fail; of `fails_with_text`, only those that carry text.
        broken: HashSet<MessageId>,
        fails_with_text: HashSet<MessageId>,
        skips: Mutex<Vec<u32>>,
    }

    fn unused() -> StoreError {
        StoreError::Internal("not part of the janitor's port".into())
    }

    #[async_trait]
    impl TurnStore for Lapsed {
        async fn start_turn(
            &self,
            _: &Message,
            _: &Message,
            _: Timestamp,
        ) -> Result<TurnStart, StoreError> {
            Err(unused())
        }
        async fn retry_turn(
            &self,
            _: UserId,
            _: MessageId,
            _: Timestamp,
            _: Timestamp,
        ) -> Result<Option<Message>, StoreError> {
            Err(unused())
        }
        async fn stalled_steps(&self, _: Timestamp, _: u32) -> Result<Vec<Message>, StoreError> {
            Err(unused())
        }
        async fn claim_turn(
            &self,
            _: UserId,
            _: MessageId,
            _: LeaseId,
            _: Timestamp,
            _: Timestamp,
        ) -> Result<bool, StoreError> {
            Err(unused())
        }
        async fn renew_lease(
            &self,
            _: MessageId,
            _: LeaseId,
            _: Timestamp,
        ) -> Result<bool, StoreError> {
            Err(unused())
        }
        async fn get_message(
            &self,
            _: UserId,
            _: MessageId,
        ) -> Result<Option<Message>, StoreError> {
            Err(unused())
        }
        async fn lapsed_turns(
            &self,
            _: Timestamp,
            skip: u32,
            limit: u32,
        ) -> Result<Vec<Message>, StoreError> {
            self.skips.lock().unwrap().push(skip);
            let all = self.unfinished.lock().unwrap();
            Ok(all
                .iter()
                .skip(skip as usize)
                .take(limit as usize)
                .cloned()
                .collect())
        }
        async fn finish_turn(
            &self,
            message: &Message,
            _: Option<&UsageLog>,
            by: Finisher,
            _: &StepRecords<'_>,
        ) -> Result<bool, StoreError> {
            assert!(
                matches!(by, Finisher::Lapsed(_)),
                "the janitor only ever takes lapsed answers"
            );
            if self.broken.contains(&message.id)
                || (self.fails_with_text.contains(&message.id) && !message.content.is_empty())
            {
                return Err(StoreError::Internal("22021 invalid byte sequence".into()));
            }
            let mut all = self.unfinished.lock().unwrap();
            let before = all.len();
            all.retain(|m| m.id != message.id);
            Ok(all.len() < before)
        }
    }

    fn streaming() -> Message {
        testing::assistant(
            UserId::generate(),
            ConversationId::generate(),
            MessageStatus::Streaming,
        )
    }

    fn buffer() -> FileStreamBuffer {
        let dir = std::env::temp_dir().join(format!("bestchat-frames-{}", uuid::Uuid::now_v7()));
        FileStreamBuffer::new(dir, BufferSettings::default())
    }

    #[tokio::test]
    async fn lapsed_answers_end_with_what_was_streamed() {
        let (streamed, silent) = (streaming(), streaming());
        let store = Lapsed {
            unfinished: Mutex::new(vec![streamed.clone(), silent.clone()]),
            ..Lapsed::default()
        };
        let frames = buffer();
        for (seq, frame) in [
            r#"{"type":"message.delta","seq":1,"text":"Hel"}"#,
            r#"{"type":"message.delta","seq":2,"text":"thinking","channel":"reasoning"}"#,
            r#"{"type":"message.delta","seq":3,"text":"lo"}"#,
        ]
        .into_iter()
        .enumerate()
        {
            frames
                .append(streamed.id, seq as u64 + 1, frame)
                .await
                .unwrap();
        }
        let ended = sweep(&store, &frames, now()).await.unwrap();
        assert_eq!(ended.failed, 0);
        let by_id = |id| ended.ended.iter().find(|m| m.id == id).unwrap();
        let first = by_id(streamed.id);
        assert_eq!(first.content, "Hello", "text deltas only, in order");
        assert_eq!(first.status, MessageStatus::Incomplete);
        assert_eq!(first.error.as_ref().unwrap().code, ErrorCode::TurnLost);
        let second = by_id(silent.id);
        assert_eq!(second.status, MessageStatus::Error);
        assert_eq!(second.content, "");
        assert!(store.unfinished.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_answer_that_cannot_be_written_never_stops_the_others() {
        let answers: Vec<Message> = (0..(JANITOR_BATCH as usize + 50))
            .map(|_| streaming())
            .collect();
        let poisoned = answers[0].id;
        let store = Lapsed {
            unfinished: Mutex::new(answers.clone()),
            broken: HashSet::from([poisoned]),
            ..Lapsed::default()
        };
        let ended = sweep(&store, &buffer(), now()).await.unwrap();
        assert_eq!(ended.failed, 1);
        assert_eq!(
            ended.ended.len(),
            answers.len() - 1,
            "every other answer ended"
        );
        let left: Vec<MessageId> = store
            .unfinished
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(
            left,
            vec![poisoned],
            "the broken one waits for the next run"
        );
        assert!(
            store.skips.lock().unwrap().iter().skip(1).all(|&s| s == 1),
            "later reads skip past it"
        );
    }

    #[tokio::test]
    async fn an_answer_whose_text_cannot_be_stored_ends_empty() {
        let answer = streaming();
        let store = Lapsed {
            unfinished: Mutex::new(vec![answer.clone()]),
            fails_with_text: HashSet::from([answer.id]),
            ..Lapsed::default()
        };
        let frames = buffer();
        frames
            .append(
                answer.id,
                1,
                r#"{"type":"message.delta","seq":1,"text":"partial"}"#,
            )
            .await
            .unwrap();
        let ended = sweep(&store, &frames, now()).await.unwrap();
        assert_eq!(ended.failed, 0);
        assert_eq!(ended.ended[0].status, MessageStatus::Error);
        assert_eq!(ended.ended[0].content, "");
    }
}
