//! The event API Gateway's HTTP API sends a Lambda function (payload format 2.0), built from a
//! real HTTP request so handlers run exactly as they would behind API Gateway.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::request::Parts;
use serde_json::{Value, json};

use crate::template::HttpRoute;

/// What the gateway knows about one request besides its HTTP parts.
pub struct EventContext<'a> {
    pub route: &'a HttpRoute,
    pub path_params: &'a HashMap<String, String>,
    pub claims: Option<HashMap<String, String>>,
    pub request_id: &'a str,
    pub peer: SocketAddr,
    pub now: chrono::DateTime<chrono::Utc>,
}

pub fn http_api_v2(parts: &Parts, body: &[u8], ctx: &EventContext<'_>) -> Value {
    // Header names are lowercased; repeated headers are joined with commas; cookies move to
    // their own list.
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let Ok(text) = value.to_str() else { continue };
        if name == http::header::COOKIE {
            cookies.extend(text.split(';').map(|c| c.trim().to_owned()));
        } else {
            headers
                .entry(name.as_str().to_owned())
                .or_default()
                .push(text.to_owned());
        }
    }
    let headers: BTreeMap<String, String> =
        headers.into_iter().map(|(k, v)| (k, v.join(","))).collect();

    let raw_query = parts.uri.query().unwrap_or_default();
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    let query: BTreeMap<String, String> =
        query.into_iter().map(|(k, v)| (k, v.join(","))).collect();

    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(STANDARD.encode(body)), true),
    };
    let route_key = ctx.route.route_key();
    let authorizer = ctx
        .claims
        .as_ref()
        .map(|claims| json!({ "jwt": { "claims": claims, "scopes": null } }));
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| "localhost".into());

    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or_default(),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": format!("{:?}", parts.version),
                "sourceIp": ctx.peer.ip().to_string(),
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": ctx.request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": ctx.now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": ctx.now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    let object = event.as_object_mut();
    if let Some(object) = object {
        if !cookies.is_empty() {
            object.insert("cookies".into(), json!(cookies));
        }
        if !query.is_empty() {
            object.insert("queryStringParameters".into(), json!(query));
        }
        if !ctx.path_params.is_empty() {
            object.insert("pathParameters".into(), json!(ctx.path_params));
        }
        if !body.is_null() {
            object.insert("body".into(), body);
        }
        if let (Some(authorizer), Some(rc)) = (authorizer, object.get_mut("requestContext")) {
            rc["authorizer"] = authorizer;
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::HttpRoute;

    #[test]
    fn builds_a_payload_v2_event() {
        let request = http::Request::builder()
            .method("GET")
            .uri("/api/conversations/abc?limit=5&q=a%20b&q=c")
            .header("Host", "127.0.0.1:8787")
            .header("Cookie", "a=1; b=2")
            .header("X-Multi", "1")
            .header("X-Multi", "2")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let route = HttpRoute {
            method: "GET".into(),
            path: "/api/conversations/{id}".into(),
            function: "conversations-get".into(),
            requires_auth: true,
        };
        let params = HashMap::from([("id".to_owned(), "abc".to_owned())]);
        let claims = HashMap::from([("sub".to_owned(), "dev:alice".to_owned())]);
        let ctx = EventContext {
            route: &route,
            path_params: &params,
            claims: Some(claims),
            request_id: "req-1",
            peer: "127.0.0.1:5000".parse().unwrap(),
            now: chrono::Utc::now(),
        };
        let event = http_api_v2(&parts, b"", &ctx);
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "GET /api/conversations/{id}");
        assert_eq!(event["rawQueryString"], "limit=5&q=a%20b&q=c");
        assert_eq!(event["queryStringParameters"]["q"], "a b,c");
        assert_eq!(event["pathParameters"]["id"], "abc");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["headers"]["x-multi"], "1,2");
        assert_eq!(
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
            "dev:alice"
        );
        assert!(event.get("body").is_none());
    }

    #[test]
    fn binary_bodies_are_base64() {
        let (parts, ()) = http::Request::builder()
            .uri("/x")
            .body(())
            .unwrap()
            .into_parts();
        let route = HttpRoute {
            method: "POST".into(),
            path: "/x".into(),
            function: "f".into(),
            requires_auth: false,
        };
        let ctx = EventContext {
            route: &route,
            path_params: &HashMap::new(),
            claims: None,
            request_id: "r",
            peer: "127.0.0.1:1".parse().unwrap(),
            now: chrono::Utc::now(),
        };
        let event = http_api_v2(&parts, &[0xff, 0xfe], &ctx);
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "//4=");
        assert!(event["requestContext"].get("authorizer").is_none());
    }
}
