//! Nobody reaches what is not theirs. Every HTTP route and every WebSocket route of
//! `infra/template.yaml` is tried by Mallory with Alice's ids; a route with no entry in the
//! matrix fails the test, so a new route cannot ship untried.

use std::time::Duration;

use bestchat_local::template::{TEMPLATES, http_routes, ws_api};
use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::chat::{
    answer_id, fake_conversation, send_action, stored_messages, tool_conversation,
};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::files;
use bestchat_tests::gateway::GatewayProcess;
use bestchat_tests::mcp::McpServerProcess;
use bestchat_tests::scripted::{Call, openai_stream, openai_tool_calls, words};
use bestchat_tests::ws::{WsClient, completed};
use bestchat_tests::{tools, wasm};
use reqwest::StatusCode;
use serde_json::{Value, json};

super::on_both_adapter_sets!(&[];
    every_http_route_refuses_another_users_ids,
    every_websocket_route_refuses_another_users_ids,
);

/// What Alice owns, as Mallory might learn its ids.
struct Alice {
    conversation: String,
    question: String,
    answer: String,
    /// A custom provider of hers, with a key.
    provider: &'static str,
    model: &'static str,
    /// A tool she registered.
    tool: String,
    /// A call of hers that waits for her decision.
    execution: String,
    /// The MCP server she registered (with a secret header), kept running.
    mcp: McpServerProcess,
    /// A file she uploaded, processed.
    file: String,
}

const ALICE: &str = "alice";
const MALLORY: &str = "mallory";
// Its last four characters are not hex: no id or timestamp can contain them by chance.
const ALICE_KEY: &str = "sk-alice-private-key-000qzxw";
const ALICE_MCP_SECRET: &str = "Bearer alice-mcp-secret-999";

/// A conversation of Alice's whose model asked for a call that waits for her; its id.
async fn alice_waits_on_a_call(gateway: &GatewayProcess) -> String {
    let asks = FakeProvider::start(
        vec![],
        Reply::sse(openai_tool_calls(&[Call {
            id: "call_secret",
            name: "run_javascript",
            arguments: json!({"code": "'my secret plans'"}),
        }])),
    )
    .await;
    let conversation = tool_conversation(gateway, ALICE, &asks, "openai").await;
    let api = Api::new(gateway, ALICE);
    let (status, _) = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            &json!({"client_message_id": "t-1", "content": "run it"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for _ in 0..100 {
        let (_, listed) = api.get("/api/tool-executions?status=pending").await;
        if let Some(id) = listed["items"][0]["id"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the call never waited for approval: {}", gateway.log());
}

async fn alice_owns_things(gateway: &GatewayProcess, fake: &FakeProvider) -> Alice {
    let api = Api::new(gateway, ALICE);
    let execution = alice_waits_on_a_call(gateway).await;
    let conversation = fake_conversation(gateway, ALICE, fake).await;
    let (status, sent) = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            &json!({"client_message_id": "a-1", "content": "my secret plans"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let (status, body) = api
        .put(
            "/api/provider-configs/alice-llm",
            &json!({"protocol": "openai", "base_url": format!("{}/v1", fake.base_url),
                    "api_key": ALICE_KEY,
                    "models": [{"id": "alice-model", "context_window": 8000, "max_output_tokens": 1000}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut manifest = tools::manifest("alice_secret_tool");
    manifest["description"] = json!("my secret plans, as a tool");
    let (status, tool) = tools::register(&api, manifest, wasm::module("word_count")).await;
    assert_eq!(status, StatusCode::CREATED, "{tool}");
    let rules = json!({
        "risk": {"read": "auto", "write": "auto", "network": "deny", "exec": "ask", "destructive": "ask"},
        "tools": {"alice_secret_tool": "auto"},
        "max_auto_per_turn": 9
    });
    let (status, body) = api.put("/api/settings/auto-approval", &rules).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mcp = McpServerProcess::start("stateless", None).await;
    let (status, body) = api
        .put(
            "/api/mcp-servers/alice_mcp",
            &json!({"url": mcp.url, "headers": {"authorization": ALICE_MCP_SECRET}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hosts = json!({"hosts": ["alice-private.example"]});
    let (status, body) = api.put("/api/settings/fetch-hosts", &hosts).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, file) = files::upload(
        &api,
        "alice-diary.txt",
        "text/plain",
        b"my secret plans, in a file\n",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{file}");
    let file = file["id"].as_str().unwrap().to_owned();
    assert_eq!(files::processed(&api, &file).await["status"], "ready");
    Alice {
        file,
        mcp,
        execution,
        tool: tool["id"].as_str().unwrap().to_owned(),
        question: sent["user_message"]["id"].as_str().unwrap().to_owned(),
        answer: sent["assistant_message"]["id"].as_str().unwrap().to_owned(),
        conversation,
        provider: "alice-llm",
        model: "alice-model",
    }
}

/// Alice's data as she sees it, to compare before and after Mallory's attempts.
async fn snapshot(gateway: &GatewayProcess, alice: &Alice) -> Value {
    let api = Api::new(gateway, ALICE);
    let (_, conversation) = api
        .get(&format!("/api/conversations/{}", alice.conversation))
        .await;
    let (_, configs) = api.get("/api/provider-configs").await;
    let (_, tools) = api.get("/api/tools").await;
    let (_, rules) = api.get("/api/settings/auto-approval").await;
    let (_, hosts) = api.get("/api/settings/fetch-hosts").await;
    let (_, executions) = api.get("/api/tool-executions").await;
    let (_, mcp) = api.get("/api/mcp-servers").await;
    let (_, files) = api.get("/api/files").await;
    let messages: Vec<Value> = stored_messages(gateway, ALICE, &alice.conversation)
        .await
        .into_iter()
        .map(|m| json!({"id": m["id"], "content": m["content"], "role": m["role"]}))
        .collect();
    json!({"conversation": conversation, "configs": configs, "messages": messages, "tools": tools, "rules": rules, "hosts": hosts, "executions": executions, "mcp": mcp, "files": files})
}

/// Whether Mallory's answer mentions anything of Alice's.
fn leaks(body: &Value, alice: &Alice) -> bool {
    let text = body.to_string();
    [
        alice.conversation.as_str(),
        alice.question.as_str(),
        alice.answer.as_str(),
        alice.provider,
        alice.model,
        alice.tool.as_str(),
        alice.execution.as_str(),
        alice.file.as_str(),
        "alice-diary",
        "alice_secret_tool",
        "alice-private.example",
        "alice_mcp",
        &ALICE_MCP_SECRET[ALICE_MCP_SECRET.len() - 8..],
        "my secret plans",
        &ALICE_KEY[ALICE_KEY.len() - 4..],
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

async fn every_http_route_refuses_another_users_ids(gateway: &GatewayProcess) {
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(20)))).await;
    let alice = alice_owns_things(gateway, &fake).await;
    let mallory = Api::new(gateway, MALLORY);
    let own = fake_conversation(gateway, MALLORY, &fake).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = snapshot(gateway, &alice).await;
    let routes = http_routes(TEMPLATES).unwrap();
    assert!(routes.len() >= 14, "{} routes", routes.len());
    for route in &routes {
        let key = route.route_key();
        let conv = format!("/api/conversations/{}", alice.conversation);
        match key.as_str() {
            "GET /api/health" => {
                let (status, body) = mallory.get("/api/health").await;
                assert_eq!(status, StatusCode::OK);
                assert!(!leaks(&body, &alice));
            }
            "GET /api/openapi.json" => {
                let (status, body) = mallory.get("/api/openapi.json").await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body["openapi"], "3.1.0");
                assert!(!leaks(&body, &alice));
            }
            "POST /api/conversations" => {
                // The owner is the token's subject, whatever the body claims.
                let (status, body) = mallory
                    .post(
                        "/api/conversations",
                        &json!({"title": "mine", "user_id": alice.conversation}),
                    )
                    .await;
                assert!(
                    status.is_client_error(),
                    "unknown fields are refused: {body}"
                );
                let (status, body) = mallory
                    .post("/api/conversations", &json!({"title": "mine"}))
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }
            "GET /api/conversations" => {
                let (status, body) = mallory.get("/api/conversations?limit=200").await;
                assert_eq!(status, StatusCode::OK);
                assert!(!leaks(&body, &alice), "{key}: {body}");
            }
            "GET /api/conversations/{id}" => {
                let (status, body) = mallory.get(&conv).await;
                assert_error(status, &body, 404, "conversation_not_found");
            }
            "PATCH /api/conversations/{id}" => {
                let (status, body) = mallory.patch(&conv, &json!({"title": "pwned"})).await;
                assert_error(status, &body, 404, "conversation_not_found");
            }
            "DELETE /api/conversations/{id}" => {
                let (status, body) = mallory.delete(&conv).await;
                assert_error(status, &body, 404, "conversation_not_found");
            }
            "GET /api/conversations/{id}/messages" => {
                let (status, body) = mallory.get(&format!("{conv}/messages")).await;
                assert_error(status, &body, 404, "conversation_not_found");
            }
            "GET /api/conversations/{id}/messages/{message_id}" => {
                for message in [&alice.question, &alice.answer] {
                    let (status, body) = mallory.get(&format!("{conv}/messages/{message}")).await;
                    assert_error(status, &body, 404, "message_not_found");
                    // Her message id under his own conversation is no better.
                    let (status, body) = mallory
                        .get(&format!("/api/conversations/{own}/messages/{message}"))
                        .await;
                    assert_error(status, &body, 404, "message_not_found");
                }
            }
            "POST /api/conversations/{id}/messages/{message_id}/retry" => {
                for message in [&alice.question, &alice.answer] {
                    let (status, body) = mallory
                        .post(&format!("{conv}/messages/{message}/retry"), &json!({}))
                        .await;
                    assert_error(status, &body, 404, "message_not_found");
                    let (status, body) = mallory
                        .post(
                            &format!("/api/conversations/{own}/messages/{message}/retry"),
                            &json!({}),
                        )
                        .await;
                    assert_error(status, &body, 404, "message_not_found");
                }
            }
            "POST /api/conversations/{id}/messages" => {
                let (status, body) = mallory
                    .post(
                        &format!("{conv}/messages"),
                        &json!({"client_message_id": "m-1", "content": "hi"}),
                    )
                    .await;
                assert_error(status, &body, 404, "conversation_not_found");
            }
            "GET /api/providers" | "GET /api/models" | "GET /api/provider-configs" => {
                let (status, body) = mallory.get(route.path.as_str()).await;
                assert_eq!(status, StatusCode::OK);
                assert!(!leaks(&body, &alice), "{key}: {body}");
            }
            "PUT /api/provider-configs/{provider}" => {
                // His own config of that name, not a change to hers.
                let path = format!("/api/provider-configs/{}", alice.provider);
                let (status, body) = mallory
                    .put(
                        &path,
                        &json!({"protocol": "openai", "base_url": "https://example.com/v1"}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body["has_key"], false, "{body}");
                assert!(body["models"].as_array().unwrap().is_empty());
                let (status, _) = mallory.delete(&path).await;
                assert_eq!(status, StatusCode::NO_CONTENT);
            }
            "DELETE /api/provider-configs/{provider}" => {
                let (status, body) = mallory
                    .delete(&format!("/api/provider-configs/{}", alice.provider))
                    .await;
                assert_error(status, &body, 404, "provider_config_not_found");
            }
            "GET /api/settings/fetch-hosts" => {
                let (status, body) = mallory.get(route.path.as_str()).await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body, json!({"hosts": []}), "his own hosts, not hers");
            }
            "PUT /api/settings/fetch-hosts" => {
                let (status, body) = mallory
                    .put(route.path.as_str(), &json!({"hosts": ["mallory.example"]}))
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            "GET /api/settings/auto-approval" => {
                let (status, body) = mallory.get(route.path.as_str()).await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body["tools"], json!({}), "his own rules, not hers: {body}");
            }
            "PUT /api/settings/auto-approval" => {
                // His own rules; hers stay (the snapshot compares them).
                let (status, body) = mallory.get(route.path.as_str()).await;
                assert_eq!(status, StatusCode::OK);
                let (status, body) = mallory.put(route.path.as_str(), &body).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            "GET /api/tools" => {
                let (status, body) = mallory.get("/api/tools").await;
                assert_eq!(status, StatusCode::OK);
                assert!(!leaks(&body, &alice), "{key}: {body}");
            }
            "POST /api/tools" => {
                // The same name is his own tool, not a change to hers.
                let (status, body) = tools::register(
                    &mallory,
                    tools::manifest("alice_secret_tool"),
                    wasm::module("word_count"),
                )
                .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                let (status, _) = mallory
                    .delete(&format!("/api/tools/{}", body["id"].as_str().unwrap()))
                    .await;
                assert_eq!(status, StatusCode::NO_CONTENT);
            }
            "DELETE /api/tools/{id}" => {
                let (status, body) = mallory.delete(&format!("/api/tools/{}", alice.tool)).await;
                assert_error(status, &body, 404, "tool_not_found");
            }
            "GET /api/mcp-servers" => {
                let (status, body) = mallory.get("/api/mcp-servers").await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body["items"], json!([]), "{body}");
            }
            "PUT /api/mcp-servers/{id}" => {
                // The same id is his own server, not a change to hers.
                let (status, body) = mallory
                    .put("/api/mcp-servers/alice_mcp", &json!({"url": alice.mcp.url}))
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(
                    body["header_names"],
                    json!([]),
                    "none of her headers: {body}"
                );
                let (status, _) = mallory.delete("/api/mcp-servers/alice_mcp").await;
                assert_eq!(status, StatusCode::NO_CONTENT);
            }
            "DELETE /api/mcp-servers/{id}" => {
                let (status, body) = mallory.delete("/api/mcp-servers/alice_mcp").await;
                assert_error(status, &body, 404, "mcp_server_not_found");
            }
            "GET /api/tool-executions" => {
                for query in [
                    "",
                    "?status=pending",
                    &format!("?conversation_id={}", alice.conversation),
                ] {
                    let (status, body) = mallory.get(&format!("/api/tool-executions{query}")).await;
                    assert_eq!(status, StatusCode::OK, "{body}");
                    assert_eq!(body["items"], json!([]), "{query}");
                    assert!(!leaks(&body, &alice));
                }
            }
            "POST /api/tool-executions/{id}/approve" | "POST /api/tool-executions/{id}/deny" => {
                let path = route.path.replace("{id}", &alice.execution);
                let (status, body) = mallory.post(&path, &json!({})).await;
                assert_error(status, &body, 404, "tool_execution_not_found");
                assert!(!leaks(&body, &alice));
            }
            "GET /api/usage" => {
                // Alice has spent something, so an empty answer to Mallory means refused, not
                // nothing to show (her answers finish in the background; wait a bounded while).
                let own = Api::new(gateway, ALICE);
                let mut waited = 0;
                while own.get("/api/usage").await.1["total"]["turns"].as_i64() < Some(1) {
                    waited += 1;
                    assert!(waited < 100, "Alice's usage never appeared");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                for group in ["day", "model", "provider", "conversation"] {
                    let (status, body) = mallory.get(&format!("/api/usage?group_by={group}")).await;
                    assert_eq!(status, StatusCode::OK, "{body}");
                    assert_eq!(body["items"], json!([]), "{group}");
                    assert_eq!(body["total"]["turns"], 0, "{group}");
                    assert!(!leaks(&body, &alice));
                }
            }
            "GET /api/budget" => {
                let (status, body) = mallory.get("/api/budget").await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(
                    body["spent_micros"], 0,
                    "his own spending, not hers: {body}"
                );
            }
            "PUT /api/budget" => {
                // His own cap; hers stays unset.
                let (status, body) = mallory
                    .put("/api/budget", &json!({"personal_limit_micros": 1}))
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let (_, hers) = Api::new(gateway, ALICE).get("/api/budget").await;
                assert_eq!(hers["personal_limit_micros"], Value::Null, "{hers}");
            }
            "GET /api/admin/users" | "GET /api/admin/usage" => {
                for query in ["", "?group_by=user", "?limit=200"] {
                    let (status, body) = mallory.get(&format!("{}{query}", route.path)).await;
                    assert_error(status, &body, 403, "forbidden");
                    assert!(!leaks(&body, &alice));
                }
            }
            "PUT /api/admin/users/{id}/budget" => {
                // Not for her, nor for anyone: only an admin sets a limit.
                for target in [alice.conversation.as_str(), "not-a-user"] {
                    let (status, body) = mallory
                        .put(
                            &format!("/api/admin/users/{target}/budget"),
                            &json!({"limit_micros": null, "period": "month"}),
                        )
                        .await;
                    assert_error(status, &body, 403, "forbidden");
                }
            }
            "POST /api/billing/checkout" | "GET /api/billing" | "POST /api/billing/webhook" => {
                // Billing is off here: every billing route says so (billing on is tested in
                // limits_and_money).
                let body = json!({"amount_micros": 5_000_000}).to_string();
                let method = route.method.as_str();
                let (status, body) = mallory
                    .send(
                        method.parse().unwrap(),
                        route.path.as_str(),
                        Some(body.as_str()).filter(|_| method == "POST"),
                    )
                    .await;
                assert_error(status, &body, 404, "billing_off");
            }
            "GET /api/files/limits" => {
                // His own storage (what he announced himself), not hers.
                let (status, body) = mallory.get(route.path.as_str()).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let (_, his) = mallory.get("/api/files?limit=200").await;
                let own: i64 = his["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["size_bytes"].as_i64().unwrap())
                    .sum();
                assert_eq!(body["stored_bytes"], own, "{body}");
                assert!(!leaks(&body, &alice), "{key}: {body}");
            }
            "GET /api/files" => {
                let (status, body) = mallory.get("/api/files?limit=200").await;
                assert_eq!(status, StatusCode::OK);
                assert!(!leaks(&body, &alice), "{key}: {body}");
            }
            "POST /api/files" => {
                // The same bytes as hers are his own file, uploaded by him: nothing of hers is
                // shared, not even the knowledge that she holds them.
                let bytes = b"my secret plans, in a file\n";
                let (status, body) = mallory
                    .post(
                        "/api/files",
                        &json!({"name": "guess.txt", "content_type": "text/plain",
                            "size_bytes": bytes.len(), "sha256": files::sha256_hex(bytes)}),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                assert!(
                    body["upload"].is_object(),
                    "he must upload them himself: {body}"
                );
                assert_eq!(body["file"]["status"], "uploading");
            }
            "GET /api/files/{id}"
            | "GET /api/files/{id}/content"
            | "DELETE /api/files/{id}"
            | "POST /api/files/{id}/complete" => {
                let path = route.path.replace("{id}", &alice.file);
                let method = route.method.as_str();
                let (status, body) = mallory
                    .send(
                        method.parse().unwrap(),
                        &path,
                        Some("{}").filter(|_| method == "POST"),
                    )
                    .await;
                assert_error(status, &body, 404, "file_not_found");
            }
            other => panic!(
                "{other} has no entry in the cross-user matrix: say what another user's ids do there"
            ),
        }
    }
    assert_eq!(
        snapshot(gateway, &alice).await,
        before,
        "Alice's data is as she left it"
    );
}

async fn every_websocket_route_refuses_another_users_ids(gateway: &GatewayProcess) {
    let slow = Reply::sse(openai_stream(&words(60))).paced(40, Duration::from_millis(20));
    let fake = FakeProvider::start(vec![], slow).await;
    let execution = alice_waits_on_a_call(gateway).await;
    let conversation = fake_conversation(gateway, ALICE, &fake).await;
    let mut phone = WsClient::connect(gateway, ALICE).await;
    let mut mallory = WsClient::connect(gateway, MALLORY).await;
    phone
        .send(&send_action(&conversation, "a-1", "my secret plans"))
        .await;
    let first = phone.until(|e| e["type"] == "message.delta").await;
    let answer = answer_id(&first);
    let api = ws_api(TEMPLATES).unwrap();
    for route in &api.routes {
        match route.route_key.as_str() {
            // The token decides who connects; what a connection then receives is checked below.
            "$connect" | "$disconnect" => {}
            "$default" => {
                mallory
                    .send(&json!({"action": "readAll", "conversation_id": conversation}))
                    .await;
                assert_eq!(mallory.next().await.unwrap()["code"], "invalid_request");
            }
            "ping" => {
                mallory.send(&json!({"action": "ping"})).await;
                assert_eq!(mallory.next().await.unwrap()["type"], "pong");
            }
            "sendMessage" => {
                mallory
                    .send(&send_action(&conversation, "m-1", "injected"))
                    .await;
                assert_eq!(
                    mallory.next().await.unwrap()["code"],
                    "conversation_not_found"
                );
            }
            "subscribe" => {
                mallory
                    .send(&json!({"action": "subscribe", "conversation_id": conversation}))
                    .await;
                assert_eq!(
                    mallory.next().await.unwrap()["code"],
                    "conversation_not_found"
                );
            }
            "resume" => {
                mallory
                    .send(&json!({"action": "resume", "message_id": answer, "after_seq": 0}))
                    .await;
                assert_eq!(mallory.next().await.unwrap()["code"], "message_not_found");
            }
            "cancel" => {
                mallory
                    .send(&json!({"action": "cancel", "message_id": answer}))
                    .await;
                assert_eq!(mallory.next().await.unwrap()["code"], "message_not_found");
            }
            "approveTool" => {
                for decision in ["approve", "deny"] {
                    mallory
                        .send(
                            &json!({"action": "approveTool", "tool_execution_id": execution,
                                      "decision": decision}),
                        )
                        .await;
                    assert_eq!(
                        mallory.next().await.unwrap()["code"],
                        "tool_execution_not_found"
                    );
                }
            }
            other => panic!(
                "WebSocket route {other} has no entry in the cross-user matrix: say what another user's ids do there"
            ),
        }
    }
    // Alice's answer ran to its end, untouched; Mallory received none of it.
    let rest = phone.until(completed(&answer)).await;
    assert_eq!(rest.last().unwrap()["message"]["status"], "complete");
    let overheard = mallory.events_for(Duration::from_millis(500)).await;
    let text = serde_json::to_string(&overheard).unwrap();
    assert!(
        !text.contains(&answer) && !text.contains(&conversation),
        "{overheard:?}"
    );
    let stored = stored_messages(gateway, ALICE, &conversation).await;
    assert_eq!(stored.len(), 2, "no message was injected");
    let (_, still) = Api::new(gateway, ALICE)
        .get("/api/tool-executions?status=pending")
        .await;
    assert_eq!(
        still["items"][0]["id"],
        execution.as_str(),
        "her call still waits for her"
    );
}
