//! Remote MCP servers end to end: a real server built with the official Python SDK on
//! loopback, in both revisions (the stateless 2026-07-28 one, and 2025-06-18 sessions),
//! registered with a sealed bearer token, its tools listed and called from a conversation;
//! its annotations shown and not trusted until the user says so.

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::chat::{send_action, tool_conversation, tool_results, until_answered};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::sqlite;
use bestchat_tests::mcp::McpServerProcess;
use bestchat_tests::scripted::{Call, openai_stream, openai_tool_calls};
use bestchat_tests::ws::WsClient;
use serde_json::{Value, json};

const TOKEN: &str = "mcp-secret-token-0123456789";

fn tool<'a>(listed: &'a Value, name: &str) -> &'a Value {
    listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name} in {listed}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_servers_tools_are_listed_called_and_their_hints_not_trusted() {
    let server = McpServerProcess::start("stateless", Some(TOKEN)).await;
    let running = sqlite(&[]).await;
    let gateway = &running.gateway;
    let (alice, mallory) = (Api::new(gateway, "alice"), Api::new(gateway, "mallory"));

    // The wrong token: the server refuses, and so does the registration.
    let (status, body) = alice
        .put(
            "/api/mcp-servers/calc",
            &json!({"url": server.url, "headers": {"Authorization": "Bearer wrong"}}),
        )
        .await;
    assert_error(status, &body, 422, "mcp_unavailable");
    let (status, put) = alice
        .put(
            "/api/mcp-servers/calc",
            &json!({"url": server.url, "headers": {"Authorization": format!("Bearer {TOKEN}")}}),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["protocol"], "2026-07-28");
    assert_eq!(put["header_names"], json!(["authorization"]));
    assert_eq!(put["trusted"], false);
    assert!(
        !put.to_string().contains(TOKEN),
        "header values are never returned"
    );
    let names: Vec<&str> = put["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["calc_add", "calc_erase_everything", "calc_nul", "calc_fail"]
    );

    let (_, listed) = alice.get("/api/tools").await;
    let add = tool(&listed, "calc_add");
    assert_eq!(add["source"], "mcp");
    assert_eq!(add["server"], "calc");
    assert_eq!(add["annotations"]["readOnlyHint"], true, "hints are shown");
    assert_eq!(add["risk"], "network", "and not trusted");
    assert_eq!(
        tool(&listed, "calc_erase_everything")["risk"],
        "destructive"
    );
    assert_eq!(add["parameters"]["properties"]["a"]["type"], "integer");

    // Another user sees none of it, cannot delete it, and his own `calc` is his.
    let (_, theirs) = mallory.get("/api/mcp-servers").await;
    assert_eq!(theirs["items"], json!([]));
    let (_, their_tools) = mallory.get("/api/tools").await;
    assert!(!their_tools.to_string().contains("calc_add"));
    let (status, body) = mallory.delete("/api/mcp-servers/calc").await;
    assert_error(status, &body, 404, "mcp_server_not_found");

    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&[Call {
                id: "c1",
                name: "calc_add",
                arguments: json!({"a": 2, "b": 3}),
            }])),
            Reply::sse(openai_stream(&["Five.".into()])),
            Reply::sse(openai_tool_calls(&[
                Call {
                    id: "c2",
                    name: "calc_add",
                    arguments: json!({"a": 20, "b": 22}),
                },
                Call {
                    id: "c3",
                    name: "calc_fail",
                    arguments: json!({"reason": "testing"}),
                },
            ])),
            Reply::sse(openai_stream(&["42, and a failure.".into()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let offered = {
        let mut ws = WsClient::connect(gateway, "alice").await;
        ws.send(&send_action(&id, "c-1", "Add 2 and 3.")).await;
        // Untrusted: a network tool, which asks.
        let pending = ws.until(|e| e["type"] == "tool.pending").await;
        let execution = pending.last().unwrap()["tool_execution_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, approved) = alice
            .post(
                &format!("/api/tool-executions/{execution}/approve"),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{approved}");
        let events = until_answered(&mut ws).await;
        assert_eq!(events.last().unwrap()["message"]["content"], "Five.");
        fake.requests()[0].json()["tools"].clone()
    };
    assert!(offered.to_string().contains("calc_add"), "{offered}");
    let first = tool_results(&fake.requests()[1]);
    assert_eq!(first[0].1["result"], 5, "{first:?}");

    // Trusted, its read-only tool runs without asking; its failures reach the model.
    let (status, put) = alice
        .put(
            "/api/mcp-servers/calc",
            &json!({"url": server.url, "trusted": true}),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(
        put["header_names"],
        json!(["authorization"]),
        "headers kept"
    );
    let (status, _) = alice
        .put(
            "/api/settings/auto-approval",
            &json!({"risk": {"read": "auto", "write": "ask", "network": "ask", "exec": "ask",
                             "destructive": "ask"}, "tools": {"calc_fail": "auto"},
                    "max_auto_per_turn": 5}),
        )
        .await;
    assert_eq!(status, 200);
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-2", "Now 20 and 22.")).await;
    let events = until_answered(&mut ws).await;
    assert!(
        !events.iter().any(|e| e["type"] == "tool.pending"),
        "nothing asked: {events:#?}"
    );
    let second = tool_results(&fake.requests()[3]);
    let add = &second.iter().find(|(id, _)| id == "c2").unwrap().1;
    assert_eq!(add["result"], 42);
    let fail = &second.iter().find(|(id, _)| id == "c3").unwrap().1;
    assert_eq!(fail["error"]["code"], "tool_error");
    assert!(
        fail["error"]["message"]
            .as_str()
            .unwrap()
            .contains("on purpose"),
        "{fail}"
    );
    let (_, runs) = alice
        .get(&format!("/api/tool-executions?conversation_id={id}"))
        .await;
    let trusted_run = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tool_call_id"] == "c2")
        .unwrap();
    assert_eq!(trusted_run["risk"], "read");
    assert_eq!(trusted_run["decision"]["rule"], "risk:read");

    let (status, _) = alice.delete("/api/mcp-servers/calc").await;
    assert_eq!(status, 204);
    let (_, listed) = alice.get("/api/tools").await;
    assert!(!listed.to_string().contains("calc_add"));
    let (status, body) = alice.delete("/api/mcp-servers/calc").await;
    assert_error(status, &body, 404, "mcp_server_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_06_18_server_is_spoken_to_in_a_session() {
    let server = McpServerProcess::start("legacy", None).await;
    let running = sqlite(&[]).await;
    let gateway = &running.gateway;
    let alice = Api::new(gateway, "alice");
    let (status, put) = alice
        .put(
            "/api/mcp-servers/old",
            &json!({"url": server.url, "trusted": true}),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["protocol"], "2025-06-18");
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&[Call {
                id: "o1",
                name: "old_add",
                arguments: json!({"a": 1, "b": 1}),
            }])),
            Reply::sse(openai_stream(&["Two.".into()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "1 + 1?")).await;
    let events = until_answered(&mut ws).await;
    assert_eq!(events.last().unwrap()["message"]["content"], "Two.");
    assert_eq!(tool_results(&fake.requests()[1])[0].1["result"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mcp_registrations_are_refused_with_the_reason() {
    // As deployed: private addresses are not for users' servers.
    let running = sqlite(&[
        ("BESTCHAT_MCP_TIMEOUT_MS", "2000"),
        ("BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS", "0"),
    ])
    .await;
    let api = Api::new(&running.gateway, "alice");
    let public = "https://mcp.example.com/mcp";
    for (id, body) in [
        ("Bad-Id", json!({"url": public})),
        ("ok", json!({"url": "ftp://example.com/mcp"})),
        ("ok", json!({"url": "https://user:pw@mcp.example.com/mcp"})),
        ("ok", json!({"url": "not a url"})),
        ("ok", json!({"url": public, "headers": {"Host": "x"}})),
        (
            "ok",
            json!({"url": public, "headers": {"x-a": "line\nbreak"}}),
        ),
        ("ok", json!({"url": public, "extra": 1})),
        // The private-address guard, before anything is sent.
        ("ok", json!({"url": "http://127.0.0.1:9/mcp"})),
        ("ok", json!({"url": "http://localhost:9/mcp"})),
        ("ok", json!({"url": "http://[::1]:9/mcp"})),
        (
            "ok",
            json!({"url": "http://169.254.169.254/latest/meta-data/"}),
        ),
        ("ok", json!({"url": "http://10.0.0.1/mcp"})),
    ] {
        let (status, answer) = api.put(&format!("/api/mcp-servers/{id}"), &body).await;
        assert!(status.is_client_error(), "{id} {body}: {status} {answer}");
        assert_eq!(
            answer["error"]["code"], "validation_failed",
            "{id} {body}: {answer}"
        );
    }
    let (_, listed) = api.get("/api/mcp-servers").await;
    assert_eq!(listed["items"], json!([]), "nothing refused was stored");
}

/// A JSON-RPC answer (id 1, as the client sends) with `result`.
fn rpc(result: Value) -> Reply {
    Reply::json(
        200,
        json!({"jsonrpc": "2.0", "id": 1, "result": result}).to_string(),
    )
}

fn discovered() -> Reply {
    rpc(json!({"supportedVersions": ["2026-07-28"]}))
}

/// A tool as a server lists it, with a schema of about `schema_bytes`.
fn listed(name: &str, description: &str, schema_bytes: usize) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "description": "x".repeat(schema_bytes)},
    })
}

mod listings {
    use super::*;

    macro_rules! on_both_adapter_sets {
        ($env:expr; $($case:ident),* $(,)?) => {
            mod embedded {
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $case() {
                       let r = bestchat_tests::gateway::sqlite($env).await;
                       super::$case(&r).await;
                   } )*
            }
            mod production {
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $case() {
                       let r = bestchat_tests::gateway::cloud($env).await;
                       super::$case(&r).await;
                   } )*
            }
        };
    }

    on_both_adapter_sets!(&[
            ("BESTCHAT_MCP_MAX_LISTING_BYTES", "20000"),
            ("BESTCHAT_MCP_TIMEOUT_MS", "1500"),
            ("BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS", "1"),
        ];
        huge_and_slow_listings_are_bounded_like_manifests,
    );

    /// A server's listing passes what a manifest must: a huge schema leaves its tool out, a
    /// long description is cut, a listing past its budget is refused; and a slow server is
    /// given one deadline for the whole registration, not one per exchange.
    async fn huge_and_slow_listings_are_bounded_like_manifests(
        running: &bestchat_tests::gateway::Running,
    ) {
        let api = Api::new(&running.gateway, "alice");
        let huge = FakeProvider::start(
            vec![
                discovered(),
                rpc(json!({
                    "tools": [
                        listed("giant", "a 40 KB schema", 40 * 1024),
                        listed("chatty", &"d".repeat(5_000), 100),
                        listed("fine", "an ordinary tool", 100),
                    ],
                })),
            ],
            Reply::json(404, "{}"),
        )
        .await;
        let (status, put) = api
            .put(
                "/api/mcp-servers/big",
                &json!({"url": format!("{}/mcp", huge.base_url)}),
            )
            .await;
        assert_eq!(status, 200, "{put}");
        let names: Vec<&str> = put["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["big_chatty", "big_fine"],
            "the giant schema is left out"
        );
        let (_, tools) = api.get("/api/tools").await;
        let chatty = tool(&tools, "big_chatty");
        assert_eq!(
            chatty["description"].as_str().unwrap().chars().count(),
            1_024
        );
        assert!(
            tools.to_string().len() < 64 * 1024,
            "the listing stays small"
        );

        // Many tools of ordinary size, together past the listing's budget: refused.
        let many: Vec<Value> = (0..40)
            .map(|i| listed(&format!("t{i}"), "one of many", 1_000))
            .collect();
        let crowd = FakeProvider::start(
            vec![discovered(), rpc(json!({"tools": many}))],
            Reply::json(404, "{}"),
        )
        .await;
        let (status, body) = api
            .put(
                "/api/mcp-servers/crowd",
                &json!({"url": format!("{}/mcp", crowd.base_url)}),
            )
            .await;
        assert_error(status, &body, 422, "mcp_unavailable");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("listing"),
            "{body}"
        );

        // Each answer within its own limit, together past the registration's one deadline.
        let slow = |reply: Reply| Reply {
            wait: Some(std::time::Duration::from_millis(1_000)),
            ..reply
        };
        let sluggish = FakeProvider::start(
            vec![
                slow(discovered()),
                slow(rpc(json!({"tools": [listed("late", "arrives late", 10)]}))),
            ],
            Reply::json(404, "{}"),
        )
        .await;
        let (status, body) = api
            .put(
                "/api/mcp-servers/slow",
                &json!({"url": format!("{}/mcp", sluggish.base_url)}),
            )
            .await;
        assert_error(status, &body, 422, "mcp_unavailable");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("too slowly"),
            "{body}"
        );
        let (_, servers) = api.get("/api/mcp-servers").await;
        let ids: Vec<&str> = servers["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["big"]);
    }
}
