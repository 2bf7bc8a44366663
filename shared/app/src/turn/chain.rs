//! The models a turn may ask: the one asked for, then the conversation's fallbacks, each only
//! when this user can reach it.

use bestchat_domain::conversation::Conversation;
use std::time::{Duration, Instant};

use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::message::{Message, MessageStatus};
use bestchat_domain::model_ref::{ModelRef, ProviderId};
use bestchat_domain::ports::keys::VaultError;
use bestchat_domain::provider::ModelInfo;
use bestchat_domain::time::now;
use bestchat_domain::usage::UsageLog;
use bestchat_providers::TokenUsage;
use bestchat_providers::catalog::AuthStyle;
use bestchat_providers::failover::{Attempt, Target};
use bestchat_providers::pricing::cost_micros;

use super::job::millis;
use crate::error::AppError;
use crate::models::{
    DISCOVERED_CONTEXT_WINDOW, DISCOVERED_MAX_OUTPUT_TOKENS, ProviderAccess, UserProvider,
    availability, endpoint, models_of, user_providers,
};

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

    /// Whether its registry entry says it takes tool definitions (an unknown model does not).
    pub fn supports_tools(&self) -> bool {
        self.info.as_ref().is_some_and(|m| m.supports_tools)
    }

    /// The window and output limit, assuming a discovered model's when the registry has none.
    pub fn window_and_output(&self) -> (u32, u32) {
        self.info.as_ref().map_or(
            (DISCOVERED_CONTEXT_WINDOW, DISCOVERED_MAX_OUTPUT_TOKENS),
            |m| (m.context_window, m.max_output_tokens),
        )
    }
}

/// Why a model cannot be called by this user; what the user can do about it is in the sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unusable {
    UnknownProvider(ProviderId),
    Unavailable(ProviderId, crate::models::Unavailable),
    /// The stored key no longer opens (the vault key was rotated away, or the row was copied).
    KeyUnreadable(ProviderId),
}

impl Unusable {
    pub fn sentence(&self) -> String {
        match self {
            Self::UnknownProvider(p) => format!("{p} is not a provider you can use"),
            Self::Unavailable(p, why) => why.sentence(p.as_str()),
            Self::KeyUnreadable(p) => format!(
                "the stored API key for {p} cannot be opened: set it again with PUT /api/provider-configs/{p}"
            ),
        }
    }
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sentence())
    }
}

/// The model asked for (the answer's, else the conversation's) and then the fallbacks that this
/// user can call; when none can be, why the first cannot.
pub(crate) async fn candidates(
    access: &ProviderAccess<'_>,
    conversation: &Conversation,
    answer: &Message,
) -> Result<Result<Vec<Candidate>, Unusable>, AppError> {
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
    let mut wanted = vec![primary];
    for fallback in &conversation.settings.fallbacks {
        if !wanted.contains(fallback) {
            wanted.push(fallback.clone());
        }
    }
    let providers = user_providers(access, conversation.user_id).await?;
    let mut out = Vec::new();
    let mut first_reason = None;
    for r in &wanted {
        match resolve(access, conversation.user_id, &providers, r).await? {
            Ok(c) => out.push(c),
            Err(reason) => {
                tracing::info!(provider = %r.provider, %reason, "model left out of the chain");
                first_reason.get_or_insert(reason);
            }
        }
    }
    match first_reason {
        Some(reason) if out.is_empty() => Ok(Err(reason)),
        _ => Ok(Ok(out)),
    }
}

/// The model if this user can call it, or why not; an error only when a port failed.
pub(crate) async fn resolve(
    access: &ProviderAccess<'_>,
    user: UserId,
    providers: &[UserProvider<'_>],
    r: &ModelRef,
) -> Result<Result<Candidate, Unusable>, AppError> {
    let Some(p) = providers.iter().find(|p| p.id() == Some(&r.provider)) else {
        return Ok(Err(Unusable::UnknownProvider(r.provider.clone())));
    };
    if let Some(why) = availability(access, p) {
        return Ok(Err(Unusable::Unavailable(r.provider.clone(), why)));
    }
    if p.spec.is_some_and(|s| s.auth == AuthStyle::AwsIam)
        && !crate::models::bedrock_model_allowed(access, &r.model)
    {
        return Ok(Err(Unusable::Unavailable(
            r.provider.clone(),
            crate::models::Unavailable::TurnedOffByOperator,
        )));
    }
    let endpoint = match endpoint(access, user, p, Some(&r.model)).await {
        Ok(endpoint) => endpoint,
        Err(AppError::Vault(VaultError::Rejected(detail))) => {
            tracing::error!(provider = %r.provider, detail, "a stored key does not open");
            return Ok(Err(Unusable::KeyUnreadable(r.provider.clone())));
        }
        Err(e) => return Err(e),
    };
    let info = models_of(access, user, p)
        .await
        .into_iter()
        .find(|m| m.id == r.model);
    Ok(Ok(Candidate {
        target: Target {
            provider: r.provider.clone(),
            model: r.model.clone(),
            endpoint,
        },
        info,
    }))
}
