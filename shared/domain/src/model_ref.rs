//! Which provider and model a conversation talks to.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

use crate::error::DomainError;
use crate::limits::{MODEL_ID_MAX_CHARS, PROVIDER_ID_MAX_CHARS};

/// A provider id: lowercase ASCII letters, digits, `-`, `_` and `.`, starting with a letter or
/// digit (`openai`, `azure-openai`, `my-vllm`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ::schemars::JsonSchema)]
#[serde(transparent)]
pub struct ProviderId(String);

impl ProviderId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid_start = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !valid_start || !valid_chars || raw.len() > PROVIDER_ID_MAX_CHARS {
            return Err(DomainError::validation(format!(
                "provider must be 1 to {PROVIDER_ID_MAX_CHARS} lowercase letters, digits, '-', '_' or '.'"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A model id as the provider names it (`gpt-4o`, `meta-llama/Llama-3.1-8B`, `llama3:8b`):
/// printable, no whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ::schemars::JsonSchema)]
#[serde(transparent)]
pub struct ModelId(String);

impl ModelId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let printable = raw.chars().all(|c| c.is_ascii_graphic());
        if raw.is_empty() || !printable || raw.len() > MODEL_ID_MAX_CHARS {
            return Err(DomainError::validation(format!(
                "model must be 1 to {MODEL_ID_MAX_CHARS} printable ASCII characters without spaces"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ProviderId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl<'de> Deserialize<'de> for ModelId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A provider and one of its models.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub provider: ProviderId,
    pub model: ModelId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids() {
        for ok in ["openai", "azure-openai", "my_vllm.2", "0x"] {
            assert!(ProviderId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "OpenAI", "-x", "a b", "é", &"a".repeat(65)] {
            assert!(ProviderId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn model_ids() {
        for ok in ["gpt-4o", "meta-llama/Llama-3.1-8B", "llama3:8b"] {
            assert!(ModelId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "gpt 4", "tab\t", &"m".repeat(201)] {
            assert!(ModelId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deserializing_validates() {
        let err =
            serde_json::from_str::<ModelRef>(r#"{"provider":"Bad Id","model":"m"}"#).unwrap_err();
        assert!(err.to_string().contains("provider must be"));
    }
}
