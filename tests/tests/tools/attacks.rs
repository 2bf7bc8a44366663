//! Hostile modules, each contained with the right typed failure; after each, the executor
//! serves an ordinary call normally.

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::gateway::{Running, sqlite};
use bestchat_tests::tools::{
    Executor, assert_only_builtins, limits, manifest, register, registered,
};
use bestchat_tests::wasm::module;
use bestchat_tools::{ExecResponse, FailureKind, ModuleRef};
use serde_json::json;

async fn gateway() -> Running {
    sqlite(&[]).await
}

/// Registers the attack module `name` for a user and returns how to call it.
async fn attack(api: &Api<'_>, name: &str) -> ModuleRef {
    ModuleRef::Sha256(registered(api, manifest(name), module(name)).await)
}

fn failure(response: &ExecResponse) -> (FailureKind, &str) {
    match response {
        ExecResponse::Failed { failure, .. } => (failure.kind, failure.message.as_str()),
        ExecResponse::Ok { output, .. } => panic!("the attack succeeded: {output}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_runs_out_of_fuel_or_hits_the_wall_clock() {
    let running = gateway().await;
    let (api, executor) = (
        Api::new(&running.gateway, "mallory"),
        Executor::of(&running.gateway),
    );
    let spin = attack(&api, "endless_loop").await;
    let out = executor
        .call(spin.clone(), json!({}), limits(|l| l.fuel = 50_000_000))
        .await;
    assert_eq!(failure(&out).0, FailureKind::OutOfFuel, "{out:?}");
    assert!(out.usage().fuel >= 50_000_000, "{:?}", out.usage());
    executor.assert_still_serves().await;
    // With fuel to spare, the wall clock ends it: fuel does not count time.
    let out = executor
        .call(
            spin,
            json!({}),
            limits(|l| {
                l.fuel = u64::MAX;
                l.wall_ms = 300;
            }),
        )
        .await;
    assert_eq!(failure(&out).0, FailureKind::Timeout, "{out:?}");
    assert!(out.usage().wall_ms >= 300, "{:?}", out.usage());
    assert!(
        out.usage().fuel > 0,
        "what ran until then: {:?}",
        out.usage()
    );
    executor.assert_still_serves().await;
    // The interpreter's loop too: a call ended by time reports the fuel it burnt.
    let out = executor
        .call(
            ModuleRef::Builtin("run_javascript".into()),
            json!({"code": "while (true) {}"}),
            limits(|l| l.wall_ms = 300),
        )
        .await;
    assert!(
        matches!(
            failure(&out).0,
            FailureKind::Timeout | FailureKind::OutOfFuel
        ),
        "{out:?}"
    );
    assert!(out.usage().fuel > 0, "{:?}", out.usage());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_refused_at_its_cap() {
    let running = gateway().await;
    let (api, executor) = (
        Api::new(&running.gateway, "mallory"),
        Executor::of(&running.gateway),
    );
    let bomb = attack(&api, "memory_bomb").await;
    let cap = 24 * 1024 * 1024;
    let out = executor
        .call(bomb, json!({}), limits(|l| l.memory_bytes = cap))
        .await;
    assert_eq!(failure(&out).0, FailureKind::MemoryLimit, "{out:?}");
    let peak = out.usage().peak_memory_bytes;
    assert!(
        peak > cap / 2 && peak <= cap,
        "peak {peak} within the cap {cap}"
    );
    executor.assert_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_traps_on_the_guest_stack() {
    let running = gateway().await;
    let (api, executor) = (
        Api::new(&running.gateway, "mallory"),
        Executor::of(&running.gateway),
    );
    let dive = attack(&api, "deep_recursion").await;
    let out = executor
        .call(dive.clone(), json!({"mode": "shadow"}), limits(|_| {}))
        .await;
    let (kind, message) = failure(&out);
    assert_eq!(kind, FailureKind::Trap, "{out:?}");
    assert!(message.contains("out of bounds"), "{message}");
    executor.assert_still_serves().await;
    let out = executor
        .call(dive, json!({"mode": "native"}), limits(|_| {}))
        .await;
    let (kind, message) = failure(&out);
    assert_eq!(kind, FailureKind::Trap, "{out:?}");
    assert!(message.contains("stack"), "{message}");
    executor.assert_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_the_environment_and_sockets_are_not_there() {
    let running = gateway().await;
    let (api, executor) = (
        Api::new(&running.gateway, "mallory"),
        Executor::of(&running.gateway),
    );
    let escape = attack(&api, "escape").await;
    let ExecResponse::Ok { output, .. } = executor.call(escape, json!({}), limits(|_| {})).await
    else {
        panic!("escape should run and report");
    };
    for path in ["passwd", "relative", "proc"] {
        assert!(output[path]["read"].is_null(), "{path} was read: {output}");
        assert!(output[path]["error"].is_string(), "{output}");
    }
    assert!(
        output["listing"]["error"].is_string(),
        "a directory was listed: {output}"
    );
    assert_eq!(output["env"], json!([]), "{output}");
    assert_eq!(output["args"], json!([]), "{output}");
    assert!(
        output["socket"]["error"].is_string(),
        "a socket connected: {output}"
    );
    assert!(output["write"].is_string(), "a file was written: {output}");
    assert!(!std::path::Path::new("/tmp/pwned").exists());
    executor.assert_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_panics_and_bad_json_are_typed() {
    let running = gateway().await;
    let (api, executor) = (
        Api::new(&running.gateway, "mallory"),
        Executor::of(&running.gateway),
    );
    // The flood is stopped at its cap, with fuel and time to spare: not run to a limit.
    let flood = attack(&api, "flood").await;
    let plenty = 1_000_000_000_000;
    let out = executor
        .call(
            flood,
            json!({}),
            limits(|l| {
                l.fuel = plenty;
                l.wall_ms = 30_000;
            }),
        )
        .await;
    assert_eq!(failure(&out).0, FailureKind::OutputTooLarge, "{out:?}");
    assert!(out.usage().fuel < plenty / 100, "{:?}", out.usage());
    let cases = [
        ("panics", FailureKind::Trap),
        ("not_json", FailureKind::InvalidOutput),
    ];
    for (name, kind) in cases {
        let module = attack(&api, name).await;
        let out = executor.call(module, json!({"x": 1}), limits(|_| {})).await;
        assert_eq!(failure(&out).0, kind, "{name}: {out:?}");
        executor.assert_still_serves().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_outside_the_interface_are_refused_at_registration() {
    let running = gateway().await;
    let api = Api::new(&running.gateway, "mallory");
    let (status, body) = register(&api, manifest("shell"), module("bad_import")).await;
    assert_error(status, &body, 422, "invalid_tool");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("env.host_shell"),
        "{body}"
    );
    // The network import needs the network risk.
    let (status, body) = register(&api, manifest("sneaky"), module("fetch_probe")).await;
    assert_error(status, &body, 422, "invalid_tool");
    // Not WebAssembly, or broken WebAssembly.
    let (status, body) = register(&api, manifest("junk"), b"#!/bin/sh\nrm -rf /").await;
    assert_error(status, &body, 422, "invalid_tool");
    let mut truncated = module("escape").to_vec();
    truncated.truncate(truncated.len() / 2);
    let (status, body) = register(&api, manifest("half"), &truncated).await;
    assert_error(status, &body, 422, "invalid_tool");
    // Over the size limit.
    let mut huge = b"\0asm\x01\0\0\0".to_vec();
    huge.resize(3 * 1024 * 1024 + 1, 0);
    let (status, body) = register(&api, manifest("huge"), &huge).await;
    assert_error(status, &body, 413, "payload_too_large");
    // Nothing refused was stored.
    assert_only_builtins(&api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_never_see_each_others_memory() {
    let running = gateway().await;
    let (api, executor) = (
        Api::new(&running.gateway, "mallory"),
        Executor::of(&running.gateway),
    );
    let echo = attack(&api, "memory_echo").await;
    let calls = (0..16).map(|i| {
        let (executor, echo) = (&executor, echo.clone());
        async move {
            let secret = format!("secret-{i}");
            (
                secret.clone(),
                executor
                    .call(echo, json!({"secret": secret}), limits(|_| {}))
                    .await,
            )
        }
    });
    for (secret, out) in futures_util::future::join_all(calls).await {
        let ExecResponse::Ok { output, .. } = out else {
            panic!("{out:?}")
        };
        assert_eq!(
            output["before"], "",
            "a call saw another's memory: {output}"
        );
        assert_eq!(output["secret"], secret);
    }
}
