//! The context of one turn: the history planned into the window of every model of the chain,
//! what was optimized recorded, and a summary requested once the history passes its threshold.

use bestchat_context::tokens::Encoding;
use bestchat_context::{Entry, Limits, PlanError, PlanInput, SummaryRef, plan};
use bestchat_domain::context::{ContextOptimization, Strategy};
use bestchat_domain::conversation::Conversation;
use bestchat_domain::message::Message;
use bestchat_domain::time::now;
use bestchat_providers::{ChatMessage, ChatRequest, ToolSpec};

use super::chain::Candidate;
use super::history::{self, Sendable};
use super::ports::ContextPorts;
use crate::error::AppError;
use crate::files::attach;
use crate::jobs::SUMMARIZE;
use crate::summarize::{self, SummarizeJob};

/// How a summary is introduced to the model, after the system prompt.
pub const SUMMARY_FRAME: &str =
    "Summary of the earlier part of this conversation (those messages are not shown):\n";

/// The request for the turn, and what was done to make it fit.
pub(super) struct TurnContext {
    pub request: ChatRequest,
    pub optimizations: Vec<ContextOptimization>,
    /// The request's tokens as planned: what a stopped answer's provider is taken to have read.
    pub input_tokens: u32,
}

pub(super) async fn build(
    ports: &ContextPorts<'_>,
    conversation: &Conversation,
    answer: &Message,
    history: &[Message],
    chain: &[Candidate],
    tools: Vec<ToolSpec>,
) -> Result<Result<TurnContext, PlanError>, AppError> {
    let sendable = history::sendable(history);
    let encoding = Encoding::for_model(chain.first().map_or("", |c| c.target.model.as_str()));
    // Files go in the form the first model of the chain reads best; the fallbacks get the
    // same request.
    let reader = chain.first().map_or(
        attach::Reader {
            protocol: bestchat_domain::provider::Protocol::Echo,
            vision: false,
        },
        |c| attach::Reader {
            protocol: c.target.endpoint.protocol,
            vision: c.info.as_ref().is_some_and(|m| m.supports_vision),
        },
    );
    let (files, superseded) = attach::materialize(
        ports.files,
        ports.blobs,
        ports.file_settings,
        history,
        reader,
    )
    .await?;
    // A message's files are counted with it: their text as text, their parts as estimated.
    let with_files: Vec<Option<(String, u32)>> = sendable
        .iter()
        .map(|s| {
            let m = files.get(&s.message.id)?;
            let text = format!("{}{}", m.text, s.message.content);
            let tokens = encoding.count(&text).saturating_add(m.part_tokens);
            Some((text, tokens))
        })
        .collect();
    let entries: Vec<Entry<'_>> = sendable
        .iter()
        .zip(&with_files)
        .map(|(s, augmented)| match augmented {
            Some((text, tokens)) => Entry {
                content: text,
                tokens: *tokens,
                ..entry(s)
            },
            None => entry(s),
        })
        .collect();
    let wanted_output = conversation
        .settings
        .max_output_tokens
        .unwrap_or(ports.settings.reserved_output_tokens);
    // The tightest model of the chain: a fallback must not get a request its window refuses.
    let limits = chain.iter().map(Candidate::window_and_output).fold(
        Limits {
            window: u32::MAX,
            reserved_output: wanted_output,
        },
        |tightest, (window, output)| Limits {
            window: tightest.window.min(window),
            reserved_output: tightest.reserved_output.min(output),
        },
    );
    let summary = summarize::latest(ports.store, ports.cache, ports.settings, conversation).await?;
    // The summary as it is appended to the system prompt, separator included, so its count is
    // exactly what it adds to the request.
    let appended =
        summary
            .as_ref()
            .and_then(|s| s.summary.as_deref())
            .map(|text| match conversation.system_prompt {
                Some(_) => format!("\n\n{SUMMARY_FRAME}{text}"),
                None => format!("{SUMMARY_FRAME}{text}"),
            });
    let summary_ref = summary
        .as_ref()
        .zip(appended.as_deref())
        .and_then(|(s, text)| {
            Some(SummaryRef {
                through: s.range_end?,
                tokens: encoding.count(text),
            })
        });
    let input = PlanInput {
        // The tool definitions travel with every request, like the system prompt.
        system_tokens: conversation
            .system_prompt
            .as_deref()
            .map_or(0, |p| encoding.count(p))
            .saturating_add(tool_tokens(&tools, &encoding)),
        entries: &entries,
        summary: summary_ref,
        limits,
        settings: &ports.settings.settings,
    };
    let plan = match plan(&input, &|text| encoding.count(text)) {
        Ok(plan) => plan,
        Err(e) => return Ok(Err(e)),
    };
    if let Some(span) = &plan.summarize {
        request_summary(ports, conversation, answer, span).await;
    }
    let system = match appended.filter(|_| plan.use_summary) {
        Some(summary) => Some(conversation.system_prompt.clone().unwrap_or_default() + &summary),
        None => conversation.system_prompt.clone(),
    };
    let messages: Vec<ChatMessage> = plan
        .messages
        .iter()
        .map(|p| {
            let s = &sendable[p.index];
            let parts = files
                .get(&s.message.id)
                .map(|m| m.parts.clone())
                .unwrap_or_default();
            let text = p
                .content
                .clone()
                .or_else(|| with_files[p.index].as_ref().map(|(t, _)| t.clone()));
            s.chat(text, parts)
        })
        .collect();
    let at = now();
    let mut optimizations: Vec<ContextOptimization> = plan
        .optimizations
        .iter()
        .map(|o| {
            let summary = summary
                .as_ref()
                .filter(|_| o.strategy == Strategy::Summarization);
            ContextOptimization {
                id: uuid::Uuid::now_v7(),
                user_id: conversation.user_id,
                conversation_id: conversation.id,
                message_id: Some(answer.id),
                strategy: o.strategy,
                tokens_before: o.tokens_before,
                tokens_after: o.tokens_after,
                range_start: o.first,
                range_end: o.last,
                messages_affected: o.messages_affected,
                summary: summary.and_then(|s| s.summary.clone()),
                summary_model: summary.and_then(|s| s.summary_model.clone()),
                created_at: at,
            }
        })
        .collect();
    optimizations.extend(superseded_copies(conversation, answer, &superseded, at));
    if !optimizations.is_empty() {
        tracing::info!(
            message = %answer.id, tokens_before = plan.tokens_before,
            tokens_after = plan.tokens_after, budget = plan.budget,
            strategies = ?plan.optimizations.iter().map(|o| o.strategy.as_str()).collect::<Vec<_>>(),
            "context optimized"
        );
        // The answer matters more than its bookkeeping: a failed record is logged, not fatal.
        if let Err(e) = ports.store.record_optimizations(&optimizations, &[]).await {
            tracing::error!(error = %e, message = %answer.id, "cannot record the optimizations");
        }
    }
    Ok(Ok(TurnContext {
        request: ChatRequest {
            system,
            messages,
            tools,
            temperature: conversation.settings.temperature,
            max_output_tokens: Some(limits.reserved_output),
            stop: Vec::new(),
        },
        optimizations,
        input_tokens: plan.tokens_after,
    }))
}

/// Older copies of files attached again, replaced by a note: recorded as compression.
fn superseded_copies(
    conversation: &Conversation,
    answer: &Message,
    superseded: &[attach::Superseded],
    at: bestchat_domain::time::Timestamp,
) -> impl Iterator<Item = ContextOptimization> {
    superseded.iter().map(move |s| ContextOptimization {
        id: uuid::Uuid::now_v7(),
        user_id: conversation.user_id,
        conversation_id: conversation.id,
        message_id: Some(answer.id),
        strategy: Strategy::Compression,
        tokens_before: s.tokens,
        tokens_after: SUPERSEDED_NOTE_TOKENS,
        range_start: Some(s.message),
        range_end: Some(s.message),
        messages_affected: 1,
        summary: None,
        summary_model: None,
        created_at: at,
    })
}

/// What the note that stands for an older copy costs, about.
const SUPERSEDED_NOTE_TOKENS: u32 = 16;

fn tool_tokens(tools: &[ToolSpec], encoding: &Encoding) -> u32 {
    tools.iter().fold(0u32, |sum, t| {
        sum.saturating_add(encoding.count(&t.name))
            .saturating_add(encoding.count(&t.description))
            .saturating_add(encoding.count(&t.parameters.to_string()))
    })
}

fn entry<'a>(s: &Sendable<'a>) -> Entry<'a> {
    Entry {
        id: s.message.id,
        role: s.message.role,
        content: &s.message.content,
        tokens: s.message.token_count,
    }
}

/// Starts the `summarize` function unless one is already writing this conversation's summary.
async fn request_summary(
    ports: &ContextPorts<'_>,
    conversation: &Conversation,
    answer: &Message,
    span: &bestchat_context::SummarizeSpan,
) {
    if let Ok(Some(_)) = ports.cache.get(&summarize::lock_key(conversation.id)).await {
        return;
    }
    let job = SummarizeJob {
        user_id: conversation.user_id,
        conversation_id: conversation.id,
        message_id: answer.id,
        span: span.clone(),
    };
    let payload = serde_json::to_value(&job).unwrap_or_default();
    if let Err(e) = ports.invoker.invoke_async(SUMMARIZE, &payload).await {
        tracing::warn!(error = %e, conversation = %conversation.id, "cannot start a summary");
    }
}
