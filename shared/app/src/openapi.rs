//! The OpenAPI 3.1 document of the HTTP API, generated from the types the handlers read and
//! write, with the WebSocket protocol alongside (`x-websocket`). The web client's TypeScript
//! types are generated from it; `web/src/api/openapi.json` is its committed copy and a test
//! fails when the two differ. `GET /api/openapi.json` serves it.

use std::sync::OnceLock;

use bestchat_domain::error::ErrorCode;
use bestchat_domain::wire::{ClientAction, ServerEvent};
use schemars::Schema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::api::{Handler, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, ErrorBody, json_response};
use crate::routes::{OPERATIONS, Operation, schema};
use crate::state::AppState;

/// `GET /api/openapi.json`: the contract of this API, for clients and their generated types.
pub const GET: Handler = handler!(get);

async fn get(_: &AppState, _: ApiRequest) -> Result<ApiResponse, AppError> {
    json_response(http::StatusCode::OK, document())
}

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
        "x-rate-limit-class": operation.class.as_str(),
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(body) = operation.body {
        described["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {
                "schema": (body.schema)(&mut generators.input),
                "example": (body.example)(),
            }},
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
