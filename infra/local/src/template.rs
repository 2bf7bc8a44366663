//! The routes of `infra/template.yaml` and its nested stacks (`infra/stacks`), compiled into
//! the binary so it runs from any directory. The gateway serves exactly what the templates
//! declare: no more, no less.

use bestchat_functions::http::OPERATION_VARIABLE;
use serde_yaml_ng::Value;

/// The root template and every nested stack it names (a test keeps this list whole).
pub const TEMPLATES: &[(&str, &str)] = &[
    ("template.yaml", include_str!("../../template.yaml")),
    (
        "stacks/conversations.yaml",
        include_str!("../../stacks/conversations.yaml"),
    ),
    (
        "stacks/providers.yaml",
        include_str!("../../stacks/providers.yaml"),
    ),
    ("stacks/tools.yaml", include_str!("../../stacks/tools.yaml")),
    ("stacks/money.yaml", include_str!("../../stacks/money.yaml")),
    ("stacks/files.yaml", include_str!("../../stacks/files.yaml")),
];

/// One HTTP API route: `METHOD /path/{param}` served by a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
    /// The function's name (see [`Resources::name_of`]).
    pub function: String,
    /// True when the route has the API's JWT authorizer (`AuthorizationType: JWT`).
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
    #[error("{0} is not valid YAML: {1}")]
    Yaml(&'static str, serde_yaml_ng::Error),
    #[error("route {0} is declared twice")]
    Duplicate(String),
    #[error("{0}: resource {1} does not lead to a function binary")]
    Unresolved(&'static str, String),
}

/// One template's resources by logical id.
struct Resources<'a> {
    file: &'static str,
    map: &'a serde_yaml_ng::Mapping,
}

impl<'a> Resources<'a> {
    fn get(&self, id: &str) -> Option<&'a Value> {
        self.map.get(id)
    }

    /// Every resource of `kind`, with its id (`Fn::ForEach` entries are not resources).
    fn of_kind(&self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.map
            .iter()
            .filter(move |(_, body)| body.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, body)| (id.as_str().unwrap_or_default(), body))
    }

    /// A function's name: the route-table operation its `BESTCHAT_OPERATION` selects in the
    /// `http-api` binary, else its own binary's name.
    fn name_of(&self, function: &str) -> Option<String> {
        let body = self.get(function)?;
        body.get("Properties")
            .and_then(|p| {
                p.get("Environment")?
                    .get("Variables")?
                    .get(OPERATION_VARIABLE)
            })
            .or_else(|| body.get("Metadata")?.get("BuildProperties")?.get("Binary"))?
            .as_str()
            .map(str::to_owned)
    }

    fn deployed(&self, id: &str, body: &Value) -> Option<DeployedFunction> {
        let binary = body
            .get("Metadata")?
            .get("BuildProperties")?
            .get("Binary")?
            .as_str()?;
        Some(DeployedFunction {
            name: self.name_of(id)?,
            binary: binary.to_owned(),
            in_vpc: body
                .get("Properties")
                .is_some_and(|p| p.get("VpcConfig").is_some()),
        })
    }

    /// The binary of the function an integration or authorizer URI names (`!GetAtt F.Arn`, or
    /// `${F.Arn}` in a `!Sub`).
    fn function_behind(&self, uri: &Value) -> Option<String> {
        match uri {
            Value::Tagged(tagged) if tagged.tag == "!GetAtt" => {
                let target = match &tagged.value {
                    Value::String(s) => s.split('.').next()?.to_owned(),
                    Value::Sequence(parts) => parts.first()?.as_str()?.to_owned(),
                    _ => return None,
                };
                self.name_of(&target)
            }
            other => sub_refs(sub_text(other)?)
                .into_iter()
                .find_map(|id| self.name_of(id)),
        }
    }

    /// The function binary behind a route's `Target` (`integrations/${Integration}`).
    fn route_function(&self, route_id: &str, props: &Value) -> Result<String, TemplateError> {
        props
            .get("Target")
            .and_then(sub_text)
            .and_then(|t| sub_refs(t).into_iter().next())
            .and_then(|integration| {
                self.get(integration)?
                    .get("Properties")?
                    .get("IntegrationUri")
            })
            .and_then(|uri| self.function_behind(uri))
            .ok_or_else(|| TemplateError::Unresolved(self.file, route_id.to_owned()))
    }
}

/// Which API a route belongs to: the HTTP API (`HttpApi` in the root, the `HttpApiId`
/// parameter in a nested stack) or the WebSocket API.
fn api_of(props: &Value) -> Option<&str> {
    match props.get("ApiId")? {
        Value::Tagged(tagged) if tagged.tag == "!Ref" => tagged.value.as_str(),
        _ => None,
    }
}

const HTTP_API_IDS: [&str; 2] = ["HttpApi", "HttpApiId"];
const WS_API_ID: &str = "WebSocketApi";

fn parsed(templates: &[(&'static str, &str)]) -> Result<Vec<(&'static str, Value)>, TemplateError> {
    templates
        .iter()
        .map(|(file, text)| {
            serde_yaml_ng::from_str(text)
                .map(|v| (*file, v))
                .map_err(|e| TemplateError::Yaml(file, e))
        })
        .collect()
}

fn each_resources<'a>(
    parsed: &'a [(&'static str, Value)],
) -> impl Iterator<Item = Resources<'a>> + 'a {
    parsed.iter().filter_map(|(file, root)| {
        Some(Resources {
            file,
            map: root.get("Resources")?.as_mapping()?,
        })
    })
}

/// One `AWS::Serverless::Function` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedFunction {
    pub name: String,
    /// `Metadata.BuildProperties.Binary`: a binary of `functions/src/bin`.
    pub binary: String,
    /// Whether it runs in the VPC (`VpcConfig`), where the database and the cache are.
    pub in_vpc: bool,
}

/// Every `AWS::Serverless::Function` resource, in every template.
pub fn functions(
    templates: &[(&'static str, &str)],
) -> Result<Vec<DeployedFunction>, TemplateError> {
    let parsed = parsed(templates)?;
    Ok(each_resources(&parsed)
        .flat_map(|r| {
            r.of_kind("AWS::Serverless::Function")
                .filter_map(|(id, body)| r.deployed(id, body))
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Every route of the HTTP API, in every template, sorted by path then method.
pub fn http_routes(templates: &[(&'static str, &str)]) -> Result<Vec<HttpRoute>, TemplateError> {
    let parsed = parsed(templates)?;
    let mut routes = Vec::new();
    for resources in each_resources(&parsed) {
        for (id, body) in resources.of_kind("AWS::ApiGatewayV2::Route") {
            let Some(props) = body.get("Properties") else {
                continue;
            };
            if !api_of(props).is_some_and(|api| HTTP_API_IDS.contains(&api)) {
                continue;
            }
            let (method, path) = props
                .get("RouteKey")
                .and_then(Value::as_str)
                .and_then(|key| key.split_once(' '))
                .ok_or_else(|| TemplateError::Unresolved(resources.file, id.to_owned()))?;
            routes.push(HttpRoute {
                method: method.to_uppercase(),
                path: path.to_owned(),
                function: resources.route_function(id, props)?,
                requires_auth: props.get("AuthorizationType").and_then(Value::as_str)
                    == Some("JWT"),
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
pub fn ws_api(templates: &[(&'static str, &str)]) -> Result<WsApi, TemplateError> {
    let parsed = parsed(templates)?;
    let mut routes = Vec::new();
    let mut authorizer = None;
    for resources in each_resources(&parsed) {
        for (id, body) in resources.of_kind("AWS::ApiGatewayV2::Route") {
            let Some(props) = body
                .get("Properties")
                .filter(|p| api_of(p) == Some(WS_API_ID))
            else {
                continue;
            };
            let route_key = props
                .get("RouteKey")
                .and_then(Value::as_str)
                .ok_or_else(|| TemplateError::Unresolved(resources.file, id.to_owned()))?;
            routes.push(WsRoute {
                route_key: route_key.to_owned(),
                function: resources.route_function(id, props)?,
            });
        }
        for (id, body) in resources.of_kind("AWS::ApiGatewayV2::Authorizer") {
            let Some(props) = body
                .get("Properties")
                .filter(|p| api_of(p) == Some(WS_API_ID))
            else {
                continue;
            };
            authorizer = Some(
                props
                    .get("AuthorizerUri")
                    .and_then(|uri| resources.function_behind(uri))
                    .ok_or_else(|| TemplateError::Unresolved(resources.file, id.to_owned()))?,
            );
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
    use bestchat_app::routes::OPERATIONS;
    use std::collections::BTreeSet;

    #[test]
    fn reads_routes_and_auth() {
        let routes = http_routes(TEMPLATES).unwrap();
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
        let routed: BTreeSet<String> = http_routes(TEMPLATES)
            .unwrap()
            .into_iter()
            .map(|r| r.function)
            .collect();
        let handled: BTreeSet<String> = OPERATIONS.iter().map(|o| o.function.to_owned()).collect();
        assert_eq!(routed, handled);
    }

    /// The OpenAPI document describes each route as the template declares it: same method,
    /// same path, public exactly when the template has no authorizer.
    #[test]
    fn template_routes_and_the_openapi_document_match() {
        let routed: BTreeSet<(String, String, String, bool)> = http_routes(TEMPLATES)
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
        let declared: BTreeSet<String> = functions(TEMPLATES)
            .unwrap()
            .into_iter()
            .map(|f| f.binary)
            .collect();
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
        let api = ws_api(TEMPLATES).unwrap();
        assert_eq!(api.authorizer.as_deref(), Some("ws-authorizer"));
        assert_eq!(api.function_for("$connect"), Some("ws-connect"));
        assert_eq!(api.function_for("$disconnect"), Some("ws-disconnect"));
        // Every action the contract lists, and whatever else a client sends.
        let actions = bestchat_app::openapi::client_actions();
        assert!(actions.contains(&"approveTool"));
        for action in actions.into_iter().chain(["$default"]) {
            assert_eq!(api.function_for(action), Some("ws-message"), "{action}");
        }
    }

    /// Every WebSocket route leads to a handler, and every handler is routed.
    #[test]
    fn websocket_routes_and_handlers_match() {
        let routed: BTreeSet<String> = ws_api(TEMPLATES)
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
            OPERATIONS.iter().map(|o| o.function.to_owned()).collect();
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
        handled.extend(ws_api(TEMPLATES).unwrap().authorizer);
        handled.extend(
            bestchat_functions::custom_resource::FUNCTIONS
                .iter()
                .map(|f| (*f).to_owned()),
        );
        handled.insert(bestchat_functions::sign_up::FUNCTION.to_owned());
        let declared: BTreeSet<String> = functions(TEMPLATES)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(declared, handled);
    }

    /// Each HTTP function deploys the `http-api` binary under its operation's name, in the VPC
    /// exactly when its operation reaches the database or the cache; no other function does.
    #[test]
    fn http_functions_are_the_route_tables_operations() {
        let deployed = functions(TEMPLATES).unwrap();
        for f in &deployed {
            match bestchat_app::routes::operation(&f.name) {
                Some(o) => {
                    assert_eq!(f.binary, "http-api", "{}", f.name);
                    assert_eq!(
                        f.in_vpc,
                        o.reaches.database || o.reaches.cache,
                        "{}",
                        f.name
                    );
                }
                None => assert_ne!(f.binary, "http-api", "{} is no operation", f.name),
            }
        }
        for o in OPERATIONS {
            assert!(
                deployed.iter().any(|f| f.name == o.function),
                "{} is not deployed",
                o.function
            );
        }
    }

    #[test]
    fn duplicate_routes_are_refused() {
        let yaml = r#"
Resources:
  A:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: a}}
  AIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref HttpApiId, IntegrationUri: !GetAtt A.Arn}
  ARoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref HttpApiId, RouteKey: GET /x, Target: !Sub "integrations/${AIntegration}"}
  AAgain:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref HttpApiId, RouteKey: GET /x, Target: !Sub "integrations/${AIntegration}"}
"#;
        assert!(matches!(
            http_routes(&[("t.yaml", yaml)]),
            Err(TemplateError::Duplicate(_))
        ));
    }

    /// The binary holds every nested stack the root template names, and no other.
    #[test]
    fn every_nested_stack_is_compiled_in() {
        let root: Value = serde_yaml_ng::from_str(TEMPLATES[0].1).unwrap();
        let named: BTreeSet<String> = root["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .filter(|r| {
                r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Application")
            })
            .map(|r| r["Properties"]["Location"].as_str().unwrap().to_owned())
            .collect();
        let compiled: BTreeSet<String> = TEMPLATES[1..]
            .iter()
            .map(|(f, _)| (*f).to_owned())
            .collect();
        assert_eq!(named, compiled);
    }
}
