//! The OpenAPI 3.1 document of the HTTP API, generated from the types the handlers read and
//! write, with the WebSocket protocol alongside (`x-websocket`). The web client's TypeScript
//! types are generated from it; `web/src/api/openapi.json` is its committed copy and a test
//! fails when the two differ.

use std::sync::OnceLock;

use bestchat_domain::conversation::{Conversation, CreateConversation, UpdateConversation};
use bestchat_domain::error::ErrorCode;
use bestchat_domain::message::Message;
use bestchat_domain::page::{Items, Page};
use bestchat_domain::provider::{ModelInfo, PutProviderConfig};
use bestchat_domain::tool::ToolExecution;
use bestchat_domain::wire::{ClientAction, ServerEvent};
use bestchat_tools::policy::AutoApproval;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use crate::api::health::Health;
use crate::api::messages::Retried;
use crate::api::{self, Handler};
use crate::http::Empty;
use crate::http::ErrorBody;
use crate::mcp::servers::{PutServer, ServerView};
use crate::models::ProviderList;
use crate::provider_configs::ProviderConfigView;
use crate::send::{SendMessage, SentPair};
use crate::settings::FetchHosts;
use crate::tools::registration::{RegisterTool, ToolView};

type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
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

/// One HTTP route, declared once: its function (the template's binary), its handler, and the
/// contract it keeps. The OpenAPI document, the local gateway's handlers and the checks of the
/// template's routes all read this table.
pub struct Operation {
    pub function: &'static str,
    pub handler: Handler,
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub query: &'static [Query],
    pub body: Option<SchemaOf>,
    /// The success status and its body (`None`: no body, as for 204).
    pub status: u16,
    pub answer: Option<SchemaOf>,
    /// Another success status with the same body (a repeated idempotent request).
    pub also: Option<u16>,
    pub public: bool,
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
    }
}

impl Operation {
    const fn with_body(mut self, body: SchemaOf) -> Self {
        self.body = Some(body);
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
    .public(),
    op(
        "openapi",
        api::openapi::GET,
        "GET",
        "/api/openapi.json",
        "This document",
        200,
        None,
    )
    .public(),
    op(
        "conversations-create",
        api::conversations::CREATE,
        "POST",
        "/api/conversations",
        "Create a conversation",
        201,
        Some(schema::<Conversation>),
    )
    .with_body(schema::<CreateConversation>),
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
    .with_body(schema::<UpdateConversation>),
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
    .with_body(schema::<SendMessage>),
    op(
        "messages-retry",
        api::messages::RETRY,
        "POST",
        "/api/conversations/{id}/messages/{message_id}/retry",
        "Run a failed last answer again as the same turn",
        202,
        Some(schema::<Retried>),
    )
    .with_body(schema::<Empty>),
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
    .with_body(schema::<PutProviderConfig>),
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
    .with_body(schema::<AutoApproval>),
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
    .with_body(schema::<FetchHosts>),
    op(
        "tools-create",
        api::tools::CREATE,
        "POST",
        "/api/tools",
        "Register a WebAssembly tool",
        201,
        Some(schema::<ToolView>),
    )
    .with_body(schema::<RegisterTool>),
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
    .with_body(schema::<Empty>),
    op(
        "tool-executions-deny",
        api::tool_executions::DENY,
        "POST",
        "/api/tool-executions/{id}/deny",
        "Deny a waiting call",
        200,
        Some(schema::<ToolExecution>),
    )
    .with_body(schema::<Empty>),
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
    .with_body(schema::<PutServer>),
    op(
        "mcp-servers-delete",
        api::mcp_servers::DELETE,
        "DELETE",
        "/api/mcp-servers/{id}",
        "Remove an MCP server",
        204,
        None,
    ),
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

/// The WebSocket actions the contract lists, by name.
pub fn client_actions() -> Vec<&'static str> {
    let doc = document();
    let name = doc["x-websocket"]["client"]["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or_default();
    doc["components"]["schemas"][name]["oneOf"]
        .as_array()
        .map(|variants| {
            variants
                .iter()
                .filter_map(|v| v["properties"]["action"]["const"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// The document, built once per process.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

/// Answers and server events are described as the server writes them (the `Serialize`
/// contract: a skipped field is optional); request bodies and client actions as it reads them
/// (`Deserialize`: a defaulted field is optional). Where the two differ, the input keeps its
/// own schema, named `…Input`.
fn build() -> Value {
    let settings =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into());
    let mut generators = Generators {
        output: settings.clone().for_serialize().into_generator(),
        input: settings.for_deserialize().into_generator(),
    };
    let error = schema::<ErrorBody<'static>>(&mut generators.output);
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let described = describe(operation, &mut generators, &error);
        if let Some(item) = paths
            .entry(operation.path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
        {
            item.insert(operation.method.to_ascii_lowercase(), described);
        }
    }
    let mut websocket = json!({
        "url": "/ws?token=<JWT> (local gateway) or the WebSocket API's wss:// URL",
        "client": schema::<ClientAction>(&mut generators.input),
        "server": schema::<ServerEvent>(&mut generators.output),
    });
    let mut schemas = generators.output.take_definitions(true);
    // Which codes a client may retry: the server's table, for clients to read rather than
    // guess from the status.
    if let Some(codes) = schemas.get_mut("ErrorCode") {
        codes["x-retryable"] = ErrorCode::ALL
            .iter()
            .filter(|c| c.retryable())
            .map(|c| c.as_str())
            .collect();
    }
    let inputs = generators.input.take_definitions(true);
    let renamed = merge_inputs(&mut schemas, inputs);
    let mut paths = Value::Object(paths);
    rename_refs(&mut paths, &renamed, true);
    rename_refs(&mut websocket["client"], &renamed, false);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "BestChat API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Multi-provider LLM chat. Money is integer micro-dollars; times are RFC 3339."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
        "security": [{"bearer": []}],
        "x-websocket": websocket,
    })
}

struct Generators {
    output: SchemaGenerator,
    input: SchemaGenerator,
}

const INPUT_SUFFIX: &str = "Input";

/// Adds the input schemas to the output ones; returns the names that had to be renamed. A
/// schema that refers to a renamed one differs too, so this runs until nothing changes.
fn merge_inputs(schemas: &mut Map<String, Value>, mut inputs: Map<String, Value>) -> Vec<String> {
    let mut renamed: Vec<String> = Vec::new();
    loop {
        let differing: Vec<String> = inputs
            .iter()
            .filter(|(name, schema)| {
                !renamed.contains(name) && schemas.get(*name).is_some_and(|s| s != *schema)
            })
            .map(|(name, _)| name.clone())
            .collect();
        if differing.is_empty() {
            break;
        }
        renamed.extend(differing);
        for schema in inputs.values_mut() {
            rename_refs(schema, &renamed, false);
        }
    }
    for (name, schema) in inputs {
        if renamed.contains(&name) {
            schemas.insert(format!("{name}{INPUT_SUFFIX}"), schema);
        } else {
            schemas.entry(name).or_insert(schema);
        }
    }
    renamed
}

/// Points references to renamed schemas at their input copies; in `paths`, only inside
/// request bodies.
fn rename_refs(value: &mut Value, renamed: &[String], only_bodies: bool) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if only_bodies && key == "responses" {
                    continue;
                }
                if key == "$ref" {
                    if let Value::String(target) = child
                        && let Some(name) = target.strip_prefix("#/components/schemas/")
                        && renamed.iter().any(|r| r == name)
                    {
                        *target = format!("{target}{INPUT_SUFFIX}");
                    }
                } else {
                    rename_refs(child, renamed, only_bodies);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rename_refs(v, renamed, only_bodies)),
        _ => {}
    }
}

fn describe(operation: &Operation, generators: &mut Generators, error: &Schema) -> Value {
    let mut parameters: Vec<Value> = path_params(operation.path)
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(operation.query.iter().map(|q| {
        json!({
            "name": q.name,
            "in": "query",
            "required": false,
            "description": q.description,
            "schema": {"type": if q.integer { "integer" } else { "string" }},
        })
    }));
    let success = match operation.answer {
        Some(answer) => json!({
            "description": "success",
            "content": {"application/json": {"schema": answer(&mut generators.output)}},
        }),
        None if operation.status == 204 => json!({"description": "done"}),
        None => json!({"description": "this document", "content": {"application/json": {}}}),
    };
    let mut responses = Map::new();
    if let Some(also) = operation.also {
        responses.insert(also.to_string(), success.clone());
    }
    responses.insert(operation.status.to_string(), success);
    responses.insert(
        "default".into(),
        json!({
            "description": "an error: its code, status and public sentence",
            "content": {"application/json": {"schema": error}},
        }),
    );
    let mut described = json!({
        "operationId": operation.function,
        "summary": operation.summary,
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(body) = operation.body {
        described["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": body(&mut generators.input)}},
        });
    }
    if operation.public {
        described["security"] = json!([]);
    }
    described
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
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
    fn every_reference_resolves() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "unresolved $ref {name}");
        }
        assert!(schemas.contains_key("ServerEvent"));
        assert!(schemas.contains_key("Message"));
    }

    /// The web client's types are generated from the committed copy; regenerate both with
    /// `BESTCHAT_UPDATE_OPENAPI=1 cargo test -p bestchat-app openapi` then `npm run gen:types`.
    #[test]
    fn the_committed_copy_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/src/api/openapi.json");
        let mut current = serde_json::to_string_pretty(document()).unwrap();
        current.push('\n');
        if std::env::var_os("BESTCHAT_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == current,
            "web/src/api/openapi.json is stale: run BESTCHAT_UPDATE_OPENAPI=1 cargo test -p \
             bestchat-app openapi, then npm run gen:types in web/"
        );
    }

    #[test]
    fn path_parameters_are_read_from_the_path() {
        let names: Vec<_> = path_params("/api/conversations/{id}/messages/{message_id}").collect();
        assert_eq!(names, ["id", "message_id"]);
    }
}
