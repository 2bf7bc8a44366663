//! Reading and changing a user's provider configurations. Keys are sealed before they are
//! stored and only their last four characters are ever shown; every change is audited.

use bestchat_domain::DomainError;
use bestchat_domain::ids::UserId;
use bestchat_domain::model_ref::{ModelId, ProviderId};
use bestchat_domain::ports::store::AuditEntry;
use bestchat_domain::provider::{ModelInfo, Protocol, ProviderConfig, PutProviderConfig};
use bestchat_domain::time::{Timestamp, now};
use bestchat_providers::catalog::ProviderSpec;
use serde::Serialize;
use serde_json::json;

use crate::error::AppError;
use crate::models::{ProviderAccess, model_list_key};
use crate::secrets::{origin_of, seal_api_key};

/// A configuration as the API shows it: never the key, only its last four characters.
#[derive(Debug, Serialize, ::schemars::JsonSchema)]
pub struct ProviderConfigView {
    pub provider: ProviderId,
    pub protocol: Protocol,
    /// The URL in use: the user's, or the catalog's.
    pub base_url: Option<String>,
    pub enabled: bool,
    pub default_model: Option<ModelId>,
    /// The model that writes summaries of this provider's long conversations.
    pub summary_model: Option<ModelId>,
    /// Whether a key is stored (a short key shows no `key_last4`).
    pub has_key: bool,
    pub key_last4: Option<String>,
    pub models: Vec<ModelInfo>,
    pub updated_at: Timestamp,
}

fn view(config: ProviderConfig, spec: Option<&ProviderSpec>) -> ProviderConfigView {
    let provider = config.provider.clone();
    ProviderConfigView {
        base_url: config
            .base_url
            .or_else(|| spec.and_then(|s| s.base_url.clone())),
        models: config
            .models
            .into_iter()
            .map(|m| ModelInfo {
                provider: Some(provider.clone()),
                ..m
            })
            .collect(),
        provider,
        protocol: config.protocol,
        enabled: config.enabled,
        default_model: config.default_model,
        summary_model: config.summary_model,
        has_key: config.key.is_some(),
        key_last4: config.key.and_then(|k| k.shown_last4()),
        updated_at: config.updated_at,
    }
}

pub async fn list(
    access: &ProviderAccess<'_>,
    user: UserId,
) -> Result<Vec<ProviderConfigView>, AppError> {
    Ok(access
        .configs
        .list_provider_configs(user)
        .await?
        .into_iter()
        .map(|c| {
            let spec = access.catalog.provider(&c.provider);
            view(c, spec)
        })
        .collect())
}

/// A provider id from the path: malformed ids are refused like any invalid field.
pub fn provider_id(raw: Option<&str>) -> Result<ProviderId, DomainError> {
    ProviderId::parse(raw.unwrap_or_default())
}

pub async fn put(
    access: &ProviderAccess<'_>,
    user: UserId,
    provider: ProviderId,
    body: PutProviderConfig,
) -> Result<ProviderConfigView, AppError> {
    body.validate()?;
    let spec = access.catalog.provider(&provider);
    let existing = access.configs.get_provider_config(user, &provider).await?;
    let protocol = protocol_of(&provider, spec, body.protocol, existing.as_ref())?;
    let base_url = match body.base_url {
        Some(url) => url,
        None => existing.as_ref().and_then(|e| e.base_url.clone()),
    };
    check_base_url(access, &provider, spec, protocol, base_url.as_deref()).await?;
    let uses_iam_or_nothing =
        spec.is_some_and(|s| matches!(s.protocol, Protocol::Bedrock | Protocol::Echo));
    // Where the key goes: the user's URL, else the catalog's. A key is sealed for that origin
    // and opens for no other.
    let catalog_url = spec.and_then(|s| s.base_url.clone());
    let origin = base_url
        .clone()
        .or_else(|| catalog_url.clone())
        .as_deref()
        .and_then(origin_of);
    let (key, key_change) = match body.api_key {
        Some(Some(_)) if uses_iam_or_nothing => {
            return Err(DomainError::validation(format!("{provider} takes no API key")).into());
        }
        Some(Some(raw)) => {
            let origin = origin.ok_or_else(|| {
                DomainError::validation("a key needs a base URL to be sent to: give base_url")
            })?;
            let sealed = seal_api_key(access.vault, user, &provider, &origin, raw.trim()).await?;
            (Some(sealed), "set")
        }
        Some(None) => (None, "removed"),
        None => {
            let kept = existing.as_ref().and_then(|e| e.key.clone());
            let before = existing
                .as_ref()
                .and_then(|e| e.base_url.clone())
                .or(catalog_url)
                .as_deref()
                .and_then(origin_of);
            if kept.is_some() && before != origin {
                return Err(DomainError::validation(format!(
                    "the base URL now points to {}, not {}: give the API key again with it, or \
                     remove it (\"api_key\": null); a key is only ever sent where it was given for",
                    origin.as_deref().unwrap_or("nowhere"),
                    before.as_deref().unwrap_or("nowhere")
                ))
                .into());
            }
            (kept, "kept")
        }
    };
    let at = now();
    let config = ProviderConfig {
        user_id: user,
        provider: provider.clone(),
        protocol,
        base_url,
        enabled: body
            .enabled
            .or(existing.as_ref().map(|e| e.enabled))
            .unwrap_or(true),
        default_model: match body.default_model {
            Some(m) => m,
            None => existing.as_ref().and_then(|e| e.default_model.clone()),
        },
        summary_model: match body.summary_model {
            Some(m) => m,
            None => existing.as_ref().and_then(|e| e.summary_model.clone()),
        },
        models: match body.models {
            // Stored without the provider: it is the row's.
            Some(models) => models
                .into_iter()
                .map(|m| ModelInfo {
                    provider: None,
                    ..m
                })
                .collect(),
            None => existing
                .as_ref()
                .map(|e| e.models.clone())
                .unwrap_or_default(),
        },
        key,
        created_at: existing.as_ref().map_or(at, |e| e.created_at),
        updated_at: at,
    };
    let audit = audit_entry(
        user,
        "provider_config.put",
        &provider,
        json!({
            "key": key_change,
            "created": existing.is_none(),
            "enabled": config.enabled,
            "base_url": config.base_url,
        }),
        at,
    );
    access.configs.put_provider_config(&config, &audit).await?;
    let _ = access.cache.delete(&model_list_key(user, &provider)).await;
    Ok(view(config, spec))
}

pub async fn delete(
    access: &ProviderAccess<'_>,
    user: UserId,
    provider: &ProviderId,
) -> Result<bool, AppError> {
    let audit = audit_entry(user, "provider_config.delete", provider, json!({}), now());
    let deleted = access
        .configs
        .delete_provider_config(user, provider, &audit)
        .await?;
    let _ = access.cache.delete(&model_list_key(user, provider)).await;
    Ok(deleted)
}

fn audit_entry(
    user: UserId,
    action: &str,
    provider: &ProviderId,
    details: serde_json::Value,
    at: Timestamp,
) -> AuditEntry {
    AuditEntry::of(user, action, ("provider", provider.as_str()), details, at)
}

/// A catalog provider keeps its protocol; a custom one must name one of the protocols reached by
/// URL and key.
fn protocol_of(
    provider: &ProviderId,
    spec: Option<&ProviderSpec>,
    requested: Option<Protocol>,
    existing: Option<&ProviderConfig>,
) -> Result<Protocol, DomainError> {
    match (spec, requested) {
        (Some(spec), Some(p)) if p != spec.protocol => Err(DomainError::validation(format!(
            "{provider} speaks {}; its protocol cannot change",
            spec.protocol.as_str()
        ))),
        (Some(spec), _) => Ok(spec.protocol),
        (None, Some(p)) if p.allowed_for_custom() => Ok(p),
        (None, Some(_)) => Err(DomainError::validation(
            "a custom provider's protocol must be openai, openai-responses, anthropic or gemini",
        )),
        (None, None) => existing.map(|e| e.protocol).ok_or_else(|| {
            DomainError::validation(format!(
                "{provider} is not in the catalog: a custom provider needs protocol and base_url"
            ))
        }),
    }
}

/// Longest a new base URL's name may take to resolve before it is accepted unchecked.
const BASE_URL_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn check_base_url(
    access: &ProviderAccess<'_>,
    provider: &ProviderId,
    spec: Option<&ProviderSpec>,
    protocol: Protocol,
    base_url: Option<&str>,
) -> Result<(), DomainError> {
    let takes_url = protocol.allowed_for_custom();
    match base_url {
        Some(_) if !takes_url => {
            return Err(DomainError::validation(format!(
                "{provider} takes no base_url"
            )));
        }
        None if spec.is_none() || spec.is_some_and(|s| s.base_url_required) => {
            return Err(DomainError::validation(format!(
                "{provider} needs a base_url"
            )));
        }
        _ => {}
    }
    // Refused at once when it is, or now resolves to, a private address; every connection is
    // checked again, so a name that changes later is caught there.
    if let Some(url) = base_url {
        let parsed = url::Url::parse(url)
            .map_err(|_| DomainError::validation("base_url must be an http:// or https:// URL"))?;
        let checked =
            tokio::time::timeout(BASE_URL_CHECK_TIMEOUT, access.guard.check_url_now(&parsed))
                .await
                .unwrap_or(Ok(()));
        checked.map_err(|refusal| {
            tracing::info!(%refusal, "base_url refused");
            DomainError::validation(
                "base_url points at a private, loopback or link-local address, which this deployment does not allow",
            )
        })?;
    }
    Ok(())
}
