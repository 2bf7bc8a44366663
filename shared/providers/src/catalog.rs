//! The provider catalog (`catalog.json`, embedded in the crate): every provider BestChat knows,
//! how to reach it, and a model registry with windows, output limits, capabilities and prices.

use std::sync::OnceLock;

use bestchat_domain::model_ref::{ModelId, ProviderId};
use bestchat_domain::provider::{ModelInfo, Protocol};
use serde::Deserialize;

use crate::client::Auth;

const CATALOG_JSON: &str = include_str!("../catalog.json");

/// How a provider takes its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthStyle {
    Bearer,
    XApiKey,
    XGoogApiKey,
    ApiKey,
    AwsIam,
    /// No key needed; one the user gives anyway is sent as a bearer token.
    None,
}

impl AuthStyle {
    /// How the protocol's official SDK sends a key, for providers the catalog does not know.
    pub const fn for_protocol(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Anthropic => Self::XApiKey,
            Protocol::Gemini => Self::XGoogApiKey,
            Protocol::Bedrock => Self::AwsIam,
            Protocol::OpenAi | Protocol::OpenAiResponses | Protocol::Echo => Self::Bearer,
        }
    }

    pub fn with_key(self, key: Option<String>) -> Auth {
        match (self, key) {
            (Self::AwsIam, _) => Auth::AwsIam,
            (Self::XApiKey, Some(k)) => Auth::Header {
                name: "x-api-key",
                value: k,
            },
            (Self::XGoogApiKey, Some(k)) => Auth::Header {
                name: "x-goog-api-key",
                value: k,
            },
            (Self::ApiKey, Some(k)) => Auth::Header {
                name: "api-key",
                value: k,
            },
            (_, Some(k)) => Auth::Bearer(k),
            (_, None) => Auth::None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogModel {
    pub id: ModelId,
    pub context_window: u32,
    pub max_output_tokens: u32,
    pub input_price_per_mtok: Option<u64>,
    pub cached_input_price_per_mtok: Option<u64>,
    pub output_price_per_mtok: Option<u64>,
    pub supports_tools: bool,
    pub supports_vision: bool,
    pub supports_reasoning: bool,
    /// A model that speaks another protocol than its provider (OpenAI's Responses-only models).
    pub protocol: Option<Protocol>,
}

impl CatalogModel {
    pub fn info(&self, provider: &ProviderId) -> ModelInfo {
        ModelInfo {
            id: self.id.clone(),
            provider: Some(provider.clone()),
            context_window: self.context_window,
            max_output_tokens: self.max_output_tokens,
            input_price_per_mtok: self.input_price_per_mtok,
            cached_input_price_per_mtok: self.cached_input_price_per_mtok,
            output_price_per_mtok: self.output_price_per_mtok,
            supports_tools: self.supports_tools,
            supports_vision: self.supports_vision,
            supports_reasoning: self.supports_reasoning,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub id: ProviderId,
    pub name: String,
    pub protocol: Protocol,
    /// `None` when every user must give their own (Azure) or none applies (Bedrock, echo).
    pub base_url: Option<String>,
    pub auth: AuthStyle,
    pub requires_key: bool,
    /// Environment variable holding an operator-provided key.
    pub key_env: Option<String>,
    /// The company that trains the models serves them: the registry has their prices.
    pub first_party: bool,
    pub default_model: ModelId,
    #[serde(default)]
    pub base_url_required: bool,
    /// A server that runs on the user's own machine or network (Ollama, vLLM, …): there is
    /// nothing to call until the user turns it on in their settings.
    #[serde(default)]
    pub self_hosted: bool,
    /// A cheap model of this provider for summarizing long conversations.
    pub summary_model: Option<ModelId>,
    #[serde(default)]
    pub max_tokens_field: Option<String>,
    pub models: Vec<CatalogModel>,
}

impl ProviderSpec {
    pub fn model(&self, id: &ModelId) -> Option<&CatalogModel> {
        self.models.iter().find(|m| &m.id == id)
    }

    pub fn max_tokens_field(&self) -> &'static str {
        match self.max_tokens_field.as_deref() {
            Some("max_completion_tokens") => "max_completion_tokens",
            _ => "max_tokens",
        }
    }
}

#[derive(Debug)]
pub struct Catalog {
    providers: Vec<ProviderSpec>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("the provider catalog is invalid: {0}")]
pub struct CatalogError(String);

impl Catalog {
    /// The embedded catalog, parsed and checked once per process.
    pub fn builtin() -> Result<&'static Catalog, CatalogError> {
        static CATALOG: OnceLock<Result<Catalog, CatalogError>> = OnceLock::new();
        CATALOG
            .get_or_init(|| Self::parse(CATALOG_JSON))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn parse(json: &str) -> Result<Self, CatalogError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            providers: Vec<ProviderSpec>,
        }
        let file: File = serde_json::from_str(json).map_err(|e| CatalogError(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for p in &file.providers {
            if !seen.insert(&p.id) {
                return Err(CatalogError(format!("provider {} listed twice", p.id)));
            }
            if !p.models.is_empty() && p.model(&p.default_model).is_none() {
                return Err(CatalogError(format!(
                    "{}: default model is not listed",
                    p.id
                )));
            }
            if let Some(m) = &p.summary_model
                && p.model(m).is_none()
            {
                return Err(CatalogError(format!(
                    "{}: summary model is not listed",
                    p.id
                )));
            }
            if p.base_url.is_none() && !p.base_url_required && p.protocol.allowed_for_custom() {
                return Err(CatalogError(format!("{}: needs a base_url", p.id)));
            }
            for m in &p.models {
                m.info(&p.id)
                    .validate()
                    .map_err(|e| CatalogError(format!("{}: {}", p.id, e.message)))?;
            }
        }
        Ok(Self {
            providers: file.providers,
        })
    }

    pub fn providers(&self) -> &[ProviderSpec] {
        &self.providers
    }

    pub fn provider(&self, id: &ProviderId) -> Option<&ProviderSpec> {
        self.providers.iter().find(|p| &p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> &'static Catalog {
        Catalog::builtin().unwrap()
    }

    #[test]
    fn has_the_required_providers() {
        assert!(catalog().providers().len() >= 20);
        for id in [
            "openai",
            "anthropic",
            "gemini",
            "bedrock",
            "azure-openai",
            "mistral",
            "groq",
            "deepseek",
            "xai",
            "openrouter",
            "together",
            "fireworks",
            "perplexity",
            "cerebras",
            "deepinfra",
            "ollama",
            "lmstudio",
            "vllm",
            "llamacpp",
            "nvidia-nim",
            "moonshot",
            "dashscope",
            "echo",
        ] {
            assert!(
                catalog()
                    .provider(&ProviderId::parse(id).unwrap())
                    .is_some(),
                "{id} missing"
            );
        }
    }

    #[test]
    fn every_first_party_model_has_a_window_and_prices() {
        let first_party: Vec<_> = catalog()
            .providers()
            .iter()
            .filter(|p| p.first_party)
            .collect();
        assert!(first_party.len() >= 6);
        for p in first_party {
            assert!(!p.models.is_empty(), "{} lists no models", p.id);
            for m in &p.models {
                assert!(
                    m.context_window > 0 && m.max_output_tokens > 0,
                    "{}/{}",
                    p.id,
                    m.id
                );
                assert!(
                    m.input_price_per_mtok.is_some(),
                    "{}/{} input price",
                    p.id,
                    m.id
                );
                assert!(
                    m.output_price_per_mtok.is_some(),
                    "{}/{} output price",
                    p.id,
                    m.id
                );
            }
        }
    }

    #[test]
    fn keys_go_where_each_provider_expects_them() {
        let p = |id: &str| catalog().provider(&ProviderId::parse(id).unwrap()).unwrap();
        assert_eq!(
            p("openai").auth.with_key(Some("k".into())),
            Auth::Bearer("k".into())
        );
        assert!(matches!(
            p("anthropic").auth.with_key(Some("k".into())),
            Auth::Header {
                name: "x-api-key",
                ..
            }
        ));
        assert!(matches!(
            p("gemini").auth.with_key(Some("k".into())),
            Auth::Header {
                name: "x-goog-api-key",
                ..
            }
        ));
        assert_eq!(p("bedrock").auth.with_key(None), Auth::AwsIam);
        assert_eq!(p("ollama").auth.with_key(None), Auth::None);
        assert_eq!(p("openai").max_tokens_field(), "max_completion_tokens");
        assert_eq!(p("groq").max_tokens_field(), "max_tokens");
    }

    #[test]
    fn every_catalog_entry_authenticates_as_its_protocol_sdk_does() {
        // A custom provider of a protocol authenticates the way that protocol's catalog entries
        // do (Azure's `api-key` and keyless local servers are the catalog's own exceptions).
        for spec in catalog().providers() {
            if matches!(spec.auth, AuthStyle::ApiKey | AuthStyle::None) {
                continue;
            }
            assert_eq!(
                AuthStyle::for_protocol(spec.protocol),
                spec.auth,
                "{}",
                spec.id
            );
        }
        assert!(matches!(
            AuthStyle::for_protocol(Protocol::Anthropic).with_key(Some("k".into())),
            Auth::Header {
                name: "x-api-key",
                ..
            }
        ));
        assert!(matches!(
            AuthStyle::for_protocol(Protocol::Gemini).with_key(Some("k".into())),
            Auth::Header {
                name: "x-goog-api-key",
                ..
            }
        ));
        assert_eq!(
            AuthStyle::for_protocol(Protocol::OpenAi).with_key(Some("k".into())),
            Auth::Bearer("k".into())
        );
    }

    #[test]
    fn invalid_catalogs_are_refused() {
        let dup = r#"{"providers":[
          {"id":"a","name":"A","protocol":"echo","base_url":null,"auth":"none","requires_key":false,"key_env":null,"first_party":false,"default_model":"m","models":[]},
          {"id":"a","name":"A","protocol":"echo","base_url":null,"auth":"none","requires_key":false,"key_env":null,"first_party":false,"default_model":"m","models":[]}]}"#;
        assert!(Catalog::parse(dup).is_err());
    }
}
