//! The context of one turn: the history planned into the window of every model of the chain,
//! what was optimized recorded, and a summary requested once the history passes its threshold.

use std::hash::{DefaultHasher, Hash, Hasher};

use bestchat_context::tokens::Encoding;
use bestchat_context::{Entry, Limits, Plan, PlanError, PlanInput, SummaryRef, plan};
use bestchat_domain::context::{ContextOptimization, Strategy};
use bestchat_domain::conversation::Conversation;
use bestchat_domain::message::Message;
use bestchat_domain::time::now;
use bestchat_providers::{ChatMessage, ChatRequest};

use super::chain::Candidate;
use super::history::{self, Sendable};
use crate::error::AppError;
use crate::events::SUMMARIZE;
use crate::state::AppState;
use crate::summarize::{self, SummarizeJob};

/// How a summary is introduced to the model, after the system prompt.
pub const SUMMARY_FRAME: &str =
    "Summary of the earlier part of this conversation (those messages are not shown):\n";

/// The request for the turn, and what was done to make it fit.
pub(super) struct TurnContext {
    pub request: ChatRequest,
    pub optimizations: Vec<ContextOptimization>,
}

pub(super) async fn build(
    state: &AppState,
    conversation: &Conversation,
    answer: &Message,
    history: &[Message],
    chain: &[Candidate],
) -> Result<Result<TurnContext, PlanError>, AppError> {
    let sendable = history::sendable(history);
    let encoding = Encoding::for_model(chain.first().map_or("", |c| c.target.model.as_str()));
    let entries: Vec<Entry<'_>> = sendable.iter().map(|s| entry(s, encoding)).collect();
    let wanted_output = conversation
        .settings
        .max_output_tokens
        .unwrap_or(state.config.context.reserved_output_tokens);
    // The tightest model of the chain: a fallback must not get a request its window refuses.
    let limits = chain
        .iter()
        .map(Candidate::window_and_output)
        .fold(None, |tightest: Option<Limits>, (window, output)| {
            let l = Limits {
                window,
                reserved_output: wanted_output.min(output),
            };
            Some(tightest.map_or(l, |t| Limits {
                window: t.window.min(l.window),
                reserved_output: t.reserved_output.min(l.reserved_output),
            }))
        })
        .unwrap_or(Limits {
            window: crate::models::DISCOVERED_CONTEXT_WINDOW,
            reserved_output: wanted_output,
        });
    let summary = summarize::latest(state, conversation).await?;
    let framed = summary
        .as_ref()
        .and_then(|s| s.summary.as_deref())
        .map(|text| format!("{SUMMARY_FRAME}{text}"));
    let summary_ref = summary
        .as_ref()
        .zip(framed.as_deref())
        .and_then(|(s, text)| {
            Some(SummaryRef {
                through: s.range_end?,
                tokens: encoding.count(text),
            })
        });
    let input = PlanInput {
        system_tokens: conversation
            .system_prompt
            .as_deref()
            .map_or(0, |p| encoding.count(p)),
        entries: &entries,
        summary: summary_ref,
        limits,
        settings: &state.config.context.settings,
    };
    let plan = match cached_plan(state, conversation, &input, encoding).await {
        Ok(plan) => plan,
        Err(e) => return Ok(Err(e)),
    };
    if let Some(span) = &plan.summarize {
        request_summary(state, conversation, answer, span).await;
    }
    let system = match (
        &conversation.system_prompt,
        framed.filter(|_| plan.use_summary),
    ) {
        (Some(prompt), Some(summary)) => Some(format!("{prompt}\n\n{summary}")),
        (None, Some(summary)) => Some(summary),
        (prompt, None) => prompt.clone(),
    };
    let messages: Vec<ChatMessage> = plan
        .messages
        .iter()
        .map(|p| {
            let chat = sendable[p.index].chat.clone();
            match &p.content {
                Some(text) => history::with_text(chat, text.clone()),
                None => chat,
            }
        })
        .collect();
    let at = now();
    let optimizations: Vec<ContextOptimization> = plan
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
    if !optimizations.is_empty() {
        tracing::info!(
            message = %answer.id, tokens_before = plan.tokens_before,
            tokens_after = plan.tokens_after, budget = plan.budget,
            strategies = ?plan.optimizations.iter().map(|o| o.strategy.as_str()).collect::<Vec<_>>(),
            "context optimized"
        );
        // The answer matters more than its bookkeeping: a failed record is logged, not fatal.
        if let Err(e) = state
            .store()
            .record_optimizations(&optimizations, &[])
            .await
        {
            tracing::error!(error = %e, message = %answer.id, "cannot record the optimizations");
        }
    }
    Ok(Ok(TurnContext {
        request: ChatRequest {
            system,
            messages,
            tools: Vec::new(),
            temperature: conversation.settings.temperature,
            max_output_tokens: Some(limits.reserved_output),
            stop: Vec::new(),
        },
        optimizations,
    }))
}

fn entry<'a>(s: &Sendable<'a>, encoding: Encoding) -> Entry<'a> {
    let content = s.message.content.as_str();
    // Rows written before counts were stored carry none.
    let tokens = match s.message.token_count {
        0 if !content.is_empty() => encoding.count(content),
        n => n,
    };
    Entry {
        id: s.message.id,
        role: s.message.role,
        content,
        tokens,
    }
}

/// Plans are reused while their inputs are unchanged: messages are immutable once written, so
/// their ids and counts stand for their content.
async fn cached_plan(
    state: &AppState,
    conversation: &Conversation,
    input: &PlanInput<'_>,
    encoding: Encoding,
) -> Result<Plan, PlanError> {
    let mut h = DefaultHasher::new();
    for e in input.entries {
        (e.id, e.tokens).hash(&mut h);
    }
    (
        input.system_tokens,
        input.summary.map(|s| (s.through, s.tokens)),
        input.limits,
        input.settings,
    )
        .hash(&mut h);
    let key = format!("ctx:plan:{}:{:016x}", conversation.id, h.finish());
    if let Ok(Some(bytes)) = state.cache.get(&key).await
        && let Ok(plan) = serde_json::from_slice::<Plan>(&bytes)
    {
        return Ok(plan);
    }
    let plan = plan(input, &|text| encoding.count(text))?;
    if let Ok(bytes) = serde_json::to_vec(&plan)
        && let Err(e) = state
            .cache
            .set(&key, &bytes, state.config.context.cache_ttl)
            .await
    {
        tracing::warn!(error = %e, "cannot cache the plan");
    }
    Ok(plan)
}

/// Starts the `summarize` function unless one is already writing this conversation's summary.
async fn request_summary(
    state: &AppState,
    conversation: &Conversation,
    answer: &Message,
    span: &bestchat_context::SummarizeSpan,
) {
    if let Ok(Some(_)) = state.cache.get(&summarize::lock_key(conversation.id)).await {
        return;
    }
    let job = SummarizeJob {
        user_id: conversation.user_id,
        conversation_id: conversation.id,
        message_id: answer.id,
        span: span.clone(),
    };
    let payload = serde_json::to_value(&job).unwrap_or_default();
    if let Err(e) = state.invoker.invoke_async(SUMMARIZE, &payload).await {
        tracing::warn!(error = %e, conversation = %conversation.id, "cannot start a summary");
    }
}
