//! Bad input on every route never yields a 5xx: malformed, oversized and deeply nested JSON,
//! NUL and lone surrogates in every string, huge, negative and fractional numbers in every
//! number, wrong types everywhere, bad UUIDs and hostile path segments, forged cursors and
//! limits. Every refusal comes in the API's error shape. The routes are read from the template,
//! so a new route is tried too.

use bestchat_app::routes::operation;
use bestchat_local::template::{HttpRoute, TEMPLATES, http_routes};
use bestchat_tests::api::{Api, assert_refused};
use bestchat_tests::chat::new_conversation;
use bestchat_tests::gateway::GatewayProcess;
use bestchat_tests::ws::WsClient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// The user is an admin, so the admin routes read what they are sent.
super::on_both_adapter_sets!(&[("BESTCHAT_MAX_REQUEST_BYTES", "65536"), ("BESTCHAT_ADMINS", "careless")];
    every_route_refuses_bad_input_in_the_error_shape,
    every_websocket_action_refuses_bad_frames,
);

const USER: &str = "careless";
/// The request limit the gateways of this module are started with.
const MAX_REQUEST_BYTES: usize = 65_536;

/// A valid body for each route that takes one: the route table's example, with a real module
/// (it reaches further into registration than the table's empty one) and a closed local port
/// for MCP servers (no request leaves the machine). Each bad body is a variation of it.
fn valid_body(route: &HttpRoute) -> Option<Value> {
    let declared = operation(&route.function)
        .unwrap_or_else(|| panic!("{} is not in the route table", route.route_key()));
    let mut body = (declared.body?.example)();
    if body.get("module").is_some() {
        use base64::Engine;
        body["module"] = base64::engine::general_purpose::STANDARD
            .encode(bestchat_tests::wasm::module("word_count"))
            .into();
    }
    if body.get("url").is_some() {
        body["url"] = "http://127.0.0.1:9/mcp".into();
    }
    Some(body)
}

/// Every value of `body` replaced in turn by each of `with(leaf)`'s variants.
fn mutations(body: &Value, with: &dyn Fn(&Value) -> Vec<Value>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut walk = |path: Vec<PathPart>, leaf: &Value| {
        for replacement in with(leaf) {
            out.push(replaced(body, &path, replacement));
        }
    };
    visit(body, Vec::new(), &mut walk);
    out
}

#[derive(Clone)]
enum PathPart {
    Key(String),
    Index(usize),
}

fn visit(value: &Value, path: Vec<PathPart>, f: &mut dyn FnMut(Vec<PathPart>, &Value)) {
    f(path.clone(), value);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let mut p = path.clone();
                p.push(PathPart::Key(k.clone()));
                visit(v, p, f);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut p = path.clone();
                p.push(PathPart::Index(i));
                visit(v, p, f);
            }
        }
        _ => {}
    }
}

fn replaced(body: &Value, path: &[PathPart], with: Value) -> Value {
    let mut out = body.clone();
    let mut at = &mut out;
    for part in path {
        at = match part {
            PathPart::Key(k) => &mut at[k.as_str()],
            PathPart::Index(i) => &mut at[*i],
        };
    }
    *at = with;
    out
}

/// Raw bodies no route should take: not JSON, not an object, not UTF-8, nested past any
/// parser's patience, numbers no type holds.
fn raw_bodies(valid: &Value) -> Vec<(String, Vec<u8>)> {
    let text = valid.to_string();
    let first_string = text.find(":\"").map(|i| i + 2).unwrap_or(0);
    let mut out: Vec<(String, Vec<u8>)> = [
        "",
        "   ",
        "{",
        "}",
        "null",
        "[]",
        "\"text\"",
        "42",
        "{\"a\":1,}",
        "{'single':'quotes'}",
        "{\"unknown_field\": 1}",
    ]
    .iter()
    .map(|b| (format!("body {b:?}"), b.as_bytes().to_vec()))
    .collect();
    out.push(("deep arrays".into(), "[".repeat(20_000).into_bytes()));
    out.push(("deep objects".into(), "{\"a\":".repeat(10_000).into_bytes()));
    let mut surrogate = text.clone();
    surrogate.insert_str(first_string, "\\ud800");
    out.push(("a lone surrogate".into(), surrogate.into_bytes()));
    let mut invalid_utf8 = text.clone().into_bytes();
    invalid_utf8.splice(first_string..first_string, [0xff, 0xfe, 0xc3]);
    out.push(("bytes that are not UTF-8".into(), invalid_utf8));
    let mut raw_nul = text.into_bytes();
    raw_nul.insert(first_string, 0);
    out.push(("a raw NUL byte".into(), raw_nul));
    out
}

/// What every value of a body is replaced with, in turn.
fn hostile_values(leaf: &Value) -> Vec<Value> {
    let mut out = vec![
        json!(null),
        json!([]),
        json!({}),
        json!(true),
        json!("x".repeat(300_000)),
    ];
    match leaf {
        Value::String(s) => {
            out.push(json!(format!("{s}\u{0}")));
            out.push(json!("\u{0}"));
            out.push(json!(-1));
        }
        Value::Number(_) => {
            out.extend([
                json!(-1),
                json!(-0.0),
                json!(0.5),
                json!(1e308),
                json!(-1e308),
                json!(u64::MAX),
                json!(i64::MIN),
                json!("12"),
            ]);
        }
        _ => {}
    }
    out
}

/// Path segments that are well-formed ids but name nothing of this user's (a provider id of
/// this form names a new custom provider, so these are tried on the other parameters only).
const UNKNOWN_IDS: &[&str] = &[
    "x",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
];

/// Path segments that are no id at all, or try to name something else.
const HOSTILE_SEGMENTS: &[&str] = &[
    "%00",
    "%ZZ",
    "a%00b",
    "..%2F..%2Fetc%2Fpasswd",
    "%F0%9F%98%80",
    "%27%20OR%201%3D1%20--",
    "%C0%AF",
];

fn hostile_queries() -> Vec<String> {
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let nil = "00000000-0000-0000-0000-000000000000";
    let mut out: Vec<String> = [
        "limit=-1",
        "limit=0",
        "limit=201",
        "limit=1e999",
        "limit=99999999999999999999999",
        "limit=abc",
        "limit=%00",
        "limit=",
        "cursor=",
        "cursor=%00",
        "cursor=!!!!",
        "cursor=djE6MTox",
    ]
    .iter()
    .map(|q| (*q).to_owned())
    .collect();
    for forged in [
        format!("v1:-9000000000000000000:{nil}"),
        format!("v1:-62167219200000000:{nil}"),
        format!("v1:9223372036854775807:{nil}"),
        "v1:1:not-a-uuid".to_owned(),
        format!("v1:1\u{0}:{nil}"),
        "v1:::".to_owned(),
        "v9:1:x".to_owned(),
    ] {
        out.push(format!("cursor={}", b64(&forged)));
    }
    out.push(format!("cursor={}", "a".repeat(5000)));
    out
}

/// `route`'s path with its parameters filled from `params`.
fn path_of(route: &HttpRoute, params: &dyn Fn(&str) -> String) -> String {
    let mut path = route.path.clone();
    for name in ["id", "message_id", "provider"] {
        let placeholder = format!("{{{name}}}");
        if path.contains(&placeholder) {
            path = path.replace(&placeholder, &params(name));
        }
    }
    assert!(
        !path.contains('{'),
        "{} has a parameter this suite does not fill",
        route.path
    );
    path
}

/// What a route's function accepts: the general limit, or a tool registration's (a 3 MiB
/// module in base64, and its manifest).
fn body_limit(route: &HttpRoute) -> usize {
    match route.route_key().as_str() {
        "POST /api/tools" => 4 * 1024 * 1024 + 64 * 1024,
        _ => MAX_REQUEST_BYTES,
    }
}

fn method_of(route: &HttpRoute) -> Method {
    Method::from_bytes(route.method.as_bytes()).unwrap()
}

async fn every_route_refuses_bad_input_in_the_error_shape(gateway: &GatewayProcess) {
    let api = Api::new(gateway, USER);
    let conversation = new_conversation(gateway, USER, &json!({})).await;
    let (_, sent) = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            &json!({"client_message_id": "first", "content": "hello"}),
        )
        .await;
    let message = sent["user_message"]["id"].as_str().unwrap().to_owned();
    let own = |name: &str| match name {
        "id" => conversation.clone(),
        "message_id" => message.clone(),
        _ => "mycustom".to_owned(),
    };
    let mut tried = 0;
    for route in http_routes(TEMPLATES).unwrap() {
        let key = route.route_key();
        let method = method_of(&route);
        let path = path_of(&route, &own);
        if let Some(valid) = valid_body(&route) {
            for (what, body) in raw_bodies(&valid) {
                let (status, text) = api.send_bytes(method.clone(), &path, body).await;
                assert_refused(status, &text, &format!("{key} with {what}"));
                tried += 1;
            }
            for body in mutations(&valid, &hostile_values) {
                let (status, text) = api
                    .send_bytes(method.clone(), &path, body.to_string().into_bytes())
                    .await;
                assert!(status.as_u16() < 500, "{key} with {body}: {status} {text}");
                if status.is_client_error() {
                    assert_refused(status, &text, &format!("{key} with {body}"));
                }
                // Stripe's webhook checks the signature before it reads anything.
                if body.to_string().contains("\\u0000") && route.requires_auth {
                    assert_eq!(
                        status,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "{key}: NUL is refused"
                    );
                }
                tried += 1;
            }
            // Over the function's limit, and over API Gateway's.
            for size in [body_limit(&route) + 1, 10 * 1024 * 1024 + 1] {
                let huge = json!({"title": "x".repeat(size)}).to_string().into_bytes();
                let (status, text) = api.send_bytes(method.clone(), &path, huge).await;
                assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{key}: {text}");
                assert_refused(status, &text, &key);
            }
        }
        // Every parameter, hostile in turn, the others valid.
        for name in ["id", "message_id", "provider"] {
            if !route.path.contains(&format!("{{{name}}}")) {
                continue;
            }
            let unknown = if name == "provider" {
                &[][..]
            } else {
                UNKNOWN_IDS
            };
            for segment in unknown.iter().chain(HOSTILE_SEGMENTS) {
                let hostile = |p: &str| {
                    if p == name {
                        (*segment).to_owned()
                    } else {
                        own(p)
                    }
                };
                let body = valid_body(&route).map(|b| b.to_string().into_bytes());
                let (status, text) = api
                    .send_bytes(
                        method.clone(),
                        &path_of(&route, &hostile),
                        body.unwrap_or_default(),
                    )
                    .await;
                assert_refused(status, &text, &format!("{key} with {name}={segment}"));
                tried += 1;
            }
        }
        if method == Method::GET && !route.path.contains("{message_id}") {
            for query in hostile_queries() {
                let (status, text) = api
                    .send_bytes(Method::GET, &format!("{path}?{query}"), Vec::new())
                    .await;
                assert!(status.as_u16() < 500, "{key}?{query}: {status} {text}");
                if route.path.ends_with("conversations")
                    || route.path.ends_with("messages")
                    || route.path.ends_with("tool-executions")
                {
                    assert_refused(status, &text, &format!("{key}?{query}"));
                }
                tried += 1;
            }
        }
    }
    // The execution list's own filters.
    for query in [
        "status=bogus",
        "status=PENDING",
        "status=%00",
        "conversation_id=nope",
        "conversation_id=%00",
        "conversation_id=00000000-0000-0000-0000-00000000000",
    ] {
        let (status, text) = api
            .send_bytes(
                Method::GET,
                &format!("/api/tool-executions?{query}"),
                Vec::new(),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {text}");
        assert_refused(status, &text, query);
    }
    assert!(tried > 300, "only {tried} bad requests were tried");
    // The service is still whole.
    let (status, _) = api.get("/api/conversations").await;
    assert_eq!(status, StatusCode::OK);
}

async fn every_websocket_action_refuses_bad_frames(gateway: &GatewayProcess) {
    let conversation = new_conversation(gateway, USER, &json!({})).await;
    let mut ws = WsClient::connect(gateway, USER).await;
    let nil = "00000000-0000-0000-0000-000000000000";
    let valid = [
        json!({"action": "sendMessage", "conversation_id": conversation, "client_message_id": "c", "content": "hi"}),
        json!({"action": "subscribe", "conversation_id": conversation}),
        json!({"action": "resume", "message_id": nil, "after_seq": 0}),
        json!({"action": "cancel", "message_id": nil}),
        json!({"action": "approveTool", "tool_execution_id": nil, "decision": "approve"}),
    ];
    let mut frames: Vec<String> = [
        "",
        "{",
        "null",
        "[]",
        "{\"action\":null}",
        "{\"action\":\"ping\",\"extra\":1}",
        "{\"action\":\"$connect\"}",
        "{\"action\":\"resume\",\"message_id\":\"x\",\"after_seq\":-1}",
        "{\"action\":\"resume\",\"message_id\":\"x\",\"after_seq\":18446744073709551616}",
    ]
    .iter()
    .map(|f| (*f).to_owned())
    .collect();
    frames.push("[".repeat(20_000));
    for action in &valid {
        for mutated in mutations(action, &|leaf| {
            let mut v = hostile_values(leaf);
            v.truncate(4);
            if leaf.is_string() {
                v.push(json!(format!("{}\u{0}", leaf.as_str().unwrap_or_default())));
            }
            v
        }) {
            if mutated["action"] == action["action"] {
                frames.push(mutated.to_string());
            }
        }
    }
    for frame in &frames {
        ws.send_raw(tokio_tungstenite::tungstenite::Message::Text(
            frame.clone().into(),
        ))
        .await
        .unwrap();
        let reply = ws
            .next()
            .await
            .unwrap_or_else(|| panic!("closed after {frame}"));
        assert_eq!(reply["type"], "message.error", "{frame}: {reply}");
        let code = reply["code"].as_str().unwrap();
        assert!(
            [
                "invalid_request",
                "validation_failed",
                "invalid_json",
                "conversation_not_found",
                "message_not_found",
                "tool_execution_not_found"
            ]
            .contains(&code),
            "{frame}: {reply}"
        );
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Binary frames are no action; the connection still serves.
    ws.send_raw(tokio_tungstenite::tungstenite::Message::Binary(
        vec![0, 159, 146, 150].into(),
    ))
    .await
    .unwrap();
    let code = ws.next().await.unwrap()["code"].clone();
    assert!(
        code == "invalid_json" || code == "invalid_request",
        "{code}"
    );
    ws.send(&json!({"action": "ping"})).await;
    assert_eq!(ws.next().await.unwrap()["type"], "pong");
}
