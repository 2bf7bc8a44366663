//! The models a turn may ask: the one asked for, then the conversation's fallbacks, each only
//! when this user can reach it.

use bestchat_domain::conversation::Conversation;
use std::time::{Duration, Instant};

use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::message::{Message, MessageStatus};
use bestchat_domain::model_ref::ModelRef;
use bestchat_domain::provider::ModelInfo;
use bestchat_domain::time::now;
use bestchat_domain::usage::UsageLog;
use bestchat_providers::TokenUsage;
use bestchat_providers::failover::{Attempt, Target};
use bestchat_providers::pricing::cost_micros;

use super::millis;
use crate::models::{
    DISCOVERED_CONTEXT_WINDOW, DISCOVERED_MAX_OUTPUT_TOKENS, UserProvider, can_call, endpoint,
    models_of, user_providers,
};
use crate::state::AppState;

/// A model with its endpoint and registry entry.
pub(crate) struct Candidate {
    pub target: Target,
    pub info: Option<ModelInfo>,
}

/// One call of a model, as its usage_logs row records it.
pub(crate) struct Call<'a> {
    pub user: UserId,
    pub conversation: ConversationId,
    /// The answer the call was for.
    pub message: MessageId,
    pub tokens: Option<TokenUsage>,
    pub started: Instant,
    pub first_token: Option<Duration>,
    pub status: MessageStatus,
    pub attempts: &'a [Attempt],
}

impl Candidate {
    /// What `tokens` of this model cost; `None` when its price is unknown.
    pub fn cost(&self, tokens: &TokenUsage) -> Option<i64> {
        self.info.as_ref().and_then(|m| cost_micros(m, tokens))
    }

    pub fn usage_log(&self, call: Call<'_>) -> UsageLog {
        UsageLog {
            id: uuid::Uuid::now_v7(),
            user_id: call.user,
            conversation_id: call.conversation,
            message_id: call.message,
            provider: self.target.provider.clone(),
            model: self.target.model.clone(),
            input_tokens: call.tokens.map_or(0, |u| u.input_tokens),
            output_tokens: call.tokens.map_or(0, |u| u.output_tokens),
            cached_tokens: call.tokens.map_or(0, |u| u.cached_tokens),
            cost_micros: call.tokens.and_then(|u| self.cost(&u)),
            latency_ms: millis(call.started.elapsed()),
            ttft_ms: call.first_token.map(millis),
            status: call.status,
            attempts: serde_json::to_value(call.attempts).unwrap_or_default(),
            created_at: now(),
        }
    }

    /// The window and output limit, assuming a discovered model's when the registry has none.
    pub fn window_and_output(&self) -> (u32, u32) {
        self.info.as_ref().map_or(
            (DISCOVERED_CONTEXT_WINDOW, DISCOVERED_MAX_OUTPUT_TOKENS),
            |m| (m.context_window, m.max_output_tokens),
        )
    }
}

/// The model asked for (the answer's, else the conversation's) and then the fallbacks.
pub(crate) async fn candidates(
    state: &AppState,
    conversation: &Conversation,
    answer: &Message,
) -> Result<Vec<Candidate>, String> {
    let primary = ModelRef {
        provider: answer
            .provider
            .clone()
            .unwrap_or_else(|| conversation.provider.clone()),
        model: answer
            .model
            .clone()
            .unwrap_or_else(|| conversation.model.clone()),
    };
    let mut wanted = vec![primary.clone()];
    for fallback in &conversation.settings.fallbacks {
        if !wanted.contains(fallback) {
            wanted.push(fallback.clone());
        }
    }
    let providers = user_providers(state, conversation.user_id)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for r in &wanted {
        match resolve(state, conversation.user_id, &providers, r).await {
            Ok(c) => out.push(c),
            Err(reason) if wanted.len() == 1 => return Err(reason),
            Err(reason) => {
                tracing::info!(provider = %r.provider, reason, "model left out of the chain");
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "none of the models of this conversation can be used (first: {primary:?})"
        ));
    }
    Ok(out)
}

/// The model if this user can call it, or why not.
pub(crate) async fn resolve(
    state: &AppState,
    user: UserId,
    providers: &[UserProvider<'_>],
    r: &ModelRef,
) -> Result<Candidate, String> {
    let p = providers
        .iter()
        .find(|p| p.id() == Some(&r.provider))
        .ok_or_else(|| format!("{} is not a provider you can use", r.provider))?;
    if !p.enabled() {
        return Err(format!(
            "{} is disabled in your provider settings",
            r.provider
        ));
    }
    if !can_call(state, p) {
        return Err(format!(
            "no API key is configured for {0}: add one with PUT /api/provider-configs/{0}",
            r.provider
        ));
    }
    let endpoint = endpoint(state, user, p, Some(&r.model))
        .await
        .map_err(|e| e.to_string())?;
    let info = models_of(state, user, p)
        .await
        .into_iter()
        .find(|m| m.id == r.model);
    Ok(Candidate {
        target: Target {
            provider: r.provider.clone(),
            model: r.model.clone(),
            endpoint,
        },
        info,
    })
}
