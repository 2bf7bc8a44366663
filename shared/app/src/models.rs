//! What each user can reach: the catalog merged with their provider configs, keys resolved
//! (their own, or the operator's when enabled), and model lists, discovered from the provider
//! for servers the catalog cannot know and cached for 24 hours.

use std::collections::HashMap;
use std::time::Duration;

use bestchat_domain::ids::UserId;
use bestchat_domain::model_ref::{ModelId, ModelRef, ProviderId};
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::ports::keys::KeyVault;
use bestchat_domain::ports::store::ProviderConfigStore;
use bestchat_domain::provider::{ModelInfo, Protocol, ProviderConfig};
use bestchat_egress::Guard;
use bestchat_providers::catalog::{AuthStyle, Catalog, ProviderSpec};
use bestchat_providers::discovery;
use bestchat_providers::{Endpoint, Providers};
use serde::Serialize;

use crate::error::AppError;
use crate::secrets::{open_api_key, origin_of};

/// How long a discovered model list is reused.
pub const MODEL_LIST_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a failed discovery is remembered, so a down server is not asked on every request.
pub const MODEL_LIST_FAILURE_TTL: Duration = Duration::from_secs(5 * 60);
/// Window assumed for a discovered model the user has not declared.
pub const DISCOVERED_CONTEXT_WINDOW: u32 = 8192;
/// Output limit assumed for a discovered model the user has not declared.
pub const DISCOVERED_MAX_OUTPUT_TOKENS: u32 = 2048;

/// What deciding and changing a user's providers and models reads: their configs, the vault
/// that seals and opens their keys, the cache of discovered model lists, the client that
/// discovers them, the catalog, the address guard and the operator's rules.
pub struct ProviderAccess<'a> {
    pub configs: &'a dyn ProviderConfigStore,
    pub vault: &'a dyn KeyVault,
    pub cache: &'a dyn Cache,
    pub providers: &'a Providers,
    pub catalog: &'static Catalog,
    /// Refuses private addresses for a user's base URL (when the operator does).
    pub guard: &'a Guard,
    pub rules: OperatorRules<'a>,
}

/// What the operator allows every user.
#[derive(Debug, Clone, Copy)]
pub struct OperatorRules<'a> {
    /// `BESTCHAT_ENV_KEYS`: the operator's keys serve users without their own.
    pub env_keys: bool,
    /// `BESTCHAT_BEDROCK`: AWS Bedrock is usable.
    pub bedrock: bool,
    /// `BESTCHAT_BEDROCK_MODELS`: the Bedrock models users may call; `None`: every one listed.
    pub bedrock_models: Option<&'a [String]>,
}

/// Why a user cannot call a provider now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ::schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// The operator has not turned it on for this deployment (AWS Bedrock bills the operator's
    /// own AWS account: `BESTCHAT_BEDROCK`).
    TurnedOffByOperator,
    /// The user turned it off in their settings.
    Disabled,
    /// It needs an API key and none is set.
    NeedsKey,
    /// A server of the user's own (Ollama, vLLM, …): nothing to call until they turn it on.
    NeedsSetup,
}

impl Unavailable {
    pub fn sentence(self, provider: &str) -> String {
        match self {
            Self::TurnedOffByOperator => {
                format!("{provider} is turned off by the operator of this server")
            }
            Self::Disabled => format!("{provider} is turned off in your provider settings"),
            Self::NeedsKey => format!("{provider} needs an API key: add yours in the settings"),
            Self::NeedsSetup => format!(
                "{provider} runs on your own machine or network: turn it on in the settings, with its address"
            ),
        }
    }
}

/// [`Unavailable`] with its sentence, as the providers list shows it.
#[derive(Debug, Serialize, ::schemars::JsonSchema)]
pub struct UnavailableView {
    pub code: Unavailable,
    pub message: String,
}

/// `GET /api/providers`: the user's providers, and the model a conversation gets when it names
/// none (the operator's default), which a client offers first.
#[derive(Debug, Serialize, ::schemars::JsonSchema)]
pub struct ProviderList {
    pub items: Vec<ProviderView>,
    pub default: ModelRef,
}

/// A provider as `GET /api/providers` shows it.
#[derive(Debug, Serialize, ::schemars::JsonSchema)]
pub struct ProviderView {
    pub id: ProviderId,
    pub name: String,
    pub protocol: Protocol,
    pub base_url: Option<String>,
    pub requires_key: bool,
    /// The user can call it now: a key is set (theirs or the operator's) or none is needed.
    pub configured: bool,
    pub enabled: bool,
    /// Not in the catalog: the user declared it.
    pub custom: bool,
    /// A conversation can use it now: `unavailable` is absent.
    pub usable: bool,
    /// Why it cannot be used now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<UnavailableView>,
    pub models: Vec<ModelInfo>,
}

/// A user's provider: the catalog entry, their config, or both.
pub struct UserProvider<'a> {
    pub spec: Option<&'a ProviderSpec>,
    pub config: Option<ProviderConfig>,
}

impl UserProvider<'_> {
    pub fn id(&self) -> Option<&ProviderId> {
        self.spec
            .map(|s| &s.id)
            .or(self.config.as_ref().map(|c| &c.provider))
    }

    pub fn protocol(&self) -> Protocol {
        self.config
            .as_ref()
            .map(|c| c.protocol)
            .or(self.spec.map(|s| s.protocol))
            .unwrap_or(Protocol::OpenAi)
    }

    pub fn base_url(&self) -> Option<String> {
        self.config
            .as_ref()
            .and_then(|c| c.base_url.clone())
            .or_else(|| self.spec.and_then(|s| s.base_url.clone()))
    }

    pub fn enabled(&self) -> bool {
        self.config.as_ref().is_none_or(|c| c.enabled)
    }

    fn requires_key(&self) -> bool {
        self.spec.is_some_and(|s| s.requires_key)
    }

    /// The catalog's, or for a custom provider its protocol's official SDK's.
    fn auth_style(&self) -> AuthStyle {
        self.spec
            .map_or_else(|| AuthStyle::for_protocol(self.protocol()), |s| s.auth)
    }

    /// The user points the provider somewhere other than the catalog's own URL.
    fn uses_own_url(&self) -> bool {
        let own = self.config.as_ref().and_then(|c| c.base_url.as_deref());
        let catalog = self.spec.and_then(|s| s.base_url.as_deref());
        match (own, catalog) {
            (None, _) => false,
            (Some(own), Some(catalog)) => {
                own.trim_end_matches('/') != catalog.trim_end_matches('/')
            }
            (Some(_), None) => true,
        }
    }
}

/// Every provider of the user: the catalog's, then their custom ones.
pub async fn user_providers(
    access: &ProviderAccess<'_>,
    user: UserId,
) -> Result<Vec<UserProvider<'static>>, AppError> {
    let mut configs: HashMap<ProviderId, ProviderConfig> = access
        .configs
        .list_provider_configs(user)
        .await?
        .into_iter()
        .map(|c| (c.provider.clone(), c))
        .collect();
    let mut out: Vec<UserProvider<'static>> = access
        .catalog
        .providers()
        .iter()
        .map(|spec| UserProvider {
            spec: Some(spec),
            config: configs.remove(&spec.id),
        })
        .collect();
    let mut custom: Vec<ProviderConfig> = configs.into_values().collect();
    custom.sort_by(|a, b| a.provider.cmp(&b.provider));
    out.extend(custom.into_iter().map(|c| UserProvider {
        spec: None,
        config: Some(c),
    }));
    Ok(out)
}

/// The operator's key for this provider, when the operator lets such keys serve users.
/// The operator's key for this provider, when the operator lets such keys serve users. It only
/// ever goes to the catalog's own URL: with a base URL of the user's, only the user's key does.
fn env_key(access: &ProviderAccess<'_>, p: &UserProvider<'_>) -> Option<String> {
    if !access.rules.env_keys || p.uses_own_url() {
        return None;
    }
    let var = p.spec?.key_env.as_deref()?;
    std::env::var(var).ok().filter(|k| !k.trim().is_empty())
}

fn has_key(access: &ProviderAccess<'_>, p: &UserProvider<'_>) -> bool {
    p.config.as_ref().is_some_and(|c| c.key.is_some()) || env_key(access, p).is_some()
}

/// Whether a key is set where one is needed.
fn can_call(access: &ProviderAccess<'_>, p: &UserProvider<'_>) -> bool {
    !p.requires_key() || has_key(access, p)
}

/// Why this user cannot call provider `p` now, if they cannot: the one rule the providers list
/// and the turn both apply, so what a client offers is what a turn accepts.
pub fn availability(access: &ProviderAccess<'_>, p: &UserProvider<'_>) -> Option<Unavailable> {
    let spec = p.spec;
    if spec.is_some_and(|s| s.auth == AuthStyle::AwsIam) && !access.rules.bedrock {
        Some(Unavailable::TurnedOffByOperator)
    } else if !p.enabled() {
        Some(Unavailable::Disabled)
    } else if spec.is_some_and(|s| s.self_hosted) && p.config.is_none() {
        Some(Unavailable::NeedsSetup)
    } else if !can_call(access, p) {
        Some(Unavailable::NeedsKey)
    } else {
        None
    }
}

/// Where and how this user calls `model` of provider `p` (no model: the provider itself, to list
/// its models). The user's own key comes first.
pub async fn endpoint(
    access: &ProviderAccess<'_>,
    user: UserId,
    p: &UserProvider<'_>,
    model: Option<&ModelId>,
) -> Result<Endpoint, AppError> {
    let key = match (&p.config, p.id()) {
        (Some(config), Some(id)) if config.key.is_some() => match &config.key {
            // Opened for the origin it goes to: a key sealed for another opens for none.
            Some(sealed) => {
                let origin = p
                    .base_url()
                    .as_deref()
                    .and_then(origin_of)
                    .unwrap_or_default();
                Some(open_api_key(access.vault, user, id, &origin, sealed).await?)
            }
            None => None,
        },
        _ => env_key(access, p),
    };
    let protocol = p
        .spec
        .zip(model)
        .and_then(|(s, m)| s.model(m))
        .and_then(|m| m.protocol)
        .unwrap_or_else(|| p.protocol());
    Ok(Endpoint {
        protocol,
        base_url: p.base_url().unwrap_or_default(),
        model: model.map(ToString::to_string).unwrap_or_default(),
        auth: p.auth_style().with_key(key),
        max_tokens_field: p.spec.map_or("max_tokens", ProviderSpec::max_tokens_field),
    })
}

fn discovered(id: &str, provider: &ProviderId) -> Option<ModelInfo> {
    Some(ModelInfo {
        id: ModelId::parse(id).ok()?,
        provider: Some(provider.clone()),
        context_window: DISCOVERED_CONTEXT_WINDOW,
        max_output_tokens: DISCOVERED_MAX_OUTPUT_TOKENS,
        input_price_per_mtok: None,
        cached_input_price_per_mtok: None,
        output_price_per_mtok: None,
        supports_tools: false,
        supports_vision: false,
        supports_reasoning: false,
    })
}

pub fn model_list_key(user: UserId, provider: &ProviderId) -> String {
    format!("models:{user}:{provider}")
}

/// Ids the provider itself lists, from the cache or asked and cached.
async fn discover(
    access: &ProviderAccess<'_>,
    user: UserId,
    p: &UserProvider<'_>,
    id: &ProviderId,
) -> Vec<String> {
    let key = model_list_key(user, id);
    if let Ok(Some(raw)) = access.cache.get(&key).await
        && let Ok(ids) = serde_json::from_slice::<Vec<String>>(&raw)
    {
        return ids;
    }
    let listed = match endpoint(access, user, p, None).await {
        Ok(endpoint) => discovery::list_models(access.providers, &endpoint)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let (ids, ttl) = match listed {
        Ok(ids) => (ids, MODEL_LIST_TTL),
        Err(reason) => {
            tracing::info!(provider = %id, reason, "model discovery failed");
            (Vec::new(), MODEL_LIST_FAILURE_TTL)
        }
    };
    if let Ok(raw) = serde_json::to_vec(&ids) {
        let _ = access.cache.set(&key, &raw, ttl).await;
    }
    ids
}

/// The models of one provider: the catalog's, the user's declarations (which win), and for a
/// configured server with neither, what the server lists.
pub async fn models_of(
    access: &ProviderAccess<'_>,
    user: UserId,
    p: &UserProvider<'_>,
) -> Vec<ModelInfo> {
    let Some(id) = p.id().cloned() else {
        return Vec::new();
    };
    let mut models: Vec<ModelInfo> = p
        .spec
        .map(|s| s.models.iter().map(|m| m.info(&s.id)).collect())
        .unwrap_or_default();
    if let Some(config) = &p.config {
        for declared in &config.models {
            let declared = ModelInfo {
                provider: Some(id.clone()),
                ..declared.clone()
            };
            match models.iter_mut().find(|m| m.id == declared.id) {
                Some(existing) => *existing = declared,
                None => models.push(declared),
            }
        }
        let discoverable = matches!(p.protocol(), Protocol::OpenAi | Protocol::OpenAiResponses)
            && config.enabled
            && models.is_empty();
        if discoverable {
            models.extend(
                discover(access, user, p, &id)
                    .await
                    .iter()
                    .filter_map(|m| discovered(m, &id)),
            );
        }
    }
    if p.spec.is_some_and(|s| s.auth == AuthStyle::AwsIam) {
        models.retain(|m| bedrock_model_allowed(access, &m.id));
    }
    models
}

/// Whether the operator lets users call this Bedrock model (`BESTCHAT_BEDROCK_MODELS`): its
/// base id, or a cross-region inference profile of it (`us.<id>`, `eu.<id>`, …).
pub fn bedrock_model_allowed(access: &ProviderAccess<'_>, model: &ModelId) -> bool {
    access.rules.bedrock_models.is_none_or(|allowed| {
        let id = model.as_str();
        allowed.iter().any(|a| {
            id == a
                || id
                    .strip_suffix(a.as_str())
                    .and_then(|geo| geo.strip_suffix('.'))
                    .is_some_and(|geo| !geo.is_empty() && !geo.contains('.'))
        })
    })
}

pub async fn provider_views(
    access: &ProviderAccess<'_>,
    user: UserId,
) -> Result<Vec<ProviderView>, AppError> {
    let mut views = Vec::new();
    for p in user_providers(access, user).await? {
        let Some(id) = p.id().cloned() else { continue };
        let unavailable = availability(access, &p);
        views.push(ProviderView {
            name: p.spec.map_or_else(|| id.to_string(), |s| s.name.clone()),
            protocol: p.protocol(),
            base_url: p.base_url(),
            requires_key: p.requires_key(),
            configured: can_call(access, &p),
            enabled: p.enabled(),
            custom: p.spec.is_none(),
            usable: unavailable.is_none(),
            unavailable: unavailable.map(|code| UnavailableView {
                code,
                message: code.sentence(&id.to_string()),
            }),
            models: models_of(access, user, &p).await,
            id,
        });
    }
    Ok(views)
}

/// Models of the providers this user can call now.
pub async fn usable_models(
    access: &ProviderAccess<'_>,
    user: UserId,
) -> Result<Vec<ModelInfo>, AppError> {
    Ok(provider_views(access, user)
        .await?
        .into_iter()
        .filter(|v| v.usable)
        .flat_map(|v| v.models)
        .collect())
}
