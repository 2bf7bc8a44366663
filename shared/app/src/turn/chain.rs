//! The models a turn may ask: the one asked for, then the conversation's fallbacks, each only
//! when this user can reach it.

use bestchat_domain::conversation::Conversation;
use bestchat_domain::ids::UserId;
use bestchat_domain::message::Message;
use bestchat_domain::model_ref::ModelRef;
use bestchat_domain::provider::ModelInfo;
use bestchat_providers::failover::Target;

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

impl Candidate {
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
