//! Rows as both stores hold them, and their conversion to and from domain types, so the checks
//! on what comes back from a database are written once. Every text and JSON value a row carries
//! on its way in is cleaned here of NUL (U+0000, which PostgreSQL's `text` and `jsonb` cannot
//! hold; it becomes U+FFFD): whatever a provider, a tool or an MCP server sent can always be
//! written, and both stores hold the same.

use bestchat_domain::ErrorCode;
use bestchat_domain::context::{ContextOptimization, Strategy};
use bestchat_domain::conversation::{Conversation, ConversationSettings};
use bestchat_domain::file::Attachment;
use bestchat_domain::ids::{ConversationId, MessageId, ToolExecutionId, UserId};
use bestchat_domain::mcp::{McpServer, McpServerId};
use bestchat_domain::message::{
    FinishReason, Message, MessageError, MessageStatus, Role, ToolCall, Usage,
};
use bestchat_domain::model_ref::{ModelId, ProviderId};
use bestchat_domain::ports::store::StoreError;
use bestchat_domain::provider::{ModelInfo, Protocol, ProviderConfig, SealedKey};
use bestchat_domain::text::{replace_nul, replace_nul_in_json};
use bestchat_domain::time::Timestamp;
use bestchat_domain::tool::{
    DecidedBy, ExecutionDecision, ExecutionError, ExecutionStatus, ToolExecution, Verdict,
};
use uuid::Uuid;

fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("unreadable row: {what}"))
}

fn json(value: &impl serde::Serialize) -> Result<serde_json::Value, StoreError> {
    let mut value = serde_json::to_value(value).map_err(|e| StoreError::Internal(e.to_string()))?;
    replace_nul_in_json(&mut value);
    Ok(value)
}

/// Text as both stores hold it.
pub(crate) fn text(value: &str) -> String {
    replace_nul(value).into_owned()
}

fn text_opt(value: Option<&String>) -> Option<String> {
    value.map(|v| text(v))
}

/// A JSON value as both stores hold it.
pub(crate) fn clean_json(value: &serde_json::Value) -> serde_json::Value {
    let mut value = value.clone();
    replace_nul_in_json(&mut value);
    value
}

fn count(n: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| corrupt(what))
}

pub(crate) struct ConversationRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub provider: String,
    pub model: String,
    pub system_prompt: Option<String>,
    pub settings: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ConversationRow {
    pub fn into_domain(self) -> Result<Conversation, StoreError> {
        Ok(Conversation {
            id: ConversationId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            title: self.title,
            provider: ProviderId::parse(&self.provider)
                .map_err(|_| corrupt("conversations.provider"))?,
            model: ModelId::parse(&self.model).map_err(|_| corrupt("conversations.model"))?,
            system_prompt: self.system_prompt,
            settings: serde_json::from_value::<ConversationSettings>(self.settings)
                .map_err(|_| corrupt("conversations.settings"))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) fn settings_json(
    settings: &ConversationSettings,
) -> Result<serde_json::Value, StoreError> {
    json(settings)
}

pub(crate) struct MessageRow {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub content: String,
    pub status: String,
    pub client_message_id: Option<String>,
    pub reply_to: Option<Uuid>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tool_calls: serde_json::Value,
    pub tool_call_id: Option<String>,
    pub token_count: i64,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cost_micros: Option<i64>,
    pub finish_reason: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub attachments: serde_json::Value,
}

impl MessageRow {
    pub fn from_domain(m: &Message) -> Result<Self, StoreError> {
        Ok(Self {
            id: *m.id.as_uuid(),
            conversation_id: *m.conversation_id.as_uuid(),
            user_id: *m.user_id.as_uuid(),
            role: m.role.as_str().to_owned(),
            content: text(&m.content),
            status: m.status.as_str().to_owned(),
            client_message_id: text_opt(m.client_message_id.as_ref()),
            reply_to: m.reply_to.map(|id| *id.as_uuid()),
            provider: m.provider.as_ref().map(|p| p.as_str().to_owned()),
            model: m.model.as_ref().map(|p| p.as_str().to_owned()),
            tool_calls: json(&m.tool_calls)?,
            tool_call_id: text_opt(m.tool_call_id.as_ref()),
            token_count: i64::from(m.token_count),
            input_tokens: m.usage.map(|u| i64::from(u.input_tokens)),
            output_tokens: m.usage.map(|u| i64::from(u.output_tokens)),
            cached_tokens: m.usage.map(|u| i64::from(u.cached_tokens)),
            cost_micros: m.usage.and_then(|u| u.cost_micros),
            finish_reason: m.finish_reason.map(|f| f.as_str().to_owned()),
            error_code: m.error.as_ref().map(|e| e.code.as_str().to_owned()),
            error_message: m.error.as_ref().map(|e| text(&e.message)),
            created_at: m.created_at,
            updated_at: m.updated_at,
            attachments: json(&m.attachments)?,
        })
    }

    pub fn into_domain(self) -> Result<Message, StoreError> {
        let usage = match (self.input_tokens, self.output_tokens) {
            (Some(input), Some(output)) => Some(Usage {
                input_tokens: count(input, "messages.input_tokens")?,
                output_tokens: count(output, "messages.output_tokens")?,
                cached_tokens: count(self.cached_tokens.unwrap_or(0), "messages.cached_tokens")?,
                cost_micros: self.cost_micros,
            }),
            _ => None,
        };
        let error = match (self.error_code, self.error_message) {
            (Some(code), Some(message)) => Some(MessageError {
                code: ErrorCode::parse(&code).ok_or_else(|| corrupt("messages.error_code"))?,
                message,
            }),
            _ => None,
        };
        Ok(Message {
            id: MessageId::from_uuid(self.id),
            conversation_id: ConversationId::from_uuid(self.conversation_id),
            user_id: UserId::from_uuid(self.user_id),
            role: Role::parse(&self.role).ok_or_else(|| corrupt("messages.role"))?,
            content: self.content,
            status: MessageStatus::parse(&self.status).ok_or_else(|| corrupt("messages.status"))?,
            client_message_id: self.client_message_id,
            reply_to: self.reply_to.map(MessageId::from_uuid),
            provider: self
                .provider
                .map(|p| ProviderId::parse(&p))
                .transpose()
                .map_err(|_| corrupt("messages.provider"))?,
            model: self
                .model
                .map(|m| ModelId::parse(&m))
                .transpose()
                .map_err(|_| corrupt("messages.model"))?,
            tool_calls: serde_json::from_value::<Vec<ToolCall>>(self.tool_calls)
                .map_err(|_| corrupt("messages.tool_calls"))?,
            tool_call_id: self.tool_call_id,
            token_count: count(self.token_count, "messages.token_count")?,
            usage,
            finish_reason: self
                .finish_reason
                .map(|f| FinishReason::parse(&f).ok_or_else(|| corrupt("messages.finish_reason")))
                .transpose()?,
            error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            attachments: serde_json::from_value::<Vec<Attachment>>(self.attachments)
                .map_err(|_| corrupt("messages.attachments"))?,
            content_omitted: false,
        })
    }
}

pub(crate) struct ProviderConfigRow {
    pub user_id: Uuid,
    pub provider: String,
    pub protocol: String,
    pub base_url: Option<String>,
    pub enabled: bool,
    pub default_model: Option<String>,
    pub summary_model: Option<String>,
    pub models: serde_json::Value,
    pub key_ciphertext: Option<Vec<u8>>,
    pub key_nonce: Option<Vec<u8>>,
    pub wrapped_data_key: Option<Vec<u8>>,
    pub key_vault_id: Option<String>,
    pub key_last4: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ProviderConfigRow {
    pub fn from_domain(c: &ProviderConfig) -> Result<Self, StoreError> {
        let key = c.key.as_ref();
        Ok(Self {
            user_id: *c.user_id.as_uuid(),
            provider: c.provider.as_str().to_owned(),
            protocol: c.protocol.as_str().to_owned(),
            base_url: text_opt(c.base_url.as_ref()),
            enabled: c.enabled,
            default_model: c.default_model.as_ref().map(|m| m.as_str().to_owned()),
            summary_model: c.summary_model.as_ref().map(|m| m.as_str().to_owned()),
            models: json(&c.models)?,
            key_ciphertext: key.map(|k| k.ciphertext.clone()),
            key_nonce: key.map(|k| k.nonce.clone()),
            wrapped_data_key: key.map(|k| k.wrapped_data_key.clone()),
            key_vault_id: key.map(|k| k.vault_key_id.clone()),
            key_last4: key.map(|k| k.last4.clone()),
            created_at: c.created_at,
            updated_at: c.updated_at,
        })
    }

    pub fn into_domain(self) -> Result<ProviderConfig, StoreError> {
        let key = match (self.key_ciphertext, self.wrapped_data_key) {
            (Some(ciphertext), Some(wrapped_data_key)) => Some(SealedKey {
                ciphertext,
                nonce: self
                    .key_nonce
                    .ok_or_else(|| corrupt("provider_configs.key_nonce"))?,
                wrapped_data_key,
                vault_key_id: self
                    .key_vault_id
                    .ok_or_else(|| corrupt("provider_configs.key_vault_id"))?,
                last4: self.key_last4.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(ProviderConfig {
            user_id: UserId::from_uuid(self.user_id),
            provider: ProviderId::parse(&self.provider)
                .map_err(|_| corrupt("provider_configs.provider"))?,
            protocol: Protocol::parse(&self.protocol)
                .ok_or_else(|| corrupt("provider_configs.protocol"))?,
            base_url: self.base_url,
            enabled: self.enabled,
            default_model: self
                .default_model
                .map(|m| ModelId::parse(&m))
                .transpose()
                .map_err(|_| corrupt("provider_configs.default_model"))?,
            summary_model: self
                .summary_model
                .map(|m| ModelId::parse(&m))
                .transpose()
                .map_err(|_| corrupt("provider_configs.summary_model"))?,
            models: serde_json::from_value::<Vec<ModelInfo>>(self.models)
                .map_err(|_| corrupt("provider_configs.models"))?,
            key,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) struct OptimizationRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    pub message_id: Option<Uuid>,
    pub strategy: String,
    pub tokens_before: i64,
    pub tokens_after: i64,
    pub range_start_id: Option<Uuid>,
    pub range_end_id: Option<Uuid>,
    pub messages_affected: i64,
    pub summary: Option<String>,
    pub summary_model: Option<String>,
    pub created_at: Timestamp,
}

impl OptimizationRow {
    pub fn from_domain(o: &ContextOptimization) -> Self {
        Self {
            id: o.id,
            user_id: *o.user_id.as_uuid(),
            conversation_id: *o.conversation_id.as_uuid(),
            message_id: o.message_id.map(|m| *m.as_uuid()),
            strategy: o.strategy.as_str().to_owned(),
            tokens_before: i64::from(o.tokens_before),
            tokens_after: i64::from(o.tokens_after),
            range_start_id: o.range_start.map(|m| *m.as_uuid()),
            range_end_id: o.range_end.map(|m| *m.as_uuid()),
            messages_affected: i64::from(o.messages_affected),
            summary: text_opt(o.summary.as_ref()),
            summary_model: text_opt(o.summary_model.as_ref()),
            created_at: o.created_at,
        }
    }

    pub fn into_domain(self) -> Result<ContextOptimization, StoreError> {
        Ok(ContextOptimization {
            id: self.id,
            user_id: UserId::from_uuid(self.user_id),
            conversation_id: ConversationId::from_uuid(self.conversation_id),
            message_id: self.message_id.map(MessageId::from_uuid),
            strategy: Strategy::parse(&self.strategy)
                .ok_or_else(|| corrupt("context_optimizations.strategy"))?,
            tokens_before: count(self.tokens_before, "context_optimizations.tokens_before")?,
            tokens_after: count(self.tokens_after, "context_optimizations.tokens_after")?,
            range_start: self.range_start_id.map(MessageId::from_uuid),
            range_end: self.range_end_id.map(MessageId::from_uuid),
            messages_affected: count(
                self.messages_affected,
                "context_optimizations.messages_affected",
            )?,
            summary: self.summary,
            summary_model: self.summary_model,
            created_at: self.created_at,
        })
    }
}

/// A `tool_executions` row.
pub(crate) struct ExecutionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub tool_call_id: String,
    pub tool_name: String,
    pub arguments: serde_json::Value,
    pub risk: String,
    pub status: String,
    pub decision: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub decision_verdict: Option<String>,
    pub decision_rule: Option<String>,
    pub decision_connection: Option<String>,
    pub result: Option<serde_json::Value>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub usage: Option<serde_json::Value>,
    pub request: Option<serde_json::Value>,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The columns of `ExecutionRow`, in its order.
macro_rules! execution_columns {
    () => {
        "id, user_id, conversation_id, message_id, tool_call_id, tool_name, arguments, risk,
         status, decision, decided_at, decision_verdict, decision_rule, decision_connection,
         result, error_code, error, duration_ms, usage, request, expires_at, created_at,
         updated_at"
    };
}
pub(crate) use execution_columns;

impl ExecutionRow {
    pub fn from_domain(e: &ToolExecution) -> Result<Self, StoreError> {
        let d = e.decision.as_ref();
        Ok(Self {
            id: *e.id.as_uuid(),
            user_id: *e.user_id.as_uuid(),
            conversation_id: *e.conversation_id.as_uuid(),
            message_id: *e.message_id.as_uuid(),
            tool_call_id: text(&e.tool_call_id),
            tool_name: text(&e.tool),
            arguments: clean_json(&e.arguments),
            risk: text(&e.risk),
            status: e.status.as_str().to_owned(),
            decision: d.map(|d| d.by.as_str().to_owned()),
            decided_at: d.map(|d| d.at),
            decision_verdict: d.map(|d| d.verdict.as_str().to_owned()),
            decision_rule: d.map(|d| text(&d.rule)),
            decision_connection: d.and_then(|d| text_opt(d.connection_id.as_ref())),
            result: e.output.as_ref().map(clean_json),
            error_code: e.error.as_ref().map(|x| text(&x.code)),
            error: e.error.as_ref().map(|x| text(&x.message)),
            duration_ms: e
                .usage
                .map(|u| i64::try_from(u.wall_ms).unwrap_or(i64::MAX)),
            usage: e.usage.as_ref().map(json).transpose()?,
            request: (!e.request.is_null()).then(|| clean_json(&e.request)),
            expires_at: e.expires_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
        })
    }

    pub fn into_domain(self) -> Result<ToolExecution, StoreError> {
        let decision = match (
            self.decision,
            self.decided_at,
            self.decision_verdict,
            self.decision_rule,
        ) {
            (Some(by), Some(at), Some(verdict), rule) => Some(ExecutionDecision {
                // Rows written before the loop existed said `auto`: the policy's doing.
                by: DecidedBy::parse(&by).unwrap_or(DecidedBy::Policy),
                verdict: Verdict::parse(&verdict)
                    .ok_or_else(|| corrupt("tool_executions.decision_verdict"))?,
                rule: rule.unwrap_or_default(),
                at,
                connection_id: self.decision_connection,
            }),
            _ => None,
        };
        let error = match (self.error_code, self.error) {
            (Some(code), Some(message)) => Some(ExecutionError { code, message }),
            (None, Some(message)) => Some(ExecutionError {
                code: "failed".into(),
                message,
            }),
            _ => None,
        };
        Ok(ToolExecution {
            id: ToolExecutionId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            conversation_id: ConversationId::from_uuid(self.conversation_id),
            message_id: MessageId::from_uuid(self.message_id),
            tool_call_id: self.tool_call_id,
            tool: self.tool_name,
            risk: self.risk,
            arguments: self.arguments,
            status: ExecutionStatus::parse(&self.status)
                .ok_or_else(|| corrupt("tool_executions.status"))?,
            decision,
            output: self.result,
            error,
            usage: self
                .usage
                .map(serde_json::from_value)
                .transpose()
                .map_err(|_| corrupt("tool_executions.usage"))?,
            request: self.request.unwrap_or_default(),
            expires_at: self.expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// An `mcp_servers` row; the sealed headers as one JSON object (base64 fields).
pub(crate) struct McpServerRow {
    pub user_id: Uuid,
    pub id: String,
    pub url: String,
    pub header_names: serde_json::Value,
    pub headers_sealed: Option<serde_json::Value>,
    pub trusted: bool,
    pub enabled: bool,
    pub protocol: Option<String>,
    pub tools: serde_json::Value,
    pub tools_fetched_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

macro_rules! mcp_columns {
    () => {
        "user_id, id, url, header_names, headers_sealed, trusted, enabled, protocol, tools,
         tools_fetched_at, created_at, updated_at"
    };
}
pub(crate) use mcp_columns;

fn sealed_json(key: &SealedKey) -> serde_json::Value {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    serde_json::json!({
        "ciphertext": b64(&key.ciphertext),
        "nonce": b64(&key.nonce),
        "wrapped_data_key": b64(&key.wrapped_data_key),
        "vault_key_id": key.vault_key_id,
    })
}

fn sealed_of(value: &serde_json::Value) -> Result<SealedKey, StoreError> {
    use base64::Engine as _;
    let field = |name: &str| -> Result<Vec<u8>, StoreError> {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or_else(|| corrupt("mcp_servers.headers_sealed"))
    };
    Ok(SealedKey {
        ciphertext: field("ciphertext")?,
        nonce: field("nonce")?,
        wrapped_data_key: field("wrapped_data_key")?,
        vault_key_id: value
            .get("vault_key_id")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| corrupt("mcp_servers.headers_sealed"))?
            .to_owned(),
        last4: String::new(),
    })
}

impl McpServerRow {
    pub fn from_domain(s: &McpServer) -> Result<Self, StoreError> {
        Ok(Self {
            user_id: *s.user_id.as_uuid(),
            id: s.id.as_str().to_owned(),
            url: text(&s.url),
            header_names: json(&s.header_names)?,
            headers_sealed: s.headers.as_ref().map(sealed_json),
            trusted: s.trusted,
            enabled: s.enabled,
            protocol: text_opt(s.protocol.as_ref()),
            tools: clean_json(&s.tools),
            tools_fetched_at: s.tools_fetched_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
        })
    }

    pub fn into_domain(self) -> Result<McpServer, StoreError> {
        Ok(McpServer {
            user_id: UserId::from_uuid(self.user_id),
            id: McpServerId::parse(&self.id).map_err(|_| corrupt("mcp_servers.id"))?,
            url: self.url,
            header_names: serde_json::from_value(self.header_names)
                .map_err(|_| corrupt("mcp_servers.header_names"))?,
            headers: self.headers_sealed.as_ref().map(sealed_of).transpose()?,
            trusted: self.trusted,
            enabled: self.enabled,
            protocol: self.protocol,
            tools: self.tools,
            tools_fetched_at: self.tools_fetched_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}
