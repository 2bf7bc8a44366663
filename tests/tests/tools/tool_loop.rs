//! The agent loop end to end over real WebSocket: a fake provider in each wire format asks for
//! tools, the turn decides and runs them in the executor, and the model answers from the
//! results; calls that wait for the user end the invocation, and a decision from any device
//! continues the loop in a new one.

use std::time::Duration;

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::chat::{
    answer_id, assert_saw_what_was_stored, send_action, stored_messages, tool_conversation,
    tool_results, until_answered,
};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{Running, cloud, sqlite};
use bestchat_tests::scripted::{
    Call, anthropic_text, anthropic_tool_calls, gemini_text, gemini_tool_calls, openai_stream,
    openai_tool_calls, words,
};
use bestchat_tests::tools::{Executor, manifest, registered};
use bestchat_tests::wasm::module;
use bestchat_tests::ws::{WsClient, completed, deltas};
use serde_json::{Value, json};

fn calculator(id: &str, expression: &str) -> Call<'static> {
    Call {
        id: Box::leak(id.to_owned().into_boxed_str()),
        name: "calculator",
        arguments: json!({ "expression": expression }),
    }
}

/// The example tool (counts words) registered under `name` with `risk`.
async fn word_count(api: &Api<'_>, name: &str, risk: &str) {
    let mut m: Value =
        serde_json::from_str(include_str!("../../../examples/wasm-tool/manifest.json")).unwrap();
    m["name"] = json!(name);
    m["risk"] = json!(risk);
    registered(api, m, module("word_count")).await;
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

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
    a_message_sent_while_a_tool_runs_is_refused_and_nothing_interleaves,
    an_auto_approved_read_tool_answers_in_one_turn,
    an_ask_tool_waits_for_any_device_and_continues_in_a_new_invocation,
    a_provider_that_repeats_a_call_id_gets_every_result,
);

/// A provider that sends two calls under one id (or none) would make them one call in the
/// store: each gets an id of its own, both run, and the model reads both results under the
/// ids its own earlier message now carries.
async fn a_provider_that_repeats_a_call_id_gets_every_result(running: &Running) {
    let gateway = &running.gateway;
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&[
                calculator("call_same", "1 + 1"),
                calculator("call_same", "2 + 2"),
            ])),
            Reply::sse(openai_stream(&["2 and 4.".into()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "Add twice.")).await;
    let events = until_answered(&mut ws).await;
    assert_eq!(events.last().unwrap()["message"]["content"], "2 and 4.");
    let told = tool_results(&fake.requests()[1]);
    let results: Vec<(&str, &Value)> = told
        .iter()
        .map(|(id, r)| (id.as_str(), &r["result"]))
        .collect();
    assert_eq!(
        results,
        [("call_same", &json!("2")), ("call_same_2", &json!("4"))]
    );
    let asked = &fake.requests()[1].json()["messages"];
    let ids: Vec<&Value> = asked
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .flat_map(|m| m["tool_calls"].as_array().unwrap().iter().map(|c| &c["id"]))
        .collect();
    assert_eq!(ids, [&json!("call_same"), &json!("call_same_2")]);
}

/// A send while the previous turn still runs a tool would put the new question between the
/// call and its result: it is refused (409 over HTTP, `message.error` over WebSocket), the
/// client keeps its text, and once the turn has ended the next message goes in after it.
async fn a_message_sent_while_a_tool_runs_is_refused_and_nothing_interleaves(running: &Running) {
    let gateway = &running.gateway;
    let api = Api::new(gateway, "alice");
    // A tool that spins until its wall-clock limit: it is running for as long as that.
    let mut spin = manifest("spin");
    spin["grants"] = json!({"timeout_ms": 3000, "fuel": 20_000_000_000u64});
    registered(&api, spin, module("endless_loop")).await;
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&[Call {
                id: "call_spin",
                name: "spin",
                arguments: json!({}),
            }])),
            Reply::sse(openai_stream(&["Spun.".into()])),
            Reply::sse(openai_stream(&["Second answer.".into()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "Spin.")).await;
    // Wait until the call runs.
    let mut running_call = false;
    for _ in 0..200 {
        let (_, listed) = api.get("/api/tool-executions?status=running").await;
        if listed["items"].as_array().is_some_and(|i| !i.is_empty()) {
            running_call = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(running_call, "the spin call runs");
    let send_path = format!("/api/conversations/{id}/messages");
    let (status, body) = api
        .post(
            &send_path,
            &json!({"client_message_id": "c-2", "content": "Meanwhile?"}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let mut other = WsClient::connect(gateway, "alice").await;
    other
        .send(&send_action(&id, "c-3", "Meanwhile, over the socket?"))
        .await;
    let refused = other.until(|e| e["type"] == "message.error").await;
    assert_eq!(refused.last().unwrap()["code"], "conflict");

    let events = until_answered(&mut ws).await;
    assert_eq!(events.last().unwrap()["message"]["content"], "Spun.");
    let stored = stored_messages(gateway, "alice", &id).await;
    let roles: Vec<&str> = stored.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["user", "assistant", "tool", "assistant"],
        "{stored:#?}"
    );
    // Ended: the same text goes in now, after the whole turn.
    let (status, body) = api
        .post(
            &send_path,
            &json!({"client_message_id": "c-2", "content": "Meanwhile?"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    until_answered(&mut ws).await;
    let stored = stored_messages(gateway, "alice", &id).await;
    let order: Vec<(&str, &str)> = stored
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .filter(|(role, _)| *role != "tool")
        .collect();
    assert_eq!(
        order,
        [
            ("user", "Spin."),
            ("assistant", ""),
            ("assistant", "Spun."),
            ("user", "Meanwhile?"),
            ("assistant", "Second answer."),
        ]
    );
}

async fn an_auto_approved_read_tool_answers_in_one_turn(running: &Running) {
    let gateway = &running.gateway;
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&[calculator("call_1", "6 * 7")])),
            Reply::sse(openai_stream(&["It is ".into(), "42.".into()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "What is 6 times 7?"))
        .await;
    let events = until_answered(&mut ws).await;

    let first = answer_id(&events);
    let step = of_type(&events, "message.completed")[0];
    assert_eq!(step["message_id"], first.as_str());
    assert_eq!(step["finish_reason"], "tool_calls");
    assert_eq!(step["message"]["status"], "complete");
    let result = of_type(&events, "tool.result");
    assert_eq!(result.len(), 1, "{events:#?}");
    assert_eq!(result[0]["status"], "succeeded");
    assert_eq!(result[0]["output"]["result"], "42");
    let done = events.last().unwrap();
    assert_eq!(done["message"]["content"], "It is 42.");
    assert_eq!(
        done["message"]["reply_to"],
        first.as_str(),
        "the next step follows the first"
    );
    // Per step, and summed on the answer: 30 + 40 prompt tokens, 12 + 2 output tokens.
    assert_eq!(done["usage"]["input_tokens"], 40);
    assert_eq!(done["turn_usage"]["input_tokens"], 70);
    assert_eq!(done["turn_usage"]["output_tokens"], 14);

    let stored = stored_messages(gateway, "alice", &id).await;
    let roles: Vec<&str> = stored.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(stored[1]["tool_calls"][0]["name"], "calculator");
    assert_eq!(stored[1]["usage"]["output_tokens"], 12);
    assert_eq!(stored[2]["tool_call_id"], "call_1");
    let output: Value = serde_json::from_str(stored[2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(output["result"], "42");
    assert_eq!(stored[3]["content"], "It is 42.");
    assert_eq!(stored[3]["usage"]["output_tokens"], 2);
    assert_saw_what_was_stored(&events, stored[3]["id"].as_str().unwrap(), &stored[3]);

    // The model was offered the tools, and got the call back with its result.
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let first_request = requests[0].json();
    let offered: Vec<&str> = first_request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(offered.contains(&"calculator"), "{offered:?}");
    let results = tool_results(&requests[1]);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0, "call_1");
    assert_eq!(results[0].1["result"], "42");

    // The execution is on record: the policy's decision and its rule, and what it used.
    let (status, listed) = Api::new(gateway, "alice")
        .get(&format!("/api/tool-executions?conversation_id={id}"))
        .await;
    assert_eq!(status, 200, "{listed}");
    let execution = &listed["items"][0];
    assert_eq!(execution["status"], "succeeded");
    assert_eq!(execution["decision"]["by"], "policy");
    assert_eq!(execution["decision"]["rule"], "risk:read");
    assert!(
        execution["usage"]["fuel"].as_u64().unwrap() > 0,
        "{execution}"
    );
}

async fn an_ask_tool_waits_for_any_device_and_continues_in_a_new_invocation(running: &Running) {
    let gateway = &running.gateway;
    let answer = words(60);
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&[Call {
                id: "call_w",
                name: "count_words",
                arguments: json!({"text": "one two three"}),
            }])),
            Reply::sse(openai_stream(&answer)).paced(60, Duration::from_millis(15)),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let api = Api::new(gateway, "alice");
    word_count(&api, "count_words", "write").await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut phone = WsClient::connect(gateway, "alice").await;
    // The laptop follows nothing: approvals reach every device.
    let mut laptop = WsClient::connect(gateway, "alice").await;
    phone.send(&send_action(&id, "c-1", "Count these.")).await;
    let waiting_on_phone = phone.until(|e| e["type"] == "tool.pending").await;
    let pending = laptop.until(|e| e["type"] == "tool.pending").await;
    let pending = pending.last().unwrap();
    let execution = pending["tool_execution_id"].as_str().unwrap().to_owned();
    assert_eq!(pending["tool_execution"]["tool"], "count_words");
    assert_eq!(pending["tool_execution"]["risk"], "write");
    assert_eq!(pending["tool_execution"]["status"], "pending");
    let step = of_type(&waiting_on_phone, "message.completed");
    assert_eq!(step[0]["message"]["status"], "awaiting_approval");
    // Nothing runs while the user decides: the invocation ended.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 1);
    let stored = stored_messages(gateway, "alice", &id).await;
    assert_eq!(stored[1]["status"], "awaiting_approval");

    laptop
        .send(&json!({"action": "approveTool", "tool_execution_id": execution, "decision": "approve"}))
        .await;
    // The phone sees the decision, the result, and the next answer begin.
    let mut seen = phone
        .until(|e| e["type"] == "message.delta" && e["seq"] == 2)
        .await;
    let decided = of_type(&seen, "tool.decided");
    assert_eq!(decided[0]["status"], "approved");
    assert_eq!(decided[0]["decision"]["by"], "user");
    assert!(decided[0]["decision"]["connection_id"].is_string());
    let result = of_type(&seen, "tool.result");
    assert_eq!(result[0]["status"], "succeeded");
    assert_eq!(result[0]["output"]["words"], 3, "{result:?}");
    let next = seen
        .iter()
        .rev()
        .find(|e| e["type"] == "message.created")
        .unwrap()["message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The phone drops mid-answer and comes back: the rest arrives without gap or repeat.
    phone.close().await;
    let mut back = WsClient::connect(gateway, "alice").await;
    back.send(&json!({"action": "resume", "message_id": next, "after_seq": 2}))
        .await;
    seen.extend(back.until(completed(&next)).await);
    let on_laptop = laptop.until(completed(&next)).await;
    let stored = stored_messages(gateway, "alice", &id).await;
    let last = stored.last().unwrap();
    assert_eq!(last["content"], answer.concat());
    assert_eq!(
        deltas(&seen).0,
        answer.concat(),
        "no gap, no repeat after the resume"
    );
    let (_, seqs) = deltas(&seen);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(deltas(&on_laptop).0, answer.concat());
    assert_eq!(stored[1]["status"], "complete", "no longer waiting");
    assert!(
        gateway
            .log()
            .contains("a new invocation continues the tool step"),
        "the continuation ran in an invocation of its own"
    );
    // A repeat of the decision is a no-op; another decision is a conflict.
    let path = format!("/api/tool-executions/{execution}");
    let (status, again) = api.post(&format!("{path}/approve"), &json!({})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "succeeded");
    let (status, body) = api.post(&format!("{path}/deny"), &json!({})).await;
    assert_error(status, &body, 409, "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_round_trip_on_anthropic_and_gemini() {
    let running = sqlite(&[]).await;
    let gateway = &running.gateway;
    for (protocol, calls, text) in [
        (
            "anthropic",
            anthropic_tool_calls(&[
                calculator("toolu_1", "2 + 2"),
                calculator("toolu_2", "3 * 3"),
            ]),
            anthropic_text("4 and 9."),
        ),
        (
            "gemini",
            gemini_tool_calls(&[calculator("g1", "2 + 2"), calculator("g2", "3 * 3")]),
            gemini_text("4 and 9."),
        ),
    ] {
        let fake = FakeProvider::start(
            vec![Reply::sse(calls), Reply::sse(text)],
            Reply::json(500, "{}"),
        )
        .await;
        let user = format!("user-{protocol}");
        let id = tool_conversation(gateway, &user, &fake, protocol).await;
        let mut ws = WsClient::connect(gateway, &user).await;
        ws.send(&send_action(&id, "c-1", "Two sums.")).await;
        let events = until_answered(&mut ws).await;
        let results = of_type(&events, "tool.result");
        assert_eq!(results.len(), 2, "{protocol}: both parallel calls ran");
        assert_eq!(events.last().unwrap()["message"]["content"], "4 and 9.");
        let stored = stored_messages(gateway, &user, &id).await;
        let roles: Vec<&str> = stored.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(
            roles,
            ["user", "assistant", "tool", "tool", "assistant"],
            "{protocol}"
        );
        let second = fake.requests()[1].json();
        let sent = second.to_string();
        // As a JSON string (Anthropic) or an object (Gemini's functionResponse).
        let at = |n: &str| {
            sent.find(&format!(r#"\"result\":\"{n}\""#))
                .or_else(|| sent.find(&format!(r#""result":"{n}""#)))
        };
        let (four, nine) = (at("4"), at("9"));
        assert!(
            four.is_some() && nine.is_some(),
            "{protocol}: results sent back: {sent}"
        );
        assert!(
            four < nine,
            "{protocol}: results in the order of their calls"
        );
        if protocol == "anthropic" {
            let last = second["messages"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .clone();
            assert_eq!(last["role"], "user");
            let kinds: Vec<&str> = last["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["type"].as_str().unwrap())
                .collect();
            assert_eq!(
                kinds,
                ["tool_result", "tool_result"],
                "both results in one turn"
            );
        } else {
            assert!(
                sent.contains("sig-g1"),
                "Gemini's thought signature went back with its call"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_expiry_and_other_users() {
    let running = sqlite(&[("BESTCHAT_TOOL_APPROVAL_TTL_MS", "400")]).await;
    let gateway = &running.gateway;
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&[Call {
                id: "call_a",
                name: "count_words",
                arguments: json!({"text": "a b"}),
            }])),
            Reply::sse(openai_stream(&["Denied, fine.".into()])),
            Reply::sse(openai_tool_calls(&[Call {
                id: "call_b",
                name: "count_words",
                arguments: json!({"text": "c d"}),
            }])),
            Reply::sse(openai_stream(&["Nobody answered.".into()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let (alice, mallory) = (Api::new(gateway, "alice"), Api::new(gateway, "mallory"));
    word_count(&alice, "count_words", "write").await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;

    ws.send(&send_action(&id, "c-1", "Count.")).await;
    let pending = ws.until(|e| e["type"] == "tool.pending").await;
    let execution = pending.last().unwrap()["tool_execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/tool-executions/{execution}");
    // While it waits, a new message is refused (its answer would strand the call); sending the
    // waiting turn's own message again is a repeat, answered with the original pair.
    let send_path = format!("/api/conversations/{id}/messages");
    let (status, body) = alice
        .post(
            &send_path,
            &json!({"client_message_id": "c-new", "content": "Something else."}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let (status, again) = alice
        .post(
            &send_path,
            &json!({"client_message_id": "c-1", "content": "Count."}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["assistant_message"]["status"], "awaiting_approval");
    // Another user cannot see, approve or deny it: 404, as if it did not exist.
    for action in ["approve", "deny"] {
        let (status, body) = mallory.post(&format!("{path}/{action}"), &json!({})).await;
        assert_error(status, &body, 404, "tool_execution_not_found");
    }
    let (_, theirs) = mallory.get("/api/tool-executions").await;
    assert_eq!(theirs["items"], json!([]));
    let mut theirs_ws = WsClient::connect(gateway, "mallory").await;
    theirs_ws
        .send(&json!({"action": "approveTool", "tool_execution_id": execution, "decision": "approve"}))
        .await;
    let refused = theirs_ws.next().await.unwrap();
    assert_eq!(refused["code"], "tool_execution_not_found");

    let (status, denied) = alice.post(&format!("{path}/deny"), &json!({})).await;
    assert_eq!(status, 200, "{denied}");
    assert_eq!(denied["status"], "denied");
    let events = until_answered(&mut ws).await;
    assert_eq!(
        events.last().unwrap()["message"]["content"],
        "Denied, fine."
    );
    let told = tool_results(&fake.requests()[1]);
    assert_eq!(told[0].1["error"]["code"], "denied");
    assert_eq!(told[0].1["error"]["message"], "denied by the user");
    let (status, again) = alice.post(&format!("{path}/deny"), &json!({})).await;
    assert_eq!(
        (status.as_u16(), again["status"].as_str()),
        (200, Some("denied"))
    );
    let (status, body) = alice.post(&format!("{path}/approve"), &json!({})).await;
    assert_error(status, &body, 409, "conflict");

    // Nobody decides the next one: the janitor ends it as denied by timeout, and the loop goes on.
    ws.send(&send_action(&id, "c-2", "Count again.")).await;
    let pending = ws.until(|e| e["type"] == "tool.pending").await;
    let late = pending.last().unwrap()["tool_execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let swept = Executor::of(gateway).janitor().await;
    assert_eq!(swept["tool_calls_expired"], 1, "{swept}");
    let events = until_answered(&mut ws).await;
    let decided = of_type(&events, "tool.decided");
    assert_eq!(decided[0]["status"], "expired");
    assert_eq!(decided[0]["decision"]["rule"], "timeout");
    assert_eq!(
        events.last().unwrap()["message"]["content"],
        "Nobody answered."
    );
    let told = tool_results(&fake.requests()[3]);
    assert_eq!(told.last().unwrap().1["error"]["code"], "expired");
    let (_, expired) = alice.get("/api/tool-executions?status=expired").await;
    assert_eq!(expired["items"][0]["id"], late.as_str());
    let (status, body) = alice
        .post(&format!("/api/tool-executions/{late}/approve"), &json!({}))
        .await;
    assert_error(status, &body, 409, "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_unknown_tools_and_every_failure_reach_the_model() {
    let running = sqlite(&[]).await;
    let gateway = &running.gateway;
    let api = Api::new(gateway, "alice");
    let attacks = [
        ("endless_loop", ["out_of_fuel", "timeout"].as_slice()),
        ("memory_bomb", &["memory_limit"]),
        ("deep_recursion", &["trap"]),
        ("panics", &["trap"]),
        ("flood", &["output_too_large"]),
        ("not_json", &["invalid_output"]),
    ];
    for (name, _) in attacks {
        registered(&api, manifest(name), module(name)).await;
    }
    let mut calls: Vec<Call<'_>> = attacks
        .iter()
        .map(|(name, _)| Call {
            id: name,
            name,
            arguments: json!({}),
        })
        .collect();
    calls.push(Call {
        id: "bad_args",
        name: "calculator",
        arguments: json!({"expression": 42}),
    });
    calls.push(Call {
        id: "no_such",
        name: "rm_rf",
        arguments: json!({}),
    });
    // The network failures, through http_fetch and the user's allowed hosts.
    calls.push(Call {
        id: "not_granted",
        name: "http_fetch",
        arguments: json!({"url": "https://elsewhere.example/"}),
    });
    calls.push(Call {
        id: "private",
        name: "http_fetch",
        arguments: json!({"url": "http://localhost:9/"}),
    });
    let fake = FakeProvider::start(
        vec![
            Reply::sse(openai_tool_calls(&calls)),
            Reply::sse(openai_stream(&["All failed.".into()])),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    // The cap on calls run without asking counts every auto-approved call of the turn.
    let (status, _) = api
        .put(
            "/api/settings/auto-approval",
            &json!({"risk": {"read": "auto", "write": "ask", "network": "ask", "exec": "ask",
                             "destructive": "ask"}, "tools": {"http_fetch": "auto"},
                    "max_auto_per_turn": 10}),
        )
        .await;
    assert_eq!(status, 200);
    // localhost is allowed by the user, and still refused by the private-address guard.
    let (status, body) = api
        .put(
            "/api/settings/fetch-hosts",
            &json!({"hosts": ["localhost"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "Break things.")).await;
    let events = until_answered(&mut ws).await;
    assert_eq!(events.last().unwrap()["message"]["content"], "All failed.");
    assert_eq!(of_type(&events, "tool.result").len(), calls.len());
    let told = tool_results(&fake.requests()[1]);
    assert_eq!(
        told.len(),
        calls.len(),
        "every call got its result back to the model"
    );
    for (name, codes) in attacks {
        let (_, result) = told.iter().find(|(id, _)| id == name).unwrap();
        let code = result["error"]["code"].as_str().unwrap();
        assert!(codes.contains(&code), "{name}: {result}");
    }
    let (_, bad) = told.iter().find(|(id, _)| id == "bad_args").unwrap();
    assert_eq!(bad["error"]["code"], "invalid_arguments");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/expression"),
        "{bad}"
    );
    let (_, unknown) = told.iter().find(|(id, _)| id == "no_such").unwrap();
    assert_eq!(unknown["error"]["code"], "tool_not_found");
    for (id, code) in [
        ("not_granted", "host_not_allowed"),
        ("private", "blocked_address"),
    ] {
        let (_, result) = told.iter().find(|(call, _)| call == id).unwrap();
        assert_eq!(result["error"]["code"], code, "{id}: {result}");
    }
    // The turn's executions, newest first, paged.
    let (_, page) = api.get("/api/tool-executions?limit=3").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = api
        .get(&format!("/api/tool-executions?limit=50&cursor={cursor}"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), calls.len() - 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_step_limit_ends_the_loop_honestly() {
    let running = sqlite(&[("BESTCHAT_TOOL_MAX_STEPS", "2")]).await;
    let gateway = &running.gateway;
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(openai_tool_calls(&[calculator("again", "1 + 1")])),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "Loop forever.")).await;
    let events = ws
        .until(|e| e["type"] == "message.completed" && e["message"]["status"] == "incomplete")
        .await;
    let last = events.last().unwrap();
    assert_eq!(last["message"]["error"]["code"], "tool_step_limit");
    let errors = of_type(&events, "message.error");
    assert_eq!(errors[0]["code"], "tool_step_limit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 2, "two steps, no third");
    let stored = stored_messages(gateway, "alice", &id).await;
    let roles: Vec<&str> = stored.iter().map(|m| m["role"].as_str().unwrap()).collect();
    // The refused call of the last step has its result, so the history stays whole.
    assert_eq!(roles, ["user", "assistant", "tool", "assistant", "tool"]);
    let refused: Value = serde_json::from_str(stored[4]["content"].as_str().unwrap()).unwrap();
    assert_eq!(refused["error"]["code"], "step_limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destructive_tool_asks_whatever_the_settings_say() {
    let running = sqlite(&[]).await;
    let gateway = &running.gateway;
    let api = Api::new(gateway, "alice");
    word_count(&api, "wipe", "destructive").await;
    let (status, body) = api
        .put(
            "/api/settings/auto-approval",
            &json!({"risk": {"read": "auto", "write": "auto", "network": "auto", "exec": "auto",
                             "destructive": "auto"}, "max_auto_per_turn": 10}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    let (status, _) = api
        .put(
            "/api/settings/auto-approval",
            &json!({"risk": {"read": "auto", "write": "auto", "network": "auto", "exec": "auto",
                             "destructive": "ask"}, "tools": {"wipe": "auto"}, "max_auto_per_turn": 10}),
        )
        .await;
    assert_eq!(status, 200);
    let fake = FakeProvider::start(
        vec![Reply::sse(openai_tool_calls(&[Call {
            id: "call_x",
            name: "wipe",
            arguments: json!({"text": "everything"}),
        }]))],
        Reply::json(500, "{}"),
    )
    .await;
    let id = tool_conversation(gateway, "alice", &fake, "openai").await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "c-1", "Wipe it.")).await;
    let pending = ws.until(|e| e["type"] == "tool.pending").await;
    let execution = &pending.last().unwrap()["tool_execution"];
    assert_eq!(execution["status"], "pending");
    assert_eq!(execution["risk"], "destructive");
    let (_, listed) = api.get("/api/tool-executions?status=pending").await;
    assert_eq!(listed["items"][0]["tool"], "wipe");

    // Stopping the waiting answer denies what has not run, and the loop does not go on.
    let step = pending.last().unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.send(&json!({"action": "cancel", "message_id": step}))
        .await;
    let decided = ws.until(|e| e["type"] == "tool.decided").await;
    let decided = decided.last().unwrap();
    assert_eq!(decided["status"], "denied");
    assert_eq!(decided["decision"]["rule"], "cancel");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 1, "no continuation");
    let stored = stored_messages(gateway, "alice", &id).await;
    assert_eq!(stored[1]["status"], "cancelled");
    assert_eq!(
        stored[2]["role"], "tool",
        "the call has its result for the history"
    );
    let (status, body) = api
        .post(
            &format!("/api/conversations/{id}/messages"),
            &json!({"client_message_id": "c-2", "content": "Never mind."}),
        )
        .await;
    assert_eq!(status, 202, "nothing waits any more: {body}");
}

/// The EMF documents the gateway wrote to stdout that carry `metric`, waiting briefly for the
/// pipe (they are written before the answer's completion is sent).
async fn emf_with(running: &Running, metric: &str, at_least: usize) -> Vec<Value> {
    for _ in 0..50 {
        let docs: Vec<Value> = running
            .gateway
            .stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|d| d.get("_aws").is_some() && d.get(metric).is_some())
            .collect();
        if docs.len() >= at_least {
            return docs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {at_least} EMF documents with {metric}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_and_tool_runs_are_reported_as_emf_metrics() {
    let running = sqlite(&[("BESTCHAT_METRICS", "emf")]).await;
    an_auto_approved_read_tool_answers_in_one_turn(&running).await;

    let turns = emf_with(&running, "TurnLatency", 2).await;
    let tokens: Vec<(u64, u64)> = turns
        .iter()
        .map(|d| {
            (
                d["InputTokens"].as_f64().unwrap() as u64,
                d["OutputTokens"].as_f64().unwrap() as u64,
            )
        })
        .collect();
    assert_eq!(
        tokens,
        [(30, 12), (40, 2)],
        "one document per step, from its usage"
    );
    // The step that only asked for a tool streamed no text: no frames, no first token.
    assert_eq!(turns[0]["Frames"], 0.0);
    assert!(turns[0].get("TimeToFirstToken").is_none());
    assert!(turns[1]["Frames"].as_f64().unwrap() >= 1.0);
    assert!(turns[1]["TimeToFirstToken"].as_f64().is_some());
    for doc in &turns {
        assert_eq!(doc["Provider"], "fake");
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "BestChat");
        assert_eq!(spec["Dimensions"], json!([["Provider"]]));
        let declared: Vec<&str> = spec["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in ["TurnLatency", "InputTokens", "OutputTokens", "Frames"] {
            assert!(declared.contains(&name), "{name} declared in {spec}");
        }
    }
    let runs = emf_with(&running, "ToolRuns", 1).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["Kind"], "sandbox");
    assert_eq!(runs[0]["Outcome"], "succeeded");
    assert!(runs[0].get("ToolWallTime").is_some());
}
