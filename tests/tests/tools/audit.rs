//! The audit trail, read straight from the database on both adapter sets: every decision (the
//! user's rules, the user, the clock) and every run of a call is recorded with the tool, what
//! ran it (the module, the MCP server's origin), the argument's hash, who decided by which rule
//! and the outcome; the trail outlives the conversation, records its deletion, and the database
//! refuses to change or delete it. An approval that comes after the call's deadline is refused
//! even before the janitor comes by.

use std::time::Duration;

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::chat::{send_action, tool_conversation, tool_results, until_answered};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{Running, cloud, sqlite};
use bestchat_tests::mcp::McpServerProcess;
use bestchat_tests::scripted::{Call, openai_stream, openai_tool_calls};
use bestchat_tests::ws::WsClient;
use bestchat_tools::sandbox::sha256_hex;
use serde_json::{Value, json};

macro_rules! on_both_adapter_sets {
    ($case:ident, $env:expr) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let r = super::sqlite($env).await;
                super::$case(&r).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn production() {
                let r = super::cloud($env).await;
                super::$case(&r).await;
            }
        }
    };
}

/// Long enough for the test to see the call wait, short enough to outwait.
const APPROVAL_TTL: Duration = Duration::from_millis(1_500);

on_both_adapter_sets!(
    every_decision_and_run_is_recorded_and_outlives_the_conversation,
    &[]
);
on_both_adapter_sets!(
    a_roles_ceiling_bounds_the_users_own_rules,
    &[
        ("BESTCHAT_ADMINS", "root"),
        ("BESTCHAT_ROLE_TOOL_POLICIES", super::ROLE_POLICIES),
    ]
);
on_both_adapter_sets!(
    an_approval_after_its_deadline_is_refused,
    &[("BESTCHAT_TOOL_APPROVAL_TTL_MS", "1500")]
);
on_both_adapter_sets!(
    the_gateways_own_janitor_expires_an_approval_nobody_gave,
    &[
        ("BESTCHAT_TOOL_APPROVAL_TTL_MS", "500"),
        ("BESTCHAT_JANITOR_INTERVAL_MS", "300"),
    ]
);

/// A call that waits for approval, and the model that answers once it is decided.
async fn a_call_waits(running: &Running, then: &str) -> (FakeProvider, String, WsClient, String) {
    let gateway = &running.gateway;
    let api = Api::new(gateway, "alice");
    let (status, rules) = api
        .put(
            "/api/settings/auto-approval",
            &json!({"risk": {"read": "ask", "write": "ask", "network": "ask", "exec": "ask",
                             "destructive": "ask"}, "tools": {}, "max_auto_per_turn": 10}),
        )
        .await;
    assert_eq!(status, 200, "{rules}");
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&[Call {
                id: "call_late",
                name: "calculator",
                arguments: json!({"expression": "1 + 1"}),
            }])),
            Reply::sse(openai_stream(&[then.to_owned()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "Add.")).await;
    let pending = ws.until(|e| e["type"] == "tool.pending").await;
    let waiting = pending.last().unwrap()["tool_execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (fake, id, ws, waiting)
}

/// Nobody calls the janitor here: the local gateway runs it on its interval, through the same
/// entry point as the deployed schedule, and the conversation goes on.
async fn the_gateways_own_janitor_expires_an_approval_nobody_gave(running: &Running) {
    let (fake, id, mut ws, waiting) = a_call_waits(running, "Expired, fine.").await;
    let events = until_answered(&mut ws).await;
    let decided = events
        .iter()
        .find(|e| e["type"] == "tool.decided")
        .expect("the expiry is announced");
    assert_eq!(decided["tool_execution_id"], waiting.as_str());
    assert_eq!(decided["status"], "expired");
    assert_eq!(
        events.last().unwrap()["message"]["content"],
        "Expired, fine."
    );
    assert_eq!(
        tool_results(&fake.requests()[1])[0].1["error"]["code"],
        "expired"
    );
    // The conversation is open again.
    let (status, body) = Api::new(&running.gateway, "alice")
        .post(
            &format!("/api/conversations/{id}/messages"),
            &json!({"client_message_id": "c-2", "content": "Next."}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

/// `(action, target_id, details)` of every entry, oldest first.
async fn trail(running: &Running) -> Vec<(String, String, Value)> {
    running
        .text_rows("SELECT action, target_id, details FROM audit_log ORDER BY created_at, id")
        .await
        .into_iter()
        .map(|row| {
            let details = serde_json::from_str(&row[2]).expect("details are JSON");
            (row[0].clone(), row[1].clone(), details)
        })
        .collect()
}

fn entries<'a>(trail: &'a [(String, String, Value)], action: &str) -> Vec<&'a Value> {
    trail
        .iter()
        .filter(|(a, _, _)| a == action)
        .map(|(_, _, d)| d)
        .collect()
}

async fn every_decision_and_run_is_recorded_and_outlives_the_conversation(running: &Running) {
    let gateway = &running.gateway;
    let api = Api::new(gateway, "alice");
    let server = McpServerProcess::start("stateless", None).await;
    let (status, put) = api
        .put("/api/mcp-servers/calc", &json!({"url": server.url}))
        .await;
    assert_eq!(status, 200, "{put}");
    let origin = server.url.trim_end_matches("/mcp").to_owned();
    let mcp_arguments = json!({"a": 2, "b": 3});
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&[
                Call {
                    id: "call_local",
                    name: "calculator",
                    arguments: json!({"expression": "6 * 7"}),
                },
                Call {
                    id: "call_remote",
                    name: "calc_add",
                    arguments: mcp_arguments.clone(),
                },
            ])),
            Reply::sse(openai_stream(&["42 and 5.".into()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "Compute.")).await;
    // The calculator is `read` (run by the default rules); an untrusted server's tool asks.
    let pending = ws.until(|e| e["type"] == "tool.pending").await;
    let remote = pending.last().unwrap()["tool_execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.send(&json!({"action": "approveTool", "tool_execution_id": remote, "decision": "approve"}))
        .await;
    let events = until_answered(&mut ws).await;
    assert_eq!(events.last().unwrap()["message"]["content"], "42 and 5.");
    let (_, executions) = api
        .get(&format!("/api/tool-executions?conversation_id={id}"))
        .await;
    let local = executions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tool"] == "calculator")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, _) = api.delete(&format!("/api/conversations/{id}")).await;
    assert_eq!(status, 204);
    let (_, executions) = api.get("/api/tool-executions").await;
    assert_eq!(executions["items"], json!([]), "the calls went with it");

    let trail = trail(running).await;
    let of = |target: &str, action: &str| -> Value {
        trail
            .iter()
            .find(|(a, t, _)| a == action && t == target)
            .unwrap_or_else(|| panic!("no {action} for {target}: {trail:#?}"))
            .2
            .clone()
    };
    // The rules' decision, recorded as the step was written.
    let decided = of(&local, "tool_execution.requested");
    assert_eq!(decided["decided_by"], "policy");
    assert_eq!(decided["verdict"], "approve");
    assert_eq!(decided["rule"], "risk:read");
    assert_eq!(decided["conversation_id"], id.as_str());
    assert_eq!(decided["runs"]["module"]["builtin"], "calculator");
    let ran = of(&local, "tool_execution.run");
    assert_eq!(ran["status"], "succeeded");
    assert!(ran["usage"]["fuel"].as_u64().unwrap() > 0, "{ran}");
    assert_eq!(
        ran["arguments_sha256"],
        sha256_hex(json!({"expression": "6 * 7"}).to_string().as_bytes())
    );
    // The remote call: asked, decided by the user from a connection, run against one origin.
    let asked = of(&remote, "tool_execution.requested");
    assert_eq!(asked["status"], "pending");
    assert_eq!(asked["decided_by"], Value::Null);
    let approved = of(&remote, "tool_execution.approve");
    assert_eq!(approved["decided_by"], "user");
    assert!(approved["connection_id"].is_string(), "{approved}");
    let ran = of(&remote, "tool_execution.run");
    assert_eq!(ran["status"], "succeeded");
    assert_eq!(ran["runs"]["mcp"]["origin"], origin.as_str());
    assert_eq!(ran["runs"]["mcp"]["tool"], "add");
    assert_eq!(
        ran["arguments_sha256"],
        sha256_hex(mcp_arguments.to_string().as_bytes())
    );
    assert!(
        !trail
            .iter()
            .any(|(_, _, d)| d.to_string().contains("6 * 7")),
        "arguments are hashed, never kept"
    );
    let deleted = entries(&trail, "conversation.delete");
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        trail.last().unwrap().1,
        id,
        "the deletion is the last entry, naming the conversation"
    );

    // Behind the API's back, the trail neither changes nor goes.
    for attempt in [
        "UPDATE audit_log SET details = '{}'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE action = 'conversation.delete'",
    ] {
        let refused = running.try_sql(attempt).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("audit_log is append-only")),
            "{attempt}: {refused:?}"
        );
    }
    if running.db.is_some() {
        let refused = running.try_sql("TRUNCATE audit_log").await;
        assert!(refused.is_err_and(|e| e.contains("append-only")));
    }
    assert_eq!(
        trail.len(),
        trail_len(running).await,
        "every entry is still there"
    );
    // Erasing the user takes their trail with them.
    running
        .try_sql("DELETE FROM users WHERE subject = 'alice'")
        .await
        .unwrap();
    assert_eq!(trail_len(running).await, 0);
}

async fn trail_len(running: &Running) -> usize {
    running
        .text_rows("SELECT count(*) FROM audit_log")
        .await
        .first()
        .map(|row| row[0].parse().unwrap())
        .unwrap()
}

async fn an_approval_after_its_deadline_is_refused(running: &Running) {
    let api = Api::new(&running.gateway, "alice");
    let (fake, id, mut ws, late) = a_call_waits(running, "Nobody said yes.").await;
    // Past the deadline: whether or not a janitor came by, the approval is late.
    tokio::time::sleep(APPROVAL_TTL + Duration::from_millis(300)).await;
    let (status, body) = api
        .post(&format!("/api/tool-executions/{late}/approve"), &json!({}))
        .await;
    assert_error(status, &body, 409, "conflict");
    assert_eq!(
        body["error"]["message"],
        "nobody approved this call in time; it was not run"
    );
    let events = until_answered(&mut ws).await;
    assert_eq!(
        events.last().unwrap()["message"]["content"],
        "Nobody said yes."
    );
    let told = tool_results(&fake.requests()[1]);
    assert_eq!(told[0].1["error"]["code"], "expired");
    let (_, listed) = api
        .get(&format!("/api/tool-executions?conversation_id={id}"))
        .await;
    let execution = &listed["items"][0];
    assert_eq!(execution["id"], late.as_str());
    assert_eq!(execution["status"], "expired", "{execution}");
    assert_eq!(execution["usage"], Value::Null, "it never ran");
    let expired = entries(&trail(running).await, "tool_execution.expire")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0]["rule"], "timeout");
}

/// Users in no listed role may run nothing without asking and no exec at all; admins may let
/// reads run.
const ROLE_POLICIES: &str = r#"{
    "default": {"risk": {"read": "ask", "write": "ask", "network": "ask", "exec": "deny",
        "destructive": "ask"}, "max_auto_per_turn": 0},
    "admin": {"risk": {"read": "auto", "write": "auto", "network": "auto", "exec": "auto",
        "destructive": "ask"}, "max_auto_per_turn": 10}
}"#;

/// A read and an exec call under the user's default rules (reads run, exec asks): an admin's
/// read runs and their exec asks (their own rule); everyone else's read asks (the role's
/// ceiling) and their exec is refused outright, recorded as the role's rule.
async fn a_roles_ceiling_bounds_the_users_own_rules(running: &Running) {
    let gateway = &running.gateway;
    for user in ["root", "alice"] {
        let fake = FakeProvider::start(
            vec![Reply::sse(openai_tool_calls(&[
                Call {
                    id: "call_calc",
                    name: "calculator",
                    arguments: json!({"expression": "6 * 7"}),
                },
                Call {
                    id: "call_js",
                    name: "run_javascript",
                    arguments: json!({"code": "6 * 7"}),
                },
            ]))],
            Reply::json(500, "{}"),
        )
        .await;
        let id = tool_conversation(gateway, user, &fake, "openai").await;
        let mut ws = WsClient::connect(gateway, user).await;
        ws.send(&send_action(&id, "r-1", "Compute.")).await;
        ws.until(|e| e["type"] == "tool.pending").await;
        let (_, executions) = Api::new(gateway, user)
            .get(&format!("/api/tool-executions?conversation_id={id}"))
            .await;
        let of = |tool: &str| {
            executions["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["tool"] == tool)
                .unwrap_or_else(|| panic!("no {tool}: {executions}"))
                .clone()
        };
        let (calc, js) = (of("calculator"), of("run_javascript"));
        if user == "root" {
            assert_ne!(calc["status"], "pending", "{calc}");
            assert_eq!(calc["decision"]["rule"], "risk:read", "{calc}");
            assert_eq!(
                js["status"], "pending",
                "the admin's own rule still asks: {js}"
            );
        } else {
            assert_eq!(calc["status"], "pending", "the role's ceiling asks: {calc}");
            assert_eq!(js["status"], "denied", "{js}");
            assert_eq!(js["decision"]["rule"], "role:risk:exec", "{js}");
            let trail = trail(running).await;
            let recorded = entries(&trail, "tool_execution.requested");
            assert!(
                recorded
                    .iter()
                    .any(|d| d["rule"] == "role:risk:exec" && d["verdict"] == "deny"),
                "{recorded:?}"
            );
        }
    }
}
