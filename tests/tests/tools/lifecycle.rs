//! A user's own tool from registration to deletion, over HTTP: the documented example tool
//! (examples/wasm-tool) built with the stock toolchain, listed beside the built-ins, run by the
//! executor, invisible to another user, and gone after DELETE.

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::gateway::{Running, cloud, postgres, sqlite};
use bestchat_tests::tools::{
    Executor, assert_only_builtins, limits, manifest, register, registered,
};
use bestchat_tests::wasm::module;
use bestchat_tools::{ExecResponse, FailureKind, ModuleRef};
use serde_json::{Value, json};

fn example_manifest() -> Value {
    let text = include_str!("../../../examples/wasm-tool/manifest.json");
    serde_json::from_str(text).unwrap()
}

async fn lifecycle(running: Running) {
    let (ana, bo) = (
        Api::new(&running.gateway, "ana"),
        Api::new(&running.gateway, "bo"),
    );
    let (status, tool) = register(&ana, example_manifest(), module("word_count")).await;
    assert_eq!(status, 201, "{tool}");
    assert_eq!(
        (
            tool["name"].as_str(),
            tool["risk"].as_str(),
            tool["source"].as_str()
        ),
        (Some("word_count"), Some("read"), Some("user"))
    );
    let id = tool["id"].as_str().unwrap().to_owned();
    let sha = tool["module_sha256"].as_str().unwrap().to_owned();

    let (status, listed) = ana.get("/api/tools").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "calculator",
            "datetime",
            "json_query",
            "regex",
            "http_fetch",
            "run_javascript",
            "word_count"
        ]
    );
    let (_, theirs) = bo.get("/api/tools").await;
    assert!(
        theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "word_count"),
        "{theirs}"
    );

    let executor = Executor::of(&running.gateway);
    let out = executor
        .call(
            ModuleRef::Sha256(sha),
            json!({"text": "the cat and the hat\nthe end", "top": 1}),
            limits(|_| {}),
        )
        .await;
    let ExecResponse::Ok { output, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        output,
        json!({"words": 7, "lines": 2, "characters": 27, "top": [{"word": "the", "count": 3}]})
    );

    // Names are unique per user, and never a built-in's.
    let (status, body) = register(&ana, example_manifest(), module("word_count")).await;
    assert_error(status, &body, 409, "conflict");
    let mut builtin_name = example_manifest();
    builtin_name["name"] = json!("calculator");
    let (status, body) = register(&ana, builtin_name, module("word_count")).await;
    assert_error(status, &body, 409, "conflict");
    let mut bad = example_manifest();
    bad["risk"] = json!("root");
    let (status, body) = register(&ana, bad, module("word_count")).await;
    assert_error(status, &body, 422, "invalid_tool");
    let (status, body) = ana
        .post("/api/tools", &json!({"manifest": example_manifest()}))
        .await;
    assert_error(status, &body, 422, "validation_failed");

    // Another user's id, a malformed one, and a deleted one are all not found.
    let (status, body) = bo.delete(&format!("/api/tools/{id}")).await;
    assert_error(status, &body, 404, "tool_not_found");
    let (status, body) = ana.delete("/api/tools/not-an-id").await;
    assert_error(status, &body, 404, "tool_not_found");
    let (status, _) = ana.delete(&format!("/api/tools/{id}")).await;
    assert_eq!(status, 204);
    let (status, body) = ana.delete(&format!("/api/tools/{id}")).await;
    assert_error(status, &body, 404, "tool_not_found");
    assert_only_builtins(&ana).await;
    // The same user may register it again.
    let (status, _) = register(&ana, example_manifest(), module("word_count")).await;
    assert_eq!(status, 201);
}

/// Modules are kept by content and shared: a deleted tool's module (and the code compiled
/// from it) goes from storage once no tool of anyone uses it, and not before; the built-ins'
/// compiled code stays.
async fn deleted_modules_leave_storage_once_no_tool_uses_them(running: Running) {
    let (ana, bo) = (
        Api::new(&running.gateway, "ana"),
        Api::new(&running.gateway, "bo"),
    );
    let executor = Executor::of(&running.gateway);
    executor
        .builtin("calculator", json!({"expression": "1"}))
        .await;
    let (_, shared) = register(&ana, example_manifest(), module("word_count")).await;
    let (_, theirs) = register(&bo, example_manifest(), module("word_count")).await;
    let (_, own) = register(&ana, manifest("nul_output"), module("nul_output")).await;
    let shared_sha = shared["module_sha256"].as_str().unwrap();
    assert_eq!(
        theirs["module_sha256"], shared_sha,
        "the same bytes, one module"
    );
    let own_sha = own["module_sha256"].as_str().unwrap();
    let stored = |keys: &[String], sha: &str| keys.iter().filter(|k| k.contains(sha)).count();
    let before = running.blob_keys("").await;
    assert_eq!(
        stored(&before, own_sha),
        2,
        "module and compiled code: {before:?}"
    );
    assert_eq!(stored(&before, shared_sha), 2, "{before:?}");

    for tool in [&shared, &own] {
        let (status, _) = ana
            .delete(&format!("/api/tools/{}", tool["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, 204);
    }
    let swept = executor.janitor().await;
    assert_eq!(swept["modules_removed"], 2, "{swept}");
    let after = running.blob_keys("").await;
    assert_eq!(stored(&after, own_sha), 0, "{after:?}");
    assert_eq!(stored(&after, shared_sha), 2, "bo still uses it: {after:?}");
    let (_, listed) = bo.get("/api/tools").await;
    assert!(listed.to_string().contains("word_count"));

    let (status, _) = bo
        .delete(&format!("/api/tools/{}", theirs["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 204);
    assert_eq!(executor.janitor().await["modules_removed"], 2);
    let left = running.blob_keys("").await;
    assert_eq!(stored(&left, shared_sha), 0, "{left:?}");
    assert_eq!(
        left.len(),
        1,
        "the calculator's compiled code stays: {left:?}"
    );
    assert_eq!(executor.janitor().await["modules_removed"], 0);
}

const NO_GRACE: &[(&str, &str)] = &[("BESTCHAT_TOOL_MODULE_GRACE_MS", "1")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_modules_leave_local_storage() {
    deleted_modules_leave_storage_once_no_tool_uses_them(sqlite(NO_GRACE).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_modules_leave_s3() {
    deleted_modules_leave_storage_once_no_tool_uses_them(cloud(NO_GRACE).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_tool_lives_and_dies_on_sqlite() {
    lifecycle(sqlite(&[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_tool_lives_and_dies_on_postgres() {
    lifecycle(postgres(&[]).await).await;
}

/// A new process (a new Lambda environment) loads what another compiled from the shared store:
/// here the module itself is gone from the blob store and the new process's disk cache is
/// empty, so the call can only succeed on the shared compiled code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_runs_code_another_compiled() {
    let running = sqlite(&[]).await;
    let api = Api::new(&running.gateway, "ana");
    let (status, tool) = register(&api, example_manifest(), module("word_count")).await;
    assert_eq!(status, 201, "{tool}");
    let sha = tool["module_sha256"].as_str().unwrap().to_owned();
    let Running { gateway, dir, .. } = running;
    gateway.stop();
    let blobs = dir.path().join("blobs");
    std::fs::remove_file(blobs.join(format!("tools/{sha}.wasm"))).unwrap();
    let cache = blobs.parent().unwrap().join("tool-cache");
    std::fs::remove_dir_all(&cache).unwrap();
    let compiled = std::fs::read_dir(blobs.join("compiled")).unwrap().count();
    assert_eq!(compiled, 1, "one engine's compiled code is shared");

    let restarted = bestchat_tests::gateway::GatewayProcess::start(dir.path(), None, &[]);
    let executor = Executor::of(&restarted);
    let out = executor
        .call(
            ModuleRef::Sha256(sha.clone()),
            json!({"text": "a b a"}),
            limits(|_| {}),
        )
        .await;
    let ExecResponse::Ok { output, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(output["words"], 3);

    // Shared code that is not what wasmtime wrote is refused, never run: with the module gone
    // too, the call fails as unavailable.
    restarted.stop();
    for entry in std::fs::read_dir(blobs.join("compiled")).unwrap().flatten() {
        for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
            std::fs::write(file.path(), b"\x7fELF not really machine code").unwrap();
        }
    }
    std::fs::remove_dir_all(&cache).unwrap();
    let again = bestchat_tests::gateway::GatewayProcess::start(dir.path(), None, &[]);
    let out = Executor::of(&again)
        .call(ModuleRef::Sha256(sha), json!({"text": "a"}), limits(|_| {}))
        .await;
    assert!(
        matches!(&out, ExecResponse::Failed { failure, .. } if failure.kind == FailureKind::ModuleUnavailable),
        "{out:?}"
    );
}

/// Shared compiled code is vouched for under its own name: machine code that is valid but was
/// compiled from another module (moved there by whoever could write the store) is never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_moved_to_another_modules_name_is_never_run() {
    let running = sqlite(&[]).await;
    let api = Api::new(&running.gateway, "ana");
    let counter = registered(&api, example_manifest(), module("word_count")).await;
    let victim = registered(&api, manifest("victim"), module("not_json")).await;
    let Running { gateway, dir, .. } = running;
    gateway.stop();
    let blobs = dir.path().join("blobs");
    let engines: Vec<_> = std::fs::read_dir(blobs.join("compiled"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(engines.len(), 1, "both were compiled by one engine");
    let engine = &engines[0];
    std::fs::copy(
        engine.join(format!("{counter}.cwasm")),
        engine.join(format!("{victim}.cwasm")),
    )
    .unwrap();
    std::fs::remove_file(blobs.join(format!("tools/{victim}.wasm"))).unwrap();
    std::fs::remove_dir_all(dir.path().join("tool-cache")).unwrap();

    let restarted = bestchat_tests::gateway::GatewayProcess::start(dir.path(), None, &[]);
    let out = Executor::of(&restarted)
        .call(
            ModuleRef::Sha256(victim),
            json!({"text": "a b"}),
            limits(|_| {}),
        )
        .await;
    assert!(
        matches!(&out, ExecResponse::Failed { failure, .. } if failure.kind == FailureKind::ModuleUnavailable),
        "{out:?}"
    );
    // The code itself is sound: under its own name it still runs.
    let out = Executor::of(&restarted)
        .call(
            ModuleRef::Sha256(counter),
            json!({"text": "a b"}),
            limits(|_| {}),
        )
        .await;
    assert!(matches!(out, ExecResponse::Ok { .. }), "{out:?}");
}
