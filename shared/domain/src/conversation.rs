//! Conversations: the resource, its settings, and the validated create and update requests.

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::DomainError;
use crate::ids::{ConversationId, UserId};
use crate::limits::{
    FALLBACKS_MAX, MAX_OUTPUT_TOKENS_MAX, SYSTEM_PROMPT_MAX_CHARS, TEMPERATURE_MAX, TITLE_MAX_CHARS,
};
use crate::model_ref::{ModelId, ModelRef, ProviderId};
use crate::time::Timestamp;

pub const DEFAULT_TITLE: &str = "New conversation";

#[derive(Debug, Clone, PartialEq, Serialize, ::schemars::JsonSchema)]
pub struct Conversation {
    pub id: ConversationId,
    #[serde(skip)]
    pub user_id: UserId,
    pub title: String,
    pub provider: ProviderId,
    pub model: ModelId,
    pub system_prompt: Option<String>,
    pub settings: ConversationSettings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Conversation {
    /// Where a list of these stands after this one (conversations are listed newest-updated first, by `updated_at`).
    pub fn cursor_key(&self) -> crate::page::CursorKey {
        crate::page::CursorKey {
            at: self.updated_at,
            id: *self.id.as_uuid(),
        }
    }
}

/// Per-conversation generation settings. Unknown keys are refused so a typo is not silently
/// ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Tried in order when the conversation's own model fails before its first token.
    #[serde(default)]
    #[schemars(length(max = FALLBACKS_MAX))]
    pub fallbacks: Vec<ModelRef>,
}

impl ConversationSettings {
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(t) = self.temperature
            && !(0.0..=TEMPERATURE_MAX).contains(&t)
        {
            return Err(DomainError::validation(format!(
                "settings.temperature must be between 0 and {TEMPERATURE_MAX}"
            )));
        }
        if let Some(n) = self.max_output_tokens
            && !(1..=MAX_OUTPUT_TOKENS_MAX).contains(&n)
        {
            return Err(DomainError::validation(format!(
                "settings.max_output_tokens must be between 1 and {MAX_OUTPUT_TOKENS_MAX}"
            )));
        }
        if self.fallbacks.len() > FALLBACKS_MAX {
            return Err(DomainError::validation(format!(
                "settings.fallbacks may list at most {FALLBACKS_MAX} models"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if !self.fallbacks.iter().all(|f| seen.insert(f)) {
            return Err(DomainError::validation(
                "settings.fallbacks lists the same model twice",
            ));
        }
        Ok(())
    }
}

/// Body of `POST /api/conversations`.
#[derive(Debug, Default, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    #[schemars(length(max = TITLE_MAX_CHARS))]
    pub title: Option<String>,
    pub provider: Option<ProviderId>,
    pub model: Option<ModelId>,
    #[schemars(length(max = SYSTEM_PROMPT_MAX_CHARS))]
    pub system_prompt: Option<String>,
    pub settings: Option<ConversationSettings>,
}

impl CreateConversation {
    /// Validates the request and fills in defaults. A provider without a model takes that
    /// provider's default only when it is the default provider; otherwise the model is required.
    pub fn into_conversation(
        self,
        user_id: UserId,
        default_model: &ModelRef,
        now: Timestamp,
    ) -> Result<Conversation, DomainError> {
        let (provider, model) = match (self.provider, self.model) {
            (None, None) => (default_model.provider.clone(), default_model.model.clone()),
            (None, Some(model)) => (default_model.provider.clone(), model),
            (Some(p), None) if p == default_model.provider => (p, default_model.model.clone()),
            (Some(_), None) => {
                return Err(DomainError::validation(
                    "model is required when provider is given",
                ));
            }
            (Some(p), Some(m)) => (p, m),
        };
        let settings = self.settings.unwrap_or_default();
        settings.validate()?;
        Ok(Conversation {
            id: ConversationId::generate(),
            user_id,
            title: match self.title {
                Some(t) => validate_title(&t)?,
                None => DEFAULT_TITLE.to_owned(),
            },
            provider,
            model,
            system_prompt: validate_system_prompt(self.system_prompt)?,
            settings,
            created_at: now,
            updated_at: now,
        })
    }
}

/// Body of `PATCH /api/conversations/{id}`: every field optional; `system_prompt: null` clears
/// the prompt; `settings` replaces the settings as a whole.
#[derive(Debug, Default, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    #[schemars(length(max = TITLE_MAX_CHARS))]
    pub title: Option<String>,
    pub provider: Option<ProviderId>,
    pub model: Option<ModelId>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(length(max = SYSTEM_PROMPT_MAX_CHARS))]
    pub system_prompt: Option<Option<String>>,
    pub settings: Option<ConversationSettings>,
}

/// A validated change to a conversation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationPatch {
    pub title: Option<String>,
    pub provider: Option<ProviderId>,
    pub model: Option<ModelId>,
    pub system_prompt: Option<Option<String>>,
    pub settings: Option<ConversationSettings>,
}

impl ConversationPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl UpdateConversation {
    pub fn validate(self) -> Result<ConversationPatch, DomainError> {
        if self.provider.is_some() && self.model.is_none() {
            return Err(DomainError::validation(
                "model is required when provider changes",
            ));
        }
        if let Some(settings) = &self.settings {
            settings.validate()?;
        }
        Ok(ConversationPatch {
            title: self.title.as_deref().map(validate_title).transpose()?,
            provider: self.provider,
            model: self.model,
            system_prompt: self.system_prompt.map(validate_system_prompt).transpose()?,
            settings: self.settings,
        })
    }
}

/// Distinguishes an absent field (outer `None`) from an explicit `null` (`Some(None)`).
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn validate_title(raw: &str) -> Result<String, DomainError> {
    let title = raw.trim();
    if title.is_empty() || title.chars().count() > TITLE_MAX_CHARS {
        return Err(DomainError::validation(format!(
            "title must be 1 to {TITLE_MAX_CHARS} characters"
        )));
    }
    if title.chars().any(char::is_control) {
        return Err(DomainError::validation(
            "title must not contain control characters",
        ));
    }
    Ok(title.to_owned())
}

/// An empty prompt is the same as none.
fn validate_system_prompt(raw: Option<String>) -> Result<Option<String>, DomainError> {
    match raw {
        Some(p) if p.chars().count() > SYSTEM_PROMPT_MAX_CHARS => Err(DomainError::validation(
            format!("system_prompt must be at most {SYSTEM_PROMPT_MAX_CHARS} characters"),
        )),
        Some(p) if p.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::now;

    fn default_model() -> ModelRef {
        ModelRef {
            provider: ProviderId::parse("echo").unwrap(),
            model: ModelId::parse("echo-1").unwrap(),
        }
    }

    fn create(json: &str) -> Result<Conversation, DomainError> {
        let body: CreateConversation = serde_json::from_str(json).unwrap();
        body.into_conversation(UserId::generate(), &default_model(), now())
    }

    #[test]
    fn defaults_fill_an_empty_create() {
        let c = create("{}").unwrap();
        assert_eq!(c.title, DEFAULT_TITLE);
        assert_eq!(c.provider.as_str(), "echo");
        assert_eq!(c.model.as_str(), "echo-1");
        assert_eq!(c.system_prompt, None);
        assert_eq!(c.created_at, c.updated_at);
    }

    #[test]
    fn create_validates_fields() {
        assert!(create(r#"{"title":"  "}"#).is_err());
        assert!(create(&format!(r#"{{"title":"{}"}}"#, "t".repeat(201))).is_err());
        assert!(create(r#"{"provider":"openai"}"#).is_err());
        assert!(create(r#"{"settings":{"temperature":2.5}}"#).is_err());
        assert!(create(r#"{"settings":{"max_output_tokens":0}}"#).is_err());
        let dup = r#"{"settings":{"fallbacks":[{"provider":"a","model":"m"},{"provider":"a","model":"m"}]}}"#;
        assert!(create(dup).is_err());
        let ok = create(r#"{"title":" Trip ","provider":"openai","model":"gpt-4o","system_prompt":"Be brief.","settings":{"temperature":0.7}}"#).unwrap();
        assert_eq!(ok.title, "Trip");
        assert_eq!(ok.settings.temperature, Some(0.7));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<CreateConversation>(r#"{"titel":"x"}"#).is_err());
        assert!(
            serde_json::from_str::<CreateConversation>(r#"{"settings":{"temprature":1}}"#).is_err()
        );
    }

    #[test]
    fn patch_distinguishes_null_from_absent() {
        let absent: UpdateConversation = serde_json::from_str(r#"{"title":"x"}"#).unwrap();
        assert_eq!(absent.validate().unwrap().system_prompt, None);
        let null: UpdateConversation = serde_json::from_str(r#"{"system_prompt":null}"#).unwrap();
        assert_eq!(null.validate().unwrap().system_prompt, Some(None));
        let empty: UpdateConversation = serde_json::from_str("{}").unwrap();
        assert!(empty.validate().unwrap().is_empty());
    }

    #[test]
    fn patch_requires_model_with_provider() {
        let body: UpdateConversation = serde_json::from_str(r#"{"provider":"openai"}"#).unwrap();
        assert!(body.validate().is_err());
    }
}
