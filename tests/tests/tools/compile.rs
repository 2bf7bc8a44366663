//! Untrusted code compiled within a budget. A module's shape is read before anything compiles
//! it (the bomb that once kept a gateway compiling for six minutes at 14 GB is refused there);
//! what passes compiles in a child process of the gateway with a deadline and a memory limit,
//! one compile per user at a time, so the gateway keeps serving everyone else meanwhile.

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::chat::{new_conversation, send_action, until_answered};
use bestchat_tests::gateway::{Running, cloud, sqlite};
use bestchat_tests::tools::{assert_only_builtins, manifest, register};
use bestchat_tests::wasm::{costly_module, module};
use bestchat_tests::ws::WsClient;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};

macro_rules! on_both_adapter_sets {
    ($env:expr; $($case:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { let r = super::sqlite($env).await; super::$case(&r).await; } )*
        }
        mod production {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { let r = super::cloud($env).await; super::$case(&r).await; } )*
        }
    };
}

mod bomb {
    use super::*;
    on_both_adapter_sets!(&[];
        a_compile_bomb_is_refused_before_it_compiles,
    );
}

mod deadline {
    use super::*;
    // Short enough that a costly module within the shape runs into it.
    on_both_adapter_sets!(&[("BESTCHAT_TOOL_COMPILE_TIMEOUT_MS", "2000")];
        a_costly_compile_ends_at_its_deadline_while_others_are_served,
    );
}

mod memory {
    use super::*;
    on_both_adapter_sets!(&[("BESTCHAT_TOOL_COMPILE_MAX_MEMORY_BYTES", "67108864")];
        a_compile_that_needs_more_memory_than_allowed_is_refused,
    );
}

/// Another user's echo turn, sent and answered over the WebSocket.
async fn another_users_turn_answers(running: &Running) {
    let gateway = &running.gateway;
    let id = new_conversation(gateway, "alice", &json!({})).await;
    let mut ws = WsClient::connect(gateway, "alice").await;
    ws.send(&send_action(&id, "meanwhile", "still there?"))
        .await;
    let events = until_answered(&mut ws).await;
    let done = events.last().unwrap();
    assert_eq!(done["message"]["status"], "complete", "{events:#?}");
}

async fn a_compile_bomb_is_refused_before_it_compiles(running: &Running) {
    let mallory = Api::new(&running.gateway, "mallory");
    // The shape from the report: one function, 40,000 locals, 4,000 loops inside one another.
    let bomb = costly_module(1, 40_000, 4_000, 400 * 1024);
    let (status, body) = register(&mallory, manifest("bomb"), &bomb).await;
    assert_error(status, &body, 422, "invalid_tool");
    let reason = body["error"]["message"].as_str().unwrap();
    assert!(
        reason.contains("too costly") && reason.contains("locals"),
        "{reason}"
    );
    // Nesting alone, and function size alone, are refused too.
    for (name, shaped) in [
        ("deep", costly_module(1, 10, 4_000, 1_000)),
        ("huge", costly_module(1, 10, 1, 700 * 1024)),
    ] {
        let (status, body) = register(&mallory, manifest(name), &shaped).await;
        assert_error(status, &body, 422, "invalid_tool");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("too costly"),
            "{name}: {body}"
        );
    }
    assert_only_builtins(&mallory).await;
    another_users_turn_answers(running).await;
}

async fn a_costly_compile_ends_at_its_deadline_while_others_are_served(running: &Running) {
    // Within every bound of the shape, and costly: the baseline compiler takes seconds on it.
    let costly = costly_module(1, 5_000, 256, 500 * 1024);
    let mallory = Api::new(&running.gateway, "mallory");
    let finished = AtomicBool::new(false);
    let registering = async {
        let answer = register(&mallory, manifest("costly"), &costly).await;
        finished.store(true, Ordering::SeqCst);
        answer
    };
    let meanwhile = async {
        // A head start for the costly upload, so its compile is the one that begins first.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        // The compile has begun: the same user may not start a second one meanwhile.
        let mut second = None;
        for attempt in 0..100 {
            let name = format!("second_{attempt}");
            let (status, body) = register(&mallory, manifest(&name), module("word_count")).await;
            if status == 409 {
                second = Some(body);
                break;
            }
            // Registered before the costly compile took the lock: not what this looks for.
            if status == 201 {
                let id = body["id"].as_str().unwrap();
                mallory.delete(&format!("/api/tools/{id}")).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let second = second.expect("a second compile of the same user is refused while one runs");
        assert!(
            second["error"]["message"]
                .as_str()
                .unwrap()
                .contains("being compiled"),
            "{second}"
        );
        // Another user is served as ever, while the compile still runs.
        another_users_turn_answers(running).await;
        assert!(
            !finished.load(Ordering::SeqCst),
            "the compile was still running"
        );
    };
    let ((status, body), ()) = tokio::join!(registering, meanwhile);
    assert_error(status, &body, 422, "invalid_tool");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("took longer than 2000 ms"),
        "{body}"
    );
    assert_only_builtins(&mallory).await;
    // The lock is released: an ordinary module registers now.
    let (status, body) = register(&mallory, manifest("word_count"), module("word_count")).await;
    assert_eq!(status, 201, "{body}");
}

async fn a_compile_that_needs_more_memory_than_allowed_is_refused(running: &Running) {
    let mallory = Api::new(&running.gateway, "mallory");
    let (status, body) = register(&mallory, manifest("word_count"), module("word_count")).await;
    assert_error(status, &body, 422, "invalid_tool");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needed more than 67108864 bytes of memory"),
        "{body}"
    );
    another_users_turn_answers(running).await;
}
