//! Every built-in tool through the real sandbox: correct answers on real inputs, and the
//! schema's refusals of bad arguments.
#![allow(clippy::unwrap_used, clippy::panic)]

use bestchat_tools::builtin;
use bestchat_tools::executor::Executor;
use bestchat_tools::{
    ArgumentError, Arguments, Ceilings, ExecRequest, ExecResponse, Limits, ModuleRef,
};
use serde_json::{Value, json};

mod support;

fn executor() -> Executor {
    support::executor(None)
}

/// Checks the arguments as a caller must, then runs the tool; the tool's JSON answer.
async fn call(executor: &Executor, tool: &str, arguments: Value) -> Value {
    let manifest = &builtin::find(tool).unwrap().manifest;
    Arguments::compile(&manifest.parameters)
        .unwrap()
        .check(&arguments)
        .unwrap();
    let request = ExecRequest {
        tool: tool.into(),
        module: ModuleRef::Builtin(tool.into()),
        arguments,
        limits: Limits::granted(&manifest.grants, &Ceilings::default()),
    };
    match executor.execute(request).await {
        ExecResponse::Ok { output, usage } => {
            assert!(usage.fuel > 0 && usage.peak_memory_bytes > 0, "{usage:?}");
            output
        }
        ExecResponse::Failed { failure, .. } => panic!("{tool} failed: {failure:?}"),
    }
}

#[tokio::test]
async fn calculator_is_exact() {
    let ex = executor();
    let out = call(&ex, "calculator", json!({"expression": "0.1 + 0.2"})).await;
    assert_eq!(
        (out["result"].as_str(), out["exact"].as_bool()),
        (Some("3/10"), Some(true))
    );
    let out = call(&ex, "calculator", json!({"expression": "2^100 / 3 * 3"})).await;
    assert_eq!(out["result"], "1267650600228229401496703205376");
    let out = call(&ex, "calculator", json!({"expression": "1 / 0"})).await;
    assert!(out["error"].as_str().is_some(), "{out}");
    let out = call(&ex, "calculator", json!({"expression": "sqrt(2)"})).await;
    assert_eq!(out["exact"], false);
    assert!(
        out["decimal"].as_str().unwrap().starts_with("1.41421356"),
        "{out}"
    );
}

#[tokio::test]
async fn datetime_does_zones_and_calendar_arithmetic() {
    let ex = executor();
    let out = call(
        &ex,
        "datetime",
        json!({"operation": "add", "datetime": "2024-01-31T10:00:00Z", "months": 1, "timezone": "UTC"}),
    )
    .await;
    assert!(
        out["datetime"]
            .as_str()
            .unwrap()
            .starts_with("2024-02-29T10:00:00"),
        "{out}"
    );
    let out = call(
        &ex,
        "datetime",
        json!({"operation": "now", "timezone": "Asia/Kolkata"}),
    )
    .await;
    assert!(
        out["datetime"].as_str().unwrap().ends_with("+05:30"),
        "{out}"
    );
    let out = call(
        &ex,
        "datetime",
        json!({"operation": "diff", "from": "2026-01-01", "to": "2026-03-01T12:00:00Z"}),
    )
    .await;
    assert_eq!(out["days"], 59, "{out}");
    let out = call(
        &ex,
        "datetime",
        json!({"operation": "now", "timezone": "Mars/Olympus"}),
    )
    .await;
    assert!(out["error"].as_str().is_some(), "{out}");
}

#[tokio::test]
async fn json_query_runs_jmespath() {
    let ex = executor();
    let data = json!({"people": [{"name": "Ana", "age": 31}, {"name": "Bo", "age": 25}]});
    let out = call(
        &ex,
        "json_query",
        json!({"query": "people[?age > `30`].name", "data": data}),
    )
    .await;
    assert_eq!(out["result"], json!(["Ana"]));
    let out = call(
        &ex,
        "json_query",
        json!({"query": "length(@)", "data": "[1,2,3]"}),
    )
    .await;
    assert_eq!(out["result"], 3);
    let out = call(&ex, "json_query", json!({"query": "[[", "data": {}})).await;
    assert!(out["error"].as_str().is_some(), "{out}");
}

#[tokio::test]
async fn regex_finds_and_replaces() {
    let ex = executor();
    let out = call(
        &ex,
        "regex",
        json!({"pattern": "(?P<y>\\d{4})-(\\d{2})", "text": "from 2024-05 to 2026-12"}),
    )
    .await;
    assert_eq!(out["matches"][1]["text"], "2026-12", "{out}");
    assert_eq!(out["matches"][0]["named"]["y"], "2024", "{out}");
    let out = call(
        &ex,
        "regex",
        json!({"pattern": "(\\w+)@(\\w+)", "text": "a@b c@d", "replacement": "$2 at $1"}),
    )
    .await;
    assert_eq!(
        (out["text"].as_str(), out["replacements"].as_u64()),
        (Some("b at a d at c"), Some(2))
    );
}

#[tokio::test]
async fn run_javascript_computes_in_the_sandbox() {
    let ex = executor();
    let code = "const fib = n => n < 2 ? n : fib(n - 1) + fib(n - 2); console.log('go'); ({f: fib(20), s: [3,1,2].sort()})";
    let out = call(&ex, "run_javascript", json!({"code": code})).await;
    assert_eq!(out["result"], json!({"f": 6765, "s": [1, 2, 3]}), "{out}");
    assert_eq!(out["console"], json!(["go"]));
    let out = call(
        &ex,
        "run_javascript",
        json!({"code": "typeof require + typeof process + typeof fetch"}),
    )
    .await;
    assert_eq!(out["result"], "undefinedundefinedundefined", "{out}");
}

#[test]
fn bad_arguments_are_refused_by_each_tools_schema() {
    let cases = [
        ("calculator", json!({})),
        ("calculator", json!({"expression": 5})),
        ("calculator", json!({"expression": "1", "extra": true})),
        ("datetime", json!({"operation": "yesterday"})),
        ("datetime", json!({"operation": "add", "days": 1.5})),
        ("json_query", json!({"query": "a"})),
        ("regex", json!({"pattern": "", "text": "x"})),
        (
            "regex",
            json!({"pattern": "a", "text": "x", "max_matches": 0}),
        ),
        ("http_fetch", json!({"url": "file:///etc/passwd"})),
        (
            "http_fetch",
            json!({"url": "https://example.com", "max_chars": 0}),
        ),
        ("run_javascript", json!({"code": ""})),
        ("run_javascript", json!("code")),
    ];
    for (tool, arguments) in cases {
        let schema = &builtin::find(tool).unwrap().manifest.parameters;
        let checked = Arguments::compile(schema).unwrap().check(&arguments);
        assert!(
            matches!(checked, Err(ArgumentError::Invalid(_))),
            "{tool} {arguments}: {checked:?}"
        );
    }
}
