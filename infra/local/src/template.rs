//! The routes of `infra/template.yaml`, compiled into the binary so it runs from any directory.
//! The gateway serves exactly what the template declares: no more, no less.

use std::collections::BTreeMap;

use serde::Deserialize;

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

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("infra/template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("function {0} has HttpApi events but no Metadata.BuildProperties.Binary")]
    NoBinary(String),
    #[error("route {0} is declared twice")]
    Duplicate(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Template {
    #[serde(default)]
    resources: BTreeMap<String, Resource>,
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
