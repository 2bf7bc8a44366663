//! The routes of `infra/template.yaml`, compiled into the binary so it runs from any directory.
//! The gateway serves exactly what the template declares: no more, no less.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;

pub const TEMPLATE: &str = include_str!("../../template.yaml");

/// One HTTP API route: `METHOD /path/{param}` served by a function's binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
    /// The function's binary (`Metadata.BuildProperties.Binary`).
    pub function: String,
    /// False when the route opts out of the API's JWT authorizer (`Auth.Authorizer: NONE`).
    pub requires_auth: bool,
}

impl HttpRoute {
    /// API Gateway's `routeKey`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// One WebSocket API route: a route key (`$connect`, `sendMessage`, `$default`, …) served by a
/// function's binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsRoute {
    pub route_key: String,
    pub function: String,
}

/// The WebSocket API as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsApi {
    pub routes: Vec<WsRoute>,
    /// The binary of the `$connect` REQUEST authorizer.
    pub authorizer: Option<String>,
}

impl WsApi {
    pub fn function_for(&self, route_key: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|r| r.route_key == route_key)
            .map(|r| r.function.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("infra/template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("function {0} has HttpApi events but no Metadata.BuildProperties.Binary")]
    NoBinary(String),
    #[error("route {0} is declared twice")]
    Duplicate(String),
    #[error("WebSocket resource {0} does not lead to a function binary")]
    Unresolved(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Template {
    #[serde(default, deserialize_with = "resources")]
    resources: BTreeMap<String, Resource>,
}

/// The declared resources. `Fn::ForEach` entries (log groups and alarms written per function)
/// declare no route and are skipped.
fn resources<'de, D>(deserializer: D) -> Result<BTreeMap<String, Resource>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw = BTreeMap::<String, Value>::deserialize(deserializer)?;
    raw.into_iter()
        .filter(|(name, _)| !name.starts_with("Fn::ForEach::"))
        .map(|(name, value)| {
            serde_yaml_ng::from_value(value)
                .map(|resource| (name, resource))
                .map_err(serde::de::Error::custom)
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Resource {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    properties: Option<FunctionProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    #[serde(default)]
    build_properties: Option<BuildProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BuildProperties {
    binary: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FunctionProperties {
    #[serde(default)]
    events: BTreeMap<String, Event>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    properties: Option<EventProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EventProperties {
    path: Option<String>,
    method: Option<String>,
    #[serde(default)]
    auth: Option<EventAuth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EventAuth {
    authorizer: Option<String>,
}

/// Every `AWS::Serverless::Function` resource with its binary name.
pub fn functions(template: &str) -> Result<Vec<String>, TemplateError> {
    let parsed: Template = serde_yaml_ng::from_str(template)?;
    Ok(parsed
        .resources
        .into_values()
        .filter(|r| r.kind == "AWS::Serverless::Function")
        .filter_map(|r| r.metadata?.build_properties?.binary)
        .collect())
}

/// Every `HttpApi` event of every function, sorted by path then method.
pub fn http_routes(template: &str) -> Result<Vec<HttpRoute>, TemplateError> {
    let parsed: Template = serde_yaml_ng::from_str(template)?;
    let mut routes = Vec::new();
    for (name, resource) in parsed.resources {
        if resource.kind != "AWS::Serverless::Function" {
            continue;
        }
        let events = resource.properties.map(|p| p.events).unwrap_or_default();
        let binary = resource
            .metadata
            .and_then(|m| m.build_properties)
            .and_then(|b| b.binary);
        for event in events.into_values().filter(|e| e.kind == "HttpApi") {
            let Some(props) = event.properties else {
                continue;
            };
            let (Some(path), Some(method)) = (props.path, props.method) else {
                continue;
            };
            let function = binary
                .clone()
                .ok_or_else(|| TemplateError::NoBinary(name.clone()))?;
            let requires_auth = props
                .auth
                .and_then(|a| a.authorizer)
                .is_none_or(|a| a != "NONE");
            routes.push(HttpRoute {
                method: method.to_uppercase(),
                path,
                function,
                requires_auth,
            });
        }
    }
    routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    if let Some(pair) = routes
        .windows(2)
        .find(|w| w[0].route_key() == w[1].route_key())
    {
        return Err(TemplateError::Duplicate(pair[0].route_key()));
    }
    Ok(routes)
}

/// The text of a `!Sub` (or a plain string).
fn sub_text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Tagged(tagged) if tagged.tag == "!Sub" => tagged.value.as_str(),
        _ => None,
    }
}

/// The logical ids referenced as `${Id}` or `${Id.Attr}` in a `!Sub`.
fn sub_refs(text: &str) -> Vec<&str> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .map(|r| r.split('.').next().unwrap_or(r))
        .filter(|r| !r.starts_with("AWS::"))
        .collect()
}

/// The WebSocket routes and authorizer: route → integration → function → binary.
pub fn ws_api(template: &str) -> Result<WsApi, TemplateError> {
    let root: Value = serde_yaml_ng::from_str(template)?;
    let resources = root.get("Resources").and_then(Value::as_mapping);
    let resource = |id: &str| resources.and_then(|r| r.get(id));
    let binary_of = |function: &str| -> Option<String> {
        resource(function)?
            .get("Metadata")?
            .get("BuildProperties")?
            .get("Binary")?
            .as_str()
            .map(str::to_owned)
    };
    let function_behind = |uri: &Value| -> Option<String> {
        sub_refs(sub_text(uri)?).into_iter().find_map(binary_of)
    };
    let mut routes = Vec::new();
    let mut authorizer = None;
    for (name, body) in resources.into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        let kind = body.get("Type").and_then(Value::as_str).unwrap_or_default();
        let props = body.get("Properties");
        match kind {
            "AWS::ApiGatewayV2::Route" => {
                let route_key = props
                    .and_then(|p| p.get("RouteKey"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| TemplateError::Unresolved(name.to_owned()))?;
                let function = props
                    .and_then(|p| p.get("Target"))
                    .and_then(sub_text)
                    .and_then(|t| sub_refs(t).into_iter().next())
                    .and_then(|integration| {
                        resource(integration)?
                            .get("Properties")?
                            .get("IntegrationUri")
                    })
                    .and_then(function_behind)
                    .ok_or_else(|| TemplateError::Unresolved(name.to_owned()))?;
                routes.push(WsRoute {
                    route_key: route_key.to_owned(),
                    function,
                });
            }
            "AWS::ApiGatewayV2::Authorizer" => {
                authorizer = Some(
                    props
                        .and_then(|p| p.get("AuthorizerUri"))
                        .and_then(function_behind)
                        .ok_or_else(|| TemplateError::Unresolved(name.to_owned()))?,
                );
            }
            _ => {}
        }
    }
    routes.sort_by(|a, b| a.route_key.cmp(&b.route_key));
    if let Some(pair) = routes.windows(2).find(|w| w[0].route_key == w[1].route_key) {
        return Err(TemplateError::Duplicate(pair[0].route_key.clone()));
    }
    Ok(WsApi { routes, authorizer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_app::api::HTTP_FUNCTIONS;
    use std::collections::BTreeSet;

    #[test]
    fn reads_routes_and_auth() {
        let routes = http_routes(TEMPLATE).unwrap();
        let health = routes.iter().find(|r| r.path == "/api/health").unwrap();
        assert_eq!(health.method, "GET");
        assert_eq!(health.function, "health");
        assert!(!health.requires_auth);
        let get = routes
            .iter()
            .find(|r| r.route_key() == "GET /api/conversations/{id}")
            .unwrap();
        assert_eq!(get.function, "conversations-get");
        assert!(get.requires_auth);
    }

    /// A route in the template without a handler, or a handler without a route, is a bug.
    #[test]
    fn template_routes_and_handlers_match() {
        let routed: BTreeSet<String> = http_routes(TEMPLATE)
            .unwrap()
            .into_iter()
            .map(|r| r.function)
            .collect();
        let handled: BTreeSet<String> = HTTP_FUNCTIONS.iter().map(|f| f.name.to_owned()).collect();
        assert_eq!(routed, handled);
    }

    /// The OpenAPI document describes each route as the template declares it: same method,
    /// same path, public exactly when the template has no authorizer.
    #[test]
    fn template_routes_and_the_openapi_document_match() {
        use bestchat_app::openapi::OPERATIONS;
        let routed: BTreeSet<(String, String, String, bool)> = http_routes(TEMPLATE)
            .unwrap()
            .into_iter()
            .map(|r| (r.function, r.method, r.path, r.requires_auth))
            .collect();
        let described: BTreeSet<(String, String, String, bool)> = OPERATIONS
            .iter()
            .map(|o| (o.function.into(), o.method.into(), o.path.into(), !o.public))
            .collect();
        assert_eq!(routed, described);
    }

    /// Every function in the template has a binary in `functions/src/bin`, and every binary is
    /// deployed by the template.
    #[test]
    fn template_functions_and_binaries_match() {
        let declared: BTreeSet<String> = functions(TEMPLATE).unwrap().into_iter().collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functions/src/bin");
        let binaries: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(declared, binaries);
    }

    #[test]
    fn websocket_routes_lead_to_their_functions() {
        let api = ws_api(TEMPLATE).unwrap();
        assert_eq!(api.authorizer.as_deref(), Some("ws-authorizer"));
        assert_eq!(api.function_for("$connect"), Some("ws-connect"));
        assert_eq!(api.function_for("$disconnect"), Some("ws-disconnect"));
        for action in [
            "sendMessage",
            "subscribe",
            "resume",
            "cancel",
            "approveTool",
            "ping",
            "$default",
        ] {
            assert_eq!(api.function_for(action), Some("ws-message"), "{action}");
        }
    }

    /// Every WebSocket route leads to a handler, and every handler is routed.
    #[test]
    fn websocket_routes_and_handlers_match() {
        let routed: BTreeSet<String> = ws_api(TEMPLATE)
            .unwrap()
            .routes
            .into_iter()
            .map(|r| r.function)
            .collect();
        let handled: BTreeSet<String> = bestchat_app::ws::WS_FUNCTIONS
            .iter()
            .map(|f| f.name.to_owned())
            .collect();
        assert_eq!(routed, handled);
    }

    /// Every event function has a deployed function, and every binary is either an HTTP, a
    /// WebSocket, an authorizer, an event or a custom resource function.
    #[test]
    fn every_binary_has_a_handler() {
        let mut handled: BTreeSet<String> =
            HTTP_FUNCTIONS.iter().map(|f| f.name.to_owned()).collect();
        handled.extend(
            bestchat_app::ws::WS_FUNCTIONS
                .iter()
                .map(|f| f.name.to_owned()),
        );
        handled.extend(
            bestchat_app::events::EVENT_FUNCTIONS
                .iter()
                .map(|f| f.name.to_owned()),
        );
        handled.extend(ws_api(TEMPLATE).unwrap().authorizer);
        handled.extend(
            bestchat_functions::custom_resource::FUNCTIONS
                .iter()
                .map(|f| (*f).to_owned()),
        );
        let declared: BTreeSet<String> = functions(TEMPLATE).unwrap().into_iter().collect();
        assert_eq!(declared, handled);
    }

    #[test]
    fn duplicate_routes_are_refused() {
        let yaml = r#"
Resources:
  A:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: a}}
    Properties:
      Events:
        E: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /x, Method: GET}}
  B:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: b}}
    Properties:
      Events:
        E: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /x, Method: get}}
"#;
        assert!(matches!(
            http_routes(yaml),
            Err(TemplateError::Duplicate(_))
        ));
    }
}
