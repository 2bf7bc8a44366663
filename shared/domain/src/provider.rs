//! Providers as users configure them: wire protocols, model descriptions, and the per-user
//! provider configuration with its encrypted API key.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::UserId;
use crate::limits::{API_KEY_MAX_CHARS, BASE_URL_MAX_CHARS, MODELS_PER_PROVIDER_MAX};
use crate::model_ref::{ModelId, ProviderId};
use crate::time::Timestamp;

/// The wire format an adapter speaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ::schemars::JsonSchema,
)]
pub enum Protocol {
    /// OpenAI Chat Completions and the many servers compatible with it.
    #[serde(rename = "openai")]
    OpenAi,
    /// OpenAI Responses API, for models that only speak it.
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "gemini")]
    Gemini,
    /// AWS Bedrock Converse, authenticated with the function's IAM role.
    #[serde(rename = "bedrock")]
    Bedrock,
    /// The offline provider that streams a deterministic answer.
    #[serde(rename = "echo")]
    Echo,
}

impl Protocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::OpenAiResponses => "openai-responses",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Bedrock => "bedrock",
            Self::Echo => "echo",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::OpenAi,
            Self::OpenAiResponses,
            Self::Anthropic,
            Self::Gemini,
            Self::Bedrock,
            Self::Echo,
        ]
        .into_iter()
        .find(|p| p.as_str() == raw)
    }

    /// Protocols a custom provider may use: the ones reached with a base URL and a key.
    pub const fn allowed_for_custom(self) -> bool {
        matches!(
            self,
            Self::OpenAi | Self::OpenAiResponses | Self::Anthropic | Self::Gemini
        )
    }
}

/// A model as the API describes it. Prices are micro-dollars per million tokens; `None` means
/// unknown, which makes the cost of a call unknown too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub id: ModelId,
    /// Set by the server from where the model is listed; ignored in declarations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderId>,
    pub context_window: u32,
    pub max_output_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_price_per_mtok: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_price_per_mtok: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_price_per_mtok: Option<u64>,
    #[serde(default)]
    pub supports_tools: bool,
    #[serde(default)]
    pub supports_vision: bool,
    #[serde(default)]
    pub supports_reasoning: bool,
}

impl ModelInfo {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.context_window == 0 || self.max_output_tokens == 0 {
            return Err(DomainError::validation(format!(
                "model {}: context_window and max_output_tokens must be positive",
                self.id
            )));
        }
        if self.max_output_tokens > self.context_window {
            return Err(DomainError::validation(format!(
                "model {}: max_output_tokens exceeds context_window",
                self.id
            )));
        }
        Ok(())
    }
}

/// An API key sealed with AES-256-GCM under a per-record data key that the key vault wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub wrapped_data_key: Vec<u8>,
    /// Which vault key wrapped the data key (a KMS key ARN, or `local`).
    pub vault_key_id: String,
    pub last4: String,
}

/// One user's settings for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    pub user_id: UserId,
    pub provider: ProviderId,
    pub protocol: Protocol,
    /// `None` uses the catalog's URL.
    pub base_url: Option<String>,
    pub enabled: bool,
    pub default_model: Option<ModelId>,
    /// The model that writes summaries of this provider's long conversations.
    pub summary_model: Option<ModelId>,
    /// Models the user declares (custom providers, or models newer than the catalog).
    pub models: Vec<ModelInfo>,
    pub key: Option<SealedKey>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Body of `PUT /api/provider-configs/{provider}`. Absent fields keep their value;
/// `api_key: null` removes the key.
#[derive(Debug, Default, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutProviderConfig {
    #[serde(default, deserialize_with = "crate::conversation::present")]
    pub api_key: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::conversation::present")]
    pub base_url: Option<Option<String>>,
    pub protocol: Option<Protocol>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::conversation::present")]
    pub default_model: Option<Option<ModelId>>,
    #[serde(default, deserialize_with = "crate::conversation::present")]
    pub summary_model: Option<Option<ModelId>>,
    pub models: Option<Vec<ModelInfo>>,
}

impl PutProviderConfig {
    /// Checks what can be checked without the catalog.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(Some(key)) = &self.api_key {
            let trimmed = key.trim();
            if trimmed.is_empty() || trimmed.chars().count() > API_KEY_MAX_CHARS {
                return Err(DomainError::validation(format!(
                    "api_key must be 1 to {API_KEY_MAX_CHARS} characters"
                )));
            }
            if trimmed.chars().any(char::is_control) {
                return Err(DomainError::validation(
                    "api_key must not contain control characters",
                ));
            }
        }
        if let Some(Some(url)) = &self.base_url {
            validate_base_url(url)?;
        }
        if let Some(models) = &self.models {
            if models.len() > MODELS_PER_PROVIDER_MAX {
                return Err(DomainError::validation(format!(
                    "models may declare at most {MODELS_PER_PROVIDER_MAX} models"
                )));
            }
            let mut seen = std::collections::HashSet::new();
            for model in models {
                model.validate()?;
                if !seen.insert(&model.id) {
                    return Err(DomainError::validation(format!(
                        "models declares {} twice",
                        model.id
                    )));
                }
            }
        }
        Ok(())
    }
}

/// An `http` or `https` URL with a host and no credentials, query or fragment.
pub fn validate_base_url(url: &str) -> Result<(), DomainError> {
    let invalid = || {
        DomainError::validation(
            "base_url must be an http(s) URL with a host, without credentials, query or fragment",
        )
    };
    if url.len() > BASE_URL_MAX_CHARS {
        return Err(invalid());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(invalid)?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty()
        || authority.contains('@')
        || url.contains('?')
        || url.contains('#')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid());
    }
    Ok(())
}

/// Keys shorter than this show nothing of themselves: four characters would be most of one.
pub const KEY_LAST4_MIN_CHARS: usize = 12;
/// The AES-GCM tag that follows a sealed key's ciphertext.
const SEAL_TAG_BYTES: usize = 16;

/// The last four characters of a key, all the API ever shows of it; nothing for a short key.
pub fn key_last4(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < KEY_LAST4_MIN_CHARS {
        return String::new();
    }
    chars[chars.len() - 4..].iter().collect()
}

impl SealedKey {
    /// What the API shows of the key. The sealed length also guards rows stored before short
    /// keys were hidden, whose `last4` may be the whole key.
    pub fn shown_last4(&self) -> Option<String> {
        let long_enough = self.ciphertext.len() >= KEY_LAST4_MIN_CHARS + SEAL_TAG_BYTES;
        (long_enough && !self.last4.is_empty()).then(|| self.last4.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_round_trip() {
        for p in [
            Protocol::OpenAi,
            Protocol::OpenAiResponses,
            Protocol::Anthropic,
            Protocol::Gemini,
            Protocol::Bedrock,
            Protocol::Echo,
        ] {
            assert_eq!(Protocol::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert!(!Protocol::Bedrock.allowed_for_custom());
    }

    #[test]
    fn base_urls() {
        for ok in [
            "https://api.openai.com/v1",
            "http://localhost:11434/v1",
            "http://10.0.0.2:8000",
        ] {
            assert!(validate_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@h/v1",
            "https://h/v1?x=1",
            "h/v1",
            "https://h /v1",
        ] {
            assert!(validate_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn put_body_validation() {
        let ok: PutProviderConfig = serde_json::from_str(
            r#"{"api_key":"sk-123456","models":[{"id":"m","context_window":1000,"max_output_tokens":100}]}"#,
        )
        .unwrap();
        assert!(ok.validate().is_ok());
        let null_key: PutProviderConfig = serde_json::from_str(r#"{"api_key":null}"#).unwrap();
        assert_eq!(null_key.api_key, Some(None));
        let bad: PutProviderConfig = serde_json::from_str(
            r#"{"models":[{"id":"m","context_window":100,"max_output_tokens":1000}]}"#,
        )
        .unwrap();
        assert!(bad.validate().is_err());
        let empty_key: PutProviderConfig = serde_json::from_str(r#"{"api_key":"  "}"#).unwrap();
        assert!(empty_key.validate().is_err());
        assert!(
            serde_json::from_str::<PutProviderConfig>(r#"{"protocol":"smoke-signals"}"#).is_err()
        );
    }

    #[test]
    fn last4() {
        assert_eq!(key_last4("sk-abcdef1234"), "1234");
        for short in ["", "ab", "abcd", "sk-12345678"] {
            assert_eq!(key_last4(short), "", "{short}");
        }
        let sealed = |plain_len: usize, last4: &str| SealedKey {
            ciphertext: vec![0; plain_len + SEAL_TAG_BYTES],
            nonce: vec![0; 12],
            wrapped_data_key: vec![1],
            vault_key_id: "local".into(),
            last4: last4.into(),
        };
        assert_eq!(sealed(20, "wxyz").shown_last4().as_deref(), Some("wxyz"));
        assert_eq!(sealed(3, "abc").shown_last4(), None, "a legacy short key");
        assert_eq!(sealed(20, "").shown_last4(), None);
    }
}
