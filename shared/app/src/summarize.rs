//! The `summarize` function: writes the running summary of a long conversation with a cheap
//! model, off the path of any answer. The span is summarized in chunks that fit the summary
//! model's window, each folded into the summary so far; the result is stored with the range it
//! covers (extending the previous summary), cached, and announced.

use std::time::{Duration, Instant};

use bestchat_context::tokens::{Encoding, MESSAGE_OVERHEAD_TOKENS};
use bestchat_context::{Limits, SummarizeSpan};
use bestchat_domain::context::{ContextOptimization, Strategy};
use bestchat_domain::conversation::Conversation;
use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::message::MessageStatus;
use bestchat_domain::model_ref::ModelRef;
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::ports::store::ContextStore;
use bestchat_domain::time::{after, now};
use bestchat_domain::usage::UsageLog;
use bestchat_domain::wire::ServerEvent;
use bestchat_providers::failover::Failover;
use bestchat_providers::{ChatMessage, ChatRequest, StreamEvent, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::budget::{Hold, worst_case};
use crate::config::ContextConfig;
use crate::error::AppError;
use crate::models::user_providers;
use crate::state::AppState;
use crate::turn::chain::{Call, Candidate, resolve};
use crate::turn::history;

/// What `summarize` is invoked with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummarizeJob {
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    /// The answer whose planning asked for the summary; its usage is accounted to it.
    pub message_id: MessageId,
    pub span: SummarizeSpan,
}

/// Held while a summary is written, so a conversation gets one writer at a time.
pub fn lock_key(conversation: ConversationId) -> String {
    format!("ctx:summarizing:{conversation}")
}

fn summary_key(conversation: ConversationId) -> String {
    format!("ctx:summary:{conversation}")
}

/// Longer than any summary takes; a crashed writer's lock expires after it.
pub const SUMMARIZE_LOCK_TTL: Duration = Duration::from_secs(15 * 60);

const INSTRUCTIONS: &str = "You maintain the running summary of a conversation between a user and an AI assistant. \
Keep every fact, decision, name, number, file, code identifier, instruction and open question that later turns may need; \
drop pleasantries and repetition. Write compact notes in the conversation's language. Reply with the summary only.";

/// Summaries should be faithful, not creative.
const SUMMARY_TEMPERATURE: f64 = 0.2;

/// Tokens of the framing around the summary so far and the transcript.
const FRAMING_TOKENS: u32 = 64;

/// The newest stored summary of the conversation, cached.
pub async fn latest(
    store: &dyn ContextStore,
    cache: &dyn Cache,
    settings: &ContextConfig,
    conversation: &Conversation,
) -> Result<Option<ContextOptimization>, AppError> {
    let key = summary_key(conversation.id);
    if let Ok(Some(bytes)) = cache.get(&key).await
        && let Ok(summary) = serde_json::from_slice::<Option<ContextOptimization>>(&bytes)
    {
        return Ok(summary);
    }
    let summary = store
        .latest_summary(conversation.user_id, conversation.id)
        .await?;
    remember(cache, settings, conversation.id, summary.as_ref()).await;
    Ok(summary)
}

async fn remember(
    cache: &dyn Cache,
    settings: &ContextConfig,
    conversation: ConversationId,
    summary: Option<&ContextOptimization>,
) {
    let Ok(bytes) = serde_json::to_vec(&summary) else {
        return;
    };
    if let Err(e) = cache
        .set(&summary_key(conversation), &bytes, settings.cache_ttl)
        .await
    {
        tracing::warn!(error = %e, "cannot cache the summary");
    }
}

pub async fn handle(state: std::sync::Arc<AppState>, payload: Value) -> Result<Value, AppError> {
    let job: SummarizeJob = serde_json::from_value(payload)
        .map_err(|e| AppError::Payload(format!("summarize: {e}")))?;
    let lock = lock_key(job.conversation_id);
    if !state
        .cache
        .set_if_absent(&lock, b"1", SUMMARIZE_LOCK_TTL)
        .await?
    {
        return Ok(json!({ "outcome": "busy" }));
    }
    let outcome = run(&state, &job).await;
    if let Err(e) = state.cache.delete(&lock).await {
        tracing::warn!(error = %e, "cannot release the summary lock; it expires on its own");
    }
    let outcome = outcome?;
    tracing::info!(conversation = %job.conversation_id, outcome, "summarize finished");
    Ok(json!({ "outcome": outcome }))
}

async fn run(state: &AppState, job: &SummarizeJob) -> Result<&'static str, AppError> {
    let Some(conversation) = state
        .store()
        .get_conversation(job.user_id, job.conversation_id)
        .await?
    else {
        return Ok("conversation_gone");
    };
    let Some(answer) = state
        .store()
        .get_message(job.user_id, job.message_id)
        .await?
    else {
        return Ok("message_gone");
    };
    let history =
        history::load(state.store(), &state.config.context, &conversation, &answer).await?;
    let sendable = history::sendable(&history);
    let position = |id: MessageId| sendable.iter().position(|s| s.message.id == id);
    let (Some(from), Some(through)) = (position(job.span.from), position(job.span.through)) else {
        return Ok("stale");
    };
    let previous = if job.span.extends_summary {
        let previous = state
            .store()
            .latest_summary(job.user_id, job.conversation_id)
            .await?;
        // Only a summary ending right before the span is extended; anything else means another
        // writer moved on.
        match previous {
            Some(p) if from > 0 && p.range_end == Some(sendable[from - 1].message.id) => Some(p),
            _ => return Ok("stale"),
        }
    } else {
        None
    };
    let Some(model) = summary_model(state, &conversation).await else {
        return Ok("no_model");
    };
    let encoding = Encoding::for_model(model.target.model.as_str());
    let (window, output) = model.window_and_output();
    let output = state.config.context.summary_max_tokens.min(output);
    let budget = Limits {
        window,
        reserved_output: output,
    }
    .budget(&state.config.context.settings);
    let mut summary = previous.as_ref().and_then(|p| p.summary.clone());
    let mut usage = Vec::new();
    let span = &sendable[from..=through];
    let mut next = 0;
    while next < span.len() {
        let fixed = encoding.count(INSTRUCTIONS)
            + summary.as_deref().map_or(0, |s| encoding.count(s))
            + FRAMING_TOKENS;
        let Some(room) = budget.checked_sub(fixed).filter(|r| *r > 0) else {
            tracing::warn!(model = %model.target.model, "the summary model's window is too small");
            return Ok("window_too_small");
        };
        let (transcript, taken) = transcript(&span[next..], room, encoding);
        next += taken;
        let request = ChatRequest {
            system: Some(INSTRUCTIONS.to_owned()),
            messages: vec![ChatMessage::user(match &summary {
                Some(s) => format!(
                    "The summary so far:\n{s}\n\nThe conversation that follows it:\n\n{transcript}"
                ),
                None => format!("The conversation:\n\n{transcript}"),
            })],
            tools: Vec::new(),
            temperature: Some(SUMMARY_TEMPERATURE),
            max_output_tokens: Some(output),
            stop: Vec::new(),
        };
        // A summary spends the user's money like a turn: held first, settled after.
        let hold = format!("summary-{}", uuid::Uuid::now_v7());
        let input = encoding
            .count(INSTRUCTIONS)
            .saturating_add(match &request.messages[..] {
                [ChatMessage::User { text, .. }] => encoding.count(text),
                _ => 0,
            });
        let budgets = state.budgets();
        let worst = worst_case([model.info.as_ref()], input, output, budgets.settings);
        let expires = after(now(), SUMMARIZE_LOCK_TTL);
        let held = match budgets.reserve(job.user_id, &hold, worst, expires).await? {
            Ok(held) => held == Hold::Held,
            Err(refused) => {
                tracing::info!(conversation = %job.conversation_id, reason = %refused.message, "no summary: the budget does not allow it");
                record_usage(state, &usage).await;
                return Ok("budget_exceeded");
            }
        };
        let (text, log) = call(state, job, &model, &request).await;
        if held {
            budgets
                .settle(job.user_id, &hold, log.cost_micros.unwrap_or(0))
                .await;
        }
        usage.push(log);
        match text {
            Some(text) => summary = Some(text),
            None => {
                record_usage(state, &usage).await;
                return Ok("provider_failed");
            }
        }
    }
    let Some(summary) = summary else {
        return Ok("empty");
    };
    let covered: u32 = span
        .iter()
        .map(|s| {
            s.message
                .token_count
                .saturating_add(MESSAGE_OVERHEAD_TOKENS)
        })
        .sum();
    let row = ContextOptimization {
        id: uuid::Uuid::now_v7(),
        user_id: job.user_id,
        conversation_id: job.conversation_id,
        message_id: None,
        strategy: Strategy::Summarization,
        tokens_before: covered.saturating_add(previous.as_ref().map_or(0, |p| p.tokens_before)),
        tokens_after: encoding.count(&summary),
        range_start: previous
            .as_ref()
            .and_then(|p| p.range_start)
            .or(Some(job.span.from)),
        range_end: Some(job.span.through),
        messages_affected: u32::try_from(span.len())
            .unwrap_or(u32::MAX)
            .saturating_add(previous.as_ref().map_or(0, |p| p.messages_affected)),
        summary: Some(summary),
        summary_model: Some(format!("{}/{}", model.target.provider, model.target.model)),
        created_at: now(),
    };
    state
        .store()
        .record_optimizations(std::slice::from_ref(&row), &usage)
        .await?;
    let (cache, settings) = (state.cache.as_ref(), &state.config.context);
    remember(cache, settings, job.conversation_id, Some(&row)).await;
    let event = ServerEvent::ContextOptimized {
        conversation_id: job.conversation_id,
        message_id: None,
        strategy: Strategy::Summarization.as_str().to_owned(),
        tokens_before: row.tokens_before,
        tokens_after: row.tokens_after,
    };
    state
        .devices()
        .broadcast(job.user_id, job.conversation_id, &event)
        .await;
    Ok("summarized")
}

/// The user's summary model for the conversation's provider, else the operator's, else the cheap
/// model the catalog names for the provider, else the conversation's own model: the first this
/// user can call.
async fn summary_model(state: &AppState, conversation: &Conversation) -> Option<Candidate> {
    let access = state.provider_access();
    let providers = user_providers(&access, conversation.user_id).await.ok()?;
    let users_choice = providers
        .iter()
        .find(|p| p.id() == Some(&conversation.provider))
        .and_then(|p| p.config.as_ref())
        .and_then(|c| c.summary_model.clone())
        .map(|model| ModelRef {
            provider: conversation.provider.clone(),
            model,
        });
    let catalog_choice = state
        .catalog
        .provider(&conversation.provider)
        .and_then(|p| p.summary_model.clone())
        .map(|model| ModelRef {
            provider: conversation.provider.clone(),
            model,
        });
    let own = ModelRef {
        provider: conversation.provider.clone(),
        model: conversation.model.clone(),
    };
    let choices = [
        users_choice,
        state.config.context.summary_model.clone(),
        catalog_choice,
        Some(own),
    ];
    for choice in choices.iter().flatten() {
        match resolve(&access, conversation.user_id, &providers, choice).await {
            Ok(Ok(c)) => return Some(c),
            Ok(Err(reason)) => {
                tracing::info!(model = ?choice, %reason, "summary model unavailable");
            }
            Err(e) => tracing::warn!(model = ?choice, error = %e, "summary model unavailable"),
        }
    }
    None
}

/// As much of `messages` as fits in `room` tokens, as a transcript; a single message larger than
/// the room is cut. Returns the transcript and how many messages it took (at least one).
fn transcript(
    messages: &[history::Sendable<'_>],
    room: u32,
    encoding: Encoding,
) -> (String, usize) {
    let mut out = String::new();
    let mut used = 0u32;
    let mut taken = 0;
    for s in messages {
        let line = line(&s.chat(None, Vec::new()));
        let tokens = s
            .message
            .token_count
            .saturating_add(MESSAGE_OVERHEAD_TOKENS);
        if taken > 0 && used.saturating_add(tokens) > room {
            break;
        }
        if tokens > room {
            // Characters per token of this message, to cut it near the room.
            let chars = line.chars().count();
            let keep = usize::try_from(u64::from(room) * chars as u64 / u64::from(tokens.max(1)))
                .unwrap_or(chars);
            let cut: String = line.chars().take(keep).collect();
            let cut = shrink_to(cut, room, encoding);
            out.push_str(&cut);
            out.push_str("\n[…cut]\n\n");
            return (out, taken + 1);
        }
        out.push_str(&line);
        out.push_str("\n\n");
        used = used.saturating_add(tokens);
        taken += 1;
    }
    (out, taken)
}

/// Trims text until it counts at most `room` tokens.
fn shrink_to(mut text: String, room: u32, encoding: Encoding) -> String {
    while encoding.count(&text) > room && !text.is_empty() {
        let keep = text.chars().count() * 9 / 10;
        text = text.chars().take(keep).collect();
    }
    text
}

fn line(chat: &ChatMessage) -> String {
    match chat {
        ChatMessage::User { text, .. } => format!("User: {text}"),
        ChatMessage::Assistant { text, tool_calls } => {
            let calls: Vec<String> = tool_calls
                .iter()
                .map(|c| format!("[called {}({})]", c.name, c.arguments))
                .collect();
            format!("Assistant: {text}{}", calls.join(" "))
        }
        ChatMessage::Tool { name, content, .. } => format!("Tool result ({name}): {content}"),
    }
}

/// One call of the summary model: the text, unless it failed, and its usage record.
async fn call(
    state: &AppState,
    job: &SummarizeJob,
    model: &Candidate,
    request: &ChatRequest,
) -> (Option<String>, UsageLog) {
    let started = Instant::now();
    let failover = Failover {
        providers: &state.providers,
        breaker: &state.breaker,
        settings: &state.config.retry,
    };
    let chain = [model.target.clone()];
    let (text, tokens, first_token, attempts, status) = match failover.start(&chain, request).await
    {
        Err(exhausted) => {
            tracing::warn!(error = %exhausted.error, "summary call failed");
            (None, None, None, exhausted.attempts, MessageStatus::Error)
        }
        Ok(mut ready) => {
            let deadline = tokio::time::Instant::now() + state.config.turn_max_duration;
            let mut text = String::new();
            let mut tokens: Option<TokenUsage> = None;
            let mut first_token = None;
            let mut status = MessageStatus::Incomplete;
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, ready.stream.next()).await
            {
                match event {
                    StreamEvent::TextDelta(t) => {
                        first_token.get_or_insert_with(|| started.elapsed());
                        text.push_str(&t);
                    }
                    StreamEvent::Usage(u) => tokens = Some(u),
                    StreamEvent::Finish(_) => {
                        status = MessageStatus::Complete;
                        break;
                    }
                    StreamEvent::Error(e) => {
                        tracing::warn!(error = %e, "summary stream failed");
                        break;
                    }
                    _ => {}
                }
            }
            let done = status == MessageStatus::Complete && !text.trim().is_empty();
            let text = done.then(|| text.trim().to_owned());
            (text, tokens, first_token, ready.attempts, status)
        }
    };
    let log = model.usage_log(Call {
        user: job.user_id,
        conversation: job.conversation_id,
        message: job.message_id,
        tokens,
        started,
        first_token,
        status,
        attempts: &attempts,
    });
    (text, log)
}

async fn record_usage(state: &AppState, usage: &[UsageLog]) {
    if let Err(e) = state.store().record_optimizations(&[], usage).await {
        tracing::error!(error = %e, "cannot record the summary calls' usage");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_domain::ids::ConversationId;
    use bestchat_domain::message::{Message, MessageStatus, Role};
    use bestchat_domain::time::now;

    fn user_message(content: &str, tokens: u32) -> Message {
        Message {
            content: content.to_owned(),
            token_count: tokens,
            ..Message::new(
                UserId::from_uuid(uuid::Uuid::nil()),
                ConversationId::generate(),
                Role::User,
                MessageStatus::Complete,
                now(),
            )
        }
    }

    #[test]
    fn transcripts_are_chunked_to_the_room() {
        let messages: Vec<Message> = (0..10)
            .map(|i| user_message(&format!("message {i} {}", "word ".repeat(20)), 30))
            .collect();
        let sendable = history::sendable(&messages);
        // 34 tokens each with overhead: three fit in 110.
        let (text, taken) = transcript(&sendable, 110, Encoding::Estimate);
        assert_eq!(taken, 3);
        assert!(text.contains("User: message 2") && !text.contains("message 3"));
        let (_, rest) = transcript(&sendable[taken..], 110, Encoding::Estimate);
        assert_eq!(rest, 3);
    }

    #[test]
    fn a_message_larger_than_the_room_is_cut_to_fit() {
        let big = user_message(&"word ".repeat(2_000), 2_500);
        let messages = [big];
        let sendable = history::sendable(&messages);
        let (text, taken) = transcript(&sendable, 300, Encoding::Estimate);
        assert_eq!(taken, 1);
        assert!(text.ends_with("[…cut]\n\n"));
        assert!(Encoding::Estimate.count(&text) <= 300 + 10);
    }
}
