//! NUL (U+0000) from a tool reaches the store as U+FFFD, on PostgreSQL as on SQLite: the
//! built-in interpreter, a user's module and an MCP server each answer with it, the calls end
//! `succeeded` with their results kept (never left `running`, the result lost), and the loop
//! goes on. NUL where a client sends it is refused: a search for it, a token's subject.

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::chat::{send_action, stored_messages, tool_conversation, until_answered};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{Running, TEST_SECRET, cloud, now_epoch, sqlite};
use bestchat_tests::mcp::McpServerProcess;
use bestchat_tests::scripted::{Call, openai_stream, openai_tool_calls};
use bestchat_tests::tools::{manifest, registered};
use bestchat_tests::wasm::module;
use bestchat_tests::ws::WsClient;
use serde_json::json;

macro_rules! on_both_adapter_sets {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { let r = super::sqlite(&[]).await; super::$case(&r).await; } )*
        }
        mod production {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { let r = super::cloud(&[]).await; super::$case(&r).await; } )*
        }
    };
}

on_both_adapter_sets!(
    nul_from_every_kind_of_tool_is_stored_and_the_loop_goes_on,
    nul_from_a_client_is_refused_not_a_server_error,
);

async fn nul_from_every_kind_of_tool_is_stored_and_the_loop_goes_on(running: &Running) {
    let gateway = &running.gateway;
    let api = Api::new(gateway, "alice");
    registered(&api, manifest("nul_output"), module("nul_output")).await;
    let server = McpServerProcess::start("stateless", None).await;
    let (status, put) = api
        .put("/api/mcp-servers/calc", &json!({"url": server.url}))
        .await;
    assert_eq!(status, 200, "an MCP description with NUL is stored: {put}");
    let (status, rules) = api
        .put(
            "/api/settings/auto-approval",
            &json!({"risk": {"read": "auto", "write": "ask", "network": "auto", "exec": "auto",
                             "destructive": "ask"}, "tools": {}, "max_auto_per_turn": 10}),
        )
        .await;
    assert_eq!(status, 200, "{rules}");
    let calls = [
        Call {
            id: "call_js",
            name: "run_javascript",
            arguments: json!({"code": "'a' + String.fromCharCode(0) + 'b'"}),
        },
        Call {
            id: "call_module",
            name: "nul_output",
            arguments: json!({}),
        },
        Call {
            id: "call_mcp",
            name: "calc_nul",
            arguments: json!({}),
        },
    ];
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&calls)),
            Reply::sse(openai_stream(&["All three answered.".into()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "NUL, please.")).await;
    let events = until_answered(&mut ws).await;
    assert_eq!(
        events.last().unwrap()["message"]["content"],
        "All three answered."
    );
    let (_, executions) = api
        .get(&format!("/api/tool-executions?conversation_id={id}"))
        .await;
    let items = executions["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{executions}");
    for e in items {
        assert_eq!(e["status"], "succeeded", "{e}");
        let output = e["output"].to_string();
        assert!(
            output.contains('\u{FFFD}') && !output.contains("\\u0000"),
            "{output}"
        );
    }
    let stored = stored_messages(gateway, "alice", &id).await;
    let results: Vec<&str> = stored
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| r.contains('\u{FFFD}') && !r.contains('\0'))
    );
    // The model was told the results, as stored.
    assert_eq!(fake.requests().len(), 2);
}

async fn nul_from_a_client_is_refused_not_a_server_error(running: &Running) {
    let gateway = &running.gateway;
    let api = Api::new(gateway, "alice");
    let (status, body) = api.get("/api/conversations?q=%00").await;
    assert_error(status, &body, 400, "invalid_request");
    // A correctly signed token whose subject holds NUL is no one.
    let claims = json!({"sub": "ali\u{0}ce", "iss": bestchat_tests::gateway::ISSUER,
                        "aud": bestchat_tests::gateway::AUDIENCE, "iat": now_epoch(),
                        "exp": now_epoch() + 600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap();
    let response = reqwest::Client::new()
        .get(gateway.url("/api/conversations"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}
