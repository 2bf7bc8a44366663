//! The route table: each HTTP operation declared once, with its function, handler, contract
//! and an example body. The OpenAPI document, the `http-api` Lambda binary, the local
//! gateway and the checks of the template's routes all read it.

use bestchat_domain::conversation::{Conversation, CreateConversation, UpdateConversation};
use bestchat_domain::file::FileRecord;
use bestchat_domain::message::Message;
use bestchat_domain::page::{Items, Page};
use bestchat_domain::provider::{ModelInfo, PutProviderConfig};
use bestchat_domain::tool::ToolExecution;
use bestchat_domain::usage::UsageReport;
use bestchat_tools::policy::AutoApproval;
use schemars::generate::SchemaGenerator;
use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::admin::{AdminUser, OperatorBudget};
use crate::api::billing::{Billing, CheckoutRequest, CheckoutStarted};
use crate::api::budget::PersonalLimit;
use crate::api::files::{Announced, FileLimits, NewFile};
use crate::api::health::Health;
use crate::api::messages::Retried;
use crate::api::{self, Handler};
use crate::budget::BudgetView;
use crate::config::Uses;
use crate::http::Empty;
use crate::mcp::servers::{PutServer, ServerView};
use crate::models::ProviderList;
use crate::provider_configs::ProviderConfigView;
pub use crate::rate_limit::RateClass;
use crate::send::{SendMessage, SentPair};
use crate::settings::FetchHosts;
use crate::tools::registration::{RegisterTool, ToolView};

pub type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

pub fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A query parameter: its name, what it means, and whether it is a whole number.
#[derive(Clone, Copy)]
pub struct Query {
    pub name: &'static str,
    pub description: &'static str,
    pub integer: bool,
}

const PAGED: &[Query] = &[
    Query {
        name: "limit",
        description: "1 to 200 items, 50 when absent",
        integer: true,
    },
    Query {
        name: "cursor",
        description: "next_cursor of the previous page",
        integer: false,
    },
];

const EXECUTIONS: &[Query] = &[
    Query {
        name: "status",
        description: "only executions with this status",
        integer: false,
    },
    Query {
        name: "conversation_id",
        description: "only this conversation's executions",
        integer: false,
    },
    PAGED[0],
    PAGED[1],
];

const USAGE: &[Query] = &[
    Query {
        name: "from",
        description: "RFC 3339; rows at or after it (open when absent)",
        integer: false,
    },
    Query {
        name: "to",
        description: "RFC 3339; rows before it (open when absent)",
        integer: false,
    },
    Query {
        name: "group_by",
        description: "day (UTC, the default), model, provider or conversation",
        integer: false,
    },
];

/// One HTTP route, declared once: its function (the template's binary), its handler, and the
/// contract it keeps. The OpenAPI document, the local gateway's handlers and the checks of the
/// template's routes all read this table.
pub struct Operation {
    /// The Lambda function's name in the template (`BESTCHAT_OPERATION` selects it in the
    /// `http-api` binary).
    pub function: &'static str,
    pub handler: Handler,
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub query: &'static [Query],
    pub body: Option<RequestBody>,
    /// The success status and its body (`None`: no body, as for 204).
    pub status: u16,
    pub answer: Option<SchemaOf>,
    /// Another success status with the same body (a repeated idempotent request).
    pub also: Option<u16>,
    pub public: bool,
    /// What the function reaches: one that uses neither the database nor the cache runs
    /// outside the VPC.
    pub reaches: Uses,
    /// Which of the user's rate limits a request counts against (`x-rate-limit-class`).
    pub class: RateClass,
}

/// Reads are GETs; everything else writes unless its entry says otherwise.
const fn class_of(method: &str) -> RateClass {
    match method.as_bytes() {
        b"GET" => RateClass::Read,
        _ => RateClass::Write,
    }
}

/// A request body: its schema, and a valid example the document shows and the adversarial
/// suite varies into bad ones.
#[derive(Clone, Copy)]
pub struct RequestBody {
    pub schema: SchemaOf,
    pub example: fn() -> Value,
    /// Whether a value decodes as the body's type (the examples are checked with it).
    pub decodes: fn(&Value) -> bool,
}

fn decodes<T: DeserializeOwned>(value: &Value) -> bool {
    serde_json::from_value::<T>(value.clone()).is_ok()
}

const fn op(
    function: &'static str,
    handler: Handler,
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    status: u16,
    answer: Option<SchemaOf>,
) -> Operation {
    Operation {
        function,
        handler,
        method,
        path,
        summary,
        query: &[],
        body: None,
        status,
        answer,
        also: None,
        public: false,
        reaches: Uses::EVERYTHING,
        class: class_of(method),
    }
}

impl Operation {
    const fn with_body<T: JsonSchema + DeserializeOwned>(mut self, example: fn() -> Value) -> Self {
        self.body = Some(RequestBody {
            schema: schema::<T>,
            example,
            decodes: decodes::<T>,
        });
        self
    }

    const fn with_query(mut self, query: &'static [Query]) -> Self {
        self.query = query;
        self
    }

    const fn also(mut self, status: u16) -> Self {
        self.also = Some(status);
        self
    }

    const fn public(mut self) -> Self {
        self.public = true;
        self
    }

    const fn reaching(mut self, reaches: Uses) -> Self {
        self.reaches = reaches;
        self
    }

    const fn starts_turns(mut self) -> Self {
        self.class = RateClass::Turn;
        self
    }

    /// An admin route: its own rate class (the handler refuses non-admins).
    const fn admin(mut self) -> Self {
        self.class = RateClass::Admin;
        self
    }
}

pub const OPERATIONS: &[Operation] = &[
    op(
        "health",
        api::health::GET,
        "GET",
        "/api/health",
        "Liveness",
        200,
        Some(schema::<Health>),
    )
    .public()
    .reaching(Uses::NOTHING),
    op(
        "openapi",
        crate::openapi::GET,
        "GET",
        "/api/openapi.json",
        "This document",
        200,
        None,
    )
    .public()
    .reaching(Uses::NOTHING),
    op(
        "conversations-create",
        api::conversations::CREATE,
        "POST",
        "/api/conversations",
        "Create a conversation",
        201,
        Some(schema::<Conversation>),
    )
    .with_body::<CreateConversation>(examples::conversation),
    op(
        "conversations-list",
        api::conversations::LIST,
        "GET",
        "/api/conversations",
        "The user's conversations, newest-updated first",
        200,
        Some(schema::<Page<Conversation>>),
    )
    .with_query(CONVERSATION_LIST),
    op(
        "conversations-get",
        api::conversations::GET,
        "GET",
        "/api/conversations/{id}",
        "One conversation",
        200,
        Some(schema::<Conversation>),
    ),
    op(
        "conversations-update",
        api::conversations::UPDATE,
        "PATCH",
        "/api/conversations/{id}",
        "Change a conversation",
        200,
        Some(schema::<Conversation>),
    )
    .with_body::<UpdateConversation>(examples::conversation),
    op(
        "conversations-delete",
        api::conversations::DELETE,
        "DELETE",
        "/api/conversations/{id}",
        "Delete a conversation and everything under it",
        204,
        None,
    ),
    op(
        "messages-list",
        api::messages::LIST,
        "GET",
        "/api/conversations/{id}/messages",
        "Its messages, oldest first",
        200,
        Some(schema::<Page<Message>>),
    )
    .with_query(PAGED),
    op(
        "messages-get",
        api::messages::GET,
        "GET",
        "/api/conversations/{id}/messages/{message_id}",
        "One message",
        200,
        Some(schema::<Message>),
    ),
    op(
        "messages-send",
        api::messages::SEND,
        "POST",
        "/api/conversations/{id}/messages",
        "Send a message; 202 starts its answer, 200 repeats an earlier client_message_id",
        202,
        Some(schema::<SentPair>),
    )
    .also(200)
    .with_body::<SendMessage>(examples::message)
    .starts_turns(),
    op(
        "messages-retry",
        api::messages::RETRY,
        "POST",
        "/api/conversations/{id}/messages/{message_id}/retry",
        "Run a failed last answer again as the same turn",
        202,
        Some(schema::<Retried>),
    )
    .with_body::<Empty>(examples::empty)
    .starts_turns(),
    op(
        "providers-list",
        api::providers::LIST_PROVIDERS,
        "GET",
        "/api/providers",
        "Providers with their state and models",
        200,
        Some(schema::<ProviderList>),
    ),
    op(
        "models-list",
        api::providers::LIST_MODELS,
        "GET",
        "/api/models",
        "Models of the providers this user can use",
        200,
        Some(schema::<Items<ModelInfo>>),
    ),
    op(
        "provider-configs-list",
        api::provider_configs::LIST,
        "GET",
        "/api/provider-configs",
        "The user's provider configurations",
        200,
        Some(schema::<Items<ProviderConfigView>>),
    ),
    op(
        "provider-configs-put",
        api::provider_configs::PUT,
        "PUT",
        "/api/provider-configs/{provider}",
        "Configure a provider (the key is write-only)",
        200,
        Some(schema::<ProviderConfigView>),
    )
    .with_body::<PutProviderConfig>(examples::provider_config),
    op(
        "provider-configs-delete",
        api::provider_configs::DELETE,
        "DELETE",
        "/api/provider-configs/{provider}",
        "Forget a provider configuration",
        204,
        None,
    ),
    op(
        "settings-auto-approval-get",
        api::settings::GET_AUTO_APPROVAL,
        "GET",
        "/api/settings/auto-approval",
        "Auto-approval rules",
        200,
        Some(schema::<AutoApproval>),
    ),
    op(
        "settings-auto-approval-put",
        api::settings::PUT_AUTO_APPROVAL,
        "PUT",
        "/api/settings/auto-approval",
        "Replace the auto-approval rules",
        200,
        Some(schema::<AutoApproval>),
    )
    .with_body::<AutoApproval>(examples::auto_approval),
    op(
        "settings-fetch-hosts-get",
        api::settings::GET_FETCH_HOSTS,
        "GET",
        "/api/settings/fetch-hosts",
        "Hosts http_fetch may reach",
        200,
        Some(schema::<FetchHosts>),
    ),
    op(
        "settings-fetch-hosts-put",
        api::settings::PUT_FETCH_HOSTS,
        "PUT",
        "/api/settings/fetch-hosts",
        "Replace the hosts http_fetch may reach",
        200,
        Some(schema::<FetchHosts>),
    )
    .with_body::<FetchHosts>(examples::fetch_hosts),
    op(
        "tools-create",
        api::tools::CREATE,
        "POST",
        "/api/tools",
        "Register a WebAssembly tool",
        201,
        Some(schema::<ToolView>),
    )
    .with_body::<RegisterTool>(examples::tool),
    op(
        "tools-list",
        api::tools::LIST,
        "GET",
        "/api/tools",
        "Built-in, own and MCP tools",
        200,
        Some(schema::<Items<ToolView>>),
    ),
    op(
        "tools-delete",
        api::tools::DELETE,
        "DELETE",
        "/api/tools/{id}",
        "Remove an own tool",
        204,
        None,
    ),
    op(
        "tool-executions-list",
        api::tool_executions::LIST,
        "GET",
        "/api/tool-executions",
        "Tool calls, newest first",
        200,
        Some(schema::<Page<ToolExecution>>),
    )
    .with_query(EXECUTIONS),
    op(
        "tool-executions-approve",
        api::tool_executions::APPROVE,
        "POST",
        "/api/tool-executions/{id}/approve",
        "Approve a waiting call",
        200,
        Some(schema::<ToolExecution>),
    )
    .with_body::<Empty>(examples::empty),
    op(
        "tool-executions-deny",
        api::tool_executions::DENY,
        "POST",
        "/api/tool-executions/{id}/deny",
        "Deny a waiting call",
        200,
        Some(schema::<ToolExecution>),
    )
    .with_body::<Empty>(examples::empty),
    op(
        "mcp-servers-list",
        api::mcp_servers::LIST,
        "GET",
        "/api/mcp-servers",
        "The user's MCP servers",
        200,
        Some(schema::<Items<ServerView>>),
    ),
    op(
        "mcp-servers-put",
        api::mcp_servers::PUT,
        "PUT",
        "/api/mcp-servers/{id}",
        "Add or change an MCP server (header values are write-only)",
        200,
        Some(schema::<ServerView>),
    )
    .with_body::<PutServer>(examples::mcp_server),
    op(
        "mcp-servers-delete",
        api::mcp_servers::DELETE,
        "DELETE",
        "/api/mcp-servers/{id}",
        "Remove an MCP server",
        204,
        None,
    ),
    op(
        "usage-get",
        api::usage::GET,
        "GET",
        "/api/usage",
        "The caller's usage in tokens and money, grouped",
        200,
        Some(schema::<UsageReport>),
    )
    .with_query(USAGE),
    op(
        "budget-get",
        api::budget::GET,
        "GET",
        "/api/budget",
        "The caller's spending limit, spent and held money, and own cap",
        200,
        Some(schema::<BudgetView>),
    ),
    op(
        "budget-put",
        api::budget::PUT,
        "PUT",
        "/api/budget",
        "Set or clear the caller's own cap (it only lowers the operator's limit)",
        200,
        Some(schema::<BudgetView>),
    )
    .with_body::<PersonalLimit>(examples::personal_limit),
    op(
        "admin-users-list",
        api::admin::USERS,
        "GET",
        "/api/admin/users",
        "Users with what they spent and may spend (admins only)",
        200,
        Some(schema::<Page<AdminUser>>),
    )
    .with_query(PAGED)
    .admin(),
    op(
        "admin-users-budget-put",
        api::admin::PUT_BUDGET,
        "PUT",
        "/api/admin/users/{id}/budget",
        "Set a user's spending limit and period (admins only)",
        200,
        Some(schema::<BudgetView>),
    )
    .with_body::<OperatorBudget>(examples::operator_budget)
    .admin(),
    op(
        "admin-usage-get",
        api::admin::USAGE,
        "GET",
        "/api/admin/usage",
        "Every user's usage, grouped (also by user; admins only)",
        200,
        Some(schema::<UsageReport>),
    )
    .with_query(ADMIN_USAGE)
    .admin(),
    op(
        "billing-checkout",
        api::billing::CHECKOUT,
        "POST",
        "/api/billing/checkout",
        "Start a Stripe Checkout for prepaid credit",
        200,
        Some(schema::<CheckoutStarted>),
    )
    .with_body::<CheckoutRequest>(examples::checkout),
    op(
        "billing-webhook",
        api::billing::WEBHOOK,
        "POST",
        "/api/billing/webhook",
        "Stripe's events (signed with Stripe-Signature; no token)",
        200,
        None,
    )
    .public(),
    op(
        "billing-get",
        api::billing::GET,
        "GET",
        "/api/billing",
        "The caller's prepaid balance and payments",
        200,
        Some(schema::<Billing>),
    ),
    op(
        "files-create",
        api::files::CREATE,
        "POST",
        "/api/files",
        "Announce an upload; answered with a presigned PUT bound to its size, type and SHA-256",
        201,
        Some(schema::<Announced>),
    )
    .with_body::<NewFile>(examples::new_file),
    op(
        "files-complete",
        api::files::COMPLETE,
        "POST",
        "/api/files/{id}/complete",
        "Verify the uploaded bytes and start processing them",
        202,
        Some(schema::<FileRecord>),
    )
    .with_body::<Empty>(examples::empty),
    op(
        "files-list",
        api::files::LIST,
        "GET",
        "/api/files",
        "The caller's files, newest first",
        200,
        Some(schema::<Page<FileRecord>>),
    )
    .with_query(PAGED),
    op(
        "files-limits",
        api::files::LIMITS,
        "GET",
        "/api/files/limits",
        "What the caller may upload: size per file, files per message, storage and what is used",
        200,
        Some(schema::<FileLimits>),
    ),
    op(
        "files-get",
        api::files::GET,
        "GET",
        "/api/files/{id}",
        "One file of the caller's",
        200,
        Some(schema::<FileRecord>),
    ),
    op(
        "files-content",
        api::files::CONTENT,
        "GET",
        "/api/files/{id}/content",
        "Redirect to a short-lived presigned download of the file",
        302,
        None,
    ),
    op(
        "files-delete",
        api::files::DELETE,
        "DELETE",
        "/api/files/{id}",
        "Delete a file and, once no other file holds them, its bytes",
        204,
        None,
    ),
];

const ADMIN_USAGE: &[Query] = &[
    USAGE[0],
    USAGE[1],
    Query {
        name: "group_by",
        description: "day (UTC, the default), model, provider, conversation or user",
        integer: false,
    },
];

const CONVERSATION_LIST: &[Query] = &[
    Query {
        name: "q",
        description: "only conversations whose title contains this text (case-insensitive)",
        integer: false,
    },
    PAGED[0],
    PAGED[1],
];

/// The operation a function name selects.
pub fn operation(function: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.function == function)
}

/// Valid request bodies, one per body type.
mod examples {
    use serde_json::{Value, json};

    pub fn conversation() -> Value {
        json!({"title": "Trip plans", "provider": "echo", "model": "echo-1",
            "system_prompt": "Answer briefly.", "settings": {"temperature": 0.5,
            "max_output_tokens": 100, "fallbacks": [{"provider": "echo", "model": "echo-1"}]}})
    }

    pub fn message() -> Value {
        json!({"client_message_id": "c-1", "content": "Hello", "provider": "echo",
            "model": "echo-1"})
    }

    pub fn empty() -> Value {
        json!({})
    }

    pub fn personal_limit() -> Value {
        json!({"personal_limit_micros": 5_000_000})
    }

    pub fn operator_budget() -> Value {
        json!({"limit_micros": 20_000_000, "period": "month"})
    }

    pub fn checkout() -> Value {
        json!({"amount_micros": 10_000_000})
    }

    pub fn new_file() -> Value {
        json!({"name": "report.pdf", "content_type": "application/pdf", "size_bytes": 48_213,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})
    }

    pub fn provider_config() -> Value {
        json!({"api_key": "sk-0123456789abcdef", "base_url": "https://example.com/v1",
            "protocol": "openai", "enabled": true, "default_model": "m", "summary_model": "m",
            "models": [{"id": "m", "context_window": 1000, "max_output_tokens": 100,
                "input_price_per_mtok": 1, "output_price_per_mtok": 2, "supports_tools": true}]})
    }

    pub fn auto_approval() -> Value {
        json!({"risk": {"read": "auto", "write": "ask", "network": "ask", "exec": "ask",
            "destructive": "ask"}, "tools": {"calculator": "deny"}, "max_auto_per_turn": 5})
    }

    pub fn fetch_hosts() -> Value {
        json!({"hosts": ["docs.rs", "*.example.org"]})
    }

    /// The example tool's manifest with an empty module (`\0asm`, version 1).
    pub fn tool() -> Value {
        let manifest: Value =
            serde_json::from_str(include_str!("../../../examples/wasm-tool/manifest.json"))
                .unwrap_or_default();
        json!({"manifest": manifest, "module": "AGFzbQEAAAA="})
    }

    pub fn mcp_server() -> Value {
        json!({"url": "https://mcp.example.com/mcp", "headers": {"authorization": "Bearer x"},
            "trusted": false, "enabled": true})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_and_route_is_declared_once() {
        let mut functions = std::collections::HashSet::new();
        let mut routes = std::collections::HashSet::new();
        for o in OPERATIONS {
            assert!(
                functions.insert(o.function),
                "{} declared twice",
                o.function
            );
            assert!(
                routes.insert((o.method, o.path)),
                "{} {} declared twice",
                o.method,
                o.path
            );
        }
    }

    #[test]
    fn every_example_is_a_valid_body() {
        for o in OPERATIONS {
            if let Some(body) = o.body {
                assert!((body.decodes)(&(body.example)()), "{}", o.function);
            }
        }
    }

    #[test]
    fn operations_are_found_by_function() {
        assert_eq!(
            operation("conversations-create").map(|o| o.path),
            Some("/api/conversations")
        );
        assert!(operation("nothing").is_none());
    }

    #[test]
    fn reads_writes_turns_and_admin_routes_have_their_classes() {
        for o in OPERATIONS {
            let expected = match (o.method, o.function) {
                (_, "messages-send" | "messages-retry") => RateClass::Turn,
                (_, f) if f.starts_with("admin-") => RateClass::Admin,
                ("GET", _) => RateClass::Read,
                _ => RateClass::Write,
            };
            assert_eq!(o.class, expected, "{}", o.function);
        }
    }
}
